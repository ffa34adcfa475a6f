"""GET /api/v4/websocket: upgrade, authenticate, read client actions (api4/websocket.go, web_conn.go,
wsapi/*.go, app/platform/websocket_router.go)."""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import WSMsgType, web

from sandbox import gojson
from sandbox.auth import token_from_request, user_for_token
from sandbox.hub import Conn, Hub
from sandbox.ids import is_valid_id, now_ms
from sandbox.keys import HUB, STATE
from sandbox.state import SERVER_VERSION, State

log = logging.getLogger(__name__)

MAX_FRAME = 8 * 1024  # model.SocketMaxMessageSizeKb: the read limit; a bigger frame closes the socket


def _fail(seq: Any, error_id: str, status: int, message: str = "") -> dict[str, Any]:
    # returnWebSocketError blanks detailed_error; AppError omits an empty request_id.
    return {"status": "FAIL", "seq_reply": seq,
            "error": {"id": error_id, "message": message or error_id, "detailed_error": "",
                      "status_code": status}}


INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def _parse_resume(query: Any) -> tuple[str, int | None] | None:
    """(connection_id, sequence_number) from the query, or None when the socket must be closed.

    PopulateWebConnConfig (app/platform/web_conn.go): an invalid id, an id without sequence_number, or a
    sequence_number `strconv.ParseInt(seqVal, 10, 0)` cannot parse (not decimal, or outside int64) is an
    error. Nothing else is checked: current code has no `< 0` test (older code had one), so a negative
    sequence_number is accepted; Hub._resume says what writePump does with it."""
    conn_id = query.get("connection_id", "")
    if not conn_id:
        return "", None
    if not is_valid_id(conn_id):
        return None
    seq = query.get("sequence_number", "")
    if not re.fullmatch(r"[+-]?[0-9]+", seq or ""):
        return None
    value = int(seq)
    if not INT64_MIN <= value <= INT64_MAX:
        return None
    return conn_id, value


async def websocket(request: web.Request) -> web.StreamResponse:
    hub: Hub = request.app[HUB]
    state: State = request.app[STATE]
    # APIHandlerTrustRequester: an invalid token is ignored (the socket opens unauthenticated), but a
    # personal/bot token in ?access_token= still gives 401 (token_from_request raises it).
    token = token_from_request(request)
    user = user_for_token(state, token)
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=hub.heartbeat, autoping=True)
    await ws.prepare(request)
    hub.sockets.add(ws)
    conn: Conn | None = None
    auth_timer: asyncio.TimerHandle | None = None
    try:
        if user is not None:
            # Resume parameters are only looked at for sessions known at upgrade time.
            resume = _parse_resume(request.query)
            if resume is None:
                await ws.close()
                return ws
            conn = hub.connect(user.id, token or "", resume[0], resume[1])
            hub.attach(conn, ws)
        else:
            # The write pump checks every authCheckInterval whether a token was set, else it closes.
            auth_timer = asyncio.get_running_loop().call_later(
                hub.auth_timeout, lambda: conn is None and asyncio.ensure_future(ws.close()))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    req = gojson.loads(msg.data)
                except ValueError:
                    break  # a frame that cannot be decoded closes the socket
                if not isinstance(req, dict):
                    break
                result = _serve(hub, state, conn, req)
                if result is False:
                    break
                if isinstance(result, Conn):
                    conn = result
                    if auth_timer is not None:
                        auth_timer.cancel()
                    hub.attach(conn, ws)
            elif msg.type == WSMsgType.BINARY:
                # The real server decodes msgpack here; the sandbox has no msgpack and closes instead.
                break
            else:
                break
    finally:
        if auth_timer is not None:
            auth_timer.cancel()
        if conn is not None:
            hub.detach(conn, ws)
        hub.sockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


def _serve(hub: Hub, state: State, conn: Conn | None, req: dict[str, Any]) -> Conn | bool | None:
    """WebSocketRouter.ServeWebSocket. Returns a Conn after a successful challenge, False to close."""
    action = req.get("action")
    seq = req.get("seq")
    data = req.get("data") if isinstance(req.get("data"), dict) else {}
    if not isinstance(seq, int) or isinstance(seq, bool):
        # Go decodes into int64: a non-number seq fails decoding, which closes the socket.
        if seq is not None:
            return False
        seq = 0
    if not isinstance(action, str):
        if action is not None:
            return False
        action = ""
    if action.startswith("custom_"):
        return None  # plugin actions: no reply
    if action == "":
        if conn is not None:
            hub.reply(conn, _fail(seq, "api.web_socket_router.no_action.app_error", 400))
        return None
    if seq <= 0:
        if conn is not None:
            hub.reply(conn, _fail(seq, "api.web_socket_router.bad_seq.app_error", 400))
        return None
    if action == "authentication_challenge":
        if conn is not None:
            return None  # already authenticated: ignored silently, no reply
        token = data.get("token")
        if not isinstance(token, str):
            return False
        user = user_for_token(state, token)
        if user is None:
            return False  # invalid token: the socket is closed without a reply
        # The challenge path registers a fresh connection (no resume: "TODO: Same logic to reconnect
        # queue as api4/websocket.go" in websocket_router.go): hello, then the OK reply.
        new_conn = hub.connect(user.id, token)
        hub.reply(new_conn, {"status": "OK", "seq_reply": seq})
        return new_conn
    if conn is None:
        # not_authenticated: the real hub drops replies to unregistered connections (directMsg checks
        # connIndex.Has), so nothing arrives.
        return None
    user = state.users.get(conn.user_id)
    if action == "ping":
        hub.reply(conn, {"status": "OK", "seq_reply": seq, "data": {
            "text": "pong", "version": SERVER_VERSION, "server_time": now_ms(), "node_id": ""}})
    elif action == "user_typing":
        channel_id = data.get("channel_id")
        if not is_valid_id(channel_id):
            hub.reply(conn, _fail(seq, "api.websocket_handler.invalid_param.app_error", 400,
                                  "Invalid channel_id parameter"))
            return None
        channel = state.channels.get(channel_id)
        if channel is None or user is None or not state.has_channel_permission(user, channel, "create_post"):
            hub.reply(conn, _fail(seq, "api.web_socket_handler.not_authorized.app_error", 403))
            return None
        parent_id = data.get("parent_id") if isinstance(data.get("parent_id"), str) else ""
        hub.publish("typing", {"parent_id": parent_id, "user_id": conn.user_id},
                    channel_id=channel_id, omit_users=[conn.user_id])
        hub.reply(conn, {"status": "OK", "seq_reply": seq})
    elif action == "get_statuses":
        statuses = {uid: ("online" if hub.is_online(uid) else "offline") for uid in state.users}
        hub.reply(conn, {"status": "OK", "seq_reply": seq, "data": statuses})
    elif action == "get_statuses_by_ids":
        ids = data.get("user_ids")
        if not isinstance(ids, list) or not ids or not all(is_valid_id(i) for i in ids):
            hub.reply(conn, _fail(seq, "api.websocket_handler.invalid_param.app_error", 400,
                                  "Invalid user_ids parameter"))
            return None
        hub.reply(conn, {"status": "OK", "seq_reply": seq,
                         "data": {uid: ("online" if hub.is_online(uid) else "offline") for uid in ids}})
    elif action in ("user_update_active_status", "posted_ack", "presence", "get_status"):
        hub.reply(conn, {"status": "OK", "seq_reply": seq})
    else:
        hub.reply(conn, _fail(seq, "api.web_socket_router.bad_action.app_error", 500))
    return None


def setup(app: web.Application) -> None:
    # The real route is "/{websocket:websocket(?:\/)?}": an optional trailing slash.
    app.router.add_get("/api/v4/websocket", websocket)
    app.router.add_get("/api/v4/websocket/", websocket)
