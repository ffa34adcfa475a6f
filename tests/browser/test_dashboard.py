"""The stakeholder's web view in Chromium, as people use it: signed in through the sandbox's OAuth pages.

Alice opens the bot's runs list in a fresh browser: the bot sends her to Mattermost's /oauth/authorize,
the sandbox to its sign-in page, and back (the bot's app is trusted: no consent page). She sees exactly
the runs she may see (not Carol's private run); Bob, made a guest, sees only the runs he is in. On
Alice's open run page, Bob's click on a checklist button in chat shows within a second without a
reload; an item Alice checks on the page shows in the channel's checklist post. Insights render their
charts over a seeded history of 500 runs; the PDF report opens and holds the timeline. Every page passes
axe-core with no serious or critical violation, and leaves a screenshot in
test-artifacts/browser/<test>/.
"""
from __future__ import annotations

import io
import re
from typing import Any

import aiohttp
from playwright.async_api import expect

from sandbox import ops
from storage import runs as run_rows
from storage.timeline import timeline as timeline_of
from tests.browser.conftest import Shots, Site
from tests.conftest import Api
from tests.e2e.test_web_insights import seed as seed_history

LIVE_BUDGET_MS = 1000  # "appears on the run page within a second"


async def axe_check(page: Any, what: str) -> None:
    """axe-core (bundled with axe-playwright-python, no network) finds no serious or critical violation."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{what}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in bad)


async def sign_in_with_mattermost(browser: Any, site: Site, who: str, path: str = "/runs",
                                  shots: Shots | None = None) -> Any:
    """A fresh browser opens the bot's page and signs in on the sandbox's page, as a person would."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                                        timezone_id="UTC")
    page = await context.new_page()
    await page.goto(f"{site.bot.url}{path}")
    # The bot sent the browser to Mattermost, which asks who this is first.
    assert page.url.startswith(f"{site.sb.url}/login?redirect_to="), page.url
    await page.get_by_label("Username or email").fill(who)
    if shots is not None:
        await shots.take(page, who, "mattermost-sign-in")
    await page.get_by_label("Password").fill("demo")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(re.escape(f"{site.bot.url}{path}") + r"$"))
    return page


async def test_the_stakeholder_view_signed_in_through_mattermost(site: Site, browser: Any, shots: Shots) -> None:
    assert site.bot.ctx is not None
    ctx = site.bot.ctx
    assert ctx.sign_in is not None and ctx.sign_in.app is not None, ctx.sign_in and ctx.sign_in.reason
    async with aiohttp.ClientSession() as session:
        admin = Api(session, site.url, site.sb.admin_token)
        people: dict[str, Api] = {}
        ids: dict[str, str] = {}
        for name in ("alice", "bob", "carol"):
            status, user, _ = await admin.get(f"/users/username/{name}")
            assert status == 200, user
            status, token, _ = await admin.post(f"/users/{user['id']}/tokens", {"description": "dashboard"})
            assert status == 200, token
            people[name], ids[name] = Api(session, site.url, token["token"]), user["id"]
        status, town, _ = await admin.get(f"/teams/{site.team_id}/channels/name/town-square")
        assert status == 200, town

        async def start(who: str, text: str) -> None:
            status, body, _ = await people[who].post("/commands/execute", {"channel_id": town["id"],
                                                                          "command": f"/playbook run {text}"})
            assert status == 200, body
            await ctx.tasks.drain()

        await start("alice", "incident Checkout down")  # private; bob is invited by the playbook
        await start("carol", "incident Carols secret")  # private; alice is not in it
        await start("bob", "onboarding Acme")  # public: the whole team may see it
        await start("alice", "onboarding Globex")  # public, bob is not in it
        names = {v.run.name: v.run for v in (await ctx.db.run(run_rows.visible_views, _admin_viewer(), None, "",
                                                               [], 100, 0))[0]}
        checkout = names["Checkout down"]

        # -- Alice signs in through Mattermost and sees the runs she may see ---------------------------
        page = await sign_in_with_mattermost(browser, site, "alice", shots=shots)
        await expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
        table = page.locator("table.runs")
        for name in ("Checkout down", "Acme", "Globex"):
            await expect(table.get_by_role("link", name=name, exact=True)).to_be_visible()
        await expect(table.get_by_role("link", name="Carols secret")).to_have_count(0)
        await shots.take(page, "alice", "runs-list")
        await axe_check(page, "runs list")

        # -- Her run's page is live: Bob's click in chat shows without a reload ------------------------
        await table.get_by_role("link", name="Checkout down", exact=True).click()
        await page.wait_for_url(f"{site.bot.url}/runs/{checkout.id}")
        await expect(page.get_by_role("heading", name="Checkout down", level=1)).to_be_visible()
        await shots.take(page, "alice", "run-page")
        await axe_check(page, "run page")
        view = await ctx.db.run(run_rows.load_view, checkout.id)
        assert view is not None
        first_list, first_items = view.checklists[0]
        first, second = first_items[0], first_items[1]
        row = page.locator(f"#item-{first.id}")
        await expect(row).to_have_class(re.compile(r"\bstate-open\b"))
        marker = await page.evaluate("() => (window.__notReloaded = true)")
        assert marker is True
        status, body, _ = await people["bob"].post(f"/posts/{first_list.post_id}/actions/check0", {})
        assert status == 200, body
        await expect(row).to_have_class(re.compile(r"\bstate-closed\b"), timeout=LIVE_BUDGET_MS)
        assert await page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"
        await shots.take(page, "alice", "bobs-click-shown-live", focus=row)

        # -- An item Alice checks on the page shows in the channel's checklist post --------------------
        await page.get_by_role("button", name=re.compile(r"^Check 1\.2 ")).click()
        await expect(page.locator(f"#item-{second.id}")).to_have_class(re.compile(r"\bstate-closed\b"))
        await ctx.tasks.drain()
        status, post, _ = await people["alice"].get(f"/posts/{first_list.post_id}")
        assert status == 200, post
        assert post["props"]["attachments"][1]["text"].startswith(":white_check_mark:"), post["props"]
        await shots.take(page, "alice", "checked-on-the-page", focus=page.locator(f"#item-{second.id}"))

        # -- The report: HTML in the browser, and a PDF that holds the timeline -------------------------
        await page.goto(f"{site.bot.url}/runs/{checkout.id}/report.html")
        await expect(page.get_by_text("Checkout down").first).to_be_visible()
        await shots.take(page, "alice", "report-html")
        await axe_check(page, "report (HTML)")
        response = await page.request.get(f"{site.bot.url}/runs/{checkout.id}/report.pdf")
        assert response.status == 200
        pdf = await response.body()
        assert pdf.startswith(b"%PDF")
        from pypdf import PdfReader

        text = " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "Timeline" in text and "Checkout down" in text, text[:500]
        checked = [e for e in await ctx.db.run(timeline_of, checkout.id) if e.type == "item_state_changed"]
        assert len(checked) == 2 and checked[0].summary[:20] in " ".join(text.split()), (checked[0].summary, text)

        # -- Insights over a history of 500 runs ------------------------------------------------------
        now = ctx.clock.now_ms()
        await ctx.db.run(seed_history, now, site.team_id, [ids["alice"], ids["bob"]], ids["carol"], "otherteam",
                         500)
        await page.goto(f"{site.bot.url}/insights")
        await expect(page.get_by_role("heading", name="Insights", level=1)).to_be_visible()
        charts = page.locator("figure.chart svg")
        assert await charts.count() >= 3
        await expect(charts.first).to_be_visible()
        await shots.take(page, "alice", "insights")
        await shots.take(page, "alice", "insights-charts", focus=charts.nth(2))
        await axe_check(page, "insights")

        # -- Bob, made a guest, sees only the runs he takes part in -----------------------------------
        ops.demote_to_guest(site.sb.state, site.sb.hub, site.sb.state.users[ids["bob"]])
        guest = await sign_in_with_mattermost(browser, site, "bob")
        table = guest.locator("table.runs")
        for name in ("Checkout down", "Acme", "Carols secret"):
            await expect(table.get_by_role("link", name=name, exact=True)).to_be_visible()
        await expect(table.get_by_role("link", name="Globex")).to_have_count(0)
        await shots.take(guest, "bob-guest", "runs-list")
        await guest.goto(f"{site.bot.url}/runs/{names['Globex'].id}")
        await expect(guest.get_by_role("heading", name="Not found")).to_be_visible()
        await shots.take(guest, "bob-guest", "public-run-not-found")
        await axe_check(guest, "not found")

        # -- Signing out ends the session and revokes the bot's access to alice's account --------------
        await page.goto(f"{site.bot.url}/runs")
        cookies = {c["name"]: c["value"] for c in await page.context.cookies(site.bot.url)}
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
        await shots.take(page, "alice", "signed-out")
        await axe_check(page, "signed out")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as thief:
            thief.cookie_jar.update_cookies({"pb_session": cookies["pb_session"]})
            async with thief.get(f"{site.bot.url}/runs", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"].startswith("/login")  # the old cookie is dead


def _admin_viewer() -> Any:
    from bot.domain.permissions import Viewer

    return Viewer("nobody", is_admin=True)
