"""WebSocketListener against a tiny aiohttp WebSocket server the test drives frame by frame (port 0).

Reconnect backoff goes through an injected sleep that records and returns at once; the test waits on
queues the handler and server fill, never on time.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from bot.models import WsEvent
from bot.websocket import CLOSE_SEQ_MISMATCH, WebSocketListener, websocket_url

TIMEOUT = 5  # a safety net for a broken listener, not a wait


class Conn:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.done = asyncio.Event()
        self.received: asyncio.Queue[Any] = asyncio.Queue()

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query)

    async def send(self, event: str, seq: int, data: dict[str, Any] | None = None,
                   broadcast: dict[str, Any] | None = None) -> None:
        await self.ws.send_str(json.dumps({"event": event, "data": data or {}, "broadcast": broadcast or {},
                                           "seq": seq}))

    async def hello(self, connection_id: str) -> None:
        await self.send("hello", 0, {"connection_id": connection_id, "server_version": "9.11.0"})

    async def drop(self) -> None:
        await self.ws.close()
        self.done.set()


class WsServer:
    def __init__(self) -> None:
        self.connections: asyncio.Queue[Conn] = asyncio.Queue()
        self.refuse = 0  # answer the next N upgrades with 503
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refuse:
            self.refuse -= 1
            return web.Response(status=503)
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = Conn(request, ws)
        await self.connections.put(conn)
        async for msg in ws:
            await conn.received.put(msg)
        conn.done.set()
        return ws

    async def next(self) -> Conn:
        return await asyncio.wait_for(self.connections.get(), TIMEOUT)


@pytest.fixture
async def server() -> AsyncIterator[WsServer]:
    srv = WsServer()
    app = web.Application()
    app.router.add_get("/api/v4/websocket", srv.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield srv
    await runner.cleanup()


class Recorder:
    """Handler, resync hook and sleep in one: everything lands in `log` in the order it happened."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[WsEvent] = asyncio.Queue()
        self.log: list[Any] = []
        self.sleeps: list[float] = []

    async def handler(self, event: WsEvent) -> None:
        self.log.append((event.event, event.seq))
        await self.events.put(event)

    async def resync(self) -> None:
        self.log.append("resync")

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def next(self) -> WsEvent:
        return await asyncio.wait_for(self.events.get(), TIMEOUT)


@pytest.fixture
async def rec() -> Recorder:
    return Recorder()


def listener(server: WsServer, rec: Recorder, **kw: Any) -> WebSocketListener:
    return WebSocketListener(server.url, "tok3n", rec.handler, on_resync=rec.resync, sleep=rec.sleep,
                             random=lambda: 0.0, backoff_base=1.0, backoff_max=8.0, **kw)


def test_websocket_url() -> None:
    assert websocket_url("https://chat.example.com") == "wss://chat.example.com/api/v4/websocket"
    assert websocket_url("http://h:8065/mm/") == "ws://h:8065/mm/api/v4/websocket"
    with pytest.raises(ValueError):
        websocket_url("ftp://h")


async def test_auth_header_hello_and_events(server: WsServer, rec: Recorder) -> None:
    ws = listener(server, rec)
    ws.start()
    conn = await server.next()
    assert conn.request.headers["Authorization"] == "Bearer tok3n"
    assert conn.query == {}
    await conn.hello("conn1")
    await conn.send("posted", 1, {"post": "{}"}, {"channel_id": "c1"})
    hello, posted = await rec.next(), await rec.next()
    assert (hello.event, hello.seq, hello.data["connection_id"]) == ("hello", 0, "conn1")
    assert (posted.event, posted.seq, posted.broadcast) == ("posted", 1, {"channel_id": "c1"})
    assert ws.connected and ws.connection_id == "conn1" and ws.next_seq == 2
    assert "resync" not in rec.log  # the first session is the bot's start-up, not a resync
    await ws.stop()
    assert not ws.connected


async def test_resume_after_drop_uses_connection_id_and_next_seq(server: WsServer, rec: Recorder) -> None:
    ws = listener(server, rec)
    ws.start()
    conn = await server.next()
    await conn.hello("conn1")
    await conn.send("posted", 1)
    await conn.send("posted", 2)
    for _ in range(3):
        await rec.next()
    await conn.drop()
    again = await server.next()
    assert again.query == {"connection_id": "conn1", "sequence_number": "3"}
    assert again.request.headers["Authorization"] == "Bearer tok3n"  # the token is needed on every reconnect
    # Replay without hello: the server re-sends from the requested seq.
    await again.send("posted", 3)
    assert (await rec.next()).seq == 3
    assert rec.sleeps == [0.5]  # one reconnect after a healthy connection: base/2 with random()=0
    assert "resync" not in rec.log
    await ws.stop()


async def test_fresh_hello_after_reconnect_calls_resync_first(server: WsServer, rec: Recorder) -> None:
    ws = listener(server, rec)
    ws.start()
    conn = await server.next()
    await conn.hello("conn1")
    await conn.send("posted", 1)
    await rec.next(), await rec.next()
    await conn.drop()
    again = await server.next()
    assert again.query["sequence_number"] == "2"
    await again.hello("conn2")  # the server could not replay: new session, seq restarts at 0
    await again.send("posted", 1)
    await rec.next(), await rec.next()
    assert rec.log == [("hello", 0), ("posted", 1), "resync", ("hello", 0), ("posted", 1)]
    assert ws.connection_id == "conn2" and ws.next_seq == 2
    await ws.stop()


async def test_resync_on_start_option(server: WsServer, rec: Recorder) -> None:
    ws = listener(server, rec, resync_on_start=True)
    ws.start()
    conn = await server.next()
    await conn.hello("conn1")
    await rec.next()
    assert rec.log == ["resync", ("hello", 0)]
    await ws.stop()


async def test_seq_gap_closes_and_resumes_from_expected_seq(server: WsServer, rec: Recorder) -> None:
    ws = listener(server, rec)
    ws.start()
    conn = await server.next()
    await conn.hello("conn1")
    await conn.send("posted", 1)
    await rec.next(), await rec.next()
    await conn.send("posted", 5)  # 2..4 went missing
    again = await server.next()
    await asyncio.wait_for(conn.done.wait(), TIMEOUT)
    assert conn.ws.close_code == CLOSE_SEQ_MISMATCH
    assert again.query == {"connection_id": "conn1", "sequence_number": "2"}
    await again.send("posted", 2)
    assert (await rec.next()).seq == 2
    assert ("posted", 5) not in rec.log  # the out-of-order event is not handed on; the replay brings it
    await ws.stop()


async def test_failed_connects_back_off_exponentially(server: WsServer, rec: Recorder) -> None:
    server.refuse = 3
    ws = listener(server, rec)
    ws.start()
    conn = await server.next()
    assert rec.sleeps == [1.0, 2.0, 4.0]  # base * 2**failures, halved by equal jitter with random()=0
    await conn.hello("c")
    await rec.next()
    await ws.stop()


async def test_backoff_is_capped(server: WsServer, rec: Recorder) -> None:
    server.refuse = 6
    ws = listener(server, rec)
    ws.start()
    await server.next()
    assert rec.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]  # min(8, ...) / 2
    await ws.stop()


async def test_answers_server_pings(server: WsServer, rec: Recorder) -> None:
    ws = listener(server, rec)
    ws.start()
    conn = await server.next()
    await conn.ws.ping(b"are-you-there")
    msg = await asyncio.wait_for(conn.received.get(), TIMEOUT)
    assert (msg.type, msg.data) == (WSMsgType.PONG, b"are-you-there")
    await ws.stop()


async def test_handler_errors_do_not_stop_the_stream(server: WsServer, rec: Recorder) -> None:
    async def flaky(event: WsEvent) -> None:
        if event.seq == 1:
            raise RuntimeError("boom")
        await rec.handler(event)

    ws = WebSocketListener(server.url, "t", flaky, sleep=rec.sleep)
    ws.start()
    conn = await server.next()
    await conn.hello("c")
    await conn.send("posted", 1)
    await conn.send("posted", 2)
    assert [(await rec.next()).seq, (await rec.next()).seq] == [0, 2]
    await ws.stop()


async def test_replies_without_seq_are_not_events(server: WsServer, rec: Recorder) -> None:
    ws = listener(server, rec)
    ws.start()
    conn = await server.next()
    await conn.hello("c")
    await conn.ws.send_str(json.dumps({"status": "OK", "seq_reply": 1}))
    await conn.send("typing", 1)
    assert [(await rec.next()).event, (await rec.next()).event] == ["hello", "typing"]
    assert ws.next_seq == 2
    await ws.stop()


async def test_stop_during_backoff_returns_at_once(server: WsServer, rec: Recorder) -> None:
    server.refuse = 100
    forever, parked = asyncio.Event(), asyncio.Event()

    async def never_wakes(seconds: float) -> None:
        parked.set()
        await forever.wait()

    ws = WebSocketListener(server.url, "t", rec.handler, sleep=never_wakes)
    task = ws.start()
    await asyncio.wait_for(parked.wait(), TIMEOUT)  # one failed connect, then it parks in its backoff
    await asyncio.wait_for(ws.stop(), TIMEOUT)
    assert task.done() and not ws.connected


# -- against the sandbox's hub (a faithful replay queue and reaper), not only the scripted server ---------

async def test_resume_and_resync_against_the_sandbox(rec: Recorder) -> None:
    import secrets

    import aiohttp

    from bot.mattermost import MattermostGateway
    from sandbox import Sandbox

    now = [1_000_000.0]
    gate = asyncio.Event()
    parked = asyncio.Event()

    async def gated_sleep(seconds: float) -> None:
        rec.sleeps.append(seconds)
        parked.set()
        await gate.wait()
        gate.clear()

    async def until(pred: Any) -> WsEvent:
        while True:
            event = await rec.next()
            if pred(event):
                return event

    def posted(message: str) -> Any:
        return lambda e: e.event == "posted" and json.loads(e.data["post"])["message"] == message

    async with Sandbox(admin_token=secrets.token_hex(13), validate=True) as sb:
        sb.set_clock(lambda: now[0])
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sb.url}/api/v4/teams", json={"name": "eng", "display_name": "Eng",
                                                                    "type": "O"},
                                    headers={"Authorization": f"Bearer {sb.admin_token}"}) as resp:
                assert resp.status == 201, await resp.text()
                team_id = (await resp.json())["id"]
        gw = MattermostGateway(sb.url, sb.admin_token)
        ws = WebSocketListener(sb.url, sb.admin_token, rec.handler, on_resync=rec.resync, sleep=gated_sleep)
        ws.start()
        try:
            hello = await until(lambda e: e.event == "hello")
            first_id = hello.data["connection_id"]
            channel = await gw.create_channel(team_id, "ws-test", "WS test", private=False)
            await gw.create_post(channel.id, "one")
            await until(posted("one"))

            # A dropped socket resumes: the post made meanwhile is replayed, no new hello, no resync.
            parked.clear()
            await sb.drop_websockets()
            await asyncio.wait_for(parked.wait(), TIMEOUT)
            await gw.create_post(channel.id, "two")
            gate.set()
            await until(posted("two"))
            assert ws.connection_id == first_id and "resync" not in rec.log

            # Past the server's reaper the session is gone: new connection_id, hello, resync. The reaper
            # ticks every 5 minutes and takes sessions whose last activity (here the resume and the post
            # just made, at the clock's start) is more than 5 minutes old: the +600 s tick, not +300 s.
            parked.clear()
            await sb.drop_websockets()
            await asyncio.wait_for(parked.wait(), TIMEOUT)
            now[0] += 600
            await gw.create_post(channel.id, "three")  # lost with the old session: resync re-reads it
            gate.set()
            fresh = await until(lambda e: e.event == "hello")
            assert fresh.data["connection_id"] != first_id == hello.data["connection_id"]
            assert rec.log[rec.log.index(("hello", 0), 1) - 1] == "resync"
            assert ws.connection_id == fresh.data["connection_id"]
        finally:
            await ws.stop()
            await gw.close()


async def test_half_open_drop_gets_a_fresh_session_and_a_resync(rec: Recorder) -> None:
    """The bot's socket dies without the server noticing (half-open): the server keeps the old connection
    active until its read deadline, so the reconnect cannot resume it; Mattermost answers with a new
    connection_id and a hello, and the listener must resync rather than wait for a replay."""
    import secrets

    import aiohttp

    from bot.mattermost import MattermostGateway
    from sandbox import Sandbox

    now = [3_000_000.0]
    gate = asyncio.Event()
    parked = asyncio.Event()

    async def gated_sleep(seconds: float) -> None:
        rec.sleeps.append(seconds)
        parked.set()
        await gate.wait()
        gate.clear()

    async def until(pred: Any) -> WsEvent:
        while True:
            event = await rec.next()
            if pred(event):
                return event

    async with Sandbox(admin_token=secrets.token_hex(13), validate=True) as sb:
        sb.set_clock(lambda: now[0])
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sb.url}/api/v4/teams", json={"name": "eng", "display_name": "Eng",
                                                                    "type": "O"},
                                    headers={"Authorization": f"Bearer {sb.admin_token}"}) as resp:
                assert resp.status == 201, await resp.text()
                team_id = (await resp.json())["id"]
        gw = MattermostGateway(sb.url, sb.admin_token)
        ws = WebSocketListener(sb.url, sb.admin_token, rec.handler, on_resync=rec.resync, sleep=gated_sleep)
        ws.start()
        try:
            hello = await until(lambda e: e.event == "hello")
            first_id = hello.data["connection_id"]
            channel = await gw.create_channel(team_id, "ws-half-open", "WS half-open", private=False)
            parked.clear()
            await sb.drop_websockets(half_open=True)
            await asyncio.wait_for(parked.wait(), TIMEOUT)
            await gw.create_post(channel.id, "lost")  # written to the vanished socket, never received
            now[0] += 5  # well inside the 100 s read deadline
            gate.set()
            fresh = await until(lambda e: e.event == "hello")
            assert fresh.data["connection_id"] != first_id and ws.connection_id == fresh.data["connection_id"]
            assert rec.log[rec.log.index(("hello", 0), 1) - 1] == "resync"
            await gw.create_post(channel.id, "after")
            after = await until(lambda e: e.event == "posted")
            assert json.loads(after.data["post"])["message"] == "after"  # "lost" was not replayed
            assert after.seq == 1 and ws.next_seq == 2
        finally:
            await ws.stop()
            await gw.close()
