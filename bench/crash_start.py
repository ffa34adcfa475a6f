"""Issue 11's convergence figures: a run start killed (SIGKILL) at a random step, then the bot restarted.

    .venv/bin/python bench/crash_start.py [--runs 20] [--seed 11] [--elsewhere]

The sandbox in its own process; the bot (`python -m bot run`, SQLite) killed by its test-only
`[testing] crash_at = "<point>@<run name>"` at a point drawn at random from every point of a start of a
playbook with 3 members, 2 checklists, a sidebar category, a welcome and a broadcast
(handlers/runs.py crash_points). The process started after a crash is also the next run's crashing one
(armed for that run only), so each run costs one process start.

Convergence = from spawning the restarted bot until the start is over in its rows (done and told, or
rolled back) and Mattermost shows exactly what they say: the run's channel once, alice, bob and carol in
it, the overview and each checklist posted exactly once and recorded, one broadcast. Polled every 20 ms
(the bot is another process; nothing else to wait on), from the spawn on (a start killed after its last
record has converged already). Printed: median and max, and how much of it the process start-up is
(spawn to "bot listening"). A restarted bot on the same machine sees at once that the lease's holder is
dead (no such pid); `--elsewhere` makes the dead lease look held from another machine, where only its
expiry tells, as when the bot comes back on another host.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox_proc import sandbox_process  # noqa: E402
from bot.playbooks.validation import parse_playbook  # noqa: E402
from handlers.runs import crash_points  # noqa: E402
from storage import runs, starts  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402

PLAYBOOK = """
title = "Incident response"
channel_name = "inc-{seq} {name}"
category = "Incidents"
owner = "alice"
members = ["bob", "carol"]
broadcast_channels = ["town-square"]
welcome = "Read the runbook first."

[[checklists]]
title = "Triage"
  [[checklists.items]]
  title = "Acknowledge the page"
  assignee = "owner"
  [[checklists.items]]
  title = "Open a bridge call"

[[checklists]]
title = "Resolve"
  [[checklists.items]]
  title = "Deploy the fix"
"""
DEADLINE_S = 30.0


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, f"{self.base}/api/v4{path}", json=body,
                                        headers={"Authorization": f"Bearer {self.token}"}) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


class Bot:
    """One `python -m bot run`; `listening` is set once it printed its address."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Spawn it and wait until it listens; the seconds that took."""
        t0 = time.perf_counter()
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=str(self.log.parent),
                env={**self.env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), DEADLINE_S)
            if not line:
                raise RuntimeError(f"the bot exited before listening; see {self.log}")
            if line.startswith(b"bot listening on "):
                return time.perf_counter() - t0

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


async def main(count: int, seed: int, elsewhere: bool = False) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    pb = parse_playbook(tomllib.loads(PLAYBOOK), playbook_id="incident", path="incident.toml")
    points = crash_points(pb)
    rng = random.Random(seed)
    plan = [rng.choice(points) for _ in range(count)]
    async with sandbox_process("benchadmin") as url, aiohttp.ClientSession() as session:
        admin = Api(session, url, "benchadmin")
        _, team = await admin.call("POST", "/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
        people: dict[str, tuple[str, Api]] = {}
        for name in ("alice", "bob", "carol"):
            _, user = await admin.call("POST", "/users", {"username": name, "email": f"{name}@b.example",
                                                          "password": "Password1!"})
            await admin.call("POST", f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": user["id"]})
            _, tok = await admin.call("POST", f"/users/{user['id']}/tokens", {"description": "bench"})
            people[name] = (user["id"], Api(session, url, tok["token"]))
        _, bot = await admin.call("POST", "/bots", {"username": "playbooks"})
        await admin.call("POST", f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": bot["user_id"]})
        await admin.call("PUT", f"/users/{bot['user_id']}/roles", {"roles": "system_user system_admin"})
        _, tok = await admin.call("POST", f"/users/{bot['user_id']}/tokens", {"description": "bot"})
        _, town = await admin.call("GET", f"/teams/{team['id']}/channels/name/town-square")
        (tmp / "playbooks").mkdir()
        (tmp / "playbooks" / "incident.toml").write_text(PLAYBOOK)
        db_url = f"sqlite:///{tmp}/bot.db"
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        base_env.update({"BOT_MATTERMOST_URL": url, "BOT_MATTERMOST_TOKEN": tok["token"],
                         "BOT_SERVER_LISTEN": "127.0.0.1:0", "BOT_STORAGE_URL": db_url,
                         "BOT_PLAYBOOKS_DIR": str(tmp / "playbooks"), "BOT_LOGGING_LEVEL": "INFO",
                         "PYTHONUNBUFFERED": "1"})

        def bot_for(n: int) -> Bot:
            env = dict(base_env)
            if n < count:
                env["BOT_TESTING_CRASH_AT"] = f"{plan[n]}@Crash {n + 1}"
            return Bot(env, tmp / f"bot-{n}.log")

        alice = people["alice"][1]
        results: list[dict[str, Any]] = []
        current = bot_for(0)
        await current.start()
        try:
            for n in range(count):
                name = f"Crash {n + 1}"
                await alice.call("POST", "/commands/execute",
                                 {"channel_id": town["id"], "command": f"/playbook run incident {name}"})
                assert current.proc is not None
                code = await asyncio.wait_for(current.proc.wait(), DEADLINE_S)
                if code != -signal.SIGKILL:
                    raise RuntimeError(f"run {n + 1}: the bot exited with {code}, not SIGKILL, at {plan[n]}")
                if elsewhere:
                    await asyncio.get_running_loop().run_in_executor(None, _as_if_elsewhere, db_url)
                t0 = time.perf_counter()
                current = bot_for(n + 1)
                watch = asyncio.create_task(converged(admin, db_url, name, {k: v[0] for k, v in people.items()},
                                                      bot["user_id"], town["id"], t0))
                listening = await current.start()
                state = await watch
                results.append({"point": plan[n], "converged_s": state[1], "start_up_s": listening,
                                "outcome": state[0]})
        finally:
            await current.stop()
    conv = [r["converged_s"] for r in results]
    up = [r["start_up_s"] for r in results]
    return {"runs": results, "converged_median_s": statistics.median(conv), "converged_max_s": max(conv),
            "start_up_median_s": statistics.median(up),
            "after_start_up_median_s": statistics.median([max(0.0, c - u) for c, u in zip(conv, up, strict=True)]),
            "elsewhere": elsewhere,
            "points": len(points), "distinct_points": len(set(plan))}


async def converged(admin: Api, db_url: str, name: str, people: dict[str, str], bot_id: str, town_id: str,
                    t0: float) -> tuple[str, float]:
    """Wait until the start is over in the rows and Mattermost shows exactly that; its outcome and the
    seconds from `t0` (a start that was over before the crash: at once)."""
    engine = make_engine(db_url)
    try:
        while True:
            state = await asyncio.get_running_loop().run_in_executor(None, _stored, engine, name)
            if state is not None and await _shown(admin, state, name, people, bot_id, town_id):
                return str(state["state"]), time.perf_counter() - t0
            if time.perf_counter() - t0 > DEADLINE_S:
                raise RuntimeError(f"{name}: not converged {DEADLINE_S} s after the restart: {state}")
            await asyncio.sleep(0.02)  # another process's progress: nothing to wait on but its rows
    finally:
        engine.dispose()


def _as_if_elsewhere(db_url: str) -> None:
    """Make the dead process's leases look held from another machine: nobody can tell it is dead, so the
    restarted bot must wait for the lease to run out (handlers/runs.py LEASE_MS)."""
    import sqlite3

    con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    try:
        con.execute("UPDATE run_starts SET lease_owner = 'another-machine|' || "
                    "substr(lease_owner, instr(lease_owner, '|') + 1) "
                    "WHERE lease_owner != '' AND state IN ('starting', 'rolling_back')")
        con.commit()
    finally:
        con.close()


def _stored(engine: Any, name: str) -> dict[str, Any] | None:
    with session_scope(engine, readonly=True) as session:
        from sqlmodel import select

        from storage.models import RunStart

        start = session.exec(select(RunStart).where(RunStart.name == name)).first()
        if start is None or start.state not in ("done", "failed"):
            return None
        view = runs.load_view(session, start.run_id)
        assert view is not None and starts.get_start(session, start.run_id) is not None
        return {"state": start.state, "channel_id": view.run.channel_id, "overview": view.run.overview_post_id,
                "checklists": [(c.title, c.post_id) for c, _ in view.checklists], "status": view.run.status,
                "participants": view.participant_ids}


async def _shown(admin: Api, state: dict[str, Any], name: str, people: dict[str, str], bot_id: str,
                 town_id: str) -> bool:
    if state["state"] == "failed":
        status, channel = await admin.call("GET", f"/channels/{state['channel_id']}")
        return not state["channel_id"] or (status == 200 and bool(channel["delete_at"]))
    status, body = await admin.call("GET", f"/channels/{state['channel_id']}/posts?per_page=200")
    if status != 200 or state["status"] != "in_progress":
        return False
    posts = [body["posts"][pid] for pid in body["order"]]
    mine = [p for p in posts if p["user_id"] == bot_id and not p["type"]]
    if [p["id"] for p in mine if name in p["message"] and "Incident response" in p["message"]] != [state["overview"]]:
        return False
    for title, post_id in state["checklists"]:
        if [p["id"] for p in mine if title in p["message"].splitlines()[0]] != [post_id]:
            return False
    _, members = await admin.call("GET", f"/channels/{state['channel_id']}/members")
    if not set(people.values()) <= {m["user_id"] for m in members}:
        return False
    _, town = await admin.call("GET", f"/channels/{town_id}/posts?per_page=200")
    announced = [p for p in town["posts"].values() if p["user_id"] == bot_id and f"**{name}**" in p["message"]]
    return len(announced) == 1


def render(report: dict[str, Any]) -> str:
    outcomes: dict[str, int] = {}
    for r in report["runs"]:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    lines = [
        "## Run start killed at a random step, then restarted (SIGKILL, SQLite, nobody touches anything)"
        + (" -- the dead process's lease as if from another machine" if report["elsewhere"] else ""),
        f"{len(report['runs'])} crash runs over {report['distinct_points']} of the {report['points']} crash points;"
        f" outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}",
        f"converged after the restart: median {report['converged_median_s']:.2f} s, max "
        f"{report['converged_max_s']:.2f} s  (aim: < 30 s)",
        f"  of which the process start-up (spawn to listening): median {report['start_up_median_s']:.2f} s; "
        f"the resume itself: median {report['after_start_up_median_s']:.2f} s",
        "  slowest: " + ", ".join(f"{r['point']} {r['converged_s']:.2f} s" for r in
                                  sorted(report["runs"], key=lambda r: -r["converged_s"])[:3]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench/crash_start.py")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--elsewhere", action="store_true",
                        help="the dead bot's lease looks held from another machine: the restart waits it out")
    args = parser.parse_args()
    out = asyncio.run(main(args.runs, args.seed, args.elsewhere))
    print(render(out))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "crash_start.json").write_text(json.dumps(out, indent=2))
