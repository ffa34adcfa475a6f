"""Run reports: `GET /runs/{run_id}/report.md`, `.html`, `.pdf`, and what `/playbook export` uploads.

A report is built from the run's stored view (storage.runs.load_view, what the API's run_json shows) and,
for the transcript, the run channel's posts read through the gateway. Sections are chosen by
`?sections=summary,timeline,updates,checklists,retro,transcript`; the default is every section but the
transcript (a channel can be long, and a report is often shared beyond the channel's members).

- Markdown: templates/reports/report.md.j2 (user text escaped as in chat).
- HTML: templates/reports/report.html.j2, autoescaped, self-contained: inline CSS with a print stylesheet,
  an inline SVG progress bar, no URL but the Mattermost links to the run's channel.
- PDF: WeasyPrint from that HTML, with a URL fetcher that refuses every URL (nothing reaches the network),
  in a worker thread so the event loop never waits for it.
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from bot.context import Context
from bot.models import MattermostError, MMPost
from bot.router import Download, Page, Router, UserError, WebReply, WebRequest
from handlers.access import visible_view
from storage import runs
from storage.runs import RunView

log = logging.getLogger(__name__)
router = Router("reports")

SECTIONS = ("summary", "timeline", "updates", "checklists", "retro", "transcript")
DEFAULT_SECTIONS = ("summary", "timeline", "updates", "checklists", "retro")
TRANSCRIPT_LIMIT = 1000  # posts, the newest ones when there are more
_PAGE = 200  # the server's largest page of posts


@dataclass
class Report:
    """What the templates render: the run, names for ids, and the chosen sections."""

    view: RunView
    sections: tuple[str, ...]
    names: dict[str, str]
    channel_url: str
    generated_at: int
    transcript: list[dict[str, Any]] = field(default_factory=list)
    transcript_truncated: bool = False

    @property
    def done(self) -> int:
        return sum(1 for s in self.view.item_states() if s in ("closed", "skipped"))

    @property
    def total(self) -> int:
        return len(self.view.item_states())

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def duration_ms(self) -> int:
        run = self.view.run
        return (run.finished_at or self.generated_at) - run.created_at

    def name(self, user_id: str) -> str:
        return self.names.get(user_id, user_id) if user_id else ""

    def values(self) -> dict[str, Any]:
        return {"r": self, "run": self.view.run, "view": self.view, "sections": self.sections}


def parse_sections(raw: str | None) -> tuple[str, ...]:
    """The sections asked for, in the report's order; UserError naming any unknown one."""
    if raw is None or not raw.strip():
        return DEFAULT_SECTIONS
    wanted = [s.strip().lower() for s in raw.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise UserError(f"Unknown report section {', '.join(repr(u) for u in unknown)}: choose from "
                        f"{', '.join(SECTIONS)} (e.g. ?sections=summary,timeline).")
    return tuple(s for s in SECTIONS if s in wanted)


def file_stem(run_name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:80]
    return f"report-{stem or 'run'}"


async def transcript(ctx: Context, channel_id: str, limit: int = TRANSCRIPT_LIMIT) -> tuple[list[dict[str, Any]], bool]:
    """The channel's posts oldest first (at most `limit`, the newest ones), with author names."""
    posts: list[MMPost] = []
    page = 0
    while len(posts) < limit + 1:
        batch = await ctx.gateway.get_channel_posts(channel_id, per_page=_PAGE, page=page)
        posts.extend(batch)
        if len(batch) < _PAGE:
            break
        page += 1
    truncated = len(posts) > limit
    kept = sorted(posts[:limit], key=lambda p: (p.create_at, p.id))
    names = await ctx.users.names([p.user_id for p in kept])
    lines = [{"at": p.create_at, "author": str(p.props.get("override_username") or names.get(p.user_id, p.user_id)),
              "message": p.message, "system": p.type.startswith("system_"), "files": len(p.file_ids)}
             for p in kept]
    return lines, truncated


async def build(ctx: Context, view: RunView, sections: tuple[str, ...]) -> Report:
    run = view.run
    ids = [run.owner_id, run.creator_id, *view.participant_ids,
           *(e.actor_id for e in view.timeline), *(u.author_id for u in view.status_updates),
           *(i.assignee_id for _, items in view.checklists for i in items)]
    try:
        names = await ctx.users.names([i for i in ids if i])
    except MattermostError:
        names = {}  # the report still reads, with ids for names
    channel_url = await _channel_url(ctx, run.team_id, run.channel_id)
    report = Report(view, sections, names, channel_url, ctx.clock.now_ms())
    if "transcript" in sections and run.channel_id:
        report.transcript, report.transcript_truncated = await transcript(ctx, run.channel_id)
    return report


async def _channel_url(ctx: Context, team_id: str, channel_id: str) -> str:
    """The run channel's address in Mattermost (`<site>/<team>/channels/<name>`); "" if unknown."""
    if not channel_id:
        return ""
    try:
        team = await ctx.gateway.get_team(team_id)
        channel = await ctx.gateway.get_channel(channel_id)
    except MattermostError:
        return ""
    return f"{ctx.mattermost_url}/{team.name}/channels/{channel.name}"


def markdown(ctx: Context, report: Report) -> str:
    return ctx.render("reports/report.md.j2", **report.values()) + "\n"


def html(ctx: Context, report: Report) -> str:
    return ctx.render_html("reports/report.html.j2", **report.values())


def pdf_from_html(document: str) -> bytes:
    """CPU-bound: call it off the event loop. Every URL the document names is refused."""
    import weasyprint
    from weasyprint.urls import URLFetcher

    class RefuseAll(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            raise ValueError(f"reports load nothing from the network: {url[:80]}")

    return bytes(weasyprint.HTML(string=document, url_fetcher=RefuseAll()).write_pdf())


async def pdf(ctx: Context, report: Report) -> bytes:
    return await asyncio.to_thread(pdf_from_html, html(ctx, report))


async def _page(request: WebRequest, ctx: Context) -> tuple[Report | None, WebReply | None]:
    sections = parse_sections(request.query.get("sections"))
    view = await visible_view(ctx, request.params["run_id"], request.viewer())
    if view is None:
        page = ctx.render_html("web/errors/not_found.html.j2", user=request.user, csrf=request.csrf,
                               status=404)
        return None, Page(page, 404)
    return await build(ctx, view, sections), None


@router.page("GET", "/runs/{run_id}/report.md")
async def report_md(request: WebRequest, ctx: Context) -> WebReply:
    """The run's report as a Markdown file."""
    report, refusal = await _page(request, ctx)
    if report is None:
        assert refusal is not None
        return refusal
    return Download(markdown(ctx, report).encode(), "text/markdown; charset=utf-8",
                    f"{file_stem(report.view.run.name)}.md")


@router.page("GET", "/runs/{run_id}/report.html")
async def report_html(request: WebRequest, ctx: Context) -> WebReply:
    """The run's report as one self-contained page (print it, or save it)."""
    report, refusal = await _page(request, ctx)
    if report is None:
        assert refusal is not None
        return refusal
    return Download(html(ctx, report).encode(), "text/html; charset=utf-8")


@router.page("GET", "/runs/{run_id}/report.pdf")
async def report_pdf(request: WebRequest, ctx: Context) -> WebReply:
    """The run's report as a PDF file."""
    report, refusal = await _page(request, ctx)
    if report is None:
        assert refusal is not None
        return refusal
    try:
        document = await pdf(ctx, report)
    except (ImportError, OSError) as err:  # WeasyPrint without Pango on this host (README: Requirements)
        log.error("PDF report failed: WeasyPrint cannot run here error=%s", err)
        return Page(ctx.render_html("web/errors/pdf_unavailable.html.j2", user=request.user, csrf=request.csrf,
                                    run_id=report.view.run.id), 503)
    return Download(document, "application/pdf", f"{file_stem(report.view.run.name)}.pdf")


async def export_to_channel(ctx: Context, run_id: str, user_id: str) -> None:
    """`/playbook export`'s follow-up: the Markdown report uploaded to the run's channel and posted there."""
    view = await ctx.db.run(runs.load_view, run_id, True, readonly=True)
    if view is None:
        raise LookupError(f"run {run_id} is gone")
    report = await build(ctx, view, DEFAULT_SECTIONS)
    filename = f"{file_stem(view.run.name)}.md"
    file_id = await ctx.gateway.upload_file(view.run.channel_id, filename, markdown(ctx, report).encode(),
                                            "text/markdown")
    names = await ctx.users.names([user_id])
    text = ctx.render("reports/exported.md.j2", run=view.run, by=names.get(user_id, ""), filename=filename)
    await ctx.gateway.create_post(view.run.channel_id, text, file_ids=[file_id])
