"""Outbound HTTP for everything that is not Mattermost (outgoing webhooks), on aiohttp.

Handlers may not import aiohttp (style.md); they get a `Poster` from the composition root and see only
`await poster.post(url, body, headers) -> HttpResult`. One ClientSession, opened on first use, closed by
`close()`. Redirects are not followed: a webhook receiver that moved must be reconfigured, not chased.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import aiohttp


@dataclass(frozen=True)
class HttpResult:
    status: int  # 0: no answer (refused, timed out, bad URL)
    error: str = ""
    retry_after_s: float | None = None  # from a 429/503 Retry-After in seconds, if any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpResult: ...

    async def close(self) -> None: ...


class Sender(Protocol):
    """Any method (the playbooks' http actions): `await sender.send("PUT", url, body, headers)`."""

    async def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> HttpResult: ...

    async def close(self) -> None: ...


class HttpPoster:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
        return await self.send("POST", url, body, headers)

    async def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            async with self._session.request(method, url, data=body or None, headers=headers,
                                             allow_redirects=False) as resp:
                await resp.read()  # drain, so the connection can be reused
                error = "" if 200 <= resp.status < 300 else f"HTTP {resp.status}"
                return HttpResult(resp.status, error, _retry_after(resp.headers.get("Retry-After")))
        except asyncio.TimeoutError:
            return HttpResult(0, f"no answer within {self.timeout_s:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as err:
            return HttpResult(0, str(err) or type(err).__name__)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from webhook receivers; the usual backoff applies
