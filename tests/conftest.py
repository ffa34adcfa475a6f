"""Shared fixtures: a running sandbox (port 0) and a tiny API client that acts as a person or a bot."""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import aiohttp
import pytest
import requests
from aiohttp import web

from sandbox import Sandbox
from sandbox.validation import assert_no_violations

# The bot and test integrations listen on loopback, which a real Mattermost refuses to call unless it is
# listed in AllowedUntrustedInternalConnections; the sandbox refuses it too, so tests list it as an
# operator would.
LOOPBACK = "127.0.0.1 localhost"

# `make test` runs tests/e2e twice: as Mattermost is installed (no edit limit), then with
# ServiceSettings.PostEditTimeLimit set to this many seconds, as many admins set it, so every journey is
# shown to work on a server that refuses to change an old post's `message` (api4/post.go updatePost).
EDIT_LIMIT_ENV = "PLAYBOOKS_TEST_POST_EDIT_TIME_LIMIT"


def sandbox_config() -> dict[str, Any]:
    """The admin settings every test sandbox starts with (sandbox/config.py), from the environment."""
    limit = os.environ.get(EDIT_LIMIT_ENV, "").strip()
    if not limit:
        return {}
    return {"ServiceSettings": {"PostEditTimeLimit": int(limit)}}


# Real PostgreSQL fixtures (pg_url, db_url, db_engine): started from Debian's binaries when needed.
pytest_plugins = ["tests.pg"]


def attachments_text(props: dict[str, Any] | None) -> str:
    """What a post shows in its attachments, as Mattermost renders it (pretext, title, text, fields):
    where a run's posts show what changes (progress, owner, status), their `message` never does."""
    parts: list[str] = []
    for a in (props or {}).get("attachments") or []:
        parts += [str(a.get(k) or "") for k in ("pretext", "title", "text")]
        parts += [f"{f.get('title', '')}: {f.get('value', '')}" for f in a.get("fields") or []]
    return "\n".join(p for p in parts if p)


class Api:
    """Calls the sandbox's /api/v4 as one user (token), returning (status, json-or-text, headers)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None) -> None:
        self.session = session
        self.base_url = base_url
        self.token = token

    def as_(self, token: str | None) -> "Api":
        return Api(self.session, self.base_url, token)

    async def call(self, method: str, path: str, json: Any = None, **kw: Any) -> tuple[int, Any, Any]:
        headers = dict(kw.pop("headers", {}) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        url = path if path.startswith("http") else f"{self.base_url}/api/v4{path}"
        async with self.session.request(method, url, json=json, headers=headers, **kw) as resp:
            if resp.content_type == "application/json":
                body = await resp.json()
            else:
                body = await resp.text()
            return resp.status, body, resp.headers

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("POST", path, json=json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("PUT", path, json=json, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("DELETE", path, **kw)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    # validate=True: every /api/v4 request and JSON response is checked against the OpenAPI file
    # (sandbox/validation.py). Any disagreement fails the test at teardown with the full list; a test that
    # provokes one on purpose empties `sb.state.spec_violations` itself.
    async with Sandbox(admin_token="admintoken", validate=True, allow_internal=LOOPBACK,
                       config=sandbox_config()) as sb:
        yield sb
    assert_no_violations(sb.state)


@pytest.fixture
async def api(sandbox: Sandbox) -> AsyncIterator[Api]:
    """Acts as the system admin; `api.as_(token)` acts as someone else."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, sandbox.url, sandbox.admin_token)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """`app` served on a free loopback port (port 0) while the block runs; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def outgoing(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """(method, url, Authorization) of every HTTP request made through requests (the gateway's REST)."""
    seen: list[tuple[str, str, str]] = []
    send = requests.Session.send

    def recording(self: requests.Session, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
        seen.append((str(request.method), str(request.url), str(request.headers.get("Authorization", ""))))
        return send(self, request, **kw)

    monkeypatch.setattr(requests.Session, "send", recording)
    return seen
