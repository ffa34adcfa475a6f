"""Dialog submissions that start things: the "Run a playbook" dialog."""
from __future__ import annotations

from bot.actions import StartRunDialog
from bot.context import Context
from bot.router import DialogErrors, DialogSubmission, NoReply, Reply, Router, UserError
from commands.run import spawn_run
from handlers.runs import prepare_run, team_playbooks

router = Router("dialogs")


@router.dialog(StartRunDialog)
async def run_dialog_submit(sub: DialogSubmission, ctx: Context) -> Reply:
    if sub.cancelled:
        return NoReply()
    ref = sub.ref
    assert isinstance(ref, StartRunDialog)
    values = sub.submission or {}
    wanted = str(values.get("playbook") or "")
    playbook = next((p for p in team_playbooks(ctx, ref.team_id) if p.id == wanted), None)
    if playbook is None:
        return DialogErrors(errors={"playbook": "Choose one of the playbooks in the list."})
    try:
        plan = prepare_run(ctx, playbook, str(values.get("name") or ""), str(values.get("summary") or ""),
                           sub.user_id, ref.team_id, ref.channel_id)
    except UserError as err:
        return DialogErrors(errors={"name": str(err)})
    spawn_run(ctx, plan)
    return NoReply()
