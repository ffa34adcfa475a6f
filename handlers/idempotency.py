"""`Idempotency-Key` for the API's POSTs and PATCHes (runs and playbooks), kept as rows
(storage.models.IdempotencyKey) so every bot process behind one address answers a retry the same way.

A request with the header claims (caller, route as requested, key) by inserting a row; the first insert
wins, in any process. Then:
- the same key with the same body (a hash of the JSON, key order and spacing aside, and of the query)
  gets the first answer again, marked with the header `Idempotent-Replayed: true`;
- the same key with another body: 422, nothing done;
- the same key while the first request is still being answered: 409 (try again shortly);
- answers of 5xx are not kept (the claim is released): a retry runs again.
Keys are kept KEEP_MS (a day) and then purged by the `idempotency` job; a claim left in flight for
STALE_MS by a process that died is taken over by the next request.

The work runs shielded from the client going away, so a claim is always answered or released.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable

from bot.context import Context
from bot.router import HttpJson, HttpReply, HttpRequest, HttpText, Router
from bot.scheduler import Wakeup
from storage import idempotency as rows

log = logging.getLogger(__name__)

router = Router("idempotency")

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
KEEP_MS = 24 * 3600 * 1000
STALE_MS = 5 * 60 * 1000
MAX_KEY = 255  # characters; a longer key is refused (400)
PURGE_EVERY_S = 3600.0


def body_hash(request: HttpRequest) -> str:
    """What makes two requests the same: the JSON body (parsed, so key order and spacing do not count;
    the raw bytes when it is not JSON) and the query string."""
    try:
        canonical = json.dumps(json.loads(request.body), sort_keys=True, separators=(",", ":")).encode() \
            if request.body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = request.body
    query = json.dumps(sorted(request.query.items())).encode()
    return hashlib.sha256(canonical + b"\n" + query).hexdigest()


def _status(reply: HttpReply) -> int:
    if isinstance(reply, (HttpText, HttpJson)):
        return reply.status
    return reply[0]


async def idempotent(request: HttpRequest, ctx: Context, route: str,
                     make: Callable[[], Awaitable[HttpReply]]) -> HttpReply:
    """`make()`'s answer, carried out once per Idempotency-Key (when the request has one)."""
    key = request.headers.get(HEADER, "")
    if not key:
        return await make()
    if len(key) > MAX_KEY or not key.isprintable():
        return 400, {"error": f"Idempotency-Key must be at most {MAX_KEY} printable characters.",
                     "problems": [{"path": "Idempotency-Key", "message": "too long or not printable"}]}
    caller = request.user.id
    now = ctx.clock.now_ms()
    claim = await ctx.db.run(rows.claim, caller, route, key, body_hash(request), now, now - KEEP_MS,
                             now - STALE_MS)
    if claim.outcome == "answered":
        return HttpJson(claim.status, dict(claim.answer or {}), {REPLAYED: "true"})
    if claim.outcome == "mismatch":
        return 422, {"error": "This Idempotency-Key was used with a different request; use a new key for a "
                              "new request."}
    if claim.outcome == "in_flight":
        return HttpJson(409, {"error": "A request with this Idempotency-Key is still being answered; try again "
                                       "shortly."}, {"Retry-After": "1"})

    async def carry() -> HttpReply:
        try:
            reply = await make()
        except BaseException:
            await ctx.db.run(rows.release, caller, route, key)
            raise
        status = _status(reply)
        if status >= 500 or isinstance(reply, HttpText):
            await ctx.db.run(rows.release, caller, route, key)
        else:
            body = reply.body if isinstance(reply, HttpJson) else reply[1]
            await ctx.db.run(rows.answer, caller, route, key, status, body)
        return reply

    # The client going away must not leave the claim in flight: the work and its record finish anyway.
    return await asyncio.shield(carry())


class Purger:
    """Deletes the keys older than KEEP_MS, every PURGE_EVERY_S (any process may; it is one DELETE)."""

    def __init__(self, ctx: Context, *, poll_s: float = PURGE_EVERY_S) -> None:
        self.ctx = ctx
        self.wakeup = Wakeup(ctx.clock, self._on_wake, poll_s=poll_s)

    @property
    def running(self) -> bool:
        return self.wakeup.running

    async def start(self) -> None:
        self.wakeup.start()
        self.wakeup.wake_at(None)

    async def stop(self) -> None:
        self.wakeup.stop()

    async def _on_wake(self) -> None:
        self.ctx.tasks.spawn(self.purge(), name="idempotency-purge")

    async def purge(self) -> int:
        try:
            gone = await self.ctx.db.run(rows.purge, self.ctx.clock.now_ms() - KEEP_MS)
        finally:
            self.wakeup.wake_at(None)
        if gone:
            log.info("purged %d idempotency keys older than a day", gone)
        return gone


router.job("idempotency", Purger)
