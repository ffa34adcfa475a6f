"""Per-playbook access end to end: a private playbook never appears to someone outside it — not in the run
dialog, `/playbook run`, `/playbook playbooks`, the HTTP API, the runs page's filters or insights — while its
members use it as any other; and `finish = "owner"` keeps finishing to the run's owner through the overview
button, the command and the web form, where `finish = "participants"` lets participants do it."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import attachments_text
from tests.e2e.conftest import INCIDENT, ONBOARDING, World
from tests.e2e.test_status_updates import open_dialog_for
from tests.e2e.test_web_runs import csrf_of, get, post, start

SECRET = """
title = "Secret merger"
team = "eng"
private_channel = false
members = ["bob"]

[access]
members = ["bob"]
admins = ["alice"]
public = false
finish = "owner"

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Sign the papers"
"""

RELAY = """
title = "Relay"
team = "eng"
private_channel = false
members = ["bob"]

[access]
finish = "participants"

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Pass the baton"
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"incident": INCIDENT, "onboarding": ONBOARDING, "secret": SECRET, "relay": RELAY}}


async def dialog_choices(world: World, who: str) -> set[str]:
    person = world[who]
    since = len(person.events)
    status, body = await person.command(world.town_square, "/playbook run")
    assert status == 200, body
    event = await person.wait_event(lambda e: e.get("event") == "open_dialog", since=since)
    dialog = json.loads(event["data"]["dialog"])
    return {o["value"] for o in dialog["dialog"]["elements"][0]["options"]}


async def test_a_private_playbook_is_invisible_to_everyone_outside_it(world: World) -> None:
    # The run dialog: its members are offered it, dave is not.
    assert await dialog_choices(world, "alice") == {"incident", "onboarding", "secret", "relay"}
    assert await dialog_choices(world, "bob") == {"incident", "onboarding", "secret", "relay"}
    assert await dialog_choices(world, "dave") == {"incident", "onboarding", "relay"}

    # `/playbook run <id>` and by title: unknown to dave, in the same words as a playbook that is not there.
    for words in ("secret Merge", "Secret merger Merge", "secr"):
        status, body = await world["dave"].command(world.town_square, f"/playbook run {words}")
        assert status == 200 and "There is no playbook called" in body["text"], body
        assert "Secret" not in body["text"].replace(words.split()[0], "") and "`secret`" not in body["text"]
    status, nothing = await world["dave"].command(world.town_square, "/playbook run nosuch Merge")
    assert "Secret" not in nothing["text"]

    # `/playbook playbooks`
    status, body = await world["dave"].command(world.town_square, "/playbook playbooks")
    assert status == 200 and "Relay" in body["text"] and "Secret merger" not in body["text"], body
    status, body = await world["bob"].command(world.town_square, "/playbook playbooks")
    assert "Secret merger" in body["text"], body

    # Bob, a member, runs it: its run is in a public channel, yet dave never sees it or its playbook.
    run = await start(world, "secret", "Acme deal", who="bob")
    await start(world, "relay", "Leg one", who="bob")
    assert run["playbook"] == {"id": "secret", "title": "Secret merger"}
    _, dave_runs = await world.runs_json("dave")
    assert [r["name"] for r in dave_runs["items"]] == ["Leg one"]
    status, body = await world.run_json(run["id"], who="dave")
    assert status == 404, body
    _, carol_runs = await world.runs_json("carol")
    assert "Acme deal" not in [r["name"] for r in carol_runs["items"]]
    # Those in it do see it: its member (carol is not), its admin, and a system admin.
    _, alice_runs = await world.runs_json("alice")
    assert "Acme deal" in [r["name"] for r in alice_runs["items"]]

    # The web view: the runs list and its filter choices, the run page, insights and its selector.
    dave = await world.browser("dave")
    status, html = await get(dave, world, "/runs")
    assert status == 200 and "Leg one" in html
    assert "Acme deal" not in html and "Secret merger" not in html and 'value="secret"' not in html
    status, html = await get(dave, world, f"/runs/{run['id']}")
    assert status == 404
    status, html = await get(dave, world, "/insights")
    assert status == 200 and "Relay" in html
    assert "Secret merger" not in html and 'value="secret"' not in html
    status, html = await get(dave, world, "/insights?playbook=secret")
    assert "Secret merger" not in html and "Acme deal" not in html
    bob = await world.browser("bob")
    status, html = await get(bob, world, "/runs")
    assert "Acme deal" in html and 'value="secret"' in html
    status, html = await get(bob, world, "/insights")
    assert "Secret merger" in html


async def overview_of(world: World, run: dict[str, Any]) -> dict[str, Any]:
    posts = await world.posts(run["channel_id"], who="bob")
    return next(p for p in posts if p["user_id"] == world.bot_user_id
                and "Progress" in attachments_text(p.get("props")))


async def test_owner_only_finish_refuses_a_participant_everywhere(world: World) -> None:
    run = await start(world, "secret", "Acme deal")  # alice (its admin) owns it; bob takes part
    _, body = await world.run_json(run["id"])
    assert world["bob"].id in body["participant_ids"]

    # The overview's Finish button.
    overview = await overview_of(world, run)
    status, body = await world["bob"].click(overview["id"], "overviewfinish")
    assert status == 200, body
    await world.settle()
    await world["bob"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                  and "owner" in json.loads(e["data"]["post"])["message"])
    # The command, and the owner change it also guards.
    status, body = await world["bob"].command(run["channel_id"], "/playbook finish")
    assert status == 200 and "owner" in body["text"], body
    status, body = await world["bob"].command(run["channel_id"], "/playbook owner @bob")
    assert status == 200 and "owner" in body["text"] and "is now" not in body["text"], body
    # The web form.
    bob = await world.browser("bob")
    token = await csrf_of(bob, world, f"/runs/{run['id']}")
    status, _, html = await post(bob, world, f"/runs/{run['id']}/finish", {"csrf": token, "confirm": "1"})
    assert status == 403 and "owner" in html
    await world.settle()
    _, body = await world.run_json(run["id"])
    assert body["status"] == "in_progress" and body["owner_id"] == world["alice"].id


async def test_finish_by_participants_lets_a_participant_finish(world: World) -> None:
    run = await start(world, "relay", "Leg one")  # alice owns it; bob takes part
    status, body = await world["bob"].command(run["channel_id"], "/playbook finish")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "bob")
    assert dialog["dialog"]["callback_id"] == "finish_run"
    status, body = await world["bob"].submit_dialog(dialog, run["channel_id"], world.team_id, {})
    assert status == 200 and not (body or {}).get("error"), body
    await world.settle()
    assert (await world.run_json(run["id"]))[1]["status"] == "finished"
