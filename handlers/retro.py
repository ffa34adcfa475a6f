"""The retrospective: the form (from `/playbook retro` or a reminder's button), publishing it, or
saying the run needs none.
"""
from __future__ import annotations

import logging
from typing import Any

from bot.actions import CancelRetro, FillRetro, RetroDialog
from bot.context import Context
from bot.domain.metrics import MetricSpec, MetricValueError, parse_value, prefill
from bot.domain.permissions import Action
from bot.models import MattermostError
from bot.notify import follow_up
from bot.rendering import defuse_mentions
from bot.router import Click, DialogErrors, DialogSubmission, Ephemeral, NoReply, OpenDialog, Reply, Router, UserError
from handlers.access import allowed
from handlers.announce import announce
from handlers.fields import DIALOG_TEXTAREA_MAX, Fields
from handlers.finish import archive_when_done
from storage import insights, people, reminders, runs, timeline
from storage.models import Run

log = logging.getLogger(__name__)

router = Router("retrospective")

# What the form's textarea holds; published with the run name and a few words, far below a post's
# 16383 runes.
MAX_MESSAGE = DIALOG_TEXTAREA_MAX


async def retro_dialog(ctx: Context, run: Run, user_id: str, channel_id: str, team_id: str) -> Reply:
    """The retrospective form, for a run the caller checked `user_id` may work."""
    run_id = run.id
    _require_retro(ctx, run)
    playbook = await ctx.run_playbook(run)  # the version the run started from
    default = run.retrospective_text or (playbook.retrospective.template if playbook else "")
    published = await ctx.db.run(insights.run_metrics, run_id, readonly=True) if run.metric_defs else {}
    return OpenDialog({
        "callback_id": "retrospective",
        "title": "Retrospective",
        "introduction_text": ctx.render("retro/dialog_intro.md.j2", name=run.name,
                                        published=run.retrospective_status == "published"),
        "submit_label": "Publish",
        "state": ctx.dialog_state(RetroDialog(run_id), user_id, channel_id, team_id),
        "elements": [{"display_name": "Retrospective", "name": "text", "type": "textarea",
                      "default": default[:MAX_MESSAGE], "max_length": MAX_MESSAGE},
                     *metric_elements(ctx, run, published)],
    })


def metric_specs(run: Run) -> list[MetricSpec]:
    """The metrics the run started with (copied from its playbook then: later edits do not apply)."""
    return [MetricSpec.from_dict(d) for d in run.metric_defs or []]


def metric_elements(ctx: Context, run: Run, published: dict[int, int]) -> list[dict[str, Any]]:
    """One optional text field per metric, its help text saying the format (and target, if any)."""
    return [{"display_name": spec.title[:24], "name": f"metric{position}", "type": "text", "optional": True,
             "default": prefill(spec.type, published.get(position)), "max_length": 30,
             # Mattermost's DialogElementHelpTextMaxLength is 150.
             "help_text": ctx.render("retro/metric_help.md.j2", spec=spec,
                                     target=prefill(spec.type, spec.target) if spec.target is not None else "")[-150:]}
            for position, spec in enumerate(metric_specs(run))]


def read_metrics(ctx: Context, run: Run, fields: Fields) -> list[tuple[int, str, str, int]]:
    """(position, title, type, value) of each metric given; a wrong value is an error under its field."""
    values = []
    for position, spec in enumerate(metric_specs(run)):
        name = f"metric{position}"
        raw = fields.text(name, 30)
        if not raw:
            continue
        try:
            values.append((position, spec.title, spec.type, parse_value(spec.type, raw)))
        except MetricValueError as exc:
            fields.error(name, ctx.render("retro/metric_error.md.j2", spec=spec, problem=str(exc)))
    return values


@router.click(FillRetro)
async def retro_click(click: Click, ctx: Context) -> Reply:
    assert isinstance(click.ref, FillRetro)
    run = await allowed(ctx, click.ref.run_id, click.user_id, Action.WORK)
    return await retro_dialog(ctx, run, click.user_id, click.channel_id, click.team_id)


@router.click(CancelRetro)
async def retro_cancel_click(click: Click, ctx: Context) -> Reply:
    assert isinstance(click.ref, CancelRetro)
    run = await allowed(ctx, click.ref.run_id, click.user_id, Action.WORK)
    return await retro_cancel(ctx, run, click.user_id, click.channel_id)


@router.dialog(RetroDialog)
async def retro_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    assert isinstance(sub.ref, RetroDialog)
    run_id = sub.ref.run_id
    # A refusal (UserError) becomes the dialog's error: bot/router.py Dispatcher does that for every dialog.
    run = await allowed(ctx, run_id, sub.user_id, Action.WORK)
    _require_retro(ctx, run)
    fields = Fields(ctx, sub)
    text = fields.text("text", MAX_MESSAGE)
    if not text and not fields.errors:
        fields.error("text", ctx.render("retro/error_empty.md.j2"))
    metrics = read_metrics(ctx, run, fields)
    if fields.errors:
        return DialogErrors(errors=fields.errors)
    now = ctx.clock.now_ms()
    stored = await ctx.db.run(insights.publish_retrospective, run_id, sub.user_id, now, text, metrics)
    assert stored is not None
    earlier = await ctx.db.run(timeline.last_post, run_id, timeline.RETRO_EVENTS, readonly=True)

    async def tell() -> None:
        followers = await ctx.db.run(people.follower_ids, run_id, readonly=True)
        names = await ctx.users.names([sub.user_id])
        actor = names.get(sub.user_id, "")
        updated = bool(earlier)
        full = ctx.render("retro/published.md.j2", name=stored.name, actor=actor, text=text, updated=updated)
        header, props = retro_post(ctx, stored.name, actor, text, now, updated)
        post_id = ""
        if earlier:
            # The retrospective post is edited in place: its message (the heading) stays, so the edit
            # goes through past PostEditTimeLimit; the text is in its attachment.
            try:
                await ctx.gateway.update_post(earlier, None, props)
                post_id = earlier
            except MattermostError as err:
                log.info("the retrospective post could not be edited, posting it again post=%s status=%s",
                         earlier, err.status)
        if not post_id:
            post_id = await announce(ctx, stored, channel_text=header, broadcast_text=None, follower_text=None,
                                     follower_ids=[], channel_props=props)
        await announce(ctx, stored, channel_text=None, broadcast_text=full, follower_text=full,
                       follower_ids=followers, skip_user=sub.user_id)
        if post_id:
            await ctx.db.run(timeline.note_post, run_id,
                             "retrospective_updated" if updated else "retrospective_published", now, post_id)
        if ctx.reminders is not None:
            await ctx.reminders.answered(run_id, reminders.RETRO, "published", sub.user_id)
        await archive_when_done(ctx, run_id, sub.user_id)
        await ctx.emit("retrospective_published", run_id, actor_id=sub.user_id, payload={"text": text})

    follow_up(ctx, tell(), name=f"retro:{run_id}", user_id=sub.user_id, channel_id=sub.channel_id)
    return NoReply()


def retro_post(ctx: Context, name: str, actor: str, text: str, now: int, updated: bool
               ) -> tuple[str, dict[str, Any]]:
    """The run channel's retrospective post: a heading that never changes, the text in an attachment."""
    header = ctx.render("retro/heading.md.j2", name=name)
    footer = ctx.render("retro/byline.md.j2", actor=actor, at=now, updated=updated)
    return header, {"attachments": [{"fallback": header, "text": defuse_mentions(text), "footer": footer}]}


async def retro_cancel(ctx: Context, run: Run, user_id: str, channel_id: str) -> Reply:
    """No retrospective for this run (the caller checked `user_id` may work it): the reminders stop and
    the channel is told."""
    run_id = run.id
    _require_retro(ctx, run)
    if run.retrospective_status:
        return Ephemeral(ctx.render("retro/already.md.j2", name=run.name, status=run.retrospective_status))
    stored = await ctx.db.run(runs.set_retrospective, run_id, user_id, ctx.clock.now_ms(), "cancelled", None)
    assert stored is not None

    async def tell() -> None:
        names = await ctx.users.names([user_id])
        text = ctx.render("retro/cancelled.md.j2", name=stored.name, actor=names.get(user_id, ""))
        await announce(ctx, stored, channel_text=text, broadcast_text=None, follower_text=None, follower_ids=[])
        if ctx.reminders is not None:
            await ctx.reminders.answered(run_id, reminders.RETRO, "cancelled", user_id)
        await archive_when_done(ctx, run_id, user_id)

    follow_up(ctx, tell(), name=f"retro:{run_id}", user_id=user_id, channel_id=channel_id)
    return NoReply()


def _require_retro(ctx: Context, run: Run) -> None:
    if not run.retrospective_enabled:
        raise UserError(ctx.render("retro/disabled.md.j2", name=run.name))
