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
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from sandbox.errors import AppError
from sandbox.ids import new_id
from sandbox.keys import ADMIN_TOKEN, HUB, RATE_LIMITER, REQUEST_ID, SANDBOX, STATE
from sandbox.state import SERVER_VERSION, State

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sandbox.state import Fault

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with `Content-Type: application/json` exactly, as the real server sends (no charset)."""
    import json

    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers,
                        content_type="application/json")


def ok_status() -> web.Response:
    return json_response({"status": "OK"})


@web.middleware
async def _request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    state: State = request.app[STATE]
    request_id = new_id()
    request[REQUEST_ID] = request_id
    headers = {"X-Request-ID": request_id, "X-Version-ID": f"{SERVER_VERSION}.0.sandbox.false"}
    path = request.path
    caller = None
    if path.startswith("/api/v4/"):
        from sandbox.auth import optional_user

        try:
            caller = optional_user(request)
        except AppError:
            caller = None
        state.request_log.append((request.method, path, caller.id if caller else ""))
    # The OAuth endpoints (/oauth/access_token: a token refresh) fail as the API does, for tests.
    if path.startswith(("/api/v4/", "/oauth/")):
        # Fault injection: fail the next N matching calls with a status, or delay them (after letting
        # `skip` of them through; with `handled`, after doing the work).
        lost_answer: Fault | None = None
        for fault in state.faults:
            if fault.remaining > 0 and fault.method in (request.method, "*") and re.fullmatch(fault.path, path):
                if fault.skip > 0:
                    fault.skip -= 1
                    break
                fault.remaining -= 1
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                if fault.status and fault.handled:
                    lost_answer = fault
                elif fault.status:
                    return _fault_response(fault, request_id, headers)
                break
        if lost_answer is not None:
            try:
                await handler(request)
            except (AppError, web.HTTPException):
                pass  # the work failed anyway; the caller sees the injected answer either way
            return _fault_response(lost_answer, request_id, headers)
    if path.startswith("/api/v4/"):
        limited = request.app[RATE_LIMITER].check(request, caller.id if caller else None)
        if limited is not None:
            limited.headers.update(headers)
            return limited
    try:
        response = await handler(request)
    except AppError as err:
        return json_response(err.body(request_id), status=err.status_code, headers=headers)
    except web.HTTPNotFound:
        if path.startswith("/api/v4/"):
            err = AppError("api.context.404.app_error", 404)
            return json_response(err.body(request_id), status=404, headers=headers)
        raise
    except web.HTTPMethodNotAllowed:
        if path.startswith("/api/v4/"):
            err = AppError("api.context.404.app_error", 404)
            return json_response(err.body(request_id), status=404, headers=headers)
        raise
    for key, value in headers.items():
        if not response.prepared:
            response.headers.setdefault(key, value)
    return response


def _fault_response(fault: Fault, request_id: str, headers: dict[str, str]) -> web.Response:
    if fault.status == 429:
        return web.Response(status=429, text="limit exceeded", headers={**headers, "Retry-After": "1"})
    err = AppError(fault.error_id, fault.status, "Injected by the sandbox for a test.")
    return json_response(err.body(request_id), status=fault.status, headers=headers)


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


def create_app(state: State, admin_token: str, validate: bool = False,
               signing_key: Any = None) -> web.Application:
    from sandbox import routes
    from sandbox.hub import Hub

    middlewares: list = [_request_context]
    if validate:
        # Test mode: every request body and JSON response is checked against the OpenAPI file.
        from sandbox.validation import openapi_middleware

        middlewares.insert(0, openapi_middleware(state))
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024 * 1024)
    app[STATE] = state
    app[ADMIN_TOKEN] = admin_token
    app[HUB] = Hub(state, signing_key)
    app[RATE_LIMITER] = RateLimiter(state)
    routes.setup(app)
    return app


LICENSE_SKUS = ("professional", "enterprise")


def license_for(sku: str | None) -> dict[str, Any] | None:
    """model.License as far as the sandbox reads it: the SKU and the LDAPGroups feature (enterprise)."""
    if sku is None or sku == "none":
        return None
    if sku not in LICENSE_SKUS:
        raise ValueError(f"license: expected none, professional or enterprise, got {sku!r}")
    return {"SkuShortName": sku, "LDAPGroups": sku == "enterprise"}


class Sandbox:
    """Start the sandbox on a port (0 = any free one) for the life of an `async with` block."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, admin_token: str | None = None,
                 site_url: str = "", demo: bool = False, validate: bool = False,
                 allow_internal: str = "", signing_key: Any = None,
                 config: dict[str, Any] | None = None, license: str | None = None) -> None:
        """signing_key: the P-256 private key (cryptography ec.EllipticCurvePrivateKey) that signs trigger
        ids, for tests that need a known one; a fresh key per sandbox by default.

        config: nested admin settings as in config.json, e.g. {"TeamSettings": {"MaxChannelsPerTeam": 5}}
        (the fields of sandbox/config.py FIELDS; an unknown one is a ValueError). Applied after
        site_url and allow_internal, so it wins over them.

        SiteURL: without one, the sandbox's own address once it listens, so every test sandbox has one
        (custom slash commands need it, as on a real server). Only an explicit
        {"ServiceSettings": {"SiteURL": ""}} leaves it empty, as on a fresh real server."""
        from sandbox.seed import bootstrap

        self.host = host
        self.port = port
        self.state = State(site_url=site_url)
        # ServiceSettings.AllowedUntrustedInternalConnections: hosts, IPs or CIDRs (space or comma
        # separated) on private networks that integrations may be called on. Empty by default, as on a
        # real server: a bot on 127.0.0.1 must be listed, exactly as an operator would list it.
        self.state.config["AllowedUntrustedInternalConnections"] = allow_internal
        self._keep_empty_site_url = False
        if config:
            from sandbox.config import apply, parse

            flat = parse(config, strict=True)
            apply(self.state, flat)
            self._keep_empty_site_url = flat.get("SiteURL") == ""
        # license: None (Team Edition, unlicensed), "professional" or "enterprise" (the latter with the
        # LDAPGroups feature): what app.Srv().License() gates custom groups on (sandbox/routes/groups.py).
        self.state.license = license_for(license)
        self.admin_token = bootstrap(self.state, admin_token)
        self.demo = demo
        if demo:
            from sandbox.seed import add_demo

            add_demo(self.state)
        self.app = create_app(self.state, self.admin_token, validate=validate, signing_key=signing_key)
        self.app[SANDBOX] = self  # for the /sandbox/... test routes (routes/testing.py)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._reopen: asyncio.Task | None = None
        # Set while the port accepts connections; tests await it instead of sleeping.
        self.accepting = asyncio.Event()
        self.url = ""

    @property
    def hub(self):
        return self.app[HUB]

    async def start(self) -> "Sandbox":
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._listen()
        self.url = f"http://{self.host}:{self.port}"
        if not self.state.site_url and not self._keep_empty_site_url:
            self.state.site_url = self.url
        return self

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        self._site = site
        self.state.refuse_connections_until = 0.0
        self.accepting.set()

    async def stop(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        if self._runner is not None:
            await self.app[HUB].close_all()
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    # -- test handles: faults a real server or network produces ------------------------------------
    def fail(self, method: str, path_regex: str, status: int = 500, times: int = 1,
             delay: float = 0.0, *, after: int = 0, handled: bool = False) -> "Fault":
        """Fail (or delay) the next `times` /api/v4 (or /oauth/) requests whose path fully matches `path_regex`,
        once `after` matching requests went through untouched (after=1: the 2nd call fails).

        status 0 with a delay only slows the call down; status 429 answers like the rate limiter
        (text/plain `limit exceeded` with Retry-After); other statuses answer with an AppError body.
        handled=True: the request is served first and only its answer replaced by the error, as when a
        reply is lost after the server acted (the post exists, the caller saw a 500).
        """
        from sandbox.state import Fault

        fault = Fault(method=method.upper(), path=path_regex, status=status, delay_s=delay, remaining=times,
                      skip=after, handled=handled)
        self.state.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.state.faults.clear()

    async def drop_websockets(self, half_open: bool = False) -> None:
        """Cut every WebSocket without a close frame. The server notices at once and the sessions stay
        resumable until the reaper's tick (sandbox/hub.py); with `half_open` the clients vanish without the
        server noticing: their connections stay active until the read deadline (`hub.pong_wait`), so a
        reconnect meanwhile gets a new connection_id and a hello."""
        if half_open:
            self.hub.drop_half_open()
            await asyncio.sleep(0)
        else:
            await self.hub.drop_all()

    async def refuse_connections(self, seconds: float) -> None:
        """Stop listening (new TCP connections are refused) and cut open connections and WebSockets,
        like a server restart or a network outage; listen again on the same port after `seconds`.

        Tests call `await sb.accept_connections()` to end the outage early, or await `sb.accepting`.
        """
        if self._runner is None:
            raise RuntimeError("the sandbox is not running")
        if self._reopen is not None:
            self._reopen.cancel()
        if self._site is not None:
            await self._site.stop()
            self._site = None
        self.accepting.clear()
        self.state.refuse_connections_until = time.time() + seconds
        await self.hub.drop_all()
        server = self._runner.server
        for handler in list(server.connections) if server is not None else []:
            transport = handler.transport
            if transport is not None:
                transport.abort()
        self._reopen = asyncio.get_running_loop().create_task(self._reopen_after(seconds))

    async def _reopen_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._reopen = None
        await self._listen()

    async def accept_connections(self) -> None:
        """End a `refuse_connections` outage now."""
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        if self._site is None and self._runner is not None:
            await self._listen()

    def set_rate_limit(self, per_sec: float | None, burst: int = 100, vary_by_user: bool = False) -> None:
        """Turn on RateLimitSettings (GCRA; 429 text/plain with Retry-After); per_sec None turns it off."""
        if per_sec is None:
            self.state.rate_limit = None
        else:
            self.state.rate_limit = {"per_sec": per_sec, "max_burst": burst, "vary_by_user": vary_by_user}
        self.app[RATE_LIMITER]._tat.clear()

    def set_clock(self, clock: "Callable[[], float]") -> None:
        """Replace the time source (seconds since the epoch) of trigger ids, response_url hooks, post edit
        limits and the WebSocket hub (reaper ticks, read deadlines), so tests move time instead of sleeping.
        The reaper's ticker starts again at the new clock's first reading."""
        self.hub.clock = clock
        self.hub.reaper_epoch = None

    async def __aenter__(self) -> "Sandbox":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
