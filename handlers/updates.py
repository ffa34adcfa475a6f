"""Status updates, finishing and restoring a run, its retrospective and its timeline.

Commands: `/playbook update`, `finish`, `restore`, `retro [cancel]`, `timeline`. Buttons: Post update and
Snooze (on reminders), Finish (on the overview), Fill in / No retrospective (on retrospective reminders).
Each handler checks and stores in one transaction and answers at once; posting to the run channel, the
broadcast threads and followers' DMs happens in a tracked follow-up (handlers.announce).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from bot.actions import (
    CancelRetro,
    FillRetro,
    FinishDialog,
    FinishRun,
    PostUpdate,
    RetroDialog,
    Snooze,
    UpdateDialog,
)
from bot.context import Context
from bot.domain.durations import DurationError, format_duration, format_duration_compact, parse_duration_or_off
from bot.domain.permissions import Action
from bot.router import (
    Click,
    DialogErrors,
    DialogSubmission,
    Ephemeral,
    NoReply,
    OpenDialog,
    Reply,
    Router,
    SlashCommand,
    UserError,
)
from commands.selection import select_run
from commands.timeline import timeline_add
from handlers.announce import announce
from handlers.items import authorize
from handlers.reminders import permalink, retro_buttons
from handlers.views import refresh_checklist_post, refresh_overview
from storage import queries, updates
from storage.models import Run

log = logging.getLogger(__name__)

router = Router("updates")

MAX_MESSAGE = 3000  # a dialog textarea holds at most 3000 characters
MIN_REMINDER = timedelta(minutes=1)
BOTH = ("in_progress", "finished")


# --- status updates ---------------------------------------------------------------------------------

@router.command("update", usage="[--run <name>]")
async def update_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Post a status update: opens a form prefilled with the last one."""
    run, _ = await select_run(ctx, cmd, cmd.rest)
    return await _update_dialog(ctx, run.id, cmd.user_id)


@router.click(PostUpdate)
async def update_click(click: Click, ctx: Context) -> Reply:
    return await _update_dialog(ctx, click.ref.run_id, click.user_id)  # type: ignore[attr-defined]


async def _update_dialog(ctx: Context, run_id: str, user_id: str) -> Reply:
    run = await _allowed(ctx, run_id, user_id, Action.WORK, in_progress=True)
    last = await ctx.db.run(updates.last_update, run_id, readonly=True)
    playbook = ctx.playbooks.get(run.playbook_id) if ctx.playbooks else None
    default = last.message if last else (playbook.status_updates.template if playbook else "")
    interval = (format_duration_compact(timedelta(seconds=run.reminder_interval_s))
                if run.reminder_interval_s > 0 else "off")
    return OpenDialog({
        "callback_id": "status_update",
        "title": "Post a status update",
        "introduction_text": ctx.render("updates/dialog_intro.md.j2", name=run.name),
        "submit_label": "Post",
        "state": ctx.signer.pack_state(UpdateDialog(run_id)),
        "elements": [
            {"display_name": "Update", "name": "message", "type": "textarea", "default": default[:MAX_MESSAGE],
             "max_length": MAX_MESSAGE, "placeholder": "What changed, what is next?"},
            {"display_name": "Next reminder in", "name": "reminder", "type": "text", "default": interval,
             "max_length": 40, "help_text": "A duration such as 30m, 2h or 1d; off for no reminder."},
            {"display_name": "Finish the run", "name": "finish", "type": "bool", "optional": True,
             "default": "false", "placeholder": "Also mark the run as finished"},
        ],
    })


@router.dialog(UpdateDialog)
async def update_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    run_id: str = sub.ref.run_id  # type: ignore[attr-defined]
    try:
        run = await _allowed(ctx, run_id, sub.user_id, Action.WORK, in_progress=True)
    except UserError as err:
        return DialogErrors(error=str(err))
    values = sub.submission or {}
    errors: dict[str, str] = {}
    message = str(values.get("message") or "").strip()
    if not message:
        errors["message"] = ctx.render("updates/error_empty.md.j2")
    elif len(message) > MAX_MESSAGE:
        errors["message"] = ctx.render("updates/error_too_long.md.j2", limit=MAX_MESSAGE)
    try:
        interval = parse_duration_or_off(str(values.get("reminder") or ""), minimum=MIN_REMINDER)
    except DurationError as err:
        errors["reminder"] = ctx.render("updates/error_interval.md.j2", reason=str(err))
        interval = None
    finish = _truthy(values.get("finish"))
    if finish:
        _, refusal = await authorize(ctx, run_id, sub.user_id, Action.FINISH)
        if refusal:
            errors["finish"] = refusal
    if errors:
        return DialogErrors(errors=errors)
    interval_s = int(interval.total_seconds()) if interval else 0
    now = ctx.clock.now_ms()
    row = await ctx.db.run(updates.record_update, run_id, sub.user_id, message, now, interval_s)
    if row is None:
        return DialogErrors(error=ctx.render("errors/run_finished.md.j2", name=run.name))
    if ctx.reminders is not None and interval_s:
        ctx.reminders.changed(now + interval_s * 1000)
    log.info("status update run=%s user=%s reminder_s=%d finish=%s", run_id, sub.user_id, interval_s, finish)
    _follow_up(ctx, _after_update(ctx, run_id, sub.user_id, message, interval_s, now, finish),
               f"update:{run_id}", sub.user_id, run.channel_id)
    return NoReply()


async def _after_update(ctx: Context, run_id: str, author_id: str, message: str, interval_s: int, now: int,
                        finish: bool) -> None:
    run, followers = await ctx.db.run(_run_and_followers, run_id, readonly=True)
    names = await ctx.users.names([author_id, run.owner_id])  # type: ignore[union-attr]
    next_at = now + interval_s * 1000 if interval_s else None
    text = ctx.render("updates/posted.md.j2", name=run.name, author=names.get(author_id, ""), message=message,
                      next_at=next_at)
    post_id = await announce(ctx, run, channel_text=text, broadcast_text=text, follower_text=None,
                             follower_ids=[])
    dm = ctx.render("updates/follower_dm.md.j2", name=run.name, author=names.get(author_id, ""),
                    message=message, link=permalink(ctx, run.team_id, post_id) if post_id else "")
    await announce(ctx, run, channel_text=None, broadcast_text=None, follower_text=dm, follower_ids=followers,
                   skip_user=author_id)
    if post_id:
        await ctx.db.run(_note_post, run_id, "status_updated", now, post_id)
    await _answered(ctx, run_id, updates.STATUS, "updated", author_id)
    await _emit(ctx, "status_updated", run_id, author_id, {"message": message, "reminder_s": interval_s})
    if finish:
        await finish_run(ctx, run_id, author_id)
    else:
        await refresh_overview(ctx, run_id)


@router.click(Snooze)
async def snooze_click(click: Click, ctx: Context) -> Reply:
    ref: Any = click.ref
    run = await _allowed(ctx, ref.run_id, click.user_id, Action.WORK, in_progress=True)
    seconds = max(60, min(int(ref.seconds), 7 * 86400))
    due = await ctx.db.run(updates.snooze, ref.run_id, click.user_id, seconds, ctx.clock.now_ms())
    if due is None:
        return Ephemeral(ctx.render("reminders/no_reminder.md.j2", name=run.name))
    if ctx.reminders is not None:
        ctx.reminders.changed(due)
    ctx.tasks.coalesce(f"overview:{run.id}", lambda: refresh_overview(ctx, run.id))
    return Ephemeral(ctx.render("reminders/snoozed.md.j2", name=run.name, due_at=due,
                                after=format_duration(timedelta(seconds=seconds))))


# --- finish and restore -----------------------------------------------------------------------------

@router.command("finish", usage="[--run <name>]")
async def finish_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Finish the run (asks first when checklist items are still open)."""
    run, _ = await select_run(ctx, cmd, cmd.rest)
    return await _finish_request(ctx, run.id, cmd.user_id, cmd.channel_id)


@router.click(FinishRun)
async def finish_click(click: Click, ctx: Context) -> Reply:
    return await _finish_request(ctx, click.ref.run_id, click.user_id, click.channel_id)  # type: ignore[attr-defined]


async def _finish_request(ctx: Context, run_id: str, user_id: str, channel_id: str) -> Reply:
    run = await _allowed(ctx, run_id, user_id, Action.FINISH, in_progress=True)
    still_open = await ctx.db.run(updates.open_item_count, run_id, readonly=True)
    if still_open:
        return OpenDialog({
            "callback_id": "finish_run",
            "title": "Finish the run?",
            "introduction_text": ctx.render("updates/finish_confirm.md.j2", name=run.name, open=still_open),
            "submit_label": "Finish run",
            "state": ctx.signer.pack_state(FinishDialog(run_id)),
            "elements": [],
        })
    _follow_up(ctx, finish_run(ctx, run_id, user_id), f"finish:{run_id}", user_id, channel_id)
    return NoReply()


@router.dialog(FinishDialog)
async def finish_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    run_id: str = sub.ref.run_id  # type: ignore[attr-defined]
    try:
        await _allowed(ctx, run_id, sub.user_id, Action.FINISH, in_progress=True)
    except UserError as err:
        return DialogErrors(error=str(err))
    _follow_up(ctx, finish_run(ctx, run_id, sub.user_id), f"finish:{run_id}", sub.user_id, sub.channel_id)
    return NoReply()


async def finish_run(ctx: Context, run_id: str, actor_id: str) -> bool:
    """Finish, then tell everyone; False when it was finished already (finishing is idempotent)."""
    now = ctx.clock.now_ms()
    current = await ctx.db.run(queries.get_run, run_id, readonly=True)
    if current is None:
        return False
    playbook = ctx.playbooks.get(current.playbook_id) if ctx.playbooks else None
    remind = playbook.retrospective.remind if playbook else True
    interval_s = current.retrospective_reminder_s if remind else 0
    retro_due = now + interval_s * 1000 if interval_s else None
    run = await ctx.db.run(updates.finish, run_id, actor_id, now, retro_due, interval_s)
    if run is None:
        return False
    if ctx.reminders is not None:
        ctx.reminders.changed(retro_due)
    log.info("run finished run=%s user=%s", run_id, actor_id)
    followers = await ctx.db.run(updates.follower_ids, run_id, readonly=True)
    names = await ctx.users.names([actor_id, run.owner_id])  # type: ignore[union-attr]
    actor = names.get(actor_id, "")
    text = ctx.render("updates/finished.md.j2", name=run.name, actor=actor)
    post_id = await announce(ctx, run, channel_text=text, broadcast_text=text, follower_text=None, follower_ids=[])
    await announce(ctx, run, channel_text=None, broadcast_text=None, follower_ids=followers, skip_user=actor_id,
                   follower_text=ctx.render("updates/finished_dm.md.j2", name=run.name, actor=actor,
                                            link=permalink(ctx, run.team_id, post_id) if post_id else ""))
    if post_id:
        await ctx.db.run(_note_post, run_id, "run_finished", now, post_id)
    await _answered(ctx, run_id, updates.STATUS, "finished", actor_id)
    await _refresh_posts(ctx, run_id)
    if run.retrospective_enabled and not run.retrospective_status and remind:
        text = ctx.render("reminders/retro_due.md.j2", owner=names.get(run.owner_id, ""), name=run.name, count=1)
        post_id = await announce(ctx, run, channel_text=text, broadcast_text=None, follower_text=None,
                                 follower_ids=[], channel_props={"attachments": [
                                     {"fallback": text, "actions": retro_buttons(ctx, run.id)}]})
        await ctx.db.run(updates.record_sent, [(run_id, now, "Retrospective reminder",
                                                {"post_id": post_id, "kind": updates.RETRO})])
        if post_id:
            await ctx.db.run(updates.note_post, run_id, updates.RETRO, post_id)
    await _emit(ctx, "run_finished", run_id, actor_id, {})
    return True


@router.command("restore", usage="[--run <name>]")
async def restore_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Reopen a finished run."""
    run, _ = await select_run(ctx, cmd, cmd.rest, statuses=("finished",))
    await _allowed(ctx, run.id, cmd.user_id, Action.FINISH)
    restored = await ctx.db.run(updates.restore, run.id, cmd.user_id, ctx.clock.now_ms())
    if restored is None:
        return Ephemeral(ctx.render("updates/not_finished.md.j2", name=run.name))
    if ctx.reminders is not None and restored.reminder_interval_s > 0:
        ctx.reminders.changed(ctx.clock.now_ms() + restored.reminder_interval_s * 1000)

    async def tell() -> None:
        names = await ctx.users.names([cmd.user_id])  # type: ignore[union-attr]
        text = ctx.render("updates/restored.md.j2", name=restored.name, actor=names.get(cmd.user_id, ""))
        await announce(ctx, restored, channel_text=text, broadcast_text=text, follower_text=None, follower_ids=[])
        await _refresh_posts(ctx, restored.id)
        await _emit(ctx, "run_restored", restored.id, cmd.user_id, {})

    _follow_up(ctx, tell(), f"restore:{run.id}", cmd.user_id, cmd.channel_id)
    return NoReply()


async def _refresh_posts(ctx: Context, run_id: str) -> None:
    """The overview and every checklist post; a finished run's checklists lose their buttons."""
    await refresh_overview(ctx, run_id)
    view = await ctx.db.run(queries.load_view, run_id, readonly=True)
    if view is None:
        return
    for index in range(len(view.checklists)):
        await refresh_checklist_post(ctx, view, index)


# --- retrospective ----------------------------------------------------------------------------------

@router.command("retro", usage="[cancel] [--run <name>]")
async def retro_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Write and publish the run's retrospective; `retro cancel` if it needs none."""
    run, rest = await select_run(ctx, cmd, cmd.rest, statuses=BOTH)
    if rest and rest[0].lower() in ("cancel", "none", "skip"):
        return await _retro_cancel(ctx, run.id, cmd.user_id, cmd.channel_id)
    return await _retro_dialog(ctx, run.id, cmd.user_id)


@router.click(FillRetro)
async def retro_click(click: Click, ctx: Context) -> Reply:
    return await _retro_dialog(ctx, click.ref.run_id, click.user_id)  # type: ignore[attr-defined]


@router.click(CancelRetro)
async def retro_cancel_click(click: Click, ctx: Context) -> Reply:
    return await _retro_cancel(ctx, click.ref.run_id, click.user_id, click.channel_id)  # type: ignore[attr-defined]


async def _retro_dialog(ctx: Context, run_id: str, user_id: str) -> Reply:
    run = await _allowed(ctx, run_id, user_id, Action.WORK)
    _require_retro(ctx, run)
    playbook = ctx.playbooks.get(run.playbook_id) if ctx.playbooks else None
    default = run.retrospective_text or (playbook.retrospective.template if playbook else "")
    return OpenDialog({
        "callback_id": "retrospective",
        "title": "Retrospective",
        "introduction_text": ctx.render("retro/dialog_intro.md.j2", name=run.name,
                                        published=run.retrospective_status == "published"),
        "submit_label": "Publish",
        "state": ctx.signer.pack_state(RetroDialog(run_id)),
        "elements": [{"display_name": "Retrospective", "name": "text", "type": "textarea",
                      "default": default[:MAX_MESSAGE], "max_length": MAX_MESSAGE}],
    })


@router.dialog(RetroDialog)
async def retro_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    run_id: str = sub.ref.run_id  # type: ignore[attr-defined]
    try:
        run = await _allowed(ctx, run_id, sub.user_id, Action.WORK)
        _require_retro(ctx, run)
    except UserError as err:
        return DialogErrors(error=str(err))
    text = str((sub.submission or {}).get("text") or "").strip()
    if not text:
        return DialogErrors(errors={"text": ctx.render("retro/error_empty.md.j2")})
    if len(text) > MAX_MESSAGE:
        return DialogErrors(errors={"text": ctx.render("updates/error_too_long.md.j2", limit=MAX_MESSAGE)})
    stored = await ctx.db.run(updates.set_retrospective, run_id, sub.user_id, ctx.clock.now_ms(), "published", text)
    assert stored is not None

    async def tell() -> None:
        followers = await ctx.db.run(updates.follower_ids, run_id, readonly=True)
        names = await ctx.users.names([sub.user_id])  # type: ignore[union-attr]
        post = ctx.render("retro/published.md.j2", name=stored.name, actor=names.get(sub.user_id, ""), text=text)
        await announce(ctx, stored, channel_text=post, broadcast_text=post, follower_text=post,
                       follower_ids=followers, skip_user=sub.user_id)
        await _answered(ctx, run_id, updates.RETRO, "published", sub.user_id)
        await _emit(ctx, "retrospective_published", run_id, sub.user_id, {"text": text})

    _follow_up(ctx, tell(), f"retro:{run_id}", sub.user_id, sub.channel_id)
    return NoReply()


async def _retro_cancel(ctx: Context, run_id: str, user_id: str, channel_id: str) -> Reply:
    run = await _allowed(ctx, run_id, user_id, Action.WORK)
    _require_retro(ctx, run)
    if run.retrospective_status:
        return Ephemeral(ctx.render("retro/already.md.j2", name=run.name, status=run.retrospective_status))
    stored = await ctx.db.run(updates.set_retrospective, run_id, user_id, ctx.clock.now_ms(), "cancelled", None)
    assert stored is not None

    async def tell() -> None:
        names = await ctx.users.names([user_id])  # type: ignore[union-attr]
        text = ctx.render("retro/cancelled.md.j2", name=stored.name, actor=names.get(user_id, ""))
        await announce(ctx, stored, channel_text=text, broadcast_text=None, follower_text=None, follower_ids=[])
        await _answered(ctx, run_id, updates.RETRO, "cancelled", user_id)

    _follow_up(ctx, tell(), f"retro:{run_id}", user_id, channel_id)
    return NoReply()


def _require_retro(ctx: Context, run: Run) -> None:
    if not run.retrospective_enabled:
        raise UserError(ctx.render("retro/disabled.md.j2", name=run.name))


# --- timeline ---------------------------------------------------------------------------------------

@router.command("timeline", usage="[add <post id or link> [summary]] [--run <name>]")
async def timeline_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Show the run's timeline, or add a post to it: `add` and the post's link."""
    if cmd.rest and cmd.rest[0].lower() == "add":
        return await timeline_add(cmd, ctx)
    run, _ = await select_run(ctx, cmd, cmd.rest, statuses=BOTH)
    await _allowed(ctx, run.id, cmd.user_id, Action.VIEW)
    events = await ctx.db.run(updates.timeline, run.id, readonly=True)
    names = await ctx.users.names(sorted({e.actor_id for e in events if e.actor_id}))  # type: ignore[union-attr]
    shown = events[-MAX_TIMELINE_ROWS:]
    return Ephemeral(ctx.render("updates/timeline.md.j2", name=run.name, events=shown, names=names,
                                hidden=len(events) - len(shown), labels=TIMELINE_LABELS))


MAX_TIMELINE_ROWS = 100
TIMELINE_LABELS = {
    "run_started": "Run started", "status_updated": "Status update", "reminder_sent": "Reminder",
    "reminder_snoozed": "Reminder snoozed", "owner_changed": "Owner changed",
    "item_state_changed": "Item changed", "assignee_changed": "Assignee changed", "item_added": "Item added",
    "item_removed": "Item removed", "command_ran": "Command ran", "participant_joined": "Joined",
    "participant_left": "Left", "run_finished": "Finished", "run_restored": "Restored",
    "retrospective_published": "Retrospective published", "retrospective_cancelled": "No retrospective",
    "event_from_post": "Post",
}


# --- helpers ----------------------------------------------------------------------------------------

async def _allowed(ctx: Context, run_id: str, user_id: str, action: Action, *, in_progress: bool = False) -> Run:
    run, refusal = await authorize(ctx, run_id, user_id, action)
    if refusal:
        raise UserError(refusal)
    assert run is not None
    if in_progress and run.status != "in_progress":
        raise UserError(ctx.render("errors/run_finished.md.j2", name=run.name))
    return run


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


def _run_and_followers(session: Any, run_id: str) -> tuple[Run, list[str]]:
    run = queries.get_run(session, run_id)
    assert run is not None
    return run, updates.follower_ids(session, run_id)


def _note_post(session: Any, run_id: str, type_: str, at: int, post_id: str) -> None:
    """Remember the post on the timeline event it announced (the latest of its type)."""
    for event in reversed(updates.timeline(session, run_id)):
        if event.type == type_ and event.at == at:
            event.details = {**event.details, "post_id": post_id}
            session.add(event)
            return


async def _answered(ctx: Context, run_id: str, kind: str, outcome: str, actor_id: str) -> None:
    """Old reminder posts lose their buttons and say how they were answered (handlers.reminders)."""
    if ctx.reminders is not None:
        await ctx.reminders.answered(run_id, kind, outcome, actor_id)


async def _emit(ctx: Context, event: str, run_id: str, actor_id: str, payload: dict[str, Any]) -> None:
    if ctx.hooks is not None:
        await ctx.hooks.emit(event, run_id, actor_id=actor_id, payload=payload)


def _follow_up(ctx: Context, coro: Any, name: str, user_id: str, channel_id: str) -> None:
    async def report(exc: BaseException) -> None:
        from handlers.notify import notify

        await notify(ctx, user_id, channel_id, ctx.render("errors/internal.md.j2"))

    ctx.tasks.spawn(coro, name=name, on_error=report)
