"""Issue 13's figures: the web view's pages over 10,000 stored runs, server time median and p99.

    .venv/bin/python bench/web_pages.py [--runs 10000] [--requests 100] [--budget 20] [--paths /runs,/insights]

The sandbox runs in its own process (bench/sandbox_proc.py); the bot is the real BotApp with its real HTTP
server, in this process, on SQLite in a temporary folder. 10,000 runs (`--runs`) are written straight
through storage's tables (starting them through chat would measure run start, which bench/run_start.py
covers): over the last year, 8% in progress, each with 2 checklists of 6 items, 4 participants, a
follower, 3 status updates and their reminder, and a timeline of about 20 events (start, joins, updates,
item changes, finish, retrospective), and then each run's run_facts row, folded from those events
(storage/run_facts.py refresh_all, the migration's backfill; the ORM hook that keeps it current does
not see bulk inserts). 70% are public; the rest are private, some with the viewer in them.
Nothing falls due while the pages are measured (reminders and item due times of runs in progress are in
the future, and every run's post sweep is claimed by "another process"), so the bot's scheduled work does
not post into the seeded runs' channels, which the sandbox does not have.

The viewer is a plain team member (not an admin) signed in with a one-time sign-in link
(bot/signin.py new_link), as `/playbook dashboard` hands out, so pages see a real session cookie; API
routes get the viewer's own Mattermost token as well. Each path is requested one at a time (after 3
warm-up requests), `--requests` times or for `--budget` seconds, whichever ends first.

Printed per path: status, page size, and two times, each median and p99:
- **handler**: the page's (or API route's) own handler, timed inside the bot (its registered function
  wrapped before start-up): what the page costs the server beyond the HTTP plumbing;
- **round trip**: from sending the request to the last byte read, over loopback, in this process (the
  server time plus the client's small share);
and the ratio of the round trip to the **floor** measured in the same run: `GET /static/web.css` from the
same server (an HTTP exchange with no session, no database, no rendering).

Default paths: `/runs` and `/insights` where the bot has those pages; else `/` and `/api/v0/runs` (and
it says so). `/metrics` is always measured too (its COUNT queries over the same rows).
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox_proc import sandbox_process  # noqa: E402
from bot import signin  # noqa: E402
from bot.app import BotApp  # noqa: E402
from bot.config import load_settings  # noqa: E402
from storage import run_facts  # noqa: E402
from storage.db import make_engine, migrate  # noqa: E402
from storage.ids import new_id  # noqa: E402
from storage.models import (  # noqa: E402
    Checklist,
    ChecklistItem,
    Follower,
    Participant,
    Reminder,
    Run,
    StatusUpdate,
    TimelineEvent,
)

DAY_MS = 24 * 3600_000
PLAYBOOKS = [("incident", "Incident response"), ("release", "Release"), ("onboarding", "Customer onboarding"),
             ("security", "Security review"), ("outage", "Major outage")]
ITEM_STATES = ("open", "closed", "closed", "closed", "skipped", "in_progress")


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


async def call(session: aiohttp.ClientSession, method: str, url: str, token: str, json: object = None) -> Any:
    async with session.request(method, url, json=json, headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
        assert r.status < 300, (url, r.status, body)
        return body


def seed(db_url: str, runs: int, team_id: str, viewer: str, people: list[str], bot_id: str, now: int) -> dict[str, int]:
    """Write `runs` runs with everything a run accumulates, straight into the tables. Deterministic."""
    rnd = random.Random(13)
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (Run, Checklist, ChecklistItem, Participant, Follower,
                                                               TimelineEvent, StatusUpdate, Reminder)}
    for i in range(runs):
        rid = new_id()
        created = now - rnd.randrange(365 * DAY_MS)
        in_progress = rnd.random() < 0.08
        duration = rnd.randrange(20 * 60_000, 5 * DAY_MS)
        finished_at = None if in_progress or created + duration > now else created + duration
        status = "finished" if finished_at is not None else "in_progress"
        pid, title = PLAYBOOKS[i % len(PLAYBOOKS)]
        private = rnd.random() < 0.3
        members = rnd.sample(people, 4)
        if private and rnd.random() < 0.3 and viewer not in members:
            members[0] = viewer
        owner = members[0]
        retro = status == "finished" and rnd.random() < 0.7
        retro_status = rnd.choice(["published", "published", "cancelled", ""]) if retro else ""
        rows[Run].append(dict(
            id=rid, seq=i, name=f"{title} {i:05d}", summary="Customers see errors on checkout.",
            playbook_id=pid, playbook_title=title, team_id=team_id, channel_id=new_id(), private=private,
            owner_id=owner, creator_id=owner, status=status, created_at=created, finished_at=finished_at,
            overview_post_id="", broadcast_threads={}, status_updates_enabled=True, reminder_interval_s=1800,
            retrospective_enabled=retro, retrospective_text="## What happened" if retro_status == "published" else "",
            retrospective_status=retro_status, retrospective_reminder_s=86400 if retro else 0,
            participants_may_finish=False, archive_on_finish=False, channel_archived=False,
            # The seeded channels do not exist in the sandbox: the start-up sweep must find every run
            # claimed by another process (as it would mid-sweep), or it would try to repost them all.
            sweep_holder="elsewhere", sweep_until=now + DAY_MS))
        events: list[tuple[str, int, str, str, dict[str, Any]]] = [
            ("run_started", created, owner, "run started", {})]
        for n, user in enumerate(members):
            rows[Participant].append(dict(run_id=rid, user_id=user, joined_at=created + n))
            events.append(("participant_joined", created + n, user, "joined", {"user_id": user}))
        rows[Follower].append(dict(run_id=rid, user_id=rnd.choice(people)))
        end = finished_at or now
        last_update = created
        for n in range(3):
            at = created + (end - created) * (n + 1) // 4
            rows[StatusUpdate].append(dict(id=new_id(), run_id=rid, at=at, author_id=owner,
                                           message=f"Update {n + 1}: mitigations in place."))
            events.append(("status_updated", at, owner, f"Update {n + 1}", {"reminder_s": 1800}))
            last_update = at
        if status == "in_progress":
            # Due after the bench is over: no reminder is posted while pages are measured.
            rows[Reminder].append(dict(id=new_id(), run_id=rid, kind="status_update",
                                       due_at=max(last_update + 1800_000, now + 3600_000), interval_s=1800,
                                       sent_count=0, post_ids=[]))
        for c in range(2):
            cid = new_id()
            rows[Checklist].append(dict(id=cid, run_id=rid, position=c, title=("Triage", "Resolve")[c], post_id=""))
            for p in range(6):
                state = rnd.choice(ITEM_STATES)
                at = created + (end - created) * rnd.randrange(1, 100) // 100
                rows[ChecklistItem].append(dict(
                    id=new_id(), run_id=rid, checklist_id=cid, position=p, title=f"Step {c + 1}.{p + 1}",
                    description="", state=state, assignee_id=rnd.choice(members) if p % 2 == 0 else "",
                    due_at=(now + DAY_MS if status == "in_progress" else created + 3600_000) if p == 0 else None,
                    command="", updated_at=at,
                    updated_by=owner))
                if state != "open":
                    events.append(("item_state_changed", at, rnd.choice(members), f"Step {c + 1}.{p + 1}",
                                   {"state": state}))
        if finished_at is not None:
            events.append(("run_finished", finished_at, owner, "finished", {}))
            if retro_status:
                events.append((f"retrospective_{retro_status}", finished_at + rnd.randrange(DAY_MS), owner, "", {}))
        events.append(("reminder_sent", created + 1800_000, bot_id, "reminder", {}))
        for type_, at, actor, summary, details in events:
            rows[TimelineEvent].append(dict(id=new_id(), run_id=rid, type=type_, at=at, actor_id=actor,
                                            summary=summary, details=details))
    engine = make_engine(db_url)
    migrate(engine)
    with engine.begin() as conn:
        for table, values in rows.items():
            for start in range(0, len(values), 20_000):
                conn.execute(table.__table__.insert(), values[start:start + 20_000])
        # The rows went around the ORM, so the flush hook that keeps run_facts current did not see the
        # events: fold them now, as migration 0022 does for the runs stored before it.
        run_facts.refresh_all(conn)
    engine.dispose()
    return {table.__tablename__: len(values) for table, values in rows.items()}


Handler = Callable[..., Awaitable[Any]]


def timed(handler: Handler, into: list[float]) -> Handler:
    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await handler(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)
    return wrapper


async def measure(http: aiohttp.ClientSession, url: str, headers: dict[str, str], requests: int,
                  budget_s: float) -> tuple[list[float], int, int]:
    """Round trips (seconds) of sequential GETs; the last status and body size."""
    status = size = 0
    for _ in range(3):  # warm-up: caches of who the viewer is, templates, SQLite pages
        async with http.get(url, headers=headers, allow_redirects=False) as r:
            await r.read()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < requests and time.perf_counter() < deadline:
        started = time.perf_counter()
        async with http.get(url, headers=headers, allow_redirects=False) as r:
            body = await r.read()
        samples.append(time.perf_counter() - started)
        status, size = r.status, len(body)
    return samples, status, size


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main(runs: int, requests: int, budget_s: float, paths: list[str]) -> int:
    async with sandbox_process() as base, aiohttp.ClientSession() as api_http:
        api = f"{base}/api/v4"
        admin = "benchadmin"
        team = await call(api_http, "POST", f"{api}/teams", admin, {"name": "bench", "display_name": "Bench",
                                                                     "type": "O"})
        people: list[str] = []
        viewer_token = ""
        for n in range(20):
            user = await call(api_http, "POST", f"{api}/users", admin, {
                "username": f"person{n:02d}", "email": f"person{n:02d}@example.com", "password": "Password1!"})
            await call(api_http, "POST", f"{api}/teams/{team['id']}/members", admin,
                       {"team_id": team["id"], "user_id": user["id"]})
            people.append(user["id"])
            if n == 0:
                viewer_token = (await call(api_http, "POST", f"{api}/users/{user['id']}/tokens", admin,
                                           {"description": "bench"}))["token"]
        bot = await call(api_http, "POST", f"{api}/bots", admin, {"username": "playbooks", "display_name": "Playbooks"})
        await call(api_http, "POST", f"{api}/teams/{team['id']}/members", admin,
                   {"team_id": team["id"], "user_id": bot["user_id"]})
        await call(api_http, "PUT", f"{api}/users/{bot['user_id']}/roles", admin, {"roles": "system_user system_admin"})
        token = (await call(api_http, "POST", f"{api}/users/{bot['user_id']}/tokens", admin,
                            {"description": "b"}))["token"]

        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite:///{tmp}/bot.db"
            started = time.perf_counter()
            counts = seed(db_url, runs, team["id"], people[0], people, bot["user_id"], int(time.time() * 1000))
            seed_s = time.perf_counter() - started
            (Path(tmp) / "playbooks").mkdir()
            settings = load_settings(Path(tmp) / "absent.toml", env={
                "BOT_MATTERMOST_URL": base, "BOT_MATTERMOST_TOKEN": token, "BOT_SERVER_LISTEN": "127.0.0.1:0",
                "BOT_SERVER_PUBLIC_URL": "http://127.0.0.1:0", "BOT_STORAGE_URL": db_url,
                "BOT_PLAYBOOKS_DIR": str(Path(tmp) / "playbooks"), "BOT_LOGGING_LEVEL": "WARNING"})
            app = BotApp(settings)
            pages = app.router.pages
            routes = app.router.http_routes
            if not paths:
                if ("GET", "/runs") in pages and ("GET", "/insights") in pages:
                    paths = ["/runs", "/insights"]
                else:
                    paths = ["/", "/api/v0/runs"]
                    print("note: the bot has no /runs and /insights pages yet; measuring / and /api/v0/runs instead")
                paths.append("/metrics")
            handler_times: dict[str, list[float]] = {}
            for table in (pages, routes):
                for key, handler in list(table.items()):
                    table[key] = timed(handler, handler_times.setdefault(key[1], []))  # type: ignore[index]
            await app.start()
            await app.ctx.tasks.drain()  # the start-up sweep (which finds every run claimed elsewhere)
            try:
                link = await signin.new_link(app.ctx, people[0], "/")
                jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1
                async with aiohttp.ClientSession(cookie_jar=jar) as http:
                    async with http.post(link, allow_redirects=False, headers={"Origin": app.url}) as r:
                        assert r.status == 303, (r.status, await r.text())
                    headers = {"Authorization": f"Bearer {viewer_token}"}
                    print(f"runs={runs} rows: " + ", ".join(f"{k}={v}" for k, v in counts.items())
                          + f" (seeded in {seed_s:.1f} s)")
                    print(f"each path: {requests} sequential GETs or {budget_s:.0f} s, whichever first; SQLite")
                    floor, _, _ = await measure(http, f"{app.url}/static/web.css", {}, requests, budget_s)
                    floor_med, floor_p99 = statistics.median(floor), pct(floor, 99)
                    print(f"{'path':<24} {'status':>6} {'bytes':>8} {'n':>4}  {'handler med':>12} {'handler p99':>12}"
                          f"  {'round trip med':>15} {'p99':>10}  {'x floor':>7}")
                    print(f"{'floor GET /static/web.css':<24} {200:>6} {'':>8} {len(floor):>4}  {'':>12} {'':>12}"
                          f"  {ms(floor_med):>15} {ms(floor_p99):>10}  {1.0:>7.1f}")
                    for path in paths:
                        template = path.split("?")[0]
                        mine = handler_times.get(template)
                        if mine is not None:
                            mine.clear()
                        samples, status, size = await measure(http, f"{app.url}{path}", headers, requests, budget_s)
                        handled = handler_times.get(template) or []
                        handled = handled[-len(samples):] if handled else []
                        h_med = ms(statistics.median(handled)) if handled else "-"
                        h_p99 = ms(pct(handled, 99)) if handled else "-"
                        med = statistics.median(samples)
                        print(f"{path:<24} {status:>6} {size:>8} {len(samples):>4}  {h_med:>12} {h_p99:>12}"
                              f"  {ms(med):>15} {ms(pct(samples, 99)):>10}  {med / floor_med:>7.1f}")
            finally:
                await app.stop()
    print("aims (issue 13): runs page p99 < 150 ms, insights p99 < 500 ms")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100, help="requests per path at most")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per path at most")
    parser.add_argument("--paths", default="", help="comma-separated paths (with query strings) to measure")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.runs, args.requests, args.budget,
                                      [p for p in args.paths.split(",") if p])))
