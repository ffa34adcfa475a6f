"""The playbook editor in Chromium: Alice (a system admin) signs in through the sandbox's OAuth pages,
makes a new playbook in the web view, adds a checklist and two items with the buttons, sees the file
loader's problem with a bad due time next to its field while typing (nothing saved), fixes it, saves,
and starts a run of it in chat. Every page passes axe-core with no serious or critical violation, and
leaves a screenshot in test-artifacts/browser/<test>/."""
from __future__ import annotations

import re
from typing import Any

import aiohttp
from playwright.async_api import expect

from storage import playbooks as store
from tests.browser.conftest import Shots, Site
from tests.browser.test_dashboard import axe_check, sign_in_with_mattermost
from tests.conftest import Api


async def test_a_playbook_made_in_the_editor_runs_in_chat(site: Site, browser: Any, shots: Shots) -> None:
    assert site.bot.ctx is not None
    ctx = site.bot.ctx
    async with aiohttp.ClientSession() as session:
        admin = Api(session, site.url, site.sb.admin_token)
        status, alice, _ = await admin.get("/users/username/alice")
        assert status == 200, alice
        status, body, _ = await admin.put(f"/users/{alice['id']}/roles", {"roles": "system_user system_admin"})
        assert status == 200, body
        status, token, _ = await admin.post(f"/users/{alice['id']}/tokens", {"description": "editor"})
        assert status == 200, token
        alice_api = Api(session, site.url, token["token"])
        status, town, _ = await admin.get(f"/teams/{site.team_id}/channels/name/town-square")
        assert status == 200, town

        page = await sign_in_with_mattermost(browser, site, "alice", path="/playbooks", shots=shots)
        await expect(page.get_by_role("heading", name="Playbooks", level=1)).to_be_visible()
        await shots.take(page, "alice", "playbooks-list")
        await axe_check(page, "playbooks list")

        # -- A new playbook: a checklist and two items, added with the buttons ---------------------------
        await page.get_by_role("link", name="New playbook").click()
        await page.wait_for_url(f"{site.bot.url}/playbooks/new")
        await page.get_by_label("Playbook id").fill("release")
        await page.get_by_label("Title", exact=True).fill("Release train")
        await page.get_by_label("Checklist 1 title").fill("Prepare")
        await page.get_by_label("Item 1.1 title").fill("Freeze merges")
        await page.get_by_role("button", name="Add a checklist").click()
        await expect(page.get_by_label("Checklist 2 title")).to_be_visible()
        await page.get_by_label("Checklist 2 title").fill("Ship")
        await page.get_by_label("Item 2.1 title").fill("Tag the release")
        await page.get_by_role("button", name="Add an item to checklist 2").click()
        await expect(page.get_by_label("Item 2.2 title")).to_be_visible()
        await page.get_by_label("Item 2.2 title").fill("Announce it")
        await shots.take(page, "alice", "editor-two-checklists")
        await axe_check(page, "editor")

        # -- A bad due time: the loader's words next to the field, as she types -------------------------
        details = page.locator("li.item", has=page.get_by_label("Item 2.2 title")).locator("summary")
        await details.click()
        due = page.locator('[id="f-checklists[2].items[2].due"]')
        await due.fill("whenever")
        error = page.locator('[id="e-checklists[2].items[2].due"]')
        await expect(error).not_to_be_empty()
        await expect(due).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#problems")).to_contain_text("1 problem")
        await shots.take(page, "alice", "live-validation-error", focus=due)
        await axe_check(page, "editor with a problem")
        assert await ctx.db.run(store.get_playbook, "release") is None  # nothing saved
        await due.fill("2h")
        await expect(error).to_be_empty()
        await expect(page.locator("#problems")).to_have_text("No problems found.")

        # -- Saved as version 1; the page shows it ---------------------------------------------------------
        await page.get_by_label("Note for this version").fill("first version")
        await page.get_by_role("button", name="Save as a new version").first.click()
        await page.wait_for_url(re.compile(re.escape(f"{site.bot.url}/playbooks/release") + r"\?saved=1$"))
        await expect(page.get_by_text("Saved as version 1")).to_be_visible()
        await expect(page.get_by_text("Announce it")).to_be_visible()
        await shots.take(page, "alice", "playbook-page")
        await axe_check(page, "playbook page")

        # -- It starts a run in chat --------------------------------------------------------------------
        status, body, _ = await alice_api.post("/commands/execute", {"channel_id": town["id"],
                                                                    "command": "/playbook run release R-1"})
        assert status == 200, body
        await ctx.tasks.drain()
        await page.goto(f"{site.bot.url}/runs?status=all")
        await expect(page.locator("table.runs").get_by_role("link", name="R-1", exact=True)).to_be_visible()
        await page.locator("table.runs").get_by_role("link", name="R-1", exact=True).click()
        await expect(page.get_by_text("Tag the release")).to_be_visible()
        await expect(page.get_by_text("Announce it")).to_be_visible()
        await shots.take(page, "alice", "run-of-the-new-playbook")
