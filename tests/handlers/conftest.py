"""Every bot a handler test started is stopped when the test ends (its server, jobs and database)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.handlers.commands_world import RUNNING


@pytest.fixture(autouse=True)
async def _stop_bots() -> AsyncIterator[None]:
    yield
    while RUNNING:
        await RUNNING.pop().stop()
