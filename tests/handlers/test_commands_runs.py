"""list, info, owner, todo, join, leave, follow, unfollow, and help."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from bot.router import NoReply, SlashCommand
from storage import reminders
from tests.conftest import attachments_text
from tests.handlers.commands_world import Env, events, make_env


@pytest.fixture
async def env(tmp_path: Path) -> Env:
    return await make_env(tmp_path)


async def test_help_lists_every_subcommand_with_usage(env: Env) -> None:
    text = await env.type("alice", "/playbook")
    for name in ("check", "uncheck", "skip", "unskip", "add", "remove", "assign", "due", "run-command",
                 "list", "info", "owner", "todo", "join", "leave", "follow", "unfollow"):
        assert f"`/playbook {name}" in text, name
    unknown = await env.type("alice", "/playbook frobnicate")
    assert "There is no `/playbook frobnicate`" in unknown and "`/playbook check" not in unknown
    assert all(spec.help for spec in env.ctx.router.commands.values())


async def test_list_shows_visible_runs_and_mine(env: Env) -> None:
    await env.start()  # private, alice bob carol
    await env.start("onboarding", "Acme", who="bob")  # public
    text = await env.type("dave", "/playbook list")
    assert "Acme" in text and "Database down" not in text
    text = await env.type("alice", "/playbook list")
    assert "Acme" in text and "Database down" in text and '`--run "Database down"`' in text
    text = await env.type("alice", "/playbook list mine")
    assert "Database down" in text and "Acme" not in text
    assert "not taking part" in await env.type("dave", "/playbook list mine")
    assert "neither" in await env.type("dave", "/playbook list everything")
    assert "Database down" in await env.type("root", "/playbook list")


async def test_info_summary_owner_progress_next_update(env: Env) -> None:
    view = await env.start(summary="The primary is down.\n@channel look")
    # The reminders feature armed the first status reminder when the run started (every 30 minutes).
    await env.type("alice", "/playbook check 1.1", view.run.channel_id)
    text = await env.type("alice", "/playbook info", view.run.channel_id)
    assert "### Database down" in text and "Owner @alice" in text and "**1/5** (20%)" in text
    assert "Next status update due 2026-01-01 00:30 UTC" in text
    assert "The primary is down." in text and "@channel" not in text
    assert "takes no arguments besides `--run`" in await env.type("alice", "/playbook info now please",
                                                                  view.run.channel_id)
    # Someone outside the private run cannot read it from anywhere.
    assert "No run you can see" in await env.type("dave", '/playbook info --run "Database down"')


async def test_owner_show_change_and_refuse(env: Env) -> None:
    view = await env.start()
    channel = view.run.channel_id
    assert "@alice owns **Database down**" in await env.type("bob", "/playbook owner", channel)
    assert "Only the run's owner" in await env.type("bob", "/playbook owner @bob", channel)
    assert "@bob now owns the run (it was @alice)" in await env.type("alice", "/playbook owner @bob", channel)
    after = await env.view(view.run.id)
    assert after.run.owner_id == env.users["bob"].id
    [event] = events(after, "owner_changed")
    assert event.summary == "@alice to @bob"
    assert any("handed the run over" in p.message for p in env.gw.posts_in(channel))
    assert "Owner: @bob" in attachments_text(env.gw.world.posts[after.run.overview_post_id].props)
    assert "already owns" in await env.type("bob", "/playbook owner @bob", channel)
    assert "not a member of this team" in await env.type("bob", "/playbook owner @outsider", channel)
    assert "more than one person" in await env.type("bob", "/playbook owner @carol @dave", channel)
    # A new owner from outside the run joins it.
    await env.type("bob", "/playbook owner @dave", channel)
    after = await env.view(view.run.id)
    assert env.users["dave"].id in after.participant_ids and env.users["dave"].id in env.gw.world.members[channel]


async def test_todo_lists_my_items_and_overdue_updates(env: Env) -> None:
    view = await env.start()
    other = await env.start("onboarding", "Acme", who="bob")
    await env.type("alice", "/playbook assign 2.1 @carol", view.run.channel_id)
    await env.type("bob", "/playbook assign 1.1 @carol", other.run.channel_id)
    await env.type("alice", "/playbook due 2.1 1h", view.run.channel_id)
    await env.ctx.db.run(_reminder, view.run.id, env.clock.now_ms() - 60_000)
    text = await env.type("carol", "/playbook todo")
    assert "**Database down** `2.1` Find the cause" in text and "**Acme** `1.1` Send the welcome pack" in text
    assert "Overdue status updates" in text
    env.clock.advance(2 * 3600)
    assert "(overdue)" in await env.type("carol", "/playbook todo")
    assert "Nothing to do" in await env.type("dave", "/playbook todo")
    assert "takes no arguments" in await env.type("dave", "/playbook todo now")


async def test_join_leave_follow(env: Env) -> None:
    view = await env.start("onboarding", "Acme")
    channel = view.run.channel_id
    dave = env.users["dave"].id
    assert "You take part in **Acme** now" in await env.type("dave", "/playbook join", channel)
    assert dave in env.gw.world.members[channel]
    after = await env.view(view.run.id)
    assert dave in after.participant_ids and dave in after.follower_ids
    assert "already take part" in await env.type("dave", "/playbook join", channel)
    assert "Checked" in await env.type("dave", "/playbook check 1.1", channel)
    assert "no longer take part" in await env.type("dave", "/playbook leave", channel)
    assert "nothing to leave" in await env.type("dave", "/playbook leave", channel)
    assert "can't leave" in await env.type("alice", "/playbook leave", channel)
    assert "no longer follow" in await env.type("dave", "/playbook unfollow", channel)
    assert "were not following" in await env.type("dave", "/playbook unfollow", channel)
    assert "You follow **Acme** now" in await env.type("dave", "/playbook follow", channel)
    after = await env.view(view.run.id)
    assert [e.summary for e in events(after, "participant_joined")] == ["@dave"]
    assert [e.summary for e in events(after, "participant_left")] == ["@dave"]
    assert "takes no arguments" in await env.type("dave", "/playbook join now", channel)


async def test_private_run_join_needs_an_invitation(env: Env) -> None:
    view = await env.start()
    text = await env.type("dave", '/playbook join --run "Database down"')
    assert "No run you can see" in text
    assert env.users["dave"].id not in (await env.view(view.run.id)).participant_ids
    # Someone added to the run's channel (so they read it anyway) may join from there.
    await env.gw.add_channel_member(view.run.channel_id, env.users["dave"].id)
    assert "You take part" in await env.type("dave", "/playbook join", view.run.channel_id)


def _reminder(session: Session, run_id: str, due_at: int) -> None:
    # Move the status reminder the run start armed (as a snooze or an overdue update would).
    reminders.arm(session, run_id, reminders.STATUS, due_at, 1800)


async def test_every_run_command_refuses_extra_words_the_same_way(env: Env) -> None:
    """`--run` is parsed in one place (commands/targets.py); no subcommand drops words it does not know."""
    view = await env.start()
    channel = view.run.channel_id
    for command in ("join", "leave", "follow", "unfollow", "info", "update", "finish", "timeline"):
        text = await env.type("alice", f"/playbook {command} please", channel)
        assert "takes no arguments besides `--run`" in text and "please" in text, (command, text)
        assert env.ctx.router.commands[command].usage.endswith("[--run <name>]")
        assert f"/playbook {command} {env.ctx.router.commands[command].usage}" in text, (command, text)
    text = await env.type("alice", "/playbook retro now please", channel)
    assert "now please" in text and "/playbook retro [cancel] [--run <name>]" in text
    # Nothing happened: no dialog opened, nobody joined or left, the run is still in progress.
    assert env.gw.dialogs == []
    after = await env.view(view.run.id)
    assert after.run.status == "in_progress" and after.participant_ids == view.participant_ids


async def test_restore_is_its_own_permission_the_owners(env: Env) -> None:
    from handlers.finish import finish_run

    view = await env.start()
    channel = view.run.channel_id
    assert await finish_run(env.ctx, view.run.id, env.users["alice"].id)
    await env.ctx.tasks.drain()
    assert "Only the run's owner" in await env.type("bob", "/playbook restore", channel)
    assert "please" in await env.type("alice", "/playbook restore please", channel)
    assert (await env.view(view.run.id)).run.status == "finished"
    user = env.users["alice"]
    reply = await env.dispatcher.command(SlashCommand(user.id, user.username, channel, "", env.team_id, "eng",
                                                      "/playbook", "restore", args=("restore",)), env.ctx)
    await env.ctx.tasks.drain()
    assert isinstance(reply, NoReply)  # the channel hears it (below); the owner gets no private answer
    assert (await env.view(view.run.id)).run.status == "in_progress"
    assert any("@alice reopened" in p.message for p in env.gw.posts_in(channel))


async def test_a_command_claiming_a_private_run_channel_is_checked_with_mattermost(env: Env) -> None:
    """Only the command token vouches for the request's channel; a private run seen "because you are in
    its channel" is confirmed with Mattermost first, so a forged channel id shows nothing."""
    view = await env.start()  # the incident playbook's channel is private; dave is not in it
    channel = view.run.channel_id
    assert env.users["dave"].id not in env.gw.world.members[channel]
    for text in ("/playbook info", "/playbook timeline", "/playbook follow"):
        answer = await env.type("dave", text, channel)
        assert "can't see this run" in answer and "Database down" not in answer, (text, answer)
    assert env.users["dave"].id not in (await env.view(view.run.id)).follower_ids
    # Once really in the channel (added by hand, not a participant), dave may read it.
    await env.gw.add_channel_member(channel, env.users["dave"].id)
    assert "### Database down" in await env.type("dave", "/playbook info", channel)
