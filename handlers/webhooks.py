"""Outgoing webhooks (`[webhooks]` in a playbook): signed, retried, never in the way of the person.

`emit(event, run_id)` returns at once: the deliveries are one tracked follow-up (ctx.tasks) that reads
the run, then posts to each URL side by side. The body is JSON: the run as `GET /api/v0/runs/{id}`
shows it, plus `event` {type, at, user_id, payload}, `channel_url` and `details_url`. Headers:

    X-Playbooks-Event: status_updated
    X-Playbooks-Delivery: <unique id, the same on every retry>
    X-Playbooks-Timestamp: <unix seconds, from the injected clock>
    X-Playbooks-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">

The HMAC key is `[security] secret` (or, when unset, the key derived from the bot token that signs
buttons; set the secret to verify webhooks). A URL that answers 5xx, 408, 429 or not at all is retried
with backoff (1 s, 4 s, 16 s, 64 s; a longer Retry-After wins, up to 5 min); any other 4xx is final. The
outcome of each delivery is stored (storage.models.WebhookStatus) and failing URLs are listed by
`python -m bot check`. On shutdown a delivery waiting for its next attempt gives up and is recorded
as failed, so stopping the bot never waits for a backoff.

HTTP goes through a `bot.outbound.Poster` handed over by bot/app.py (handlers do not import aiohttp).

Events and the playbook lists they go to: run_started -> on_start; status_updated -> on_status_update;
run_finished, run_restored, retrospective_published -> on_finish.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any, Awaitable, Callable

from bot.clock import iso
from bot.context import Context
from bot.outbound import HttpPoster, HttpResult, Poster
from bot.router import Router
from handlers.api import run_json
from storage import runs
from storage import webhooks as statuses
from storage.ids import new_id

log = logging.getLogger(__name__)

router = Router("webhooks")

LISTS = {"run_started": "on_start", "status_updated": "on_status_update", "run_finished": "on_finish",
         "run_restored": "on_finish", "retrospective_published": "on_finish"}
BACKOFF_S = (1.0, 4.0, 16.0, 64.0)
MAX_RETRY_AFTER_S = 300.0
STOPPED = "gave up: the bot stopped while waiting to retry"


def retryable(status: int) -> bool:
    return status == 0 or status >= 500 or status in (408, 429)


def signature(secret: bytes, timestamp: str, raw: bytes) -> str:
    """`X-Playbooks-Signature`: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>"> (also the http actions')."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


def signed_headers(secret: bytes, event: str, delivery: str, timestamp: str, raw: bytes) -> dict[str, str]:
    """The headers of every delivery: webhooks and the playbooks' http actions."""
    return {"Content-Type": "application/json", "User-Agent": "playbooks-for-mattermost",
            "X-Playbooks-Event": event, "X-Playbooks-Delivery": delivery,
            "X-Playbooks-Timestamp": timestamp, "X-Playbooks-Signature": signature(secret, timestamp, raw)}


def retry_delay_s(attempt: int, retry_after_s: float | None, backoff: tuple[float, ...] = BACKOFF_S) -> float | None:
    """Seconds before the attempt after try number `attempt` (from 1); None once the retries are spent.
    A longer Retry-After wins, up to MAX_RETRY_AFTER_S."""
    if attempt > len(backoff):
        return None
    return max(backoff[attempt - 1], min(retry_after_s or 0.0, MAX_RETRY_AFTER_S))


class Webhooks:
    def __init__(self, ctx: Context, poster: Poster, *, secret: bytes | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 backoff: tuple[float, ...] = BACKOFF_S) -> None:
        self.ctx = ctx
        self.poster = poster
        self.secret = secret if secret is not None else ctx.settings.signing_key
        self.backoff = backoff
        self._sleep = sleep
        self._stopping = asyncio.Event()

    async def emit(self, event: str, run_id: str, *, actor_id: str = "",
                   payload: dict[str, Any] | None = None) -> None:
        """Queue the deliveries of `event` for the run's playbook's URLs; returns without waiting."""
        if event not in LISTS or self._stopping.is_set():
            return
        at = self.ctx.clock.now_ms()
        self.ctx.tasks.spawn(self._deliver_all(event, run_id, actor_id, payload or {}, at),
                             name=f"webhook:{event}:{run_id}")

    async def _deliver_all(self, event: str, run_id: str, actor_id: str, payload: dict[str, Any],
                           at: int) -> None:
        view = await self.ctx.db.run(runs.load_view, run_id, True, readonly=True)
        if view is None:
            return
        playbook = await self.ctx.run_playbook(view.run)  # the version the run started from
        urls: tuple[str, ...] = tuple(getattr(playbook.webhooks, LISTS[event], ())) if playbook else ()
        if not urls:
            return
        body = run_json(view)
        team = self.ctx.teams.get(view.run.team_id)
        site = self.ctx.mattermost_url
        body["channel_url"] = f"{site}/{team.name if team else view.run.team_id}/channels/{view.run.channel_id}"
        body["details_url"] = f"{self.ctx.public_url}/api/v0/runs/{run_id}"
        body["event"] = {"type": event, "at": iso(at), "user_id": actor_id, "payload": payload}
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        await asyncio.gather(*(self.deliver(url, event, raw) for url in urls))

    def sign(self, timestamp: str, raw: bytes) -> str:
        return signature(self.secret, timestamp, raw)

    async def deliver(self, url: str, event: str, raw: bytes) -> bool:
        """Post `raw` to `url` until it succeeds, a final answer comes or the retries run out; record it."""
        delivery = new_id()
        result = HttpResult(0, "not sent")
        for attempt in range(len(self.backoff) + 1):
            timestamp = str(self.ctx.clock.now_ms() // 1000)
            headers = signed_headers(self.secret, event, delivery, timestamp, raw)
            result = await self.poster.post(url, raw, headers)
            if result.ok:
                break
            log.warning("webhook failed url=%s event=%s delivery=%s attempt=%d status=%s error=%s", url, event,
                        delivery, attempt + 1, result.status, result.error)
            delay = retry_delay_s(attempt + 1, result.retry_after_s, self.backoff)
            if not retryable(result.status) or delay is None:
                break
            if not await self._pause(delay):
                result = HttpResult(result.status, f"{result.error or f'HTTP {result.status}'}; {STOPPED}")
                break
        error = "" if result.ok else (result.error or f"HTTP {result.status}")
        if not result.ok:
            self.ctx.metrics.webhook_failed(event)
        await self.ctx.db.run(statuses.record_webhook, url, event, self.ctx.clock.now_ms(), result.ok, error)
        return result.ok

    async def _pause(self, seconds: float) -> bool:
        """Wait before the next attempt; False when the bot is stopping (then do not retry)."""
        if self._stopping.is_set():
            return False
        if self._sleep is not None:
            await self._sleep(seconds)
            return not self._stopping.is_set()
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return True
        return False

    async def close(self) -> None:
        """Stop retrying, let deliveries in flight record their outcome, close the HTTP session."""
        self._stopping.set()
        await self.ctx.tasks.drain()
        await self.poster.close()


@router.on_startup
async def start_webhooks(ctx: Context) -> None:
    ctx.hooks = Webhooks(ctx, HttpPoster())


@router.on_shutdown
async def stop_webhooks(ctx: Context) -> None:
    if isinstance(ctx.hooks, Webhooks):
        await ctx.hooks.close()  # gives up pending retries, so stopping never waits a backoff
