"""Reminder posts once answered, and reminders whose claimer died: the real ReminderService, dispatcher and
storage over the fake gateway, with a FakeClock moved by the test."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.actions import FinishDialog, RetroDialog, UpdateDialog
from bot.router import DialogSubmission, NoReply
from handlers.reminders import ReminderService
from storage import reminders as updates
from storage import timeline as timeline_rows
from tests.handlers.commands_world import Env, make_env

MIN = 60


async def reminder_env(tmp_path: Path) -> Env:
    env = await make_env(tmp_path)
    # The reminders feature wired itself at start-up (its router's on_startup); the test runs rounds itself.
    assert isinstance(env.ctx.reminders, ReminderService) and env.ctx.reminders is env.app.scheduler
    return env


async def run_due(env: Env) -> int:
    assert env.app.scheduler is not None
    sent = await env.app.scheduler.run_due()
    await env.ctx.tasks.drain()
    return sent


async def submit(env: Env, callback_id: str, ref: Any, values: dict[str, Any], who: str = "alice") -> None:
    user = env.users[who]
    reply = await env.dispatcher.dialog(DialogSubmission(user.id, env.town.id, env.team_id, callback_id, ref,
                                                         values), env.ctx)
    assert isinstance(reply, NoReply), reply
    await env.ctx.tasks.drain()


def answer(env: Env, post_id: str) -> str:
    """What a reminder post says of how it was answered: its text stays, its attachment says it."""
    post = env.gw.world.posts[post_id]
    assert "status update" in post.message.lower() or "retrospective" in post.message.lower(), post.message
    return " ".join(att.get("text", "") for att in (post.props or {}).get("attachments", []))


def buttons(env: Env, post_id: str) -> list[str]:
    props = env.gw.world.posts[post_id].props or {}
    return [a["name"] for att in props.get("attachments", []) for a in att.get("actions", [])]


async def sent_post_ids(env: Env, run_id: str, kind: str = updates.STATUS) -> list[str]:
    events = await env.ctx.db.run(timeline_rows.timeline, run_id, readonly=True)
    return [e.details["post_id"] for e in events if e.type == "reminder_sent" and e.details.get("kind") == kind]


async def test_an_update_takes_the_buttons_off_every_unanswered_reminder_and_finishing_off_the_next(
        tmp_path: Path) -> None:
    env = await reminder_env(tmp_path)
    view = await env.start()
    run_id = view.run.id
    for _ in range(2):  # nobody answers: two reminders, both with their buttons
        env.clock.advance(30 * MIN)
        assert await run_due(env) == 1
    first, second = await sent_post_ids(env, run_id)
    assert buttons(env, first) == buttons(env, second) == ["Post update", "Snooze 15m", "Snooze 1h", "Snooze 4h",
                                                           "Snooze 1d"]

    await submit(env, "status_update", UpdateDialog(run_id), {"message": "Fixed the disk", "reminder": "30m"})
    for post_id in (first, second):
        assert buttons(env, post_id) == []
        assert answer(env, post_id) == (
            "Status update reminder for **Database down**: answered, @alice posted an update.")

    env.clock.advance(30 * MIN)
    assert await run_due(env) == 1
    third = (await sent_post_ids(env, run_id))[-1]
    assert buttons(env, third)[0] == "Post update"
    await submit(env, "finish_run", FinishDialog(run_id), {})
    assert buttons(env, third) == []
    assert answer(env, third) == "Status update reminder for **Database down**: the run is finished."
    assert answer(env, first).endswith("posted an update.")  # edited once, not again

    # Finishing asked for the retrospective; publishing it answers that reminder too.
    [retro] = await sent_post_ids(env, run_id, updates.RETRO)
    assert buttons(env, retro) == ["Fill in the retrospective", "No retrospective"]
    await submit(env, "retrospective", RetroDialog(run_id), {"text": "## What happened\nThe disk filled up."})
    assert buttons(env, retro) == []
    assert answer(env, retro) == (
        "Retrospective reminder for **Database down**: answered, @alice published the retrospective.")


async def test_a_claimer_killed_before_posting_loses_only_its_lease(tmp_path: Path) -> None:
    env = await reminder_env(tmp_path)
    view = await env.start()
    env.clock.advance(30 * MIN)
    # Another process claims the due reminder and dies (SIGKILL) before posting it.
    [claimed] = await env.ctx.db.run(updates.claim_due, env.clock.now_ms(), 10)
    assert claimed.run_id == view.run.id
    assert await run_due(env) == 0  # held by the dead claimer's lease
    env.clock.advance(updates.LEASE_S - 1)
    assert await run_due(env) == 0
    env.clock.advance(1)
    assert await run_due(env) == 1  # posted once, late by the lease
    assert await run_due(env) == 0
    assert len(await sent_post_ids(env, view.run.id)) == 1
    env.clock.advance(30 * MIN - 1)  # the next one counts from the late one
    assert await run_due(env) == 0
    env.clock.advance(1)
    assert await run_due(env) == 1


async def test_a_reminder_snoozed_while_its_post_was_in_flight_keeps_the_snooze(tmp_path: Path) -> None:
    env = await reminder_env(tmp_path)
    view = await env.start()
    env.clock.advance(30 * MIN)
    now = env.clock.now_ms()
    [claimed] = await env.ctx.db.run(updates.claim_due, now, 10)
    due = await env.ctx.db.run(updates.snooze, view.run.id, env.users["alice"].id, 3600, now)
    assert await env.ctx.db.run(updates.mark_sent, claimed, now, "somepost") is False
    row = await env.ctx.db.run(updates.get_reminder, view.run.id, updates.STATUS, readonly=True)
    assert row.due_at == due and row.post_ids == [] and row.sent_count == 0
