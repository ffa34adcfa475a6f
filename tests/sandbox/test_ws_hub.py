"""The sandbox's WebSocket: hello, auth, actions, the delivery filter, seq, and resume (§5 of the API notes)."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from sandbox import Sandbox, ops
from tests.sandbox.conftest import make_world

TIMEOUT = 3.0


@pytest.fixture
def world(sandbox) -> dict[str, Any]:
    return make_world(sandbox, channel="ops-room", display_name="Ops room", private=True)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def ws_url(sandbox, query: str = "") -> str:
    return sandbox.url.replace("http", "ws", 1) + "/api/v4/websocket" + (f"?{query}" if query else "")


async def connect(session, sandbox, token: str | None, query: str = ""):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await session.ws_connect(ws_url(sandbox, query), headers=headers, autoping=True)


async def recv(ws) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a frame, got {msg.type}"
    return json.loads(msg.data)


async def recv_event(ws, event: str) -> dict[str, Any]:
    """The next frame that is the given event (frames before it are skipped)."""
    while True:
        frame = await recv(ws)
        if frame.get("event") == event:
            return frame


async def assert_closed(ws) -> None:
    msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), msg


async def test_header_auth_gets_hello_with_seq_zero(sandbox, world, session):
    ws = await connect(session, sandbox, world["alice_token"])
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["seq"] == 0
    assert len(hello["data"]["connection_id"]) == 26
    assert hello["data"]["server_version"].startswith("10.")
    assert hello["broadcast"]["user_id"] == world["alice"].id
    assert set(hello["broadcast"]) >= {"omit_users", "user_id", "channel_id", "team_id", "connection_id",
                                       "omit_connection_id"}
    await ws.close()


async def test_cookie_auth(sandbox, world, session):
    url = sandbox.url.replace("http", "ws", 1) + "/api/v4/websocket"
    ws = await session.ws_connect(url, headers={"Cookie": f"MMAUTHTOKEN={world['bob_token']}"})
    assert (await recv(ws))["event"] == "hello"
    await ws.close()


async def test_trailing_slash(session):
    # Its own sandbox without the OpenAPI check: the spec has no entry for the trailing-slash form,
    # which the real route "/{websocket:websocket(?:\\/)?}" accepts.
    async with Sandbox(admin_token="tok") as sb:
        ws = await session.ws_connect(sb.url.replace("http", "ws", 1) + "/api/v4/websocket/",
                                      headers={"Authorization": "Bearer tok"})
        assert (await recv(ws))["event"] == "hello"
        await ws.close()


async def test_authentication_challenge_flow(sandbox, world, session):
    ws = await connect(session, sandbox, None)
    await ws.send_json({"seq": 1, "action": "authentication_challenge", "data": {"token": world["bob_token"]}})
    frames = [await recv(ws), await recv(ws)]
    hello = next(f for f in frames if f.get("event") == "hello")
    reply = next(f for f in frames if "seq_reply" in f)
    assert hello["seq"] == 0 and hello["broadcast"]["user_id"] == world["bob"].id
    assert reply == {"status": "OK", "seq_reply": 1}
    # A second challenge is ignored silently: the next frame is the ping's reply.
    await ws.send_json({"seq": 2, "action": "authentication_challenge", "data": {"token": world["bob_token"]}})
    await ws.send_json({"seq": 3, "action": "ping"})
    pong = await recv(ws)
    assert pong["seq_reply"] == 3 and "seq" not in pong
    await ws.close()


async def test_invalid_challenge_token_closes_without_reply(sandbox, world, session):
    ws = await connect(session, sandbox, None)
    await ws.send_json({"seq": 1, "action": "authentication_challenge", "data": {"token": "nope"}})
    await assert_closed(ws)


async def test_unauthenticated_socket_is_closed_after_timeout(sandbox, world, session):
    sandbox.hub.auth_timeout = 0.2
    ws = await connect(session, sandbox, None)
    await assert_closed(ws)


async def test_unauthenticated_socket_gets_no_events_or_replies(sandbox, world, session):
    ws = await connect(session, sandbox, "not-a-token")  # an invalid header token opens unauthenticated
    await ws.send_json({"seq": 1, "action": "ping"})
    sandbox.hub.publish("custom_test", {"x": 1})
    # Authenticating now proves nothing was queued before: hello is the first frame.
    await ws.send_json({"seq": 2, "action": "authentication_challenge", "data": {"token": world["alice_token"]}})
    assert (await recv(ws))["event"] == "hello"
    await ws.close()


async def test_actions_replies_and_errors(sandbox, world, session):
    ws = await connect(session, sandbox, world["alice_token"])
    await recv(ws)
    await ws.send_json({"seq": 1, "action": "ping"})
    pong = await recv(ws)
    assert pong["status"] == "OK" and pong["seq_reply"] == 1 and "seq" not in pong
    assert pong["data"]["text"] == "pong" and pong["data"]["node_id"] == ""
    assert isinstance(pong["data"]["server_time"], int)
    await ws.send_json({"seq": 0, "action": "ping"})
    bad_seq = await recv(ws)
    assert bad_seq["status"] == "FAIL" and bad_seq["error"]["id"] == "api.web_socket_router.bad_seq.app_error"
    assert bad_seq["error"]["status_code"] == 400 and bad_seq["error"]["detailed_error"] == ""
    await ws.send_json({"seq": 2, "action": "fly"})
    bad_action = await recv(ws)
    assert bad_action["error"]["id"] == "api.web_socket_router.bad_action.app_error"
    assert bad_action["error"]["status_code"] == 500 and bad_action["seq_reply"] == 2
    await ws.send_json({"seq": 3, "action": ""})
    assert (await recv(ws))["error"]["id"] == "api.web_socket_router.no_action.app_error"
    await ws.send_json({"seq": 4, "action": "get_statuses"})
    statuses = await recv(ws)
    assert statuses["data"][world["alice"].id] == "online"
    assert statuses["data"][world["carol"].id] == "offline"
    await ws.close()


async def test_user_typing_reaches_other_members_only(sandbox, world, session):
    alice = await connect(session, sandbox, world["alice_token"])
    bob = await connect(session, sandbox, world["bob_token"])
    await recv(alice), await recv(bob)
    channel = world["channel"]
    await alice.send_json({"seq": 1, "action": "user_typing", "data": {"channel_id": channel.id}})
    assert await recv(alice) == {"status": "OK", "seq_reply": 1}
    typing = await recv(bob)
    assert typing["event"] == "typing" and typing["data"]["user_id"] == world["alice"].id
    assert typing["broadcast"]["omit_users"] == {world["alice"].id: True}
    await alice.close(), await bob.close()


async def test_oversized_frame_closes_socket(sandbox, world, session):
    ws = await connect(session, sandbox, world["alice_token"])
    await recv(ws)
    await ws.send_str(json.dumps({"seq": 1, "action": "ping", "data": {"pad": "x" * 9000}}))
    await assert_closed(ws)


async def test_channel_events_reach_members_only_and_new_members_later(sandbox, world, session):
    st, hub = sandbox.state, sandbox.hub
    sockets = {}
    for name in ("alice", "bob", "carol"):
        sockets[name] = await connect(session, sandbox, world[name + "_token"])
        assert (await recv(sockets[name]))["seq"] == 0
    channel = world["channel"]
    ops.create_post(st, hub, world["alice"], {"channel_id": channel.id, "message": "one"})
    for name in ("alice", "bob"):  # the author gets her own posted too
        frame = await recv(sockets[name])
        assert frame["event"] == "posted" and frame["seq"] == 1
        assert json.loads(frame["data"]["post"])["message"] == "one"
    # carol is not a member: her next frame is a user-targeted marker, not the post.
    hub.publish("marker", {"n": 1}, user_id=world["carol"].id)
    assert (await recv(sockets["carol"]))["event"] == "marker"
    # Membership is evaluated at publish time: once added, carol gets the channel's later events.
    ops.add_channel_member(st, hub, channel, world["carol"], world["alice"])
    ops.create_post(st, hub, world["bob"], {"channel_id": channel.id, "message": "two"})
    frame = await recv_event(sockets["carol"], "posted")
    if json.loads(frame["data"]["post"])["message"] != "two":  # the system_add_to_channel post first
        frame = await recv_event(sockets["carol"], "posted")
    assert json.loads(frame["data"]["post"])["message"] == "two"
    for ws in sockets.values():
        await ws.close()


async def test_seq_rises_by_one_and_filters(sandbox, world, session):
    hub = sandbox.hub
    alice = await connect(session, sandbox, world["alice_token"])
    bob = await connect(session, sandbox, world["bob_token"])
    alice_hello, bob_hello = await recv(alice), await recv(bob)
    team_id = world["team"].id
    hub.publish("e1", {}, team_id=team_id)
    hub.publish("e2", {}, team_id=team_id, omit_users=[world["bob"].id])
    hub.publish("e3", {}, connection_id=bob_hello["data"]["connection_id"])
    hub.publish("e4", {}, omit_connection_id=alice_hello["data"]["connection_id"])
    hub.publish("e5", {}, team_id="x" * 26)  # nobody is in that team
    hub.publish("e6", {})
    got_alice = [await recv(alice) for _ in range(3)]
    got_bob = [await recv(bob) for _ in range(4)]
    assert [(f["event"], f["seq"]) for f in got_alice] == [("e1", 1), ("e2", 2), ("e6", 3)]
    assert [(f["event"], f["seq"]) for f in got_bob] == [("e1", 1), ("e3", 2), ("e4", 3), ("e6", 4)]
    await alice.close(), await bob.close()


async def test_resume_delivers_missed_events_without_hello(sandbox, world, session):
    hub = sandbox.hub
    ws = await connect(session, sandbox, world["alice_token"])
    hello = await recv(ws)
    conn_id = hello["data"]["connection_id"]
    hub.publish("before", {"n": 1}, user_id=world["alice"].id)
    assert (await recv(ws))["seq"] == 1
    await sandbox.drop_websockets()
    await assert_closed(ws)
    hub.publish("during", {"n": 2}, user_id=world["alice"].id)
    hub.publish("during", {"n": 3}, user_id=world["alice"].id)
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={conn_id}&sequence_number=2")
    frames = [await recv(ws), await recv(ws)]
    assert [(f["event"], f["seq"], f["data"]["n"]) for f in frames] == [("during", 2, 2), ("during", 3, 3)]
    await ws.send_json({"seq": 1, "action": "ping"})
    assert "seq_reply" in await recv(ws)  # nothing else (no hello) was sent
    await ws.close()


async def test_resume_replays_from_dead_queue_with_original_seq(sandbox, world, session):
    hub = sandbox.hub
    ws = await connect(session, sandbox, world["alice_token"])
    conn_id = (await recv(ws))["data"]["connection_id"]
    for n in (1, 2, 3):
        hub.publish("ev", {"n": n}, user_id=world["alice"].id)
    originals = [await recv(ws) for _ in range(3)]
    await sandbox.drop_websockets()
    await assert_closed(ws)
    # The client says it only got up to seq 1: seqs 2 and 3 come again, byte for byte.
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={conn_id}&sequence_number=2")
    assert [await recv(ws), await recv(ws)] == originals[1:]
    hub.publish("ev", {"n": 4}, user_id=world["alice"].id)
    assert (await recv(ws))["seq"] == 4
    await ws.close()


async def test_stale_resume_gets_new_connection_and_hello(sandbox, world, session):
    hub = sandbox.hub
    ws = await connect(session, sandbox, world["alice_token"])
    conn_id = (await recv(ws))["data"]["connection_id"]
    await sandbox.drop_websockets()
    await assert_closed(ws)
    # A seq that was never in the dead queue (message loss): new id, seq back to 0.
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={conn_id}&sequence_number=50")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["seq"] == 0
    new_id = hello["data"]["connection_id"]
    assert new_id != conn_id
    await ws.close()
    # An unknown connection id: the same.
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={'a' * 26}&sequence_number=3")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["seq"] == 0 and hello["data"]["connection_id"] != "a" * 26
    await ws.close()
    # Reaped after ~5 minutes: the clock moves instead of the test sleeping.
    start = hub.clock()
    hub.clock = lambda: start + 301
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={new_id}&sequence_number=1")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["data"]["connection_id"] != new_id
    await ws.close()


@pytest.mark.parametrize("query", ["connection_id=abc&sequence_number=1",
                                   "connection_id=" + "a" * 26,
                                   "connection_id=" + "a" * 26 + "&sequence_number=x",
                                   "connection_id=" + "a" * 26 + "&sequence_number=-1"])
async def test_malformed_resume_params_close_the_socket(sandbox, world, session, query):
    ws = await connect(session, sandbox, world["alice_token"], query)
    await assert_closed(ws)
