"""Status updates: the form (from `/playbook update` or a reminder's Post update button), storing and
broadcasting an update, and snoozing the reminder.

Each handler checks and stores in one transaction and answers at once; posting to the run channel, the
broadcast threads and followers' DMs happens in a tracked follow-up (handlers.announce).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from bot.actions import PostUpdate, Snooze, UpdateDialog
from bot.context import Context
from bot.domain.durations import DurationError, format_duration, format_duration_compact, parse_duration_or_off
from bot.domain.permissions import Action
from bot.notify import follow_up
from bot.router import Click, DialogErrors, DialogSubmission, Ephemeral, NoReply, OpenDialog, Reply, Router
from handlers.access import allowed, authorize
from handlers.announce import announce, permalink
from handlers.fields import DIALOG_TEXT_MAX, DIALOG_TEXTAREA_MAX, Fields
from handlers.finish import finish_run
from handlers.reminders import status_buttons
from handlers.views import refresh_overview, schedule_overview_refresh
from storage import people, reminders, timeline
from storage.models import Run

log = logging.getLogger(__name__)

router = Router("status-updates")

# What the form's textarea holds. The posted update is this message (at most 1.25 times as long once
# @all/@channel are defused) plus the run name and a few words: far below a post's 16383 runes.
MAX_MESSAGE = DIALOG_TEXTAREA_MAX
MIN_REMINDER = timedelta(minutes=1)
MAX_REMINDER = 40  # characters of "Next reminder in": "2h", "1d 12h", "off"
assert MAX_REMINDER <= DIALOG_TEXT_MAX


async def update_dialog(ctx: Context, run: Run, user_id: str, channel_id: str, team_id: str) -> Reply:
    """The status update form, prefilled with the last update (or the playbook's template), for a run in
    progress that the caller already checked `user_id` may work."""
    run_id = run.id
    last = await ctx.db.run(reminders.last_update, run_id, readonly=True)
    playbook = await ctx.run_playbook(run)  # the version the run started from
    default = last.message if last else (playbook.status_updates.template if playbook else "")
    interval = (format_duration_compact(timedelta(seconds=run.reminder_interval_s))
                if run.reminder_interval_s > 0 else "off")
    return OpenDialog({
        "callback_id": "status_update",
        "title": "Post a status update",
        "introduction_text": ctx.render("updates/dialog_intro.md.j2", name=run.name),
        "submit_label": "Post",
        "state": ctx.dialog_state(UpdateDialog(run_id), user_id, channel_id, team_id),
        "elements": [
            {"display_name": "Update", "name": "message", "type": "textarea", "default": default[:MAX_MESSAGE],
             "max_length": MAX_MESSAGE, "placeholder": "What changed, what is next?"},
            {"display_name": "Next reminder in", "name": "reminder", "type": "text", "default": interval,
             "max_length": MAX_REMINDER, "help_text": "A duration such as 30m, 2h or 1d; off for no reminder."},
            {"display_name": "Finish the run", "name": "finish", "type": "bool", "optional": True,
             "default": "false", "placeholder": "Also mark the run as finished"},
        ],
    })


@router.click(PostUpdate)
async def update_click(click: Click, ctx: Context) -> Reply:
    assert isinstance(click.ref, PostUpdate)
    run = await allowed(ctx, click.ref.run_id, click.user_id, Action.WORK, in_progress=True)
    return await update_dialog(ctx, run, click.user_id, click.channel_id, click.team_id)


@router.dialog(UpdateDialog)
async def update_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    assert isinstance(sub.ref, UpdateDialog)
    run_id = sub.ref.run_id
    # A refusal (UserError) becomes the dialog's error: bot/router.py Dispatcher does that for every dialog.
    run = await allowed(ctx, run_id, sub.user_id, Action.WORK, in_progress=True)
    fields = Fields(ctx, sub)
    message = fields.text("message", MAX_MESSAGE)
    if not message and "message" not in fields.errors:
        fields.error("message", ctx.render("updates/error_empty.md.j2"))
    interval = None
    reminder = fields.text("reminder", MAX_REMINDER)
    if "reminder" not in fields.errors:
        try:
            interval = parse_duration_or_off(reminder, minimum=MIN_REMINDER)
        except DurationError as err:
            fields.error("reminder", ctx.render("updates/error_interval.md.j2", reason=str(err)))
    finish = fields.flag("finish")
    if finish:
        _, refusal = await authorize(ctx, run_id, sub.user_id, Action.FINISH)
        if refusal:
            fields.error("finish", refusal)
    if fields.errors:
        return DialogErrors(errors=fields.errors)
    interval_s = int(interval.total_seconds()) if interval else 0
    if not await post_update(ctx, run, sub.user_id, message, interval_s, finish):
        return DialogErrors(error=ctx.render("errors/run_finished.md.j2", name=run.name))
    return NoReply()


def parse_reminder(text: str) -> int:
    """Seconds until the next reminder from what a person typed ("30m", "off": 0); DurationError if not."""
    interval = parse_duration_or_off(text, minimum=MIN_REMINDER)
    return int(interval.total_seconds()) if interval else 0


async def post_update(ctx: Context, run: Run, user_id: str, message: str, interval_s: int, finish: bool) -> bool:
    """Store a status update and re-arm the reminder `interval_s` from now (0: off); the posts, broadcasts,
    followers' DMs (and the finish, when asked) follow in a tracked follow-up. The caller checked that
    `user_id` may work the run (and finish it, with `finish`). False when the run is no longer in progress.
    The dialog and the web view's form both come here."""
    now = ctx.clock.now_ms()
    row = await ctx.db.run(reminders.record_update, run.id, user_id, message, now, interval_s)
    if row is None:
        return False
    if ctx.reminders is not None and interval_s:
        ctx.reminders.changed(now + interval_s * 1000)
    log.info("status update run=%s user=%s reminder_s=%d finish=%s", run.id, user_id, interval_s, finish)
    follow_up(ctx, _after_update(ctx, run.id, user_id, message, interval_s, now, finish, row.id),
              name=f"update:{run.id}", user_id=user_id, channel_id=run.channel_id)
    return True


async def _after_update(ctx: Context, run_id: str, author_id: str, message: str, interval_s: int, now: int,
                        finish: bool, update_id: str = "") -> None:
    found = await ctx.db.run(people.run_and_followers, run_id, readonly=True)
    assert found is not None
    run, followers = found
    names = await ctx.users.names([author_id, run.owner_id])
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
        await ctx.db.run(timeline.note_post, run_id, "status_updated", now, post_id)
    if ctx.reminders is not None:
        await ctx.reminders.answered(run_id, reminders.STATUS, "updated", author_id)
    await ctx.emit("status_updated", run_id, actor_id=author_id,
                   payload={"message": message, "reminder_s": interval_s, "update_id": update_id})
    if finish:
        await finish_run(ctx, run_id, author_id)
    else:
        await refresh_overview(ctx, run_id)


@router.click(Snooze)
async def snooze_click(click: Click, ctx: Context) -> Reply:
    ref = click.ref
    assert isinstance(ref, Snooze)
    run = await allowed(ctx, ref.run_id, click.user_id, Action.WORK, in_progress=True)
    seconds = max(60, min(int(ref.seconds), 7 * 86400))
    due = await ctx.db.run(reminders.snooze, ref.run_id, click.user_id, seconds, ctx.clock.now_ms())
    if due is None:
        return Ephemeral(ctx.render("reminders/no_reminder.md.j2", name=run.name))
    if ctx.reminders is not None:
        ctx.reminders.changed(due)
    schedule_overview_refresh(ctx, run.id)
    after = format_duration(timedelta(seconds=seconds))

    async def mark() -> None:
        # Everyone reading the reminder sees who snoozed it until when; its buttons stay (post the
        # update now, or snooze again). Props only: the message stays, past any edit time limit.
        names = await ctx.users.names([click.user_id])
        note = ctx.render("reminders/snoozed_by.md.j2", actor=names.get(click.user_id, ""), due_at=due,
                          after=after)
        await ctx.gateway.update_post(click.post_id, None, {"attachments": [
            {"fallback": note, "text": note, "actions": status_buttons(ctx, run.id)}]})

    follow_up(ctx, mark(), name=f"snoozed:{click.post_id}", user_id=click.user_id, channel_id=click.channel_id)
    return Ephemeral(ctx.render("reminders/snoozed.md.j2", name=run.name, due_at=due, after=after))


REQUEST_EVERY_MS = 10 * 60_000  # one request per run this often, whoever asks


async def request_update(ctx: Context, run: Run, user_id: str, channel_id: str) -> Reply:
    """Ask the owner for a status update in the run's channel (the caller checked `user_id` may see the
    run); at most one request per run every REQUEST_EVERY_MS, recorded on the timeline."""
    if user_id == run.owner_id:
        return Ephemeral(ctx.render("updates/request_own.md.j2", name=run.name))
    now = ctx.clock.now_ms()
    last = await ctx.db.run(timeline.request_update, run.id, user_id, now, REQUEST_EVERY_MS)
    if last is not None:
        return Ephemeral(ctx.render("updates/request_recent.md.j2", name=run.name, at=last,
                                    again=last + REQUEST_EVERY_MS))
    names = await ctx.users.names([user_id, run.owner_id])

    async def post() -> None:
        await ctx.gateway.create_post(run.channel_id, ctx.render(
            "updates/requested.md.j2", actor=names.get(user_id, ""), owner=names.get(run.owner_id, "")))

    follow_up(ctx, post(), name=f"request-update:{run.id}", user_id=user_id, channel_id=channel_id)
    return Ephemeral(ctx.render("updates/request_sent.md.j2", name=run.name, owner=names.get(run.owner_id, "")))
