"""What a run command acts on: the run (selected by channel or `--run`), the person's right to act, and
an item or checklist named in the arguments. Every refusal raises UserError with a message that says
what to type instead.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bot.context import Context
from bot.domain import args as A
from bot.domain.permissions import Action, Decision, RunFacts, Viewer, decide
from bot.models import MattermostError, MMUser
from bot.router import SlashCommand, UserError
from commands.selection import command_viewer, select_run
from handlers.access import add_to_channel as add_to_channel  # re-exported: the commands use it from here
from storage import items
from storage.models import Checklist, ChecklistItem, Run


def usage_of(ctx: Context, name: str) -> str:
    spec = ctx.router.commands.get(name)
    return f"/playbook {name} {spec.usage}".strip() if spec else f"/playbook {name}"


def usage_error(ctx: Context, name: str, problem: str, **values: Any) -> UserError:
    """A wrong input: what was wrong (a template under commands/problems/), then the usage."""
    text = ctx.render(f"commands/problems/{problem}.md.j2", command=name, **values)
    return UserError(ctx.render("commands/usage.md.j2", problem=text, usage=usage_of(ctx, name)))


@dataclass
class RunTarget:
    run: Run
    args: tuple[str, ...]
    participant: bool
    follower: bool
    lists: "Lists | None" = None  # the run's checklists and items, when asked for (with_items)


async def target_run(ctx: Context, cmd: SlashCommand, action: Action,
                     statuses: tuple[str, ...] = ("in_progress",), *, with_items: bool = False,
                     takes_args: bool = True, args: tuple[str, ...] | None = None) -> RunTarget:
    """The run the command means, once the person is allowed `action` on it. The one place `--run` is
    taken out of what was typed (`args`, default everything after the subcommand), for every command.

    `with_items` also reads the run's checklists and items in the same read-only transaction (item
    commands need them anyway). A command that `takes_args=False` refuses any other word, the same
    way for every such command, instead of ignoring it."""
    run, rest = await select_run(ctx, cmd, cmd.rest if args is None else args, statuses=statuses)
    if rest and not takes_args:
        raise usage_error(ctx, cmd.subcommand, "extra_args", what="arguments besides `--run`",
                          query=A.shown(" ".join(rest)))
    (participant, follower), lists = await ctx.db.run(items.membership_and_items, run.id, cmd.user_id,
                                                      with_items, readonly=True)
    decision = await check(ctx, cmd, run, action, participant)
    if not decision.allowed:
        raise UserError(ctx.render(decision.reason))
    return RunTarget(run, rest, participant, follower, lists)


async def check(ctx: Context, cmd: SlashCommand, run: Run, action: Action, participant: bool) -> Decision:
    is_owner = cmd.user_id == run.owner_id
    # The common case (a participant working their run) costs no Mattermost call.
    if (participant or is_owner) and action in (Action.VIEW, Action.WORK, Action.JOIN):
        return decide(Viewer(cmd.user_id), RunFacts(run.team_id, run.owner_id, frozenset({cmd.user_id}),
                                                    run.private), action)
    viewer = await command_viewer(ctx, cmd)
    if run.private and cmd.channel_id == run.channel_id and not viewer.is_admin:
        # Seeing a private run for being in its channel rests on the request's channel, which only the
        # command's token vouches for: ask Mattermost before letting it count (a rare path).
        try:
            members = await ctx.gateway.get_channel_member_ids(run.channel_id)
        except MattermostError:
            members = []
        if cmd.user_id not in members:
            viewer = replace(viewer, member_of=frozenset())
    facts = RunFacts(run.team_id, run.owner_id, frozenset({cmd.user_id}) if participant else frozenset(),
                     run.private, run.participants_may_finish, run.channel_id, run.playbook_id)
    return decide(viewer, facts, action)


Lists = list[tuple[Checklist, list[ChecklistItem]]]


def item_titles(lists: Lists) -> list[list[str]]:
    return [[i.title for i in items] for _, items in lists]


def find_item(ctx: Context, name: str, words: tuple[str, ...], lists: Lists) -> tuple[str, ChecklistItem]:
    """(number as shown, item) named by `words`, or a UserError listing what could be meant."""
    found = A.find_item(words, item_titles(lists))
    if found.ok:
        at = found.found
        assert isinstance(at, A.ItemAt)
        return at.number, lists[at.checklist][1][at.item]
    if found.kind == "bad":
        raise usage_error(ctx, name, f"item_{found.problem}", query=A.shown(found.query))
    matches = [(m.number, lists[m.checklist][1][m.item])
               for m in found.matches if isinstance(m, A.ItemAt)][: A.MAX_MATCHES]
    raise UserError(ctx.render(
        "commands/item_lookup.md.j2", kind=found.kind, query=A.shown(found.query), command=name,
        matches=matches, more=max(0, len(found.matches) - A.MAX_MATCHES),
        checklists=[(n + 1, c.title, len(items)) for n, (c, items) in enumerate(lists)],
        usage=usage_of(ctx, name)))


def find_checklist(ctx: Context, name: str, found: A.Lookup, lists: Lists) -> tuple[int, Checklist]:
    if found.ok:
        assert isinstance(found.found, int)
        return found.found + 1, lists[found.found][0]
    if found.kind == "bad":
        raise usage_error(ctx, name, f"checklist_{found.problem}", query=A.shown(found.query))
    raise UserError(ctx.render(
        "commands/checklist_lookup.md.j2", kind=found.kind, query=A.shown(found.query),
        matches=[(m + 1, lists[m][0].title) for m in found.matches if isinstance(m, int)],
        checklists=[(n + 1, c.title, len(items)) for n, (c, items) in enumerate(lists)],
        usage=usage_of(ctx, name)))


async def find_person(ctx: Context, cmd: SlashCommand, name: str, text: str,
                      allow_nobody: bool = False) -> MMUser | None:
    """The MMUser named `@name` (or `me`); None for `nobody` when allowed."""
    ref = A.parse_person(text, allow_nobody=allow_nobody)
    if ref.problem:
        raise usage_error(ctx, name, f"person_{ref.problem}", query=A.shown(text))
    if ref.nobody:
        return None
    if ref.me:
        user = await ctx.users.get(cmd.user_id)
    else:
        user = (await ctx.users.by_username([ref.username])).get(ref.username)
    if user is None or user.delete_at:
        raise usage_error(ctx, name, "person_unknown", query=A.shown(text))
    if user.is_bot:
        raise usage_error(ctx, name, "person_bot", query=user.username)
    return user

