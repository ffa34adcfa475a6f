"""Button clicks, ephemeral cookies, `update`, trigger ids and dialogs (§2, §3)."""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from sandbox import ops
from tests.sandbox.conftest import make_world

TIMEOUT = 3.0


class Integration:
    """A test integration on port 0 that records JSON requests and answers with `self.reply`."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue = asyncio.Queue()
        self.reply: Any = {}
        self.status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await self.requests.put({"headers": dict(request.headers), "json": await request.json()})
        if self.reply is None:
            return web.Response(status=self.status)
        return web.json_response(self.reply, status=self.status)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.requests.get(), TIMEOUT)


@pytest.fixture
async def integration() -> AsyncIterator[Integration]:
    it = Integration()
    app = web.Application()
    app.router.add_post("/{tail:.*}", it.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    it.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield it
    await runner.cleanup()


@pytest.fixture
def world(sandbox) -> dict[str, Any]:
    return make_world(sandbox, private=True)


def button_post(sandbox, world, url: str) -> Any:
    props = {"from_webhook": "true", "attachments": [{"text": "Checklist", "actions": [
        {"id": "check1", "name": "Check", "type": "button",
         "integration": {"url": url + "/act", "context": {"secret": "s3", "item": 1}}},
        {"id": "pick", "name": "Pick", "type": "select", "options": [{"text": "A", "value": "a"}],
         "integration": {"url": url + "/act", "context": {"kind": "pick"}}}]}]}
    return ops.create_post(sandbox.state, sandbox.hub, world["alice"],
                           {"channel_id": world["channel"].id, "message": "original", "props": props})


async def ws_for(sandbox, token: str):
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(sandbox.url.replace("http", "ws", 1) + "/api/v4/websocket",
                                  headers={"Authorization": f"Bearer {token}"})
    assert json.loads((await asyncio.wait_for(ws.receive(), TIMEOUT)).data)["event"] == "hello"
    return session, ws


async def next_event(ws, event: str) -> dict[str, Any]:
    while True:
        frame = json.loads((await asyncio.wait_for(ws.receive(), TIMEOUT)).data)
        if frame.get("event") == event:
            return frame


async def test_click_sends_exact_request_and_update_replaces_post(sandbox, api, world, integration):
    post = button_post(sandbox, world, integration.url)
    bob = api.as_(world["bob_token"])
    integration.reply = {"update": {"message": "done", "props": {"attachments": [], "from_webhook": "no"}},
                         "ephemeral_text": "thanks <https://x.io|x>"}
    session, ws = await ws_for(sandbox, world["bob_token"])
    status, body, _ = await bob.post(f"/posts/{post.id}/actions/check1", {})
    assert status == 200 and body["status"] == "OK" and len(body["trigger_id"]) == 26
    req = await integration.next()
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert "authorization" not in headers and headers["content-type"] == "application/json"
    sent = req["json"]
    assert set(sent) == {"user_id", "user_name", "channel_id", "channel_name", "team_id", "team_domain",
                         "post_id", "trigger_id", "type", "data_source", "context"}
    assert sent["user_id"] == world["bob"].id and sent["user_name"] == "bob"
    assert sent["channel_name"] == "incidents" and sent["team_domain"] == "eng" and sent["post_id"] == post.id
    assert sent["type"] == "button" and sent["context"] == {"secret": "s3", "item": 1}
    edited = await next_event(ws, "post_edited")
    assert json.loads(edited["data"]["post"])["message"] == "done"
    ephemeral = json.loads((await next_event(ws, "ephemeral_message"))["data"]["post"])
    assert ephemeral["message"] == "thanks [x](https://x.io)" and ephemeral["root_id"] == post.id
    status, read_back, _ = await bob.get(f"/posts/{post.id}")
    assert read_back["message"] == "done"
    assert read_back["props"]["from_webhook"] == "true"  # kept from the original, not "no"
    # An update without message blanks it; props null keeps them (the buttons stay clickable).
    second = button_post(sandbox, world, integration.url)
    integration.reply = {"update": {"props": None}}
    for _ in range(2):
        status, _, _ = await bob.post(f"/posts/{second.id}/actions/check1", {})
        assert status == 200
        await integration.next()
    assert sandbox.state.posts[second.id].message == ""
    assert sandbox.state.posts[second.id].props["from_webhook"] == "true"
    await ws.close()
    await session.close()


async def test_integration_is_stripped_when_read_back(sandbox, api, world, integration):
    post = button_post(sandbox, world, integration.url)
    status, read_back, _ = await api.as_(world["bob_token"]).get(f"/posts/{post.id}")
    actions = read_back["props"]["attachments"][0]["actions"]
    assert actions[0]["id"] == "check1" and "integration" not in actions[0]


async def test_select_adds_selected_option_and_errors(sandbox, api, world, integration):
    post = button_post(sandbox, world, integration.url)
    bob = api.as_(world["bob_token"])
    await bob.post(f"/posts/{post.id}/actions/pick", {"selected_option": "a"})
    sent = (await integration.next())["json"]
    assert sent["context"] == {"kind": "pick", "selected_option": "a"} and sent["type"] == "select"
    # A button ignores selected_option (v9-v11).
    await bob.post(f"/posts/{post.id}/actions/check1", {"selected_option": "a"})
    assert "selected_option" not in (await integration.next())["json"]["context"]
    status, err, _ = await bob.post(f"/posts/{post.id}/actions/nothere", {})
    assert (status, err["id"]) == (404, "api.post.do_action.action_id.app_error")
    status, err, _ = await bob.post(f"/posts/{post.id}/actions/bad_id", {})
    assert (status, err["id"]) == (404, "api.context.404.app_error")
    status, err, _ = await api.as_(world["carol_token"]).post(f"/posts/{post.id}/actions/check1", {})
    assert status == 403
    integration.status = 500
    status, err, _ = await bob.post(f"/posts/{post.id}/actions/check1", {})
    assert (status, err["id"]) == (400, "api.post.do_action.action_integration.app_error")


async def test_ephemeral_post_click_uses_cookie(sandbox, api, world, integration):
    props = {"attachments": [{"actions": [{"id": "go", "name": "Go", "type": "button",
                                           "integration": {"url": integration.url + "/e",
                                                           "context": {"x": 1}}}]}]}
    eph = ops.send_ephemeral(sandbox.state, sandbox.hub, world["bob"].id, world["channel"].id, "pick", props)
    cookie = eph["props"]["attachments"][0]["actions"][0]["cookie"]
    bob = api.as_(world["bob_token"])
    status, err, _ = await bob.post(f"/posts/{eph['id']}/actions/go", {})
    assert (status, err["id"]) == (403, "api.context.permissions.app_error")  # no row, no cookie
    status, body, _ = await bob.post(f"/posts/{eph['id']}/actions/go", {"cookie": cookie})
    assert status == 200, body
    assert (await integration.next())["json"]["context"] == {"x": 1}
    status, err, _ = await bob.post(f"/posts/{'b' * 26}/actions/go", {"cookie": cookie})
    assert (status, err["id"]) == (400, "api.post.do_action.action_integration.app_error")


async def test_dialog_open_reaches_only_the_trigger_user_and_submit_relays(sandbox, api, world, integration):
    post = button_post(sandbox, world, integration.url)
    alice_s, alice_ws = await ws_for(sandbox, world["alice_token"])
    bob_s, bob_ws = await ws_for(sandbox, world["bob_token"])
    status, click, _ = await api.as_(world["bob_token"]).post(f"/posts/{post.id}/actions/check1", {})
    trigger_id = (await integration.next())["json"]["trigger_id"]
    dialog = {"callback_id": "cb", "title": "Update", "elements": [
        {"display_name": "Note", "name": "note", "type": "text"}], "notify_on_cancel": True, "state": "st"}
    async with aiohttp.ClientSession() as s:  # no session needed
        async with s.post(sandbox.url + "/api/v4/actions/dialogs/open",
                          json={"trigger_id": trigger_id, "url": integration.url + "/dlg", "dialog": dialog}) as r:
            assert r.status == 200 and await r.json() == {"status": "OK"}
        async with s.post(sandbox.url + "/api/v4/actions/dialogs/open",
                          json={"trigger_id": "!!", "url": integration.url, "dialog": dialog}) as r:
            assert r.status == 400
            assert (await r.json())["id"] == "interactive_message.decode_trigger_id.base64_decode_failed"
    event = await next_event(bob_ws, "open_dialog")
    opened = json.loads(event["data"]["dialog"])
    assert opened["trigger_id"] == click["trigger_id"] and opened["dialog"]["title"] == "Update"
    assert event["broadcast"]["user_id"] == world["bob"].id
    sandbox.hub.publish("marker", {}, user_id=world["alice"].id)
    assert (await next_event(alice_ws, "marker"))  # alice got no open_dialog before the marker
    integration.reply = {"errors": {"note": "Too short"}}
    status, body, _ = await api.as_(world["bob_token"]).post("/actions/dialogs/submit", {
        "url": integration.url + "/dlg", "callback_id": "cb", "state": "st", "channel_id": world["channel"].id,
        "team_id": world["team"].id, "submission": {"note": "x"}, "cancelled": False})
    assert status == 200 and body == {"errors": {"note": "Too short"}}
    sent = (await integration.next())["json"]
    assert sent == {"type": "dialog_submission", "callback_id": "cb", "state": "st",
                    "user_id": world["bob"].id, "channel_id": world["channel"].id,
                    "team_id": world["team"].id, "submission": {"note": "x"}, "cancelled": False}
    status, _, _ = await api.as_(world["carol_token"]).post("/actions/dialogs/submit", {
        "url": integration.url, "channel_id": world["channel"].id, "team_id": world["team"].id})
    assert status == 403
    for s_, ws in ((alice_s, alice_ws), (bob_s, bob_ws)):
        await ws.close()
        await s_.close()


async def test_trigger_ids_expire_after_the_timeout(sandbox, world, integration):
    client_id, trigger_id = sandbox.hub.triggers.generate(world["bob"].id)
    start = sandbox.hub.clock()
    sandbox.set_clock(lambda: start + 31)
    async with aiohttp.ClientSession() as s:
        async with s.post(sandbox.url + "/api/v4/actions/dialogs/open",
                          json={"trigger_id": trigger_id, "url": integration.url, "dialog": {"title": "t"}}) as r:
            assert r.status == 400
            assert (await r.json())["id"] == "interactive_message.decode_trigger_id.expired"
    # Within the window it works any number of times.
    sandbox.set_clock(lambda: start + 29)
    for _ in range(2):
        assert sandbox.hub.triggers.decode(trigger_id, 30) == (client_id, world["bob"].id)
