"""Two `python -m bot run` processes on one PostgreSQL behind one public URL, as a load balancer would put
them: a round-robin proxy on loopback hands every slash command and click to the next process. Twenty
people click Check on twenty items of one checklist at once; every click is kept and every post ends
showing the rows, although the processes answer clicks for the same post in parallel and each orders
only its own writes (bot/posts.py): what one process shows out of order, the other mends."""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from tests.e2e.crash import ITEMS, burst_playbook, check_buttons, clickers, converge, run_json, start_burst
from tests.e2e.test_process_restart import Site, site  # noqa: F401  (the fixture)

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@asynccontextmanager
async def round_robin(targets: list[str]) -> AsyncIterator[tuple[str, list[int]]]:
    """A reverse proxy on 127.0.0.1:0 sending request n to targets[n % len]; yields its URL and the
    count of requests each target got."""
    turn = itertools.count()
    served = [0] * 2
    async with aiohttp.ClientSession() as session:
        async def forward(request: web.Request) -> web.Response:
            index = next(turn) % len(targets)
            served[index] += 1
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            async with session.request(request.method, targets[index] + str(request.rel_url), headers=headers,
                                       data=await request.read()) as resp:
                body = await resp.read()
                keep = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
                return web.Response(status=resp.status, body=body, headers=keep)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}", served
        finally:
            await runner.cleanup()


async def test_twenty_clickers_through_two_bot_processes_lose_nothing_and_converge(
        site: Site, pg_url: str) -> None:  # noqa: F811
    (site.tmp / "playbooks" / "drill.toml").write_text(burst_playbook())
    people = await clickers(site)
    targets: list[str] = []
    async with round_robin(targets) as (proxy_url, served):
        bots = [site.bot("one", pg_url), site.bot("two", pg_url)]
        for bot in bots:
            bot.env["BOT_SERVER_PUBLIC_URL"] = proxy_url
        try:
            for bot in bots:
                await bot.start()
                targets.append(bot.url)
            burst = await start_burst(site, bots[0], people, "Two bots")
            buttons = await check_buttons(burst)
            answers = await asyncio.gather(*(p.click(burst.checklist_post_id, buttons[n])
                                             for n, p in enumerate(people)))
            assert [status for status, _ in answers] == [200] * ITEMS, answers
            assert min(served) >= ITEMS // 4, served  # both processes took their share of the clicks
            run = await run_json(site, bots[1], burst.run_id)
            assert [i["state"] for c in run["checklists"] for i in c["items"]] == ["closed"] * ITEMS
            await converge(burst, bots[0], 30.0)
            # Read through the other process too. Not "equal at once": an edit one process rendered from
            # older rows may still land after the newest one (its call was queued behind others); the
            # other process sees its post_edited and mends it from the rows (bot/posts.py mend), so the
            # posts converge, which is what is asked of several processes.
            await converge(burst, bots[1], 30.0)
        finally:
            for bot in bots:
                await bot.stop()
    assert [b.proc.returncode for b in bots if b.proc] == [0, 0], bots[0].log_tail() + bots[1].log_tail()
