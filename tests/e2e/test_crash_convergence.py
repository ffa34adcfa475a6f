"""A bot killed with SIGKILL in the middle of twenty people's work comes back and, with nobody touching
anything, makes every post show the rows again (handlers/reconcile.py), well within 30 s.

The bots are real `python -m bot run` processes (tests/e2e/test_process_restart.py's Site); the sandbox
runs in the test process. bench/crash_clicks.py repeats the click burst with random kill points and gives
the convergence times.
"""
from __future__ import annotations

import asyncio
import random

from tests.e2e.crash import ITEMS, burst_playbook, check_buttons, clickers, converge, mismatch, start_burst
from tests.e2e.test_process_restart import Site, site  # noqa: F401  (the fixture)

CONVERGE_S = 30.0


async def test_edits_lost_to_a_crash_are_made_when_the_bot_comes_back(site: Site) -> None:  # noqa: F811
    """Every edit of the posts fails (Mattermost answering 500) while twenty people check items by
    command, then the bot dies: the rows hold twenty checked items, the posts show none. The bot that
    comes back mends them from the rows by itself."""
    (site.tmp / "playbooks" / "drill.toml").write_text(burst_playbook())
    sqlite = f"sqlite:///{site.tmp}/bot.db"
    people = await clickers(site)
    first = await site.bot("first", sqlite).start()
    try:
        burst = await start_burst(site, first, people, "Edits lost")
        site.sb.fail("PUT", r"^/api/v4/posts/[^/]+/patch$", 500, times=100_000)
        answers = await asyncio.gather(*(p.command(burst.channel_id, f"/playbook check 1.{n + 1}")
                                         for n, p in enumerate(people)))
        assert [status for status, _ in answers] == [200] * ITEMS, answers
        assert "rows say" in await mismatch(burst, first)  # stored, not shown
        await first.kill()
    finally:
        await first.stop()
    site.sb.clear_faults()

    second = await site.bot("second", sqlite).start()
    try:
        took = await converge(burst, second, CONVERGE_S)
        assert took < CONVERGE_S
        assert await mismatch(burst, second) == ""
    finally:
        await second.stop()


async def test_a_bot_killed_during_a_burst_of_clicks_shows_the_rows_after_its_restart(site: Site) -> None:  # noqa: F811
    """Twenty people click Check on twenty items at once; the bot is killed after a random number of
    answers. Whatever was stored by then is what the posts show after the restart."""
    (site.tmp / "playbooks" / "drill.toml").write_text(burst_playbook())
    sqlite = f"sqlite:///{site.tmp}/bot.db"
    people = await clickers(site)
    first = await site.bot("first", sqlite).start()
    burst = await start_burst(site, first, people, "Click burst")
    buttons = await check_buttons(burst)
    kill_after = random.Random(7).randint(3, ITEMS - 3)
    answered = 0
    killed = asyncio.Event()

    async def click(person_index: int) -> None:
        nonlocal answered
        await people[person_index].click(burst.checklist_post_id, buttons[person_index])
        answered += 1
        if answered == kill_after:
            killed.set()

    try:
        clicks = [asyncio.create_task(click(n)) for n in range(ITEMS)]
        await asyncio.wait_for(killed.wait(), 20)
        await first.kill()
        await asyncio.gather(*clicks, return_exceptions=True)
    finally:
        await first.stop()

    second = await site.bot("second", sqlite).start()
    try:
        took = await converge(burst, second, CONVERGE_S)
        assert took < CONVERGE_S
    finally:
        await second.stop()
