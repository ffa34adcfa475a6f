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


async def closed_after_frames(ws, last_seq: int = 0) -> int:
    """Frames already on their way may come first; then the socket must end. Returns the last seq seen."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
        if msg.type != aiohttp.WSMsgType.TEXT:
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), msg
            return last_seq
        last_seq = json.loads(msg.data).get("seq", last_seq)


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
    # Reaped at the 5-minute ticker's first tick at which its last activity (the connect) is more than 5
    # minutes old: not at +301 s (that tick saw it 300 s old, not more), but by +600 s. The clock moves
    # instead of the test sleeping; the ticker started when the hub first read its clock.
    epoch = hub.reaper_epoch
    assert epoch is not None
    conn = hub.conns[new_id]
    assert not conn.active and conn.last_activity >= epoch
    tick = hub.reaped_at(conn)
    assert tick == pytest.approx(epoch + 600, abs=0.001)
    hub.clock = lambda: tick - 0.001
    hub.publish("tick", {}, user_id=world["bob"].id)  # any use of the hub runs the reaper
    assert new_id in hub.conns
    hub.clock = lambda: tick
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={new_id}&sequence_number=1")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["data"]["connection_id"] != new_id
    await ws.close()


@pytest.mark.parametrize("query", ["connection_id=abc&sequence_number=1",
                                   "connection_id=" + "a" * 26,
                                   "connection_id=" + "a" * 26 + "&sequence_number=x",
                                   "connection_id=" + "a" * 26 + "&sequence_number=1.5",
                                   # strconv.ParseInt(seqVal, 10, 0): out of int64 range is an error
                                   "connection_id=" + "a" * 26 + "&sequence_number=9223372036854775808"])
async def test_malformed_resume_params_close_the_socket(sandbox, world, session, query):
    ws = await connect(session, sandbox, world["alice_token"], query)
    await assert_closed(ws)


async def test_negative_sequence_number_is_accepted_and_means_a_fresh_start(sandbox, world, session):
    """PopulateWebConnConfig parses sequence_number with strconv.ParseInt and no range check: -1 is not an
    error. A known connection's dead queue never holds a negative seq and always holds the hello, so
    writePump sees a loss: new connection id, hello at seq 0. An unknown id gets a new one anyway."""
    hub = sandbox.hub
    ws = await connect(session, sandbox, world["alice_token"])
    conn_id = (await recv(ws))["data"]["connection_id"]
    hub.publish("ev", {"n": 1}, user_id=world["alice"].id)
    assert (await recv(ws))["seq"] == 1
    await sandbox.drop_websockets()
    await assert_closed(ws)
    hub.publish("ev", {"n": 2}, user_id=world["alice"].id)  # queued while inactive
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={conn_id}&sequence_number=-1")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["seq"] == 0 and hello["data"]["connection_id"] != conn_id
    # The active queue is kept: what queued up meanwhile follows the hello.
    following = await recv(ws)
    assert (following["event"], following["data"], following["seq"]) == ("ev", {"n": 2}, 1)
    await ws.close()
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={'b' * 26}&sequence_number=-7")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["seq"] == 0 and hello["data"]["connection_id"] != "b" * 26
    await ws.close()


async def test_reaper_measures_last_activity_on_a_five_minute_ticker(sandbox, world, session):
    """web_hub.go: every 5 minutes RemoveInactiveConnections drops inactive connections whose
    lastUserActivityAt is more than 5 minutes old; createPost and viewChannel move it (for the session's
    active connections). Three users connect at +10 s and drop at +350 s: carol did nothing since the
    connect and is gone at the +600 s tick, 250 s after the drop; alice posted and bob viewed a channel
    at +350 s, so they survive that tick and go at +900 s, 550 s after the drop."""
    hub = sandbox.hub
    now = [1_000_000.0]
    sandbox.set_clock(lambda: now[0])
    hub.reaper_epoch = now[0]
    epoch = now[0]
    now[0] = epoch + 10
    ids = {}
    sockets = {}
    for name in ("alice", "bob", "carol"):
        sockets[name] = await connect(session, sandbox, world[name + "_token"])
        ids[name] = (await recv(sockets[name]))["data"]["connection_id"]
    now[0] = epoch + 350

    async def rest(token: str, method: str, path: str, body: dict[str, Any]) -> int:
        async with session.request(method, sandbox.url + "/api/v4" + path, json=body,
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status

    channel = world["channel"]
    assert await rest(world["alice_token"], "POST", "/posts", {"channel_id": channel.id, "message": "hi"}) == 201
    assert await rest(world["bob_token"], "POST", "/channels/members/me/view", {"channel_id": channel.id}) == 200
    await sandbox.drop_websockets()
    got = {name: await closed_after_frames(ws) for name, ws in sockets.items()}
    assert hub.conns[ids["carol"]].last_activity == epoch + 10
    assert hub.conns[ids["alice"]].last_activity == hub.conns[ids["bob"]].last_activity == epoch + 350

    def alive() -> set[str]:
        hub.publish("tick", {}, team_id="x" * 26)  # any use of the hub runs the reaper
        return {name for name, conn_id in ids.items() if conn_id in hub.conns}

    now[0] = epoch + 599
    assert alive() == {"alice", "bob", "carol"}
    now[0] = epoch + 600
    assert alive() == {"alice", "bob"}
    now[0] = epoch + 899
    assert alive() == {"alice", "bob"}
    # Until then a reconnect resumes (no hello); from the +900 s tick on it starts over.
    ws = await connect(session, sandbox, world["bob_token"],
                       f"connection_id={ids['bob']}&sequence_number={got['bob'] + 1}")
    await ws.send_json({"seq": 1, "action": "ping"})
    assert "seq_reply" in await recv(ws)
    await ws.close()
    now[0] = epoch + 900
    assert alive() == {"bob"}  # bob's resume at +899 s made it new activity: gone at +1500 s, not now
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={ids['alice']}&sequence_number=1")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["data"]["connection_id"] != ids["alice"]
    await ws.close()


async def test_half_open_drop_is_noticed_only_at_the_read_deadline(sandbox, world, session):
    """A client that vanishes without a close leaves its connection active until readPump's read deadline
    (pongWaitTime, 100 s): a reconnect meanwhile cannot take it over and gets a new connection_id and a
    hello; what was sent to the old one meanwhile went into its dead queue (written, never received), so
    a resume after the deadline replays it."""
    hub = sandbox.hub
    now = [2_000_000.0]
    sandbox.set_clock(lambda: now[0])
    ws = await connect(session, sandbox, world["alice_token"])
    old_id = (await recv(ws))["data"]["connection_id"]
    await sandbox.drop_websockets(half_open=True)
    await assert_closed(ws)
    hub.publish("lost", {"n": 1}, user_id=world["alice"].id)  # "written" to the vanished client as seq 1
    now[0] += 10
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={old_id}&sequence_number=1")
    hello = await recv(ws)
    assert hello["event"] == "hello" and hello["seq"] == 0
    new_id = hello["data"]["connection_id"]
    assert new_id != old_id
    assert hub.conns[old_id].active  # the server still thinks the old socket is there
    await ws.close()
    # The new socket closed cleanly: only the half-open one keeps alice online, until its deadline.
    await asyncio.sleep(0)
    now[0] += 89.999
    assert hub.is_online(world["alice"].id)
    now[0] += 0.001
    hub.publish("tick", {}, team_id="x" * 26)
    assert not hub.is_online(world["alice"].id) and not hub.conns[old_id].active
    # After the deadline the old session is an ordinary inactive one: the lost event comes back.
    ws = await connect(session, sandbox, world["alice_token"], f"connection_id={old_id}&sequence_number=1")
    replayed = await recv(ws)
    assert (replayed["event"], replayed["seq"], replayed["data"]) == ("lost", 1, {"n": 1})
    await ws.close()


async def test_half_open_drop_over_http(sandbox, world, session):
    async with session.post(sandbox.url + "/sandbox/websockets/drop", json={"half_open": "yes"},
                            headers={"Authorization": f"Bearer {sandbox.admin_token}"}) as resp:
        assert resp.status == 400
    ws = await connect(session, sandbox, world["bob_token"])
    conn_id = (await recv(ws))["data"]["connection_id"]
    async with session.post(sandbox.url + "/sandbox/websockets/drop", json={"half_open": True},
                            headers={"Authorization": f"Bearer {sandbox.admin_token}"}) as resp:
        assert resp.status == 200
    await assert_closed(ws)
    assert sandbox.hub.conns[conn_id].active and sandbox.hub.conns[conn_id].read_deadline is not None
