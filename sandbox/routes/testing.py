"""/sandbox/...: fault injection for tests and scripts. Not part of the real API, so not under /api/v4;
protected by the sandbox admin token (Authorization: Bearer <admin token>)."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sandbox import gojson
from sandbox.errors import AppError, invalid_body, session_expired
from sandbox.keys import ADMIN_TOKEN, SANDBOX, STATE
from sandbox.routes._helpers import json_response


def _admin(request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "token") or token.strip() != request.app[ADMIN_TOKEN]:
        raise session_expired()


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = gojson.loads(await request.read() or b"{}")
    except ValueError:
        raise invalid_body("body") from None
    if not isinstance(body, dict):
        raise invalid_body("body")
    return body


def _sandbox(request: web.Request):
    sb = request.app.get(SANDBOX)
    if sb is None:
        raise AppError("app.sandbox.not_available.app_error", 501, "Not available in this process.")
    return sb


async def add_fault(request: web.Request) -> web.Response:
    """{"method": "POST", "path": "^/api/v4/posts$", "status": 500, "times": 1, "delay": 0.0, "after": 0,
    "handled": false}: `after` calls go through first; `handled` serves the call, then answers the error."""
    _admin(request)
    body = await _body(request)
    try:
        handled = body.get("handled", False)
        if not isinstance(handled, bool):
            raise TypeError("handled")
        fault = _sandbox(request).fail(str(body["method"]), str(body["path"]), int(body.get("status", 500)),
                                       int(body.get("times", 1)), float(body.get("delay", 0.0)),
                                       after=int(body.get("after", 0)), handled=handled)
    except (KeyError, TypeError, ValueError):
        raise invalid_body("fault") from None
    return json_response({"method": fault.method, "path": fault.path, "status": fault.status,
                          "times": fault.remaining, "delay": fault.delay_s, "after": fault.skip,
                          "handled": fault.handled}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    _admin(request)
    _sandbox(request).clear_faults()
    return json_response({"status": "OK"})


async def drop_websockets(request: web.Request) -> web.Response:
    """{} cuts every WebSocket (the server notices); {"half_open": true}: the clients vanish unnoticed,
    their connections stay active until the read deadline (sandbox/hub.py)."""
    _admin(request)
    body = await _body(request)
    half_open = body.get("half_open", False)
    if not isinstance(half_open, bool):
        raise invalid_body("half_open")
    await _sandbox(request).drop_websockets(half_open=half_open)
    return json_response({"status": "OK"})


async def refuse_connections(request: web.Request) -> web.StreamResponse:
    """{"seconds": 5}: answers first, then stops listening (this very connection is cut too)."""
    _admin(request)
    body = await _body(request)
    try:
        seconds = float(body["seconds"])
    except (KeyError, TypeError, ValueError):
        raise invalid_body("seconds") from None
    sb = _sandbox(request)
    response = json_response({"status": "OK"})
    await response.prepare(request)
    await response.write_eof()
    asyncio.get_running_loop().create_task(sb.refuse_connections(seconds))
    return response


async def rate_limit(request: web.Request) -> web.Response:
    """{"per_sec": 10, "max_burst": 100, "vary_by_user": false}, or {"per_sec": null} to turn it off."""
    _admin(request)
    body = await _body(request)
    per_sec = body.get("per_sec")
    if per_sec is not None and not isinstance(per_sec, (int, float)):
        raise invalid_body("per_sec")
    _sandbox(request).set_rate_limit(per_sec, int(body.get("max_burst", 100)),
                                     bool(body.get("vary_by_user", False)))
    return json_response({"status": "OK"})


async def request_counts(request: web.Request) -> web.Response:
    """How many /api/v4 calls each user made so far (benchmarks count the bot's calls this way)."""
    _admin(request)
    counts: dict[str, int] = {}
    for _method, _path, user_id in request.app[STATE].request_log:
        counts[user_id] = counts.get(user_id, 0) + 1
    return web.json_response({"by_user": counts, "total": len(request.app[STATE].request_log)})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/sandbox/faults", add_fault)
    r.add_delete("/sandbox/faults", clear_faults)
    r.add_post("/sandbox/websockets/drop", drop_websockets)
    r.add_post("/sandbox/refuse_connections", refuse_connections)
    r.add_put("/sandbox/rate_limit", rate_limit)
    r.add_get("/sandbox/request_counts", request_counts)
