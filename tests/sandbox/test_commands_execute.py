"""Slash commands: registration rules, the exact outgoing request, and how responses are posted (§1)."""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from sandbox import ops
from tests.sandbox.conftest import make_world

TIMEOUT = 3.0


class Receiver:
    """A tiny integration on port 0: records each request and answers with `self.answer(request)`."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue = asyncio.Queue()
        self.answer: Callable[[dict[str, Any]], web.StreamResponse] = lambda req: web.json_response({})
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = {"method": request.method, "path": request.path, "query": request.query_string,
                  "headers": dict(request.headers), "body": body}
        await self.requests.put(record)
        return self.answer(record)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.requests.get(), TIMEOUT)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


@pytest.fixture
def world(sandbox) -> dict[str, Any]:
    return make_world(sandbox)


async def register(api, team_id: str, url: str, trigger: str = "playbook", method: str = "P") -> dict:
    status, body, _ = await api.post("/commands", {"team_id": team_id, "trigger": trigger, "url": url,
                                                   "method": method})
    assert status == 201, body
    return body


async def ws_for(sandbox, token: str):
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(sandbox.url.replace("http", "ws", 1) + "/api/v4/websocket",
                                  headers={"Authorization": f"Bearer {token}"})
    hello = json.loads((await asyncio.wait_for(ws.receive(), TIMEOUT)).data)
    assert hello["event"] == "hello"
    return session, ws


async def next_event(ws, event: str) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
        frame = json.loads(msg.data)
        if frame.get("event") == event:
            return frame


async def test_registration_rules(api, world, receiver):
    team_id = world["team"].id
    cmd = await register(api, team_id, receiver.url + "/cmd", trigger="PlayBook")
    assert cmd["trigger"] == "playbook" and len(cmd["token"]) == 26 and cmd["creator_id"] == world["admin"].id
    cases = [({"trigger": "playbook"}, "api.command.duplicate_trigger.app_error"),
             ({"trigger": "echo"}, "api.command.duplicate_trigger.app_error"),
             ({"trigger": "/x"}, "model.command.is_valid.trigger.app_error"),
             ({"trigger": "a b"}, "model.command.is_valid.trigger.app_error"),
             ({"trigger": "x" * 129}, "model.command.is_valid.trigger.app_error"),
             ({"method": "PUT"}, "model.command.is_valid.method.app_error"),
             ({"url": "ftp://x"}, "model.command.is_valid.url_http.app_error")]
    for patch, error_id in cases:
        body = {"team_id": team_id, "trigger": "other", "url": receiver.url, "method": "P", **patch}
        status, err, _ = await api.post("/commands", body)
        assert (status, err["id"]) == (400, error_id), patch
    # A plain member (team_user) may not manage commands: 403 on create, 404 on get.
    alice = api.as_(world["alice_token"])
    status, err, _ = await alice.post("/commands", {"team_id": team_id, "trigger": "mine", "url": receiver.url,
                                                    "method": "P"})
    assert (status, err["id"]) == (403, "api.context.permissions.app_error")
    status, err, _ = await alice.get(f"/commands/{cmd['id']}")
    assert status == 404
    # custom_only lists tokens; without it the commands come back sanitized.
    status, listed, _ = await api.get(f"/commands?team_id={team_id}&custom_only=true")
    assert status == 200 and listed[0]["token"] == cmd["token"]
    status, listed, _ = await api.get(f"/commands?team_id={team_id}&custom_only=false")
    assert listed[0]["token"] == "" and listed[0]["url"] == "" and listed[0]["method"] == ""
    status, regen, _ = await api.put(f"/commands/{cmd['id']}/regen_token")
    assert status == 200 and regen["token"] != cmd["token"]
    status, err, _ = await api.put(f"/commands/{cmd['id']}", {**cmd, "team_id": "z" * 26})
    assert (status, err["id"]) == (400, "api.command.team_mismatch.app_error")
    status, updated, _ = await api.put(f"/commands/{cmd['id']}", {**cmd, "display_name": "Playbooks"})
    assert status == 200 and updated["token"] == regen["token"] and updated["display_name"] == "Playbooks"
    status, body, _ = await api.delete(f"/commands/{cmd['id']}")
    assert (status, body) == (200, {"status": "OK"})


async def test_outgoing_request_is_exactly_the_real_one(sandbox, api, world, receiver):
    cmd = await register(api, world["team"].id, receiver.url + "/slash?x=1")
    alice = api.as_(world["alice_token"])
    channel = world["channel"]
    status, body, _ = await alice.post("/commands/execute", {
        "channel_id": channel.id, "command": "/PlayBook  run @bob. ~incidents ~nowhere"})
    assert status == 200, body
    req = await receiver.next()
    assert req["method"] == "POST" and req["path"] == "/slash" and req["query"] == "x=1"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["accept"] == "application/json"
    assert headers["authorization"] == f"Token {cmd['token']}"
    pairs = parse_qsl(req["body"].decode(), keep_blank_values=True)
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    assert [k for k, _ in pairs] == sorted(k for k, _ in pairs)  # url.Values.Encode sorts keys
    assert set(form) == {"token", "team_id", "team_domain", "channel_id", "channel_name", "user_id",
                         "user_name", "command", "text", "trigger_id", "root_id", "response_url",
                         "user_mentions", "user_mentions_ids", "channel_mentions", "channel_mentions_ids"}
    assert form["root_id"] == [""]  # p.Set("root_id", args.RootId): present even outside a thread
    single = {k: v[0] for k, v in form.items()}
    assert single["token"] == cmd["token"] and single["team_id"] == world["team"].id
    assert single["team_domain"] == "eng" and single["channel_id"] == channel.id
    assert single["channel_name"] == "incidents" and single["user_id"] == world["alice"].id
    assert single["user_name"] == "alice" and single["command"] == "/playbook"
    assert single["text"] == " run @bob. ~incidents ~nowhere"  # after the first whitespace, verbatim
    assert form["user_mentions"] == ["bob"] and form["user_mentions_ids"] == [world["bob"].id]
    assert form["channel_mentions"] == ["incidents"] and form["channel_mentions_ids"] == [channel.id]
    assert single["response_url"].startswith(sandbox.url + "/hooks/commands/")
    assert len(single["response_url"].rsplit("/", 1)[1]) == 26
    # The client gets the CommandResponse with the client-side trigger id, not the signed one.
    assert len(body["trigger_id"]) == 26 and body["trigger_id"] != single["trigger_id"]
    assert set(body) >= {"response_type", "text", "props", "goto_location", "extra_responses"}


async def test_get_method_sends_query_and_no_content_type(api, world, receiver):
    await register(api, world["team"].id, receiver.url + "/g?keep=1", method="G")
    status, _, _ = await api.as_(world["alice_token"]).post(
        "/commands/execute", {"channel_id": world["channel"].id, "command": "/playbook"})
    assert status == 200
    req = await receiver.next()
    assert req["method"] == "GET" and req["body"] == b""
    query = dict(parse_qsl(req["query"], keep_blank_values=True))
    assert query["keep"] == "1" and query["text"] == "" and query["command"] == "/playbook"
    assert "content-type" not in {k.lower() for k in req["headers"]}


async def test_errors(sandbox, api, world, receiver):
    alice = api.as_(world["alice_token"])
    channel = world["channel"]
    status, err, _ = await alice.post("/commands/execute", {"channel_id": channel.id, "command": "/nothing"})
    assert (status, err["id"]) == (404, "api.command.execute_command.not_found.app_error")
    await register(api, world["team"].id, receiver.url + "/c")
    receiver.answer = lambda req: web.Response(status=201, text="created")
    status, err, _ = await alice.post("/commands/execute", {"channel_id": channel.id, "command": "/playbook"})
    assert (status, err["id"]) == (500, "api.command.execute_command.failed_resp.app_error")
    receiver.answer = lambda req: web.Response(text="{not json", content_type="application/json")
    status, err, _ = await alice.post("/commands/execute", {"channel_id": channel.id, "command": "/playbook"})
    assert (status, err["id"]) == (500, "api.command.execute_command.failed.app_error")
    # carol is no member of the channel: no create_post.
    status, err, _ = await api.as_(world["carol_token"]).post(
        "/commands/execute", {"channel_id": channel.id, "command": "/playbook"})
    assert status == 403
    # The timeout is OutgoingIntegrationRequestsTimeout.
    sandbox.state.config["OutgoingIntegrationRequestsTimeout"] = 0.2
    release = asyncio.Event()

    async def slow(req: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await register(api, world["team"].id, f"http://127.0.0.1:{port}/slow", trigger="slow")
    status, err, _ = await alice.post("/commands/execute", {"channel_id": channel.id, "command": "/slow"})
    assert (status, err["id"]) == (500, "api.command.execute_command.failed.app_error")
    release.set()
    await runner.cleanup()
    sandbox.state.channels[channel.id].delete_at = 1
    status, err, _ = await alice.post("/commands/execute", {"channel_id": channel.id, "command": "/playbook"})
    assert (status, err["id"]) == (400, "api.command.execute_command.deleted.error")


async def test_in_channel_posts_as_invoker_and_ephemeral_only_to_invoker(sandbox, api, world, receiver):
    await register(api, world["team"].id, receiver.url + "/c")
    channel = world["channel"]
    sessions = [await ws_for(sandbox, world["alice_token"]), await ws_for(sandbox, world["bob_token"])]
    (_, alice_ws), (_, bob_ws) = sessions
    receiver.answer = lambda req: web.json_response({
        "response_type": "in_channel", "text": "see <https://x.io|docs>", "props": {"k": "v"},
        "goto_location": "/eng/channels/incidents",
        "extra_responses": [{"text": "only you"}]})
    status, body, _ = await api.as_(world["alice_token"]).post(
        "/commands/execute", {"channel_id": channel.id, "command": "/playbook start"})
    assert status == 200 and body["goto_location"] == "/eng/channels/incidents"
    posted = await next_event(bob_ws, "posted")
    post = json.loads(posted["data"]["post"])
    assert post["user_id"] == world["alice"].id  # the invoking user, not the bot
    assert post["message"] == "see [docs](https://x.io)"
    assert post["props"]["from_webhook"] == "true" and post["props"]["k"] == "v"
    ephemeral = await next_event(alice_ws, "ephemeral_message")
    assert ephemeral["broadcast"]["user_id"] == world["alice"].id
    eph_post = json.loads(ephemeral["data"]["post"])
    assert eph_post["message"] == "only you" and eph_post["type"] == "system_ephemeral"
    assert eph_post["id"] not in sandbox.state.posts
    # bob never gets the ephemeral: his next frame is a marker sent afterwards.
    sandbox.hub.publish("marker", {}, user_id=world["bob"].id)
    assert (await next_event(bob_ws, "marker"))
    msg = None
    sandbox.hub.publish("marker2", {}, user_id=world["bob"].id)
    while True:
        msg = json.loads((await asyncio.wait_for(bob_ws.receive(), TIMEOUT)).data)
        assert msg["event"] != "ephemeral_message"
        if msg["event"] == "marker2":
            break
    # Plain text is an ephemeral reply; an empty one posts nothing.
    receiver.answer = lambda req: web.Response(text="plain words")
    await api.as_(world["alice_token"]).post("/commands/execute", {"channel_id": channel.id,
                                                                    "command": "/playbook"})
    assert json.loads((await next_event(alice_ws, "ephemeral_message"))["data"]["post"])["message"] == "plain words"
    for session, ws in sessions:
        await ws.close()
        await session.close()


async def test_channel_override_needs_membership(api, world, receiver, sandbox):
    await register(api, world["team"].id, receiver.url + "/c")
    other = ops.create_channel(sandbox.state, sandbox.hub, team=world["team"], creator=world["bob"],
                               name="private-x", display_name="X", type="P")
    receiver.answer = lambda req: web.json_response({"response_type": "in_channel", "text": "x",
                                                     "channel_id": other.id})
    status, err, _ = await api.as_(world["alice_token"]).post(
        "/commands/execute", {"channel_id": world["channel"].id, "command": "/playbook"})
    assert (status, err["id"]) == (500, "api.command.execute_command.create_post_failed.app_error")


async def test_response_url_posts_ok_five_times_then_fails(sandbox, api, world, receiver):
    await register(api, world["team"].id, receiver.url + "/c")
    await api.as_(world["alice_token"]).post("/commands/execute", {"channel_id": world["channel"].id,
                                                                    "command": "/playbook"})
    response_url = dict(parse_qsl((await receiver.next())["body"].decode()))["response_url"]
    async with aiohttp.ClientSession() as s:
        for n in range(5):
            async with s.post(response_url, json={"response_type": "in_channel", "text": f"late {n}"}) as resp:
                assert resp.status == 200 and resp.content_type == "text/plain"
                assert await resp.text() == "ok"
        async with s.post(response_url, json={"text": "sixth"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["id"] == "web.command_webhook.general.app_error"
        async with s.post(response_url, data=b"{", headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400 and (await resp.json())["id"] == "web.command_webhook.parse.app_error"
    late = [p for p in sandbox.state.posts.values() if p.message.startswith("late")]
    assert len(late) == 5 and all(p.user_id == world["alice"].id for p in late)
    assert all(p.props.get("from_webhook") == "true" for p in late)


async def test_response_url_expires_after_30_minutes(sandbox, api, world, receiver):
    await register(api, world["team"].id, receiver.url + "/c")
    await api.as_(world["alice_token"]).post("/commands/execute", {"channel_id": world["channel"].id,
                                                                    "command": "/playbook"})
    response_url = dict(parse_qsl((await receiver.next())["body"].decode()))["response_url"]
    start = sandbox.hub.clock()
    sandbox.set_clock(lambda: start + 30 * 60 + 1)
    async with aiohttp.ClientSession() as s:
        async with s.post(response_url, data=b"hi", headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 404


async def test_builtin_echo_posts_as_user(sandbox, api, world):
    status, body, _ = await api.as_(world["alice_token"]).post(
        "/commands/execute", {"channel_id": world["channel"].id, "command": "/echo hello there"})
    assert status == 200
    posts = [p for p in sandbox.state.posts.values() if p.message == "hello there"]
    assert len(posts) == 1 and posts[0].user_id == world["alice"].id
    assert "from_webhook" not in posts[0].props


async def test_loopback_integrations_need_allowed_untrusted_internal_connections(sandbox, api, world, receiver):
    """A real server will not call an integration on a private or loopback address unless its host is
    in AllowedUntrustedInternalConnections (services/httpservice, ErrAddressForbidden); nor will the
    sandbox, so a bot that works here was configured as it must be in production."""
    cmd = await register(api, world["team"].id, receiver.url + "/cmd")
    alice = api.as_(world["alice_token"])
    sandbox.state.config["AllowedUntrustedInternalConnections"] = ""
    status, body, _ = await alice.post("/commands/execute", {"channel_id": world["channel"].id,
                                                             "command": "/playbook hi"})
    assert (status, body["id"]) == (500, "api.command.execute_command.failed.app_error")
    assert receiver.requests.empty()

    # Listing the host by name, by IP, or a CIDR holding it, lets the call through.
    for allowed in ("localhost 127.0.0.1", "10.0.0.0/8,127.0.0.0/8"):
        sandbox.state.config["AllowedUntrustedInternalConnections"] = allowed
        status, body, _ = await alice.post("/commands/execute", {"channel_id": world["channel"].id,
                                                                 "command": "/playbook hi"})
        assert status == 200, (allowed, body)
        assert b"text=hi" in (await receiver.next())["body"]
    assert cmd["trigger"] == "playbook"


async def test_lone_surrogate_in_a_command_is_replaced_not_a_500(sandbox, api, world, receiver):
    """encoding/json decodes a `\\u` escape of a lone UTF-16 surrogate as U+FFFD (decode.go unquote: "Invalid
    surrogate; fall back to replacement rune"), so the command runs with U+FFFD where the client sent the
    broken escape; the sandbox kept the surrogate and failed encoding the form body (500)."""
    await register(api, world["team"].id, receiver.url + "/c")
    raw = '{"channel_id": "%s", "command": "/playbook run \\ud800 x \\udc00"}' % world["channel"].id
    async with api.session.post(sandbox.url + "/api/v4/commands/execute", data=raw.encode(),
                                headers={"Authorization": f"Bearer {world['alice_token']}",
                                         "Content-Type": "application/json"}) as resp:
        assert resp.status == 200, await resp.text()
    req = await receiver.next()
    form = dict(parse_qsl(req["body"].decode(), keep_blank_values=True))
    assert form["text"] == "run \ufffd x \ufffd"
    # Every JSON body is read that way, e.g. a post's message.
    raw = '{"channel_id": "%s", "message": "broken \\udfff"}' % world["channel"].id
    async with api.session.post(sandbox.url + "/api/v4/posts", data=raw.encode(),
                                headers={"Authorization": f"Bearer {world['alice_token']}",
                                         "Content-Type": "application/json"}) as resp:
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["message"] == "broken \ufffd"


async def test_root_id_goes_to_the_integration_from_a_thread(sandbox, api, world, receiver):
    await register(api, world["team"].id, receiver.url + "/c")
    alice = api.as_(world["alice_token"])
    status, root, _ = await alice.post("/posts", {"channel_id": world["channel"].id, "message": "thread"})
    assert status == 201
    status, _, _ = await alice.post("/commands/execute", {"channel_id": world["channel"].id,
                                                          "command": "/playbook info", "root_id": root["id"]})
    assert status == 200
    form = dict(parse_qsl((await receiver.next())["body"].decode(), keep_blank_values=True))
    assert form["root_id"] == root["id"]


async def test_custom_commands_need_a_site_url(receiver):
    """app/command.go tryExecuteCustomCommand: the response_url is built from the configured SiteURL only;
    with none, 400 api.command.execute_command.site_url_required.app_error and no request, no hook. Built-in
    commands still run."""
    from sandbox import Sandbox
    from tests.conftest import LOOPBACK, Api

    async with Sandbox(admin_token="tok", allow_internal=LOOPBACK, validate=True,
                       config={"ServiceSettings": {"SiteURL": ""}}) as sb:
        assert sb.state.site_url == ""
        world = make_world(sb)
        async with aiohttp.ClientSession() as session:
            api = Api(session, sb.url, sb.admin_token)
            await register(api, world["team"].id, receiver.url + "/c")
            alice = api.as_(world["alice_token"])
            status, err, _ = await alice.post("/commands/execute", {"channel_id": world["channel"].id,
                                                                    "command": "/playbook run"})
            assert (status, err["id"]) == (400, "api.command.execute_command.site_url_required.app_error")
            assert receiver.requests.empty() and not sb.state.command_webhooks
            status, _, _ = await alice.post("/commands/execute", {"channel_id": world["channel"].id,
                                                                  "command": "/echo still here"})
            assert status == 200
            # An admin sets it: commands run, and the response_url is on that address, not the request's.
            status, _, _ = await api.put("/config/patch", {"ServiceSettings": {"SiteURL": "https://chat.example"}})
            assert status == 200
            status, _, _ = await alice.post("/commands/execute", {"channel_id": world["channel"].id,
                                                                  "command": "/playbook run"})
            assert status == 200
            form = dict(parse_qsl((await receiver.next())["body"].decode(), keep_blank_values=True))
            assert form["response_url"].startswith("https://chat.example/hooks/commands/")
