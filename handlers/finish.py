"""Finishing a run (the overview's Finish button, `/playbook finish`, or a status update that finishes)
and restoring a finished one (`/playbook restore`).

Finishing asks first when items are still open (a confirmation dialog). The state change is one
conditional UPDATE, so finishing twice announces once; the announcements, the posts losing their
buttons and the first retrospective reminder follow in a tracked follow-up.
"""
from __future__ import annotations

import logging

from bot.actions import FinishDialog, FinishRun
from bot.context import Context
from bot.domain.permissions import Action
from bot.models import MattermostError
from bot.notify import follow_up, notify
from bot.router import Click, DialogSubmission, Ephemeral, NoReply, OpenDialog, Reply, Router, UserError
from handlers.access import allowed
from handlers.announce import announce, permalink
from handlers.reminders import retro_buttons
from handlers.views import refresh_posts
from storage import items, people, reminders, runs, timeline
from storage.models import Run

log = logging.getLogger(__name__)

router = Router("finish")


async def finish_request(ctx: Context, run: Run, user_id: str, channel_id: str, team_id: str) -> Reply:
    """Finish now, or ask first (a dialog) when checklist items are still open; the caller checked that
    `user_id` may finish the run and that it is in progress."""
    run_id = run.id
    still_open = await ctx.db.run(items.open_item_count, run_id, readonly=True)
    if still_open:
        return OpenDialog({
            "callback_id": "finish_run",
            "title": "Finish the run?",
            "introduction_text": ctx.render("updates/finish_confirm.md.j2", name=run.name, open=still_open),
            "submit_label": "Finish run",
            "state": ctx.dialog_state(FinishDialog(run_id), user_id, channel_id, team_id),
            "elements": [],
        })
    follow_up(ctx, finish_run(ctx, run_id, user_id), name=f"finish:{run_id}", user_id=user_id,
              channel_id=channel_id)
    return elsewhere(ctx, run, channel_id, "finished")


def elsewhere(ctx: Context, run: Run, channel_id: str, done: str) -> Reply:
    """The run's channel hears of a finish or restore; typed anywhere else, the person hears it there."""
    if channel_id == run.channel_id:
        return NoReply()
    return Ephemeral(ctx.render("updates/done_elsewhere.md.j2", name=run.name, done=done))


@router.click(FinishRun)
async def finish_click(click: Click, ctx: Context) -> Reply:
    assert isinstance(click.ref, FinishRun)
    run = await allowed(ctx, click.ref.run_id, click.user_id, Action.FINISH, in_progress=True)
    return await finish_request(ctx, run, click.user_id, click.channel_id, click.team_id)


@router.dialog(FinishDialog)
async def finish_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    assert isinstance(sub.ref, FinishDialog)
    run_id = sub.ref.run_id
    # A refusal (UserError) becomes the dialog's error: bot/router.py Dispatcher does that for every dialog.
    await allowed(ctx, run_id, sub.user_id, Action.FINISH, in_progress=True)
    follow_up(ctx, finish_run(ctx, run_id, sub.user_id), name=f"finish:{run_id}", user_id=sub.user_id,
              channel_id=sub.channel_id)
    return NoReply()


async def finish_run(ctx: Context, run_id: str, actor_id: str) -> bool:
    """Finish, then tell everyone; False when it was finished already (finishing is idempotent)."""
    now = ctx.clock.now_ms()
    current = await ctx.db.run(runs.get_run, run_id, readonly=True)
    if current is None:
        return False
    playbook = await ctx.run_playbook(current)  # the version the run started from
    remind = playbook.retrospective.remind if playbook else True
    interval_s = current.retrospective_reminder_s if remind else 0
    retro_due = now + interval_s * 1000 if interval_s else None
    run = await ctx.db.run(runs.finish, run_id, actor_id, now, retro_due, interval_s)
    if run is None:
        return False
    if ctx.reminders is not None:
        ctx.reminders.changed(retro_due)
    log.info("run finished run=%s user=%s", run_id, actor_id)
    followers = await ctx.db.run(people.follower_ids, run_id, readonly=True)
    names = await ctx.users.names([actor_id, run.owner_id])
    actor = names.get(actor_id, "")
    text = ctx.render("updates/finished.md.j2", name=run.name, actor=actor)
    post_id = await announce(ctx, run, channel_text=text, broadcast_text=text, follower_text=None, follower_ids=[])
    await announce(ctx, run, channel_text=None, broadcast_text=None, follower_ids=followers, skip_user=actor_id,
                   follower_text=ctx.render("updates/finished_dm.md.j2", name=run.name, actor=actor,
                                            link=permalink(ctx, run.team_id, post_id) if post_id else ""))
    if post_id:
        await ctx.db.run(timeline.note_post, run_id, "run_finished", now, post_id)
    if ctx.reminders is not None:
        await ctx.reminders.answered(run_id, reminders.STATUS, "finished", actor_id)
    await refresh_posts(ctx, run_id)
    if run.retrospective_enabled and not run.retrospective_status and remind:
        await _first_retro_reminder(ctx, run, names.get(run.owner_id, ""), now)
    await ctx.emit("run_finished", run_id, actor_id=actor_id, payload={"finished_at": now})
    await archive_when_done(ctx, run_id, actor_id)
    return True


async def archive_when_done(ctx: Context, run_id: str, actor_id: str) -> None:
    """Archive the run's channel when its playbook asks for it (`archive_channel_on_finish`), once the
    run is finished and its retrospective, if it has one, is published or cancelled: the channel
    stays open while people still write the retrospective in it. Said in the channel first; claimed in
    the row, so it happens once."""
    run = await ctx.db.run(runs.get_run, run_id, readonly=True)
    if (run is None or not run.archive_on_finish or run.status != "finished" or run.channel_archived
            or not run.channel_id or (run.retrospective_enabled and not run.retrospective_status)):
        return
    # A channel the run did not create is never archived; nor is one another run still works in (runs
    # started in an existing channel may have joined this one).
    if run.existing_channel or await ctx.db.run(runs.channel_shared, run.channel_id, run.id, readonly=True):
        log.info("not archiving a shared or existing channel run=%s channel=%s", run.id, run.channel_id)
        return
    if not await ctx.db.run(runs.set_channel_archived, run_id, True, actor_id, ctx.clock.now_ms()):
        return
    try:
        await ctx.gateway.create_post(run.channel_id, ctx.render("updates/archiving.md.j2", name=run.name))
        await ctx.gateway.archive_channel(run.channel_id)
    except MattermostError as err:
        await ctx.db.run(runs.set_channel_archived, run_id, False, actor_id, ctx.clock.now_ms())
        log.warning("archiving a finished run's channel failed run=%s status=%s id=%s", run_id, err.status,
                    err.error_id)
        await notify(ctx, actor_id, run.channel_id, ctx.render("updates/archive_failed.md.j2", name=run.name,
                                                               err=err))


async def _first_retro_reminder(ctx: Context, run: Run, owner: str, now: int) -> None:
    text = ctx.render("reminders/retro_due.md.j2", owner=owner, name=run.name, count=1)
    post_id = await announce(ctx, run, channel_text=text, broadcast_text=None, follower_text=None,
                             follower_ids=[], channel_props={"attachments": [
                                 {"fallback": text, "actions": retro_buttons(ctx, run.id)}]})
    await ctx.db.run(reminders.record_sent, [(run.id, now, "Retrospective reminder",
                                              {"post_id": post_id, "kind": reminders.RETRO})])
    if post_id:
        await ctx.db.run(reminders.note_post, run.id, reminders.RETRO, post_id)


async def restore_run(ctx: Context, run: Run, user_id: str, channel_id: str) -> Reply:
    """Reopen a finished run (the caller checked Action.RESTORE); tell everyone in a follow-up."""
    if run.channel_archived:
        # Back first: an archived channel takes no posts, and the run's people work in it again.
        try:
            await ctx.gateway.restore_channel(run.channel_id)
        except MattermostError as err:
            raise UserError(ctx.render("updates/unarchive_failed.md.j2", name=run.name, err=err)) from None
        await ctx.db.run(runs.set_channel_archived, run.id, False, user_id, ctx.clock.now_ms())
    restored = await ctx.db.run(runs.restore, run.id, user_id, ctx.clock.now_ms())
    if restored is None:
        return Ephemeral(ctx.render("updates/not_finished.md.j2", name=run.name))
    if ctx.reminders is not None and restored.reminder_interval_s > 0:
        ctx.reminders.changed(ctx.clock.now_ms() + restored.reminder_interval_s * 1000)

    async def tell() -> None:
        names = await ctx.users.names([user_id])
        actor = names.get(user_id, "")
        text = ctx.render("updates/restored.md.j2", name=restored.name, actor=actor)
        post_id = await announce(ctx, restored, channel_text=text, broadcast_text=text, follower_text=None,
                                 follower_ids=[])
        followers = await ctx.db.run(people.follower_ids, restored.id, readonly=True)
        await announce(ctx, restored, channel_text=None, broadcast_text=None, follower_ids=followers,
                       skip_user=user_id, follower_text=ctx.render(
                           "updates/restored_dm.md.j2", name=restored.name, actor=actor,
                           link=permalink(ctx, restored.team_id, post_id) if post_id else ""))
        await refresh_posts(ctx, restored.id)
        await ctx.emit("run_restored", restored.id, actor_id=user_id, payload={})

    follow_up(ctx, tell(), name=f"restore:{run.id}", user_id=user_id, channel_id=channel_id)
    return elsewhere(ctx, run, channel_id, "reopened")
