"""Trigger ids exactly as the real server makes and checks them: ECDSA P-256 over SHA-256, ASN.1 DER.

server/public/model/integration_action.go:
- GenerateTriggerId: triggerData = "<26-char new id>:<user_id>:<millis>:" (trailing colon included);
  signature = crypto.Signer.Sign(SHA-256(triggerData)), which for an *ecdsa.PrivateKey is ASN.1 DER
  SEQUENCE{r, s}; trigger id = StdEncoding(triggerData + StdEncoding(signature)).
- DecodeAndVerifyTriggerId checks, in this order: base64 (base64_decode_failed), exactly 4 ':' parts
  (missing_data), age against the timeout (expired), base64 of the signature
  (base64_decode_failed_signature), ASN.1 of the signature (signature_decode_failed), ecdsa.Verify
  (verify_signature_failed). All 400, prefix interactive_message.decode_trigger_id.

The key is one P-256 pair per installation (server/channels/app/platform/config.go
EnsureAsymmetricSigningKey: ecdsa.GenerateKey(elliptic.P256())), here one per sandbox. Its public half is
published as AsymmetricSigningPublicKey = StdEncoding(x509.MarshalPKIXPublicKey) in both client configs
(platform/config.go regenerateClientConfig); see `public_key_b64`.
(Action cookies for ephemeral posts live with ops.send_ephemeral: ops.encode_action_cookie.)
"""
from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from sandbox.errors import AppError
from sandbox.ids import new_id

# Order of the P-256 group: ecdsa.Verify refuses r or s outside [1, N-1] (crypto/ecdsa verifyLegacy / verify).
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_INT64_MAX = 2**63 - 1
_GO_INT = re.compile(rb"[+-]?[0-9]+")  # what strconv.ParseInt(s, 10, 64) accepts


def _trigger_error(suffix: str) -> AppError:
    return AppError(f"interactive_message.decode_trigger_id.{suffix}", 400,
                    "Unable to decode the trigger id for the interactive dialog.")


def _go_b64decode(text: bytes) -> bytes:
    """base64.StdEncoding.DecodeString: padding required, but '\\r' and '\\n' are skipped anywhere."""
    return base64.b64decode(text.replace(b"\r", b"").replace(b"\n", b""), validate=True)


def _go_parse_int(raw: bytes) -> int:
    """`timestamp, _ := strconv.ParseInt(s, 10, 64)`: 0 on a syntax error, clamped on overflow."""
    if not _GO_INT.fullmatch(raw):
        return 0
    return max(-_INT64_MAX - 1, min(_INT64_MAX, int(raw)))


def _der_tlv(data: bytes, offset: int, tag: int) -> tuple[bytes, int]:
    """One DER element with this tag at offset: (contents, offset after it), as encoding/asn1 parses it
    (definite, minimally encoded lengths only). Raises ValueError."""
    if offset + 2 > len(data) or data[offset] != tag:
        raise ValueError("tag")
    length, offset = data[offset + 1], offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data) or data[offset] == 0:
            raise ValueError("length")  # indefinite, too long, or leading zero
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
        if length < 0x80:
            raise ValueError("non-minimal length")
    if offset + length > len(data):
        raise ValueError("truncated")
    return data[offset:offset + length], offset + length


def _der_integer(data: bytes, offset: int) -> tuple[int, int]:
    body, offset = _der_tlv(data, offset, 0x02)
    # encoding/asn1 checkInteger: not empty, no redundant leading 0x00 / 0xff.
    if not body or len(body) > 1 and (body[0] == 0 and body[1] < 0x80 or body[0] == 0xFF and body[1] >= 0x80):
        raise ValueError("integer")
    return int.from_bytes(body, "big", signed=True), offset


def parse_go_ecdsa_signature(signature: bytes) -> tuple[int, int]:
    """`asn1.Unmarshal(signature, &struct{R, S *big.Int})`: bytes after the SEQUENCE and extra elements
    inside it are ignored by Go (the rest is discarded; "We allow extra bytes at the end of the SEQUENCE").
    Raises ValueError where Go returns an error."""
    body, _ = _der_tlv(signature, 0, 0x30)
    r, offset = _der_integer(body, 0)
    s, _ = _der_integer(body, offset)
    return r, s


class TriggerIds:
    """Makes and checks trigger ids with one P-256 key. `clock` returns seconds since the epoch; tests
    replace it. Pass `private_key` (an ec.EllipticCurvePrivateKey on SECP256R1) to fix the key."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if private_key is None:
            private_key = ec.generate_private_key(ec.SECP256R1())
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("the real server only loads P-256 keys (EnsureAsymmetricSigningKey)")
        self.private_key = private_key
        self.clock = clock

    # -- the public half, as the server publishes it -------------------------------------------------
    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @property
    def public_key_der(self) -> bytes:
        """x509.MarshalPKIXPublicKey: DER SubjectPublicKeyInfo."""
        return self.public_key.public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def public_key_b64(self) -> str:
        """The client config's AsymmetricSigningPublicKey."""
        return base64.b64encode(self.public_key_der).decode()

    # -- making ----------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def sign(self, data: bytes | str) -> bytes:
        """ASN.1 DER ECDSA signature over SHA-256(data), as crypto.Signer.Sign returns it."""
        if isinstance(data, str):
            data = data.encode()
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def make(self, user_id: str, *, millis: int | None = None, client_id: str | None = None) -> str:
        """A trigger id the sandbox would make for user_id at `millis` (default: now). For tests of a
        bot's verification: pass an old `millis` for an expired id; decode/alter the result to forge."""
        client_id = new_id() if client_id is None else client_id
        stamp = self.now_ms() if millis is None else millis
        data = f"{client_id}:{user_id}:{stamp}:"
        signature = base64.b64encode(self.sign(data)).decode()
        return base64.b64encode((data + signature).encode()).decode()

    def generate(self, user_id: str) -> tuple[str, str]:
        """(client trigger id, signed trigger id) for a user, valid from now (model.GenerateTriggerId)."""
        client_id = new_id()
        return client_id, self.make(user_id, client_id=client_id)

    # -- checking --------------------------------------------------------------------------------------
    def decode(self, trigger_id: Any, lifetime_s: float) -> tuple[str, str]:
        """(client trigger id, user id), or AppError with the real ids, checked in the real order
        (model.DecodeAndVerifyTriggerId)."""
        try:
            raw = _go_b64decode(str(trigger_id).encode("utf-8", "surrogateescape"))
        except (ValueError, binascii.Error):
            raise _trigger_error("base64_decode_failed") from None
        parts = raw.split(b":")  # Go splits the bytes as they are: no UTF-8 needed
        if len(parts) != 4:
            raise _trigger_error("missing_data")
        client_id, user_id, stamp, signature_b64 = parts
        # Lifetime = OutgoingIntegrationRequestsTimeout since ~v9.0 (3 s before).
        if self.now_ms() - _go_parse_int(stamp) > int(lifetime_s * 1000):
            raise _trigger_error("expired")
        try:
            signature = _go_b64decode(signature_b64)
        except (ValueError, binascii.Error):
            raise _trigger_error("base64_decode_failed_signature") from None
        try:
            r, s = parse_go_ecdsa_signature(signature)
        except ValueError:
            raise _trigger_error("signature_decode_failed") from None
        if not (0 < r < _P256_N and 0 < s < _P256_N):
            raise _trigger_error("verify_signature_failed")
        try:
            # Re-encoded minimally: Go verifies the parsed (r, s), whatever trailing bytes it skipped.
            self.public_key.verify(encode_dss_signature(r, s), client_id + b":" + user_id + b":" + stamp + b":",
                                   ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise _trigger_error("verify_signature_failed") from None
        return client_id.decode("utf-8", "replace"), user_id.decode("utf-8", "replace")
