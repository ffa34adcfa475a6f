"""File uploads as the real server does them (sandbox/routes/files.py has the proof): multipart and raw
uploads, who may read a file, attaching to a post once and only by its uploader, the size limit."""
from __future__ import annotations

import aiohttp

from sandbox import ops
from tests.sandbox.conftest import make_world


def form(channel_id: str | None, *files: tuple[str, bytes], client_ids: list[str] = ()) -> aiohttp.FormData:
    data = aiohttp.FormData()
    if channel_id is not None:
        data.add_field("channel_id", channel_id)
    for cid in client_ids:
        data.add_field("client_ids", cid)
    for name, content in files:
        data.add_field("files", content, filename=name, content_type="application/octet-stream")
    return data


async def upload(api, token: str, channel_id: str | None, *files: tuple[str, bytes], **kw):
    return await api.as_(token).call("POST", "/files", data=form(channel_id, *files, **kw))


async def test_multipart_upload_then_attach_and_read_back(sandbox, api) -> None:
    w = make_world(sandbox)
    channel = w["channel"].id
    status, body, _ = await upload(api, w["alice_token"], channel, ("report.md", b"# Report\n"),
                                   ("notes.txt", b"hello"))
    assert status == 201
    assert body["client_ids"] == []
    first, second = body["file_infos"]
    assert (first["name"], first["extension"], first["size"], first["user_id"], first["channel_id"]) == \
        ("report.md", "md", 9, w["alice"].id, channel)
    assert "post_id" not in first and first["mime_type"].startswith("text/markdown")

    # Before it is attached, a file is its uploader's alone.
    status, _, _ = await api.as_(w["bob_token"]).get(f"/files/{first['id']}")
    assert status == 403
    status, text, headers = await api.as_(w["alice_token"]).get(f"/files/{first['id']}")
    assert (status, text) == (200, "# Report\n")
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"

    status, post, _ = await api.as_(w["alice_token"]).post(
        "/posts", {"channel_id": channel, "message": "the report", "file_ids": [first["id"], second["id"]]})
    assert status == 201
    assert post["file_ids"] == [first["id"], second["id"]]
    assert [f["id"] for f in post["metadata"]["files"]] == [first["id"], second["id"]]
    assert post["metadata"]["files"][0]["post_id"] == post["id"]

    # Attached: every member of the channel may read it; someone outside a private channel may not.
    status, text, _ = await api.as_(w["bob_token"]).get(f"/files/{first['id']}")
    assert (status, text) == (200, "# Report\n")
    status, info, headers = await api.as_(w["bob_token"]).get(f"/files/{first['id']}/info")
    assert status == 200 and info["post_id"] == post["id"] and info["size"] == 9
    assert headers["Cache-Control"] == "max-age=2592000, private"
    status, read, _ = await api.as_(w["bob_token"]).get(f"/posts/{post['id']}")
    assert read["metadata"]["files"][0]["name"] == "report.md"


async def test_a_file_attaches_once_and_only_by_its_uploader_in_its_channel(sandbox, api) -> None:
    w = make_world(sandbox)
    st, hub = sandbox.state, sandbox.hub
    channel = w["channel"].id
    other = ops.create_channel(st, hub, team=w["team"], creator=w["alice"], name="elsewhere",
                               display_name="Elsewhere", type="O")
    _, body, _ = await upload(api, w["alice_token"], channel, ("a.txt", b"a"))
    file_id = body["file_infos"][0]["id"]

    # bob may not attach alice's file: the post is made without it.
    status, post, _ = await api.as_(w["bob_token"]).post(
        "/posts", {"channel_id": channel, "message": "steal", "file_ids": [file_id]})
    assert status == 201 and post["file_ids"] == [] and post["metadata"] == {}
    # Nor may alice attach it in another channel.
    status, post, _ = await api.as_(w["alice_token"]).post(
        "/posts", {"channel_id": other.id, "message": "move", "file_ids": [file_id]})
    assert status == 201 and post["file_ids"] == []
    # Attached once...
    status, post, _ = await api.as_(w["alice_token"]).post(
        "/posts", {"channel_id": channel, "message": "one", "file_ids": [file_id]})
    assert post["file_ids"] == [file_id]
    # ...and never again.
    status, again, _ = await api.as_(w["alice_token"]).post(
        "/posts", {"channel_id": channel, "message": "two", "file_ids": [file_id]})
    assert status == 201 and again["file_ids"] == []
    assert st.files[file_id].post_id == post["id"]


async def test_upload_needs_the_channel_and_permission(sandbox, api) -> None:
    w = make_world(sandbox, private=True)
    st, hub = sandbox.state, sandbox.hub
    channel = w["channel"].id
    status, body, _ = await upload(api, w["carol_token"], channel, ("x.txt", b"x"))
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    assert not st.files
    status, body, _ = await upload(api, w["alice_token"], "nope", ("x.txt", b"x"))
    assert (status, body["id"]) == (400, "api.context.invalid_url_param.app_error")
    # A file part before channel_id: the legacy buffered form; no channel_id at all is refused.
    status, body, _ = await upload(api, w["alice_token"], None, ("x.txt", b"x"))
    assert (status, body["id"]) == (400, "api.context.invalid_param.app_error")
    data = aiohttp.FormData()
    data.add_field("files", b"late", filename="late.txt")
    data.add_field("channel_id", channel)
    status, body, _ = await api.as_(w["alice_token"]).call("POST", "/files", data=data)
    assert status == 201 and body["file_infos"][0]["name"] == "late.txt"
    # Unknown form fields are refused by name.
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("channel_id", channel)
    data.add_field("colour", "blue")
    status, body, _ = await api.as_(w["alice_token"]).call("POST", "/files", data=data)
    assert (status, body["id"]) == (400, "api.context.invalid_param.app_error")
    # A post naming files needs upload_file in its channel (createPostChecks).
    guest = ops.create_guest(st, hub, username="gina", email="gina@example.com")
    ops.add_team_member(st, hub, w["team"], guest)
    ops.add_channel_member(st, hub, w["channel"], guest, w["alice"])
    st.role_permissions["channel_guest"].discard("upload_file")
    token = ops.create_token(st, guest.id)
    status, body, _ = await api.as_(token).post("/posts", {"channel_id": channel, "message": "m",
                                                           "file_ids": [list(st.files)[0]]})
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")


async def test_client_ids_one_per_file(sandbox, api) -> None:
    w = make_world(sandbox)
    channel = w["channel"].id
    status, body, _ = await upload(api, w["alice_token"], channel, ("a.txt", b"a"), ("b.txt", b"b"),
                                   client_ids=["c1", "c2"])
    assert status == 201 and body["client_ids"] == ["c1", "c2"]
    status, body, _ = await upload(api, w["alice_token"], channel, ("a.txt", b"a"), ("b.txt", b"b"),
                                   client_ids=["c1"])
    assert (status, body["id"]) == (400, "api.context.invalid_param.app_error")


async def test_raw_body_upload(sandbox, api) -> None:
    w = make_world(sandbox)
    channel = w["channel"].id
    status, body, _ = await api.as_(w["alice_token"]).call(
        "POST", f"/files?channel_id={channel}&filename=raw.txt", data=b"raw bytes",
        headers={"Content-Type": "text/plain"})
    assert status == 201
    assert body["client_ids"] is None  # model.FileUploadResponse: a nil slice, no omitempty
    assert body["file_infos"][0]["size"] == 9
    status, body, _ = await api.as_(w["alice_token"]).call(
        "POST", f"/files?channel_id={channel}", data=b"raw", headers={"Content-Type": "text/plain"})
    assert (status, body["id"]) == (400, "api.context.invalid_url_param.app_error")
    status, body, _ = await api.as_(w["alice_token"]).call(
        "POST", f"/files?channel_id={channel}&filename=e.txt", data=b"", headers={"Content-Type": "text/plain"})
    assert (status, body["id"]) == (400, "api.file.upload_file.read_request.app_error")


async def test_size_limit_and_switch(sandbox, api) -> None:
    w = make_world(sandbox)
    st = sandbox.state
    channel = w["channel"].id
    st.config["MaxFileSize"] = 10
    status, body, _ = await upload(api, w["alice_token"], channel, ("big.txt", b"x" * 11))
    assert (status, body["id"]) == (413, "api.file.upload_file.too_large_detailed.app_error")
    status, body, _ = await api.as_(w["alice_token"]).call(
        "POST", f"/files?channel_id={channel}&filename=big.txt", data=b"x" * 11,
        headers={"Content-Type": "text/plain"})
    assert (status, body["id"]) == (413, "api.file.upload_file.too_large_detailed.app_error")
    assert not st.files
    status, body, _ = await upload(api, w["alice_token"], channel, ("ok.txt", b"x" * 10))
    assert status == 201
    st.config["EnableFileAttachments"] = False
    status, body, _ = await upload(api, w["alice_token"], channel, ("ok.txt", b"x"))
    assert (status, body["id"]) == (403, "api.file.attachments.disabled.app_error")


async def test_missing_file_and_html_served_as_text(sandbox, api) -> None:
    w = make_world(sandbox)
    status, body, _ = await api.as_(w["alice_token"]).get("/files/" + "a" * 26)
    assert (status, body["id"]) == (404, "app.file_info.get.app_error")
    _, body, _ = await upload(api, w["alice_token"], w["channel"].id, ("page.html", b"<script>x</script>"))
    status, _, headers = await api.as_(w["alice_token"]).get(f"/files/{body['file_infos'][0]['id']}")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
