"""WebSocket hub: connections, per-connection seq, the delivery filter, and replay on reconnect.

Modelled on server/channels/app/platform/web_hub.go and web_conn.go:
- Every connection has a send queue (256). An event gets its `seq` only when it is written, so seq rises by
  exactly 1 per frame on that connection; replies to client actions carry no seq.
- A written event also goes into a 128-slot dead queue. On disconnect the connection object stays in the
  hub, inactive, for 5 minutes (inactiveConnReaperInterval) and keeps receiving broadcasts into its send
  queue, so a reconnect with `connection_id` + `sequence_number` resumes: replay from the dead queue with the
  original seqs, then whatever queued up meanwhile, and no hello.
- A full send queue closes and removes the connection (not resumable afterwards).

`publish` is synchronous: it only appends to queues and wakes each connection's writer task.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from aiohttp import web

from sandbox.ids import new_id
from sandbox.state import SERVER_VERSION, State
from sandbox.triggers import TriggerIds

log = logging.getLogger(__name__)

SEND_QUEUE_SIZE = 256  # sendQueueSize
SEND_SLOW_WARN = 128  # sendSlowWarn: from here on, typing/status events are dropped
DEAD_QUEUE_SIZE = 128  # deadQueueSize
DROPPABLE_WHEN_SLOW = {"typing", "status_change", "multiple_channels_viewed", "channel_viewed"}


@dataclass
class _Event:
    """One queued event: its frame minus the seq, which is set when it is written."""

    event: str
    head: str  # '{"event":..,"data":..,"broadcast":..'


@dataclass
class _Reply:
    frame: str


@dataclass
class Conn:
    """One WebSocket session as the hub sees it (model: platform.WebConn)."""

    id: str
    user_id: str = ""
    token: str = ""
    sequence: int = 0  # seq the next written event gets
    queue: collections.deque = field(default_factory=collections.deque)
    dead: collections.deque = field(default_factory=lambda: collections.deque(maxlen=DEAD_QUEUE_SIZE))
    ws: web.WebSocketResponse | None = None
    active: bool = False
    inactive_since: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    writer: asyncio.Task | None = None
    pending_frames: list[str] = field(default_factory=list)  # replay/hello written before the queue


def hello_data(conn_id: str) -> dict[str, Any]:
    # "<version>.<build>.<config hash>.<EE bool>" (createHelloMessage)
    return {"server_version": f"{SERVER_VERSION}.0.sandbox.false", "connection_id": conn_id,
            "server_hostname": "sandbox"}


def _broadcast_json(user_id: str, channel_id: str, team_id: str, omit_users: Iterable[str],
                    connection_id: str, omit_connection_id: str) -> dict[str, Any]:
    omit = {uid: True for uid in omit_users}
    return {"omit_users": omit or None, "user_id": user_id, "channel_id": channel_id, "team_id": team_id,
            "connection_id": connection_id, "omit_connection_id": omit_connection_id}


class Hub:
    # Tunables as class attributes so tests can shrink them without waiting (see tests/sandbox/test_ws_*.py).
    auth_timeout: float = 5.0  # authCheckInterval: unauthenticated sockets are closed after this
    inactive_ttl: float = 300.0  # inactiveConnReaperInterval: how long a dropped session stays resumable
    heartbeat: float = 60.0  # pingInterval

    def __init__(self, state: State, signing_key: Any = None) -> None:
        self.state = state
        self.clock: Callable[[], float] = time.time  # injectable: trigger ids, hook lifetimes, reaping
        # One P-256 key per sandbox (a fresh one unless given): EnsureAsymmetricSigningKey.
        self.triggers = TriggerIds(signing_key, clock=lambda: self.clock())
        self.conns: dict[str, Conn] = {}  # connection id -> registered connection (active or not)
        self.sockets: set[web.WebSocketResponse] = set()  # every open socket, authenticated or not

    # -- publishing ------------------------------------------------------------------------------
    def publish(self, event: str, data: dict[str, Any], *, user_id: str = "", channel_id: str = "",
                team_id: str = "", omit_users: Iterable[str] = (), connection_id: str = "",
                omit_connection_id: str = "") -> None:
        """Queue an event for every connection the real delivery filter would pick.

        Membership is read from the state now, at publish time (the real server caches it per connection
        but invalidates the cache whenever the user's channels change, so later events reach new members).
        """
        omit = set(omit_users)
        broadcast = json.dumps(_broadcast_json(user_id, channel_id, team_id, omit, connection_id,
                                               omit_connection_id))
        shared_data = json.dumps(data)
        self._reap()
        for conn in list(self.conns.values()):
            if not self._should_send(conn, event, user_id, channel_id, team_id, omit, connection_id,
                                     omit_connection_id):
                continue
            head = f'{{"event":{json.dumps(event)},"data":{shared_data},"broadcast":{broadcast}'
            self._enqueue(conn, _Event(event, head))

    def _should_send(self, conn: Conn, event: str, user_id: str, channel_id: str, team_id: str,
                     omit: set[str], connection_id: str, omit_connection_id: str) -> bool:
        """WebConn.ShouldSendEvent, in its order."""
        if not conn.user_id or not self._session_valid(conn):
            return False
        if len(conn.queue) >= SEND_SLOW_WARN and event in DROPPABLE_WHEN_SLOW:
            return False
        if connection_id:
            return conn.id == connection_id
        if conn.id == omit_connection_id:
            return False
        if user_id:
            # A user-targeted event returns here: omit_users is not consulted (ShouldSendEvent).
            return conn.user_id == user_id
        if conn.user_id in omit:
            return False
        if channel_id:
            return self.state.is_channel_member(channel_id, conn.user_id)
        if team_id:
            return self.state.is_team_member(team_id, conn.user_id)
        return True

    def _session_valid(self, conn: Conn) -> bool:
        from sandbox.auth import user_for_token

        return user_for_token(self.state, conn.token) is not None

    def _enqueue(self, conn: Conn, item: _Event | _Reply) -> None:
        if len(conn.queue) >= SEND_QUEUE_SIZE:
            # The real hub cannot push into a full channel: closeAndRemoveConn. The session is gone,
            # so a later reconnect gets a new connection_id and hello.
            log.warning("websocket queue full, dropping connection conn_id=%s user_id=%s", conn.id, conn.user_id)
            self._remove(conn)
            return
        conn.queue.append(item)
        conn.wake.set()

    def reply(self, conn: Conn, frame: dict[str, Any]) -> None:
        """A WebSocketResponse (no seq). Only registered connections get replies (hub.SendMessage
        drops messages for connections not in the index, i.e. unauthenticated ones)."""
        if self.conns.get(conn.id) is conn:
            self._enqueue(conn, _Reply(json.dumps(frame)))

    # -- connections -----------------------------------------------------------------------------
    def connect(self, user_id: str, token: str, resume_id: str = "", resume_seq: int | None = None) -> Conn:
        """Register an authenticated connection: a fresh one with hello, or a resumed inactive one."""
        self._reap()
        old = self.conns.get(resume_id) if resume_id else None
        if old is not None and old.user_id == user_id and not old.active:
            return self._resume(old, token, resume_seq or 0)
        conn = Conn(id=new_id(), user_id=user_id, token=token, active=True)
        self.conns[conn.id] = conn
        # register: the hello goes into the send queue first, so it is seq 0.
        self._enqueue(conn, _Event("hello", self._hello_head(conn)))
        return conn

    def _hello_head(self, conn: Conn) -> str:
        broadcast = json.dumps(_broadcast_json(conn.user_id, "", "", (), "", ""))
        return f'{{"event":"hello","data":{json.dumps(hello_data(conn.id))},"broadcast":{broadcast}'

    def _resume(self, conn: Conn, token: str, seq: int) -> Conn:
        """writePump's start: replay from the dead queue, or detect loss and start over with hello."""
        conn.token = token
        conn.active = True
        conn.pending_frames = []
        conn.sequence = seq
        if seq != 0:
            seqs = [s for s, _ in conn.dead]
            if seq in seqs:
                start = seqs.index(seq)
                conn.pending_frames = [frame for _, frame in list(conn.dead)[start:]]
                conn.sequence = conn.dead[-1][0] + 1
            elif conn.dead and conn.dead[-1][0] != seq - 1:
                # hasMsgLoss: new connection id, seq back to 0, hello.
                del self.conns[conn.id]
                conn.id = new_id()
                self.conns[conn.id] = conn
                conn.dead.clear()
                conn.sequence = 0
                conn.pending_frames = [self._stamp(conn, self._hello_head(conn))]
        # seq == 0 on a known connection: the real server neither replays nor sends hello (writePump only
        # looks at the dead queue when Sequence != 0); the sandbox mirrors that.
        conn.wake.set()
        return conn

    def _stamp(self, conn: Conn, head: str) -> str:
        frame = f'{head},"seq":{conn.sequence}}}'
        conn.dead.append((conn.sequence, frame))
        conn.sequence += 1
        return frame

    def attach(self, conn: Conn, ws: web.WebSocketResponse) -> None:
        conn.ws = ws
        conn.writer = asyncio.get_running_loop().create_task(self._write_pump(conn, ws))

    def detach(self, conn: Conn, ws: web.WebSocketResponse) -> None:
        """The socket is gone: the session stays, inactive and resumable, for `inactive_ttl`."""
        if conn.ws is not ws:
            return
        conn.ws = None
        conn.active = False
        conn.inactive_since = self.clock()
        if conn.writer is not None and conn.writer is not asyncio.current_task():
            conn.writer.cancel()
        conn.writer = None

    async def _write_pump(self, conn: Conn, ws: web.WebSocketResponse) -> None:
        try:
            for frame in conn.pending_frames:
                await ws.send_str(frame)
            conn.pending_frames = []
            while conn.ws is ws and not ws.closed:
                while conn.queue and conn.ws is ws:
                    item = conn.queue.popleft()
                    if isinstance(item, _Event):
                        # The event enters the dead queue before it is written, as in writePump.
                        frame = self._stamp(conn, item.head)
                    else:
                        frame = item.frame
                    await ws.send_str(frame)
                conn.wake.clear()
                if conn.queue:
                    continue
                await conn.wake.wait()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - a broken socket must not take the hub down
            log.exception("websocket write pump failed conn_id=%s", conn.id)

    def _remove(self, conn: Conn) -> None:
        self.conns.pop(conn.id, None)
        conn.queue.clear()
        ws = conn.ws
        conn.ws = None
        conn.active = False
        if conn.writer is not None:
            conn.writer.cancel()
        if ws is not None:
            _abort(ws)

    def _reap(self) -> None:
        now = self.clock()
        for conn in list(self.conns.values()):
            if not conn.active and now - conn.inactive_since > self.inactive_ttl:
                self.conns.pop(conn.id, None)

    def is_online(self, user_id: str) -> bool:
        return any(c.active and c.user_id == user_id for c in self.conns.values())

    # -- faults and shutdown ---------------------------------------------------------------------
    async def drop_all(self) -> None:
        """Close every socket abruptly (no close frame); sessions stay resumable."""
        for conn in list(self.conns.values()):
            if conn.ws is not None:
                ws = conn.ws
                self.detach(conn, ws)
                _abort(ws)
        for ws in list(self.sockets):
            _abort(ws)
        await asyncio.sleep(0)

    async def close_all(self) -> None:
        """Close every socket at shutdown (1001 going away)."""
        for conn in list(self.conns.values()):
            if conn.writer is not None:
                conn.writer.cancel()
        for ws in list(self.sockets):
            try:
                await asyncio.wait_for(ws.close(code=1001, message=b"server shutting down"), 1.0)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                _abort(ws)
        self.conns.clear()
        self.sockets.clear()


def _abort(ws: web.WebSocketResponse) -> None:
    """Cut the TCP connection under a socket without a close handshake, like a network drop."""
    req = getattr(ws, "_req", None)
    transport = req.transport if req is not None else None
    if transport is not None:
        transport.abort()
