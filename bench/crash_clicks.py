"""Issue 11's figures: how long after a crash the posts show the rows again.

    .venv/bin/python bench/crash_clicks.py [--runs 20]

Each round: a real `python -m bot run` (SQLite), a run of 20 items worked by 20 people at once (half
click Check, half type `/playbook check`), SIGKILL after a random number of answers (1 to 19), a new
process on the same database, and nobody touching anything. Measured from the new process's start:
until it listens (the floor: a restart with nothing to mend costs this much) and until every post shows
the rows (tests/e2e/crash.py's check).
Also how many rounds left posts behind their rows that the start-up sweep mended (from the bot's log).
The sandbox runs in this process, as in tests/e2e/test_crash_convergence.py.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.crash import ITEMS, burst_playbook, check_buttons, clickers, converge, start_burst  # noqa: E402
from tests.e2e.test_process_restart import Site, open_site  # noqa: E402

DEADLINE_S = 30.0


async def one_round(site: Site, people: list, sqlite: str, n: int, rng: random.Random) -> tuple[float, float, bool]:
    first = site.bot(f"first{n}", sqlite)
    await first.start()
    burst = await start_burst(site, first, people, f"Round {n}")
    buttons = await check_buttons(burst)
    kill_after = rng.randint(1, ITEMS - 1)
    answered = 0
    reached = asyncio.Event()

    async def click(i: int) -> None:
        nonlocal answered
        if i % 2:  # a command's post edit is a follow-up after its answer: what a crash can lose
            await people[i].command(burst.channel_id, f"/playbook check 1.{i + 1}")
        else:
            await people[i].click(burst.checklist_post_id, buttons[i])
        answered += 1
        if answered == kill_after:
            reached.set()

    clicks = [asyncio.create_task(click(i)) for i in range(ITEMS)]
    try:
        await asyncio.wait_for(reached.wait(), DEADLINE_S)
        await first.kill()
        await asyncio.gather(*clicks, return_exceptions=True)
    finally:
        await first.stop()

    second = site.bot(f"second{n}", sqlite)
    started = time.perf_counter()
    await second.start()
    listening = time.perf_counter() - started
    try:
        await converge(burst, second, DEADLINE_S)
        shown = time.perf_counter() - started
    finally:
        await second.stop()
    mended = "posts mended from the rows" in second.log_path.read_text(errors="replace")
    return listening, shown, mended


async def main_async(runs: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_site(Path(tmp)) as site:
            (site.tmp / "playbooks" / "drill.toml").write_text(burst_playbook())
            people = await clickers(site)
            sqlite = f"sqlite:///{site.tmp}/bot.db"
            rng = random.Random(11)
            floors, totals, mended = [], [], 0
            for n in range(1, runs + 1):
                listening, shown, was_mended = await one_round(site, people, sqlite, n, rng)
                floors.append(listening)
                totals.append(shown)
                mended += was_mended
                print(f"  round {n:2d}: listening after {listening:.2f} s, posts equal to rows after {shown:.2f} s"
                      f"{' (mended at start-up)' if was_mended else ''}", flush=True)
    print(f"\n## crash_clicks: {runs} crash rounds, SIGKILL during a burst of {ITEMS} clicks and commands")
    print(f"restart until listening (floor): median {statistics.median(floors):.2f} s, max {max(floors):.2f} s")
    print(f"restart until posts equal rows:  median {statistics.median(totals):.2f} s, max {max(totals):.2f} s "
          f"(aim: < {DEADLINE_S:.0f} s)")
    print(f"ratio to the floor: median {statistics.median(t / f for t, f in zip(totals, floors, strict=True)):.2f}x, "
          f"max {max(t / f for t, f in zip(totals, floors, strict=True)):.2f}x")
    print(f"rounds whose posts were behind their rows and were mended by the start-up sweep: {mended}/{runs}")
    return 0 if max(totals) < DEADLINE_S else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/crash_clicks.py")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    return asyncio.run(main_async(args.runs))


if __name__ == "__main__":
    sys.exit(main())
