"""People use the sandbox's web client in Chromium: a run from the first slash command to a status update.

Every wait is one of Playwright's auto-waiting expectations; nothing sleeps.
"""
from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import Shots, Site


def category(page: Any, name: str) -> Any:
    return page.locator(f'.category[data-category-name="{name}"]')


def sidebar_link(page: Any, name: str) -> Any:
    return page.locator("#categories").get_by_role("link", name=re.compile(re.escape(name)))


def post_with(page: Any, text: str) -> Any:
    return page.locator("#posts .post", has_text=text)


async def type_in_box(page: Any, text: str) -> None:
    box = page.get_by_label("Write a message")
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("")


async def test_run_journey_alice_works_it_and_bob_watches_live(site: Site, people: Any, shots: Shots) -> None:
    alice = await people("alice")
    bob = await people("bob")
    a, b = alice.page, bob.page
    await shots.take(a, "alice", "signed-in")

    # The command box suggests the bot's registered command with its hint.
    box = a.get_by_label("Write a message")
    await box.fill("/pla")
    suggestions = a.get_by_role("listbox", name="Commands")
    await expect(suggestions.get_by_role("option")).to_have_count(1)
    await expect(suggestions).to_contain_text("/playbook")
    await expect(suggestions).to_contain_text("[command]")
    await shots.take(a, "alice", "autocomplete")
    await box.press("Tab")
    await expect(box).to_have_value("/playbook ")
    await box.press_sequentially("run incident Database down")
    await box.press("Enter")
    await expect(box).to_have_value("")

    # Alice is told, in a message only she sees, that the run is starting.
    starting = post_with(a, "Starting")
    await expect(starting).to_contain_text("Database down")
    await expect(starting.locator(".ephemeral-note")).to_have_text("(Only visible to you)")

    # The run channel appears under the playbook's category for both, live.
    run_link = category(a, "Incidents").get_by_role("link", name=re.compile("inc-001 Database down"))
    await expect(run_link).to_be_visible()
    await shots.take(a, "alice", "run-in-sidebar")
    bob_link = category(b, "Incidents").get_by_role("link", name=re.compile("inc-001 Database down"))
    await expect(bob_link).to_be_visible()
    await expect(bob_link).to_have_class(re.compile(r"\bunread\b"))
    # Ephemeral messages are Alice's alone.
    await expect(post_with(b, "Starting")).to_have_count(0)
    await shots.take(b, "bob", "run-appears-unread")

    # Both open the run channel: overview, checklists with buttons, welcome.
    await run_link.click()
    await expect(a.locator("#channel-title")).to_have_text("inc-001 Database down")
    triage = post_with(a, "1. Triage")
    await expect(triage).to_contain_text("0/4 done")
    first_item = triage.locator(".attachment").first
    await expect(first_item.get_by_role("button", name="Check")).to_be_visible()
    await shots.take(a, "alice", "run-channel", focus=triage)
    await bob_link.click()
    await expect(b.locator("#channel-title")).to_have_text("inc-001 Database down")
    await expect(bob_link).not_to_have_class(re.compile(r"\bunread\b"))
    bob_triage = post_with(b, "1. Triage")
    await expect(bob_triage).to_contain_text("0/4 done")

    # Alice checks the first item: her post updates in place, and so does Bob's, over the WebSocket.
    await first_item.get_by_role("button", name="Check").click()
    await expect(first_item.locator('.emoji[title=":white_check_mark:"]')).to_be_visible()
    await expect(first_item.get_by_role("button", name="Uncheck")).to_be_visible()
    await expect(triage).to_contain_text("1/4 done")
    # Only the attachments changed, never the message; Mattermost still marks the post "(edited)": app/post.go
    # UpdatePost sets EditAt when the attachments differ (`!oldPost.AttachmentsEqual(newPost)`), not only
    # when the message does.
    await expect(triage.locator(".post-edited")).to_have_count(1)
    await shots.take(a, "alice", "item-checked", focus=triage)
    bob_first = bob_triage.locator(".attachment").first
    await expect(bob_first.locator('.emoji[title=":white_check_mark:"]')).to_be_visible()
    await expect(bob_triage).to_contain_text("1/4 done")
    await shots.take(b, "bob", "sees-item-checked", focus=bob_triage)

    # A status update through the bot's dialog: empty, then a bad reminder, then right.
    await type_in_box(a, "/playbook update")
    dialog = a.get_by_role("dialog", name="Post a status update")
    await expect(dialog).to_be_visible()
    update = dialog.get_by_label("Update", exact=True)
    await expect(update).not_to_have_value("")  # prefilled with the playbook's template
    await update.fill("")
    await dialog.get_by_role("button", name="Post").click()
    await expect(dialog.locator('.dialog-error[data-for="message"]')).to_have_text("This field is required.")
    await shots.take(a, "alice", "update-dialog-empty")
    await update.fill("**Impact:** checkout is down for everyone\n**Next steps:** fail over the database")
    await dialog.get_by_label("Next reminder in").fill("soon")
    await dialog.get_by_role("button", name="Post").click()
    # The bot refuses the reminder: its message is shown under that field, the dialog stays open.
    reminder_error = dialog.locator('.dialog-error[data-for="reminder"]')
    await expect(reminder_error).to_have_text(re.compile(r"\S"))
    await expect(dialog.locator('.dialog-error[data-for="message"]')).to_have_text("")
    await shots.take(a, "alice", "update-dialog-bot-error")
    await dialog.get_by_label("Next reminder in").fill("45m")
    await dialog.get_by_role("button", name="Post").click()
    await expect(dialog).to_have_count(0)
    update_post = post_with(a, "fail over the database")
    await expect(update_post.locator("strong", has_text="Impact:")).to_be_visible()
    await shots.take(a, "alice", "update-posted")
    await expect(post_with(b, "fail over the database")).to_be_visible()
    await shots.take(b, "bob", "sees-update")


async def test_run_dialog_shows_errors_in_place_cancels_and_starts_a_run(site: Site, people: Any,
                                                                          shots: Shots) -> None:
    alice = await people("alice")
    a = alice.page
    await type_in_box(a, "/playbook run")
    dialog = a.get_by_role("dialog", name="Run a playbook")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Start run").click()
    await expect(dialog.locator('.dialog-error[data-for="playbook"]')).to_have_text("This field is required.")
    await shots.take(a, "alice", "run-dialog-required")

    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    await shots.take(a, "alice", "run-dialog-cancelled")

    await type_in_box(a, "/playbook run")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Playbook").select_option(label="Customer onboarding")
    await dialog.get_by_label("Run name").fill("Acme Corporation")
    await dialog.get_by_label("Summary").fill("Signed on Monday; wants SSO first.")
    await shots.take(a, "alice", "run-dialog-filled")
    await dialog.get_by_role("button", name="Start run").click()
    await expect(dialog).to_have_count(0)
    link = category(a, "Onboarding").get_by_role("link", name=re.compile("onb Acme Corporation"))
    await expect(link).to_be_visible()
    await link.click()
    await expect(post_with(a, "Signed on Monday")).to_be_visible()
    await shots.take(a, "alice", "onboarding-run")


async def test_messages_render_markdown_safely_with_mentions_and_unread_markers(site: Site, people: Any,
                                                                                 shots: Shots) -> None:
    alice = await people("alice")
    bob = await people("bob")
    a, b = alice.page, bob.page
    await sidebar_link(b, "Off-Topic").click()
    await expect(b.locator("#channel-title")).to_have_text("Off-Topic")
    town = sidebar_link(b, "Town Square")
    await expect(town).not_to_have_class(re.compile(r"\bunread\b"))

    attacks: list[str] = []
    a.on("dialog", lambda d: attacks.append(d.message))
    b.on("dialog", lambda d: attacks.append(d.message))
    box = a.get_by_label("Write a message")
    await box.fill("\n".join([
        "Hey @bob, **bold**, *italic*, ~~gone~~ and `code <b>not bold</b>`.",
        "See [the docs](https://docs.mattermost.com/) or https://example.com/path_with_underscores.",
        "<img src=x onerror=alert(1)> [click](javascript:alert(2)) <script>alert(3)</script>",
        "",
        "- one",
        "- two",
        "  - nested",
        "",
        "| Service | State |",
        "|---|:---:|",
        "| db | down |",
    ]))
    await box.press("Enter")

    # Bob, elsewhere, sees Town Square unread with one mention, live.
    await expect(town).to_have_class(re.compile(r"\bunread\b"))
    await expect(town.locator(".mention-badge")).to_have_text("1")
    await shots.take(b, "bob", "mention-unread")
    await town.click()
    await expect(town.locator(".mention-badge")).to_have_count(0)

    for page, who in ((a, "alice"), (b, "bob")):
        message = post_with(page, "Hey").locator(".post-body")
        await expect(message.locator("strong", has_text="bold")).to_be_visible()
        await expect(message.locator("em", has_text="italic")).to_be_visible()
        await expect(message.locator("del", has_text="gone")).to_be_visible()
        await expect(message.locator("code")).to_have_text("code <b>not bold</b>")
        await expect(message.get_by_role("link", name="the docs")).to_have_attribute(
            "href", "https://docs.mattermost.com/")
        await expect(message.get_by_role("link", name="https://example.com/path_with_underscores")).to_be_visible()
        await expect(message.locator("ul ul li")).to_have_text("nested")
        await expect(message.locator("table th").nth(1)).to_have_text("State")
        await expect(message.locator("table td").first).to_have_text("db")
        # What looked like HTML is shown as text, and the javascript: link is not a link.
        await expect(message).to_contain_text("<img src=x onerror=alert(1)>")
        await expect(message.locator("img, script")).to_have_count(0)
        await expect(message.locator('a[href^="javascript"]')).to_have_count(0)
        mention = message.locator(".mention", has_text="@bob")
        await expect(mention).to_be_visible()
        if who == "bob":
            await expect(mention).to_have_class(re.compile(r"\bmention-me\b"))
        await shots.take(page, who, "markdown")
    assert attacks == []
