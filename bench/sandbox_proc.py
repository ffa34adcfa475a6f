"""Run the sandbox in its own process for benchmarks, as a real Mattermost would be.

In one process the sandbox, the bot and the load generator would share one event loop and one core,
and the figures would mostly measure the sandbox.
"""
from __future__ import annotations

import asyncio
import re
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def sandbox_process(admin_token: str = "benchadmin") -> AsyncIterator[str]:
    """Yield the URL of a `python -m sandbox` started on a free port; stop it afterwards."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "--port", "0", "--admin-token", admin_token,
        "--allow-internal", "127.0.0.1",  # the bot listens on loopback here
        cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise RuntimeError(f"the sandbox did not start: {line.strip()}")

        async def drain() -> None:  # keep its output pipe from filling up
            while await proc.stdout.readline():  # type: ignore[union-attr]
                pass

        drainer = asyncio.create_task(drain())
        yield match.group(1)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if "drainer" in locals():
            drainer.cancel()
