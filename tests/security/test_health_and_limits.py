"""Honest health, a database that fails answered with 503 rather than 500, a start-up on a database the bot
cannot write refused in one line, and random API tokens that cannot make the bot hammer Mattermost."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.exc import OperationalError

from bot.models import MattermostError
from sandbox import Sandbox
from storage import health
from tests.conftest import Api
from tests.e2e.conftest import World
from tests.e2e.test_bot_cli import make_bot, run_cli


async def healthz(world: World) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{world.bot.url}/healthz") as resp:
        return resp.status, await resp.json()


def disk_full(*_: Any) -> None:
    raise OperationalError("INSERT INTO bot_heartbeats ...", {}, Exception("database or disk is full"))


async def test_healthz_says_503_and_why_when_the_database_or_mattermost_fails(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    status, body = await healthz(world)
    assert status == 200 and body["checks"]["database"] and body["checks"]["mattermost"], body
    monkeypatch.setattr(health, "beat", disk_full)
    status, body = await healthz(world)
    assert status == 503 and body["checks"]["database"] is False
    assert any("database or disk is full" in p for p in body["problems"]), body
    monkeypatch.undo()
    assert (await healthz(world))[0] == 200
    world.bot._mattermost_ok_at = float("-inf")  # the last good answer is older than the probe interval

    async def unreachable() -> Any:
        raise MattermostError(0, "gateway.connection_error", "connection refused", "", "GET", "/users/me")

    monkeypatch.setattr(world.bot.ctx.gateway, "me", unreachable)
    status, body = await healthz(world)
    assert status == 503 and body["checks"]["mattermost"] is False
    assert any(p.startswith("mattermost:") and "connection refused" in p for p in body["problems"]), body


async def test_the_api_answers_503_while_the_database_is_down(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await world.runs_json("alice"))[0] == 200
    real_run = world.bot.ctx.db.run

    async def down(fn: Any, *args: Any, **kw: Any) -> Any:
        if getattr(fn, "__module__", "").startswith("storage.runs"):
            raise OperationalError("SELECT ...", {}, Exception("could not connect to server"))
        return await real_run(fn, *args, **kw)

    monkeypatch.setattr(world.bot.ctx.db, "run", down)
    status, body = await world.runs_json("alice")
    assert status == 503 and "database" in body["error"], body


async def test_starting_on_a_database_the_bot_cannot_write_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with Sandbox(admin_token="admintoken") as sb, aiohttp.ClientSession() as session:
        api = Api(session, sb.url, sb.admin_token)
        _, team, _ = await api.post("/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
        token = await make_bot(api, team["id"], "system_user system_admin")
        code, out, err = await run_cli("run", env={
            "BOT_MATTERMOST_URL": sb.url, "BOT_MATTERMOST_TOKEN": token, "BOT_SERVER_LISTEN": "127.0.0.1:0",
            # Not even root may make a folder under /proc.
            "BOT_STORAGE_URL": "sqlite:////proc/no-such-place/playbooks.db", "BOT_PLAYBOOKS_DIR": str(tmp_path)})
    assert code == 2, err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("cannot start:")]
    assert "cannot open the database sqlite:////proc/no-such-place/playbooks.db" in line, line


async def test_random_api_tokens_cost_at_most_ten_mattermost_calls_a_minute(world: World,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = world.bot.ctx.gateway.whoami

    async def counted(token: str) -> Any:
        calls.append(token)
        return await real(token)

    assert (await world.runs_json("alice"))[0] == 200  # alice used the API a moment ago
    monkeypatch.setattr(world.bot.ctx.gateway, "whoami", counted)
    statuses = []
    async with aiohttp.ClientSession() as session:
        for n in range(300):
            async with session.get(f"{world.bot.url}/api/v0/runs",
                                   headers={"Authorization": f"Bearer random{n:04d}"}) as resp:
                statuses.append(resp.status)
        # A token refused a moment ago is refused again without asking Mattermost.
        async with session.get(f"{world.bot.url}/api/v0/runs", headers={"Authorization": "Bearer random0000"}) as r:
            assert r.status == 401
    assert len(calls) == 10
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    # Someone the bot knows already is not held up by it (a new caller from that address waits a minute).
    assert (await world.runs_json("alice"))[0] == 200
