"""The web view's runs list (`/runs`, `/runs.csv`) and run page (`/runs/{run_id}`), its live updates
(`/runs/{run_id}/events`) and the forms on it (check, uncheck, skip, restore an item; post a status
update; finish; follow).

Who sees what is the one rule of bot/domain/permissions.py: the list is storage.runs.visible_to in SQL, a
page asks `decide(viewer, facts, Action.VIEW)` and answers a run the person may not see exactly as a
missing one. The forms change nothing themselves: they call the code the buttons, dialogs and commands
call (handlers.items.change_item with refresh_checklist_later, handlers.status.post_update,
handlers.finish.finish_run, storage.people.follow), after the same permission decision, so the channel's
posts follow as after a click.

The live page polls the database (storage.web_runs.run_version), not an in-process signal, so a change
made through any bot process reaches every open page.
"""
from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from bot.clock import iso
from bot.context import Context
from bot.domain.checklists import TRANSITIONS, progress
from bot.domain.conditions import run_specs
from bot.domain.durations import DurationError, format_duration_compact
from bot.domain.permissions import Action, Decision, Viewer, decide
from bot.models import MMUser
from bot.router import (
    Download,
    EventStream,
    Page,
    Redirect,
    Router,
    ServerEvent,
    UserError,
    WebReply,
    WebRequest,
)
from handlers.access import facts_of, visible_view
from handlers.finish import finish_run
from handlers.items import change_item
from handlers.status import MAX_MESSAGE, parse_reminder, post_update
from handlers.views import refresh_checklist_later
from handlers.web_playbooks import may_improve
from storage import items as item_rows
from storage import people, web_runs
from storage.runs import RunView
from storage.web_runs import SORTS, STATUS_FILTERS, RunFilter, RunRow

log = logging.getLogger(__name__)

router = Router("web-runs")

PER_PAGE = 50
CSV_MAX = 5000  # rows of a CSV export: the current view, all its pages, up to this many
MAX_PAGE = 100_000
PEOPLE_SHOWN = 5  # participants named in a list row, then "and N more"


@dataclass
class Live:
    """How often an open run page's stream asks the database for a change, and pings (tests shorten them)."""

    poll_s: float = 0.5
    ping_s: float = 15.0


LIVE = Live()
_WHOLE = re.compile(r"[0-9]{1,9}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PROPERTY = re.compile(r"([a-z][a-z0-9_]{0,31}):(.+)", re.S)  # ?property=name:value (the playbook's key rule)
# The forms' verbs -> what they do to an item (bot.domain.checklists.TRANSITIONS).
VERBS = ("check", "uncheck", "skip", "restore")
assert all(v in TRANSITIONS for v in VERBS)


# --- reading the request ------------------------------------------------------------------------------

def _flag(value: str) -> bool:
    return value in ("1", "on", "true", "yes")


def parse_filter(ctx: Context, query: dict[str, str]) -> tuple[RunFilter, int]:
    """(filters and order, 1-based page) from the query string; a value none of the forms can send is
    refused with a message naming it."""
    def bad(name: str, value: str, allowed: str) -> UserError:
        return UserError(ctx.render("web/runs/bad_filter.txt.j2", name=name, value=value[:60], allowed=allowed))

    status = query.get("status", "in_progress") or "in_progress"
    if status not in STATUS_FILTERS:
        raise bad("status", status, ", ".join(STATUS_FILTERS))
    sort = query.get("sort", "start") or "start"
    if sort not in SORTS:
        raise bad("sort", sort, ", ".join(SORTS))
    direction = query.get("dir", "") or ("asc" if sort == "name" else "desc")
    if direction not in ("asc", "desc"):
        raise bad("dir", direction, "asc, desc")
    raw_page = query.get("page", "1") or "1"
    if not _WHOLE.fullmatch(raw_page) or int(raw_page) < 1:
        raise bad("page", raw_page, "a whole number from 1")
    ids = {}
    for name in ("team", "playbook", "owner"):
        value = query.get(name, "")
        if value and not _ID.fullmatch(value):
            raise bad(name, value, "an id")
        ids[name] = value
    text = query.get("q", "").strip()
    if len(text) > web_runs.MAX_TEXT:
        raise bad("q", text, f"at most {web_runs.MAX_TEXT} characters")
    prop = query.get("property", "")
    matched = _PROPERTY.fullmatch(prop) if prop else None
    if prop and (matched is None or len(prop) > web_runs.MAX_TEXT):
        raise bad("property", prop, "name:value, a property's name and one of its values")
    f = RunFilter(team_id=ids["team"], playbook_id=ids["playbook"], status=status, owner_id=ids["owner"],
                  mine=_flag(query.get("mine", "")), overdue=_flag(query.get("overdue", "")), text=text,
                  property_name=matched.group(1) if matched else "", property_value=matched.group(2) if matched else "",
                  sort=sort, desc=direction == "desc")
    return f, min(int(raw_page), MAX_PAGE)


def filter_query(f: RunFilter, page: int = 1, **changes: Any) -> str:
    """The query string that shows `f` (with `changes`) at `page`: the list's links and the CSV link."""
    f = replace(f, **changes)
    default_dir = "asc" if f.sort == "name" else "desc"
    pairs = [("team", f.team_id), ("playbook", f.playbook_id),
             ("status", "" if f.status == "in_progress" else f.status), ("owner", f.owner_id),
             ("mine", "1" if f.mine else ""), ("overdue", "1" if f.overdue else ""), ("q", f.text),
             ("property", f"{f.property_name}:{f.property_value}" if f.property_name else ""),
             ("sort", "" if f.sort == "start" else f.sort),
             ("dir", "" if ("desc" if f.desc else "asc") == default_dir else ("desc" if f.desc else "asc")),
             ("page", "" if page == 1 else str(page))]
    return urlencode([(k, v) for k, v in pairs if v])


async def _visible(ctx: Context, viewer: Viewer, run_id: str, history: bool = False) -> RunView | None:
    return await visible_view(ctx, run_id, viewer, history)


def _not_found(ctx: Context, request: WebRequest) -> Page:
    return Page(ctx.render_html("web/errors/not_found.html.j2", status=404, user=request.user,
                                csrf=request.csrf, nav="runs"), 404)


def _refused(ctx: Context, request: WebRequest, text: str) -> Page:
    log.warning("web: refused a run form path=%s user=%s", request.path, request.user.id)
    return Page(ctx.render_html("web/errors/refused.html.j2", status=403, text=text, user=request.user,
                                csrf=request.csrf, nav="runs"), 403)


def _decision_text(ctx: Context, decision: Decision) -> str:
    # The same words as in chat, without their Markdown marks.
    return ctx.render(decision.reason).replace("**", "").replace("`", "")


def _names(users: dict[str, MMUser], ids: list[str]) -> list[str]:
    return [users[u].username for u in ids if u in users]


def _team_name(ctx: Context, team_id: str) -> str:
    team = ctx.teams.get(team_id)
    return team.display_name or team.name if team else team_id


# --- the runs list ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    """A row of the list as the page and the CSV show it."""

    row: RunRow
    owner: str
    participants: list[str]
    duration_ms: int
    overdue: bool
    team: str


async def _lines(ctx: Context, rows: list[RunRow], now: int) -> list[Line]:
    wanted = [r.run.owner_id for r in rows] + [u for r in rows for u in r.participant_ids]
    users = await ctx.users.get_many(wanted) if wanted else {}
    return [Line(row=r, owner=users[r.run.owner_id].username if r.run.owner_id in users else "",
                 participants=_names(users, [u for u in r.participant_ids
                                             if u not in (r.run.owner_id, ctx.bot_user.id)]),
                 duration_ms=(r.run.finished_at or now) - r.run.created_at,
                 overdue=bool(r.next_update_at is not None and r.next_update_at < now),
                 team=_team_name(ctx, r.run.team_id))
            for r in rows]


@router.page("GET", "/runs")
async def runs_list(request: WebRequest, ctx: Context) -> WebReply:
    f, page = parse_filter(ctx, request.query)
    viewer = request.viewer()
    now = ctx.clock.now_ms()
    (rows, total), choices = await asyncio.gather(
        ctx.db.run(web_runs.list_runs, viewer, f, now, PER_PAGE, (page - 1) * PER_PAGE, readonly=True),
        ctx.db.run(web_runs.filter_choices, viewer, readonly=True))
    lines = await _lines(ctx, rows, now)
    owners = await ctx.users.get_many(choices.owner_ids) if choices.owner_ids else {}
    team_ids = sorted(viewer.team_ids | ({f.team_id} if f.team_id else set()))
    pages = max(1, -(-total // PER_PAGE))

    def sort_link(key: str) -> str:
        if f.sort == key:
            return "?" + filter_query(f, sort=key, desc=not f.desc)
        return "?" + filter_query(f, sort=key, desc=key != "name")

    return Page(ctx.render_html(
        "web/runs/list.html.j2", title="Runs", nav="runs", user=request.user, csrf=request.csrf, f=f,
        lines=lines, total=total, page=page, pages=pages, now=now, tz=request.user.timezone,
        teams=[(t, _team_name(ctx, t)) for t in team_ids], playbooks=choices.playbooks,
        properties=choices.properties,
        owners=sorted(((u.id, u.username) for u in owners.values()), key=lambda o: o[1].lower()),
        sort_link=sort_link, page_link=lambda p: "?" + filter_query(f, p),
        csv_link="/runs.csv" + ("?" + filter_query(f) if filter_query(f) else ""),
        here=request.path, people_shown=PEOPLE_SHOWN))


def _cell(value: str) -> str:
    """A spreadsheet opens a cell starting with = + - @ as a formula: such text is quoted."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@router.page("GET", "/runs.csv")
async def runs_csv(request: WebRequest, ctx: Context) -> WebReply:
    f, _ = parse_filter(ctx, request.query)
    now = ctx.clock.now_ms()
    rows, _total = await ctx.db.run(web_runs.list_runs, request.viewer(), f, now, CSV_MAX, 0, readonly=True)
    lines = await _lines(ctx, rows, now)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["id", "name", "playbook", "team", "status", "owner", "participants", "started_at",
                     "finished_at", "duration_s", "last_update_at", "next_update_at", "update_overdue",
                     "items_done", "items_total", "url"])
    for line in lines:
        run = line.row.run
        writer.writerow([run.id, _cell(run.name), _cell(run.playbook_title), _cell(line.team), run.status,
                         line.owner, " ".join(line.participants), iso(run.created_at), iso(run.finished_at) or "",
                         line.duration_ms // 1000, iso(line.row.last_update_at) or "",
                         iso(line.row.next_update_at) or "", "yes" if line.overdue else "no", line.row.done,
                         line.row.total, f"{ctx.public_url}/runs/{run.id}"])
    stamp = (iso(now) or "").replace(":", "").replace("-", "")[:15]
    return Download(out.getvalue().encode(), "text/csv; charset=utf-8", f"runs-{stamp}.csv")


@router.page("POST", "/runs/{run_id}/follow")
async def follow(request: WebRequest, ctx: Context) -> WebReply:
    """Follow or unfollow a run (`/playbook follow`, `unfollow`: anyone who may see the run)."""
    run_id = request.params["run_id"]
    view = await _visible(ctx, request.viewer(), run_id)
    if view is None:
        return _not_found(ctx, request)
    wanted = request.form.get("follow", "")
    if wanted not in ("0", "1"):
        raise UserError(ctx.render("web/runs/bad_form.txt.j2", field="follow"))
    if wanted == "1":
        await ctx.db.run(people.follow, run_id, request.user.id)
    else:
        await ctx.db.run(people.unfollow, run_id, request.user.id)
    back = request.form.get("next", "")
    return Redirect(back if back.startswith("/runs") else f"/runs/{run_id}")


# --- a run --------------------------------------------------------------------------------------------

async def _run_values(ctx: Context, request: WebRequest, view: RunView) -> dict[str, Any]:
    run = view.run
    viewer = request.viewer()
    facts = facts_of(view)
    in_progress = run.status == "in_progress"
    may_work = in_progress and decide(viewer, facts, Action.WORK).allowed
    may_finish = in_progress and decide(viewer, facts, Action.FINISH).allowed
    now = ctx.clock.now_ms()
    wanted = ([run.owner_id] + view.participant_ids + [i.assignee_id for _, its in view.checklists for i in its]
              + [u.author_id for u in view.status_updates] + [e.actor_id for e in view.timeline])
    users = await ctx.users.get_many([u for u in wanted if u])
    names = {uid: u.username for uid, u in users.items()}
    channel, following = await asyncio.gather(
        ctx.db.run(web_runs.channel_name, run.id, readonly=True),
        ctx.db.run(web_runs.is_following, run.id, request.user.id, readonly=True))
    team = ctx.teams.get(run.team_id)
    site = f"{ctx.mattermost_url}/{team.name if team else run.team_id}"
    types = sorted({e.type for e in view.timeline})
    chosen = [t for t in request.query_lists.get("type", ()) if t]
    timeline = [e for e in view.timeline if not chosen or e.type in chosen]
    due = view.reminder.due_at if view.reminder and in_progress else None
    version = await ctx.db.run(web_runs.run_version, run.id, readonly=True)
    improvable = run.status == "finished" and await may_improve(ctx, viewer, run.playbook_id)
    return {
        "run": run, "view": view, "names": names, "now": now, "tz": request.user.timezone,
        "progress": progress(view.item_states()), "may_work": may_work, "may_finish": may_finish,
        "following": following, "team": _team_name(ctx, run.team_id),
        # Mattermost's web app opens /<team>/channels/<name or id> (channel_identifier_router).
        "channel_url": f"{site}/channels/{channel or run.channel_id}" if run.channel_id else "",
        "permalink": lambda post_id: f"{site}/pl/{post_id}",
        "participants": [p for p in view.participant_ids if p != ctx.bot_user.id],
        "types": types, "chosen": chosen, "timeline": timeline, "next_update_at": due,
        "update_overdue": bool(due is not None and due < now), "version": version,
        "duration_ms": (run.finished_at or now) - run.created_at, "max_message": MAX_MESSAGE,
        "reminder_default": _interval_text(run.reminder_interval_s),
        "updates": list(reversed(view.status_updates)),
        "may_improve": improvable,
        "properties": _properties(run.property_defs, run.properties),
        "links": view.links,  # what the playbook's actions made for the run (docs/actions.md)
    }


def _properties(defs: list[dict[str, Any]], values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's properties for its overview: title, and each value with a link to the runs that share it."""
    shown = []
    for spec in run_specs(defs):
        raw = values.get(spec.name)
        chosen = [str(v) for v in raw] if isinstance(raw, list) else ([str(raw)] if raw not in (None, "") else [])
        shown.append({"name": spec.name, "title": spec.title, "chosen": [
            (v, "/runs?" + urlencode({"status": "all", "property": f"{spec.name}:{v}"})
             if spec.type != "text" and len(f"{spec.name}:{v}") <= web_runs.MAX_TEXT else "") for v in chosen]})
    return shown


def _interval_text(seconds: int) -> str:
    return format_duration_compact(timedelta(seconds=seconds)) if seconds > 0 else "off"


@router.page("GET", "/runs/{run_id}")
async def run_page(request: WebRequest, ctx: Context) -> WebReply:
    view = await _visible(ctx, request.viewer(), request.params["run_id"], history=True)
    if view is None:
        return _not_found(ctx, request)
    values = await _run_values(ctx, request, view)
    if request.query.get("part") == "body":
        # Just the main content, for the live page to swap in (bot/static/live.js).
        return Page(ctx.render_html("web/runs/run_body.html.j2", csrf=request.csrf, **values))
    return Page(ctx.render_html("web/runs/run.html.j2", title=view.run.name, nav="runs", user=request.user,
                                csrf=request.csrf, **values))


@router.page("GET", "/runs/{run_id}/events")
async def run_events(request: WebRequest, ctx: Context) -> WebReply:
    """Server-Sent Events: one `change` event each time the run's version moves (the browser then fetches
    the page's body again), and a `ping` now and then so proxies keep the stream open. The version the
    browser last saw comes back as Last-Event-ID (or `since`, the page's own), so nothing is missed."""
    run_id = request.params["run_id"]
    viewer = request.viewer()
    if await _visible(ctx, viewer, run_id) is None:
        return _not_found(ctx, request)
    seen = request.last_event_id or request.query.get("since", "")
    live = LIVE

    async def events() -> AsyncIterator[ServerEvent]:
        nonlocal seen
        loop = asyncio.get_running_loop()
        last_ping = loop.time()
        while True:
            version = await ctx.db.run(web_runs.run_version, run_id, readonly=True)
            if not version:
                yield ServerEvent("gone", event="gone", id=seen)
                return
            if not seen:
                seen = version  # the first look: what the browser has now
            elif version != seen:
                seen = version
                yield ServerEvent(version, event="change", id=version)
            if loop.time() - last_ping >= live.ping_s:
                last_ping = loop.time()
                yield ServerEvent("", event="ping", id=seen)
            await asyncio.sleep(live.poll_s)

    return EventStream(events)


# --- the forms on a run page ----------------------------------------------------------------------------

async def _workable(ctx: Context, request: WebRequest, action: Action) -> tuple[RunView | None, WebReply | None]:
    """The run when the person may do `action` to it now; else the reply that says why (nothing changed)."""
    view = await _visible(ctx, request.viewer(), request.params["run_id"], history=False)
    if view is None:
        return None, _not_found(ctx, request)
    decision = decide(request.viewer(), facts_of(view), action)
    if not decision.allowed:
        return None, _refused(ctx, request, _decision_text(ctx, decision))
    if view.run.status != "in_progress":
        return None, _refused(ctx, request, ctx.render("web/runs/finished.txt.j2", name=view.run.name))
    return view, None


@router.page("POST", "/runs/{run_id}/items/{item_id}")
async def item_form(request: WebRequest, ctx: Context) -> WebReply:
    """Check, uncheck, skip or restore an item: handlers.items.change_item, as `/playbook check` does."""
    view, refusal = await _workable(ctx, request, Action.WORK)
    if view is None:
        assert refusal is not None
        return refusal
    verb = request.form.get("verb", "")
    if verb not in VERBS:
        raise UserError(ctx.render("web/runs/bad_form.txt.j2", field="verb"))
    found = view.find_item(request.params["item_id"])
    if found is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    change = await change_item(ctx, view.run.id, found[3].id, verb, request.user.id)
    if change is None:
        raise UserError(ctx.render("errors/item_gone.md.j2"))
    if change.changed:
        refresh_checklist_later(ctx, view.run.id, change.item.checklist_id)
    return Redirect(f"/runs/{view.run.id}#item-{change.item.id}")


@router.page("POST", "/runs/{run_id}/update")
async def update_form(request: WebRequest, ctx: Context) -> WebReply:
    """Post a status update: handlers.status.post_update, as the dialog does."""
    view, refusal = await _workable(ctx, request, Action.WORK)
    if view is None:
        assert refusal is not None
        return refusal
    message = request.form.get("message", "").strip()
    if not message:
        raise UserError(ctx.render("updates/error_empty.md.j2"))
    if len(message) > MAX_MESSAGE:
        raise UserError(ctx.render("fields/too_long.md.j2", length=len(message), limit=MAX_MESSAGE))
    try:
        interval_s = parse_reminder(request.form.get("reminder", "").strip()[:40] or "off")
    except DurationError as err:
        raise UserError(ctx.render("updates/error_interval.md.j2", reason=str(err))) from None
    if not await post_update(ctx, view.run, request.user.id, message, interval_s, False):
        return _refused(ctx, request, ctx.render("web/runs/finished.txt.j2", name=view.run.name))
    return Redirect(f"/runs/{view.run.id}#updates")


@router.page("POST", "/runs/{run_id}/finish")
async def finish_form(request: WebRequest, ctx: Context) -> WebReply:
    """Finish the run: handlers.finish.finish_run, as the Finish button does; with items still open, a
    page asks first (as the button's dialog does) and only a confirmed form finishes."""
    view, refusal = await _workable(ctx, request, Action.FINISH)
    if view is None:
        assert refusal is not None
        return refusal
    run = view.run
    still_open = await ctx.db.run(item_rows.open_item_count, run.id, readonly=True)
    if still_open and request.form.get("confirm", "") != "1":
        return Page(ctx.render_html("web/runs/finish_confirm.html.j2", title="Finish the run?", nav="runs",
                                    user=request.user, csrf=request.csrf, run=run, open=still_open))
    await finish_run(ctx, run.id, request.user.id)
    return Redirect(f"/runs/{run.id}")
