"""bot.scheduler.Wakeup: one wake-up, at the earliest due time, in the injected clock's terms."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from bot.clock import FakeClock
from bot.scheduler import Wakeup


async def _noop() -> None:
    return None


async def test_wakes_due_minus_clock_now_from_the_wall_clock_and_only_earlier_replaces() -> None:
    clock = FakeClock()
    wake = Wakeup(clock, _noop, poll_s=3600)
    wake.start()
    try:
        wake.wake_at(clock.now_ms() + 600_000)  # ten minutes on the fake clock
        first = wake.next_wake
        assert first is not None
        assert abs((first - datetime.now(timezone.utc)) - timedelta(minutes=10)) < timedelta(seconds=5)
        wake.wake_at(clock.now_ms() + 1_200_000, replace=False)  # later: ignored
        assert wake.next_wake == first
        wake.wake_at(clock.now_ms() + 60_000, replace=False)  # earlier: taken
        assert wake.next_wake is not None and wake.next_wake < first
        wake.wake_at(None)  # nothing due: the poll ceiling
        assert wake.next_wake is not None and wake.next_wake > first
    finally:
        wake.stop()
    assert not wake.running


async def test_a_due_time_in_the_past_wakes_at_once() -> None:
    clock = FakeClock()
    woke = asyncio.Event()

    async def on_wake() -> None:
        woke.set()

    wake = Wakeup(clock, on_wake)
    wake.start()
    try:
        wake.wake_at(clock.now_ms() - 5_000)
        await asyncio.wait_for(woke.wait(), 5)
    finally:
        wake.stop()
