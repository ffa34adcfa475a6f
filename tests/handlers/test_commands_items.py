"""Item commands through the real dispatcher and storage, over the fake gateway."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.actions import CheckItem
from bot.router import Click
from tests.conftest import attachments_text
from tests.handlers.commands_world import Env, events, item_states, make_env


@pytest.fixture
async def env(tmp_path: Path) -> Env:
    return await make_env(tmp_path)


async def test_check_by_number_edits_the_post_and_records_the_click_event(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    triage_post = view.checklists[0][0].post_id
    text = await env.type("bob", "/playbook check 1.2", channel)
    assert text == "Checked **1.2** Open a bridge call."
    after = await env.view(view.run.id)
    assert item_states(after)[0] == ["open", "closed", "open"]
    [event] = events(after, "item_state_changed")
    assert event.actor_id == env.users["bob"].id and event.details["to"] == "closed"
    post = env.gw.world.posts[triage_post]
    assert "1/3 done" in attachments_text(post.props) and "done" not in post.message
    assert [a["name"] for a in post.props["attachments"][1]["actions"]] == ["Uncheck"]
    # The overview follows (coalesced follow-up, drained by env.type).
    assert "1/5" in attachments_text(env.gw.world.posts[view.run.overview_post_id].props)


async def test_command_and_button_record_the_same_event(env: Env) -> None:
    view = await env.start()
    item = view.checklists[0][1][0]
    from handlers.items import item_check

    click = Click(env.users["carol"].id, "carol", view.run.channel_id, env.team_id, view.checklists[0][0].post_id,
                  "", CheckItem(view.run.id, item.id))
    await item_check(click, env.ctx)
    await env.type("carol", "/playbook check 1.2", view.run.channel_id)
    after = await env.view(view.run.id)
    by_click, by_command = events(after, "item_state_changed")
    assert (by_click.type, by_click.details["to"]) == (by_command.type, by_command.details["to"])


async def test_title_words_repeat_and_transitions(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    assert "Checked **1.2**" in await env.type("alice", "/playbook check bridge", channel)
    assert "already done, so nothing changed" in await env.type("alice", "/playbook check bridge call", channel)
    assert "Skipped **1.3**" in await env.type("alice", "/playbook skip tell channel", channel)
    text = await env.type("alice", "/playbook check 1.3", channel)
    assert "skipped, so nothing changed" in text and "/playbook unskip 1.3" in text
    assert "Restored **1.3**" in await env.type("alice", "/playbook unskip 1.3", channel)
    assert "Unchecked **1.2**" in await env.type("alice", "/playbook uncheck 1.2", channel)
    after = await env.view(view.run.id)
    assert item_states(after)[0] == ["open", "open", "open"]
    assert len(events(after, "item_state_changed")) == 4  # the repeat recorded nothing


async def test_ambiguous_and_unknown_items_list_what_could_be_meant(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    text = await env.type("alice", "/playbook check the", channel)
    assert "matches several items" in text
    for number in ("`1.1`", "`2.1`", "`2.2`"):
        assert number in text
    text = await env.type("alice", "/playbook check kubernetes", channel)
    assert "No item title contains **kubernetes**" in text and "**1. Triage** (3 items" in text
    text = await env.type("alice", "/playbook check 7.1", channel)
    assert "There is no item **7.1**" in text and "Usage: `/playbook check" in text
    text = await env.type("alice", "/playbook check 0.1", channel)
    assert "is not an item number" in text
    text = await env.type("alice", "/playbook check", channel)
    assert "Tell me which item" in text and "Usage:" in text
    assert item_states(await env.view(view.run.id)) == [["open"] * 3, ["open"] * 2]


async def test_add_and_remove_keep_numbers_contiguous(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    assert "Added **2.3** Call the vendor to **Resolve**" in await env.type(
        "alice", "/playbook add resolve Call the vendor", channel)
    assert "Added **1.4**" in await env.type("alice", "/playbook add 1 Page the DBA", channel)
    assert "Removed **1.1** Acknowledge the page" in await env.type("alice", "/playbook remove 1.1", channel)
    after = await env.view(view.run.id)
    triage = after.checklists[0][1]
    assert [i.title for i in triage] == ["Open a bridge call", "Tell @channel about it", "Page the DBA"]
    assert [i.position for i in triage] == [0, 1, 2]
    assert len(events(after, "item_added")) == 2 and len(events(after, "item_removed")) == 1
    post = env.gw.world.posts[after.checklists[0][0].post_id]
    assert len(post.props["attachments"]) == 3 and "**1.3** Page the DBA" in post.props["attachments"][2]["text"]
    # The checklist by a multi-word title; a missing title; an unknown checklist.
    text = await env.type("alice", "/playbook add nowhere Something", channel)
    assert "No checklist is called **nowhere**" in text and "**2. Resolve**" in text
    assert "Tell me the new item's title" in await env.type("alice", "/playbook add 2", channel)
    assert "is not a checklist number" in await env.type("alice", "/playbook add 0 x", channel)


async def test_injection_in_titles_is_shown_defused(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    text = await env.type("alice", "/playbook add 2 Ping @all and @channel [x](javascript:alert(1))", channel)
    assert "@all" not in text and "@channel" not in text and "](javascript" not in text
    after = await env.view(view.run.id)
    post = env.gw.world.posts[after.checklists[1][0].post_id]
    shown = post.props["attachments"][-1]["text"]
    assert "@all" not in shown and "@channel" not in shown and "](javascript" not in shown
    # Stored as typed: the escaping is for display only.
    assert after.checklists[1][1][-1].title == "Ping @all and @channel [x](javascript:alert(1))"


async def test_assign_to_participant_team_member_and_outsider(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    assert "Assigned **2.1** Find the cause to @bob." == await env.type("alice", "/playbook assign 2.1 @bob", channel)
    text = await env.type("alice", "/playbook assign cause @dave", channel)
    assert "now a participant" in text
    assert env.users["dave"].id in env.gw.world.members[channel]
    after = await env.view(view.run.id)
    assert env.users["dave"].id in after.participant_ids
    assert [e.details["to"] for e in events(after, "assignee_changed")] == [env.users["bob"].id, env.users["dave"].id]
    text = await env.type("alice", "/playbook assign 2.1 @outsider", channel)
    assert "not a member of this team" in text
    assert "no active user" in await env.type("alice", "/playbook assign 2.1 @ghost", channel)
    assert "a whole channel" in await env.type("alice", "/playbook assign 2.1 @all", channel)
    assert "is a bot" in await env.type("alice", "/playbook assign 2.1 @playbooks", channel)
    assert "no longer assigned" in await env.type("alice", "/playbook assign 2.1 nobody", channel)
    assert "already unassigned" in await env.type("alice", "/playbook assign 2.1 nobody", channel)
    text = await env.type("alice", "/playbook assign 1.2 me", channel)
    assert "Assigned **1.2** Open a bridge call to @alice" in text


async def test_due_dates(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    assert "now due 2026-01-01 02:00 UTC" in await env.type("alice", "/playbook due 2.1 2h", channel)
    assert "now due 2026-01-03 00:00 UTC" in await env.type("alice", "/playbook due find cause 2 days", channel)
    assert "now due 2026-03-01 14:00 UTC" in await env.type("alice", "/playbook due 2.1 2026-03-01 14:00", channel)
    assert "already due" in await env.type("alice", "/playbook due 2.1 2026-03-01T14:00", channel)
    assert "no longer has a due date" in await env.type("alice", "/playbook due 2.1 off", channel)
    text = await env.type("alice", "/playbook due 2.1 2020-01-01", channel)
    assert "in the past" in text and "Usage: `/playbook due" in text
    assert "has no unit" in await env.type("alice", "/playbook due 2.1 5", channel)
    assert "Tell me when" in await env.type("alice", "/playbook due 2.1", channel)
    after = await env.view(view.run.id)
    assert after.checklists[1][1][0].due_at is None
    assert len(events(after, "item_due_changed")) == 4
    post = env.gw.world.posts[after.checklists[1][0].post_id]
    assert "due" not in post.props["attachments"][0]["text"]


async def test_run_command_expands_summary_variables(env: Env) -> None:
    view = await env.start(summary="service: billing-db\nSeverity: high")
    channel = view.run.channel_id
    text = await env.type("alice", "/playbook run-command deploy", channel)
    assert "/echo deploying billing-db" in text
    after = await env.view(view.run.id)
    [event] = events(after, "command_ran")
    assert event.summary == "/echo deploying billing-db" and event.details["mode"] == "handed_over"
    assert "has no slash command" in await env.type("alice", "/playbook run-command 1.2", channel)


async def test_run_command_reports_undefined_variables_and_records_nothing(env: Env) -> None:
    view = await env.start(summary="nothing useful")
    text = await env.type("alice", "/playbook run-command 2.2", view.run.channel_id)
    assert "does not define `$service`" in text and "service: value" in text
    assert events(await env.view(view.run.id), "command_ran") == []


async def test_non_participants_are_told_how_to_join(env: Env) -> None:
    view = await env.start("onboarding", "Acme")
    channel = view.run.channel_id
    text = await env.type("dave", "/playbook check 1.1", env.town.id if False else channel)
    assert "/playbook join" in text
    # A private run is invisible to team members outside it, by --run from anywhere.
    await env.start()
    text = await env.type("dave", '/playbook check 1.1 --run "Database down"')
    assert "No run you can see is called" in text
    assert item_states(await env.view(view.run.id)) == [["open"]]


async def test_admin_may_work_any_run(env: Env) -> None:
    view = await env.start()
    text = await env.type("root", '/playbook check 1.1 --run "Database down"')
    assert text.startswith("Checked **1.1**")
    assert item_states(await env.view(view.run.id))[0][0] == "closed"
