"""Proof that a request comes from Mattermost, for the user it names.

A slash command and a button click reach the bot with no signature of Mattermost's own except the
`trigger_id`. Mattermost makes it (server/public/model/integration_action.go `GenerateTriggerId`):

    trigger id = base64( "<client id>:<user id>:<millis>:" + base64(signature) )       (standard base64)
    signature  = ECDSA P-256 over SHA-256 of "<client id>:<user id>:<millis>:", ASN.1 DER

with the installation's key pair (server/channels/app/platform/config.go `EnsureAsymmetricSigningKey`),
whose public half it publishes as `AsymmetricSigningPublicKey` (base64 of the DER SubjectPublicKeyInfo)
in `GET /api/v4/config/client?format=old`, signed in or not. The server's own check, `DecodeAndVerify-
TriggerId`, takes the parts in this order: base64, exactly four `:` parts, age (within
`OutgoingIntegrationRequestsTimeout`, 30 s by default; 3 s on old servers), signature. The bot checks the
same, plus that the id names the user the request names, and that it was not used before: the id's
client part is spent in the database (storage/proofs.py), so a replay to any bot process is refused.

The age is measured on the wall clock (the server stamps its own), with a little slack either way for
clocks of two machines that disagree.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from bot.models import Gateway, MattermostError
from bot.tasks import Batcher, Tasks
from storage import proofs
from storage.db import Database

log = logging.getLogger(__name__)

KEY_FIELD = "AsymmetricSigningPublicKey"
MAX_AGE_MS = 30_000  # ServiceSettings.OutgoingIntegrationRequestsTimeout's default, the server's own limit
SKEW_MS = 5_000  # clocks of the Mattermost host and the bot's may differ this much, either way
# A spent proof is remembered well past any age at which it could still be accepted.
FORGET_AFTER_MS = 10 * 60_000
KEY_REFRESH_S = 60.0  # at most one fetch of the public key a minute (a rotated key shows as bad signatures)


class Unproven(Exception):
    """The request is not proven to come from Mattermost for its user; the text says why (for the log)."""


@dataclass(frozen=True)
class Trigger:
    client_id: str
    user_id: str
    at_ms: int


def load_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """The public key as the client config publishes it; ValueError when it is not a P-256 key."""
    try:
        key = load_der_public_key(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"{KEY_FIELD} is not a base64 DER public key: {err}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{KEY_FIELD} is not an ECDSA P-256 key")
    return key


def decode(trigger_id: str, user_id: str, key: ec.EllipticCurvePublicKey, now_ms: int) -> Trigger:
    """The trigger id's parts once it verifies and names `user_id`; else Unproven."""
    if not trigger_id or len(trigger_id) > 1024:
        raise Unproven("no trigger id" if not trigger_id else "trigger id too long")
    try:
        raw = base64.b64decode(trigger_id, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise Unproven("trigger id is not base64") from None
    parts = raw.split(":")
    if len(parts) != 4:
        raise Unproven("trigger id has not four parts")
    client_id, named, stamp, signature_b64 = parts
    if not stamp.isascii() or not stamp.isdigit():
        raise Unproven("trigger id has no time")
    at_ms = int(stamp)
    if now_ms - at_ms > MAX_AGE_MS + SKEW_MS or at_ms - now_ms > SKEW_MS:
        raise Unproven(f"trigger id is {(now_ms - at_ms) / 1000:.0f} s old")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except binascii.Error:
        raise Unproven("trigger id signature is not base64") from None
    try:
        key.verify(signature, f"{client_id}:{named}:{stamp}:".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Unproven("trigger id signature does not verify") from None
    if named != user_id:
        raise Unproven("trigger id names another user")
    return Trigger(client_id, named, at_ms)


class Proofs:
    """Verifies trigger ids with Mattermost's published key and spends each once."""

    def __init__(self, gateway: Gateway, db: Database, tasks: Tasks, *,
                 now: Callable[[], float] = time.time) -> None:
        self.gateway = gateway
        self.db = db
        self.now = now
        self.key: ec.EllipticCurvePublicKey | None = None
        self._fetched_at = -KEY_REFRESH_S
        self._fetching = asyncio.Lock()

        async def write(batch: list[tuple[str, str, int]]) -> list[bool | Exception]:
            forget = int(self.now() * 1000) - FORGET_AFTER_MS
            return list(await db.run(proofs.spend, batch, forget))

        # Concurrent clicks spend their trigger ids in one transaction (group commit).
        self._spend: Batcher[tuple[str, str, int], bool] = Batcher(write, tasks, name="spend-proofs")

    async def load_key(self) -> None:
        """Fetch the public key (start-up, and when signatures stop verifying: a rotated key)."""
        async with self._fetching:
            config = await self.gateway.client_config()
            self._fetched_at = time.monotonic()
            encoded = config.get(KEY_FIELD, "")
            if not encoded:
                raise ValueError(f"Mattermost publishes no {KEY_FIELD} in its client config")
            self.key = load_key(encoded)

    async def trigger(self, trigger_id: str, user_id: str) -> Trigger:
        """The request's trigger id, verified for `user_id` and spent; Unproven otherwise (nothing spent)."""
        now_ms = int(self.now() * 1000)
        try:
            found = self._decode(trigger_id, user_id, now_ms)
        except Unproven as err:
            if "does not verify" not in str(err) or time.monotonic() - self._fetched_at < KEY_REFRESH_S:
                raise
            try:  # the key may have been rotated: look once more, then decide
                await self.load_key()
            except (MattermostError, ValueError) as fetch_err:
                log.warning("could not fetch Mattermost's signing key again: %s", fetch_err)
                raise err from None
            found = self._decode(trigger_id, user_id, now_ms)
        if not await self._spend.submit((f"t:{found.client_id}", "trigger", found.at_ms)):
            raise Unproven("trigger id was used before")
        return found

    def _decode(self, trigger_id: str, user_id: str, now_ms: int) -> Trigger:
        if self.key is None:
            raise Unproven("Mattermost's signing key is not known")
        return decode(trigger_id, user_id, self.key, now_ms)

    async def spend(self, proof_id: str, kind: str, at_ms: int) -> bool:
        """Spend another one-time proof (a dialog state's nonce); False when it was spent before."""
        return await self._spend.submit((proof_id, kind, at_ms))

    async def unspend(self, proof_id: str) -> None:
        """Give a proof back: its request was refused with errors the person may correct and resend."""
        await self.db.run(proofs.unspend, proof_id)
