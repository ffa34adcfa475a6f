"""Time is injected: the bot asks a Clock, and tests move a FakeClock instead of sleeping."""
from __future__ import annotations

import time
from datetime import datetime, timezone


class Clock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=timezone.utc)


class FakeClock(Clock):
    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += int(seconds * 1000)

    def set(self, ms: int) -> None:
        self._now = ms


def iso(ms: int | None) -> str | None:
    """ISO 8601 in UTC for the HTTP API."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
