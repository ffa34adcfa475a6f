"""The outgoing-integration HTTP client, shared by slash commands (commands_execute.py) and actions.py: the
requests the real server makes to an integration's URL, with its limits and its refusal of internal
addresses."""
from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from sandbox.state import State

MAX_INTEGRATION_RESPONSE = 1024 * 1024  # MaxIntegrationResponseSize
USER_AGENT = "Mattermost-Bot/1.1"


def timeout_s(state: State) -> float:
    return float(state.config.get("OutgoingIntegrationRequestsTimeout", 30))


class OutgoingError(Exception):
    """The integration could not be reached, or answered non-200."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status


# Ranges the real server's integration client will not dial unless allowed (services/httpservice:
# reserved IPs; newer code: loopback, private, link-local, unspecified and CGNAT 100.64.0.0/10).
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _reserved(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified or ip.is_multicast
            or (ip.version == 4 and ip in _CGNAT))


def _allowed(host: str, ips: list[Any], allowed: list[str]) -> bool:
    """allowHost / allowIP: an entry names the host itself, one of its IPs, or a CIDR holding them."""
    for entry in allowed:
        if entry.lower() == host.lower():
            return True
    for ip in ips:
        ok = False
        for entry in allowed:
            try:
                ok = ip in ipaddress.ip_network(entry, strict=False)
            except ValueError:
                ok = False
            if ok:
                break
        if not ok and _reserved(ip):
            return False
    return True


async def check_untrusted(state: State, url: str) -> None:
    """Refuse, as the real server does, an integration URL on a private or loopback address unless
    its host is listed in ServiceSettings.AllowedUntrustedInternalConnections."""
    host = (urlsplit(url).hostname or "").strip("[]")
    allowed = [e for e in re.split(r"[ ,]+", str(state.config.get("AllowedUntrustedInternalConnections", ""))) if e]
    try:
        ips: list[Any] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            raise OutgoingError(f"err=lookup {host}: {exc}") from None
        ips = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not _allowed(host, ips, allowed):
        raise OutgoingError(f"err=address forbidden, you may need to set AllowedUntrustedInternalConnections to "
                            f"allow an integration access to your internal network ({host})")


async def call_integration(state: State, method: str, url: str, *, body: bytes | None = None,
                           headers: dict[str, str] | None = None) -> tuple[str, bytes]:
    """(content type, body up to 1 MiB) of a 200 answer; OutgoingError otherwise.

    Only the headers the real client sends: no aiohttp defaults such as a guessed Content-Type.
    """
    send_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    await check_untrusted(state, url)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s(state))) as session:
            async with session.request(method, url, data=body, headers=send_headers,
                                       skip_auto_headers={"Content-Type"}) as resp:
                data = b""
                while len(data) < MAX_INTEGRATION_RESPONSE:  # io.LimitReader: the rest is ignored
                    chunk = await resp.content.read(MAX_INTEGRATION_RESPONSE - len(data))
                    if not chunk:
                        break
                    data += chunk
                if resp.status != 200:
                    raise OutgoingError(f"status={resp.status}", resp.status)
                return resp.headers.get("Content-Type", ""), data
    except OutgoingError:
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError) as exc:
        raise OutgoingError(f"err={exc!r}") from None
