"""Finishing a run (with its confirmation), restoring it, its retrospective and its timeline, as people do it."""
from __future__ import annotations

import json

from tests.conftest import attachments_text
from tests.e2e.conftest import World
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_status_updates import MIN, dm_texts, follow, open_dialog_for, reminders_in, run_due

DAY = 24 * 60 * MIN


async def thread_replies(world: World, who: str = "alice") -> list[str]:
    town = await world.posts(world.town_square)
    root = next(p for p in town if p["user_id"] == world.bot_user_id and "Database down" in p["message"])
    status, thread, _ = await world[who].api.get(f"/posts/{root['id']}/thread")
    assert status == 200
    return [thread["posts"][pid]["message"] for pid in thread["order"] if pid != root["id"]]


async def finish_with_confirmation(world: World, run: dict) -> None:
    alice = world["alice"]
    status, body = await alice.command(run["channel_id"], "/playbook finish")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "alice")
    assert dialog["dialog"]["callback_id"] == "finish_run"
    assert "5 open checklist items" in dialog["dialog"]["introduction_text"]
    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id, {})
    assert status == 200 and not (body or {}).get("error"), body
    await world.settle()


async def test_finish_asks_first_then_tells_everyone_and_stops_status_reminders(world: World) -> None:
    run = await start_incident(world)
    await follow(world, run["id"], "dave")
    await finish_with_confirmation(world, run)

    status, body = await world.run_json(run["id"])
    assert body["status"] == "finished" and body["finished_at"]
    assert body["reminder"]["next_at"] is None
    assert "run_finished" in [e["type"] for e in body["timeline"]]

    posts = await world.posts(run["channel_id"])
    assert any("marked **Database down** as finished" in p["message"] for p in posts)
    assert any("as finished" in m for m in await thread_replies(world))
    assert any("Run finished" in t for t in await dm_texts(world, "dave"))
    # The checklists and the overview lose their buttons; a retrospective reminder asks for it.
    bot_posts = [p for p in posts if p["user_id"] == world.bot_user_id]
    triage = next(p for p in bot_posts if "Triage" in p["message"])
    assert all("actions" not in a for a in triage["props"]["attachments"])
    overview = next(p for p in bot_posts if "Progress" in attachments_text(p.get("props")))
    assert "Finished" in attachments_text(overview["props"])
    assert all("actions" not in a for a in overview["props"]["attachments"])
    retro = [p for p in bot_posts if "retrospective" in p["message"] and p["props"].get("attachments")]
    assert len(retro) == 1
    assert [a["name"] for a in retro[0]["props"]["attachments"][0]["actions"]] == [
        "Fill in the retrospective", "No retrospective"]

    # No more status reminders; the retrospective reminder repeats daily.
    world.clock.advance(30 * MIN)
    assert await run_due(world) == 0
    world.clock.advance(DAY - 30 * MIN)
    assert await run_due(world) == 1
    posts = await world.posts(run["channel_id"])
    assert len([p for p in posts if "fill in its retrospective" in p["message"]]) == 2

    # Finishing twice changes nothing.
    status, body = await world["alice"].command(run["channel_id"], "/playbook finish --run \"Database down\"")
    assert status == 200
    assert body["text"].startswith("**Database down** is finished (since "), body
    assert '`/playbook restore --run "Database down"` reopens it' in body["text"]
    # In the run's channel, without naming it: the run there is finished.
    status, body = await world["alice"].command(run["channel_id"], "/playbook finish")
    assert body["text"].startswith("The run in this channel, **Database down**, is finished"), body


async def test_only_the_owner_finishes_from_the_overview_button(world: World) -> None:
    run = await start_incident(world)
    posts = await world.posts(run["channel_id"])
    overview = next(p for p in posts if p["user_id"] == world.bot_user_id
                    and "Progress" in attachments_text(p.get("props")))
    assert [a["name"] for a in overview["props"]["attachments"][0]["actions"]] == ["Post update", "Edit run", "Finish"]

    status, body = await world["bob"].click(overview["id"], "overviewfinish")
    assert status == 200, body
    await world.settle()
    await world["bob"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                  and "owner" in json.loads(e["data"]["post"])["message"])
    status, body = await world.run_json(run["id"])
    assert body["status"] == "in_progress"

    status, body = await world["alice"].click(overview["id"], "overviewfinish")
    assert status == 200, body
    dialog = await open_dialog_for(world, "alice")
    assert dialog["dialog"]["callback_id"] == "finish_run"


async def test_retrospective_is_prefilled_published_and_its_reminders_stop(world: World) -> None:
    run = await start_incident(world)
    await finish_with_confirmation(world, run)
    alice = world["alice"]
    status, body = await alice.command(run["channel_id"], "/playbook retro")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "alice", seen=1)
    assert dialog["dialog"]["elements"][0]["default"] == "## What happened"

    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id, {"text": "  "})
    assert "text" in body["errors"]
    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id,
                                             {"text": "## What happened\nA full disk."})
    assert status == 200 and not (body or {}).get("errors"), body
    await world.settle()
    posts = await world.posts(run["channel_id"])
    retro = [p for p in posts if "Retrospective for Database down" in p["message"]]
    assert len(retro) == 1 and "A full disk." in attachments_text(retro[0]["props"]), retro
    assert any("A full disk." in m for m in await thread_replies(world))
    status, body = await world.run_json(run["id"])
    assert "retrospective_published" in [e["type"] for e in body["timeline"]]
    world.clock.advance(2 * DAY)
    assert await run_due(world) == 0

    # Published again: the same post now shows the new text (as the form said), and the timeline has
    # one "updated" entry beside the first "published".
    status, body = await alice.command(run["channel_id"], "/playbook retro")
    await world.settle()
    dialog = await open_dialog_for(world, "alice", seen=2)
    assert "publishing again replaces it" in dialog["dialog"]["introduction_text"]
    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id,
                                             {"text": "## What happened\nA full disk, and no alert."})
    assert status == 200 and not (body or {}).get("errors"), body
    await world.settle()
    posts = await world.posts(run["channel_id"])
    again = [p for p in posts if "Retrospective for Database down" in p["message"]]
    assert [p["id"] for p in again] == [retro[0]["id"]], again
    assert "no alert" in attachments_text(again[0]["props"]) and "Updated by @alice" in str(again[0]["props"])
    status, body = await world.run_json(run["id"])
    kinds = [e["type"] for e in body["timeline"]]
    assert kinds.count("retrospective_published") == 1 and kinds.count("retrospective_updated") == 1


async def test_no_retrospective_button_stops_the_reminders(world: World) -> None:
    run = await start_incident(world)
    await finish_with_confirmation(world, run)
    posts = await world.posts(run["channel_id"])
    retro = next(p for p in posts if "fill in its retrospective" in p["message"])
    status, body = await world["bob"].click(retro["id"], "retrocancel")
    assert status == 200, body
    await world.settle()
    posts = await world.posts(run["channel_id"])
    assert any("needs no retrospective" in p["message"] for p in posts)
    world.clock.advance(3 * DAY)
    assert await run_due(world) == 0
    status, body = await world.run_json(run["id"])
    assert "retrospective_cancelled" in [e["type"] for e in body["timeline"]]


async def test_restore_typed_elsewhere_answers_there(world: World) -> None:
    run = await start_incident(world)
    await follow(world, run["id"], "dave")
    status, body = await world["alice"].command(world.town_square, '/playbook restore --run "Database down"')
    assert status == 200
    assert body["text"].startswith("**Database down** is still in progress, so `/playbook restore` does not"), body
    await finish_with_confirmation(world, run)
    status, body = await world["alice"].command(world.town_square, '/playbook restore --run "Database down"')
    assert status == 200
    assert body["text"] == "Reopening **Database down**: its channel and broadcast channels are told there.", body
    await world.settle()
    status, data = await world.run_json(run["id"])
    assert data["status"] == "in_progress"
    # A follower hears of the finish and of the reopening.
    texts = await dm_texts(world, "dave")
    assert any("Run finished" in t for t in texts)
    assert any(t.startswith(":arrows_counterclockwise: @alice reopened **Database down**, a run you follow")
               for t in texts), texts


async def test_restore_reopens_the_run_and_its_reminders(world: World) -> None:
    run = await start_incident(world)
    await finish_with_confirmation(world, run)
    status, body = await world["alice"].command(run["channel_id"], "/playbook restore")
    assert status == 200, body
    await world.settle()
    status, body = await world.run_json(run["id"])
    assert body["status"] == "in_progress" and body["finished_at"] is None
    assert "run_restored" in [e["type"] for e in body["timeline"]]
    posts = await world.posts(run["channel_id"])
    assert any("reopened **Database down**" in p["message"] for p in posts)
    triage = next(p for p in posts if p["user_id"] == world.bot_user_id and "Triage" in p["message"])
    assert all(a.get("actions") for a in triage["props"]["attachments"])
    # The retrospective reminder belongs to finished runs; status reminders are back.
    world.clock.advance(30 * MIN)
    assert await run_due(world) == 1
    posts = await world.posts(run["channel_id"])
    assert len([p for p in posts if "fill in its retrospective" in p["message"]]) == 1


async def test_timeline_is_a_readable_table(world: World) -> None:
    run = await start_incident(world)
    world.clock.advance(30 * MIN)
    await run_due(world)
    status, body = await world["alice"].command(run["channel_id"], "/playbook timeline")
    assert status == 200, body
    text = body["text"]
    assert "| When | Event | By | What |" in text
    assert "Run started" in text and "Reminder" in text and "@alice" in text


async def test_every_timeline_entry_says_what_changed(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    alice = world["alice"]
    status, body = await alice.command(ch, "/playbook assign 1.1 @bob")
    assert status == 200, body
    status, body = await alice.command(ch, "/playbook check 1.2")
    assert status == 200, body
    await alice.command(ch, "/playbook update")
    await world.settle()
    dialog = await open_dialog_for(world, "alice")
    status, body = await alice.submit_dialog(dialog, ch, world.team_id, {
        "message": "**Impact:** checkout is down\n**Next steps:** failover", "reminder": "1h", "finish": False})
    assert status == 200, body
    await world.settle()
    world.clock.advance(60 * MIN)
    assert await run_due(world) == 1
    reminder = reminders_in(await world.posts(ch), world.bot_user_id)[-1]
    snooze = next(a["id"] for a in reminder["props"]["attachments"][0]["actions"] if a["id"].startswith("snooze"))
    status, body = await world["bob"].click(reminder["id"], snooze)
    assert status == 200, body
    await world.settle()
    status, body = await alice.command(ch, "/playbook timeline")
    rows = {line.split(" | ")[1]: line for line in body["text"].splitlines() if line.startswith("| 20")}
    assert rows["Assignee changed"].endswith("| @alice | **Acknowledge the page**: @alice → @bob |"), rows
    assert "→ done |" in rows["Item changed"] and "open →" in rows["Item changed"], rows
    assert "| **Impact:** checkout is down · next update in 1 hour |" in rows["Status update"]
    assert "| @bob | for 15 minutes, until 20" in rows["Reminder snoozed"] and " UTC |" in rows["Reminder snoozed"]
    assert "900 s" not in body["text"] and "3600 s" not in body["text"]
    dates = [line.split(" | ")[0][2:] for line in rows.values()]
    assert all(len(d) == len("2026-12-01 21:29 UTC") and d.endswith(" UTC") for d in dates), dates
