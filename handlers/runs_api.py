"""The runs' write API: start a run, post a status update, change an item, finish, add and remove
participants (`/api/v0/runs...`), as the caller (their own Mattermost token), under the rules chat follows.

Nothing here changes a run itself: each route calls the code the buttons, dialogs, commands and web forms
call (handlers.runs prepare_run/execute_run, handlers.status.post_update, handlers.items.change_item,
handlers.finish.finish_run, storage.people with the welcome and sidebar filing of a join), after the same
permission decision (bot.domain.permissions decide / may_run_playbook), so the channel's posts, the
timeline and the outgoing webhooks follow exactly as after a click. Nobody gets through the API what they
could not get in chat.

Answers: 400 a malformed request (`problems` name each field), 403 not allowed, 404 no such playbook, run
or item (or one the caller may not see: a private playbook is 404, never 403), 409 the run is not in a
state for it, 422 values that cannot be used (`problems` again). Every POST and PATCH honours
`Idempotency-Key` (handlers/idempotency.py).

A start is carried out while the request waits, as far as it goes now (handlers.runs.execute_run): 201
with the run when it completed; 202 `{"id", "status": "starting"}` when a step failed in a way worth
retrying (the start service carries it on within seconds; the run shows in `GET /api/v0/runs/{id}` once
complete); 502 `{"error", "id", "status": "failed"}` when it failed for good (nothing is left behind; the
error says why).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import iso
from bot.context import Context
from bot.domain.conditions import PropertyValueError, parse_value
from bot.domain.durations import DurationError, due_in_range
from bot.domain.permissions import (
    Action,
    Decision,
    PlaybookFacts,
    Viewer,
    decide,
    may_run_playbook,
    may_view_playbook,
)
from bot.models import MattermostError, MMUser
from bot.playbooks import Playbook
from bot.router import FieldError, HttpReply, HttpRequest, Router
from handlers import notices, sidebar
from handlers.access import add_to_channel, facts_of, visible_view
from handlers.api import run_json
from handlers.due import due_changed
from handlers.finish import finish_run
from handlers.idempotency import idempotent
from handlers.items import change_item
from handlers.properties import field_name
from handlers.runs import StepFailed, execute_run, existing_channel, prepare_run
from handlers.status import MAX_MESSAGE, parse_reminder, post_update
from handlers.views import refresh_checklist_later, schedule_overview_refresh
from storage import items as item_rows
from storage import people, runs
from storage.db import StorageError
from storage.models import ChecklistItem
from storage.runs import RunView

log = logging.getLogger(__name__)

router = Router("runs-api")

ORIGIN = "the API"
RUN_NOT_FOUND = (404, {"error": "No run with this id, or you may not see it."})
MAX_PEOPLE = 100  # members or participants named in one request
_ID = re.compile(r"[a-z0-9]{26}")
_USERNAME = re.compile(r"@?[a-z0-9._-]{1,64}")
# The states a client asks for -> the verbs (bot.domain.checklists.TRANSITIONS) that take an item there
# from each state it may be in. "closed" is what the read API shows for a checked item: accepted too.
WANTED_STATES = ("open", "checked", "closed", "skipped")
_ROUTES: dict[str, dict[str, tuple[str, ...]]] = {
    "open": {"closed": ("uncheck",), "skipped": ("restore",)},
    "checked": {"open": ("check",), "in_progress": ("check",), "skipped": ("restore", "check")},
    "skipped": {"open": ("skip",), "in_progress": ("skip",), "closed": ("restore", "skip")},
}
_ROUTES["closed"] = _ROUTES["checked"]


class Refused(Exception):
    """An answer other than success, raised from deep inside a route."""

    def __init__(self, status: int, error: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.problems = problems or []

    def reply(self) -> HttpReply:
        body: dict[str, Any] = {"error": self.error}
        if self.problems:
            body["problems"] = [{"path": p, "message": m} for p, m in self.problems]
        return self.status, body


def bad(problems: list[tuple[str, str]], error: str = "The request is malformed.") -> Refused:
    return Refused(400, error, problems)


def invalid(path: str, message: str) -> Refused:
    return Refused(422, message, [(path, message)])


@dataclass
class Body:
    """A request's JSON object, read field by field; a wrong type is a 400 naming the field."""

    raw: dict[str, Any]
    problems: list[tuple[str, str]]

    def string(self, key: str, *, required: bool = False) -> str | None:
        if key not in self.raw or self.raw[key] is None:
            if required:
                self.problems.append((key, "required: a string"))
            return None
        value = self.raw[key]
        if not isinstance(value, str):
            self.problems.append((key, f"expected a string, got {type(value).__name__}"))
            return None
        return value

    def strings(self, key: str) -> list[str]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append((key, "expected a list of user ids or usernames"))
            return []
        if len(value) > MAX_PEOPLE:
            self.problems.append((key, f"at most {MAX_PEOPLE} people in one request"))
            return []
        return list(value)

    def flag(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if not isinstance(value, bool):
            self.problems.append((key, "expected true or false"))
            return False
        return value

    def obj(self, key: str) -> dict[str, Any]:
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.append((key, f"expected an object, got {type(value).__name__}"))
            return {}
        return value

    def only(self, allowed: tuple[str, ...]) -> None:
        for key in self.raw:
            if key not in allowed:
                self.problems.append((key, f"unknown field; expected one of {', '.join(allowed)}"))


def read_body(request: HttpRequest, *, optional: bool = False) -> Body:
    if not request.body.strip():
        if optional:
            return Body({}, [])
        raise bad([("", "send a JSON object")])
    try:
        raw = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad([("", f"the body is not JSON: {exc}")]) from None
    if not isinstance(raw, dict):
        raise bad([("", f"expected a JSON object, got {type(raw).__name__}")])
    return Body(raw, [])


def _words(ctx: Context, decision: Decision) -> str:
    """The refusal chat gives, without its Markdown marks."""
    return ctx.render(decision.reason).replace("**", "").replace("`", "").strip()


async def _person(ctx: Context, ref: str, path: str) -> MMUser:
    """The active, human Mattermost user named by id or username; 422 otherwise."""
    user: MMUser | None = None
    try:
        if _ID.fullmatch(ref):
            user = await ctx.users.get(ref)
        if user is None and _USERNAME.fullmatch(ref.lower()):
            user = (await ctx.users.by_username([ref])).get(ref.lstrip("@").lower())
    except MattermostError as err:
        if err.status >= 500 or err.status == 0:
            raise Refused(502, f"Mattermost did not answer ({err.status}).") from err
        user = None
    if user is None or user.delete_at:
        raise invalid(path, f"No active user {ref!r} (give a user id or a username).")
    if user.is_bot:
        raise invalid(path, f"{user.username} is a bot; runs are worked by people.")
    return user


async def _in_team(ctx: Context, user: MMUser, team_id: str, path: str) -> None:
    try:
        teams = await ctx.gateway.user_team_ids(user.id)
    except MattermostError as err:
        raise Refused(502, f"Mattermost did not answer ({err.status}).") from err
    if team_id not in teams:
        raise invalid(path, f"{user.username} is not a member of the run's team.")


async def _workable(request: HttpRequest, ctx: Context, action: Action, history: bool = False) -> RunView:
    """The run when the caller may do `action` to it and it is in progress; else the answer that says why."""
    viewer = request.viewer()
    view = await visible_view(ctx, request.params["run_id"], viewer, history)
    if view is None:
        raise Refused(404, RUN_NOT_FOUND[1]["error"])
    decision = decide(viewer, facts_of(view), action)
    if not decision.allowed:
        raise Refused(403, _words(ctx, decision))
    if view.run.status != "in_progress":
        raise Refused(409, f"The run {view.run.name!r} is finished; restore it in chat to change it.")
    return view


async def _answer_run(ctx: Context, run_id: str, status: int = 200) -> HttpReply:
    view = await ctx.db.run(runs.load_view, run_id, True, readonly=True)
    assert view is not None
    return status, run_json(view)


async def _guarded(request: HttpRequest, ctx: Context, route: str, work: Any) -> HttpReply:
    """`work()` under the caller's Idempotency-Key for `route` (as requested); a Refused becomes its answer."""
    async def make() -> HttpReply:
        try:
            reply: HttpReply = await work()
            return reply
        except Refused as refused:
            return refused.reply()

    return await idempotent(request, ctx, route, make)


# --- start -------------------------------------------------------------------------------------------

def _playbook_teams(ctx: Context, pb: Playbook) -> frozenset[str] | None:
    return None if not pb.team else frozenset(t.id for t in ctx.teams.values() if t.name == pb.team)


def _properties(pb: Playbook, given: dict[str, Any]) -> dict[str, Any]:
    specs = {p.name: p for p in pb.properties}
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, raw in given.items():
        spec = specs.get(name)
        path = f"properties.{name}"
        if spec is None:
            problems.append((path, f"{pb.title!r} has no property {name!r}"
                                   + (f"; it has {', '.join(specs)}" if specs else "")))
            continue
        if not isinstance(raw, str) and not (isinstance(raw, list) and all(isinstance(v, str) for v in raw)):
            raise bad([(path, "expected a string, or a list of strings for a multiselect")])
        try:
            value = parse_value(spec, raw)
        except PropertyValueError as exc:
            problems.append((path, str(exc)))
            continue
        if value is not None:
            values[name] = value
    if problems:
        raise Refused(422, "Some properties cannot be used.", problems)
    return values


@router.http("POST", "/api/v0/runs")
async def start_run(request: HttpRequest, ctx: Context) -> HttpReply:
    return await _guarded(request, ctx, "POST /api/v0/runs", lambda: _start(request, ctx))


async def _start(request: HttpRequest, ctx: Context) -> HttpReply:
    body = read_body(request)
    body.only(("playbook", "team", "name", "summary", "owner", "members", "channel", "properties"))
    playbook_id = body.string("playbook", required=True)
    team_id = body.string("team")
    name = body.string("name") or ""
    summary = body.string("summary") or ""
    owner_ref = body.string("owner")
    member_refs = body.strings("members")
    channel = body.obj("channel")
    for key in channel:
        if key not in ("private", "id"):
            body.problems.append((f"channel.{key}", "unknown field; expected private or id"))
    if "private" in channel and not isinstance(channel["private"], bool):
        body.problems.append(("channel.private", "expected true or false"))
    if "id" in channel and not isinstance(channel["id"], str):
        body.problems.append(("channel.id", "expected a channel id"))
    given = body.obj("properties")
    if body.problems:
        raise bad(body.problems)
    assert playbook_id is not None
    viewer = request.viewer()
    pb = ctx.playbooks.get(playbook_id)
    if pb is None or not may_view_playbook(viewer, PlaybookFacts(_playbook_teams(ctx, pb), pb.access)) \
            or not may_run_playbook(viewer, pb):
        raise Refused(404, "No playbook with this id, or you may not see it.")
    if not team_id:
        teams = _playbook_teams(ctx, pb)
        if not teams:
            raise bad([("team", f"required: {pb.title!r} may run in any team, so name one (a team id)")])
        team_id = sorted(teams)[0]
    if team_id not in ctx.teams:
        raise invalid("team", "The bot is not in this team (give the id of a team the bot belongs to).")
    if team_id not in viewer.team_ids:
        raise Refused(403, "You are not a member of this team.")
    values = _properties(pb, given)
    try:
        plan = prepare_run(ctx, pb, name, summary, viewer.user_id, team_id, "", properties=values)
    except FieldError as err:
        path = {"playbook": "team"}.get(err.field, err.field)
        for spec in pb.properties:
            if err.field == field_name(pb.id, spec.name):
                path = f"properties.{spec.name}"
        raise invalid(path, str(err).replace("**", "").replace("`", "").strip()) from None
    if owner_ref:
        owner = await _person(ctx, owner_ref, "owner")
        await _in_team(ctx, owner, team_id, "owner")
        if owner.is_guest and not viewer.is_admin and owner.id != viewer.user_id:
            raise Refused(403, "Only system admins may make a guest take part in a run.")
        plan.owner_id = owner.id
    for n, ref in enumerate(member_refs):
        member = await _person(ctx, ref, f"members[{n}]")
        await _in_team(ctx, member, team_id, f"members[{n}]")
        if member.is_guest and not viewer.is_admin and member.id != viewer.user_id:
            raise Refused(403, "Only system admins may make a guest take part in a run.")
        if member.id not in plan.member_ids:
            plan.member_ids.append(member.id)
    plan.origin = ORIGIN
    await _channel_of(ctx, plan, pb, channel, viewer)
    outcome = await execute_run(ctx, plan)
    if not outcome.run_id:  # refused before anything was recorded (an existing channel that cannot be used)
        raise invalid("channel", outcome.error.replace("**", "").replace("`", "").strip())
    # The start is recorded: from here on a failing read must not answer 5xx, which would free the
    # Idempotency-Key and let a retry start a second run. It answers what is sure: the run's id.
    try:
        run = await ctx.db.run(runs.get_run, outcome.run_id, readonly=True)
        if run is not None and run.status in runs.SEEN_STATUSES:
            return await _answer_run(ctx, run.id, 201)
    except StorageError:
        log.exception("API: the run started but could not be read back run=%s", outcome.run_id)
        return 202, {"id": outcome.run_id, "status": "starting"}
    if run is not None and run.status == "failed":
        return 502, {"error": outcome.error.replace("**", "").replace("`", "").strip()
                     or "The run could not be started.", "id": run.id, "status": "failed"}
    return 202, {"id": outcome.run_id, "status": "starting"}


async def _channel_of(ctx: Context, plan: Any, pb: Playbook, channel: dict[str, Any], viewer: Viewer) -> None:
    """Check the channel options against what the playbook allows; for an existing channel, find it and
    check the caller is in it (403 when not: a run goes only where its starter may read and post)."""
    wanted_id = channel.get("id")
    if not pb.existing_channel:
        if wanted_id:
            raise invalid("channel.id", f"{pb.title!r} creates a channel for each run; leave channel.id out.")
        if "private" in channel and channel["private"] != pb.private_channel:
            kind = "private" if pb.private_channel else "public"
            raise invalid("channel.private", f"{pb.title!r} makes {kind} channels for its runs; change the "
                                             "playbook to change that.")
        return
    if "private" in channel:
        raise invalid("channel.private", f"{pb.title!r} runs in an existing channel, whose type is its own.")
    if pb.channel and wanted_id:
        raise invalid("channel.id", f"{pb.title!r} always runs in ~{pb.channel}; leave channel.id out.")
    if not pb.channel and not wanted_id:
        raise invalid("channel.id", f"{pb.title!r} runs in an existing channel: give its id.")
    if wanted_id and not _ID.fullmatch(wanted_id):
        raise invalid("channel.id", "Not a channel id.")
    try:
        found = await (ctx.gateway.get_channel(wanted_id) if wanted_id
                       else ctx.gateway.get_channel_by_name(plan.team_id, pb.channel))
        member = await ctx.gateway.is_channel_member(found.id, viewer.user_id)
    except MattermostError as err:
        if err.status in (403, 404):
            raise invalid("channel.id", "No such channel that the bot can see.") from err
        raise Refused(502, f"Mattermost did not answer ({err.status}).") from err
    if not member:
        raise Refused(403, "You are not a member of that channel; a run goes only where its starter may post.")
    plan.origin_channel_id = found.id
    try:
        plan.channel = await existing_channel(ctx, plan)
    except StepFailed as refused:
        raise invalid("channel.id", refused.reason.replace("**", "").replace("`", "").strip()) from None


# --- status updates, items, finish ---------------------------------------------------------------------

@router.http("POST", "/api/v0/runs/{run_id}/status_updates")
async def status_update(request: HttpRequest, ctx: Context) -> HttpReply:
    async def work() -> HttpReply:
        body = read_body(request)
        body.only(("message", "reminder", "finish"))
        message = (body.string("message", required=True) or "").strip()
        reminder = body.string("reminder")
        finish = body.flag("finish")
        if body.problems:
            raise bad(body.problems)
        view = await _workable(request, ctx, Action.WORK)
        run = view.run
        if not message:
            raise invalid("message", "An update needs some text.")
        if len(message) > MAX_MESSAGE:
            raise invalid("message", f"An update is at most {MAX_MESSAGE} characters; this one has {len(message)}.")
        interval_s = run.reminder_interval_s
        if reminder is not None:
            try:
                interval_s = parse_reminder(reminder.strip()[:40] or "off")
            except DurationError as err:
                raise invalid("reminder", f"Next reminder: {err} (e.g. 30m, 2h, 1d, or off).") from None
        if finish:
            decision = decide(request.viewer(), facts_of(view), Action.FINISH)
            if not decision.allowed:
                raise Refused(403, _words(ctx, decision))
        if not await post_update(ctx, run, request.user.id, message, interval_s, finish):
            raise Refused(409, f"The run {run.name!r} is finished.")
        return await _answer_run(ctx, run.id, 201)

    return await _guarded(request, ctx, f"POST /api/v0/runs/{request.params['run_id']}/status_updates", work)


def _due(raw: Any) -> int | None:
    """An ISO 8601 date and time (UTC when it names no offset) -> ms; None clears it."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise bad([("due", "expected an ISO 8601 date-time string, or null")])
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise invalid("due", f"{raw[:40]!r} is not an ISO 8601 date-time (e.g. 2026-12-01T14:00:00Z).") from None
    try:
        when = due_in_range(when, raw.strip())
    except DurationError as err:
        raise invalid("due", f"{err}.") from None
    return int(when.timestamp() * 1000)


@router.http("PATCH", "/api/v0/runs/{run_id}/items/{item_id}")
async def change_item_route(request: HttpRequest, ctx: Context) -> HttpReply:
    async def work() -> HttpReply:
        body = read_body(request)
        body.only(("state", "assignee", "due"))
        state = body.string("state")
        if state is not None and state not in WANTED_STATES:
            body.problems.append(("state", f"one of {', '.join(WANTED_STATES)}"))
        has_assignee = "assignee" in body.raw
        assignee_ref = body.string("assignee") if has_assignee else None
        if not (state or has_assignee or "due" in body.raw):
            body.problems.append(("", "send at least one of state, assignee, due"))
        if body.problems:
            raise bad(body.problems)
        due_ms = _due(body.raw.get("due")) if "due" in body.raw else None
        view = await _workable(request, ctx, Action.WORK)
        run = view.run
        found = view.find_item(request.params["item_id"])
        if found is None:
            raise Refused(404, "The run has no item with this id.")
        ci, checklist, ii, item = found
        number = f"{ci + 1}.{ii + 1}"
        caller = request.user.id
        assignee: MMUser | None = None
        if assignee_ref:
            assignee = await _person(ctx, assignee_ref, "assignee")
        # Everything is checked: now the changes, each through the path a command or button takes.
        if assignee is not None:
            await _make_participant(ctx, view, assignee, caller, f"@{assignee.username} (assigned {number})")
        changed = False
        if state is not None:
            for verb in _ROUTES[state].get(item.state, ()):
                change = await change_item(ctx, run.id, item.id, verb, caller)
                if change is None:
                    raise Refused(404, "The run has no item with this id.")
                changed |= change.changed
        if has_assignee:
            change = await change_item(ctx, run.id, item.id, "assign", caller,
                                       assignee_id=assignee.id if assignee else "")
            if change is None:
                raise Refused(404, "The run has no item with this id.")
            changed |= change.changed
            if change.changed and assignee is not None:
                notices.item_assigned(ctx, run, number, change.item, assignee.id, caller, reply_channel_id="")
        if "due" in body.raw:
            moved, due_changed_now = await ctx.db.run(item_rows.set_due, run.id, item.id, due_ms, caller,
                                                      ctx.clock.now_ms())
            if moved is None:
                raise Refused(404, "The run has no item with this id.")
            if due_changed_now:
                changed = True
                due_changed(ctx, due_ms)
        if changed:
            refresh_checklist_later(ctx, run.id, checklist.id)
        after = await ctx.db.run(runs.load_view, run.id, False, readonly=True)
        assert after is not None
        again = after.find_item(item.id)
        if again is None:
            raise Refused(404, "The run has no item with this id.")
        return 200, _item_json(again[3])

    params = request.params
    return await _guarded(request, ctx, f"PATCH /api/v0/runs/{params['run_id']}/items/{params['item_id']}", work)


def _item_json(item: ChecklistItem) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "description": item.description, "state": item.state,
            "assignee_id": item.assignee_id, "due_at": iso(item.due_at), "command": item.command}


@router.http("POST", "/api/v0/runs/{run_id}/finish")
async def finish(request: HttpRequest, ctx: Context) -> HttpReply:
    async def work() -> HttpReply:
        body = read_body(request, optional=True)
        body.only(())
        if body.problems:
            raise bad(body.problems)
        view = await _workable(request, ctx, Action.FINISH)
        if not await finish_run(ctx, view.run.id, request.user.id):
            raise Refused(409, f"The run {view.run.name!r} is finished already.")
        return await _answer_run(ctx, view.run.id)

    return await _guarded(request, ctx, f"POST /api/v0/runs/{request.params['run_id']}/finish", work)


# --- participants ----------------------------------------------------------------------------------------

REFUSALS = {
    "not_in_team": (422, "{name} is not a member of the run's team."),
    "guest": (403, "Only system admins may make a guest take part in a run."),
    "forbidden": (403, "Mattermost does not let the bot add {name} to the run's channel."),
    "failed": (502, "Mattermost did not add {name} to the run's channel; try again."),
}


async def _make_participant(ctx: Context, view: RunView, user: MMUser, actor_id: str, summary: str) -> bool:
    """`user` in the run's channel and a participant, as `/playbook join` and `assign` make them; whether
    they were added now."""
    run = view.run
    if user.id in view.participant_ids:
        return False
    refusal = await add_to_channel(ctx, run.channel_id, user.id, actor_id)
    if refusal:
        status, text = REFUSALS[refusal]
        raise Refused(status, text.format(name=user.username))
    added = await ctx.db.run(people.add_participant, run.id, user.id, actor_id, ctx.clock.now_ms(), summary)
    if added:  # (else the channel's user_added event recorded them a moment earlier, welcomed and filed them)
        notices.welcome(ctx, run, user.id)
        sidebar.file_joiner(ctx, run, user.id)
    schedule_overview_refresh(ctx, run.id)  # it names who is in the run
    return True


@router.http("POST", "/api/v0/runs/{run_id}/participants")
async def add_participants(request: HttpRequest, ctx: Context) -> HttpReply:
    """Add people: yourself as `/playbook join` may (anyone who may see the run); others as a participant
    (who works the run) may, as assigning them an item would."""
    async def work() -> HttpReply:
        body = read_body(request)
        body.only(("users",))
        refs = body.strings("users")
        if not refs and not body.problems:
            body.problems.append(("users", "required: a list of user ids or usernames"))
        if body.problems:
            raise bad(body.problems)
        caller = request.user.id
        users = [await _person(ctx, ref, f"users[{n}]") for n, ref in enumerate(refs)]
        others = any(u.id != caller for u in users)
        view = await _workable(request, ctx, Action.WORK if others else Action.JOIN)
        for user in users:
            await _make_participant(ctx, view, user, caller, f"@{user.username}")
        return await _answer_run(ctx, view.run.id)

    return await _guarded(request, ctx, f"POST /api/v0/runs/{request.params['run_id']}/participants", work)


@router.http("DELETE", "/api/v0/runs/{run_id}/participants/{user_id}")
async def remove_participant(request: HttpRequest, ctx: Context) -> HttpReply:
    """Take someone out of the run: yourself as `/playbook leave` does (never its owner); someone else
    only a system admin may (chat offers nobody else a way to)."""
    viewer = request.viewer()
    view = await visible_view(ctx, request.params["run_id"], viewer, False)
    if view is None:
        return RUN_NOT_FOUND
    wanted = request.params["user_id"]
    user_id = viewer.user_id if wanted == "me" else wanted
    facts = facts_of(view)
    if user_id == viewer.user_id:
        decision = decide(viewer, facts, Action.LEAVE)
        if not decision.allowed:
            return (409 if decision.reason.endswith(("owner_cannot_leave.md.j2", "nothing_to_leave.md.j2"))
                    else 403), {"error": _words(ctx, decision)}
    else:
        if not viewer.is_admin:
            return 403, {"error": "Only system admins may take someone else out of a run; they can leave it "
                                  "themselves."}
        if user_id == view.run.owner_id:
            return 409, {"error": "The owner cannot be taken out of the run; change its owner first."}
        if user_id not in view.participant_ids:
            return 404, {"error": "That person does not take part in this run."}
    names = await ctx.users.names([user_id])
    await ctx.db.run(people.remove_participant, view.run.id, user_id, viewer.user_id, ctx.clock.now_ms(),
                     f"@{names.get(user_id, user_id)}")
    schedule_overview_refresh(ctx, view.run.id)
    return await _answer_run(ctx, view.run.id)
