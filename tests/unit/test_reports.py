"""Report rendering (handlers/reports.py): sections, escaping of people's text, no URL but Mattermost's,
and the PDF made with every URL refused."""
from __future__ import annotations

import io
import re

import pypdf
import pytest

from bot.rendering import Renderer
from bot.router import UserError
from handlers import reports
from storage.models import StatusUpdate, TimelineEvent
from tests.unit.test_golden import NOW, sample_run

MM = "https://mm.example.com"


class Ctx:
    renderer = Renderer()

    def render(self, template: str, /, **values: object) -> str:
        return self.renderer.render(template, **values)

    def render_html(self, template: str, /, **values: object) -> str:
        return self.renderer.render_html(template, **values)


def report(sections: tuple[str, ...] = reports.SECTIONS) -> reports.Report:
    view = sample_run()
    view.run.summary = "<script>alert(1)</script> see http://evil.example/x"
    view.timeline = [TimelineEvent(id="e" * 26, run_id=view.run.id, type="run_started", at=NOW,
                                   actor_id="o" * 26, summary="Run <i>started</i>")]
    view.status_updates = [StatusUpdate(id="u" * 26, run_id=view.run.id, at=NOW + 60_000, author_id="o" * 26,
                                        message="**Impact:** checkout <img src=x onerror=alert(1)>")]
    view.run.retrospective_status, view.run.retrospective_text = "published", "We learned <things>."
    r = reports.Report(view, sections, {"o" * 26: "alice", "q" * 26: "bob"}, f"{MM}/eng/channels/inc-7",
                       NOW + 3_600_000)
    r.transcript = [{"at": NOW, "author": "bob", "message": "hello <b>all</b>", "system": False, "files": 1}]
    return r


def test_sections_parse_in_report_order_and_unknown_ones_are_named() -> None:
    assert reports.parse_sections(None) == reports.DEFAULT_SECTIONS
    assert "transcript" not in reports.DEFAULT_SECTIONS
    assert reports.parse_sections("retro, Summary") == ("summary", "retro")
    with pytest.raises(UserError, match="'gossip'.*choose from summary"):
        reports.parse_sections("summary,gossip")


def test_markdown_has_each_section_and_escapes_titles() -> None:
    text = reports.markdown(Ctx(), report())
    for heading in ("## Summary", "## Timeline", "## Status updates", "## Checklists", "## Retrospective",
                    "## Channel transcript"):
        assert heading in text
    assert "# Run report: Checkout \\*down\\* for @\u200ball" in text
    assert "| 1.2 | Open a bridge | done |" in text
    assert "| Progress | 2 of 4 items done or skipped (50%) |" in text
    assert "| Duration | 1 hour |" in text
    assert "> hello <b>all</b>" in text
    only = reports.markdown(Ctx(), report(("summary",)))
    assert "## Timeline" not in only and "## Summary" in only


def test_html_escapes_people_text_and_names_no_url_but_mattermost() -> None:
    page = reports.html(Ctx(), report())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert "Run &lt;i&gt;started&lt;/i&gt;" in page and "hello &lt;b&gt;all&lt;/b&gt;" in page
    assert "@media print" in page and "<svg" in page and 'width="120.0"' in page  # 50% of 240
    # URLs outside tags are text; the only link, and any URL inside a tag, points at Mattermost.
    tags = " ".join(re.findall(r"<[^>]+>", page))
    assert re.findall(r"https?://[^\s\"'<>]+", tags) == [f"{MM}/eng/channels/inc-7"]
    assert "<link" not in page and "@import" not in page and "src=" not in tags


def test_pdf_has_the_timeline_and_loads_nothing() -> None:
    r = report()
    document = reports.html(Ctx(), r).replace("</body>", '<img src="http://127.0.0.1:9/x.png"></body>')
    pdf = reports.pdf_from_html(document)
    assert pdf.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Timeline" in text and "Run <i>started</i>" in text


def test_file_names_are_plain() -> None:
    assert reports.file_stem("Checkout *down* / 2") == "report-Checkout-down-2"
    assert reports.file_stem("***") == "report-run"
