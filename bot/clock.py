"""Time is injected: the bot asks a Clock, and tests move a FakeClock instead of sleeping."""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path


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


class FileClock(Clock):
    """Test-only: now is the epoch milliseconds written in a file, read on every call.

    Lets a test move the time of a bot running as another process (`[testing] clock_file`, or
    BOT_TESTING_CLOCK_FILE): it rewrites the file (atomically, by rename) instead of sleeping.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def now_ms(self) -> int:
        text = self.path.read_text().strip()
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{self.path}: expected epoch milliseconds, got {text[:40]!r}") from None
