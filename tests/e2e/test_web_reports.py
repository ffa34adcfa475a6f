"""Run reports over HTTP (Markdown, HTML, PDF) with the API's visibility rule, and `/playbook export`
posting the Markdown report as a file in the run channel (through the sandbox's file API)."""
from __future__ import annotations

import io
import re

import pypdf
import pytest

from tests.e2e.conftest import World
from tests.e2e.test_run_start import start_incident


async def get(world: World, who: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    browser = await world.browser(who)
    async with browser.get(f"{world.bot.url}{path}", allow_redirects=False) as r:
        return r.status, await r.read(), dict(r.headers)


async def test_markdown_html_and_pdf_reports(world: World) -> None:
    run = await start_incident(world, "/playbook run incident Checkout <b>down</b>")
    await world["alice"].command(run["channel_id"], "/playbook check 1.1")
    await world.settle()
    base = f"/runs/{run['id']}"

    status, body, headers = await get(world, "alice", f"{base}/report.md")
    assert status == 200, body
    assert headers["Content-Disposition"] == 'attachment; filename="report-Checkout-b-down-b.md"'
    text = body.decode()
    for heading in ("## Summary", "## Timeline", "## Status updates", "## Checklists", "## Retrospective"):
        assert heading in text
    assert "## Channel transcript" not in text  # not by default
    assert "Acknowledge the page" in text and "| done |" in text

    status, body, headers = await get(world, "alice", f"{base}/report.html?sections=summary,timeline,transcript")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in headers  # shown inline
    page = body.decode()
    assert "Checkout &lt;b&gt;down&lt;/b&gt;" in page and "<b>down</b>" not in page
    assert "<svg" in page and "@media print" in page
    assert 'id="checklists"' not in page and 'id="transcript"' in page
    urls = re.findall(r"https?://[^\s\"'<>]+", page)
    assert all(u.startswith(world.sb.url) for u in urls), urls  # only links to Mattermost

    status, body, headers = await get(world, "alice", f"{base}/report.pdf")
    assert status == 200 and body.startswith(b"%PDF")
    assert headers["Content-Disposition"].endswith('.pdf"')
    pdf_text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(body)).pages)
    assert "Timeline" in pdf_text and "Acknowledge the page" in pdf_text

    status, body, _ = await get(world, "alice", f"{base}/report.md?sections=summary,gossip")
    assert status == 400 and b"gossip" in body


async def test_a_run_alice_may_not_see_is_not_found(world: World) -> None:
    run = await start_incident(world, "/playbook run incident Bob's secret")
    # alice hands the private run to bob and leaves it: she may no longer see it.
    _, body = await world["alice"].command(run["channel_id"], "/playbook owner @bob")
    _, body = await world["alice"].command(run["channel_id"], "/playbook leave")
    await world.settle()
    status, _ = await world.run_json(run["id"], "alice")
    assert status == 404, body
    for kind in ("md", "html", "pdf"):
        status, page, _ = await get(world, "alice", f"/runs/{run['id']}/report.{kind}")
        assert status == 404 and b"secret" not in page
    status, _, _ = await get(world, "bob", f"/runs/{run['id']}/report.md")
    assert status == 200
    status, _, _ = await get(world, "alice", "/runs/" + "x" * 26 + "/report.md")
    assert status == 404


async def test_export_posts_the_markdown_report_as_a_file(world: World) -> None:
    run = await start_incident(world)
    status, body = await world["alice"].command(run["channel_id"], "/playbook export")
    assert status == 200 and "Preparing the report" in body["text"], body
    await world.settle()
    posts = await world.posts(run["channel_id"], "bob")
    exported = [p for p in posts if p.get("file_ids")]
    assert len(exported) == 1, [p["message"] for p in posts]
    post = exported[0]
    assert "Database down" in post["message"] and post["user_id"] == world.bot_user_id
    info = post["metadata"]["files"][0]
    assert info["name"] == "report-Database-down.md"
    # bob, a member of the run channel, downloads it through the sandbox's file API.
    status, content, _ = await world["bob"].api.get(f"/files/{info['id']}")
    assert status == 200
    assert content.startswith("# Run report: Database down")
    assert "## Checklists" in content and "Acknowledge the page" in content
    status, body, _ = await get(world, "alice", f"/runs/{run['id']}/report.md")
    # The file is the report as the page gives it, but for the moment it was made.
    assert content.split("_Report made")[0] == body.decode().split("_Report made")[0]

    status, body = await world["alice"].command(run["channel_id"], "/playbook export now")
    assert "takes no arguments" in body["text"]


async def test_a_host_without_pango_explains_and_offers_the_other_formats(world: World,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import handlers.reports

    def no_pango(document: str) -> bytes:
        raise OSError("cannot load library 'libpango-1.0-0'")  # what WeasyPrint raises without Pango

    monkeypatch.setattr(handlers.reports, "pdf_from_html", no_pango)
    run = await start_incident(world, "/playbook run incident Printer on fire")
    status, body, headers = await get(world, "alice", f"/runs/{run['id']}/report.pdf")
    assert status == 503 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "libpango-1.0-0" in page and f"/runs/{run['id']}/report.html" in page
