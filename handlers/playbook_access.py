"""Which playbooks a person may see, run and edit: the facts bot/domain/permissions.py needs about them
(their username and roles, from a short cache), and the filters every list of playbooks goes through —
the run dialog, `/playbook run`, `/playbook playbooks`, insights, the runs page's filters and the API."""
from __future__ import annotations

from typing import Iterable

from bot.context import Context
from bot.domain.permissions import Viewer, may_see_playbook
from bot.playbooks import Playbook


async def viewer_for(ctx: Context, user_id: str, team_ids: Iterable[str] = ()) -> Viewer:
    """`user_id` as the playbook rules see them: their roles and username (for `[access]` lists)."""
    user = await ctx.users.get(user_id)
    return Viewer(user_id, bool(user and user.is_admin), frozenset(team_ids),
                  is_guest=bool(user and user.is_guest), username=user.username if user else "")


async def with_username(ctx: Context, viewer: Viewer) -> Viewer:
    """`viewer` with its username filled in, when whoever built it did not know it."""
    if viewer.username:
        return viewer
    user = await ctx.users.get(viewer.user_id)
    if user is None:
        return viewer
    return Viewer(viewer.user_id, viewer.is_admin, viewer.team_ids, viewer.member_of, viewer.is_guest,
                  username=user.username, groups=viewer.groups)


def visible_playbooks(ctx: Context, viewer: Viewer) -> list[Playbook]:
    """The current playbooks `viewer` may see, in any team, by title."""
    return sorted((p for p in ctx.playbooks.values() if may_see_playbook(viewer, p)),
                  key=lambda p: p.title.lower())
