"""Direct messages to the person a change is about: an item given to them, a run handed to them; each
can be turned off in `/playbook settings`."""
from __future__ import annotations

import json

from tests.conftest import attachments_text
from tests.e2e.conftest import World
from tests.e2e.test_commands import checklist_post
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_status_updates import dm_texts


async def test_an_assignee_is_told_with_a_link_unless_they_turned_it_off(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    triage = await checklist_post(world, ch, "Triage")
    status, body = await world["alice"].command(ch, "/playbook assign 1.2 @bob")
    assert status == 200, body
    await world.settle()
    texts = await dm_texts(world, "bob")
    assert any(t.startswith("@alice gave you **1.2** Open a bridge call in **Database down**") for t in
               [t.removeprefix(":pushpin: ") for t in texts]), texts
    assert any(f"/eng/pl/{triage['id']})" in t for t in texts), texts
    # Taking an item yourself, or assigning yourself, sends nothing.
    status, body = await world["alice"].command(ch, "/playbook assign 1.3 me")
    await world.settle()
    assert not [t for t in await dm_texts(world, "alice") if "gave you" in t]

    status, body = await world["bob"].command(ch, "/playbook settings assigned off")
    assert "Messages when you are given an item turned **off**" in body["text"], body
    assert "- Item given to you: **off**" in body["text"]
    before = len(await dm_texts(world, "bob"))
    status, body = await world["alice"].command(ch, "/playbook assign 2.1 @bob")
    assert status == 200, body
    await world.settle()
    assert len(await dm_texts(world, "bob")) == before


async def test_a_new_owner_is_told_and_gets_the_previous_owners_open_items(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    alice = world["alice"]
    await alice.command(ch, "/playbook assign 1.2 @bob")  # bob's stays bob's
    await alice.command(ch, "/playbook check 1.1")
    await alice.command(ch, "/playbook uncheck 1.1")  # open again, still alice's
    status, body = await alice.command(ch, "/playbook owner @carol")
    assert status == 200, body
    await world.settle()
    texts = await dm_texts(world, "carol")
    mine = [t for t in texts if "made you the owner of **Database down**" in t]
    assert mine and "1 open item of the previous owner is yours too: **Acknowledge the page**" in mine[0], texts
    status, data = await world.run_json(run["id"])
    assignees = {i["title"]: i["assignee_id"] for c in data["checklists"] for i in c["items"]}
    assert assignees["Acknowledge the page"] == world["carol"].id
    assert assignees["Open a bridge call"] == world["bob"].id
    triage = await checklist_post(world, ch, "Triage")
    assert "@carol" in attachments_text(triage["props"])
    status, body = await world["carol"].command(ch, "/playbook settings")
    assert "- Run handed to you: **on**" in body["text"]


async def test_at_its_due_time_an_item_shows_overdue_and_its_assignee_is_told_once(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    alice = world["alice"]
    await alice.command(ch, "/playbook assign 1.2 @bob")
    status, body = await alice.command(ch, "/playbook due 1.2 30m")
    assert status == 200 and "is now due" in body["text"], body
    await world.settle()
    due = world.bot.ctx.jobs["due"]
    assert await due.run_due() == 0  # not yet
    triage = await checklist_post(world, ch, "Triage")
    assert "(overdue)" not in attachments_text(triage["props"])
    world.clock.advance(30 * 60)  # seconds
    assert await due.run_due() == 2  # 1.2, and 1.1 (the playbook has it due 15 minutes in, alice's)
    await world.settle()
    triage = await checklist_post(world, ch, "Triage")
    line = next(t for t in attachments_text(triage["props"]).splitlines() if "**1.2**" in t)
    assert "**(overdue)**" in line, line
    told = [t for t in await dm_texts(world, "bob") if t.startswith(":alarm_clock:")]
    assert len(told) == 1 and told[0].startswith(":alarm_clock: **1.2** Open a bridge call in **Database down**"), told
    assert "and it is yours" in told[0] and "/playbook settings due off" in told[0]
    assert any(t.startswith(":alarm_clock: **1.1** Acknowledge the page in **Database down** has been due since")
               for t in await dm_texts(world, "alice"))
    # Once: another round (or another process) notices nothing more; a new due time is noticed again.
    assert await due.run_due() == 0
    await alice.command(ch, "/playbook due 1.2 1h")
    world.clock.advance(61 * 60)
    await world["bob"].command(ch, "/playbook settings due off")
    assert await due.run_due() == 1
    await world.settle()
    assert len([t for t in await dm_texts(world, "bob") if ":alarm_clock:" in t]) == 1


async def test_item_descriptions_are_shown_in_the_post_info_and_api(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    triage = await checklist_post(world, ch, "Triage")
    item = triage["props"]["attachments"][1]["text"]
    assert item.splitlines()[1:] == ["> SEV1: customers cannot check out. Page the **incident commander**.",
                                     "> SEV2: checkout is slow; @\u200bchannel is not needed."], item
    status, body = await world["alice"].command(ch, "/playbook info")
    assert ("- `1.2` Open a bridge call: SEV1: customers cannot check out. Page the **incident commander**. "
            "SEV2: checkout is slow;") in body["text"], body["text"]
    status, data = await world.run_json(run["id"])
    described = {i["title"]: i["description"] for c in data["checklists"] for i in c["items"]}
    assert described["Open a bridge call"].startswith("SEV1: customers cannot check out.")
    assert described["Acknowledge the page"] == ""


async def test_times_in_a_reply_are_in_the_readers_time_zone(world: World) -> None:
    bob = world["bob"]
    status, body, _ = await bob.api.put(f"/users/{bob.id}/patch", {"timezone": {
        "useAutomaticTimezone": "false", "manualTimezone": "Europe/Berlin", "automaticTimezone": ""}})
    assert status == 200 and body["timezone"]["manualTimezone"] == "Europe/Berlin", body
    run = await start_incident(world)
    ch = run["channel_id"]
    status, body = await bob.command(ch, "/playbook timeline")
    rows = [line for line in body["text"].splitlines() if line.startswith("| 20")]
    assert rows and all(r.split(" | ")[0].endswith((" CET", " CEST")) for r in rows), rows
    status, body = await world["alice"].command(ch, "/playbook timeline")
    rows = [line for line in body["text"].splitlines() if line.startswith("| 20")]
    assert rows and all(r.split(" | ")[0].endswith(" UTC") for r in rows), rows
    # Posts everyone reads stay in UTC.
    triage = await checklist_post(world, ch, "Triage")
    assert " UTC" in attachments_text(triage["props"]) and "CET" not in attachments_text(triage["props"])


async def test_people_who_join_later_take_part_and_get_the_welcome(world: World) -> None:
    run = await start_incident(world)  # alice owns it; bob and carol are members from the start
    ch = run["channel_id"]
    dave = world["dave"]

    def welcomed(name: str) -> list[str]:
        return [m for m in world[name].ephemerals() if m.startswith("Welcome to **Database down**")]

    # Added to the channel by alice in Mattermost itself (not through the bot).
    since = len(dave.events)
    status, body, _ = await world["alice"].api.post(f"/channels/{ch}/members", {"user_id": dave.id})
    assert status == 201, body
    # The bot hears of it on its WebSocket: the welcome reaching dave says it has acted.
    await dave.wait_event(lambda e: e.get("event") == "ephemeral_message" and json.loads(
        e["data"]["post"])["message"].startswith("Welcome to **Database down**"), since=since)
    await world.settle()
    status, data = await world.run_json(run["id"])
    assert dave.id in data["participant_ids"]
    kinds = [(e["type"], e.get("summary")) for e in data["timeline"]]
    assert ("participant_joined", "added to the channel") in kinds, kinds
    await world.settle()
    assert welcomed("dave") == ["Welcome to **Database down**.\n\nRead the runbook first."], dave.ephemerals()
    # Joining again, or the bot's own adds, welcome nobody twice.
    status, body = await dave.command(ch, "/playbook join")
    await world.settle()
    assert len(welcomed("dave")) == 1
    assert welcomed("bob") == []  # a starter saw the welcome post in the channel


async def test_an_assignee_hears_shortly_before_an_item_falls_due_and_again_when_it_does(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    alice = world["alice"]
    await alice.command(ch, "/playbook assign 1.2 @bob")
    status, body = await alice.command(ch, "/playbook due 1.2 40m")
    assert status == 200, body
    await world.settle()
    due = world.bot.ctx.jobs["due"]
    world.clock.advance(26 * 60)  # seconds: 14 minutes before
    await due.run_due()
    await world.settle()
    told = [t for t in await dm_texts(world, "bob") if t.startswith(":alarm_clock:")]
    assert len(told) == 1 and "**1.2** Open a bridge call in **Database down** is due in 14 minutes" in told[0], told
    await due.run_due()  # a second round (or process) gives no second heads-up
    world.clock.advance(14 * 60)
    await due.run_due()
    await world.settle()
    told = [t for t in await dm_texts(world, "bob") if t.startswith(":alarm_clock:")]
    assert len(told) == 2 and "is due now" in told[1], told
