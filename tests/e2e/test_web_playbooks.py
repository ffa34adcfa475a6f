"""The web view's playbooks, as the people who keep them use them: the list and a playbook's page show its
versions, source and runs; a playbook made and edited in the editor starts runs in chat; the file
loader's validation shows next to the field; a file-managed playbook is read-only, copies to edit and
exports as its file; "Improve the playbook" proposes the item a run added by hand, and saving it makes
the next run include it; forged or unauthorised forms change nothing."""
from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import aiohttp
import pytest

from storage import playbooks as store
from tests.e2e.conftest import INCIDENT, ONBOARDING, World
from tests.e2e.test_web_runs import csrf_of, get, post, start


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT, "onboarding": ONBOARDING}}


async def make_admin(world: World, who: str = "alice") -> aiohttp.ClientSession:
    status, body, _ = await world.admin.put(f"/users/{world[who].id}/roles", {"roles": "system_user system_admin"})
    assert status == 200, body
    return await world.browser(who)


def editor_fields(html: str) -> dict[str, str]:
    """The editor form's fields as a browser would post them (text, textareas, ticked boxes, selects)."""
    form = html[html.index('<form id="editor"'):]
    form = form[:form.index("</form>")]
    fields: dict[str, str] = {}
    for tag in re.finditer(r"<input ([^>]*)>", form):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag.group(1)))
        name = attrs.get("name")
        if not name:
            continue
        if attrs.get("type") == "checkbox":
            if " checked" in tag.group(1):
                fields[name] = _unescape(attrs.get("value", "on"))
        else:
            fields[name] = _unescape(attrs.get("value", ""))
    for area in re.finditer(r'<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[area.group(1)] = _unescape(area.group(2))
    for select in re.finditer(r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', select.group(2))
        fields[select.group(1)] = chosen.group(1) if chosen else ""
    return fields


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"').replace("&#39;", "'")
            .replace("&quot;", '"').replace("&amp;", "&"))


async def submit(browser: aiohttp.ClientSession, world: World, path: str, fields: dict[str, str]
                 ) -> tuple[int, str, str]:
    return await post(browser, world, path, fields)


async def test_list_page_and_diff(world: World) -> None:
    run = await start(world, "incident", "Checkout down")
    bob = await world.browser("bob")
    status, html = await get(bob, world, "/playbooks")
    assert status == 200
    assert 'href="/playbooks/incident"' in html and "Incident response" in html and "Customer onboarding" in html
    assert "incident.toml" in html  # a file-managed playbook names its file
    assert f'href="/runs/{run["id"]}"' in html  # its last runs
    assert "New playbook" not in html  # bob is no admin
    status, html = await get(bob, world, "/playbooks/incident")
    assert status == 200
    for text in ("Acknowledge the page", "due 15m", "Open a bridge call", "Version", "file", "Checkout down",
                 "Export as TOML"):
        assert text in html, text
    assert "/playbooks/incident/edit" not in html  # bob may not edit
    # A second version (the file changed): the page says what it changed, and the diff between the two.
    (world.playbooks_dir / "incident.toml").write_text(
        INCIDENT.replace('  title = "Find the cause"\n', '  title = "Find the cause"\n  due = "2h"\n')
        .replace('title = "Deploy the fix"', 'title = "Roll out the fix"'))
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    status, html = await get(bob, world, "/playbooks/incident")
    assert "Added item “Roll out the fix”" in html and "Removed item “Deploy the fix”" in html
    status, html = await get(bob, world, "/playbooks/incident/diff?from=1&to=2")
    assert status == 200
    assert "Changed item “Find the cause”" in html and "<ins>2h</ins>" in html
    assert '+title = &#34;Roll out the fix&#34;' in html or '+title = "Roll out the fix"' in html
    status, html = await get(bob, world, "/playbooks/incident/diff?from=1&to=9")
    assert status == 400 and "its versions are 1, 2" in html
    status, _ = await get(bob, world, "/playbooks/nothing-here")
    assert status == 404


async def test_create_in_the_editor_then_run_it_in_chat(world: World) -> None:
    alice = await make_admin(world)
    status, html = await get(alice, world, "/playbooks/new")
    assert status == 200
    fields = editor_fields(html)
    # The buttons: a second item in checklist 1 (the form comes back, nothing saved).
    fields.update({"id": "deploy", "title": "Deploy", "team": "eng", "checklists[1].title": "Prepare",
                   "checklists[1].items[1].title": "Freeze merges"})
    status, _, html = await submit(alice, world, "/playbooks/new", {**fields, "op": "add-item:checklists[1]"})
    assert status == 200 and 'name="checklists[1].items[2].title"' in html
    fields = editor_fields(html)
    fields.update({"checklists[1].items[2].title": "Tag the release", "checklists[1].items[2].due": "1h",
                   "note": "first cut"})
    status, _, html = await submit(alice, world, "/playbooks/new", {**fields, "op": "up:checklists[1].items[2]"})
    assert status == 200
    fields = editor_fields(html)
    assert fields["checklists[1].items[1].title"] == "Tag the release"
    status, location, body = await submit(alice, world, "/playbooks/new", {**fields, "op": "save"})
    assert status == 303, body
    assert location.startswith("/playbooks/deploy")
    assert world.bot.ctx is not None
    version = await world.bot.ctx.db.run(store.current_version, "deploy")
    assert version is not None and version.source == "editor" and version.note == "first cut"
    assert version.author_id == world["alice"].id
    assert [i["title"] for i in version.data["checklists"][0]["items"]] == ["Tag the release", "Freeze merges"]
    # It starts runs in chat at once.
    run = await start(world, "deploy", "Release 42")
    status, found = await world.run_json(run["id"])
    assert [i["title"] for i in found["checklists"][0]["items"]] == ["Tag the release", "Freeze merges"]
    # An id that is taken is refused next to its field.
    status, _, html = await submit(alice, world, "/playbooks/new", {**fields, "op": "save"})
    assert status == 400 and "exists already" in html


async def test_edit_saves_a_version_and_validation_shows_at_the_field(world: World) -> None:
    alice = await make_admin(world)
    token = await csrf_of(alice, world, "/playbooks")
    status, location, _ = await post(alice, world, "/playbooks/onboarding/copy", {"csrf": token, "new_id": "onb"})
    assert status == 303 and location == "/playbooks/onb/edit"
    status, html = await get(alice, world, "/playbooks/onb/edit")
    assert status == 200
    fields = editor_fields(html)
    assert fields["title"] == "Copy of Customer onboarding"
    # A bad due: the file loader's words, next to that item's due field, and nothing saved.
    bad = {**fields, "checklists[1].items[1].due": "soon", "op": "save"}
    status, _, html = await submit(alice, world, "/playbooks/onb/edit", bad)
    assert status == 400
    error = re.search(r'id="e-checklists\[1\]\.items\[1\]\.due"[^>]*>(.*?)</div>', html, re.S)
    assert error and error.group(1).strip(), html
    assert 'id="f-checklists[1].items[1].due"' in html and 'aria-invalid="true"' in html
    assert world.bot.ctx is not None
    assert len(await world.bot.ctx.db.run(store.list_versions, "onb")) == 1
    # As you type: the same problem from /playbooks/validate, saving nothing.
    status, _, body = await submit(alice, world, "/playbooks/validate", {**bad, "playbook": "onb"})
    answer = json.loads(body)
    assert status == 200 and not answer["ok"]
    assert [p["field"] for p in answer["problems"]] == ["checklists[1].items[1].due"]
    # The TOML view with a problem: shown beside the text.
    status, _, body = await submit(alice, world, "/playbooks/validate",
                                   {"csrf": fields["csrf"], "mode": "toml", "playbook": "onb",
                                    "toml": 'title = "x"\n[[checklists]]\ntitle = "A"\n[[checklists.items]]\n'
                                            'title = "B"\ndue = "later"\n'})
    answer = json.loads(body)
    assert [p["key"] for p in answer["problems"]] == ["checklists[1].items[1].due"]
    # A good edit saves version 2, with its note and author.
    good = {**fields, "title": "Onboarding, our way", "note": "renamed", "op": "save"}
    status, location, body = await submit(alice, world, "/playbooks/onb/edit", good)
    assert status == 303 and location == "/playbooks/onb?saved=2", body
    version = await world.bot.ctx.db.run(store.current_version, "onb")
    assert version is not None and version.number == 2 and version.data["title"] == "Onboarding, our way"
    assert world.bot.ctx.playbooks["onb"].title == "Onboarding, our way"  # this process sees it at once
    status, html = await get(alice, world, location)
    assert "Saved as version 2" in html and "renamed" in html and "@alice" in html
    # The TOML view saves too.
    status, html = await get(alice, world, "/playbooks/onb/edit?view=toml")
    text = _unescape(re.search(r'name="toml"[^>]*>(.*?)</textarea>', html, re.S).group(1))  # type: ignore[union-attr]
    status, location, body = await submit(alice, world, "/playbooks/onb/edit", {
        "csrf": fields["csrf"], "mode": "toml", "toml": text.replace("Onboarding, our way", "Onboarding v3"),
        "note": "", "op": "save"})
    assert status == 303, body
    assert world.bot.ctx.playbooks["onb"].title == "Onboarding v3"
    # Archive and restore.
    status, _, _ = await post(alice, world, "/playbooks/onb/archive", {"csrf": fields["csrf"]})
    assert status == 303 and "onb" not in world.bot.ctx.playbooks
    status, _, _ = await post(alice, world, "/playbooks/onb/restore", {"csrf": fields["csrf"]})
    assert status == 303 and "onb" in world.bot.ctx.playbooks


async def test_a_file_managed_playbook_is_read_only_and_exports_as_its_file(world: World) -> None:
    alice = await make_admin(world)
    status, html = await get(alice, world, "/playbooks/incident/edit")
    assert status == 200
    assert "managed by its file" in html and "incident.toml" in html and "Copy to edit" in html
    assert 'id="editor"' not in html
    token = await csrf_of(alice, world, "/playbooks")
    status, _, html = await post(alice, world, "/playbooks/incident/edit",
                                 {"csrf": token, "title": "Hijacked", "op": "save"})
    assert status == 403
    assert world.bot.ctx is not None and world.bot.ctx.playbooks["incident"].title == "Incident response"
    async with alice.get(f"{world.bot.url}/playbooks/incident/export.toml") as r:
        assert r.status == 200 and "incident.toml" in r.headers["Content-Disposition"]
        exported = await r.text()
    assert tomllib.loads(exported) == tomllib.loads((world.playbooks_dir / "incident.toml").read_text())
    status, location, _ = await post(alice, world, "/playbooks/incident/copy", {"csrf": token, "new_id": ""})
    assert status == 303 and location == "/playbooks/incident-copy/edit"
    status, html = await get(alice, world, location)
    assert status == 200 and 'id="editor"' in html and "Copy of Incident response" in html


async def test_improve_the_playbook_proposes_the_item_added_by_hand(world: World) -> None:
    alice = await make_admin(world)
    assert world.bot.ctx is not None
    token = await csrf_of(alice, world, "/playbooks")
    # Only editable playbooks can be improved: copy the file-managed one and run the copy.
    status, _, _ = await post(alice, world, "/playbooks/onboarding/copy", {"csrf": token, "new_id": "onb"})
    assert status == 303
    run = await start(world, "onb", "Globex")
    channel = (await world.run_json(run["id"]))[1]["channel_id"]
    status, body = await world["alice"].command(channel, "/playbook add 1 Book the training")
    assert status == 200, body
    await world.settle()
    status, _, _ = await post(alice, world, f"/runs/{run['id']}/finish", {"csrf": token, "confirm": "1"})
    assert status == 303
    await world.settle()
    status, html = await get(alice, world, f"/runs/{run['id']}")
    assert f'href="/playbooks/onb/improve?run={run["id"]}"' in html
    bob = await world.browser("bob")  # bob may not edit: no button, and the page is refused
    status, html = await get(bob, world, f"/runs/{run['id']}")
    assert status == 200 and "Improve the playbook" not in html
    status, _ = await get(bob, world, f"/playbooks/onb/improve?run={run['id']}")
    assert status == 403
    status, html = await get(alice, world, f"/playbooks/onb/improve?run={run['id']}")
    assert status == 200 and "Book the training" in html
    fields = editor_fields(html)
    chosen = [k for k in fields if k.startswith("proposal.")]
    assert len(chosen) == 1 and "Book the training" in fields[chosen[0]]
    status, location, body = await submit(alice, world, "/playbooks/onb/edit", {**fields, "op": "save"})
    assert status == 303, body
    version = await world.bot.ctx.db.run(store.current_version, "onb")
    assert version is not None and version.source == "improve" and run["id"] in version.note
    status, html = await get(alice, world, "/playbooks/onb")
    assert f'improved from <a href="/runs/{run["id"]}">' in html
    # The next run includes it; the finished one keeps its own version.
    nxt = await start(world, "onb", "Initech")
    status, found = await world.run_json(nxt["id"])
    assert "Book the training" in [i["title"] for i in found["checklists"][0]["items"]]


async def test_forged_and_unauthorised_posts_change_nothing(world: World) -> None:
    alice = await make_admin(world)
    token = await csrf_of(alice, world, "/playbooks")
    await post(alice, world, "/playbooks/onboarding/copy", {"csrf": token, "new_id": "onb"})
    # Without the CSRF token, or from another site: refused.
    status, _, _ = await post(alice, world, "/playbooks/onb/edit", {"title": "Forged", "op": "save"})
    assert status == 403
    status, _, _ = await post(alice, world, "/playbooks/onb/edit", {"csrf": token, "title": "Forged", "op": "save"},
                              origin="https://evil.example")
    assert status == 403
    status, _, _ = await post(alice, world, "/playbooks/validate", {"title": "x"})
    assert status == 403
    status, _, _ = await post(alice, world, "/playbooks/onb/archive", {})
    assert status == 403
    # Bob (no admin) may not edit, archive or create, even with his own token.
    bob = await world.browser("bob")
    bob_token = await csrf_of(bob, world, "/playbooks")
    for path in ("/playbooks/onb/edit", "/playbooks/onb/archive", "/playbooks/new", "/playbooks/onb/copy"):
        status, _, _ = await post(bob, world, path, {"csrf": bob_token, "title": "Forged", "op": "save",
                                                      "id": "forged", "new_id": "forged"})
        assert status == 403, path
    assert world.bot.ctx is not None
    assert [v.number for v in await world.bot.ctx.db.run(store.list_versions, "onb")] == [1]
    assert await world.bot.ctx.db.run(store.get_playbook, "forged") is None
    assert "onb" in world.bot.ctx.playbooks


async def test_chat_links_to_the_playbook_pages(world: World) -> None:
    status, body = await world["bob"].command(world.town_square, "/playbook playbooks")
    assert status == 200, body
    text = json.dumps(body)
    links = set(re.findall(r"http://127\.0\.0\.1:\d+(/playbooks/[a-z0-9_-]+)", text)) or set(
        re.findall(r"(/playbooks/[a-z0-9_-]+)", text))
    assert "/playbooks/incident" in links, text
    bob = await world.browser("bob")
    for link in links:
        status, _ = await get(bob, world, link)
        assert status == 200, link
