"""Issue 15's figure: alert-to-channel time.

    .venv/bin/python bench/alerts.py [--alerts 20]

The sandbox and the bot (`python -m bot run`, SQLite) each in their own process. N Alertmanager firing
alerts (each its own group), one after the other, POSTed with a bearer token as Alertmanager sends them
(scripts/send_alert.py) to `/hooks/alerts/alertmanager`. Measured from the POST:
- "answer": the bot's 2xx (the delivery and the run start recorded);
- "first post": the run channel's first post reaching the owner's WebSocket (the sandbox's `posted`
  event, i.e. visible through Mattermost's API);
- "alert posted": the alert's details post in that channel reaching the WebSocket.
Floor, in the same run: a plain `POST /api/v4/posts` by the owner to the sandbox until its `posted` event
reaches the same WebSocket (what HTTP, the sandbox and the event cost with no bot at all).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run_start import Client, _free_port, bot_process, owner_socket, pct, seed  # noqa: E402
from bench.sandbox_proc import sandbox_process  # noqa: E402
from scripts import send_alert  # noqa: E402

TOKEN = "bench-alertmanager-token"
PLAYBOOK = """
title = "Paged"
team = "bench"
owner = "owner"
channel_name = "{seq} {name}"
category = "Bench"
members = ["member01", "member02"]

[[checklists]]
title = "Triage"
  [[checklists.items]]
  title = "Look at the graphs"

[[alerts]]
source = "alertmanager"
match = { labels = { severity = "critical" } }
name = "{{ alert.labels.alertname }}"
"""


def _posted(event: dict[str, Any]) -> dict[str, Any] | None:
    if event.get("event") != "posted":
        return None
    return {**event["data"], "post": json.loads(event["data"]["post"])}


async def main(n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    async with sandbox_process("benchadmin") as url, aiohttp.ClientSession() as session:
        admin = Client(session, url, "benchadmin")
        people, _team, _bot, tok, town = await seed(admin, session, url, ["owner", "member01", "member02"])
        pb_dir = tmp / "playbooks"
        pb_dir.mkdir()
        (pb_dir / "paged.toml").write_text(PLAYBOOK)
        port = _free_port()
        bot_url = f"http://127.0.0.1:{port}"
        env = {"BOT_MATTERMOST_URL": url, "BOT_MATTERMOST_TOKEN": tok["token"],
               "BOT_SERVER_LISTEN": f"127.0.0.1:{port}", "BOT_SERVER_PUBLIC_URL": bot_url,
               "BOT_STORAGE_URL": f"sqlite:///{tmp}/bench.db", "BOT_PLAYBOOKS_DIR": str(pb_dir),
               "BOT_LOGGING_LEVEL": "WARNING", "BOT_ALERTS_ALERTMANAGER_TOKEN": TOKEN}
        async with bot_process(env, f"{bot_url}/healthz"):
            owner = people["owner"]
            ws = await owner_socket(session, url, owner.token)
            floor: list[float] = []
            for i in range(n):
                t0 = time.perf_counter()
                status, post = await owner.call("POST", "/posts", {"channel_id": town["id"], "message": f"floor {i}"})
                assert status == 201, post
                await ws.wait_for(lambda e, pid=post["id"]: (p := _posted(e)) is not None and p["post"]["id"] == pid)
                floor.append((time.perf_counter() - t0) * 1000)
            answer, first, detail = [], [], []
            for i in range(n):
                name = f"BenchAlert{i:03d}"
                body = json.dumps(send_alert.alertmanager(name)).encode()
                headers = send_alert.auth_headers("alertmanager", body, token=TOKEN)
                t0 = time.perf_counter()
                async with session.post(f"{bot_url}/hooks/alerts/alertmanager", data=body, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    run_id = (await r.json())["run_id"]
                answer.append((time.perf_counter() - t0) * 1000)
                event = await ws.wait_for(lambda e, name=name: (p := _posted(e)) is not None
                                          and p.get("channel_display_name", "").endswith(name))
                channel_id = json.loads(event["data"]["post"])["channel_id"]
                first.append((time.perf_counter() - t0) * 1000)
                await ws.wait_for(lambda e, c=channel_id: (p := _posted(e)) is not None
                                  and p["post"]["channel_id"] == c
                                  and "playbooks_alert" in (p["post"].get("props") or {}))
                detail.append((time.perf_counter() - t0) * 1000)
                assert run_id
            await ws.close()

    def figures(values: list[float]) -> dict[str, float]:
        return {"median_ms": statistics.median(values), "p99_ms": pct(values, 99)}

    return {"alerts": n, "answer": figures(answer), "first_post": figures(first), "alert_posted": figures(detail),
            "floor": figures(floor)}


def render(report: dict[str, Any]) -> str:
    f = report["floor"]
    lines = [f"## Alert to channel (Alertmanager firing alert -> run channel), {report['alerts']} alerts",
             f"floor (plain POST /api/v4/posts -> posted event): median {f['median_ms']:.1f} ms, "
             f"p99 {f['p99_ms']:.1f} ms"]
    for key, label in (("answer", "bot's 2xx answer"), ("first_post", "run channel's first post visible"),
                       ("alert_posted", "alert details posted in the channel")):
        v = report[key]
        lines.append(f"{label}: median {v['median_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms "
                     f"(x{v['median_ms'] / f['median_ms']:.1f} the floor)")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=20)
    args = parser.parse_args()
    out = asyncio.run(main(args.alerts))
    print(render(out))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "alerts.json").write_text(json.dumps(out, indent=2))
