"""Issue 5's figures: the HTTP answer time of `/playbook info` and `/playbook check` on a 200-item run.

    .venv/bin/python bench/commands.py [--rounds 200] [--checklists 4] [--quick]

The sandbox and the bot each run in their own process (as Mattermost and the bot would); a person
types the command (POST /api/v4/commands/execute: sandbox -> bot -> answer -> sandbox -> person) and
we time that round trip. `check` alternates check/uncheck over the items, so every sample changes a
row, records a timeline event and re-renders and edits a checklist post (200 items in `--checklists`
posts) before answering. Median and p99; aim: p99 < 50 ms.
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

from bench.run_start import Client, _free_port, bot_process, owner_socket, pct  # noqa: E402
from bench.sandbox_proc import sandbox_process  # noqa: E402

ITEMS = 200


def playbook(checklists: int) -> str:
    per = ITEMS // checklists
    lines = ['title = "Big"', 'channel_name = "{name}"', 'category = ""', 'owner = "owner"']
    for c in range(checklists):
        lines += ["[[checklists]]", f'title = "Section {c + 1}"']
        for i in range(per):
            lines += ["  [[checklists.items]]", f'  title = "Step {c + 1}-{i + 1} of the procedure"']
    return "\n".join(lines) + "\n"


async def main(rounds: int, checklists: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    async with sandbox_process("benchadmin") as url, aiohttp.ClientSession() as session:
        admin = Client(session, url, "benchadmin")
        _, team = await admin.call("POST", "/teams", {"name": "bench", "display_name": "Bench", "type": "O"})
        _, user = await admin.call("POST", "/users", {"username": "owner", "email": "owner@b.example",
                                                      "password": "Password1!"})
        await admin.call("POST", f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": user["id"]})
        _, tok = await admin.call("POST", f"/users/{user['id']}/tokens", {"description": "bench"})
        owner = Client(session, url, tok["token"])
        _, bot = await admin.call("POST", "/bots", {"username": "playbooks"})
        await admin.call("POST", f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": bot["user_id"]})
        await admin.call("PUT", f"/users/{bot['user_id']}/roles", {"roles": "system_user system_admin"})
        _, bot_tok = await admin.call("POST", f"/users/{bot['user_id']}/tokens", {"description": "bot"})
        _, town = await admin.call("GET", f"/teams/{team['id']}/channels/name/town-square")

        pb_dir = tmp / "playbooks"
        pb_dir.mkdir()
        (pb_dir / "big.toml").write_text(playbook(checklists))
        port = _free_port()
        env = {"BOT_MATTERMOST_URL": url, "BOT_MATTERMOST_TOKEN": bot_tok["token"],
               "BOT_SERVER_LISTEN": f"127.0.0.1:{port}", "BOT_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
               "BOT_STORAGE_URL": f"sqlite:///{tmp}/bench.db", "BOT_PLAYBOOKS_DIR": str(pb_dir),
               "BOT_LOGGING_LEVEL": "WARNING"}
        async with bot_process(env, f"http://127.0.0.1:{port}/healthz"):
            ws = await owner_socket(session, url, owner.token)
            status, body = await owner.call("POST", "/commands/execute",
                                            {"channel_id": town["id"], "command": "/playbook run big bigrun"})
            assert status == 200, body
            await ws.wait_for(lambda e: e.get("event") == "ephemeral_message" and "has started" in e["data"]["post"])
            await ws.close()
            _, channels = await owner.call("GET", f"/users/me/teams/{team['id']}/channels")
            channel = next(c["id"] for c in channels if c["display_name"] == "bigrun")

            async def timed(command: str, expect: str) -> float:
                t = time.perf_counter()
                status, body = await owner.call("POST", "/commands/execute",
                                                {"channel_id": channel, "command": command})
                elapsed = (time.perf_counter() - t) * 1000
                assert status == 200 and expect in body.get("text", ""), (command, status, body)
                return elapsed

            per = ITEMS // checklists
            for _ in range(5):  # warm-up: caches, connection pools
                await timed("/playbook info", "bigrun")
            info = [await timed("/playbook info", f"/{ITEMS}") for _ in range(rounds)]
            check: list[float] = []
            for r in range(rounds):
                k = r // 2 % ITEMS
                number = f"{k // per + 1}.{k % per + 1}"
                verb, word = ("check", "Checked") if r % 2 == 0 else ("uncheck", "Unchecked")
                check.append(await timed(f"/playbook {verb} {number}", word))
            by_title = [await timed(f"/playbook {'check' if r % 2 == 0 else 'uncheck'} step 3-7 procedure",
                                    "ecked") for r in range(rounds)]
    summary = {"median_ms": 0.0, "p99_ms": 0.0}
    out = {}
    for label, samples in (("info", info), ("check_by_number", check), ("check_by_title_words", by_title)):
        out[label] = {**summary, "median_ms": round(statistics.median(samples), 1),
                      "p99_ms": round(pct(samples, 99), 1), "max_ms": round(max(samples), 1), "n": len(samples)}
    return {"items": ITEMS, "checklists": checklists, **out}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench/commands.py")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--checklists", type=int, default=4, help="the 200 items are split over this many posts")
    parser.add_argument("--quick", action="store_true", help="20 rounds, to check the bench still runs")
    args = parser.parse_args()
    result = asyncio.run(main(20 if args.quick else args.rounds, args.checklists))
    print("## /playbook info and check on a 200-item run (HTTP answer through the sandbox)")
    for key in ("info", "check_by_number", "check_by_title_words"):
        r = result[key]
        print(f"{key:22s} median {r['median_ms']:6.1f} ms   p99 {r['p99_ms']:6.1f} ms   max {r['max_ms']:6.1f} ms"
              f"   (n={r['n']}, {result['checklists']} checklist posts)")
    print(json.dumps(result))
