"""The run's posts, rendered from stored state: the overview and one interactive post per checklist.

Every click and command re-renders from rows, never patches the old text, so what people see is
always what the database holds. Texts come from templates; buttons are built here.

A post's `message` is what never changes for the life of the post (the checklist's number and title;
the run's name, playbook and summary); everything that does (progress, owner, next update, finished,
items) is in its attachments. Mattermost refuses an edit that changes `message` once the post is older
than ServiceSettings.PostEditTimeLimit, but lets props change, so the posts keep up on such servers.
"""
from __future__ import annotations

import hashlib
from typing import Any

from bot import posts
from bot.actions import (
    CheckItem,
    EditRun,
    FinishRun,
    PostUpdate,
    RestoreItem,
    RunItemCommand,
    SkipItem,
    TakeItem,
    UncheckItem,
    button,
)
from bot.context import Context
from bot.domain.checklists import progress
from bot.domain.conditions import shown_properties
from bot.models import MMPost
from bot.posts import STATE_PROP
from bot.rendering import escape_md
from storage import runs
from storage.items import checklist_for_post, checklist_post_id, load_checklist_with_run
from storage.models import Checklist, ChecklistItem
from storage.runs import RunView

ICONS = {"open": ":white_large_square:", "in_progress": ":hourglass_flowing_sand:",
         "closed": ":white_check_mark:", "skipped": ":fast_forward:"}
COLORS = {"open": "#8a8f98", "in_progress": "#ffbc1f", "closed": "#3db887", "skipped": "#c7c7c7"}
RUN_COLORS = {"in_progress": "#1c58d9", "finished": "#3db887"}
# Props keys naming which run a post belongs to and which part of it the post shows ("overview",
# "checklist:<id>"; a start also marks "welcome" and "broadcast"): a post made but not recorded (a crash
# between the two) is found by them instead of being posted twice. Every rendering carries them, so an
# edit (which replaces props) keeps them.
RUN_PROP = "playbooks_run"
PART_PROP = "playbooks_part"
# The overview names this many participants, then says how many more.
OVERVIEW_PEOPLE = 12


def part_marker(checklist_id: str = "") -> str:
    return f"checklist:{checklist_id}" if checklist_id else "overview"


def item_buttons(ctx: Context, run_id: str, index: int, item: ChecklistItem) -> list[dict[str, Any]]:
    """Buttons for what can be done to the item now; ids are unique within the post ([A-Za-z0-9])."""
    url = ctx.action_url
    s = ctx.signer
    if item.state in ("open", "in_progress"):
        actions = [button(s, f"check{index}", "Check", CheckItem(run_id, item.id), url, "primary"),
                   button(s, f"skip{index}", "Skip", SkipItem(run_id, item.id), url)]
    elif item.state == "closed":
        actions = [button(s, f"uncheck{index}", "Uncheck", UncheckItem(run_id, item.id), url)]
    else:
        actions = [button(s, f"restore{index}", "Restore", RestoreItem(run_id, item.id), url)]
    if item.state in ("open", "in_progress"):
        actions.append(button(s, f"take{index}", "Assign to me", TakeItem(run_id, item.id), url))
        if item.command.strip():
            # Runs the item's slash command as the person clicking where they gave the bot their token
            # (signed in to the web view with Mattermost); else hands it to them to send.
            actions.append(button(s, f"run{index}", "Run command", RunItemCommand(run_id, item.id), url))
    return actions


def render_checklist(ctx: Context, run_id: str, number: int, checklist: Checklist,
                     items: list[ChecklistItem], names: dict[str, str], now_ms: int,
                     interactive: bool = True) -> tuple[str, dict[str, Any]]:
    prog = progress([i.state for i in items])
    message = ctx.render("run/checklist_header.md.j2", number=number, title=checklist.title)
    done = ctx.render("run/checklist_progress.md.j2", done=prog.done, total=prog.total)
    attachments: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        text = ctx.render(
            "run/item.md.j2", icon=ICONS.get(item.state, ""), number=f"{number}.{index + 1}",
            title=item.title, state=item.state, assignee=names.get(item.assignee_id, ""),
            due_at=item.due_at, overdue=_overdue(item, now_ms),
        ).replace("\n", "")
        if item.description:
            # The playbook's notes on the item (definitions, links), under its title, as written.
            text += "\n" + ctx.render("run/item_description.md.j2", description=item.description)
        attachment: dict[str, Any] = {"fallback": text, "text": text, "color": COLORS[item.state]}
        if interactive:
            attachment["actions"] = item_buttons(ctx, run_id, index, item)
        attachments.append(attachment)
    # The progress rides above the first item (`pretext`), so attachment i stays item i; a checklist
    # whose items were all removed shows it in an attachment of its own.
    if attachments:
        attachments[0] = {"pretext": done, **attachments[0]}
    else:
        attachments.append({"fallback": done, "text": done})
    return message, {"attachments": attachments, STATE_PROP: checklist_state(items, interactive, now_ms),
                     RUN_PROP: run_id, PART_PROP: part_marker(checklist.id)}


def _overdue(item: ChecklistItem, now_ms: int) -> bool:
    return bool(item.due_at and item.due_at <= now_ms and item.state in ("open", "in_progress"))


def checklist_state(items: list[ChecklistItem], interactive: bool = True, now_ms: int = 0) -> str:
    """A digest of everything a checklist post shows (an item falling due changes it too)."""
    # An item with a command adds a mark (its button), so the digest of every other item stays as it was.
    raw = "|".join(f"{i.id}:{i.state}:{i.assignee_id}:{i.due_at}:{_overdue(i, now_ms)}:{i.title}:"
                   f"{hashlib.sha256(i.description.encode()).hexdigest()[:8]}"
                   + (":cmd" if i.command.strip() else "") for i in items)
    return hashlib.sha256(f"{interactive}|{raw}".encode()).hexdigest()[:16]


def render_overview(ctx: Context, view: RunView, names: dict[str, str]) -> tuple[str, dict[str, Any]]:
    prog = progress(view.item_states())
    run = view.run
    next_at = view.reminder.due_at if view.reminder and run.status == "in_progress" else None
    message = ctx.render("run/overview.md.j2", name=run.name, playbook=run.playbook_title, summary=run.summary)
    # The owner first, then everyone else by name.
    others = sorted(n for uid in view.participant_ids
                    if uid not in (ctx.bot_user.id, run.owner_id) and (n := names.get(uid, "")))
    owner_name = names.get(run.owner_id, "") if run.owner_id in view.participant_ids else ""
    people = ([owner_name] if owner_name else []) + others
    status = ctx.render(
        "run/overview_status.md.j2", owner=names.get(run.owner_id, run.owner_id), done=prog.done,
        total=prog.total, percent=prog.percent, finished=run.status == "finished",
        finished_at=run.finished_at, next_update_at=next_at, people=people[:OVERVIEW_PEOPLE],
        more=max(0, len(people) - OVERVIEW_PEOPLE),
    )
    attachment: dict[str, Any] = {"fallback": status, "text": status,
                                  "color": RUN_COLORS.get(run.status, RUN_COLORS["in_progress"])}
    # The run's properties, as the attachment's fields (the message stays as posted).
    fields = [{"title": p.title, "value": escape_md(p.value), "short": True}
              for p in shown_properties(run.property_defs, run.properties)]
    if fields:
        attachment["fields"] = fields
    actions = overview_actions(ctx, view)
    if actions:
        attachment["actions"] = actions
    # The digest covers what is shown (not the buttons' signatures, which differ on every rendering).
    shown = [message, status, attachment["color"], [a["id"] for a in actions], fields]
    state = hashlib.sha256(repr(shown).encode()).hexdigest()[:16]
    return message, {"attachments": [attachment], STATE_PROP: state, RUN_PROP: run.id, PART_PROP: part_marker()}


def overview_names(view: RunView) -> list[str]:
    """The user ids the overview names: its owner and participants."""
    return [view.run.owner_id, *view.participant_ids]


def overview_actions(ctx: Context, view: RunView) -> list[dict[str, Any]]:
    """Buttons on the overview post: none once the run is finished."""
    if view.run.status != "in_progress":
        return []
    return [button(ctx.signer, "overviewupdate", "Post update", PostUpdate(view.run.id), ctx.action_url,
                   "primary"),
            button(ctx.signer, "overviewedit", "Edit run", EditRun(view.run.id), ctx.action_url),
            button(ctx.signer, "overviewfinish", "Finish", FinishRun(view.run.id), ctx.action_url)]


async def refresh_checklist_post(ctx: Context, view: RunView, checklist_index: int) -> None:
    checklist, _ = view.checklists[checklist_index]
    if checklist.post_id:
        await edit_checklist_post(ctx, checklist.id, checklist.post_id)


async def checklist_rendering(ctx: Context, checklist_id: str) -> posts.Rendering | None:
    """A checklist post as its rows are now (read-only: runs beside writers); None when it is gone."""
    loaded = await ctx.db.run(load_checklist_with_run, checklist_id, readonly=True)
    if loaded is None:
        return None
    run, checklist, rows = loaded
    names = await ctx.users.names([i.assignee_id for i in rows])
    message, props = render_checklist(ctx, run.id, checklist.position + 1, checklist, rows, names,
                                      ctx.clock.now_ms(), interactive=run.status == "in_progress")
    return posts.Rendering(message, props)


async def edit_checklist_post(ctx: Context, checklist_id: str, post_id: str) -> None:
    """Edit a checklist post to show its rows (bot.posts.rewrite: under the post's lock, marked as sent)."""
    await posts.rewrite(ctx, post_id, lambda: checklist_rendering(ctx, checklist_id))


async def checklist_source(ctx: Context, post: MMPost) -> posts.Source | None:
    """What a checklist post should show, for bot.posts.mend; None for a post that is no checklist."""
    found = await ctx.db.run(checklist_for_post, post.id, readonly=True)
    if found is None:
        return None
    checklist, rows, status = found

    async def render() -> posts.Rendering:
        # The mend asks for the source again under the post's lock, so these rows are current.
        names = await ctx.users.names([i.assignee_id for i in rows])
        message, props = render_checklist(ctx, checklist.run_id, checklist.position + 1, checklist, rows, names,
                                          ctx.clock.now_ms(), interactive=status == "in_progress")
        return posts.Rendering(message, props)

    return posts.Source(checklist_state(rows, status == "in_progress", ctx.clock.now_ms()), render)


async def overview_rendering(ctx: Context, run_id: str) -> posts.Rendering | None:
    """The overview post as its rows are now; None for a run without one."""
    view = await ctx.db.run(runs.load_overview, run_id, readonly=True)
    if view is None or not view.run.overview_post_id:
        return None
    names = await ctx.users.names(overview_names(view))
    message, props = render_overview(ctx, view, names)
    return posts.Rendering(message, props)


async def run_post_source(ctx: Context, post: MMPost) -> posts.Source | None:
    """What a run's checklist or overview post should show (bot.posts.mend); None for other posts."""
    found = await checklist_source(ctx, post)
    if found is not None:
        return found
    where = await ctx.db.run(runs.run_post, post.id, readonly=True)
    if where is None or where[1]:
        return None
    rendering = await overview_rendering(ctx, where[0])
    if rendering is None:
        return None

    async def render() -> posts.Rendering:
        again = await overview_rendering(ctx, where[0])
        return again or rendering

    return posts.Source(rendering.state, render)


def refresh_checklist_later(ctx: Context, run_id: str, checklist_id: str) -> None:
    """Re-render a checklist post (and the overview) from rows after the answer, coalesced.

    A command's answer does not wait for the post edit (a 50-item post is the slow part of a check);
    rendering from rows when the edit runs means a burst of commands costs one or two edits, and the
    last one always shows the latest state.
    """
    async def edit() -> None:
        post_id = await ctx.db.run(checklist_post_id, checklist_id, readonly=True)
        if post_id:
            await edit_checklist_post(ctx, checklist_id, post_id)

    ctx.tasks.coalesce(f"checklist:{checklist_id}", edit)
    schedule_overview_refresh(ctx, run_id)


async def refresh_overview(ctx: Context, run_id: str) -> None:
    """Re-render the overview post from stored state (coalesced by the caller); no call to
    Mattermost when it would show exactly what it shows (an assignee change moves no progress)."""
    view = await ctx.db.run(runs.load_overview, run_id, readonly=True)
    if view is None or not view.run.overview_post_id:
        return
    names = await ctx.users.names(overview_names(view))
    message, props = render_overview(ctx, view, names)
    await posts.show(ctx, view.run.overview_post_id, posts.Rendering(message, props))


async def refresh_posts(ctx: Context, run_id: str) -> None:
    """The overview and every checklist post; a finished run's checklists lose their buttons."""
    await refresh_overview(ctx, run_id)
    view = await ctx.db.run(runs.load_view, run_id, readonly=True)
    if view is None:
        return
    for index in range(len(view.checklists)):
        await refresh_checklist_post(ctx, view, index)


def schedule_overview_refresh(ctx: Context, run_id: str) -> None:
    ctx.tasks.coalesce(f"overview:{run_id}", lambda: refresh_overview(ctx, run_id))
