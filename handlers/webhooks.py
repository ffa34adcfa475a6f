"""Outgoing webhooks (`[webhooks]` in a playbook): signed, retried, never in the way of the person.

`emit(event, run_id)` returns at once: each URL's delivery is a tracked follow-up (ctx.tasks). The body
is JSON: the run as `GET /api/v0/runs/{id}` shows it, plus `event` {type, at, user_id, payload},
`channel_url` and `details_url`. Headers:

    X-Playbooks-Event: status_updated
    X-Playbooks-Delivery: <unique id, the same on every retry>
    X-Playbooks-Timestamp: <unix seconds>
    X-Playbooks-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">

The HMAC key is `[security] secret` (or, when unset, the key derived from the bot token that signs
buttons; set the secret to verify webhooks). A URL that answers 5xx, 429 or not at all is retried with
backoff (1 s, 4 s, 16 s, 64 s); 4xx other than 408/429 is final. The outcome of each delivery is stored
(storage.models.WebhookStatus) and failing URLs are listed by `python -m bot check`.

Events and the playbook lists they go to: run_started -> on_start; status_updated -> on_status_update;
run_finished, run_restored, retrospective_published -> on_finish.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

from bot.clock import iso
from bot.context import Context
from handlers.api import run_json
from storage import queries, updates
from storage.ids import new_id

log = logging.getLogger(__name__)

LISTS = {"run_started": "on_start", "status_updated": "on_status_update", "run_finished": "on_finish",
         "run_restored": "on_finish", "retrospective_published": "on_finish"}
BACKOFF_S = (1.0, 4.0, 16.0, 64.0)
TIMEOUT_S = 10.0


class HttpResult:
    def __init__(self, status: int, error: str = "") -> None:
        self.status = status
        self.error = error


def _post_blocking(url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpResult:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked at load
            return HttpResult(response.status)
    except urllib.error.HTTPError as err:
        return HttpResult(err.code, f"HTTP {err.code}")
    except (urllib.error.URLError, OSError, ValueError) as err:
        return HttpResult(0, str(getattr(err, "reason", err)))


class Webhooks:
    def __init__(self, ctx: Context, *, secret: bytes | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 backoff: tuple[float, ...] = BACKOFF_S, timeout_s: float = TIMEOUT_S) -> None:
        self.ctx = ctx
        self.secret = secret if secret is not None else ctx.settings.signing_key
        self.sleep = sleep
        self.backoff = backoff
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")

    async def emit(self, event: str, run_id: str, *, actor_id: str = "",
                   payload: dict[str, Any] | None = None) -> None:
        """Queue the deliveries of `event` for the run's playbook's URLs; returns without waiting."""
        run = await self.ctx.db.run(queries.get_run, run_id, readonly=True)
        if run is None:
            return
        playbook = self.ctx.playbooks.get(run.playbook_id) if self.ctx.playbooks else None
        urls = tuple(getattr(playbook.webhooks, LISTS.get(event, ""), ())) if playbook else ()
        if not urls:
            return
        now = self.ctx.clock.now_ms()
        self.ctx.tasks.spawn(self._deliver_all(event, run_id, actor_id, payload or {}, now, urls),
                             name=f"webhook:{event}:{run_id}")

    async def _deliver_all(self, event: str, run_id: str, actor_id: str, payload: dict[str, Any], now: int,
                           urls: tuple[str, ...]) -> None:
        view = await self.ctx.db.run(queries.load_view, run_id, True, readonly=True)
        if view is None:
            return
        body = run_json(view)
        team = self.ctx.teams.get(view.run.team_id)
        site = str(getattr(self.ctx.settings.mattermost, "url", "") or "").rstrip("/")
        body["channel_url"] = f"{site}/{team.name if team else view.run.team_id}/channels/{view.run.channel_id}"
        body["details_url"] = f"{self.ctx.public_url}/api/v0/runs/{run_id}"
        body["event"] = {"type": event, "at": iso(now), "user_id": actor_id, "payload": payload}
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        await asyncio.gather(*(self.deliver(url, event, raw) for url in urls))

    def sign(self, timestamp: str, raw: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()

    async def deliver(self, url: str, event: str, raw: bytes) -> bool:
        delivery = new_id()
        loop = asyncio.get_running_loop()
        result = HttpResult(0, "not sent")
        for attempt in range(len(self.backoff) + 1):
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "User-Agent": "playbooks-for-mattermost",
                       "X-Playbooks-Event": event, "X-Playbooks-Delivery": delivery,
                       "X-Playbooks-Timestamp": timestamp, "X-Playbooks-Signature": self.sign(timestamp, raw)}
            result = await loop.run_in_executor(self._executor, _post_blocking, url, raw, headers, self.timeout_s)
            if 200 <= result.status < 300:
                break
            final = 400 <= result.status < 500 and result.status not in (408, 429)
            log.warning("webhook failed url=%s event=%s attempt=%d status=%s error=%s", url, event, attempt + 1,
                        result.status, result.error)
            if final or attempt == len(self.backoff):
                break
            await self.sleep(self.backoff[attempt])
        ok = 200 <= result.status < 300
        error = "" if ok else (result.error or f"HTTP {result.status}")
        await self.ctx.db.run(updates.record_webhook, url, event, self.ctx.clock.now_ms(), ok, error)
        return ok

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
