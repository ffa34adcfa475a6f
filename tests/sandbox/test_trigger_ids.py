"""Trigger ids signed as the real server signs them (model.GenerateTriggerId: ECDSA P-256, SHA-256, ASN.1
DER) and checked as it checks them (model.DecodeAndVerifyTriggerId), and the public key a bot verifies
them with (AsymmetricSigningPublicKey in the client config, app/platform/config.go
regenerateClientConfig)."""
from __future__ import annotations

import base64

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sandbox.errors import AppError
from sandbox.server import Sandbox
from sandbox.triggers import TriggerIds

USER = "u" * 26


def verify_like_a_bot(public_key_b64: str, trigger_id: str, now_ms: int, timeout_ms: int = 30_000) -> str:
    """A verifier that knows only the published key: returns the user id or raises ValueError."""
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    raw = base64.b64decode(trigger_id, validate=True)
    parts = raw.split(b":")
    if len(parts) != 4:
        raise ValueError("missing data")
    client_id, user_id, stamp, signature_b64 = parts
    if now_ms - int(stamp) > timeout_ms:
        raise ValueError("expired")
    try:
        key.verify(base64.b64decode(signature_b64, validate=True),
                   client_id + b":" + user_id + b":" + stamp + b":", ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad signature") from None
    return user_id.decode()


def parts_of(trigger_id: str) -> list[bytes]:
    return base64.b64decode(trigger_id).split(b":")


def join(parts: list[bytes]) -> str:
    return base64.b64encode(b":".join(parts)).decode()


def error_id(triggers: TriggerIds, trigger_id: str, lifetime_s: float = 30) -> str:
    with pytest.raises(AppError) as info:
        triggers.decode(trigger_id, lifetime_s)
    assert info.value.status_code == 400
    return info.value.id


def test_the_id_has_the_real_shape_and_round_trips() -> None:
    triggers = TriggerIds(clock=lambda: 1_700_000_000.0)
    client_id, trigger_id = triggers.generate(USER)
    ctid, user, stamp, signature_b64 = parts_of(trigger_id)
    assert (ctid.decode(), user.decode(), stamp) == (client_id, USER, b"1700000000000")
    assert len(client_id) == 26
    # An ASN.1 DER SEQUENCE{r, s}, as Go's ecdsa.PrivateKey.Sign returns it.
    r, s = decode_dss_signature(base64.b64decode(signature_b64, validate=True))
    assert r > 0 and s > 0
    assert triggers.decode(trigger_id, 30) == (client_id, USER)


def test_a_verifier_with_only_the_published_key_accepts_and_refuses() -> None:
    triggers = TriggerIds(clock=lambda: 1_700_000_000.0)
    now = triggers.now_ms()
    _, good = triggers.generate(USER)
    assert verify_like_a_bot(triggers.public_key_b64, good, now) == USER

    ctid, user, stamp, sig = parts_of(good)
    altered_user = join([ctid, b"v" * 26, stamp, sig])
    changed_millis = join([ctid, user, str(int(stamp) + 1).encode(), sig])
    truncated_sig = join([ctid, user, stamp, base64.b64encode(base64.b64decode(sig)[:-4])])
    for forged in (altered_user, changed_millis, truncated_sig, "garbage", base64.b64encode(b"a:b").decode()):
        with pytest.raises((ValueError, AssertionError)):
            verify_like_a_bot(triggers.public_key_b64, forged, now)
    # Another sandbox's key does not vouch for this one's ids.
    with pytest.raises(ValueError):
        verify_like_a_bot(TriggerIds().public_key_b64, good, now)


def test_the_sandbox_refuses_with_the_real_error_ids_in_the_real_order() -> None:
    clock = [1_700_000_000.0]
    triggers = TriggerIds(clock=lambda: clock[0])
    _, good = triggers.generate(USER)
    ctid, user, stamp, sig = parts_of(good)
    assert error_id(triggers, "not base64!") == "interactive_message.decode_trigger_id.base64_decode_failed"
    assert error_id(triggers, join([ctid, user, stamp])) == "interactive_message.decode_trigger_id.missing_data"
    assert error_id(triggers, join([ctid, user, stamp, sig, b""])) == (
        "interactive_message.decode_trigger_id.missing_data")
    assert error_id(triggers, join([ctid, user, stamp, b"%%%"])) == (
        "interactive_message.decode_trigger_id.base64_decode_failed_signature")
    truncated = base64.b64encode(base64.b64decode(sig)[:-4])
    assert error_id(triggers, join([ctid, user, stamp, truncated])) == (
        "interactive_message.decode_trigger_id.signature_decode_failed")
    assert error_id(triggers, join([ctid, b"v" * 26, stamp, sig])) == (
        "interactive_message.decode_trigger_id.verify_signature_failed")
    assert error_id(triggers, join([ctid, user, str(int(stamp) - 1).encode(), sig])) == (
        "interactive_message.decode_trigger_id.verify_signature_failed")
    # A timestamp ParseInt rejects counts as 0, so age beats the signature check (`timestamp, _ :=`).
    assert error_id(triggers, join([ctid, user, b"soon", sig])) == "interactive_message.decode_trigger_id.expired"
    clock[0] += 30.001
    assert error_id(triggers, good) == "interactive_message.decode_trigger_id.expired"


def test_go_asn1_leniency_bytes_after_the_signature_are_ignored() -> None:
    # asn1.Unmarshal returns the rest and DecodeAndVerifyTriggerId discards it, so the real server accepts
    # a valid DER signature followed by junk; a bot verifying with cryptography's DER parser would not.
    triggers = TriggerIds(clock=lambda: 1_700_000_000.0)
    client_id, good = triggers.generate(USER)
    ctid, user, stamp, sig = parts_of(good)
    padded = join([ctid, user, stamp, base64.b64encode(base64.b64decode(sig) + b"junk")])
    assert triggers.decode(padded, 30) == (client_id, USER)


def test_make_forges_ids_the_sandbox_would_make_expired_ones_included() -> None:
    triggers = TriggerIds(clock=lambda: 1_700_000_000.0)
    now = triggers.now_ms()
    old = triggers.make(USER, millis=now - 31_000, client_id="c" * 26)
    assert parts_of(old)[:3] == [b"c" * 26, USER.encode(), str(now - 31_000).encode()]
    assert error_id(triggers, old) == "interactive_message.decode_trigger_id.expired"
    assert triggers.decode(old, 60) == ("c" * 26, USER)
    # Replay: the server keeps no record of used ids, so the same id decodes as long as it is young.
    fresh = triggers.make(USER)
    assert triggers.decode(fresh, 30) == triggers.decode(fresh, 30)


def test_a_given_key_is_used_and_only_p256_is_accepted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    triggers = TriggerIds(key)
    assert triggers.public_key_der == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError):
        TriggerIds(ec.generate_private_key(ec.SECP384R1()))


async def test_the_client_config_publishes_the_key_signed_out_and_signed_in(sandbox, api) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(sandbox.url + "/api/v4/config/client", params={"format": "old"}) as r:
            assert r.status == 200
            signed_out = (await r.json())["AsymmetricSigningPublicKey"]
    status, signed_in, _ = await api.get("/config/client?format=old")
    assert status == 200
    assert signed_in["AsymmetricSigningPublicKey"] == signed_out == sandbox.hub.triggers.public_key_b64
    key = serialization.load_der_public_key(base64.b64decode(signed_out))
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    _, trigger_id = sandbox.hub.triggers.generate("u" * 26)
    assert verify_like_a_bot(signed_out, trigger_id, sandbox.hub.triggers.now_ms()) == "u" * 26


async def test_a_sandbox_can_be_given_its_signing_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    async with Sandbox(signing_key=key) as sb:
        async with aiohttp.ClientSession() as s:
            async with s.get(sb.url + "/api/v4/config/client?format=old") as r:
                published = (await r.json())["AsymmetricSigningPublicKey"]
    assert base64.b64decode(published) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
