"""The whole journey of issue 12, as a team lives it in the sandbox's web client in Chromium.

Alice starts an incident with `/playbook run`, works items with buttons; Bob is assigned an item later
(`/playbook assign`) and hears of it by DM; Carol joins (`/playbook join`); both find the run's channel
under the playbook's category after a reload; the first item goes overdue at its due time; Bob snoozes
the status reminder and everyone sees it change; Alice posts an update, finishes, and publishes the
retrospective twice. Every step asserts on what the page shows, and leaves a screenshot in
test-artifacts/browser/test_journey.../ named after what it shows (help-text, typo-suggestion,
description-under-item, dm-to-assignee, overdue-mark, snoozed-reminder, finished-run-reply, timeline,
retrospective-replaced, ...).

Time is the bot's FakeClock: due times and reminders come by moving it and running the bot's rounds,
never by sleeping. One browser, one page per person for the whole journey.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from playwright.async_api import expect

from bot.app import BotApp
from bot.clock import FakeClock
from bot.config import load_settings
from sandbox import Sandbox
from sandbox.validation import assert_no_violations
from tests.browser.conftest import ROOT, Shots, Site
from tests.conftest import LOOPBACK, Api, sandbox_config

MIN = 60
RUN = "Database down"
CHANNEL = "inc-001 Database down"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """The `make run` world (sandbox --demo, the example playbooks: nobody invited at start), with the
    bot on a FakeClock the test moves. This team runs its incidents in public channels, so that anyone
    on the team can `/playbook join` one (a private run can only be joined by being added)."""
    async with Sandbox(admin_token="admintoken", config=sandbox_config(),
                       demo=True, validate=True, allow_internal=LOOPBACK) as sb, \
            aiohttp.ClientSession() as session:
        admin = Api(session, sb.url, sb.admin_token)
        status, team, _ = await admin.get("/teams/name/demo")
        assert status == 200, team
        status, bot, _ = await admin.get("/users/username/playbooks")
        assert status == 200, bot
        status, body, _ = await admin.put(f"/users/{bot['id']}/roles", {"roles": "system_user system_admin"})
        assert status == 200, body
        status, token, _ = await admin.post(f"/users/{bot['id']}/tokens", {"description": "journey"})
        assert status == 200, token
        playbooks = tmp_path / "playbooks"
        playbooks.mkdir()
        for example in (ROOT / "playbooks").glob("*.toml"):
            text = example.read_text()
            if example.stem == "incident":
                assert "private_channel = true" in text
                text = text.replace("private_channel = true", "private_channel = false")
            (playbooks / example.name).write_text(text)
        settings = load_settings(tmp_path / "absent.toml", env={
            "BOT_MATTERMOST_URL": sb.url, "BOT_MATTERMOST_TOKEN": token["token"],
            "BOT_SERVER_LISTEN": "127.0.0.1:0", "BOT_SERVER_PUBLIC_URL": "http://127.0.0.1:0",
            "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/bot.db", "BOT_PLAYBOOKS_DIR": str(playbooks),
        })
        import time

        app = BotApp(settings, clock=FakeClock(int(time.time() * 1000)))
        await app.start()
        try:
            yield Site(sb, app, sb.url, team["id"])
        finally:
            await app.stop()
    assert_no_violations(sb.state)


def post_with(page: Any, text: str) -> Any:
    return page.locator("#posts .post", has_text=text)


def last_post(page: Any) -> Any:
    return page.locator("#posts .post").last


async def type_in_box(page: Any, text: str) -> None:
    box = page.get_by_label("Write a message")
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("")


def sidebar_link(page: Any, name: str) -> Any:
    return page.locator("#categories").get_by_role("link", name=re.compile(re.escape(name)))


def category(page: Any, name: str) -> Any:
    return page.locator(f'.category[data-category-name="{name}"]')


async def open_channel(page: Any, name: str) -> None:
    await sidebar_link(page, name).click()
    await expect(page.locator("#channel-title")).to_have_text(name)


async def expect_from_bot(post: Any) -> None:
    """An answer only its reader sees, shown as from the bot as Mattermost shows it."""
    await expect(post.locator(".post-author")).to_have_text("playbooks")
    await expect(post.locator(".badge")).to_have_text("BOT")
    await expect(post.locator(".post-head .ephemeral-note")).to_have_text("(Only visible to you)")


async def test_journey_alice_bob_and_carol_work_an_incident(site: Site, people: Any, shots: Shots) -> None:
    clock = site.bot.clock
    assert isinstance(clock, FakeClock)
    alice, bob, carol = await people("alice"), await people("bob"), await people("carol")
    a, b, c = alice.page, bob.page, carol.page
    # Checked at the end, so one of them failing does not hide the rest of the journey.
    late: list[str] = []

    # -- help, as Mattermost renders it: the usage texts come through as written -------------------
    await type_in_box(a, "/playbook help")
    help_post = post_with(a, "/playbook assign")
    await expect_from_bot(help_post)
    assign_line = help_post.locator("li", has_text="/playbook assign")
    await expect(assign_line.locator("code")).to_contain_text("<@user | me | nobody>")
    await expect(help_post.locator("a")).to_have_count(0)  # nothing became a link: no `[ me | nobody](@user )`
    await expect(help_post).not_to_contain_text("](@user")
    await shots.take(a, "alice", "help-text-rendered", focus=help_post)

    # -- a typo gets a short "did you mean", not the whole help ------------------------------------
    await type_in_box(a, "/playbook runn incident")
    typo = post_with(a, "There is no")
    await expect_from_bot(typo)
    await expect(typo).to_contain_text("Did you mean /playbook run")
    await expect(typo.locator("li")).to_have_count(1)
    await shots.take(a, "alice", "typo-suggestion", focus=typo)

    # -- Alice starts the run ---------------------------------------------------------------------
    await type_in_box(a, f"/playbook run incident {RUN}")
    starting = post_with(a, "Starting")
    await expect_from_bot(starting)
    run_link = category(a, "Incidents").get_by_role("link", name=re.compile(re.escape(CHANNEL)))
    await expect(run_link).to_be_visible()
    # Bob and Carol are not in it (the shipped playbook invites nobody).
    await expect(sidebar_link(b, CHANNEL)).to_have_count(0)
    await run_link.click()
    await expect(a.locator("#channel-title")).to_have_text(CHANNEL)
    triage = post_with(a, "1. Triage")
    await expect(triage).to_contain_text("0/4 done")
    severity = triage.locator(".attachment", has_text="1.2")
    # The playbook's definitions, under the item's title.
    await expect(severity.locator("blockquote")).to_contain_text("SEV1: most customers cannot use a core feature")
    await expect(severity.locator('.emoji[title=":white_large_square:"]')).to_be_visible()
    await shots.take(a, "alice", "description-under-item", focus=triage)

    # Alice works an item with its buttons: the post follows in place.
    await severity.get_by_role("button", name="Check").click()
    await expect(severity.locator('.emoji[title=":white_check_mark:"]')).to_be_visible()
    await expect(severity.locator("del")).to_contain_text("Assess severity")
    await expect(triage).to_contain_text("1/4 done")
    await shots.take(a, "alice", "item-checked", focus=triage)

    # -- Bob is assigned an item later, and hears of it by DM ---------------------------------------
    await type_in_box(a, "/playbook assign 1.4 @bob")
    deploys = triage.locator(".attachment", has_text="1.4")
    await expect(deploys.locator(".mention", has_text="@bob")).to_be_visible()
    dm_link = category(b, "Direct Messages").get_by_role("link", name="@playbooks")
    await expect(dm_link).to_be_visible()
    await dm_link.click()
    dm = post_with(b, "gave you")
    await expect(dm).to_contain_text("@alice gave you 1.4 Check recent deploys and configuration changes")
    await expect(dm.locator(".post-author")).to_have_text("playbooks")
    await expect(dm.get_by_role("link", name="Open the checklist")).to_be_visible()
    await shots.take(b, "bob", "dm-to-assignee", focus=dm)

    # -- Carol joins from Town Square -------------------------------------------------------------
    await type_in_box(c, f'/playbook join --run "{RUN}"')
    joined = post_with(c, "You take part in")
    await expect_from_bot(joined)
    await expect(sidebar_link(c, CHANNEL)).to_be_visible()
    await shots.take(c, "carol", "joined")

    # Joining late, each got the playbook's welcome privately, waiting in the run's channel (an
    # ephemeral post lives in the page only, as in Mattermost: a reload drops it).
    for page, who in ((b, "bob"), (c, "carol")):
        await open_channel(page, CHANNEL)
        welcome = post_with(page, f"Welcome to {RUN}")
        await expect_from_bot(welcome)
        await expect(welcome).to_contain_text("Keep the conversation here")
        await shots.take(page, who, "welcome", focus=welcome)

    # -- both find the channel under the run's category, after a reload ----------------------------
    for page, who in ((b, "bob"), (c, "carol")):
        await page.reload()
        await expect(page.locator("#channel-title")).to_have_text(CHANNEL)
        await expect(post_with(page, f"Welcome to {RUN}")).to_have_count(0)
        filed = category(page, "Incidents").get_by_role("link", name=re.compile(re.escape(CHANNEL)))
        await shots.take(page, who, "sidebar-after-reload")
        if not await filed.count():
            late.append(f"{who}: the run's channel is not under Incidents after a reload (issue 12, finding 2)")

    # -- the first item goes overdue at its due time, with nobody clicking --------------------------
    acknowledge = triage.locator(".attachment", has_text="1.1")
    await expect(acknowledge).not_to_contain_text("(overdue)")
    clock.advance(6 * MIN)
    due = site.bot.ctx.jobs["due"]
    assert await due.run_due() >= 1
    await expect(acknowledge.locator("strong", has_text="(overdue)")).to_be_visible()
    await expect(post_with(c, "1. Triage").locator(".attachment", has_text="1.1")).to_contain_text("(overdue)")
    await shots.take(a, "alice", "overdue-mark", focus=triage)

    # -- the status reminder comes; Bob snoozes it and everyone sees it change ---------------------
    clock.advance(25 * MIN)
    reminders = site.bot.scheduler
    assert reminders is not None
    assert await reminders.run_due() == 1
    reminder_b = post_with(b, "status update").filter(has=b.get_by_role("button", name="Snooze 15m"))
    await expect(reminder_b).to_be_visible()
    reminder_a = post_with(a, "status update").filter(has=a.get_by_role("button", name="Snooze 15m"))
    await expect(reminder_a).to_be_visible()
    await reminder_b.get_by_role("button", name="Snooze 15m").click()
    snoozed = "@bob snoozed this reminder for 15 minutes"
    await expect(reminder_a).to_contain_text(snoozed)
    await expect(reminder_a.locator('.emoji[title=":zzz:"]')).to_be_visible()
    await expect(reminder_a.get_by_role("button", name="Post update")).to_be_visible()
    # Bob's answer: only his, at the bottom of the channel and in the reminder's thread. A button's
    # answer (the action response's ephemeral_text) is Mattermost's own post to the clicker, which the
    # web app shows as "System" (app/integration_action.go: UserId is the clicker's; user_profile.tsx).
    answer = last_post(b)
    await expect(answer).to_contain_text("Snoozed: the next status update reminder")
    await expect(answer.locator(".post-author")).to_have_text("System")
    await expect(answer.locator(".post-head .ephemeral-note")).to_have_text("(Only visible to you)")
    await expect(post_with(a, "Snoozed: the next")).to_have_count(0)
    await reminder_b.get_by_role("button", name="Reply").click()
    thread = b.get_by_role("complementary", name="Thread")
    await expect(thread.locator(".post").first).to_contain_text(snoozed)
    await expect(thread.locator(".post-ephemeral")).to_contain_text("Snoozed: the next status update reminder")
    await shots.take(b, "bob", "snoozed-reminder-answer-in-thread")
    await thread.get_by_role("button", name="Close the thread").click()
    await expect(thread).to_be_hidden()
    await shots.take(a, "alice", "snoozed-reminder", focus=reminder_a)

    # -- Alice posts a status update -------------------------------------------------------------
    await type_in_box(a, "/playbook update")
    dialog = a.get_by_role("dialog", name="Post a status update")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Update", exact=True).fill(
        "**Impact:** checkout fails for everyone\n**Next steps:** fail over the database :rocket:")
    await dialog.get_by_role("button", name="Post").click()
    await expect(dialog).to_have_count(0)
    update = post_with(a, "fail over the database")
    await expect(update.locator("strong", has_text="Impact:")).to_be_visible()
    await expect(update.locator('.emoji[title=":rocket:"]')).to_be_visible()
    await expect(post_with(c, "fail over the database")).to_be_visible()
    await shots.take(a, "alice", "status-update", focus=update)

    # -- Alice finishes; asking again says it is finished and how to reopen it ------------------------
    overview = post_with(a, "Incident response").filter(has=a.get_by_role("button", name="Finish"))
    await overview.get_by_role("button", name="Finish").click()
    finish = a.get_by_role("dialog", name="Finish the run?")
    await expect(finish).to_be_visible()
    await finish.get_by_role("button", name="Finish run").click()
    await expect(finish).to_have_count(0)
    await expect(overview.get_by_role("button", name="Finish")).to_have_count(0)
    await expect(post_with(c, "1. Triage").locator(".action-button")).to_have_count(0)
    await type_in_box(a, "/playbook finish")
    finished = post_with(a, "does not apply")
    await expect_from_bot(finished)
    await expect(finished).to_contain_text(f"The run in this channel, {RUN}, is finished (since")
    await expect(finished.locator("code", has_text="/playbook restore")).to_be_visible()
    await expect(finished).not_to_contain_text("No run you can see")
    await shots.take(a, "alice", "finished-run-reply", focus=finished)

    # -- the retrospective, published twice: the second replaces the first ---------------------------
    for text in ("First draft: the failover took too long.", "Final: fail over within 5 minutes next time."):
        await type_in_box(a, "/playbook retro")
        retro = a.get_by_role("dialog", name="Retrospective")
        await expect(retro).to_be_visible()
        await retro.get_by_label("Retrospective").fill(text)
        await retro.get_by_role("button", name="Publish").click()
        await expect(retro).to_have_count(0)
        await expect(post_with(a, text)).to_be_visible()
    retro_posts = a.locator("#posts .post .attachment-text", has_text=re.compile("draft|Final"))
    await expect(retro_posts).to_have_count(1)
    await expect(retro_posts).to_contain_text("Final: fail over within 5 minutes")
    await expect(post_with(c, "First draft")).to_have_count(0)
    await expect(post_with(c, "Final: fail over")).to_be_visible()
    await shots.take(a, "alice", "retrospective-replaced", focus=post_with(a, "Final: fail over"))

    # -- the timeline says what changed, to whom, in human units -----------------------------------
    await type_in_box(a, "/playbook timeline")
    timeline = last_post(a)
    await expect(timeline).to_contain_text("@bob")
    await expect(timeline).to_contain_text("15 minutes")
    await expect(timeline).to_contain_text("etrospective updated")
    await expect(timeline).not_to_contain_text("900 s")
    await expect(timeline).not_to_contain_text("**")
    await expect_from_bot(timeline)
    await shots.take(a, "alice", "timeline", focus=timeline)

    # -- messages link only to channels that exist, and a link opens its channel -------------------
    await open_channel(a, "Town Square")
    await type_in_box(a, "Back in ~30 minutes; details in ~off-topic.")
    note = post_with(a, "Back in")
    await expect(note.get_by_role("link")).to_have_count(1)
    await expect(note).to_contain_text("~30 minutes")
    link = note.get_by_role("link", name="~Off-Topic")
    await shots.take(a, "alice", "channel-links")
    await link.click()
    await expect(a.locator("#channel-title")).to_have_text("Off-Topic")

    assert not late, "\n".join(late)
