"""An item's slash command, run as the person who asks (`/playbook run-command`, the *Run command* button)
where they signed in to the web view with their Mattermost account; handed over to send otherwise.

People sign in through the sandbox's OAuth provider as a browser does (tests/e2e/test_web_oauth.py), so the
bot holds their own token, encrypted. Mattermost (the sandbox) then runs the command as them: /echo posts as
them, and a custom command's request names them (`user_id`)."""
from __future__ import annotations

import json
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from bot import signin
from storage import timeline
from storage import web as web_rows
from tests.conftest import serve
from tests.e2e.conftest import INCIDENT, World
from tests.e2e.test_commands import checklist_post, type_
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_web_oauth import authorize, jar, mattermost_sign_in

OPS = """
title = "Operations"
team = "eng"
private_channel = false
channel_name = "ops {name}"
category = ""
owner = "alice"
members = ["bob"]

[[checklists]]
title = "Do it"
  [[checklists.items]]
  title = "Say it"
  command = "/echo deploying $service"
  [[checklists.items]]
  title = "Deploy"
  command = "/deploy $service now"
  [[checklists.items]]
  title = "Nothing there"
  command = "/nosuch thing"
  [[checklists.items]]
  title = "Again"
  command = "/Playbook run-command 1.1"
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT, "ops": OPS}}


@pytest.fixture
async def deploy_hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A custom command's integration: records each request (headers and form) and answers ephemerally."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        seen.append({"headers": dict(request.headers), "form": form})
        return web.json_response({"response_type": "ephemeral",
                                  "text": f"Deploying {form.get('text', '')} for {form.get('user_name')}"})

    app = web.Application()
    app.router.add_post("/deploy", handle)
    async with serve(app) as url:
        yield f"{url}/deploy", seen


async def sign_in_with_mattermost(world: World, who: str) -> aiohttp.ClientSession:
    """`who` signs in to the web view with their Mattermost account (OAuth), as in a browser."""
    browser = jar()
    world.browsers.append(browser)
    await mattermost_sign_in(browser, world, who)
    callback, _query = await authorize(browser, world, "/runs")
    async with browser.get(callback, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    return browser


async def held_token(world: World, who: str) -> str:
    """The token the bot keeps for `who` (decrypted), "" when it holds none."""
    ctx = world.bot.ctx
    assert ctx is not None and ctx.sign_in is not None
    row = await ctx.db.run(web_rows.person_session, world[who].id, world.clock.now_ms())
    return ctx.sign_in.box.open(row.access_token) if row is not None else ""


async def start_ops(world: World) -> dict[str, Any]:
    run = await start_incident(world, "/playbook run ops Rollout")
    await type_(world, "alice", run["channel_id"], "/playbook summary Ship it. $service=checkout")
    return run


def posts_by(world: World, channel_id: str, user_id: str) -> list[str]:
    return [p.message for p in world.sb.state.posts.values()
            if p.channel_id == channel_id and p.user_id == user_id and not p.delete_at]


async def ran_events(world: World, run_id: str) -> list[dict[str, Any]]:
    """The run's `command_ran` events as stored (who, which command, mode and the answer or error)."""
    assert world.bot.ctx is not None
    events = await world.bot.ctx.db.run(timeline.timeline, run_id)
    return [{"actor_id": e.actor_id, "summary": e.summary, "details": e.details} for e in events
            if e.type == "command_ran"]


async def click_ephemeral(world: World, who: str, post_id: str, action_id: str,
                          match: Callable[[str], bool]) -> str:
    world.clock.advance(1)  # successive events keep their order on the timeline
    since = len(world[who].events)
    status, body = await world[who].click(post_id, action_id)
    assert status == 200, body
    await world.settle()
    event = await world[who].wait_event(
        lambda e: e.get("event") == "ephemeral_message" and match(json.loads(e["data"]["post"])["message"]),
        since=since)
    return str(json.loads(event["data"]["post"])["message"])


async def test_a_signed_in_person_runs_item_commands_as_themselves(
        world: World, deploy_hook: tuple[str, list[dict[str, Any]]], outgoing: list[tuple[str, str, str]]) -> None:
    hook_url, hook_seen = deploy_hook
    status, body, _ = await world.admin.post("/commands", {
        "team_id": world.team_id, "trigger": "deploy", "url": hook_url, "method": "P"})
    assert status == 201, body
    await sign_in_with_mattermost(world, "alice")
    token = await held_token(world, "alice")
    assert token  # her own token, kept encrypted (test_web_oauth checks the encryption)
    run = await start_ops(world)
    ch = run["channel_id"]
    alice, bob = world["alice"], world["bob"]

    text = await type_(world, "alice", ch, "/playbook run-command 1.1")
    assert "ran `/echo deploying checkout` as you" in text, text
    assert "deploying checkout" in posts_by(world, ch, alice.id)  # Mattermost posted it as alice

    # The button does the same; a custom command's integration is called with alice as the user.
    post = await checklist_post(world, ch, "Do it")
    buttons = [a["id"] for a in post["props"]["attachments"][1]["actions"]]
    assert "run1" in buttons and "run2" in [a["id"] for a in post["props"]["attachments"][2]["actions"]]
    said = await click_ephemeral(world, "alice", post["id"], "run1", lambda t: "ran `/deploy" in t)
    assert "ran `/deploy checkout now` as you" in said and "Deploying checkout now for alice" in said, said
    [request] = hook_seen
    assert (request["form"]["user_id"], request["form"]["command"], request["form"]["text"]) == (
        alice.id, "/deploy", "checkout now")
    assert token not in json.dumps(request)  # her token never reaches the integration

    # bob gave the bot no token: the command is handed to him, with how to let the bot run it.
    text = await type_(world, "bob", ch, "/playbook run-command 1.1")
    assert "Copy it into the message box" in text and "/echo deploying checkout" in text
    assert f"{world.bot.url}/login" in text and "sign in to the web view" in text
    assert "deploying checkout" not in posts_by(world, ch, bob.id)

    events = await ran_events(world, run["id"])
    assert [(e["actor_id"], e["summary"], e["details"]["mode"]) for e in events] == [
        (alice.id, "/echo deploying checkout", "ran"), (alice.id, "/deploy checkout now", "ran"),
        (bob.id, "/echo deploying checkout", "handed_over")]
    assert events[1]["details"]["response"] == "Deploying checkout now for alice"
    shown = await type_(world, "alice", ch, "/playbook timeline")
    assert "`/deploy checkout now`: ran as them, answered “Deploying checkout now for alice”" in shown, shown
    assert "`/echo deploying checkout`: handed over to send" in shown

    # alice's token went to Mattermost's origin only, and only for her commands (and whoami at sign-in).
    mattermost = urlsplit(world.sb.url)
    with_alice = [(m, u) for m, u, auth in outgoing if token in auth]
    assert [u for _, u in with_alice if u.endswith("/commands/execute")] and all(
        (urlsplit(u).scheme, urlsplit(u).netloc) == (mattermost.scheme, mattermost.netloc) for _, u in with_alice)
    bot_token = world.bot.settings.mattermost.token
    assert not any(bot_token in auth for _, u, auth in outgoing if u.endswith("/commands/execute"))


async def test_an_expired_token_is_refreshed_and_a_revoked_one_falls_back(world: World) -> None:
    await sign_in_with_mattermost(world, "alice")
    run = await start_ops(world)
    ch = run["channel_id"]
    ctx = world.bot.ctx
    assert ctx is not None and ctx.sign_in is not None
    # Her token runs out: the bot refreshes it first, keeps the new one, and runs the command.
    before = await held_token(world, "alice")
    row = await ctx.db.run(web_rows.person_session, world["alice"].id, world.clock.now_ms())
    assert row is not None
    await ctx.db.run(web_rows.update_tokens, row.id, row.access_token, row.refresh_token, world.clock.now_ms())
    text = await type_(world, "alice", ch, "/playbook run-command 1.1")
    assert "ran `/echo deploying checkout` as you" in text, text
    after = await held_token(world, "alice")
    assert after and after != before
    # She revokes the bot's access in Mattermost: Mattermost refuses the token (401), the refresh is refused
    # too, so the command is handed over with why, and the bot forgets the dead sign-in.
    async with aiohttp.ClientSession() as plain:
        async with plain.post(f"{world.sb.url}/oauth/deauthorize", json={"client_id": ctx.sign_in.app.client_id},
                              headers={"Authorization": f"Bearer {after}"}) as r:
            assert r.status == 200, await r.text()
    text = await type_(world, "alice", ch, "/playbook run-command 1.1")
    assert "no longer accepts the sign-in" in text and "/echo deploying checkout" in text, text
    assert await held_token(world, "alice") == ""
    assert posts_by(world, ch, world["alice"].id).count("deploying checkout") == 1
    modes = [e["details"]["mode"] for e in await ran_events(world, run["id"])]
    assert modes == ["ran", "handed_over"]


async def test_a_token_mattermost_cannot_renew_now_keeps_the_sign_in(world: World) -> None:
    """Mattermost refuses the held token (401) and its token endpoint fails (5xx): the refresh is
    "unavailable", not "refused", so the sign-in is kept and works once Mattermost answers again."""
    await sign_in_with_mattermost(world, "alice")
    run = await start_ops(world)
    ch = run["channel_id"]
    ctx = world.bot.ctx
    assert ctx is not None and ctx.sign_in is not None
    row = await ctx.db.run(web_rows.person_session, world["alice"].id, world.clock.now_ms())
    assert row is not None
    # A token Mattermost no longer takes (far from its end, so no refresh before the call).
    await ctx.db.run(web_rows.update_tokens, row.id, ctx.sign_in.box.seal("x" * 26), row.refresh_token,
                     world.clock.now_ms() + 20 * 24 * 3600_000)
    world.sb.fail("POST", "/oauth/access_token", 503)
    text = await type_(world, "alice", ch, "/playbook run-command 1.1")
    assert "could not renew it just now" in text and "/echo deploying checkout" in text, text
    assert await held_token(world, "alice") == "x" * 26  # kept
    # Mattermost answers again: the kept refresh token renews it, and the command runs as her.
    text = await type_(world, "alice", ch, "/playbook run-command 1.1")
    assert "ran `/echo deploying checkout` as you" in text, text
    modes = [e["details"]["mode"] for e in await ran_events(world, run["id"])]
    assert modes == ["handed_over", "ran"]


async def test_of_two_concurrent_refreshes_the_loser_takes_the_winners_tokens(world: World) -> None:
    """Two refreshes of one session begin from the same row (a page and its event stream, two processes):
    Mattermost rotates the refresh token, so the second is refused; the session holds the first one's
    fresh tokens by then, and the second uses them instead of ending it."""
    await sign_in_with_mattermost(world, "alice")
    ctx = world.bot.ctx
    assert ctx is not None and ctx.sign_in is not None
    now = world.clock.now_ms()
    stale = await ctx.db.run(web_rows.person_session, world["alice"].id, now)
    assert stale is not None
    outcome, first = await signin.refresh(ctx, ctx.sign_in, stale, now)
    assert outcome == "ok" and first
    outcome, second = await signin.refresh(ctx, ctx.sign_in, stale, now)
    assert (outcome, second) == ("ok", first)
    assert await held_token(world, "alice") == first
    # A 401 on the old token (read before the refresh): the session's newer token is used, no refresh.
    old = signin.PersonToken(stale.id, world["alice"].id, ctx.sign_in.box.open(stale.access_token))
    renewed, unavailable = await signin.renew_refused(ctx, old)
    assert renewed is not None and renewed.token == first and not unavailable


async def test_the_bots_own_command_is_handed_over_never_run_as_the_person(
        world: World, outgoing: list[tuple[str, str, str]]) -> None:
    """An item whose command is /playbook ... would make Mattermost call the bot's own slash command from
    inside this one (nested calls holding the gateway's workers): it is handed over, saying why."""
    await sign_in_with_mattermost(world, "alice")
    run = await start_ops(world)
    ch = run["channel_id"]
    seen = len(outgoing)
    text = await type_(world, "alice", ch, "/playbook run-command 1.4")
    assert "/Playbook run-command 1.1" in text and "bot's own commands" in text, text
    assert not [o for o in outgoing[seen:] if "commands/execute" in o[1]], outgoing[seen:]
    assert posts_by(world, ch, world["alice"].id).count("deploying checkout") == 0
    modes = [e["details"]["mode"] for e in await ran_events(world, run["id"])]
    assert modes == ["handed_over"]


async def test_mattermosts_refusals_are_explained_and_the_command_handed_over(world: World) -> None:
    await sign_in_with_mattermost(world, "bob")
    run = await start_ops(world)
    ch = run["channel_id"]
    bob = world["bob"]
    # A command no one registered: Mattermost's 404, said in words.
    text = await type_(world, "bob", ch, "/playbook run-command 1.3")
    assert "has no `/nosuch` command in this team" in text and "/nosuch thing" in text, text
    # bob is taken out of the run's channel: he may no longer post there, so Mattermost refuses (403).
    status, body, _ = await world.admin.delete(f"/channels/{ch}/members/{bob.id}")
    assert status == 200, body
    text = await type_(world, "bob", world.town_square, "/playbook run-command 1.1 --run Rollout")
    assert "you may not post in the channel of **Rollout**" in text and "/echo deploying checkout" in text, text
    assert "deploying checkout" not in posts_by(world, ch, bob.id)
    events = await ran_events(world, run["id"])
    assert [(e["details"]["mode"], e["details"]["status"]) for e in events] == [("failed", 404), ("failed", 403)]
    assert events[0]["details"]["error_id"] == "api.command.execute_command.not_found.app_error"
