"""The insights page (`GET /insights`): aggregate numbers over the runs the person may see, per team and
per playbook, with charts that are inline SVG and a data table each. Storage folds the rows
(storage/insights.py); bot/domain/insights.py computes; templates/web/insights.html.j2 shows."""
from __future__ import annotations

from datetime import tzinfo
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.context import Context
from bot.domain import insights as calc
from bot.domain.metrics import MetricSpec, format_value
from bot.router import Page, Router, UserError, WebReply, WebRequest
from storage import insights as rows

router = Router("web-insights")

DAY_MS = 24 * 3600_000
# The period the page covers: runs started or finished in it, and every run in progress. 90 days holds
# every window the page shows (12 weeks of starts, 30 days against the 30 before, 28 days of top
# playbooks); longer periods cost more to fold, as they should.
PERIODS = {"90d": 90, "365d": 365, "all": 0}
DEFAULT_PERIOD = "90d"

BREAKDOWN_ROWS = 10


def runs_link(**filters: str) -> str:
    """A link to the runs list with these filters (the runs page's query parameters); empty ones left out."""
    query = {k: v for k, v in filters.items() if v}
    return "/runs" + ("?" + urlencode(query) if query else "")


def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def metric_summaries(group: rows.MetricRows) -> list[dict[str, Any]]:
    """Per metric of a playbook: the summary, and its values formatted for the page."""
    specs = [MetricSpec.from_dict(d) for d in group.definitions]
    positions = sorted(set(group.titles) | set(range(len(specs))))
    result = []
    for position in positions:
        spec = specs[position] if position < len(specs) else None
        title, kind = group.titles.get(position, (spec.title, spec.type) if spec else ("", "integer"))
        summary = calc.MetricSummary(title=spec.title if spec else title, type=spec.type if spec else kind,
                                     target=spec.target if spec else None,
                                     values=tuple(group.values.get(position, [])))

        def fmt(value: int | float | None, kind: str = summary.type) -> str:
            return format_value(kind, value)

        result.append({"summary": summary, "fmt": fmt, "change": calc.format_percent(summary.change)})
    return result


@router.page("GET", "/insights")
async def insights_page(request: WebRequest, ctx: Context) -> WebReply:
    team = request.query.get("team", "")
    playbook = request.query.get("playbook", "")
    period = request.query.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        raise UserError(ctx.render("web/insights_bad_period.txt.j2", period=period[:40], choices=list(PERIODS)))
    now = ctx.clock.now_ms()
    days = PERIODS[period]
    scope = rows.Scope(request.viewer(), team, playbook, since=now - days * DAY_MS if days else None)
    data = await ctx.db.run(rows.load, scope, now, ctx.bot_user.id, readonly=True)
    runs = data.runs
    owners = calc.breakdown(runs, "owner_id")[:BREAKDOWN_ROWS]
    names = await ctx.users.names([b.key for b in owners]) if owners else {}

    def team_name(team_id: str) -> str:
        found = ctx.teams.get(team_id)
        return (found.display_name or found.name) if found else team_id

    base = {"team": team, "playbook": playbook}
    weeks = calc.started_per_week(runs, now)
    values = dict(
        user=request.user, csrf=request.csrf, nav="insights", title="Insights",
        team=team, playbook=playbook, now=now, period=period, periods=PERIODS,
        teams=[(t, team_name(t)) for t in data.teams], playbooks=data.playbooks,
        total=len(runs),
        in_progress=calc.in_progress(runs),
        finished=calc.finished_in_window(runs, now),
        weeks=weeks,
        to_finish=calc.time_to_finish(runs),
        to_first_update=calc.time_to_first_update(runs),
        to_first_action=calc.time_to_first_action(runs),
        punctuality=calc.punctuality(runs, now),
        overdue=calc.overdue_items(runs),
        retro=calc.retro_completion(runs, now),
        skipped=[calc.TitleCount(t, n) for t, n in data.skipped],
        added=calc.top_titles(data.added),
        top=calc.top_playbooks(runs, now, _zone(request.user.timezone)),
        by_playbook=calc.breakdown(runs, "playbook_id")[:BREAKDOWN_ROWS],
        playbook_titles={r.playbook_id: r.playbook_title or r.playbook_id for r in runs},
        by_owner=owners, owner_names=names,
        by_team=calc.breakdown(runs, "team_id")[:BREAKDOWN_ROWS], team_name=team_name,
        metrics=[(g, metric_summaries(g)) for g in data.metrics],
        by_property=calc.property_breakdowns(runs, data.property_values, data.property_defs),
        link=lambda **f: runs_link(**{**base, **f}),
        percent=calc.format_percent,
    )
    return Page(ctx.render_html("web/insights.html.j2", **values))
