"""Signed trigger ids, shaped like the real server's.

Trigger ids (model.GenerateTriggerId / DecodeAndVerifyTriggerId in server/public/model/integration_action.go):
    base64( clientTriggerId ":" userId ":" millis ":" base64(signature) )
The real server signs with ECDSA-SHA256; the sandbox uses HMAC-SHA256 with a per-sandbox secret, which is
just as unforgeable for a bot and keeps the same wire format and the same error ids.
(Action cookies for ephemeral posts live with ops.send_ephemeral: ops.encode_action_cookie.)
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any, Callable

from sandbox.errors import AppError
from sandbox.ids import new_id


def _trigger_error(suffix: str) -> AppError:
    return AppError(f"interactive_message.decode_trigger_id.{suffix}", 400,
                    "Unable to decode the trigger id for the interactive dialog.")


class TriggerIds:
    """Makes and checks trigger ids. `clock` returns seconds since the epoch; tests replace it."""

    def __init__(self, secret: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _sign(self, payload: str) -> bytes:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()

    def generate(self, user_id: str) -> tuple[str, str]:
        """(client trigger id, signed trigger id) for a user, valid from now."""
        client_id = new_id()
        payload = f"{client_id}:{user_id}:{self._now_ms()}:"
        signature = base64.b64encode(self._sign(payload)).decode()
        return client_id, base64.b64encode((payload + signature).encode()).decode()

    def decode(self, trigger_id: Any, lifetime_s: float) -> tuple[str, str]:
        """(client trigger id, user id), or AppError with the real ids, checked in the real order."""
        try:
            raw = base64.b64decode(str(trigger_id), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise _trigger_error("base64_decode_failed") from None
        parts = raw.split(":")
        if len(parts) != 4:
            raise _trigger_error("missing_data")
        client_id, user_id, stamp, signature_b64 = parts
        try:
            stamp_ms = int(stamp)
        except ValueError:
            stamp_ms = 0  # Go's strconv.ParseInt error is ignored there: 0, i.e. expired
        # Lifetime = OutgoingIntegrationRequestsTimeout since ~v9.0 (3 s before).
        if self._now_ms() - stamp_ms > int(lifetime_s * 1000):
            raise _trigger_error("expired")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except ValueError:
            raise _trigger_error("signature_decode_failed") from None
        expected = self._sign(f"{client_id}:{user_id}:{stamp}:")
        if not hmac.compare_digest(signature, expected):
            raise _trigger_error("verify_signature_failed")
        return client_id, user_id
