"""Filing a run's channel under the playbook's sidebar category for everyone who takes part in it.

Everyone in the run at its start is filed (handlers/runs.py calls `file_in_category`), and so is anyone who
becomes a participant later (`file_joiner`): `/playbook join`, `/playbook assign`, `/playbook owner`, and
being added to the channel in Mattermost (the `user_added` event).

What Mattermost does, and so what filing has to do (docs/sidebar.md has the proof from its code):
- An update of categories rewrites the channel rows of the categories it names and of no other; a channel
  may have rows in two categories, and then shows in both. So filing is one bulk PUT of the destination
  (the channel added) and of every category it sits in now, usually `channels` (the channel taken out),
  as the web app moves a channel. Creating the category with the channel in it moves it by itself.
- The categories have no version: it is read, change, write. Two writers that read the same state lose one
  of their changes. So every filing of one person's sidebar holds that person's lock: in-process
  (`Context.locks`) and across bot processes on PostgreSQL (storage/locks.py), and after writing it reads
  the categories again and writes again (at most `MAX_WRITES` times) while the channel is not filed, for a
  writer that does not take the lock (the person's own web app, another integration).
- A channel the person keeps in Favorites is left there: they starred it.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Protocol

from bot.context import Context
from bot.models import MattermostError, MMCategory
from bot.notify import follow_up, notify
from storage.locks import SIDEBAR, LockTimeout, shared_locks
from storage.models import Run

log = logging.getLogger(__name__)

MAX_WRITES = 3


class Outcome(Protocol):
    """Where the run start collects what went wrong (handlers/runs.py RunOutcome)."""

    problems: list[str]


class NotFiled(Exception):
    """The channel was still not filed after MAX_WRITES writes: something kept undoing it."""


@dataclass(frozen=True)
class Placement:
    """What to write: a new category holding the channel, or these categories (one bulk PUT)."""

    create: bool = False
    updates: tuple[MMCategory, ...] = ()


def placement(categories: list[MMCategory], channel_id: str, category: str) -> Placement | None:
    """The write that files `channel_id` under the custom category `category`; None when it is filed
    (in that category and in no other, or in Favorites)."""
    holders = [c for c in categories if channel_id in c.channel_ids]
    if any(c.type == "favorites" for c in holders):
        return None
    target = next((c for c in categories if c.type == "custom" and c.display_name == category), None)
    if target is None:
        # CreateSidebarCategory takes the channel out of every category of the team first.
        return Placement(create=True)
    sources = [c for c in holders if c.id != target.id and c.type != "direct_messages"]
    updates = [replace(c, channel_ids=tuple(x for x in c.channel_ids if x != channel_id)) for c in sources]
    if channel_id not in target.channel_ids:
        updates.insert(0, replace(target, channel_ids=(channel_id, *target.channel_ids)))
    return Placement(updates=tuple(updates)) if updates else None


async def file_channel(ctx: Context, team_id: str, channel_id: str, category: str, user_id: str) -> None:
    """File `channel_id` under `category` in `user_id`'s sidebar on `team_id`, and see that it stays filed.

    Raises MattermostError (403: the bot lacks `edit_other_users`), NotFiled, or LockTimeout (another bot
    process held this person's sidebar for too long)."""
    name = f"{team_id}:{user_id}"
    async with ctx.locks(f"sidebar:{name}"), shared_locks(ctx.db).hold(SIDEBAR, name):
        for writes in range(MAX_WRITES + 1):
            categories = await ctx.gateway.get_categories(user_id, team_id)
            change = placement(categories, channel_id, category)
            if change is None:
                return
            if writes == MAX_WRITES:
                break
            if writes:
                log.info("filing undone by another writer, again user=%s channel=%s", user_id, channel_id)
            if change.create:
                await ctx.gateway.create_category(user_id, team_id, category, [channel_id])
            else:
                await ctx.gateway.update_categories(user_id, team_id, list(change.updates))
    raise NotFiled(f"still not filed after {MAX_WRITES} writes")


def _reason(ctx: Context, exc: BaseException | None) -> str:
    """Why filing failed, in words that follow "...: " (templates/sidebar/reason.md.j2)."""
    if isinstance(exc, MattermostError):
        kind = "denied" if exc.status == 403 else "mattermost"
    elif isinstance(exc, LockTimeout):
        kind = "busy"
    elif isinstance(exc, NotFiled):
        kind = "overwritten"
    else:
        kind = "internal"
    return ctx.render("sidebar/reason.md.j2", kind=kind, err=exc, bot_name=ctx.bot_user.username)


async def file_in_category(ctx: Context, team_id: str, channel_id: str, category: str,
                           user_ids: list[str], outcome: Outcome) -> None:
    """File a new run's channel for each of its first members, side by side.

    Without `edit_other_users` Mattermost answers 403 for other people's categories: say so once in the
    channel, with how to grant it, and carry on (the channel still shows under "Channels")."""
    if not category:
        return
    denied = False

    async def file_for(uid: str) -> None:
        nonlocal denied
        if denied:
            return
        try:
            await file_channel(ctx, team_id, channel_id, category, uid)
        except (MattermostError, NotFiled, LockTimeout) as exc:
            if isinstance(exc, MattermostError) and exc.status == 403:
                denied = True
                return
            user = await ctx.users.get(uid)
            username = user.username if user else uid
            outcome.problems.append(ctx.render("sidebar/problem.md.j2", username=username, category=category,
                                               reason=_reason(ctx, exc)))

    await asyncio.gather(*(file_for(uid) for uid in user_ids))
    if denied:
        try:
            await ctx.gateway.create_post(channel_id, ctx.render(
                "run/category_denied.md.j2", category=category, bot_name=ctx.bot_user.username))
        except MattermostError:
            log.warning("could not post the category notice channel=%s", channel_id)


def file_joiner(ctx: Context, run: Run, user_id: str) -> None:
    """Someone became a participant after the start (join, assign, made owner, added to the channel): file
    the run's channel for them as for the starters. A follow-up; if it fails, they are told why."""
    # A channel the run did not create (channel_mode = "existing") stays where each person keeps it.
    if not run.channel_id or run.existing_channel or user_id == ctx.bot_user.id:
        return
    category = ""  # the category of the playbook version the run started from

    def told(reason: str) -> str:
        return ctx.render("sidebar/not_filed.md.j2", run=run.name, category=category, reason=reason)

    async def work() -> None:
        nonlocal category
        playbook = await ctx.run_playbook(run)
        category = playbook.category if playbook is not None else ""
        if not category:
            return
        person = await ctx.users.get(user_id)
        if person is not None and person.is_bot:
            return  # nobody looks at a bot's sidebar
        try:
            await file_channel(ctx, run.team_id, run.channel_id, category, user_id)
        except (MattermostError, NotFiled, LockTimeout) as exc:
            log.warning("filing a late joiner failed run=%s user=%s error=%s", run.id, user_id, exc)
            await notify(ctx, user_id, run.channel_id, told(_reason(ctx, exc)))

    follow_up(ctx, work(), name=f"sidebar:{run.id}:{user_id}", user_id=user_id, channel_id=run.channel_id,
              failure=lambda: told(_reason(ctx, None)))
