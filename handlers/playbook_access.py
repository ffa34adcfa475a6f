"""Which playbooks a person may see, run and edit: the facts bot/domain/permissions.py needs about them
(their username and roles, from a short cache), and the filters every list of playbooks goes through —
the run dialog, `/playbook run`, `/playbook playbooks`, insights, the runs page's filters and the API."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping

from bot.context import Context
from bot.domain.permissions import PlaybookAccess, PlaybookFacts, Viewer, may_see_playbook
from bot.playbooks import Playbook, PlaybookInvalid, parse_playbook


async def viewer_for(ctx: Context, user_id: str, team_ids: Iterable[str] = ()) -> Viewer:
    """`user_id` as the playbook rules see them: their roles, username and groups (for `[access]` lists)."""
    user = await ctx.users.get(user_id)
    return Viewer(user_id, bool(user and user.is_admin), frozenset(team_ids),
                  is_guest=bool(user and user.is_guest), username=user.username if user else "",
                  groups=await ctx.viewer_groups(user_id))


async def with_username(ctx: Context, viewer: Viewer) -> Viewer:
    """`viewer` with its username and groups filled in, when whoever built it did not know them."""
    groups = viewer.groups or await ctx.viewer_groups(viewer.user_id)
    if viewer.username:
        return replace(viewer, groups=groups)
    user = await ctx.users.get(viewer.user_id)
    if user is None:
        return replace(viewer, groups=groups)
    return replace(viewer, username=user.username, groups=groups)


def visible_playbooks(ctx: Context, viewer: Viewer) -> list[Playbook]:
    """The current playbooks `viewer` may see, in any team, by title."""
    return sorted((p for p in ctx.playbooks.values() if may_see_playbook(viewer, p)),
                  key=lambda p: p.title.lower())


def playbook_facts(ctx: Context, data: Mapping[str, Any] | None) -> PlaybookFacts:
    """The permission facts of a playbook's data dict: its teams (by URL name; one the bot is not in
    matches nobody's teams) and its `[access]`. Versions are valid when saved; one that does not parse is
    treated as private to nobody (system admins only)."""
    data = data or {}
    team = data.get("team")
    team_ids = None if not isinstance(team, str) or not team else frozenset(
        t.id for t in ctx.teams.values() if t.name == team)
    try:
        access = parse_playbook(data, playbook_id="playbook", path="playbook").access
    except PlaybookInvalid:
        access = PlaybookAccess(public=False)
    return PlaybookFacts(team_ids=team_ids, access=access)
