"""Whether a person may do something to a run, for buttons and dialogs (commands go through
commands/targets.py, which knows the channel the command was typed in). The rules themselves are in
bot/domain/permissions.py; this module gathers the facts they need, as cheaply as it can.
"""
from __future__ import annotations

import re

from bot.context import Context
from bot.domain.permissions import Action, RunFacts, Viewer, decide
from bot.models import MattermostError
from bot.router import UserError
from storage import people, runs
from storage.models import Run
from storage.runs import RunView

# What a run id can look like (storage/ids.py makes them; tests and imports may use others): a bounded token.
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def facts_of(view: RunView) -> RunFacts:
    """What the rules need to know of a loaded run."""
    run = view.run
    return RunFacts(run.team_id, run.owner_id, frozenset(view.participant_ids), run.private,
                    run.participants_may_finish, run.channel_id, run.playbook_id)


async def visible_view(ctx: Context, run_id: str, viewer: Viewer, history: bool = True) -> RunView | None:
    """The run (with its history unless told) when `viewer` may see it; None when it is missing, still
    starting, rolled back or hidden: one answer for all, so the HTTP API, the pages and the reports leak
    no run ids."""
    if not _RUN_ID.fullmatch(run_id):
        return None
    view = await ctx.db.run(runs.load_view, run_id, history, readonly=True)
    if view is None or view.run.status not in runs.SEEN_STATUSES:
        return None
    return view if decide(viewer, facts_of(view), Action.VIEW).allowed else None


async def authorize(ctx: Context, run_id: str, user_id: str, action: Action = Action.WORK
                    ) -> tuple[Run | None, str]:
    """(run, "") when allowed, else (run or None, the reason to show)."""
    # Read-only: no write lock, so checks run beside concurrent clicks instead of queueing behind them.
    found = await ctx.db.run(people.run_and_participation, run_id, user_id, readonly=True)
    if found is None or found[0].status == "failed":  # a start rolled back: its run is nobody's
        return None, ctx.render("errors/run_gone.md.j2")
    run, participant = found
    if run.status == "starting":
        return run, ctx.render("errors/run_starting.md.j2", name=run.name)
    if participant and action in (Action.WORK, Action.VIEW, Action.JOIN):
        return run, ""  # the common case costs no Mattermost call
    viewer_user = await ctx.users.get(user_id)
    viewer = ctx.with_hidden_playbooks(Viewer(
        user_id, bool(viewer_user and viewer_user.is_admin), frozenset({run.team_id}),
        is_guest=bool(viewer_user and viewer_user.is_guest), username=viewer_user.username if viewer_user else "",
        groups=await ctx.viewer_groups(user_id)))
    facts = RunFacts(run.team_id, run.owner_id, frozenset({user_id} if participant else ()), run.private,
                     run.participants_may_finish, run.channel_id, run.playbook_id)
    decision = decide(viewer, facts, action)
    return run, "" if decision.allowed else ctx.render(decision.reason)


async def allowed(ctx: Context, run_id: str, user_id: str, action: Action, *, in_progress: bool = False) -> Run:
    """The run, once `user_id` may do `action` to it (and it is in progress, when asked); else UserError."""
    run, refusal = await authorize(ctx, run_id, user_id, action)
    if refusal:
        raise UserError(refusal)
    assert run is not None
    if in_progress and run.status != "in_progress":
        raise UserError(ctx.render("errors/run_finished.md.j2", name=run.name))
    return run


async def add_to_channel(ctx: Context, channel_id: str, user_id: str, actor_id: str) -> str:
    """Empty when the person is (now) in the channel, else why not: not_in_team, forbidden, guest, failed.

    The bot adds people with its own rights, so it must not let anyone in whom the actor could not let
    in: a guest only when a system admin asks (Mattermost lets few people invite guests)."""
    if not channel_id:
        return ""
    if actor_id != user_id:
        person = await ctx.users.get(user_id)
        if person is not None and person.is_guest and not await ctx.is_admin(actor_id):
            return "guest"
    try:
        await ctx.gateway.add_channel_member(channel_id, user_id)
    except MattermostError as err:
        if err.status == 404:
            return "not_in_team"
        if err.status == 403:
            return "forbidden"
        return "failed"
    return ""
