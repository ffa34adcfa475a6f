"""`python -m sandbox`: argument errors, the printed URL and tokens, and a clean stop on SIGTERM."""
from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest


async def run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


@pytest.mark.parametrize("args,needle", [
    (["--port", "eighty"], "--port"),
    (["--port", "70000"], "--port"),
    (["--site-url", "chat.example.com"], "--site-url"),
    (["--bogus"], "--bogus"),
])
async def test_bad_arguments_one_line_exit_2(args: list[str], needle: str) -> None:
    proc = await run(*args)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2
    assert len(lines) == 1 and needle in lines[0]


async def test_demo_serves_and_stops_on_sigterm() -> None:
    proc = await run("--port", "0", "--demo")
    try:
        url_line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        admin_line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        demo_line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = url_line.split()[-1]
        admin_token = admin_line.split()[-1]
        bot_token = demo_line.split()[-1]
        assert url.startswith("http://127.0.0.1:") and "sysadmin" in admin_line
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/api/v4/system/ping") as resp:
                assert resp.status == 200 and (await resp.json())["status"] == "OK"
            headers = {"Authorization": f"Bearer {bot_token}"}
            async with session.get(f"{url}/api/v4/users/me", headers=headers) as resp:
                me = await resp.json()
                assert me["username"] == "playbooks" and me["is_bot"] is True
            async with session.get(f"{url}/api/v4/users/me/teams", headers=headers) as resp:
                assert [t["name"] for t in await resp.json()] == ["demo"]
            headers = {"Authorization": f"Bearer {admin_token}"}
            async with session.post(f"{url}/api/v4/users/usernames", json=["alice", "bob", "carol"],
                                    headers=headers) as resp:
                assert len(await resp.json()) == 3
            async with session.post(f"{url}/api/v4/users/login",
                                    json={"login_id": "alice", "password": "demo"}) as resp:
                assert resp.status == 200 and resp.headers["Token"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err


async def test_given_admin_token_is_not_printed() -> None:
    proc = await run("--port", "0", "--admin-token", "fixedtoken123")
    try:
        url_line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = url_line.split()[-1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/api/v4/users/me",
                                   headers={"Authorization": "Bearer fixedtoken123"}) as resp:
                assert (await resp.json())["username"] == "sysadmin"
    finally:
        proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and b"fixedtoken123" not in out
