"""bot/outbound.py's address policy: which addresses the playbooks' http actions may reach, checked on the
address literal and on what a host name resolves to, with a real local receiver."""
from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.outbound import AddressPolicy, HttpPoster, own_addresses
from tests.conftest import serve


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.0.0.2", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
    "192.0.2.1", "not an address",
])
def test_internal_and_reserved_addresses_are_refused_by_default(address: str) -> None:
    assert not AddressPolicy().ip_allowed(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_reachable(address: str) -> None:
    assert AddressPolicy().ip_allowed(address)


def test_the_admin_allows_hosts_addresses_and_networks() -> None:
    policy = AddressPolicy(("status.internal", "10.0.0.0/8", "127.0.0.1", "fd00::/8"))
    assert policy.host_allowed("Status.Internal.") and not policy.host_allowed("other.internal")
    assert policy.ip_allowed("10.200.0.1") and policy.ip_allowed("::ffff:10.0.0.1")
    assert policy.ip_allowed("127.0.0.1") and not policy.ip_allowed("127.0.0.2")
    assert policy.ip_allowed("fd00::5") and not policy.ip_allowed("fc00::5")
    assert not policy.ip_allowed("192.168.0.1")


def test_the_hosts_own_public_address_is_internal_unless_its_address_is_allowed() -> None:
    """A request to the host's own public address is routed locally, past a host firewall (Mattermost's
    IsOwnIP): only an address or network in the list opens it, not a host name."""
    mine = frozenset({ipaddress.ip_address("203.0.114.7")})
    assert AddressPolicy(own=lambda: frozenset()).ip_allowed("203.0.114.7")
    assert not AddressPolicy(own=lambda: mine).ip_allowed("203.0.114.7")
    assert AddressPolicy(("203.0.114.7",), own=lambda: mine).ip_allowed("203.0.114.7")
    assert AddressPolicy(own=lambda: mine).ip_allowed("8.8.8.8")


def test_own_addresses_are_read_from_the_kernel() -> None:
    found = own_addresses()
    if Path("/proc/net/fib_trie").exists():
        assert ipaddress.ip_address("127.0.0.1") in found
    if Path("/proc/net/if_inet6").exists() and Path("/proc/net/if_inet6").read_text().strip():
        assert any(ip.version == 6 for ip in found)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[str]]]:
    got: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(request.host)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/hook", handle)
    async with serve(app) as url:
        yield int(url.rsplit(":", 1)[1]), got


async def send(allow: tuple[str, ...], url: str) -> tuple[int, bool, str]:
    poster = HttpPoster(timeout_s=5, policy=AddressPolicy(allow))
    try:
        result = await poster.send("POST", url, b"{}", {})
    finally:
        await poster.close()
    return result.status, result.forbidden, result.error


async def test_a_name_resolving_to_loopback_is_refused_unless_allowed(receiver: tuple[int, list[str]]) -> None:
    port, got = receiver
    status, forbidden, error = await send((), f"http://localhost:{port}/hook")
    assert (status, forbidden) == (0, True) and "localhost" in error and "internal address" in error
    status, forbidden, error = await send((), f"http://127.0.0.1:{port}/hook")
    assert (status, forbidden) == (0, True) and "127.0.0.1" in error
    assert got == []  # nothing reached the receiver
    assert (await send(("localhost",), f"http://localhost:{port}/hook"))[:2] == (204, False)
    assert (await send(("127.0.0.0/8",), f"http://localhost:{port}/hook"))[:2] == (204, False)
    assert (await send(("127.0.0.1",), f"http://127.0.0.1:{port}/hook"))[:2] == (204, False)
    assert len(got) == 3


async def test_without_a_policy_everything_is_reachable(receiver: tuple[int, list[str]]) -> None:
    port, got = receiver
    poster = HttpPoster(timeout_s=5)
    try:
        assert (await poster.send("POST", f"http://127.0.0.1:{port}/hook", b"{}", {})).status == 204
    finally:
        await poster.close()
    assert len(got) == 1
