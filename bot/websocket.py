"""Mattermost's WebSocket event stream, with resume and resync (mattermost-api.md §5).

Built on aiohttp rather than mattermostdriver's Websocket, which cannot open wss:// on Python 3.10+ and
never resumes. Reading and handling are two tasks joined by a bounded queue: a slow handler must not stop
`receive()`, because aiohttp answers the server's pings only from inside `receive()` and the server drops
a connection that sends no pong for 100 s.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random as _random
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from bot.models import WsEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[WsEvent], Awaitable[None]]
ResyncHook = Callable[[], Awaitable[None]]

# The web client closes with 4001 when it sees a seq it did not expect.
CLOSE_SEQ_MISMATCH = 4001


def websocket_url(base_url: str) -> str:
    """http(s)://host[:port][/subpath] -> ws(s)://host[:port][/subpath]/api/v4/websocket."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"Mattermost url must be http(s)://host[:port], got {base_url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/api/v4/websocket", "", ""))


class WebSocketListener:
    """Reads events into `WsEvent`s and awaits `handler` for each one, in order; skips nothing itself.

    Resume: remembers `connection_id` (from `hello`) and the next expected `seq`, and reconnects with
    `?connection_id=&sequence_number=` so the server replays what was missed. A `hello` with a different
    connection_id means the server could not replay: `on_resync` runs so the bot re-reads state over REST.
    An event whose seq is not the expected one closes the socket and resumes from the expected seq.
    """

    def __init__(self, url: str, token: str, handler: EventHandler, *, on_resync: ResyncHook | None = None,
                 resync_on_start: bool = False, heartbeat: float = 30.0, backoff_base: float = 1.0,
                 backoff_max: float = 60.0, queue_size: int = 1024, max_resume_failures: int = 3,
                 verify: bool = True, session: aiohttp.ClientSession | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 random: Callable[[], float] = _random.random) -> None:
        self.url = websocket_url(url)
        self.token = token
        self.handler = handler
        self.on_resync = on_resync
        self.resync_on_start = resync_on_start
        self.heartbeat = heartbeat
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_resume_failures = max_resume_failures
        self._ssl = verify  # aiohttp: True verifies as usual, False accepts a self-signed certificate
        self.connection_id: str | None = None
        self.next_seq: int | None = None
        self.connected = False  # for /healthz: a socket is open now
        self.connects = 0  # successful upgrades so far
        self._session = session
        self._own_session = session is None
        self._sleep = sleep
        self._random = random
        self._queue: asyncio.Queue[tuple[WsEvent, bool]] = asyncio.Queue(maxsize=queue_size)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._had_session = False  # a hello was seen before: a new connection_id then means a resync

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="mattermost-websocket")
        return self._task

    async def stop(self) -> None:
        self._stopping.set()
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._task is not None and self._task is not asyncio.current_task():
            await self._task

    async def run(self) -> None:
        """Connect, read and reconnect until `stop()`."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        consumer = asyncio.create_task(self._consume(), name="mattermost-websocket-handler")
        failures = 0
        resume_failures = 0
        try:
            while not self._stopping.is_set():
                received = 0
                try:
                    received = await self._connect_and_read()
                    failures = 0 if received else failures + 1
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                    failures += 1
                    log.warning("websocket connect failed url=%s error=%r attempt=%d", self.url, exc, failures)
                if self._stopping.is_set():
                    break
                if self.connection_id is not None and not received:
                    # A server that cannot parse our resume closes right after the upgrade; start over.
                    resume_failures += 1
                    if resume_failures >= self.max_resume_failures:
                        log.warning("websocket resume abandoned connection_id=%s", self.connection_id)
                        self.connection_id, self.next_seq = None, None
                        resume_failures = 0
                else:
                    resume_failures = 0
                delay = self._backoff(failures)
                log.info("websocket reconnecting delay=%.2f connection_id=%s next_seq=%s",
                         delay, self.connection_id, self.next_seq)
                await self._pause(delay)
        finally:
            self.connected = False
            # Let the handler finish what was already read, then end it.
            await self._queue.join()
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            if self._own_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _pause(self, delay: float) -> None:
        """Sleep before reconnecting, but wake at once when `stop()` is called."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with equal jitter; `failures` counts connections in a row with no frame."""
        # The exponent is capped: `failures` has no bound, and from 1024 on 2 ** failures no longer
        # converts to a float (OverflowError), which would end run() after a long outage. 2.0 ** 64 is
        # far past any backoff_max / backoff_base, so the cap changes no delay.
        nominal = min(self.backoff_max, self.backoff_base * 2.0 ** min(failures, 64))
        return nominal / 2 + nominal / 2 * self._random()

    # -- reading ------------------------------------------------------------------------------------

    def _params(self) -> dict[str, str]:
        if self.connection_id is None or self.next_seq is None:
            return {}
        return {"connection_id": self.connection_id, "sequence_number": str(self.next_seq)}

    async def _connect_and_read(self) -> int:
        """One connection's life; returns how many frames it delivered."""
        assert self._session is not None
        params = self._params()
        # Header auth: the upgrade is then registered at once and `hello` follows (§5.1 option A).
        ws = await self._session.ws_connect(self.url, params=params, heartbeat=self.heartbeat, autoping=True,
                                            ssl=self._ssl,
                                            headers={"Authorization": f"Bearer {self.token}"})
        self._ws = ws
        self.connected = True
        self.connects += 1
        log.info("websocket connected url=%s resume=%s", self.url, bool(params))
        received = 0
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue  # pings are answered by aiohttp (autoping); errors end the loop below
                received += 1
                if not await self._on_text(ws, msg.data):
                    break
        finally:
            self.connected = False
            self._ws = None
            if not ws.closed:
                await ws.close()
            log.info("websocket disconnected close_code=%s frames=%d", ws.close_code, received)
        return received

    async def _on_text(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> bool:
        """Queue one frame; False when the connection must be dropped and resumed."""
        try:
            frame = json.loads(text)
        except ValueError:
            log.warning("websocket frame not json length=%d", len(text))
            return True
        if not isinstance(frame, dict) or "event" not in frame:
            return True  # a reply to a client action (seq_reply, no seq); the bot sends none it awaits
        seq = frame.get("seq")
        event = WsEvent(event=str(frame["event"]), data=frame.get("data") or {},
                        broadcast=frame.get("broadcast") or {}, seq=int(seq) if seq is not None else -1)
        fresh = False
        if event.event == "hello":
            connection_id = str(event.data.get("connection_id") or "")
            if connection_id != self.connection_id:
                fresh = self._had_session or self.resync_on_start
                log.info("websocket new session connection_id=%s previous=%s", connection_id,
                         self.connection_id)
            self._had_session = True
            self.connection_id = connection_id or None
        elif self.next_seq is not None and event.seq != self.next_seq:
            log.warning("websocket seq mismatch expected=%d got=%d event=%s", self.next_seq, event.seq,
                        event.event)
            await ws.close(code=CLOSE_SEQ_MISMATCH)
            return False
        self.next_seq = event.seq + 1
        await self._queue.put((event, fresh))
        return True

    async def _consume(self) -> None:
        while True:
            event, fresh = await self._queue.get()
            try:
                if fresh and self.on_resync is not None:
                    await self._guard("resync", self.on_resync())
                await self._guard(event.event, self.handler(event))
            finally:
                self._queue.task_done()

    async def _guard(self, what: str, coro: Awaitable[None]) -> None:
        # One failing handler must not end the stream: log it and go on with the next event.
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("websocket handler failed event=%s", what)

    async def drain(self) -> None:
        """Wait until every event read so far has been handled (for tests and shutdown)."""
        await self._queue.join()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "connection_id": self.connection_id, "next_seq": self.next_seq}
