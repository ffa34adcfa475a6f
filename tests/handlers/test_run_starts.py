"""A run start as a recorded sequence, over the fake gateway: retries with backoff on the injected clock,
roll-back, resuming what a dead process left (once, by one process), and finding what it made but never
recorded instead of making it twice. The real processes are in tests/e2e/test_start_crash.py."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import handlers.runs as run_start
from handlers.leased import holder_gone, holder_name
from handlers.runs import (
    JOB,
    LEASE_MS,
    MAX_ATTEMPTS,
    PART_PROP,
    RUN_PROP,
    StartService,
    backoff_s,
    execute_run,
    prepare_run,
)
from storage import runs, starts
from storage.models import RunStart
from tests.handlers.commands_world import Env, make_env


@pytest.fixture
async def env(tmp_path: Path) -> Env:
    return await make_env(tmp_path)


class SimulatedCrash(BaseException):
    """Stands for SIGKILL at a crash point: nothing after it runs, no lease is let go."""


def crash_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    def crash(ctx: Any, name: str, run_name: str) -> None:
        if name == point:
            raise SimulatedCrash(name)

    monkeypatch.setattr(run_start, "_crash_point", crash)


def service(env: Env) -> StartService:
    job = env.ctx.jobs[JOB]
    assert isinstance(job, StartService)
    return job


def plan(env: Env, name: str = "Database down", playbook: str = "incident") -> run_start.RunPlan:
    return prepare_run(env.ctx, env.ctx.playbooks[playbook], name, "", env.users["alice"].id, env.team_id,
                       env.town.id, env.gw.response_url(env.users["alice"].id, env.town.id))


def bot_posts(env: Env, channel_id: str) -> list[Any]:
    return [p for p in env.gw.posts_in(channel_id) if p.user_id == env.gw.bot_id]


def told(env: Env) -> list[str]:
    return [e.message for e in env.gw.ephemerals if e.user_id == env.users["alice"].id]


async def stored(env: Env, run_id: str) -> tuple[RunStart, runs.RunView]:
    start = await env.ctx.db.run(starts.get_start, run_id)
    view = await env.ctx.db.run(runs.load_view, run_id)
    assert start is not None and view is not None
    return start, view


async def test_each_step_is_recorded_and_the_run_is_visible_only_once_complete(env: Env) -> None:
    outcome = await execute_run(env.ctx, plan(env))
    start, view = await stored(env, outcome.run_id)
    assert (start.state, start.told, start.completed, start.lease_owner) == ("done", True, True, "")
    assert start.channel_id == view.run.channel_id and start.owner_added and start.members_done
    assert start.admin_done and start.filed and start.broadcasts_done
    assert start.posts["overview"] == view.run.overview_post_id
    assert [start.posts[f"checklist:{c.id}"] for c, _ in view.checklists] == [c.post_id for c, _ in view.checklists]
    assert start.posts["welcome"] and len(view.run.broadcast_threads) == 1
    assert view.run.status == "in_progress"
    assert any("has started" in t for t in told(env))
    # Each post it made carries its marker (until a later edit rewrites its props: the overview's was
    # redrawn at once, to show the reminder armed at completion).
    marked = {p.props.get(PART_PROP) for p in bot_posts(env, view.run.channel_id) if p.props.get(RUN_PROP)}
    assert {"welcome", *(f"checklist:{c.id}" for c, _ in view.checklists)} <= marked


async def test_a_500_on_a_post_is_retried_after_a_backoff_on_the_clock(env: Env) -> None:
    env.gw.fail_next("create_post", 500, "app.post.save.app_error")  # the overview
    outcome = await execute_run(env.ctx, plan(env))
    start, view = await stored(env, outcome.run_id)
    assert (start.state, start.step, start.attempts) == ("starting", "posts", 1)
    assert start.next_attempt_at == env.clock.now_ms() + 1000 and start.lease_owner == ""
    assert view.run.status == "starting"
    assert await service(env).run_due() == 0  # the backoff has not run out
    assert "Database down" not in await env.type("alice", "/playbook list")  # (the clock moves 1 s)
    assert await service(env).run_due() == 1
    start, view = await stored(env, outcome.run_id)
    assert start.state == "done" and view.run.status == "in_progress"
    assert len([p for p in bot_posts(env, view.run.channel_id) if "Database down" in p.message]) == 1
    assert "Database down" in await env.type("alice", "/playbook list")


async def test_retries_are_bounded_then_the_start_is_rolled_back_and_the_starter_told(env: Env) -> None:
    env.gw.fail_next("create_post", 503, "app.post.save.app_error", times=1000)
    outcome = await execute_run(env.ctx, plan(env))
    delays = []
    for _ in range(MAX_ATTEMPTS - 1):
        start, _ = await stored(env, outcome.run_id)
        delays.append((start.next_attempt_at - env.clock.now_ms()) / 1000)
        env.clock.set(start.next_attempt_at)
        await service(env).run_due()
    assert delays == [backoff_s(n) for n in range(1, MAX_ATTEMPTS)] == [1, 2, 4, 8, 16]
    start, view = await stored(env, outcome.run_id)
    assert (start.state, view.run.status) == ("failed", "failed")
    assert env.gw.world.channels[start.channel_id].delete_at  # archived again
    [text] = [t for t in told(env) if "could not be started" in t]
    assert "post the overview and the checklists" in text and "6 tries" in text and "archived again" in text
    assert await env.ctx.db.run(starts.unfinished) == []
    assert "Database down" not in await env.type("alice", "/playbook list")


async def test_a_final_4xx_on_a_step_the_run_can_do_without_is_reported_and_not_retried(env: Env) -> None:
    env.gw.fail_next("set_channel_admin", 403, "api.context.permissions.app_error")
    outcome = await execute_run(env.ctx, plan(env))
    start, view = await stored(env, outcome.run_id)
    assert start.state == "done" and start.attempts == 0
    assert any("make the owner a channel admin" in p for p in start.problems)
    notices = [p.message for p in bot_posts(env, view.run.channel_id) if "could not be added" in p.message]
    assert len(notices) == 1 and "403" in notices[0]


@pytest.mark.parametrize("point", ["overview:sent", "checklist2:sent", "welcome:sent", "channel:sent",
                                   "members:sent", "broadcast:sent", "told:sent"])
async def test_what_a_dead_process_did_but_never_recorded_is_found_not_done_twice(
        env: Env, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    crash_at(monkeypatch, point)
    with pytest.raises(SimulatedCrash):
        await execute_run(env.ctx, plan(env))
    monkeypatch.setattr(run_start, "_crash_point", lambda *a: None)
    [left] = await env.ctx.db.run(starts.unfinished)
    assert left.lease_owner == service(env).holder  # still held by the "dead" process
    # Another process takes it up once the lease runs out.
    other = StartService(env.ctx)
    assert await other.run_due() == 0
    env.clock.advance(LEASE_MS / 1000 + 1)
    assert await other.run_due() == 1
    start, view = await stored(env, left.run_id)
    assert start.state == "done"
    channels = [c for c in env.gw.world.channels.values() if c.display_name.endswith("Database down")]
    assert [c.id for c in channels] == [view.run.channel_id]
    posts = bot_posts(env, view.run.channel_id)
    assert [p.id for p in posts if "Database down" in p.message] == [view.run.overview_post_id]
    for checklist, _ in view.checklists:
        assert [p.id for p in posts if checklist.title in p.message] == [checklist.post_id]
    assert sum(1 for p in posts if "Read the runbook first." in p.message) == 1
    town = [p for p in env.gw.posts_in(env.town.id) if p.user_id == env.gw.bot_id]
    assert sum(1 for p in town if "Database down" in p.message) == 1
    assert 1 <= sum(1 for t in told(env) if "has started" in t) <= 2  # told again only if the tell was cut


async def test_two_processes_taking_up_the_same_start_do_it_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(monkeypatch, "prepare")
    with pytest.raises(SimulatedCrash):
        await execute_run(env.ctx, plan(env))
    monkeypatch.setattr(run_start, "_crash_point", lambda *a: None)
    env.clock.advance(LEASE_MS / 1000 + 1)
    one, two = StartService(env.ctx), StartService(env.ctx)
    assert sorted(await asyncio.gather(one.run_due(), two.run_due())) == [0, 1]
    [start] = [s for s in await env.ctx.db.run(_all_starts)]
    _, view = await stored(env, start.run_id)
    assert start.state == "done"
    assert len([p for p in bot_posts(env, view.run.channel_id) if "Database down" in p.message]) == 1


def _all_starts(session: Any) -> list[RunStart]:
    from sqlmodel import select

    return list(session.exec(select(RunStart)))


async def test_a_slow_holder_that_lost_its_lease_stops_without_touching_the_start(env: Env) -> None:
    outcome = await execute_run(env.ctx, plan(env))
    now = env.clock.now_ms()
    assert not await env.ctx.db.run(starts.record, outcome.run_id, "someone|1|else", now, LEASE_MS,
                                    {"channel_id": "x" * 26})
    won = await env.ctx.db.run(starts.claim, outcome.run_id, "", 0, "me|1|x", now, LEASE_MS)
    assert won is None  # finished starts are nobody's to claim


async def test_a_claim_is_a_compare_and_set_on_the_lease_seen(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(monkeypatch, "begin")
    with pytest.raises(SimulatedCrash):
        await execute_run(env.ctx, plan(env))
    [row] = await env.ctx.db.run(starts.unfinished)
    now = env.clock.now_ms() + LEASE_MS + 1
    first = await env.ctx.db.run(starts.claim, row.run_id, row.lease_owner, row.lease_until, "a|1|a", now, LEASE_MS)
    second = await env.ctx.db.run(starts.claim, row.run_id, row.lease_owner, row.lease_until, "b|1|b", now, LEASE_MS)
    assert first is not None and first.lease_owner == "a|1|a" and second is None
    assert await env.ctx.db.run(starts.record, row.run_id, "a|1|a", now, LEASE_MS, {"prepared": False})
    assert not await env.ctx.db.run(starts.record, row.run_id, "b|1|b", now, LEASE_MS, {"prepared": False})


async def test_a_starting_run_is_in_no_answer_and_its_buttons_say_it_is_still_starting(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.actions import CheckItem, FinishRun
    from bot.router import Click, Ephemeral, UserError
    from handlers.finish import finish_click
    from handlers.items import item_check

    crash_at(monkeypatch, "checklist1")  # the overview and Triage are out, the rest is not
    with pytest.raises(SimulatedCrash):
        await execute_run(env.ctx, plan(env))
    [left] = await env.ctx.db.run(starts.unfinished)
    start, view = await stored(env, left.run_id)
    assert view.run.status == "starting" and view.checklists[0][0].post_id
    text = await env.type("alice", "/playbook info", channel_id=start.channel_id)
    assert "Database down" not in text
    assert "Database down" not in await env.type("alice", "/playbook list")
    item = view.checklists[0][1][0]
    click = Click(env.users["bob"].id, "bob", start.channel_id, env.team_id, view.checklists[0][0].post_id, "",
                  CheckItem(view.run.id, item.id))
    reply = await item_check(click, env.ctx)
    assert isinstance(reply, Ephemeral) and "still starting" in reply.text
    finish = Click(env.users["alice"].id, "alice", start.channel_id, env.team_id, view.run.overview_post_id, "",
                   FinishRun(view.run.id))
    with pytest.raises(UserError) as refused:  # shown to alice as the click's ephemeral answer
        await finish_click(finish, env.ctx)
    assert "still starting" in str(refused.value)
    _, after = await stored(env, left.run_id)
    assert after.checklists[0][1][0].state == "open" and after.run.status == "starting"
    status, _ = await handlers_api_get(env, left.run_id)
    assert status == 404


async def handlers_api_get(env: Env, run_id: str) -> tuple[int, Any]:
    from bot.router import HttpRequest
    from handlers.api import get_run

    admin = env.users["root"]
    return await get_run(HttpRequest(admin, frozenset({env.team_id}), {}, {"run_id": run_id}), env.ctx)


def test_a_lease_holder_is_gone_only_when_surely_dead() -> None:
    import os
    import socket

    here = socket.gethostname()
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = int(proc.stdout)  # exited and reaped: no such process now (unless the pid came round again)
    assert holder_gone(holder_name(dead)) or os.path.exists(f"/proc/{dead}")
    assert not holder_gone(holder_name(1)) or not os.path.exists("/proc/1")
    assert holder_gone(holder_name())  # our pid, from a process before us (no live service holds it)
    # Another pid space (another container with the same host name, another machine, another boot): pids
    # there mean other processes, so only the lease's expiry tells.
    space = holder_name(dead).split("|")[1]
    assert not holder_gone(f"{here}|{'0' * 16 if space != '0' * 16 else '1' * 16}|{dead}|abc")
    assert not holder_gone(f"{here}|{os.getpid()}|abc")  # named before the pid space was in the name
    assert not holder_gone("garbage")


def test_two_containers_sharing_a_host_name_and_pid_1_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Containers sharing a host name (host networking, a fixed hostname) are both pid 1 in pid namespaces
    of their own: their pid spaces differ, so a holder "<host>|<space>|1|..." of the other one is never
    judged by our pid 1."""
    import os

    from handlers import leased

    ours = leased._pid_space()
    assert ours == leased._PID_SPACE
    real = os.readlink
    monkeypatch.setattr(os, "readlink", lambda path: "pid:[4026532999]" if path == "/proc/self/ns/pid"
                        else real(path))
    theirs = leased._pid_space()
    assert theirs != ours
    assert not holder_gone(holder_name(1).replace(f"|{ours}|", f"|{theirs}|"))
