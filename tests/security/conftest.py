"""The attacks of issue 10, replayed end to end as an attacker would: an ordinary team member who can reach
the bot's public URL and the sandbox's API, and who runs an HTTP server of his own.

The world (sandbox + real bot + people) is the e2e one. `Recorder` is the attacker's server: it records
every request it gets, so a test can show that the bot sent it nothing (no token, no text).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.conftest import world, world_options  # noqa: F401  (the e2e world, reused)


@dataclass
class Recorder:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        form = dict(await request.post()) if request.content_type == "application/x-www-form-urlencoded" else {}
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body,
                              "form": {k: str(v) for k, v in form.items()}})
        return web.json_response({"response_type": "ephemeral", "text": "recorded"})

    def authorizations(self) -> list[str]:
        return [r["headers"].get("Authorization", "") for r in self.requests]


@pytest.fixture
async def attacker_server() -> AsyncIterator[Recorder]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    rec.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield rec
    finally:
        await runner.cleanup()
