"""One contract, two gateways: every test runs against FakeGateway ("fake") and against MattermostGateway
talking to the sandbox over HTTP ("sandbox"), so the fake handler tests rely on cannot drift from the server.

The world is the same in both: team `eng`; an admin bot `playbooks` (system admin, as the bot must be to
manage other users' sidebar categories and send ephemeral posts); a plain bot `plainbot`; alice and bob in
the team; carol outside it.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest

from bot.mattermost import MattermostGateway, RetryPolicy
from bot.models import Gateway, MattermostError, MMTeam, MMUser
from sandbox import Sandbox
from sandbox.ids import new_id
from sandbox.state import CommandWebhook
from tests.fakes import FakeGateway

PERMISSIONS = "api.context.permissions.app_error"
UNKNOWN_ID = "x" * 26


@dataclass
class Env:
    kind: str
    gw: Gateway  # the admin bot
    plain: Gateway  # a plain bot (system_user), also in the team
    team: MMTeam
    bot: MMUser
    plain_bot: MMUser
    alice: MMUser
    bob: MMUser
    carol: MMUser  # not in the team
    trigger_id: Callable[[str], str]  # a valid trigger id for a user, as a click or command would carry
    alice_token: str = ""  # alice's own token, as a caller of the bot's REST API would send it
    response_url: Callable[[str, str], Any] | None = None  # async (user_id, channel_id) -> a fresh hook URL
    ephemerals_to: Callable[[str], list[str]] | None = None  # texts delivered ephemerally to a user


async def _fake_env() -> Env:
    fake = FakeGateway(bot_username="playbooks")
    team = fake.add_team("eng", "Engineering", members=[fake.bot_id])
    plain_bot = fake.add_user("plainbot", is_bot=True, teams=[team.id])
    alice = fake.add_user("alice", teams=[team.id])
    bob = fake.add_user("bob", teams=[team.id])
    carol = fake.add_user("carol")
    fake.world.tokens["alicetoken"] = alice.id

    async def response_url(user_id: str, channel_id: str) -> str:
        return fake.response_url(user_id, channel_id)

    def ephemerals_to(user_id: str) -> list[str]:
        return [e.message for e in fake.world.ephemerals if e.user_id == user_id]

    return Env("fake", fake, fake.as_user(plain_bot.id), team, fake.world.users[fake.bot_id], plain_bot,
               alice, bob, carol, fake.trigger_id, "alicetoken", response_url, ephemerals_to)


class _Admin:
    """The sandbox's /api/v4 as the system admin, failing loudly so a sandbox gap is easy to read."""

    def __init__(self, session: aiohttp.ClientSession, sb: Sandbox) -> None:
        self.session = session
        self.base = f"{sb.url}/api/v4"
        self.headers = {"Authorization": f"Bearer {sb.admin_token}"}

    async def __call__(self, method: str, path: str, body: Any, expect: int) -> Any:
        async with self.session.request(method, self.base + path, json=body, headers=self.headers) as resp:
            data = await resp.json(content_type=None)
            assert resp.status == expect, f"sandbox {method} {path} -> {resp.status} {data}"
            return data


async def _sandbox_env(sb: Sandbox, session: aiohttp.ClientSession) -> Env:
    admin = _Admin(session, sb)
    team = await admin("POST", "/teams", {"name": "eng", "display_name": "Engineering", "type": "O"}, 201)
    users = {}
    for name in ("alice", "bob", "carol"):
        users[name] = await admin("POST", "/users", {"username": name, "email": f"{name}@example.com",
                                                     "password": "Passw0rd!-long"}, 201)
    tokens = {}
    for name in ("playbooks", "plainbot"):
        bot = await admin("POST", "/bots", {"username": name, "display_name": name.title()}, 201)
        users[name] = {"id": bot["user_id"]}
        tokens[name] = (await admin("POST", f"/users/{bot['user_id']}/tokens", {"description": "test"}, 200))["token"]
    await admin("PUT", f"/users/{users['playbooks']['id']}/roles", {"roles": "system_user system_admin"}, 200)
    for name in ("playbooks", "plainbot", "alice", "bob"):
        await admin("POST", f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": users[name]["id"]},
                    201)
    alice_token = (await admin("POST", f"/users/{users['alice']['id']}/tokens", {"description": "api"}, 200))["token"]
    retry = RetryPolicy(attempts=1)  # the contract is about answers, not retries
    gw = MattermostGateway(sb.url, tokens["playbooks"], retry=retry)
    plain = MattermostGateway(sb.url, tokens["plainbot"], retry=retry)
    get = gw.get_user

    delivered: list[tuple[str, str]] = []
    publish = sb.hub.publish

    def recording_publish(event: str, data: dict[str, Any], **kw: Any) -> None:
        if event == "ephemeral_message":
            delivered.append((kw.get("user_id", ""), json.loads(data["post"])["message"]))
        publish(event, data, **kw)

    sb.hub.publish = recording_publish  # type: ignore[method-assign]

    async def response_url(user_id: str, channel_id: str) -> str:
        # What /commands/execute leaves behind for the command's integration: a hook for that user.
        command = await gw.create_command(team["id"], f"hook{secrets.token_hex(3)}", "http://127.0.0.1:9/unused")
        hook = CommandWebhook(id=new_id(), command_id=command.id, user_id=user_id, channel_id=channel_id,
                              root_id="", create_at=int(sb.hub.clock() * 1000))
        sb.state.command_webhooks[hook.id] = hook
        return f"{sb.url}/hooks/commands/{hook.id}"

    def ephemerals_to(user_id: str) -> list[str]:
        return [text for uid, text in delivered if uid == user_id]

    return Env("sandbox", gw, plain, MMTeam.from_json(team), await get(users["playbooks"]["id"]),
               await get(users["plainbot"]["id"]), await get(users["alice"]["id"]), await get(users["bob"]["id"]),
               await get(users["carol"]["id"]), lambda user_id: sb.hub.triggers.generate(user_id)[1],
               alice_token, response_url, ephemerals_to)


@pytest.fixture(params=["fake", "sandbox"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "fake":
        yield await _fake_env()
        return
    async with Sandbox(admin_token=secrets.token_hex(13), validate=True) as sb:
        async with aiohttp.ClientSession() as session:
            e = await _sandbox_env(sb, session)
        try:
            yield e
        finally:
            await e.gw.close()
            await e.plain.close()


async def expect_error(coro: Any, status: int, error_id: str) -> MattermostError:
    with pytest.raises(MattermostError) as info:
        await coro
    assert (info.value.status, info.value.error_id) == (status, error_id), str(info.value)
    return info.value


# -- users and teams ---------------------------------------------------------------------------------

async def test_me_and_users(env: Env) -> None:
    me = await env.gw.me()
    assert (me.id, me.username, me.is_bot, me.is_admin) == (env.bot.id, "playbooks", True, True)
    plain = await env.plain.me()
    assert plain.is_bot and not plain.is_admin
    assert (await env.gw.get_user(env.alice.id)).username == "alice"
    await expect_error(env.gw.get_user(UNKNOWN_ID), 404, "app.user.missing_account.const")


async def test_users_by_ids_and_usernames_drop_unknown(env: Env) -> None:
    found = await env.gw.get_users_by_ids([env.alice.id, UNKNOWN_ID, env.bob.id])
    assert {u.username for u in found} == {"alice", "bob"}
    found = await env.gw.get_users_by_usernames(["Alice", "nobody"])
    assert [u.id for u in found] == [env.alice.id]
    before = env.gw.calls
    assert await env.gw.get_users_by_ids([]) == [] and await env.gw.get_users_by_usernames([]) == []
    assert env.gw.calls == before


async def test_teams(env: Env) -> None:
    assert [t.id for t in await env.gw.my_teams()] == [env.team.id]
    assert (await env.gw.get_team(env.team.id)).name == "eng"
    team = await env.gw.get_team_by_name("eng")
    assert (team.id, team.display_name) == (env.team.id, "Engineering")
    await expect_error(env.gw.get_team_by_name("nope"), 404, "app.team.get_by_name.missing.app_error")


# -- channels ----------------------------------------------------------------------------------------

async def test_create_and_read_channels(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "incident-1", "Incident 1", private=True, purpose="p")
    assert (ch.team_id, ch.name, ch.display_name, ch.type, ch.delete_at) == (
        env.team.id, "incident-1", "Incident 1", "P", 0)
    assert (await env.gw.get_channel(ch.id)).name == "incident-1"
    assert (await env.gw.get_channel_by_name(env.team.id, "incident-1")).id == ch.id
    assert await env.gw.get_channel_member_ids(ch.id) == [env.bot.id]  # the creator joins
    public = await env.gw.create_channel(env.team.id, "open-room", "Open", private=False)
    assert public.type == "O"


async def test_channel_errors(env: Env) -> None:
    await env.gw.create_channel(env.team.id, "dup", "Dup", private=False)
    await expect_error(env.gw.create_channel(env.team.id, "dup", "Dup again", private=True),
                       400, "store.sql_channel.save_channel.exists.app_error")
    with pytest.raises(MattermostError) as info:
        await env.gw.create_channel(env.team.id, "Not Valid", "x", private=False)
    assert info.value.status == 400 and info.value.error_id.startswith("model.channel.is_valid."), str(info.value)
    await expect_error(env.gw.get_channel_by_name(env.team.id, "missing"), 404,
                       "app.channel.get_by_name.missing.app_error")
    await expect_error(env.gw.get_channel(UNKNOWN_ID), 404, "app.channel.get.existing.app_error")


async def test_channel_members(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "run-1", "Run 1", private=True)
    await env.gw.add_channel_member(ch.id, env.alice.id)
    await env.gw.add_channel_member(ch.id, env.alice.id)  # already a member: a no-op, not an error
    assert sorted(await env.gw.get_channel_member_ids(ch.id)) == sorted([env.bot.id, env.alice.id])
    await expect_error(env.gw.add_channel_member(ch.id, env.carol.id), 404, "app.team.get_member.missing.app_error")
    await env.gw.set_channel_admin(ch.id, env.alice.id)


async def test_is_channel_member(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "room-1", "Room 1", private=True)
    await env.gw.add_channel_member(ch.id, env.alice.id)
    assert await env.gw.is_channel_member(ch.id, env.alice.id)
    assert not await env.gw.is_channel_member(ch.id, env.bob.id)
    # A private channel the asking bot is not in: the channel itself is hidden, not "not a member".
    await expect_error(env.plain.is_channel_member(ch.id, env.alice.id), 404, "app.channel.get.existing.app_error")
    public = await env.gw.create_channel(env.team.id, "room-2", "Room 2", private=False)
    assert not await env.plain.is_channel_member(public.id, env.alice.id)


async def test_delete_post(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "room-3", "Room 3", private=False)
    post = await env.gw.create_post(ch.id, "to go")
    await env.gw.delete_post(post.id)
    assert all(p.id != post.id for p in await env.gw.get_channel_posts(ch.id))
    await expect_error(env.gw.delete_post(post.id), 403, PERMISSIONS)  # gone: answered as a refusal


async def test_direct_channel_is_idempotent(env: Env) -> None:
    first = await env.gw.direct_channel(env.bot.id, env.alice.id)
    again = await env.gw.direct_channel(env.alice.id, env.bot.id)
    assert first.id == again.id
    assert (first.type, first.team_id, first.name) == ("D", "", "__".join(sorted([env.bot.id, env.alice.id])))


# -- posts ---------------------------------------------------------------------------------------------

async def test_posts(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "posts", "Posts", private=False)
    props = {"attachments": [{"text": "hello"}]}
    root = await env.gw.create_post(ch.id, "root", props=props)
    assert (root.channel_id, root.user_id, root.message) == (ch.id, env.bot.id, "root")
    assert root.props["attachments"] == [{"text": "hello"}]
    assert root.props.get("from_bot") == "true"  # the server marks every bot post
    reply = await env.gw.create_post(ch.id, "reply", root_id=root.id)
    assert reply.root_id == root.id
    got = await env.gw.get_post(root.id)
    assert (got.id, got.message) == (root.id, "root")

    kept = await env.gw.update_post(root.id, "edited", None)  # None keeps the props (and buttons)
    assert kept.message == "edited" and kept.props["attachments"] == [{"text": "hello"}]
    replaced = await env.gw.update_post(root.id, "edited again", {"attachments": []})
    assert replaced.props.get("attachments") == []
    assert (await env.gw.get_post(root.id)).message == "edited again"
    # message None keeps the text and changes only the props (what works past PostEditTimeLimit).
    props_only = await env.gw.update_post(root.id, None, {"attachments": [{"text": "state 2"}]})
    assert props_only.message == "edited again" and props_only.props["attachments"] == [{"text": "state 2"}]
    assert (await env.gw.get_post(root.id)).message == "edited again"


async def test_channel_posts_newest_first_with_their_props(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "marked", "Marked", private=True)
    assert (await env.gw.get_channel(ch.id)).creator_id == env.bot.id
    made = [await env.gw.create_post(ch.id, f"post {n}", props={"playbooks_part": f"part{n}"}) for n in range(3)]
    newest = [p for p in await env.gw.get_channel_posts(ch.id) if p.user_id == env.bot.id and not p.type]
    assert [p.id for p in newest] == [p.id for p in reversed(made)]
    assert [p.props.get("playbooks_part") for p in newest] == ["part2", "part1", "part0"]
    assert [p.id for p in await env.gw.get_channel_posts(ch.id, per_page=1)] == [made[-1].id]
    await expect_error(env.plain.get_channel_posts(ch.id), 403, PERMISSIONS)


async def test_upload_a_file_and_attach_it_once(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "filed", "Filed", private=True)
    other = await env.gw.create_channel(env.team.id, "other-files", "Other", private=True)
    file_id = await env.gw.upload_file(ch.id, "report.md", b"# Report\n", "text/markdown")
    wrong_channel = await env.gw.create_post(other.id, "elsewhere", file_ids=[file_id])
    assert wrong_channel.file_ids == ()
    post = await env.gw.create_post(ch.id, "the report", file_ids=[file_id])
    assert post.file_ids == (file_id,)
    again = await env.gw.create_post(ch.id, "again", file_ids=[file_id])
    assert again.file_ids == ()
    assert (await env.gw.get_channel_posts(ch.id, per_page=1, page=1))[0].id == post.id
    await expect_error(env.plain.upload_file(ch.id, "x.md", b"x"), 403, PERMISSIONS)


async def test_archiving_an_archived_channel_is_refused(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "twice", "Twice", private=True)
    await env.gw.archive_channel(ch.id)
    await expect_error(env.gw.archive_channel(ch.id), 400, "api.channel.delete_channel.deleted.app_error")


async def test_post_errors(env: Env) -> None:
    await expect_error(env.gw.get_post(UNKNOWN_ID), 404, "app.post.get.app_error")
    # Updating a missing post is 403 on the real server, not 404.
    await expect_error(env.gw.update_post(UNKNOWN_ID, "x", None), 403, PERMISSIONS)
    ch = await env.gw.create_channel(env.team.id, "closed", "Closed", private=True)
    await expect_error(env.plain.create_post(ch.id, "not a member"), 403, PERMISSIONS)


async def test_ephemeral_needs_admin(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "eph", "Eph", private=False)
    await env.gw.add_channel_member(ch.id, env.alice.id)
    await env.gw.send_ephemeral(env.alice.id, ch.id, "only you", props={"attachments": []})
    await expect_error(env.plain.send_ephemeral(env.alice.id, ch.id, "nope"), 403, PERMISSIONS)


async def test_open_dialog_rejects_a_bad_trigger_id(env: Env) -> None:
    dialog = {"callback_id": "c", "title": "Start run", "elements": []}
    with pytest.raises(MattermostError) as info:
        await env.gw.open_dialog("not-a-trigger-id", "http://bot.example/dialog", dialog)
    assert info.value.status == 400
    assert info.value.error_id.startswith("interactive_message.decode_trigger_id."), str(info.value)


async def test_open_dialog(env: Env) -> None:
    dialog = {"callback_id": "start", "title": "Start run", "submit_label": "Start",
              "elements": [{"display_name": "Name", "name": "name", "type": "text"}]}
    await env.gw.open_dialog(env.trigger_id(env.alice.id), "http://bot.example/dialog", dialog)
    # No session is needed to open a dialog (the trigger id is the credential), so a plain bot can too.
    await env.plain.open_dialog(env.trigger_id(env.alice.id), "http://bot.example/dialog", dialog)


# -- sidebar categories ----------------------------------------------------------------------------------

async def test_categories_are_created_lazily(env: Env) -> None:
    ch = await env.gw.create_channel(env.team.id, "cat-a", "Cat A", private=False)
    await env.gw.add_channel_member(ch.id, env.alice.id)
    cats = await env.gw.get_categories(env.alice.id, env.team.id)
    kinds = [c.type for c in cats]
    assert kinds[:3] == ["favorites", "channels", "direct_messages"], kinds
    channels = cats[1]
    assert channels.id == f"channels_{env.alice.id}_{env.team.id}"
    assert (channels.user_id, channels.team_id) == (env.alice.id, env.team.id)
    assert ch.id in channels.channel_ids  # implicit: every member channel not placed elsewhere


async def test_create_category_drops_non_member_channels_and_moves_channels(env: Env) -> None:
    member = await env.gw.create_channel(env.team.id, "cat-member", "Member", private=False)
    other = await env.gw.create_channel(env.team.id, "cat-other", "Other", private=False)
    await env.gw.add_channel_member(member.id, env.bob.id)
    # No GET first: the gateway copes with a user who has no categories yet.
    cat = await env.gw.create_category(env.bob.id, env.team.id, "Playbook runs", [member.id, other.id])
    assert (cat.type, cat.display_name, cat.user_id, cat.team_id) == ("custom", "Playbook runs", env.bob.id,
                                                                      env.team.id)
    assert cat.channel_ids == (member.id,)  # bob is not in `other`: silently dropped
    cats = await env.gw.get_categories(env.bob.id, env.team.id)
    assert [c.type for c in cats][:2] == ["favorites", "custom"]  # right after Favorites
    channels = next(c for c in cats if c.type == "channels")
    assert member.id not in channels.channel_ids  # moved out of the default category


async def test_update_category(env: Env) -> None:
    a = await env.gw.create_channel(env.team.id, "upd-a", "A", private=False)
    b = await env.gw.create_channel(env.team.id, "upd-b", "B", private=False)
    for ch in (a, b):
        await env.gw.add_channel_member(ch.id, env.alice.id)
    await env.gw.get_categories(env.alice.id, env.team.id)
    cat = await env.gw.create_category(env.alice.id, env.team.id, "Runs", [a.id])
    updated = await env.gw.update_category(replace(cat, display_name="Active runs", channel_ids=(b.id, a.id)))
    assert (updated.id, updated.display_name, updated.channel_ids) == (cat.id, "Active runs", (b.id, a.id))
    again = next(c for c in await env.gw.get_categories(env.alice.id, env.team.id) if c.id == cat.id)
    assert again.channel_ids == (b.id, a.id)


async def test_an_update_leaves_other_categories_alone_and_a_bulk_update_moves(env: Env) -> None:
    run = await env.gw.create_channel(env.team.id, "bulk-run", "Bulk run", private=False)
    later = await env.gw.create_channel(env.team.id, "bulk-later", "Bulk later", private=False)
    await env.gw.add_channel_member(run.id, env.alice.id)
    cats = await env.gw.get_categories(env.alice.id, env.team.id)
    channels = next(c for c in cats if c.type == "channels")
    assert run.id in channels.channel_ids  # implicit
    # A row of its own in Channels (the web app writes one on a drag), then a custom category alone.
    await env.gw.update_categories(env.alice.id, env.team.id, [channels])
    runs = await env.gw.create_category(env.alice.id, env.team.id, "Runs", [])
    await env.gw.update_category(replace(runs, channel_ids=(run.id,)))
    cats = await env.gw.get_categories(env.alice.id, env.team.id)
    assert [c.display_name for c in cats if run.id in c.channel_ids] == ["Runs", "Channels"]  # twice
    # Source and destination in one bulk PUT: filed once; the answer lists both, as updated.
    channels = next(c for c in cats if c.type == "channels")
    runs = next(c for c in cats if c.id == runs.id)
    await env.gw.add_channel_member(later.id, env.alice.id)
    answer = await env.gw.update_categories(env.alice.id, env.team.id, [
        replace(channels, channel_ids=tuple(c for c in channels.channel_ids if c != run.id)), runs])
    assert [c.id for c in answer] == [channels.id, runs.id]
    assert run.id not in answer[0].channel_ids and answer[1].channel_ids == (run.id,)
    assert answer[0].channel_ids[0] == later.id  # joined after the read: no row, shown first
    cats = await env.gw.get_categories(env.alice.id, env.team.id)
    assert [c.display_name for c in cats if run.id in c.channel_ids] == ["Runs"]


async def test_a_bulk_update_of_someone_elses_category_is_refused(env: Env) -> None:
    mine = await env.gw.get_categories(env.alice.id, env.team.id)
    await env.gw.get_categories(env.bob.id, env.team.id)
    await expect_error(env.gw.update_categories(env.bob.id, env.team.id, [mine[0]]), 400,
                       "api.context.invalid_body_param.app_error")


async def test_categories_of_others_need_edit_other_users(env: Env) -> None:
    await expect_error(env.plain.get_categories(env.alice.id, env.team.id), 403, PERMISSIONS)
    own = await env.plain.get_categories(env.plain_bot.id, env.team.id)  # one's own are fine
    assert "channels" in [c.type for c in own]


# -- slash commands ------------------------------------------------------------------------------------

async def test_commands(env: Env) -> None:
    assert await env.gw.list_commands(env.team.id) == []
    cmd = await env.gw.create_command(env.team.id, "playbook", "http://bot.example/command",
                                      display_name="Playbooks", description="Run playbooks",
                                      auto_complete_desc="Run a playbook", auto_complete_hint="[command]")
    assert (cmd.team_id, cmd.trigger, cmd.url, cmd.method, cmd.creator_id) == (
        env.team.id, "playbook", "http://bot.example/command", "P", env.bot.id)
    assert cmd.token and cmd.auto_complete and cmd.auto_complete_hint == "[command]"
    listed = await env.gw.list_commands(env.team.id)
    assert [(c.id, c.token, c.url) for c in listed] == [(cmd.id, cmd.token, cmd.url)]  # not sanitized
    await expect_error(env.gw.create_command(env.team.id, "playbook", "http://bot.example/other"),
                       400, "api.command.duplicate_trigger.app_error")
    moved = await env.gw.update_command(replace(cmd, url="http://bot2.example/command"))
    assert (moved.id, moved.url, moved.token) == (cmd.id, "http://bot2.example/command", cmd.token)
    await expect_error(env.plain.create_command(env.team.id, "other", "http://bot.example/c"), 403, PERMISSIONS)


# -- accounting ----------------------------------------------------------------------------------------

async def test_calls_count_api_calls(env: Env) -> None:
    before = env.gw.calls
    await env.gw.me()
    await env.gw.get_team(env.team.id)
    assert env.gw.calls == before + 2


# -- fake-only helpers (the real server's faults are covered in tests/unit/test_gateway_retries.py) --------

async def test_fake_fail_next_and_records() -> None:
    fake = FakeGateway()
    team = fake.add_team("eng", members=[fake.bot_id])
    fake.fail_next("create_channel", 500, "app.channel.save.app_error", times=2)
    for _ in range(2):
        await expect_error(fake.create_channel(team.id, "x", "X", private=False), 500, "app.channel.save.app_error")
    ch = await fake.create_channel(team.id, "x", "X", private=False)
    assert fake.calls_to("create_channel")[-1]["name"] == "x"
    alice = fake.add_user("alice", teams=[team.id])
    trigger = fake.trigger_id(alice.id)
    await fake.open_dialog(trigger, "http://bot/dialog", {"title": "T"})
    await fake.send_ephemeral(alice.id, ch.id, "hi")
    assert fake.dialogs[0].trigger_id == trigger and fake.ephemerals[0].message == "hi"
    with pytest.raises(AttributeError):
        fake.fail_next("no_such_method", 500, "x")


# -- what the bot's REST API, run start and slash-command follow-ups rely on ---------------------------

async def test_whoami_names_a_token_owner_and_their_teams(env: Env) -> None:
    user, team_ids = await env.gw.whoami(env.alice_token)
    assert (user.id, user.username) == (env.alice.id, "alice")
    assert team_ids == [env.team.id]
    await expect_error(env.gw.whoami("not-a-token"), 401, "api.context.session_expired.app_error")


async def test_execute_command_runs_as_the_token_owner(env: Env) -> None:
    channel = await env.gw.create_channel(env.team.id, "ops", "Ops", private=False)
    await env.gw.add_channel_member(channel.id, env.alice.id)
    await env.gw.execute_command(env.alice_token, channel.id, env.team.id, "/echo deploying now")
    [post] = [p for p in await env.gw.get_channel_posts(channel.id) if p.message == "deploying now"]
    assert post.user_id == env.alice.id  # as alice, not the bot
    await expect_error(env.gw.execute_command(env.alice_token, channel.id, env.team.id, "/nosuch x"), 404,
                       "api.command.execute_command.not_found.app_error")
    await expect_error(env.gw.execute_command("not-a-token", channel.id, env.team.id, "/echo x"), 401,
                       "api.context.session_expired.app_error")
    other = await env.gw.create_channel(env.team.id, "closed", "Closed", private=True)
    await expect_error(env.gw.execute_command(env.alice_token, other.id, env.team.id, "/echo x"), 403, PERMISSIONS)
    with pytest.raises(ValueError):  # never without the person's own token (the bot's is not an option)
        await env.gw.execute_command("", channel.id, env.team.id, "/echo x")


async def test_archived_channel_keeps_its_name_reserved(env: Env) -> None:
    channel = await env.gw.create_channel(env.team.id, "to-archive", "To archive", private=False)
    await env.gw.archive_channel(channel.id)
    assert (await env.gw.get_channel(channel.id)).delete_at > 0
    await expect_error(env.gw.create_channel(env.team.id, "to-archive", "Again", private=False), 400,
                       "store.sql_channel.save_channel.exists.app_error")


async def test_respond_reaches_the_person_through_the_response_url_five_times(env: Env) -> None:
    assert env.response_url is not None and env.ephemerals_to is not None
    channel = await env.gw.create_channel(env.team.id, "hooks", "Hooks", private=False)
    await env.gw.add_channel_member(channel.id, env.alice.id)
    url = await env.response_url(env.alice.id, channel.id)
    for n in range(5):
        await env.gw.respond(url, f"answer {n}")
    assert env.ephemerals_to(env.alice.id)[-5:] == [f"answer {n}" for n in range(5)]
    # A hook serves five answers (TryUse(id, 5)); an unknown one is 404.
    await expect_error(env.gw.respond(url, "sixth"), 400, "web.command_webhook.general.app_error")
    await expect_error(env.gw.respond(url.rsplit("/", 1)[0] + "/" + UNKNOWN_ID, "lost"), 404,
                       "web.command_webhook.general.app_error")


async def test_respond_sends_nothing_outside_mattermost(env: Env) -> None:
    """A response_url naming another host, or no command hook, is refused before anything is sent (the
    bot's token must never reach another origin: a forged slash command could name any URL)."""
    assert env.response_url is not None and env.ephemerals_to is not None
    channel = await env.gw.create_channel(env.team.id, "elsewhere", "Elsewhere", private=False)
    await env.gw.add_channel_member(channel.id, env.alice.id)
    url = await env.response_url(env.alice.id, channel.id)
    hook_id = url.rsplit("/", 1)[1]
    for foreign in (f"http://attacker.invalid/hooks/commands/{hook_id}", f"http://127.0.0.1:9/hooks/commands/{hook_id}",
                    url.replace("/hooks/commands/", "/api/v4/users/me/"), url + "/../x", "not a url"):
        await expect_error(env.gw.respond(foreign, "leak?"), 0, "gateway.foreign_url")
    assert env.ephemerals_to(env.alice.id) == []
    await env.gw.respond(url, "fine")  # the real hook still works, all five uses left
    assert env.ephemerals_to(env.alice.id) == ["fine"]
