"""The HTTP plumbing every vendor client shares: one aiohttp session per client, a timeout on every call,
and one way of turning an answer that is not a success into an IntegrationError.

A client gives `VendorHttp` its service name and three small functions of its vendor: how to read the
vendor's own error text from a body (`vendor_message`), how to fix each status (`hint`), and (optionally)
which header says when to try again (`retry_after`). Everything else is the same for all four.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.integrations import IntegrationError

DEFAULT_TIMEOUT_S = 15.0
USER_AGENT = "playbooks-for-mattermost"

Now = Callable[[], float]  # epoch seconds (time.time, or a test's clock)

# The status of an IntegrationError for a request the client would not send (a setting missing from bot.toml,
# an action's input the vendor would refuse): final, as a vendor's 400 would be, so it is never retried.
NOT_SENT = 400
# The status for a success answer of the wrong shape: final too (asking again gets the same answer).
WRONG_SHAPE = 200


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    data: Any  # the parsed JSON body; None for an empty body


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from now: a number of seconds, an HTTP date (RFC 9110) or an ISO-8601 time
    (Zoom's daily limit sends one). None when absent or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    when: datetime | None = None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def standard_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    return parse_retry_after(headers.get("Retry-After"), now)


class VendorHttp:
    """One vendor's HTTP calls. `call()` returns the parsed answer of a 2xx or raises IntegrationError."""

    def __init__(self, service: str, *, vendor_message: Callable[[Any], str], hint: Callable[[int, Any], str],
                 retry_after: Callable[[Mapping[str, str], float], float | None] = standard_retry_after,
                 timeout_s: float = DEFAULT_TIMEOUT_S, now: Now = time.time) -> None:
        self.service = service
        self._vendor_message = vendor_message
        self._hint = hint
        self._retry_after = retry_after
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._now = now
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers={"User-Agent": USER_AGENT})
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def call(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                   params: list[tuple[str, str]] | None = None, json_body: Any = None,
                   form: Mapping[str, str] | None = None) -> Answer:
        host = urlsplit(url).netloc or url
        kwargs: dict[str, Any] = {"headers": dict(headers or {}), "params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        elif form is not None:
            kwargs["data"] = dict(form)
        try:
            async with self._open().request(method, url, **kwargs) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except asyncio.TimeoutError:
            raise IntegrationError(self.service, f"{host} did not answer within {self._timeout.total:.0f}s",
                                   hint=f"check that {host} is reachable from the bot; it is retried later"
                                   ) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # No connection opened (refused, name not resolved, bad URL): the request never left the bot.
            never_sent = isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.InvalidURL, ValueError))
            raise IntegrationError(self.service, f"cannot reach {host}: {exc or type(exc).__name__}",
                                   hint=f"check the {self.service} URL in bot.toml and the network",
                                   sent=not never_sent) from None
        text = raw.decode("utf-8", errors="replace")
        data: Any = None
        garbled = False
        if text.strip():
            try:
                data = json.loads(text)
            except ValueError:
                garbled = True
        if 200 <= status < 300:
            if garbled:
                raise IntegrationError(self.service, f"{host} answered {status} with a body that is not JSON: "
                                       f"{_snippet(text)}", status=status,
                                       hint=f"check that the URL points at {self.service}'s API (not a proxy "
                                            "or sign-in page)")
            return Answer(status, resp_headers, data)
        said = ""
        if not garbled and data is not None:
            try:
                said = self._vendor_message(data)
            except (AttributeError, TypeError, KeyError, IndexError):
                said = ""
        if not said:
            said = _snippet(text) if text.strip() else (resp_headers.get("Reason", "") or "no details given")
        retry_after = self._retry_after(resp_headers, self._now()) if status in (429, 503) or status >= 500 \
            else None
        raise IntegrationError(self.service, f"{method} {urlsplit(url).path} answered {status}: {said}",
                               status=status, hint=self._hint(status, data), retry_after_s=retry_after)


def _snippet(text: str, limit: int = 200) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def generic_hint(service: str, section: str, status: int, *, keys: str, not_found: str) -> str:
    """The usual advice per status; clients add their own words for the cases they know better."""
    if status == 401:
        return f"{service} refused the credentials: check {keys} in [{section}] (or the BOT_{section.upper()}_* " \
               "variables)"
    if status == 403:
        return f"the {service} account lacks a permission for this; grant it (see docs/integrations.md)"
    if status == 404:
        return not_found
    if status == 429:
        return f"{service} rate limit reached; the bot tries again later"
    if status >= 500:
        return f"{service} had a problem of its own; the bot tries again later"
    if status in (400, 422):
        return "the request was refused as invalid; check the action's settings in the playbook"
    return ""
