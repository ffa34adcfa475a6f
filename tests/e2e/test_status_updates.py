"""Status updates and their reminders, as people live them: the clock moves, reminders arrive (only
then), the owner answers through the dialog, stakeholders read it in the broadcast thread and their DMs,
and a restarted bot neither loses nor repeats a reminder."""
from __future__ import annotations

import json
from typing import Any

from bot.app import BotApp
from storage.models import Follower
from tests.e2e.conftest import World
from tests.e2e.test_run_start import start_incident

MIN = 60


async def follow(world: World, run_id: str, name: str) -> None:
    """`/playbook follow` belongs to another module; insert the row as it would."""
    assert world.bot.ctx is not None
    await world.bot.ctx.db.run(lambda s: s.add(Follower(run_id=run_id, user_id=world[name].id)))


async def run_due(world: World) -> int:
    assert world.bot.scheduler is not None
    sent = await world.bot.scheduler.run_due()
    await world.settle()
    return sent


def reminders_in(posts: list[dict[str, Any]], bot_id: str) -> list[dict[str, Any]]:
    return [p for p in posts if p["user_id"] == bot_id and "status update" in p["message"]
            and (p.get("props") or {}).get("attachments")
            and any(a["id"].startswith("snooze") for a in p["props"]["attachments"][0].get("actions", []))]


async def dm_texts(world: World, name: str) -> list[str]:
    person = world[name]
    status, channel, _ = await person.api.post("/channels/direct", [person.id, world.bot_user_id])
    assert status in (200, 201), channel
    posts = await world.posts(channel["id"], who=name)
    return [p["message"] for p in posts]


async def open_dialog_for(world: World, name: str, seen: int = 0) -> dict[str, Any]:
    """The (seen+1)-th dialog opened on this person's WebSocket, as the web app receives it."""
    person = world[name]

    def nth(event: dict[str, Any]) -> bool:
        return event.get("event") == "open_dialog" and sum(
            1 for e in person.events[: person.events.index(event) + 1] if e.get("event") == "open_dialog") > seen

    event = await person.wait_event(nth)
    return json.loads(event["data"]["dialog"])


def dialog_count(world: World, name: str) -> int:
    return sum(1 for e in world[name].events if e.get("event") == "open_dialog")


async def test_reminders_come_on_time_repeat_once_per_interval_and_tell_followers(world: World) -> None:
    run = await start_incident(world)
    await follow(world, run["id"], "dave")
    assert run["reminder"]["interval_s"] == 1800
    created = world.clock.now_ms()

    world.clock.advance(29 * MIN)
    assert await run_due(world) == 0
    assert reminders_in(await world.posts(run["channel_id"]), world.bot_user_id) == []

    world.clock.advance(1 * MIN)
    assert await run_due(world) == 1
    assert await run_due(world) == 0  # a second wake-up at the same moment posts nothing
    reminders = reminders_in(await world.posts(run["channel_id"]), world.bot_user_id)
    assert len(reminders) == 1
    assert "@alice" in reminders[0]["message"] and "overdue" not in reminders[0]["message"]
    names = [a["name"] for a in reminders[0]["props"]["attachments"][0]["actions"]]
    assert names == ["Post update", "Snooze 15m", "Snooze 1h", "Snooze 4h", "Snooze 1d"]
    assert any("overdue" in t and "Database down" in t for t in await dm_texts(world, "dave"))

    # Nobody answers: one more per interval, saying how late it is; never two within one interval.
    world.clock.advance(29 * MIN)
    assert await run_due(world) == 0
    world.clock.advance(1 * MIN)
    assert await run_due(world) == 1
    reminders = reminders_in(await world.posts(run["channel_id"]), world.bot_user_id)
    assert len(reminders) == 2
    assert "30 minutes overdue" in reminders[1]["message"]

    status, body = await world.run_json(run["id"])
    assert status == 200
    assert [e["type"] for e in body["timeline"]].count("reminder_sent") == 2
    assert body["reminder"]["next_at"] is not None
    assert body["reminder"]["next_at"] > body["created_at"]
    assert world.clock.now_ms() - created == 60 * MIN * 1000


async def test_update_dialog_posts_everywhere_and_rearms_the_reminder(world: World) -> None:
    run = await start_incident(world)
    await follow(world, run["id"], "dave")
    alice = world["alice"]
    status, body = await alice.command(run["channel_id"], "/playbook update")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "alice")
    elements = {e["name"]: e for e in dialog["dialog"]["elements"]}
    assert elements["message"]["default"] == "**Impact:**\n**Next steps:**"  # the playbook's template
    assert elements["reminder"]["default"] == "30m"
    assert elements["finish"]["type"] == "bool"

    # Wrong input stays in the dialog with the field's own message.
    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id,
                                             {"message": "   ", "reminder": "soon", "finish": False})
    assert status == 200, body
    assert set(body["errors"]) == {"message", "reminder"}

    world.clock.advance(10 * MIN)
    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id, {
        "message": "**Impact:** checkout is down\n**Next steps:** failover", "reminder": "1h", "finish": False})
    assert status == 200, body
    assert not body or not body.get("errors"), body
    await world.settle()

    posts = await world.posts(run["channel_id"])
    assert any("checkout is down" in p["message"] and "@alice" in p["message"] for p in posts)
    town = await world.posts(world.town_square)
    root = next(p for p in town if p["user_id"] == world.bot_user_id and "Database down" in p["message"])
    status, thread, _ = await alice.api.get(f"/posts/{root['id']}/thread")
    assert status == 200
    replies = [thread["posts"][pid] for pid in thread["order"] if pid != root["id"]]
    assert any("checkout is down" in p["message"] for p in replies)
    assert any("checkout is down" in t for t in await dm_texts(world, "dave"))

    status, body = await world.run_json(run["id"])
    assert [u["message"] for u in body["status_updates"]] == [
        "**Impact:** checkout is down\n**Next steps:** failover"]
    assert body["status_updates"][0]["author_id"] == alice.id
    assert body["reminder"]["interval_s"] == 3600
    assert "status_updated" in [e["type"] for e in body["timeline"]]

    # The reminder now counts an hour from the update: not at the old 30 minutes.
    world.clock.advance(20 * MIN)  # 30 min after start
    assert await run_due(world) == 0
    world.clock.advance(39 * MIN)
    assert await run_due(world) == 0
    world.clock.advance(1 * MIN)
    assert await run_due(world) == 1

    # The next dialog is prefilled with the last update.
    await alice.command(run["channel_id"], "/playbook update")
    await world.settle()
    dialog = await open_dialog_for(world, "alice", seen=1)
    elements = {e["name"]: e for e in dialog["dialog"]["elements"]}
    assert "checkout is down" in elements["message"]["default"]
    assert elements["reminder"]["default"] == "1h"


async def test_reminder_buttons_open_the_dialog_and_snooze_moves_the_reminder(world: World) -> None:
    run = await start_incident(world)
    world.clock.advance(30 * MIN)
    assert await run_due(world) == 1
    reminder = reminders_in(await world.posts(run["channel_id"]), world.bot_user_id)[0]

    status, body = await world["bob"].click(reminder["id"], "postupdate")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "bob")
    assert dialog["dialog"]["callback_id"] == "status_update"

    status, body = await world["bob"].click(reminder["id"], "snooze1h")
    assert status == 200, body
    await world.settle()
    # The reminder says so, for everyone, and keeps its buttons; its message is unchanged.
    snoozed = await world.post(reminder["id"])
    note = snoozed["props"]["attachments"][0]
    assert note["text"].startswith(":zzz: @bob snoozed this reminder for 1 hour: the next one comes "), note
    assert [a["id"] for a in note["actions"]][:2] == ["postupdate", "snooze15m"]
    assert snoozed["message"] == reminder["message"]
    status, run_body = await world.run_json(run["id"])
    assert run_body["reminder"]["interval_s"] == 1800  # snoozing moves the one reminder, not the interval
    world.clock.advance(30 * MIN)  # when the unsnoozed reminder would have come
    assert await run_due(world) == 0
    world.clock.advance(30 * MIN)
    assert await run_due(world) == 1
    assert "reminder_snoozed" in [e["type"] for e in (await world.run_json(run["id"]))[1]["timeline"]]

    # Dave is no participant of the private run: his snooze changes nothing.
    status, body = await world["dave"].click(reminder["id"], "snooze1d")
    assert status in (200, 403), body


async def test_update_with_reminder_off_stops_reminders(world: World) -> None:
    run = await start_incident(world)
    await world["alice"].command(run["channel_id"], "/playbook update")
    await world.settle()
    dialog = await open_dialog_for(world, "alice")
    status, body = await world["alice"].submit_dialog(dialog, run["channel_id"], world.team_id,
                                                      {"message": "All quiet.", "reminder": "off"})
    assert status == 200 and not (body or {}).get("errors"), body
    await world.settle()
    world.clock.advance(7 * 24 * 60 * MIN)
    assert await run_due(world) == 0
    status, body = await world.run_json(run["id"])
    assert body["reminder"]["next_at"] is None and body["reminder"]["interval_s"] == 0


async def restart(world: World) -> BotApp:
    """Stop the bot and start a new one on the same database (what `kill` and a restart do)."""
    old = world.bot
    await old.stop()
    new = BotApp(old.settings, clock=world.clock)
    await new.start()
    world.bot = new
    return new


async def test_restart_loses_and_doubles_nothing(world: World) -> None:
    run = await start_incident(world)
    world.clock.advance(29 * MIN)
    assert await run_due(world) == 0
    await world.bot.stop()
    world.clock.advance(5 * MIN)  # the reminder fell due while the bot was down
    new = BotApp(world.bot.settings, clock=world.clock)
    await new.start()  # reads the rows: one reminder in the past, woken at once
    world.bot = new
    await run_due(world)
    assert len(reminders_in(await world.posts(run["channel_id"]), world.bot_user_id)) == 1

    await restart(world)
    assert await run_due(world) == 0
    assert len(reminders_in(await world.posts(run["channel_id"]), world.bot_user_id)) == 1
    # The next one comes one interval after the late one, not in a burst.
    world.clock.advance(29 * MIN)
    assert await run_due(world) == 0
    world.clock.advance(1 * MIN)
    assert await run_due(world) == 1


async def test_anyone_who_sees_a_run_may_ask_its_owner_for_an_update_once_in_a_while(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    status, body = await world["bob"].command(ch, "/playbook request-update")
    assert status == 200 and body["text"] == "Asked @alice for a status update on **Database down** in its channel."
    await world.settle()
    asked = [p for p in await world.posts(ch) if "asks @alice for a status update" in p["message"]]
    assert len(asked) == 1 and asked[0]["message"].startswith(":raising_hand: @bob asks @alice"), asked
    status, body = await world["carol"].command(ch, "/playbook request-update")
    assert body["text"].startswith("Someone asked for a status update on **Database down** at "), body
    status, body = await world["alice"].command(ch, "/playbook request-update")
    assert body["text"].startswith("You own **Database down**"), body
    world.clock.advance(11 * MIN)
    status, body = await world["carol"].command(ch, "/playbook request-update")
    assert body["text"].startswith("Asked @alice"), body
    await world.settle()
    status, data = await world.run_json(run["id"])
    assert [e["type"] for e in data["timeline"]].count("update_requested") == 2
