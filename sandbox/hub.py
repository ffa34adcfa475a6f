"""WebSocket hub: connections, per-connection seq, the delivery filter, and replay on reconnect.

Modelled on server/channels/app/platform/web_hub.go and web_conn.go:
- Every connection has a send queue (256). An event gets its `seq` only when it is written, so seq rises by
  exactly 1 per frame on that connection; replies to client actions carry no seq.
- A written event also goes into a 128-slot dead queue. On disconnect the connection object stays in the
  hub, inactive, and keeps receiving broadcasts into its send queue, so a reconnect with `connection_id` +
  `sequence_number` resumes: replay from the dead queue with the original seqs, then whatever queued up
  meanwhile, and no hello.
- How long it stays resumable is not a fixed 5 minutes. Each hub runs a ticker every 5 minutes
  (web_hub.go Hub.Start: `time.NewTicker(inactiveConnReaperInterval)`) and on each tick
  `hubConnectionIndex.RemoveInactiveConnections` drops every inactive connection whose *last activity*
  is more than `staleThreshold` (= inactiveConnReaperInterval, 5 minutes) old:
  `!conn.Active.Load() && now-conn.lastUserActivityAt > i.staleThreshold.Milliseconds()`.
  `lastUserActivityAt` is set when the connection is made (web_conn.go NewWebConn: `lastUserActivityAt:
  model.GetMillis()`) and moved by `UpdateLastActivityAtIfNeeded` -> `Hub.UpdateActivity`, which only
  touches *active* connections with the same session token; api4/post.go createPost and api4/channel.go
  viewChannel call it (and the connect itself). So a bot that last posted an hour ago loses its dropped
  session at the next tick, possibly seconds after the drop; one that posted just before the drop keeps
  it up to ~10 minutes.
- A dropped client is noticed only by the read side: readPump's read deadline is `pongWaitTime` (100 s),
  pushed on by each pong (web_conn.go readPump SetPongHandler). A client that vanished without a close
  (half-open TCP) leaves its connection *active* until then: events keep being "written" (into the dead
  queue, and lost on the wire), and a reconnect meanwhile cannot resume it (`RemoveInactiveByConnectionID`
  wants `!conn.Active`): it gets a new connection_id and a hello. The sandbox models the worst case, the
  full `pong_wait` after the drop (`Hub.drop_half_open`, POST /sandbox/websockets/drop {"half_open": true}).
- A full send queue closes and removes the connection (not resumable afterwards).

Time is the hub's injected clock (`Hub.clock`, `Sandbox.set_clock`); reaping and read deadlines are
evaluated lazily whenever the hub is used, which is what a client can observe, so tests move the clock
instead of sleeping.

`publish` is synchronous: it only appends to queues and wakes each connection's writer task.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
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
    last_activity: float = 0.0  # lastUserActivityAt, in hub-clock seconds
    read_deadline: float | None = None  # half-open: when readPump's read deadline will fire
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
    reaper_interval: float = 300.0  # inactiveConnReaperInterval: the ticker and the staleThreshold
    pong_wait: float = 100.0  # pongWaitTime: how long a half-open socket still counts as connected
    heartbeat: float = 60.0  # pingInterval

    def __init__(self, state: State, signing_key: Any = None) -> None:
        self.state = state
        # One P-256 key per sandbox (a fresh one unless given): EnsureAsymmetricSigningKey.
        self.triggers = TriggerIds(signing_key, clock=lambda: self.clock())
        self.conns: dict[str, Conn] = {}  # connection id -> registered connection (active or not)
        self.sockets: set[web.WebSocketResponse] = set()  # every open socket, authenticated or not
        # When the reaper's ticker started (hub start): the first look at the clock, unless a test sets it.
        # Sandbox.set_clock resets it, as a different clock is a different timeline.
        self.reaper_epoch: float | None = None

    @property
    def clock(self) -> Callable[[], float]:
        """The sandbox's injectable time source (State.clock): trigger ids, hook lifetimes, reaping, and
        outside the hub session expiry and OAuth codes."""
        return self.state.clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self.state.clock = value

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
        if conn.read_deadline is not None:
            # Half-open: writePump still writes (the kernel buffers it; nothing reaches the client), and an
            # event enters the dead queue with its seq as any written event does.
            if isinstance(item, _Event):
                self._stamp(conn, item.head)
            return
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
        # RemoveInactiveByConnectionID: only an *inactive* connection of the same user is taken over; one
        # the hub still thinks is connected (a half-open socket before its read deadline) is not.
        if old is not None and old.user_id == user_id and not old.active:
            conn = self._resume(old, token, resume_seq or 0)
        else:
            conn = Conn(id=new_id(), user_id=user_id, token=token, active=True, last_activity=self.clock())
            self.conns[conn.id] = conn
            # register: the hello goes into the send queue first, so it is seq 0.
            self._enqueue(conn, _Event("hello", self._hello_head(conn)))
        # NewWebConn: `go ps.UpdateLastActivityAtIfNeeded(session)` for every connect.
        self.touch(user_id, token)
        return conn

    def touch(self, user_id: str, token: str) -> None:
        """Hub.UpdateActivity via UpdateLastActivityAtIfNeeded: lastUserActivityAt of the session's *active*
        connections moves to now (api4/post.go createPost, api4/channel.go viewChannel, connects)."""
        now = self.clock()
        for conn in self.conns.values():
            if conn.active and conn.user_id == user_id and conn.token == token:
                conn.last_activity = now

    def _hello_head(self, conn: Conn) -> str:
        broadcast = json.dumps(_broadcast_json(conn.user_id, "", "", (), "", ""))
        return f'{{"event":"hello","data":{json.dumps(hello_data(conn.id))},"broadcast":{broadcast}'

    def _resume(self, conn: Conn, token: str, seq: int) -> Conn:
        """writePump's start: replay from the dead queue, or detect loss and start over with hello."""
        conn.token = token
        conn.active = True
        # A new WebConn takes over the queues (PopulateWebConnConfig); its lastUserActivityAt is now.
        conn.last_activity = self.clock()
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
        # looks at the dead queue when Sequence != 0); the sandbox mirrors that. A negative seq (accepted
        # since PopulateWebConnConfig parses it with strconv.ParseInt and no range check) is never in the
        # dead queue: with events there it is a loss (new id, hello); with none, nothing is sent and the
        # next event carries that negative seq, as writePump does.
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
        """The socket is gone: the session stays, inactive and resumable, until the reaper's tick."""
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
        if self.reaper_epoch is None:
            self.reaper_epoch = now
        for conn in list(self.conns.values()):
            if conn.read_deadline is not None and now >= conn.read_deadline:
                # readPump's NextReader fails at the deadline -> HubUnregister: inactive from then on.
                conn.active = False
                conn.inactive_since = conn.read_deadline
                conn.read_deadline = None
            if not conn.active and self.reaped_at(conn) <= now:
                self.conns.pop(conn.id, None)

    def reaped_at(self, conn: Conn) -> float:
        """The tick that removes this inactive connection: the first `reaper_epoch + k * reaper_interval`
        (k >= 1) at or after it went inactive with `tick - last_activity > reaper_interval` (in ms, as
        RemoveInactiveConnections compares GetMillis values)."""
        epoch_ms = round((self.reaper_epoch if self.reaper_epoch is not None else self.clock()) * 1000)
        interval_ms = round(self.reaper_interval * 1000)
        inactive_ms = round(conn.inactive_since * 1000)
        activity_ms = round(conn.last_activity * 1000)
        k_inactive = math.ceil((inactive_ms - epoch_ms) / interval_ms)
        k_stale = (activity_ms + interval_ms - epoch_ms) // interval_ms + 1
        return (epoch_ms + max(1, k_inactive, k_stale) * interval_ms) / 1000

    def is_online(self, user_id: str) -> bool:
        return any(c.active and c.user_id == user_id for c in self.conns.values())

    # -- faults and shutdown ---------------------------------------------------------------------
    def drop_half_open(self) -> None:
        """The clients vanish without a close (half-open TCP): each client sees its socket cut, but the hub
        keeps the connection active until its read deadline, `pong_wait` from now."""
        deadline = self.clock() + self.pong_wait
        for conn in list(self.conns.values()):
            ws = conn.ws
            if ws is None or not conn.active:
                continue
            conn.ws = None  # detach() on this socket is then a no-op: the hub has not noticed
            conn.read_deadline = deadline
            if conn.writer is not None:
                conn.writer.cancel()
                conn.writer = None
            # What was queued but not yet written goes out into the void, stamped, as further events will.
            pending, conn.queue = list(conn.queue), collections.deque()
            for item in pending:
                if isinstance(item, _Event):
                    self._stamp(conn, item.head)
            _abort(ws)

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
