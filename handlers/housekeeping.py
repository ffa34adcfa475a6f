"""Run housekeeping: a run's name and summary, and its checklists (added, renamed, moved), changed from
chat (commands/housekeeping.py) or from the overview's "Edit run" button and its dialog.

Every change is a row and a timeline entry first; the posts then follow from the rows through the
sweep's code (handlers/reconcile.py show_run): attachments are edited in place, and a post whose text
must change (the run's name is in the overview's text, a checklist's number and title in its post's)
is edited too, or, where Mattermost no longer lets the bot change it (PostEditTimeLimit), posted anew.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from bot.actions import EditRun, EditRunDialog
from bot.context import Context
from bot.domain import naming
from bot.domain.permissions import Action
from bot.notify import follow_up, notify
from bot.router import Click, DialogErrors, DialogSubmission, NoReply, OpenDialog, Reply, Router
from handlers.access import allowed
from handlers.fields import DIALOG_TEXT_MAX, DIALOG_TEXTAREA_MAX, Fields
from handlers.reconcile import show_run
from storage import runs
from storage.models import Run

log = logging.getLogger(__name__)

router = Router("housekeeping")

MAX_RUN_NAME = 1024  # as a run's name at the start (handlers/runs.py)
MAX_SUMMARY = DIALOG_TEXTAREA_MAX


def clean_name(ctx: Context, raw: str) -> tuple[str, str]:
    """(name, problem): "" problem when the name can be used."""
    name = naming.clean_display_name(raw.strip(), limit=MAX_RUN_NAME + 1)
    if not re.search(r"[^\W_]", name):  # as an item's title: at least one letter or digit
        return "", ctx.render("housekeeping/name_empty.md.j2")
    if len(name) > MAX_RUN_NAME:
        return "", ctx.render("commands/name_too_long.md.j2", length=len(raw.strip()), limit=MAX_RUN_NAME)
    return name, ""


def summary_problem(ctx: Context, summary: str) -> str:
    if len(summary) > MAX_SUMMARY:
        return ctx.render("run/summary_too_long.md.j2", length=len(summary), limit=MAX_SUMMARY)
    return ""


async def rename(ctx: Context, run: Run, name: str, actor_id: str, channel_id: str) -> Run | None:
    renamed = await ctx.db.run(runs.rename_run, run.id, name, actor_id, ctx.clock.now_ms())
    show_later(ctx, run.id, actor_id, channel_id)
    return renamed


async def resummarize(ctx: Context, run: Run, summary: str, actor_id: str, channel_id: str) -> Run | None:
    changed = await ctx.db.run(runs.set_summary, run.id, summary, actor_id, ctx.clock.now_ms())
    show_later(ctx, run.id, actor_id, channel_id)
    return changed


def show_later(ctx: Context, run_id: str, actor_id: str, channel_id: str, tell: str = "") -> None:
    """The run's posts follow its rows, after the answer (then `tell` the person, when given); the
    person hears if that fails."""
    async def work() -> None:
        await show_run(ctx, run_id)
        if tell:
            await notify(ctx, actor_id, channel_id, tell)

    follow_up(ctx, work(), name=f"show-run:{run_id}", user_id=actor_id, channel_id=channel_id,
              failure=lambda: ctx.render("housekeeping/show_failed.md.j2"))


def edit_dialog(ctx: Context, run: Run, user_id: str, channel_id: str, team_id: str) -> OpenDialog:
    dialog: dict[str, Any] = {
        "callback_id": "edit_run",
        "title": "Edit run",
        "submit_label": "Save",
        "state": ctx.dialog_state(EditRunDialog(run.id), user_id, channel_id, team_id),
        "elements": [
            {"display_name": "Run name", "name": "name", "type": "text", "max_length": DIALOG_TEXT_MAX,
             "default": run.name[:DIALOG_TEXT_MAX]},
            {"display_name": "Summary", "name": "summary", "type": "textarea", "optional": True,
             "max_length": MAX_SUMMARY, "default": run.summary[:MAX_SUMMARY],
             "placeholder": "What is going on? Shown on the run's overview."},
        ],
    }
    return OpenDialog(dialog)


@router.click(EditRun)
async def edit_click(click: Click, ctx: Context) -> Reply:
    assert isinstance(click.ref, EditRun)
    run = await allowed(ctx, click.ref.run_id, click.user_id, Action.WORK, in_progress=True)
    return edit_dialog(ctx, run, click.user_id, click.channel_id, click.team_id)


@router.dialog(EditRunDialog)
async def edit_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    ref = sub.ref
    assert isinstance(ref, EditRunDialog)
    run = await allowed(ctx, ref.run_id, sub.user_id, Action.WORK, in_progress=True)
    fields = Fields(ctx, sub)
    raw_name = fields.text("name", None)
    summary = fields.text("summary", None)
    name, problem = clean_name(ctx, raw_name)
    if problem:
        fields.error("name", problem)
    if problem := summary_problem(ctx, summary):
        fields.error("summary", problem)
    if fields.errors:
        return DialogErrors(errors=fields.errors)
    now = ctx.clock.now_ms()
    if name != run.name:
        await ctx.db.run(runs.rename_run, run.id, name, sub.user_id, now)
    if summary != run.summary:
        await ctx.db.run(runs.set_summary, run.id, summary, sub.user_id, now)
    if name != run.name or summary != run.summary:
        # A dialog's answer shows no text: the person is told once the posts show the change.
        show_later(ctx, run.id, sub.user_id, sub.channel_id, tell=ctx.render(
            "housekeeping/edited.md.j2", name=name, renamed=name != run.name, summarized=summary != run.summary))
    return NoReply()
