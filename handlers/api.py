"""The bot's REST API (`/api/v0/runs`), showing each caller only what they may see."""
from __future__ import annotations

import re
from typing import Any

from bot.clock import iso
from bot.context import Context
from bot.router import HttpRequest, Router
from handlers.access import visible_view
from storage import runs
from storage.runs import RunView

router = Router("http-api")

STATUSES = ("in_progress", "finished")

# Timeline events whose details the API shows: what a property change showed and hid, which post checked
# an item.
DETAILED_EVENTS = ("property_changed", "item_auto_checked")


def run_json(view: RunView) -> dict[str, Any]:
    run = view.run
    reminder = view.reminder
    return {
        "id": run.id, "name": run.name, "summary": run.summary,
        "playbook": {"id": run.playbook_id, "title": run.playbook_title},
        "team_id": run.team_id, "channel_id": run.channel_id, "owner_id": run.owner_id,
        "creator_id": run.creator_id, "participant_ids": list(view.participant_ids),
        "status": run.status, "created_at": iso(run.created_at), "finished_at": iso(run.finished_at),
        # name -> a string, or a list of strings for a multiselect; unset properties are absent.
        "properties": dict(run.properties or {}),
        "checklists": [
            {"title": c.title, "items": [
                {"id": i.id, "title": i.title, "description": i.description, "state": i.state,
                 "assignee_id": i.assignee_id,
                 "due_at": iso(i.due_at), "command": i.command} for i in items]}
            for c, items in view.checklists
        ],
        "status_updates": [{"at": iso(u.at), "author_id": u.author_id, "message": u.message}
                           for u in view.status_updates],
        "reminder": {"interval_s": reminder.interval_s if reminder else run.reminder_interval_s,
                     "next_at": iso(reminder.due_at) if reminder and run.status == "in_progress" else None},
        # What the playbook's actions made for the run: its Jira issue, its Zoom meeting.
        "links": [{"kind": link.kind, "label": link.label, "url": link.url, "at": iso(link.at)}
                  for link in view.links],
        "timeline": [{"type": e.type, "at": iso(e.at), "actor_id": e.actor_id, "summary": e.summary,
                      **({"details": e.details} if e.type in DETAILED_EVENTS else {})}
                     for e in view.timeline],
    }


# ASCII digits only: str.isdigit() also accepts "²" and "¹", which int() refuses. At most 9 of them, so
# int() never meets a number too long to convert (it refuses strings past 4300 digits); bigger pages are
# clamped to the limits anyway.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _page(query: dict[str, str], key: str, default: int, most: int) -> int | None:
    raw = query.get(key, str(default))
    if not _WHOLE_NUMBER.fullmatch(raw):
        return None
    return min(int(raw), most)


@router.http("GET", "/api/v0/runs")
async def list_runs(request: HttpRequest, ctx: Context) -> tuple[int, dict[str, Any]]:
    query = request.query
    status = query.get("status", "")
    if status and status not in STATUSES:
        return 400, {"error": f"status must be one of {', '.join(STATUSES)}, not {status!r}."}
    per_page = _page(query, "per_page", 100, 1000)
    page = _page(query, "page", 0, 1_000_000)
    if per_page is None or page is None:
        return 400, {"error": "page and per_page must be whole numbers (digits 0-9, at most 9 of them)."}
    team_id = query.get("team_id", "")
    viewer = request.viewer()
    views, total = await ctx.db.run(runs.visible_views, viewer, [team_id] if team_id else None,
                                    query.get("channel_id", ""), [status] if status else [], per_page,
                                    page * per_page, readonly=True)
    return 200, {"items": [run_json(v) for v in views], "total": total}


@router.http("GET", "/api/v0/runs/{run_id}")
async def get_run(request: HttpRequest, ctx: Context) -> tuple[int, dict[str, Any]]:
    viewer = request.viewer()
    view = await visible_view(ctx, request.params["run_id"], viewer)
    if view is None:  # missing, starting, rolled back or hidden: one answer, so ids do not leak
        return 404, {"error": "No run with this id, or you may not see it."}
    return 200, run_json(view)
