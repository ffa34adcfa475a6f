"""Issue 3's figures: starting a run, and a click's round trip, against the sandbox.

    .venv/bin/python bench/run_start.py [--runs 20] [--rounds 30]

- `/playbook run` of a playbook with 10 members and 3 checklists of 10 items: the slash command's
  HTTP answer (a person's POST /api/v4/commands/execute, through the sandbox to the bot and back),
  and the time until channel, members, categories and posts are all in place; medians. Also the
  number of Mattermost API calls one start makes (none per item).
- A click's round trip (POST /api/v4/posts/{id}/actions/{id}: sandbox -> bot -> update applied ->
  answer) with 1 and with 20 concurrent clickers, median and p99, beside the same click routed to a
  bare aiohttp handler (the floor: what the sandbox and HTTP cost with no bot work at all).
Everything runs in one process and one event loop, as the tests do; figures are for comparing.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sandbox_proc import sandbox_process  # noqa: E402

MEMBERS = [f"member{i:02d}" for i in range(1, 20)]


def playbook(pid: str, members: list[str]) -> str:
    lines = [f'title = "{pid}"', 'channel_name = "{seq} {name}"', 'category = "Bench"', 'owner = "owner"',
             f"members = {json.dumps(members)}"]
    for c in range(3):
        lines += ["[[checklists]]", f'title = "Checklist {c + 1}"']
        for i in range(10):
            lines += ["  [[checklists.items]]", f'  title = "Item {c + 1}.{i + 1}"']
    return "\n".join(lines) + "\n"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, f"{self.base}/api/v4{path}", json=body,
                                        headers={"Authorization": f"Bearer {self.token}"}) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


async def seed(admin: Client, session: aiohttp.ClientSession, url: str, names: list[str]
               ) -> tuple[dict[str, Client], dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Team "bench" with these people (each a Client with a token of their own) and the "playbooks" bot, a
    system admin; returns (people, the team, the bot user, its token, town square)."""
    _, team = await admin.call("POST", "/teams", {"name": "bench", "display_name": "Bench", "type": "O"})
    people: dict[str, Client] = {}
    for name in names:
        _, user = await admin.call("POST", "/users", {"username": name, "email": f"{name}@b.example",
                                                      "password": "Password1!"})
        await admin.call("POST", f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": user["id"]})
        _, tok = await admin.call("POST", f"/users/{user['id']}/tokens", {"description": "bench"})
        people[name] = Client(session, url, tok["token"])
    _, bot = await admin.call("POST", "/bots", {"username": "playbooks"})
    await admin.call("POST", f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": bot["user_id"]})
    await admin.call("PUT", f"/users/{bot['user_id']}/roles", {"roles": "system_user system_admin"})
    _, tok = await admin.call("POST", f"/users/{bot['user_id']}/tokens", {"description": "bot"})
    _, town = await admin.call("GET", f"/teams/{team['id']}/channels/name/town-square")
    return people, team, bot, tok, town


async def main(runs: int, rounds: int, storage_url: str = "") -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-run-"))
    async with sandbox_process("benchadmin") as url, aiohttp.ClientSession() as session:
        admin = Client(session, url, "benchadmin")
        people, team, bot, tok, town = await seed(admin, session, url, ["owner", *MEMBERS])

        pb_dir = tmp / "playbooks"
        pb_dir.mkdir()
        (pb_dir / "ten.toml").write_text(playbook("ten", MEMBERS[:10]))
        (pb_dir / "twenty.toml").write_text(playbook("twenty", MEMBERS))
        port = _free_port()
        env = {"BOT_MATTERMOST_URL": url, "BOT_MATTERMOST_TOKEN": tok["token"],
               "BOT_SERVER_LISTEN": f"127.0.0.1:{port}", "BOT_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
               "BOT_STORAGE_URL": storage_url or f"sqlite:///{tmp}/bench.db", "BOT_PLAYBOOKS_DIR": str(pb_dir),
               "BOT_LOGGING_LEVEL": "WARNING"}
        # The bot in its own process, as in production: the load generator here does not share its CPU.
        async with bot_process(env, f"http://127.0.0.1:{port}/healthz"):
            owner = people["owner"]
            ws = await owner_socket(session, url, owner.token)
            answer_ms, ready_ms, calls = [], [], []
            for n in range(runs):
                before = await _bot_calls(admin, bot["user_id"])
                t0 = time.perf_counter()
                status, body = await owner.call("POST", "/commands/execute",
                                                {"channel_id": town["id"], "command": f"/playbook run ten bench {n}"})
                t1 = time.perf_counter()
                assert status == 200 and "Starting" in body.get("text", ""), body
                # The bot tells the starter last, once channel, members, categories and posts are in place.
                await ws.wait_for(lambda e: e.get("event") == "ephemeral_message"
                                  and "has started" in e["data"]["post"])
                t2 = time.perf_counter()
                answer_ms.append((t1 - t0) * 1000)
                ready_ms.append((t2 - t0) * 1000)
                calls.append(await _bot_calls(admin, bot["user_id"]) - before)

            # Click round trips on a run with 20 participants, each clicker on their own item.
            await owner.call("POST", "/commands/execute",
                             {"channel_id": town["id"], "command": "/playbook run twenty clicks"})
            await ws.wait_for(lambda e: e.get("event") == "ephemeral_message"
                              and "has started" in e["data"]["post"] and "clicks" in e["data"]["post"])
            channel = await _channel_of(owner, team["id"], "clicks")
            _, posts = await owner.call("GET", f"/channels/{channel}/posts?per_page=200")
            checklist_posts = [p for p in (posts["posts"][i] for i in reversed(posts["order"]))
                               if p["message"].startswith("####")]
            clickers = ["owner", *MEMBERS]
            targets = [(people[name], checklist_posts[k // 10]["id"], k % 10) for k, name in enumerate(clickers)]

            floor_post, floor_runner = await _floor(owner, town["id"], len(clickers))
            results: dict[str, Any] = {}
            mended = 0
            try:
                for label in ("bot", "floor"):
                    for concurrency in (1, 20):
                        samples: list[float] = []
                        for r in range(rounds):
                            verb = "check" if r % 2 == 0 else "uncheck"

                            async def one(i: int, label: str = label, verb: str = verb,
                                          concurrency: int = concurrency, r: int = r) -> float:
                                who, post_id, idx = targets[i]
                                if label == "floor":
                                    post_id, action = floor_post, f"floor{i}"
                                else:
                                    action = f"{verb}{idx}"
                                t = time.perf_counter()
                                status, body = await who.call("POST", f"/posts/{post_id}/actions/{action}", {})
                                assert status == 200, (label, concurrency, r, i, action, status, body)
                                return (time.perf_counter() - t) * 1000

                            samples += await asyncio.gather(*(one(i) for i in range(concurrency)))
                            if label == "bot":
                                mended += await _await_consistent(owner, targets[:concurrency], verb)
                        results[f"{label}_{concurrency}"] = {"median_ms": statistics.median(samples),
                                                             "p99_ms": pct(samples, 99), "n": len(samples)}
                results["stale_posts_mended"] = mended
            finally:
                await floor_runner.cleanup()
            await ws.close()
    return {
        "run_start": {"runs": runs, "answer_median_ms": statistics.median(answer_ms),
                      "answer_p99_ms": pct(answer_ms, 99), "ready_median_ms": statistics.median(ready_ms),
                      "ready_p99_ms": pct(ready_ms, 99), "mattermost_calls_per_run": statistics.median(calls)},
        "clicks": results,
    }


async def _await_consistent(owner: Client, targets: list[Any], verb: str) -> int:
    """Outside the timed part: wait until every checklist post shows this round's clicks.

    Mattermost may apply two concurrent answers out of order; the bot then mends the post from its
    `post_edited` event. Returns 1 when a post had to be waited for (a mend), else 0.
    """
    want = "Uncheck" if verb == "check" else "Check"
    waited = 0
    for _attempt in range(200):
        ok = True
        for post_id in {t[1] for t in targets}:
            _, post = await owner.call("GET", f"/posts/{post_id}")
            attachments = post["props"]["attachments"]
            for _who, pid, idx in targets:
                if pid == post_id and attachments[idx]["actions"][0]["name"] != want:
                    ok = False
        if ok:
            return waited
        waited = 1
        await asyncio.sleep(0.02)  # polling another process's eventual state, outside the timings
    raise RuntimeError("a checklist post never showed the clicks")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _bot_calls(admin: Client, bot_id: str) -> int:
    async with admin.session.get(admin.base + "/sandbox/request_counts",
                                 headers={"Authorization": f"Bearer {admin.token}"}) as r:
        return (await r.json())["by_user"].get(bot_id, 0)


async def _channel_of(owner: Client, team_id: str, run_name: str) -> str:
    _, channels = await owner.call("GET", f"/users/me/teams/{team_id}/channels")
    return next(c["id"] for c in channels if c["display_name"].endswith(run_name))


class _Socket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            async for msg in self.ws:
                event = json.loads(msg.data)
                if predicate(event):
                    return event
            raise RuntimeError("the WebSocket closed")

        return await asyncio.wait_for(read(), timeout)

    async def close(self) -> None:
        await self.ws.close()


async def owner_socket(session: aiohttp.ClientSession, url: str, token: str) -> _Socket:
    ws = await session.ws_connect(url.replace("http", "ws", 1) + "/api/v4/websocket",
                                  headers={"Authorization": f"Bearer {token}"})
    return _Socket(ws)


@asynccontextmanager
async def bot_process(env: dict[str, str], health_url: str) -> AsyncIterator[None]:
    proc = await asyncio.create_subprocess_exec(
        # Configured by BOT_* alone: run where there is no bot.toml, with the project importable.
        sys.executable, "-m", "bot", "run", cwd=tempfile.gettempdir(),
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(health_url) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                if proc.returncode is not None or time.monotonic() > deadline:
                    err = (await proc.stderr.read()).decode()[-2000:] if proc.stderr else ""
                    raise RuntimeError(f"the bot did not become healthy: {err}")
                await asyncio.sleep(0.05)  # polling a separate process's start-up, not a test wait
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def _floor(owner: Client, channel_id: str, buttons: int):
    """A post whose buttons call a bare aiohttp handler that answers a fixed update at once."""
    props: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        # Re-send the same buttons, as the bot does, so the post keeps working for the next round.
        return web.json_response({"update": {"message": "floor", "props": props}})

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    actions = [{"id": f"floor{i}", "name": "x", "type": "button",
                "integration": {"url": f"http://127.0.0.1:{port}/", "context": {}}} for i in range(buttons)]
    props["attachments"] = [{"actions": actions}]
    status, post = await owner.call("POST", "/posts", {"channel_id": channel_id, "message": "floor",
                                                       "props": {"attachments": [{"actions": actions}]}})
    assert status == 201, post
    return post["id"], runner


def render(report: dict[str, Any]) -> str:
    rs, c = report["run_start"], report["clicks"]
    lines = [
        "## Run start (10 members, 3 checklists x 10 items) and clicks, against the sandbox",
        f"slash command answer: median {rs['answer_median_ms']:.1f} ms, p99 {rs['answer_p99_ms']:.1f} ms"
        f"  (aim < 100 ms; {rs['runs']} runs)",
        f"run ready (channel, members, categories, posts): median {rs['ready_median_ms']:.1f} ms,"
        f" p99 {rs['ready_p99_ms']:.1f} ms  (aim < 1000 ms)",
        f"Mattermost API calls per run start: {rs['mattermost_calls_per_run']:.0f} (no call per item)",
        "click round trip (click -> updated post):",
    ]
    for n in (1, 20):
        bot, floor = c[f"bot_{n}"], c[f"floor_{n}"]
        lines.append(f"  {n:>2} clickers: bot median {bot['median_ms']:.1f} ms p99 {bot['p99_ms']:.1f} ms | "
                     f"bare handler median {floor['median_ms']:.1f} ms p99 {floor['p99_ms']:.1f} ms | "
                     f"ratio of medians {bot['median_ms'] / floor['median_ms']:.2f}")
    lines.append("  (aim: bot p99 < 50 ms at 20 clickers)")
    lines.append(f"  rounds where Mattermost applied answers out of order and the bot mended the post: "
                 f"{c['stale_posts_mended']}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--storage-url", default="", help="the bot's database (default: a fresh SQLite file); "
                        "e.g. postgresql+psycopg://user@127.0.0.1:5432/db (empty database)")
    args = parser.parse_args()
    out = asyncio.run(main(args.runs, args.rounds, args.storage_url))
    print(render(out))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "run_start.json").write_text(json.dumps(out, indent=2))
