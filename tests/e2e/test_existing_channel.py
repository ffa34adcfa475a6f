"""Runs in an existing channel (`channel_mode = "existing"`): the run's overview and checklists are posted
in a named channel or the one it was started from, no channel is created, several runs may share one,
and the bot never archives such a channel (not on a failed start, not on finish)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from storage import runs as runs_rows
from storage import starts
from tests.conftest import attachments_text
from tests.e2e.conftest import World
from tests.e2e.test_run_start_errors import retry_starts
from tests.e2e.test_status_updates import dialog_count, open_dialog_for

OPS = """
title = "Ops room check"
team = "eng"
channel_mode = "existing"
channel = "ops-room"
category = "Incidents"
members = ["bob"]

[[checklists]]
title = "Checks"
  [[checklists.items]]
  title = "Look at the graphs"
  [[checklists.items]]
  title = "Page the on-call"
"""

HERE = """
title = "Quick triage"
channel_mode = "existing"

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Say what broke"
  [[checklists.items]]
  title = "Say who is on it"
"""

# A run that makes its own channel and archives it on finish; "Quick triage" runs may join that channel.
ARCHIVING = """
title = "War room"
private_channel = false
channel_name = "war {name}"
category = ""
archive_channel_on_finish = true
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"ops": OPS, "here": HERE, "warroom": ARCHIVING}}


async def make_channel(world: World, who: str, name: str, kind: str = "O") -> str:
    status, channel, _ = await world[who].api.post("/channels", {"team_id": world.team_id, "name": name,
                                                                 "display_name": name.title(), "type": kind})
    assert status == 201, channel
    return str(channel["id"])


async def started(world: World, who: str, channel_id: str, text: str) -> None:
    status, body = await world[who].command(channel_id, text)
    assert status == 200, body
    assert "Starting" in body["text"], body
    await world.settle()


def bot_posts(world: World, posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in posts if p["user_id"] == world.bot_user_id and not p["type"]]


async def run_named(world: World, name: str) -> dict[str, Any]:
    _, found = await world.runs_json("alice")
    return next(r for r in found["items"] if r["name"] == name)


async def told(world: World, who: str, words: str) -> str:
    event = await world[who].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                        and words in json.loads(e["data"]["post"])["message"])
    return str(json.loads(event["data"]["post"])["message"])


async def test_a_run_in_a_named_channel_posts_there_creates_no_channel_and_its_buttons_work(world: World) -> None:
    ops = await make_channel(world, "alice", "ops-room")
    before = set(world.sb.state.channels)
    status, body = await world["alice"].command(world.town_square, "/playbook run ops Disk full")
    assert status == 200 and "posted in ~ops-room" in body["text"], body
    await world.settle()
    assert set(world.sb.state.channels) == before  # no channel created
    run = await run_named(world, "Disk full")
    assert run["channel_id"] == ops and run["status"] == "in_progress"
    assert "~ops-room" in await told(world, "alice", "has started")

    posts = bot_posts(world, await world.posts(ops))
    assert "Disk full" in posts[0]["message"]
    checks = next(p for p in posts if "Checks" in p["message"])
    # bob is invited as in any run: added to the channel, and a participant; the bot joined it.
    _, members, _ = await world.admin.get(f"/channels/{ops}/members")
    ids = {m["user_id"]: m["roles"].split() for m in members}
    assert world["bob"].id in ids and world.bot_user_id in ids
    status, body = await world["bob"].click(checks["id"], "check0")
    assert status == 200, body
    await world.settle()
    after = await world.post(checks["id"])
    assert "1/2 done" in attachments_text(after["props"])
    _, data = await world.run_json(run["id"])
    assert data["checklists"][0]["items"][0]["state"] == "closed"
    # The channel stays where people keep it: not filed under the playbook's category.
    for name in ("alice", "bob"):
        person = world[name]
        _, cats, _ = await person.api.get(f"/users/{person.id}/teams/{world.team_id}/channels/categories")
        assert not any(c["display_name"] == "Incidents" for c in cats["categories"]), name


async def test_runs_started_where_they_are_typed_share_the_channel_and_commands_choose_with_run(
        world: World) -> None:
    ops = await make_channel(world, "alice", "ops-room")
    status, body = await world["alice"].command(ops, "/playbook run here First")
    assert status == 200 and "posted in this channel" in body["text"], body
    await world.settle()
    # The second through the "Run a playbook" dialog, opened in the same channel.
    since = len(world["alice"].events)
    status, body = await world["alice"].command(ops, "/playbook run")
    assert status == 200, body
    dialog = await open_dialog_for(world, "alice", seen=sum(1 for e in world["alice"].events[:since]
                                                                 if e.get("event") == "open_dialog"))
    status, body = await world["alice"].submit_dialog(dialog, ops, world.team_id,
                                                      {"playbook": "here", "name": "Second"})
    assert status == 200 and not (body or {}).get("errors"), body
    await world.settle()
    first, second = await run_named(world, "First"), await run_named(world, "Second")
    assert first["channel_id"] == second["channel_id"] == ops
    assert len([p for p in bot_posts(world, await world.posts(ops)) if "Steps" in p["message"]]) == 2

    status, body = await world["alice"].command(ops, "/playbook check 1.1")
    assert status == 200 and "several runs in progress" in body["text"], body
    assert "First" in body["text"] and "Second" in body["text"]
    status, body = await world["alice"].command(ops, "/playbook check 1.1 --run Second")
    assert status == 200, body
    await world.settle()
    _, data = await world.run_json(second["id"])
    assert data["checklists"][0]["items"][0]["state"] == "closed"
    _, data = await world.run_json(first["id"])
    assert data["checklists"][0]["items"][0]["state"] == "open"

    # The API and the web view list both runs of the channel.
    _, here = await world.runs_json("alice", f"?channel_id={ops}")
    assert {r["name"] for r in here["items"]} == {"First", "Second"}
    browser = await world.browser("alice")
    async with browser.get(f"{world.bot.url}/runs") as response:
        page = await response.text()
    assert response.status == 200 and "First" in page and "Second" in page

    # Joining the shared channel does not enrol anyone in its runs; /playbook join does.
    status, _, _ = await world.admin.post(f"/channels/{ops}/members", {"user_id": world["dave"].id})
    assert status == 201
    await world.settle()
    _, data = await world.run_json(first["id"])
    assert world["dave"].id not in data["participant_ids"]


@pytest.mark.parametrize(("owner", "kind", "reason"), [
    ("carol", "P", "not a member of it"),  # a private channel alice is not in (the bot, an admin, sees it)
    ("carol", "O", "not a member of it"),  # a public one she has not joined
    ("", "", "no channel ~ops-room in this team that I can see"),
])
async def test_a_starter_outside_the_channel_is_refused_and_nothing_is_left(
        world: World, owner: str, kind: str, reason: str) -> None:
    ops = await make_channel(world, owner, "ops-room", kind) if owner else ""
    channels = set(world.sb.state.channels)
    status, body = await world["alice"].command(world.town_square, "/playbook run ops Disk full")
    assert status == 200, body
    await world.settle()
    text = await told(world, "alice", "could not be started")
    assert reason in text and "Nothing was left behind" in text, text
    assert set(world.sb.state.channels) == channels
    _, found = await world.runs_json("alice")
    assert found["total"] == 0
    assert await world.bot.ctx.db.run(starts.unfinished) == []
    assert await world.bot.ctx.db.run(runs_rows.runs_to_sweep, 0) == []  # no run row at all
    if ops:
        assert not bot_posts(world, await world.posts(ops, who="carol"))
        _, members, _ = await world.admin.get(f"/channels/{ops}/members")
        assert {m["user_id"] for m in members} == {world["carol"].id}


async def test_a_failure_during_the_start_removes_its_posts_and_never_archives_the_channel(world: World) -> None:
    ops = await make_channel(world, "alice", "ops-room")
    await world["alice"].api.post("/posts", {"channel_id": ops, "message": "the room's own talk"})
    # The overview goes through; the checklist post is refused for good (403 is final at once).
    world.sb.fail("POST", r"/api/v4/posts", status=403, times=1, after=1)
    status, body = await world["alice"].command(world.town_square, "/playbook run ops Disk full")
    assert status == 200, body
    await world.settle()
    world.sb.clear_faults()
    text = await told(world, "alice", "could not be started")
    assert "removed; the channel itself was left as it was" in text, text
    assert "archived" not in text
    status, channel, _ = await world.admin.get(f"/channels/{ops}")
    assert status == 200 and channel["delete_at"] == 0
    posts = await world.posts(ops)
    assert [p["message"] for p in posts if not p["type"]] == ["the room's own talk"]
    _, found = await world.runs_json("alice")
    assert found["total"] == 0
    # The deleted posts' events do not bring them back (the sweep leaves a failed run alone).
    sweeper = world.bot.ctx.jobs["reconcile"]
    await sweeper.sweep("test")  # type: ignore[attr-defined]
    assert [p["message"] for p in await world.posts(ops) if not p["type"]] == ["the room's own talk"]


async def finish(world: World, channel_id: str, run_name: str, *, confirm: bool) -> None:
    """`/playbook finish --run`; with open items (`confirm`) Mattermost opens the confirmation dialog."""
    seen = dialog_count(world, "alice")
    status, body = await world["alice"].command(channel_id, f'/playbook finish --run "{run_name}"')
    assert status == 200, body
    await world.settle()
    if confirm:
        dialog = await open_dialog_for(world, "alice", seen=seen)
        status, body = await world["alice"].submit_dialog(dialog, channel_id, world.team_id, {})
        assert status == 200 and not (body or {}).get("error"), body
        await world.settle()
    _, found = await world.runs_json("alice", "?status=finished")
    assert run_name in {r["name"] for r in found["items"]}


async def test_finishing_never_archives_a_channel_a_run_shares_or_did_not_create(world: World) -> None:
    await started(world, "alice", world.town_square, "/playbook run warroom Outage")
    war = (await run_named(world, "Outage"))["channel_id"]
    await started(world, "alice", war, "/playbook run here Follow-up")
    assert (await run_named(world, "Follow-up"))["channel_id"] == war

    # The war room's own run asks for its channel to be archived, but another run still works in it.
    await finish(world, war, "Outage", confirm=False)
    _, channel, _ = await world.admin.get(f"/channels/{war}")
    assert channel["delete_at"] == 0
    # The run that joined it never archives it.
    await finish(world, war, "Follow-up", confirm=True)
    _, channel, _ = await world.admin.get(f"/channels/{war}")
    assert channel["delete_at"] == 0
    run = await world.bot.ctx.db.run(runs_rows.get_run, (await run_named(world, "Follow-up"))["id"])
    assert run is not None and run.existing_channel and not run.archive_on_finish


@pytest.mark.parametrize("world_options", [{"bot_roles": "system_user system_admin", "playbooks": {"ops": OPS},
                                            "env": {"BOT_MATTERMOST_RETRIES": "0"}}])
async def test_a_post_made_but_not_answered_is_found_again_not_posted_twice(world: World) -> None:
    """The resumed start finds the checklist post by its marker among the shared channel's posts."""
    ops = await make_channel(world, "alice", "ops-room")
    world.sb.fail("POST", r"/api/v4/posts", status=500, times=1, after=1, handled=True)
    await started(world, "alice", world.town_square, "/playbook run ops Disk full")
    await world["alice"].api.post("/posts", {"channel_id": ops, "message": "meanwhile, in the room"})
    await retry_starts(world)
    run = await run_named(world, "Disk full")
    assert run["status"] == "in_progress" and run["channel_id"] == ops
    posts = bot_posts(world, await world.posts(ops))
    assert len([p for p in posts if "Checks" in p["message"]]) == 1
    assert len([p for p in posts if "Disk full" in p["message"]]) == 1
