"""`/playbook set`: show the run's properties, or change one (handlers/properties.py does the change).

`/playbook set` alone lists them; `/playbook set severity sev1` sets one (a multiselect takes options
separated by commas: `/playbook set services api, db`); `/playbook set severity` clears it, unless the
playbook requires it. Participants may (Action.WORK, as for any other change to the run).
"""
from __future__ import annotations

from bot.context import Context
from bot.domain import args as A
from bot.domain.conditions import PropertyValueError, parse_value, run_specs, shown
from bot.domain.permissions import Action
from bot.router import Ephemeral, Reply, Router, SlashCommand, UserError
from commands.targets import target_run, usage_error
from handlers.properties import change_property

router = Router("properties")


@router.command("set", usage="[<property> [<value>]] [--run <name>]")
async def run_set(cmd: SlashCommand, ctx: Context) -> Reply:
    """Show the run's properties, or set one (no value: clear it); items shown on them follow."""
    target = await target_run(ctx, cmd, Action.WORK if cmd.rest else Action.VIEW)
    run = target.run
    specs = run_specs(run.property_defs)
    if not target.args:
        props = [{"name": s.name, "title": s.title, "value": shown(run.properties.get(s.name)),
                  "options": s.options, "multi": s.type == "multiselect"} for s in specs]
        return Ephemeral(ctx.render("properties/list.md.j2", name=run.name, props=props))
    wanted = target.args[0].lower()
    spec = next((s for s in specs if s.name == wanted or s.title.lower() == wanted), None)
    if spec is None:
        raise usage_error(ctx, "set", "property_unknown", query=A.shown(target.args[0]),
                          names=[s.name for s in specs])
    raw = " ".join(target.args[1:])
    try:
        value = parse_value(spec, raw)
    except PropertyValueError as exc:
        raise UserError(ctx.render("properties/bad_value.md.j2", title=spec.title, problem=str(exc))) from exc
    if value is None and spec.required:
        raise UserError(ctx.render("properties/required_clear.md.j2", title=spec.title))
    change = await change_property(ctx, run.id, spec.name, value, cmd.user_id)
    if change is None:
        raise UserError(ctx.render("errors/run_gone.md.j2"))
    if not change.changed:
        return Ephemeral(ctx.render("properties/unchanged.md.j2", title=spec.title, name=run.name,
                                    value=shown(value)))
    return Ephemeral(ctx.render("properties/changed.md.j2", title=spec.title, name=run.name, value=shown(value),
                                shown=change.shown, hidden=change.hidden))
