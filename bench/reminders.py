"""Issue 4's figures: 10,000 in-progress runs whose status reminders all fall due within one minute.

    .venv/bin/python bench/reminders.py [--runs 10000] [--spread 60] [--channels 100]

The sandbox runs in its own process (bench/sandbox_proc.py). The runs and their reminder rows are
written straight into the bot's SQLite database (creating 10,000 runs through /playbook run would
measure run start, which bench/run_start.py covers); they post into `--channels` channels, since a
reminder's cost does not depend on whose channel it lands in. Due times are spread evenly over
`--spread` seconds starting a few seconds after the bot is up. The bot is the real BotApp on the
real clock: APScheduler wakes it, ReminderService claims and posts.

Printed: start-up time of BotApp.start() with the 10,000 runs in the database; RSS after start and the
peak (VmHWM) at the end; lateness of every reminder = the post's create_at (the sandbox's clock, the
same machine) minus its due time: median, p99, max.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox_proc import sandbox_process  # noqa: E402
from bot.app import BotApp  # noqa: E402
from bot.config import load_settings  # noqa: E402
from storage.db import make_engine, migrate  # noqa: E402
from storage.ids import new_id  # noqa: E402
from storage.models import Reminder, Run  # noqa: E402


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def call(session: aiohttp.ClientSession, method: str, url: str, token: str, json: object = None) -> dict:
    async with session.request(method, url, json=json, headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
        assert r.status < 300, (url, r.status, body)
        return body


async def main(runs: int, spread: float, channels: int, lead: float) -> None:
    async with sandbox_process() as base, aiohttp.ClientSession() as http:
        api = f"{base}/api/v4"
        admin = "benchadmin"
        team = await call(http, "POST", f"{api}/teams", admin, {"name": "bench", "display_name": "Bench", "type": "O"})
        owner = await call(http, "POST", f"{api}/users", admin,
                           {"username": "owner", "email": "owner@example.com", "password": "Password1!"})
        await call(http, "POST", f"{api}/teams/{team['id']}/members", admin,
                   {"team_id": team["id"], "user_id": owner["id"]})
        bot = await call(http, "POST", f"{api}/bots", admin, {"username": "playbooks", "display_name": "Playbooks"})
        await call(http, "POST", f"{api}/teams/{team['id']}/members", admin,
                   {"team_id": team["id"], "user_id": bot["user_id"]})
        await call(http, "PUT", f"{api}/users/{bot['user_id']}/roles", admin, {"roles": "system_user system_admin"})
        token = (await call(http, "POST", f"{api}/users/{bot['user_id']}/tokens", admin, {"description": "b"}))["token"]
        channel_ids = []
        for n in range(channels):
            ch = await call(http, "POST", f"{api}/channels", token, {"team_id": team["id"], "name": f"run-{n:03d}",
                                                                      "display_name": f"Run {n:03d}", "type": "O"})
            channel_ids.append(ch["id"])

        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite:///{tmp}/bot.db"
            engine = make_engine(db_url)
            migrate(engine)
            t0 = int(time.time() * 1000) + int(lead * 1000)
            due: dict[str, int] = {}
            run_rows, rem_rows = [], []
            for i in range(runs):
                rid = new_id()
                at = t0 + int(i * spread * 1000 / runs)
                due[f"Bench run {i:05d}"] = at
                run_rows.append(dict(id=rid, seq=i, name=f"Bench run {i:05d}", summary="", playbook_id="bench",
                                     playbook_title="Bench", team_id=team["id"], channel_id=channel_ids[i % channels],
                                     private=False, owner_id=owner["id"], creator_id=owner["id"], status="in_progress",
                                     created_at=at - 1_800_000, overview_post_id="", broadcast_threads={},
                                     status_updates_enabled=True, reminder_interval_s=1800,
                                     retrospective_enabled=False, retrospective_text="", retrospective_status="",
                                     retrospective_reminder_s=0, participants_may_finish=False, version=0))
                rem_rows.append(dict(id=new_id(), run_id=rid, kind="status_update", due_at=at, interval_s=1800,
                                     sent_count=0))
            with engine.begin() as conn:
                conn.execute(Run.__table__.insert(), run_rows)
                conn.execute(Reminder.__table__.insert(), rem_rows)
            engine.dispose()
            (Path(tmp) / "playbooks").mkdir()
            settings = load_settings(Path(tmp) / "absent.toml", env={
                "BOT_MATTERMOST_URL": base, "BOT_MATTERMOST_TOKEN": token, "BOT_SERVER_LISTEN": "127.0.0.1:0",
                "BOT_SERVER_PUBLIC_URL": "http://127.0.0.1:0", "BOT_STORAGE_URL": db_url,
                "BOT_PLAYBOOKS_DIR": str(Path(tmp) / "playbooks"), "BOT_LOGGING_LEVEL": "WARNING"})
            started = time.perf_counter()
            app = BotApp(settings)
            await app.start()
            startup_s = time.perf_counter() - started
            rss_start = rss_mb()
            try:
                deadline = time.time() + lead + spread + 120
                # Wall clock on purpose: the benchmark measures how soon real reminders go out.
                while app.scheduler.sent < runs and time.time() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                sent = app.scheduler.sent
            finally:
                await app.stop()
            peak = rss_mb("VmHWM")

        lateness = []
        for channel_id in channel_ids:
            page = 0
            while True:
                body = await call(http, "GET", f"{api}/channels/{channel_id}/posts?per_page=200&page={page}", token)
                for post in body["posts"].values():
                    name = next((w for w in (post["message"].split("**")[1:2]) if w.startswith("Bench run")), None)
                    if name in due:
                        lateness.append((post["create_at"] - due[name]) / 1000)
                if len(body["order"]) < 200:
                    break
                page += 1

    lateness.sort()
    print(f"runs={runs} spread_s={spread} channels={channels} reminders_posted={sent} posts_found={len(lateness)}")
    print(f"startup_s={startup_s:.2f} rss_after_start_mb={rss_start:.0f} rss_peak_mb={peak:.0f}")
    if lateness:
        print(f"lateness_s median={statistics.median(lateness):.2f} "
              f"p99={lateness[int(len(lateness) * 0.99) - 1]:.2f} max={lateness[-1]:.2f}")
    print("aims: every reminder within 5 s, RSS < 200 MB, start-up < 3 s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--lead", type=float, default=10.0, help="seconds from start-up to the first due time")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.spread, args.channels, args.lead))
