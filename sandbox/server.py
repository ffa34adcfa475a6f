"""The sandbox's aiohttp application and its async-context-manager handle for tests.

    async with Sandbox(admin_token="t0k3n") as sb:
        sb.url, sb.state, sb.admin_token, sb.hub

Middleware here does what every real route does: X-Request-ID / X-Version-ID headers, AppError bodies,
404 `api.context.404.app_error` for unknown /api/v4 routes, injected faults and optional rate limiting.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from sandbox.errors import AppError
from sandbox.ids import new_id
from sandbox.state import SERVER_VERSION, State

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


def ok_status() -> web.Response:
    return web.json_response({"status": "OK"})


@web.middleware
async def _request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    state: State = request.app["state"]
    request_id = new_id()
    request["request_id"] = request_id
    headers = {"X-Request-ID": request_id, "X-Version-ID": f"{SERVER_VERSION}.0.sandbox.false"}
    path = request.path
    if path.startswith("/api/v4/"):
        from sandbox.auth import optional_user

        try:
            caller = optional_user(request)
        except AppError:
            caller = None
        state.request_log.append((request.method, path, caller.id if caller else ""))
        # Fault injection: fail the next N matching calls with a status, or delay them.
        for fault in state.faults:
            if fault.remaining > 0 and fault.method in (request.method, "*") and re.fullmatch(fault.path, path):
                fault.remaining -= 1
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                if fault.status:
                    if fault.status == 429:
                        return web.Response(status=429, text="limit exceeded",
                                            headers={**headers, "Retry-After": "1"})
                    err = AppError(fault.error_id, fault.status, "Injected by the sandbox for a test.")
                    return web.json_response(err.body(request_id), status=fault.status, headers=headers)
                break
        limited = request.app["rate_limiter"].check(request, caller.id if caller else None)
        if limited is not None:
            limited.headers.update(headers)
            return limited
    try:
        response = await handler(request)
    except AppError as err:
        return web.json_response(err.body(request_id), status=err.status_code, headers=headers)
    except web.HTTPNotFound:
        if path.startswith("/api/v4/"):
            err = AppError("api.context.404.app_error", 404)
            return web.json_response(err.body(request_id), status=404, headers=headers)
        raise
    except web.HTTPMethodNotAllowed:
        if path.startswith("/api/v4/"):
            err = AppError("api.context.404.app_error", 404)
            return web.json_response(err.body(request_id), status=404, headers=headers)
        raise
    for key, value in headers.items():
        if not response.prepared:
            response.headers.setdefault(key, value)
    return response


class RateLimiter:
    """GCRA as RateLimitSettings: off unless state.rate_limit is set; 429 text/plain with Retry-After."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._tat: dict[str, float] = {}

    def check(self, request: web.Request, user_id: str | None) -> web.Response | None:
        settings = self.state.rate_limit
        if not settings:
            return None
        per_sec = float(settings.get("per_sec", 10))
        burst = int(settings.get("max_burst", 100))
        key = user_id if settings.get("vary_by_user") and user_id else (request.remote or "")
        now = time.monotonic()
        interval = 1.0 / per_sec
        tat = max(self._tat.get(key, now), now)
        allow_at = tat - burst * interval
        if now < allow_at:
            retry = max(1, int(allow_at - now + 0.999))
            return web.Response(status=429, text="limit exceeded", headers={
                "Retry-After": str(retry), "X-RateLimit-Limit": str(int(per_sec)),
                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(retry)})
        self._tat[key] = tat + interval
        return None


def create_app(state: State, admin_token: str, validate: bool = False) -> web.Application:
    from sandbox import routes
    from sandbox.hub import Hub

    middlewares: list = [_request_context]
    if validate:
        # Test mode: every request body and JSON response is checked against the OpenAPI file.
        from sandbox.validation import openapi_middleware

        middlewares.insert(0, openapi_middleware(state))
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024 * 1024)
    app["state"] = state
    app["admin_token"] = admin_token
    app["hub"] = Hub(state)
    app["rate_limiter"] = RateLimiter(state)
    routes.setup(app)
    return app


class Sandbox:
    """Start the sandbox on a port (0 = any free one) for the life of an `async with` block."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, admin_token: str | None = None,
                 site_url: str = "", demo: bool = False, validate: bool = False) -> None:
        from sandbox.seed import bootstrap

        self.host = host
        self.port = port
        self.state = State(site_url=site_url)
        self.admin_token = bootstrap(self.state, admin_token)
        self.demo = demo
        if demo:
            from sandbox.seed import add_demo

            add_demo(self.state)
        self.app = create_app(self.state, self.admin_token, validate=validate)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def hub(self):
        return self.app["hub"]

    async def start(self) -> "Sandbox":
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        if not self.state.site_url:
            self.state.site_url = self.url
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self.app["hub"].close_all()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "Sandbox":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
