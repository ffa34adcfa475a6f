"""Fault injection: Sandbox handles and the admin-only /sandbox routes."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

TIMEOUT = 3.0


async def test_fail_answers_the_next_matching_calls_then_recovers(sandbox, api):
    sandbox.fail("GET", r"/api/v4/users/me", status=503, times=2)
    for _ in range(2):
        status, body, headers = await api.get("/users/me")
        assert status == 503 and body["id"] == "app.sandbox.injected_fault.app_error"
        assert body["request_id"] == headers["X-Request-ID"]
    status, body, _ = await api.get("/users/me")
    assert status == 200 and body["username"] == "sysadmin"


async def test_fail_with_429_is_plain_text(sandbox, api):
    sandbox.fail("*", r"/api/v4/users/.*", status=429)
    status, body, headers = await api.get("/users/me")
    assert (status, body) == (429, "limit exceeded") and headers["Retry-After"]


async def test_rate_limit_handle(sandbox, api):
    sandbox.set_rate_limit(1, burst=1)
    statuses = [(await api.get("/users/me"))[0] for _ in range(4)]
    assert 429 in statuses and statuses[0] == 200
    sandbox.set_rate_limit(None)
    assert (await api.get("/users/me"))[0] == 200


async def test_refuse_connections_really_refuses_tcp(sandbox, api):
    await sandbox.refuse_connections(60)
    assert not sandbox.accepting.is_set()
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientConnectionError):
            await fresh.get(sandbox.url + "/api/v4/system/ping")
    await sandbox.accept_connections()
    await asyncio.wait_for(sandbox.accepting.wait(), TIMEOUT)
    async with aiohttp.ClientSession() as fresh:
        async with fresh.get(sandbox.url + "/api/v4/system/ping") as resp:
            assert resp.status == 200


async def test_refuse_connections_reopens_by_itself(sandbox):
    await sandbox.refuse_connections(0.05)
    await asyncio.wait_for(sandbox.accepting.wait(), TIMEOUT)
    async with aiohttp.ClientSession() as fresh:
        async with fresh.get(sandbox.url + "/api/v4/system/ping") as resp:
            assert resp.status == 200


async def test_testing_routes_need_the_admin_token(sandbox, api):
    async with aiohttp.ClientSession() as s:
        async with s.post(sandbox.url + "/sandbox/faults", json={"method": "GET", "path": ".*"}) as resp:
            assert resp.status == 401
        async with s.post(sandbox.url + "/sandbox/faults", json={"method": "GET", "path": "/api/v4/users/me",
                                                                 "status": 500},
                          headers={"Authorization": f"Bearer {sandbox.admin_token}"}) as resp:
            assert resp.status == 201
    assert (await api.get("/users/me"))[0] == 500
    assert (await api.get("/users/me"))[0] == 200


async def test_fail_after_lets_the_first_calls_through(sandbox, api):
    sandbox.fail("GET", r"/api/v4/users/me", status=500, times=1, after=2)
    assert [(await api.get("/users/me"))[0] for _ in range(4)] == [200, 200, 500, 200]


async def test_a_handled_fault_does_the_work_and_loses_the_answer(sandbox, api):
    status, team, _ = await api.post("/teams", {"name": "lost", "display_name": "Lost", "type": "O"})
    assert status == 201, team
    sandbox.fail("POST", r"/api/v4/channels", status=500, handled=True)
    body = {"team_id": team["id"], "name": "made-anyway", "display_name": "Made anyway", "type": "O"}
    status, err, _ = await api.post("/channels", body)
    assert status == 500 and err["id"] == "app.sandbox.injected_fault.app_error"
    status, channel, _ = await api.get(f"/teams/{team['id']}/channels/name/made-anyway")
    assert status == 200 and channel["display_name"] == "Made anyway"  # the server did act


async def test_the_fault_route_takes_after_and_handled(sandbox, api):
    async with aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
        async with s.post(sandbox.url + "/sandbox/faults", headers=headers,
                          json={"method": "GET", "path": "/api/v4/users/me", "after": 1, "handled": True}) as resp:
            assert resp.status == 201 and (await resp.json())["after"] == 1
        async with s.post(sandbox.url + "/sandbox/faults", headers=headers,
                          json={"method": "GET", "path": ".*", "handled": "yes"}) as resp:
            assert resp.status == 400
    assert [(await api.get("/users/me"))[0] for _ in range(3)] == [200, 500, 200]
