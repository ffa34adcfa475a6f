"""The bot's own API as tests call it, every exchange checked against the bot's OpenAPI document
(bot/openapi.json, served at /api/v0/openapi.json), as sandbox/validation.py checks the sandbox against
Mattermost's: a response must match what the document declares for its status; a request must match it
whenever the bot accepted it (status < 400: a test may send a bad request on purpose)."""
from __future__ import annotations

import json as jsonlib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC_PATH = Path(__file__).resolve().parents[1] / "bot" / "openapi.json"


@cache
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


def check_exchange(base_url: str, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                   body: bytes | None, status: int, response_type: str, response_body: bytes,
                   response_headers: dict[str, str] | None = None) -> None:
    """Raise AssertionError when the exchange does not match the document."""
    request = MockRequest(base_url, method.lower(), path, args=query, headers=headers, data=body,
                          content_type=headers.get("Content-Type", "application/json"))
    if status < 400:
        errors = list(spec().iter_request_errors(request))
        assert not errors, f"{method} {path}: the request does not match bot/openapi.json: {errors}"
    # openapi-core reads JSON bodies itself; any other media type (a TOML export) is checked as text.
    data: Any = response_body if response_type == "application/json" else response_body.decode("utf-8")
    # Headers the document declares (Idempotent-Replayed) are checked against their schema when sent.
    response = MockResponse(data, status_code=status, content_type=response_type, headers=response_headers or {})
    errors = list(spec().iter_response_errors(request, response))
    assert not errors, f"{method} {path} -> {status}: the response does not match bot/openapi.json: " \
                       f"{[getattr(e, '__cause__', None) or e for e in errors]}"


class BotApi:
    """Calls the bot's API as one caller (their Mattermost token; None: no Authorization)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.headers: dict[str, str] = {}  # the last response's headers

    async def call(self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
                   query: dict[str, str] | None = None, headers: dict[str, str] | None = None
                   ) -> tuple[int, Any, str]:
        sent = dict(headers or {})
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        body = jsonlib.dumps(json).encode() if json is not None else data
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        # A query may also be written into `path` as is ("?page=%ff"), sent as the test wrote it.
        async with self.session.request(method, self.base_url + path, params=query or {}, data=body,
                                        headers=sent) as response:
            raw = await response.read()
            ctype = response.content_type
            status = response.status
            self.headers = dict(response.headers)
        parts = urlsplit(path)
        args = {**dict(parse_qsl(parts.query, keep_blank_values=True)), **(query or {})}
        check_exchange(self.base_url, method, parts.path, args, sent, body, status, ctype, raw, self.headers)
        text = raw.decode("utf-8", "replace")
        parsed = jsonlib.loads(raw) if ctype == "application/json" else text
        return status, parsed, text

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, str]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any, str]:
        return await self.call("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> tuple[int, Any, str]:
        return await self.call("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> tuple[int, Any, str]:
        return await self.call("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any, str]:
        return await self.call("DELETE", path, **kw)
