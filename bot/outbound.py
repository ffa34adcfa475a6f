"""Outbound HTTP for everything that is not Mattermost (outgoing webhooks), on aiohttp.

Handlers may not import aiohttp (style.md); they get a `Poster` from the composition root and see only
`await poster.post(url, body, headers) -> HttpResult`. One ClientSession, opened on first use, closed by
`close()`. Redirects are not followed: a webhook receiver that moved must be reconfigured, not chased.

A poster given an `AddressPolicy` (the playbooks' http actions) reaches only public addresses, as
Mattermost's own integrations do (ServiceSettings.AllowedUntrustedInternalConnections; the reserved ranges
of server/platform/services/httpservice/client.go): a host that is, or resolves only to, a loopback,
private, link-local, unique-local or otherwise non-global address, or one of the host's own addresses, is
refused before any connection, unless the admin allowed that host name or network. The check is on the
addresses the connection is made to (the resolver's answer), so a name that resolves differently a moment
later cannot slip past it.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


@dataclass(frozen=True)
class HttpResult:
    status: int  # 0: no answer (refused, timed out, bad URL)
    error: str = ""
    retry_after_s: float | None = None  # from a 429/503 Retry-After in seconds, if any
    forbidden: bool = False  # not sent: an internal address the policy does not allow (final)

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


class AddressForbidden(OSError):
    """The host is, or resolves only to, internal addresses that the policy does not allow."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def own_addresses() -> frozenset[Address]:
    """This host's own addresses (Linux: the kernel's local routes and IPv6 interface addresses; elsewhere
    none). A request to the host's own public address is routed locally, past a host firewall, so it counts
    as internal, as Mattermost's IsOwnIP (server/platform/services/httpservice/client.go) has it."""
    found: set[Address] = set()
    try:
        last = ""
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            text = line.strip()
            if text.startswith("|-- "):
                last = text[4:]
            elif text.startswith("/32 host LOCAL") and last:
                found.add(ipaddress.IPv4Address(last))
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            found.add(ipaddress.IPv6Address(int(line.split()[0], 16)))
    except (OSError, ValueError, IndexError):
        pass
    return frozenset(found)


class AddressPolicy:
    """Which internal hosts may be reached: `allow` holds host names (exact, any case) and addresses or
    networks ("10.0.0.0/8", "fd00::/8", "127.0.0.1"). Every global address is reachable, except the host's
    own (`own`), which only an address or network in `allow` opens."""

    def __init__(self, allow: tuple[str, ...] = (),
                 own: Callable[[], frozenset[Address]] = own_addresses) -> None:
        self.allow = allow
        self._own = own
        self._names: set[str] = set()
        self._nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            try:
                self._nets.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self._names.add(entry.strip().lower().rstrip("."))

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self._names

    def ip_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast and ip not in self._own():
            return True
        return any(ip.version == net.version and ip in net for net in self._nets)

    def refusal(self, host: str, address: str) -> str:
        shown = host if host == address else f"{host} ({address})"
        return f"{shown} is an internal address, which playbooks may not reach unless the bot's admin allows it"


class _GuardedResolver(AbstractResolver):
    """The default resolver, keeping only the addresses the policy allows (aiohttp connects to these)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._inner = DefaultResolver()
        self._policy = policy

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if self._policy.host_allowed(host):
            return found
        kept = [r for r in found if self._policy.ip_allowed(r["host"])]
        if not kept and found:
            raise AddressForbidden(self._policy.refusal(host, found[0]["host"]))
        return kept

    async def close(self) -> None:
        await self._inner.close()


class HttpPoster:
    def __init__(self, timeout_s: float = 10.0, policy: AddressPolicy | None = None) -> None:
        self.timeout_s = timeout_s
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None

    def _literal_refused(self, url: str) -> str:
        """Why a URL whose host is an address literal may not be reached ("" if it may): aiohttp connects
        to a literal without asking the resolver."""
        if self.policy is None:
            return ""
        try:
            host = urlsplit(url).hostname or ""
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return ""  # a name: the resolver decides
        if self.policy.host_allowed(host) or self.policy.ip_allowed(host):
            return ""
        return self.policy.refusal(host, host)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
        return await self.send("POST", url, body, headers)

    async def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
        refused = self._literal_refused(url)
        if refused:
            return HttpResult(0, refused, forbidden=True)
        if self._session is None or self._session.closed:
            options: dict[str, Any] = {}
            if self.policy is not None:
                options["connector"] = aiohttp.TCPConnector(resolver=_GuardedResolver(self.policy))
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s), **options)
        try:
            async with self._session.request(method, url, data=body or None, headers=headers,
                                             allow_redirects=False) as resp:
                await resp.read()  # drain, so the connection can be reused
                error = "" if 200 <= resp.status < 300 else f"HTTP {resp.status}"
                return HttpResult(resp.status, error, _retry_after(resp.headers.get("Retry-After")))
        except asyncio.TimeoutError:
            return HttpResult(0, f"no answer within {self.timeout_s:g} s")
        except aiohttp.ClientConnectorError as err:
            if isinstance(err.os_error, AddressForbidden):
                return HttpResult(0, str(err.os_error), forbidden=True)
            return HttpResult(0, str(err) or type(err).__name__)
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
