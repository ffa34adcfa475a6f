"""Two bot processes on one real PostgreSQL: every reminder is posted exactly once.

Both bots run the real ReminderService with their own engine, connection pool and worker threads, and
wake up at the same moment; the conditional UPDATE that claims a reminder lets exactly one of them post.
(tests/pg.py provides the server; without one this is skipped with one line, except in CI.)
"""
from __future__ import annotations

import asyncio
from dataclasses import replace

from bot.app import BotApp
from tests.e2e.conftest import World
from tests.e2e.test_status_updates import MIN, reminders_in

pytest_plugins = ["tests.pg"]

RUNS = 6


async def test_two_bots_on_one_postgresql_post_each_reminder_once(world: World, pg_url: str) -> None:
    settings = world.bot.settings
    await world.bot.stop()
    shared = replace(settings, storage=replace(settings.storage, url=pg_url))
    first = await BotApp(shared, clock=world.clock).start()
    second = await BotApp(shared, clock=world.clock).start()  # /playbook now points here
    world.bot = second
    try:
        for n in range(RUNS):
            status, body = await world["alice"].command(world.town_square, f"/playbook run incident Outage {n}")
            assert status == 200, body
        for app in (first, second):
            assert app.ctx is not None
            await app.ctx.tasks.drain()
        status, runs = await world.runs_json("alice")
        channels = [r["channel_id"] for r in runs["items"]]
        assert len(channels) == RUNS

        for interval in range(1, 4):
            world.clock.advance(30 * MIN)
            sent = await asyncio.gather(*(app.scheduler.run_due() for app in (first, second, first, second)))
            assert sum(sent) == RUNS, sent
            for channel_id in channels:
                assert len(reminders_in(await world.posts(channel_id), world.bot_user_id)) == interval
    finally:
        await first.stop()
