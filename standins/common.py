"""What every stand-in shares: a request log, fault injection and serving on a free port.

A stand-in is an object holding its state (issues, meetings, alerts...) with `app()` building its aiohttp
application. `faults.add(path_prefix, status, times=N)` makes the next N requests whose path starts with the
prefix answer that status with the vendor's own error body and headers (the stand-in's `fault_reply`).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, the form as a dict, the raw text, or None


@dataclass
class Fault:
    prefix: str
    status: int
    times: int
    method: str = ""  # "" = any
    retry_after: str = "2"
    body: Any = None  # None = the stand-in's usual error body for the status


@dataclass
class Faults:
    items: list[Fault] = field(default_factory=list)

    def add(self, prefix: str, status: int, *, times: int = 1, method: str = "", retry_after: str = "2",
            body: Any = None) -> None:
        self.items.append(Fault(prefix, status, times, method.upper(), retry_after, body))

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.items:
            if path.startswith(fault.prefix) and fault.method in ("", method) and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.items.remove(fault)
                return fault
        return None


class StandIn(ABC):
    """The base of the four stand-ins: subclasses set `name`, add routes and give `fault_reply`."""

    name = "stand-in"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults = Faults()
        self.url = ""

    # --- for subclasses ------------------------------------------------------------------------------------
    @abstractmethod
    def routes(self, app: web.Application) -> None:
        """Add the vendor's routes to `app`."""

    @abstractmethod
    def fault_reply(self, fault: Fault) -> web.Response:
        """The vendor's own answer for an injected fault (its status, headers and error body)."""

    # --- the app ------------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self.routes(app)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            text = raw.decode("utf-8", errors="replace")
            if request.content_type == "application/x-www-form-urlencoded":
                body = dict((await request.post()).items())
            else:
                try:
                    body = json.loads(text)
                except ValueError:
                    body = text
        self.requests.append(Recorded(request.method, request.path,
                                      {k: request.query.getall(k) for k in request.query.keys()},
                                      dict(request.headers), body))
        fault = self.faults.take(request.method, request.path)
        if fault is not None:
            if isinstance(fault.body, str):  # a garbled answer (a proxy's page, a cut-off body)
                return web.Response(status=fault.status, text=fault.body, content_type="text/html")
            return self.fault_reply(fault)
        return await handler(request)

    def sent(self, method: str, path_prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Run on host:port (0 = a free port); yields the base URL."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        server: Any = site._server
        bound = server.sockets[0].getsockname()[1]
        self.url = f"http://{host}:{bound}"
        try:
            yield self.url
        finally:
            await runner.cleanup()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json", headers=headers)


async def json_body(request: web.Request) -> Any:
    """The JSON body, or None when it is absent or not JSON (the handler answers 400)."""
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
