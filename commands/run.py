"""`/playbook run`: start a run now, or choose the playbook in a dialog (handlers/runs.py starts it)."""
from __future__ import annotations

from bot.context import Context
from bot.domain.permissions import Viewer
from bot.domain.suggest import closest
from bot.playbooks import Playbook
from bot.router import Ephemeral, OpenDialog, Reply, Router, SlashCommand, UserError
from commands.selection import command_viewer
from commands.targets import usage_error
from handlers.properties import parse_command_properties
from handlers.runs import prepare_run, spawn_run, start_dialog, team_playbooks

router = Router("run")


def find_playbook(ctx: Context, team_id: str, viewer: Viewer, args: tuple[str, ...]
                  ) -> tuple[Playbook, tuple[str, ...]]:
    """The playbook named by the leading words (id, or title case-insensitively), and the words left.

    The longest leading run of words that is a whole title wins, so "Incident response db down" picks
    the playbook titled "Incident response" and names the run "db down".
    """
    choices = team_playbooks(ctx, team_id, viewer)  # a private playbook is unknown to anyone outside it
    # No title has more words than this: trying longer prefixes was quadratic in what was typed (a
    # 300,000-word command held the event loop for minutes).
    longest = max((len(p.title.split()) for p in choices), default=1)
    for n in range(min(len(args), max(longest, 1)), 0, -1):
        words = " ".join(args[:n]).lower()
        exact = [p for p in choices if p.id.lower() == words or p.title.lower() == words]
        if len(exact) == 1:
            return exact[0], args[n:]
        if len(exact) > 1:
            raise UserError(ctx.render("commands/ambiguous_playbook.md.j2", query=" ".join(args[:n]),
                                       choices=exact))
    query = args[0].lower() if args else ""
    partial = [p for p in choices if query and (p.id.lower().startswith(query) or query in p.title.lower())]
    if len(partial) == 1:
        return partial[0], args[1:]
    if len(partial) > 1:
        raise UserError(ctx.render("commands/ambiguous_playbook.md.j2", query=args[0], choices=partial))
    guess = None
    if query:
        by_name = {name: p for p in choices for name in (p.id, p.title)}
        near = closest(query, by_name)
        guess = by_name[near[0]] if near else None
    raise UserError(ctx.render("commands/unknown_playbook.md.j2", query=args[0] if args else "",
                               choices=choices, guess=guess))


def take_properties(ctx: Context, words: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """The words without each `--property name=value`, and those `name=value` pairs."""
    rest: list[str] = []
    pairs: list[str] = []
    it = iter(words)
    for word in it:
        if word.lower() == "--property":
            pair = next(it, "")
            if "=" not in pair:
                raise usage_error(ctx, "run", "property_missing")
            pairs.append(pair)
        elif word.lower().startswith("--property="):
            pairs.append(word.split("=", 1)[1])
        else:
            rest.append(word)
    return tuple(rest), pairs


@router.command("run", usage="[playbook] [run name]")  # `--property name=value`: README
async def run_start(cmd: SlashCommand, ctx: Context) -> Reply:
    """Start a run of a playbook; with no arguments, choose it in a dialog."""
    viewer = await command_viewer(ctx, cmd)
    if not cmd.rest:
        return OpenDialog(start_dialog(ctx, cmd.team_id, cmd.channel_id, viewer))
    words, pairs = take_properties(ctx, cmd.rest)
    playbook, words = find_playbook(ctx, cmd.team_id, viewer, words)
    values = parse_command_properties(ctx, playbook, pairs)
    plan = prepare_run(ctx, playbook, " ".join(words), "", cmd.user_id, cmd.team_id, cmd.channel_id,
                       cmd.response_url, properties=values)
    spawn_run(ctx, plan)
    return Ephemeral(ctx.render("run/starting.md.j2", name=plan.name, playbook=playbook.title,
                                existing=playbook.existing_channel, channel=playbook.channel))
