"""Outgoing webhooks: what a receiver gets (run + event, signed), retries with backoff, a person's action
never waiting for them, and failing URLs shown by `python -m bot check`.

The real dispatcher, storage and HTTP client (bot.outbound.HttpPoster) against a tiny aiohttp receiver on
port 0; the backoff's sleep is injected and recorded, so nothing here waits out a delay.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from sqlmodel import select

from bot.__main__ import _check
from bot.actions import FinishDialog, UpdateDialog
from bot.clock import iso
from bot.config import load_settings
from bot.outbound import HttpPoster
from bot.router import DialogSubmission, NoReply
from handlers.webhooks import STOPPED, Webhooks
from sandbox import Sandbox
from storage import webhooks as webhook_rows
from storage.models import StatusUpdate, WebhookStatus
from tests.e2e.conftest import INCIDENT, ONBOARDING
from tests.handlers.commands_world import Env, make_env

SECRET = b"webhook-test-secret"


class Receiver:
    """Answers each POST with the next scripted status (then 200); records headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses: list[int | tuple[int, dict[str, str]]] = []
        self.gate: asyncio.Event | None = None  # when set, answers wait for it
        self.arrived = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        scripted = self.statuses.pop(0) if self.statuses else 200
        status, headers = scripted if isinstance(scripted, tuple) else (scripted, {})
        return web.Response(status=status, headers=headers)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in self.requests if p == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield rec
    finally:
        if rec.gate is not None:
            rec.gate.set()
        await runner.cleanup()


def closed_port_url() -> str:
    """A URL nobody listens on: bind a port, then free it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def envs() -> AsyncIterator[list[Env]]:
    made: list[Env] = []
    yield made
    for env in made:
        await env.ctx.hooks.close()


async def hooked_env(tmp_path: Path, envs: list[Env], *, on_start: list[str] = (), on_update: list[str] = (),  # type: ignore[assignment]
                     on_finish: list[str] = (), sleep: Sleeps | None = None,  # type: ignore[assignment]
                     real_sleep: bool = False) -> Env:
    playbook = INCIDENT + "\n[webhooks]\n" + "".join(
        f"{key} = {json.dumps(list(urls))}\n"
        for key, urls in (("on_start", on_start), ("on_status_update", on_update), ("on_finish", on_finish)))
    env = await make_env(tmp_path, {"incident": playbook, "onboarding": ONBOARDING})
    env.ctx.hooks = Webhooks(env.ctx, HttpPoster(timeout_s=5), secret=SECRET,
                             sleep=None if real_sleep else (sleep or Sleeps()))
    envs.append(env)
    return env


def verify(headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute the HMAC over "<timestamp>.<body>" with the shared secret."""
    expected = hmac.new(SECRET, headers["X-Playbooks-Timestamp"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Playbooks-Signature"])


async def submit_update(env: Env, run_id: str, message: str, who: str = "alice", **extra: Any) -> Any:
    user = env.users[who]
    sub = DialogSubmission(user.id, env.town.id, env.team_id, "status_update", UpdateDialog(run_id),
                           {"message": message, "reminder": "30m", **extra})
    return await env.dispatcher.dialog(sub, env.ctx)


async def statuses(env: Env) -> dict[str, WebhookStatus]:
    def read(session: Any) -> dict[str, WebhookStatus]:
        rows = session.exec(__import__("sqlmodel").select(WebhookStatus)).all()
        for row in rows:
            session.expunge(row)
        return {r.url: r for r in rows}

    return await env.ctx.db.run(read, readonly=True)


async def test_start_update_and_finish_each_post_the_run_and_event_signed_with_the_secret(
        tmp_path: Path, receiver: Receiver, envs: list[Env]) -> None:
    env = await hooked_env(tmp_path, envs, on_start=[f"{receiver.url}/start"], on_update=[f"{receiver.url}/update"],
                           on_finish=[f"{receiver.url}/finish"])
    view = await env.start()
    await env.ctx.tasks.drain()
    [started] = receiver.bodies("/start")
    assert started["id"] == view.run.id and started["name"] == "Database down"
    assert started["status"] == "in_progress" and started["channel_id"] == view.run.channel_id
    assert started["event"] == {"type": "run_started", "at": iso(env.clock.now_ms()),
                                "user_id": view.run.creator_id, "payload": {}}
    assert started["details_url"] == f"{env.ctx.public_url}/api/v0/runs/{view.run.id}"

    env.clock.advance(60)
    assert isinstance(await submit_update(env, view.run.id, "Failover done"), NoReply)
    await env.ctx.tasks.drain()
    [updated] = receiver.bodies("/update")
    assert updated["event"]["type"] == "status_updated"
    assert updated["event"]["user_id"] == env.users["alice"].id
    [update_row] = await env.ctx.db.run(lambda s: list(s.exec(select(StatusUpdate))), readonly=True)
    # The update's id says which update it is (a receiver can tell a retried delivery from a new update).
    assert updated["event"]["payload"] == {"message": "Failover done", "reminder_s": 1800,
                                           "update_id": update_row.id}
    assert [u["message"] for u in updated["status_updates"]] == ["Failover done"]

    sub = DialogSubmission(env.users["alice"].id, env.town.id, env.team_id, "finish_run",
                           FinishDialog(view.run.id), {})
    assert isinstance(await env.dispatcher.dialog(sub, env.ctx), NoReply)
    await env.ctx.tasks.drain()
    [finished] = receiver.bodies("/finish")
    assert finished["event"]["type"] == "run_finished" and finished["status"] == "finished"

    for path, headers, body in receiver.requests:
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Playbooks-Event"] == json.loads(body)["event"]["type"]
        at = json.loads(body)["event"]["at"]  # the clock's time when it happened, in seconds
        assert iso(int(headers["X-Playbooks-Timestamp"]) * 1000) == at
        assert verify(headers, body), path
        assert not verify(headers, body.replace(b"Database down", b"Database d0wn"))  # tampering shows
    assert len({h["X-Playbooks-Delivery"] for _, h, _ in receiver.requests}) == 3
    assert all(s.ok and s.failures == 0 for s in (await statuses(env)).values())


async def test_5xx_and_429_are_retried_with_backoff_and_one_delivery_id(tmp_path: Path, receiver: Receiver,
                                                                      envs: list[Env]) -> None:
    sleeps = Sleeps()
    env = await hooked_env(tmp_path, envs, on_start=[f"{receiver.url}/start"], sleep=sleeps)
    receiver.statuses = [500, 503, (429, {"Retry-After": "30"})]
    await env.start()
    await env.ctx.tasks.drain()
    assert len(receiver.requests) == 4
    assert sleeps.delays == [1.0, 4.0, 30.0]  # the backoff, and a longer Retry-After wins over 16 s
    assert len({h["X-Playbooks-Delivery"] for _, h, _ in receiver.requests}) == 1
    assert all(verify(h, b) for _, h, b in receiver.requests)
    status = (await statuses(env))[f"{receiver.url}/start"]
    assert status.ok and status.failures == 0 and status.last_event == "run_started"


async def test_a_refusing_url_is_retried_then_recorded_failing_and_other_urls_still_get_it(
        tmp_path: Path, receiver: Receiver, envs: list[Env]) -> None:
    sleeps = Sleeps()
    gone = closed_port_url()
    env = await hooked_env(tmp_path, envs, on_start=[gone, f"{receiver.url}/start"], sleep=sleeps)
    await env.start()
    await env.ctx.tasks.drain()
    assert sleeps.delays == [1.0, 4.0, 16.0, 64.0]  # five attempts, then it gives up
    assert len(receiver.bodies("/start")) == 1
    rows = await statuses(env)
    assert rows[f"{receiver.url}/start"].ok
    assert not rows[gone].ok and rows[gone].failures == 1 and rows[gone].error
    assert rows[gone].last_at == env.clock.now_ms() and rows[gone].last_event == "run_started"


async def test_a_4xx_answer_is_final_and_counts_as_failing_until_a_delivery_succeeds(
        tmp_path: Path, receiver: Receiver, envs: list[Env]) -> None:
    sleeps = Sleeps()
    url = f"{receiver.url}/update"
    env = await hooked_env(tmp_path, envs, on_update=[url], sleep=sleeps)
    view = await env.start()
    receiver.statuses = [404, 410]
    for n in range(2):
        await submit_update(env, view.run.id, f"Update {n}")
        await env.ctx.tasks.drain()
    assert sleeps.delays == [] and len(receiver.requests) == 2
    row = (await statuses(env))[url]
    assert not row.ok and row.failures == 2 and row.error == "HTTP 410"
    failures = env.ctx.metrics.webhook_failures.labels("status_updated")
    assert failures._value.get() == 2  # /metrics: playbooks_webhook_delivery_failures_total{event=...}
    await submit_update(env, view.run.id, "Update 3")
    await env.ctx.tasks.drain()
    row = (await statuses(env))[url]
    assert row.ok and row.failures == 0 and row.error == ""
    assert failures._value.get() == 2


async def test_the_person_is_answered_and_the_update_posted_while_the_receiver_still_hangs(
        tmp_path: Path, receiver: Receiver, envs: list[Env]) -> None:
    url = f"{receiver.url}/update"
    env = await hooked_env(tmp_path, envs, on_update=[url])
    view = await env.start()
    receiver.gate = asyncio.Event()
    reply = await asyncio.wait_for(submit_update(env, view.run.id, "Rolled back"), 5)
    assert isinstance(reply, NoReply)  # the dialog closes at once
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    await asyncio.wait_for(env.ctx.hooks.emit("status_updated", view.run.id), 1)  # emit never waits either
    # The webhook is at the receiver, unanswered; the update is already in the channel.
    assert any("Rolled back" in p.message for p in env.gw.posts_in(view.run.channel_id))
    assert url not in await statuses(env)
    receiver.gate.set()
    await env.ctx.tasks.drain()
    assert (await statuses(env))[url].ok


async def test_stopping_gives_up_a_retry_instead_of_waiting_out_the_backoff(
        tmp_path: Path, receiver: Receiver, envs: list[Env]) -> None:
    url = f"{receiver.url}/start"
    env = await hooked_env(tmp_path, envs, on_start=[url], real_sleep=True)  # the real 1 s, 4 s, ... backoff
    view = await env.start()  # delivered at once (200)
    receiver.requests.clear()
    receiver.arrived.clear()
    receiver.statuses = [503]
    await env.ctx.hooks.emit("run_started", view.run.id)
    await asyncio.wait_for(receiver.arrived.wait(), 5)  # got a 503; now it waits 1 s to retry
    await asyncio.wait_for(env.ctx.hooks.close(), 0.9)  # well under the 1 s backoff
    assert len(receiver.requests) == 1
    row = (await statuses(env))[url]
    assert not row.ok and STOPPED in row.error and "HTTP 503" in row.error


async def test_python_m_bot_check_lists_the_failing_url_until_it_works_again(
        tmp_path: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str],
        envs: list[Env]) -> None:
    gone = closed_port_url()
    env = await hooked_env(tmp_path, envs, on_start=[gone])
    await env.start()
    await env.ctx.tasks.drain()
    settings = load_settings(tmp_path / "absent.toml", env={
        "BOT_MATTERMOST_URL": sandbox.url, "BOT_MATTERMOST_TOKEN": sandbox.admin_token,
        "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/bot.db", "BOT_PLAYBOOKS_DIR": str(env.ctx.playbooks
                                                                                   ["incident"].path.parent)})
    assert await _check(settings) == 1
    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if "webhook" in x]
    assert line.startswith(f"[FAIL] webhook {gone}: last run_started at {iso(env.clock.now_ms())} failed (")
    assert line.endswith("1 failed delivery in a row")

    await env.ctx.db.run(webhook_rows.record_webhook, gone, "status_updated", env.clock.now_ms(), True)
    await _check(settings)
    assert "webhook" not in capsys.readouterr().out
