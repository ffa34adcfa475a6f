"""`/playbook timeline`: show a run's timeline; `/playbook timeline add <post id or permalink> [summary]`
puts an existing post on it (the plugin's `/playbook add <postID>`, reached from a post's menu).

The post must be one the person could read (a public channel of the run's team, or a private one they
are in) and must belong to the run's team: adding a post copies its first words onto the timeline, which
everyone who can see the run reads.
"""
from __future__ import annotations

import re

from bot.context import Context
from bot.domain import args as A
from bot.domain.permissions import Action
from bot.models import MattermostError, MMChannel, MMPost
from bot.router import Ephemeral, Reply, Router, SlashCommand, UserError
from commands.selection import viewer_zone
from commands.targets import target_run, usage_error
from storage import timeline

router = Router("timeline")

MAX_SUMMARY = 64  # the plugin's limit on a timeline summary
DEFAULT_WORDS = 40  # the default summary: this many characters of the post, then "…"
_POST_ID = re.compile(r"[a-z0-9]{26}")
# A permalink, as Mattermost's "Copy Link" gives it: <site>/<team>/pl/<post id>.
_PERMALINK = re.compile(r"https?://\S+?/[^/\s]+/pl/([a-z0-9]{26})/?(?:[?#]\S*)?")


def parse_post_ref(text: str) -> str | None:
    """The post id in `text` (an id or a permalink), or None."""
    text = text.strip().strip("<>")
    if _POST_ID.fullmatch(text):
        return text
    match = _PERMALINK.fullmatch(text)
    return match.group(1) if match else None


def default_summary(message: str) -> str:
    one_line = " ".join(message.split())
    return one_line if len(one_line) <= DEFAULT_WORDS else one_line[:DEFAULT_WORDS].rstrip() + "…"


MAX_TIMELINE_ROWS = 100
TIMELINE_LABELS = {
    "run_started": "Run started", "status_updated": "Status update", "reminder_sent": "Reminder",
    "reminder_snoozed": "Reminder snoozed", "owner_changed": "Owner changed",
    "item_state_changed": "Item changed", "assignee_changed": "Assignee changed", "item_added": "Item added",
    "item_removed": "Item removed", "command_ran": "Command ran", "participant_joined": "Joined",
    "participant_left": "Left", "run_finished": "Finished", "run_restored": "Restored",
    "retrospective_published": "Retrospective published", "retrospective_updated": "Retrospective updated",
    "retrospective_cancelled": "No retrospective",
    "event_from_post": "Post", "update_requested": "Update requested", "item_due_changed": "Due time changed",
    "run_renamed": "Renamed", "summary_changed": "Summary changed", "checklist_added": "Checklist added",
    "checklist_renamed": "Checklist renamed", "checklist_moved": "Checklist moved",
    "channel_archived": "Channel archived", "channel_unarchived": "Channel reopened",
    "property_changed": "Property changed", "item_auto_checked": "Checked by a post",
    "action_succeeded": "Action done", "action_failed": "Action failed",
}
BOTH = ("in_progress", "finished")
# Events whose details name people (by user id) rather than states or times.
PERSON_EVENTS = {"assignee_changed", "owner_changed", "participant_joined", "participant_left"}


@router.command("timeline", usage="[add <post id or link> [summary]] [--run <name>]")
async def timeline_command(cmd: SlashCommand, ctx: Context) -> Reply:
    """Show the run's timeline, or add a post to it: `add` and the post's link."""
    if cmd.rest and cmd.rest[0].lower() == "add":
        return await timeline_add(cmd, ctx)
    target = await target_run(ctx, cmd, Action.VIEW, statuses=BOTH, takes_args=False)
    run = target.run
    events = await ctx.db.run(timeline.timeline, run.id, readonly=True)
    shown = events[-MAX_TIMELINE_ROWS:]
    people = {e.actor_id for e in shown}
    for e in shown:  # whom each entry is about: assignees, owners, participants
        people.update(str(e.details.get(k) or "") for k in ("from", "to", "user_id", "by")
                      if e.type in PERSON_EVENTS)
    names = await ctx.users.names(sorted(p for p in people if p))
    return Ephemeral(ctx.render("updates/timeline.md.j2", tz=await viewer_zone(ctx, cmd.user_id),
                                name=run.name, events=shown, names=names,
                                hidden=len(events) - len(shown), labels=TIMELINE_LABELS))


async def timeline_add(cmd: SlashCommand, ctx: Context) -> Reply:
    """`cmd.rest` is ("add", <post>, [summary words], [--run <name>])."""
    target = await target_run(ctx, cmd, Action.WORK, args=cmd.rest[1:])
    run = target.run
    if not target.args:
        raise usage_error(ctx, "timeline", "post_missing")
    post_id = parse_post_ref(target.args[0])
    if post_id is None:
        raise usage_error(ctx, "timeline", "post_bad", query=A.shown(target.args[0]))
    words = " ".join(target.args[1:]).strip()
    if len(words) > MAX_SUMMARY:
        raise usage_error(ctx, "timeline", "summary_too_long", length=len(words), limit=MAX_SUMMARY)
    post, channel = await _readable_post(ctx, cmd.user_id, post_id)
    if post is None or channel is None:
        raise UserError(ctx.render("updates/post_unreadable.md.j2", post_id=post_id))
    if channel.team_id != run.team_id:
        raise UserError(ctx.render("updates/post_other_team.md.j2", name=run.name))
    summary = words or default_summary(post.message)
    if not summary:
        author = (await ctx.users.names([post.user_id])).get(post.user_id, "")
        summary = ctx.render("updates/post_summary_empty.md.j2", author=author).strip()
    summary = summary[:MAX_SUMMARY]
    async with ctx.locks(run.id):
        event = await ctx.db.run(timeline.add_post_event, run.id, post.id, post.create_at or ctx.clock.now_ms(),
                                 cmd.user_id, summary, {"channel_id": channel.id, "author_id": post.user_id})
    if event is None:
        raise UserError(ctx.render("updates/post_already.md.j2", name=run.name))
    return Ephemeral(ctx.render("updates/post_added.md.j2", name=run.name, summary=summary))


async def _readable_post(ctx: Context, user_id: str, post_id: str) -> tuple[MMPost | None, MMChannel | None]:
    """The post and its channel when the bot can read it and the person could too; else (None, None),
    the same for a missing post as for a hidden one, so the answer says nothing about what exists."""
    try:
        post = await ctx.gateway.get_post(post_id)
        channel = await ctx.gateway.get_channel(post.channel_id)
        if channel.type != "O" and user_id not in await ctx.gateway.get_channel_member_ids(channel.id):
            return None, None
    except MattermostError as err:
        if err.status in (400, 403, 404):
            return None, None
        raise
    return post, channel
