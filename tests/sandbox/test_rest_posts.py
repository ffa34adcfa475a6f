"""Post rules: rune limits, props size, types, threads, integration stripping, ephemeral permission."""
from __future__ import annotations

import json

import pytest

from tests.sandbox.test_rest_scenario import Events, setup_world


@pytest.fixture
def events(sandbox) -> Events:
    return Events(sandbox)


async def channel_for(world) -> dict:
    status, channel, _ = await world["bot"].post("/channels", {"team_id": world["team"]["id"], "name": "ops",
                                                               "display_name": "Ops", "type": "O"})
    assert status == 201
    return channel


async def test_message_limit_counts_runes_not_bytes(api) -> None:
    world = await setup_world(api)
    channel = await channel_for(world)
    text = "é" * 16383  # 32766 bytes in UTF-8, 16383 runes: allowed
    status, post, _ = await world["bot"].post("/posts", {"channel_id": channel["id"], "message": text})
    assert status == 201 and post["message"] == text
    status, body, _ = await world["bot"].post("/posts", {"channel_id": channel["id"], "message": text + "é"})
    assert (status, body["id"]) == (400, "model.post.is_valid.message_length.app_error")


async def test_props_limit_and_types(api) -> None:
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    big = {"blob": "ü" * 800_000}
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "x", "props": big})
    assert (status, body["id"]) == (400, "model.post.is_valid.props.app_error")
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "x", "type": "weird"})
    assert (status, body["id"]) == (400, "model.post.is_valid.type.app_error")
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "x",
                                                "type": "custom_run_update"})
    assert status == 201 and body["type"] == "custom_run_update"
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "x",
                                                "type": "system_join_channel"})
    assert (status, body["id"]) == (400, "api.context.invalid_param.app_error")


async def test_root_id_rules(api) -> None:
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    status, root, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "root"})
    status, reply, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "r", "root_id": root["id"]})
    assert status == 201 and reply["root_id"] == root["id"]
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "r", "root_id": reply["id"]})
    assert (status, body["id"]) == (400, "api.post.create_post.root_id.app_error")
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "r", "root_id": "z" * 26})
    assert (status, body["id"]) == (400, "api.post.create_post.root_id.app_error")
    status, thread, _ = await bot.get(f"/posts/{reply['id']}/thread")
    assert status == 200 and thread["order"] == [reply["id"], root["id"]]


async def test_integration_is_stripped_everywhere_and_action_ids_assigned(api, events) -> None:
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    props = {"attachments": [{"text": "Checklist", "actions": [
        {"name": "Done", "type": "button",
         "integration": {"url": "http://bot/actions", "context": {"secret": "s3"}}}]}]}
    status, post, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "m", "props": props})
    assert status == 201
    action = post["props"]["attachments"][0]["actions"][0]
    assert "integration" not in action  # not even in the 201 to the creator
    assert len(action["id"]) == 26 and action["id"].isalnum() and action["id"].islower()
    status, fetched, _ = await bot.get(f"/posts/{post['id']}")
    assert "integration" not in fetched["props"]["attachments"][0]["actions"][0]
    assert fetched["props"]["attachments"][0]["actions"][0]["id"] == action["id"]
    status, listing, _ = await bot.get(f"/channels/{channel['id']}/posts")
    assert "integration" not in json.dumps(listing)
    for data, _ in events.named("posted"):
        assert "integration" not in data["post"]
    # The server still has it, for the click.
    assert api  # the stored post keeps the integration for the click route
    status, edited, _ = await bot.put(f"/posts/{post['id']}", {"id": post["id"], "message": "m2", "props": props})
    assert status == 200 and "integration" not in json.dumps(edited)
    assert "integration" not in events.named("post_edited")[-1][0]["post"]


async def test_update_replaces_props_wholesale_and_missing_post_is_403(api, events) -> None:
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    status, post, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "m",
                                                "props": {"run_id": "r1"}})
    status, edited, _ = await bot.put(f"/posts/{post['id']}", {"id": post["id"], "message": "m2"})
    assert status == 200 and edited["message"] == "m2" and edited["edit_at"] > 0
    assert "run_id" not in edited["props"]
    status, patched, _ = await bot.put(f"/posts/{post['id']}/patch", {"props": {"k": "v"}})
    assert status == 200 and patched["props"] == {"k": "v"} and patched["message"] == "m2"
    missing = "q" * 26
    status, body, _ = await bot.put(f"/posts/{missing}", {"id": missing, "message": "x"})
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    status, body, _ = await bot.get(f"/posts/{missing}")
    assert (status, body["id"]) == (404, "app.post.get.app_error")

    status, body, _ = await bot.delete(f"/posts/{post['id']}")
    assert (status, body) == (200, {"status": "OK"})
    assert json.loads(events.named("post_deleted")[-1][0]["post"])["id"] == post["id"]
    status, body, _ = await bot.get(f"/posts/{post['id']}")
    assert (status, body["id"]) == (404, "app.post.get.app_error")


async def test_paging_before_after_and_since(api) -> None:
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    ids = []
    for i in range(5):
        status, post, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": f"m{i}"})
        ids.append(post["id"])
    status, page, _ = await bot.get(f"/channels/{channel['id']}/posts?per_page=2")
    assert page["order"] == [ids[4], ids[3]] and page["prev_post_id"] == ids[2]
    status, page, _ = await bot.get(f"/channels/{channel['id']}/posts?per_page=2&page=1")
    assert page["order"] == [ids[2], ids[1]]
    status, page, _ = await bot.get(f"/channels/{channel['id']}/posts?before={ids[2]}&per_page=1")
    assert page["order"] == [ids[1]]
    status, page, _ = await bot.get(f"/channels/{channel['id']}/posts?after={ids[2]}")
    assert page["order"] == [ids[4], ids[3]]
    status, old, _ = await bot.get(f"/posts/{ids[4]}")
    status, page, _ = await bot.get(f"/channels/{channel['id']}/posts?since={old['create_at']}")
    assert ids[4] in page["order"]


async def test_ephemeral_needs_system_permission(api, events) -> None:
    world = await setup_world(api)
    channel = await channel_for(world)
    request = {"user_id": world["alice"]["id"], "post": {"channel_id": channel["id"], "message": "psst"}}
    status, body, _ = await world["bot"].post("/posts/ephemeral", request)
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    assert not events.named("ephemeral_message")
    status, body, _ = await api.post("/posts/ephemeral", request)
    assert status == 201 and body["type"] == "system_ephemeral" and len(body["id"]) == 26
    [(data, broadcast)] = events.named("ephemeral_message")
    assert broadcast["user_id"] == world["alice"]["id"] and json.loads(data["post"])["message"] == "psst"
    status, listing, _ = await api.get(f"/channels/{channel['id']}/posts")
    assert body["id"] not in listing["posts"]  # never stored


async def test_props_size_is_counted_on_go_json_marshal_output(api) -> None:
    """Post.IsValid counts the runes of json.Marshal(props) against PostPropsMaxRunes (800000); Marshal
    writes <, > and & as \\u003c, \\u003e, \\u0026: six runes each. A bot's {"b":"&&&…","from_bot":"true"}
    (the server adds from_bot) is 26 + 6n runes."""
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    status, post, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "x",
                                                "props": {"b": "&" * 133_329}})  # 800000 runes: allowed
    assert status == 201, post
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "x",
                                                "props": {"b": "&" * 133_330}})  # 800006
    assert (status, body["id"]) == (400, "model.post.is_valid.props.app_error")
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "x",
                                                "props": {"b": "<>" * 70_000}})  # 840026 (140026 counted one each)
    assert (status, body["id"]) == (400, "model.post.is_valid.props.app_error")
    # The same limit holds on an edit.
    status, body, _ = await bot.put(f"/posts/{post['id']}/patch", {"props": {"b": "&" * 133_337}})
    assert (status, body["id"]) == (400, "model.post.is_valid.props.app_error")


def _attachment(text: str = "Triage", name: str = "Check", style: str = "good") -> dict:
    return {"text": text, "actions": [{"id": "check1", "name": name, "type": "button", "style": style,
                                       "integration": {"url": "http://bot.example/act", "context": {"k": "v"}}}]}


async def test_edit_at_moves_with_attachments_not_with_other_props(api) -> None:
    """app/post.go UpdatePost: EditAt is set when the message changes, or the file ids, or the attachments
    as Post.AttachmentsEqual compares them (SlackAttachment.Equals / PostAction.Equals: not an action's
    style); any other prop changes nothing."""
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    status, post, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "Checklist",
                                                "props": {"attachments": [_attachment()], "state": 1}})
    assert status == 201 and post["edit_at"] == 0
    status, same, _ = await bot.put(f"/posts/{post['id']}/patch",
                                    {"props": {"attachments": [_attachment()], "state": 2}})
    assert status == 200 and same["props"]["state"] == 2 and same["edit_at"] == 0
    status, restyled, _ = await bot.put(f"/posts/{post['id']}/patch",
                                        {"props": {"attachments": [_attachment(style="danger")], "state": 2}})
    assert status == 200 and restyled["edit_at"] == 0
    status, checked, _ = await bot.put(f"/posts/{post['id']}/patch",
                                       {"props": {"attachments": [_attachment(text="Triage ✅")], "state": 3}})
    assert status == 200 and checked["message"] == "Checklist" and checked["edit_at"] > 0
    # PUT /posts/{id} with the message unchanged: the same rule.
    status, other, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "Overview",
                                                 "props": {"attachments": [_attachment()]}})
    status, renamed, _ = await bot.put(f"/posts/{other['id']}", {
        "id": other["id"], "message": "Overview", "props": {"attachments": [_attachment(name="Uncheck")]}})
    assert status == 200 and renamed["edit_at"] > 0
    status, third, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "Plain",
                                                 "props": {"attachments": [_attachment()]}})
    status, dropped, _ = await bot.put(f"/posts/{third['id']}/patch", {"props": {"note": "no attachments"}})
    assert status == 200 and dropped["edit_at"] > 0  # attachments removed: one fewer than before


async def test_channel_mentions_name_only_open_channels_that_exist_and_follow_edits(api) -> None:
    # app/post.go FillInPostProps: how a client tells ~ops (a channel) from ~30 (text).
    world = await setup_world(api)
    channel = await channel_for(world)
    bot = world["bot"]
    status, secret, _ = await bot.post("/channels", {"team_id": world["team"]["id"], "name": "secret",
                                                     "display_name": "Secret", "type": "P"})
    assert status == 201
    status, post, _ = await bot.post("/posts", {"channel_id": channel["id"],
                                                "message": "See ~ops in ~30 minutes, not ~secret."})
    assert status == 201
    team_name = world["team"]["name"]
    assert post["props"]["channel_mentions"] == {"ops": {"display_name": "Ops", "team_name": team_name}}
    status, fetched, _ = await bot.get(f"/posts/{post['id']}")
    assert fetched["props"]["channel_mentions"] == post["props"]["channel_mentions"]
    status, edited, _ = await bot.put(f"/posts/{post['id']}", {"id": post["id"], "message": "Nothing here ~30"})
    assert status == 200 and "channel_mentions" not in edited["props"]
    status, plain, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "in ~30 minutes"})
    assert status == 201 and "channel_mentions" not in plain["props"]
