"""bot.proof: trigger ids verified as Mattermost makes them (ECDSA P-256 over "<id>:<user>:<millis>:"),
for the user the request names, fresh, and spent once across processes (the database)."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bot.proof import MAX_AGE_MS, SKEW_MS, Proofs, Unproven, decode, load_key
from bot.tasks import Tasks
from storage.db import Database, make_engine, migrate

NOW = 1_767_225_600_000
USER = "aliceuserid0000000000000000"[:26]


def make(key: ec.EllipticCurvePrivateKey, user: str = USER, at: int = NOW, client: str = "c" * 26) -> str:
    prefix = f"{client}:{user}:{at}:"
    signature = key.sign(prefix.encode(), ec.ECDSA(hashes.SHA256()))
    return base64.b64encode((prefix + base64.b64encode(signature).decode()).encode()).decode()


def published(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_a_trigger_id_mattermost_made_for_this_user_verifies(key: ec.EllipticCurvePrivateKey) -> None:
    found = decode(make(key), USER, load_key(published(key)), NOW + 200)
    assert (found.client_id, found.user_id, found.at_ms) == ("c" * 26, USER, NOW)


def test_forged_altered_and_stale_trigger_ids_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    public = load_key(published(key))
    good = base64.b64decode(make(key)).decode()
    prefix, signature = good.rsplit(":", 1)
    other = ec.generate_private_key(ec.SECP256R1())

    def enc(raw: str) -> str:
        return base64.b64encode(raw.encode()).decode()

    cases = {
        "another user in the request": (make(key), "bobuserid"),
        "user changed in the id": (enc(good.replace(USER, "b" * 26)), "b" * 26),
        "time changed": (enc(good.replace(str(NOW), str(NOW + 1))), USER),
        "signature cut short": (enc(f"{prefix}:{signature[:-8]}"), USER),
        "signed by another key": (make(other), USER),
        "not base64": ("%%%", USER),
        "three parts": (enc(f"{'c' * 26}:{USER}:{NOW}"), USER),
        "no time": (enc(f"{'c' * 26}:{USER}:soon:{signature}"), USER),
        "empty": ("", USER),
        "far too long": ("A" * 5000, USER),
        "too old": (make(key, at=NOW - MAX_AGE_MS - SKEW_MS - 1), USER),
        "from the future": (make(key, at=NOW + SKEW_MS + 1), USER),
    }
    for name, (trigger_id, user) in cases.items():
        with pytest.raises(Unproven):
            decode(trigger_id, user, public, NOW)
            pytest.fail(name)


def test_the_published_key_must_be_a_p256_key() -> None:
    with pytest.raises(ValueError, match="not a base64 DER"):
        load_key("bm90IGEga2V5")
    rsa_like = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError, match="P-256"):
        load_key(published(rsa_like))


class KeyServer:
    """A gateway that only serves the client config, with a key that can rotate."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        self.fetches = 0

    async def client_config(self) -> dict[str, str]:
        self.fetches += 1
        return {"SiteURL": "http://mm.test", "AsymmetricSigningPublicKey": published(self.key)}


async def test_each_trigger_id_is_spent_once_even_by_two_bot_processes(tmp_path: Path,
                                                                      key: ec.EllipticCurvePrivateKey) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    migrate(engine)
    first, second = Database(engine), Database(engine)
    server = KeyServer(key)
    a = Proofs(server, first, Tasks(), now=lambda: NOW / 1000)  # type: ignore[arg-type]
    b = Proofs(server, second, Tasks(), now=lambda: NOW / 1000)  # type: ignore[arg-type]
    await a.load_key()
    await b.load_key()
    trigger = make(key)
    assert (await a.trigger(trigger, USER)).user_id == USER
    for proofs in (a, b):
        with pytest.raises(Unproven, match="used before"):
            await proofs.trigger(trigger, USER)
    # A refused id is not spent: the right user can still use one that was sent with the wrong name.
    fresh = make(key, client="d" * 26)
    with pytest.raises(Unproven, match="another user"):
        await a.trigger(fresh, "mallory")
    assert (await b.trigger(fresh, USER)).client_id == "d" * 26
    await first.close()
    await second.close()


async def test_a_rotated_key_is_fetched_again_at_most_once_a_minute(tmp_path: Path,
                                                                   key: ec.EllipticCurvePrivateKey) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    migrate(engine)
    db = Database(engine)
    server = KeyServer(key)
    proofs = Proofs(server, db, Tasks(), now=lambda: NOW / 1000)  # type: ignore[arg-type]
    await proofs.load_key()
    proofs._fetched_at -= 120  # the key was fetched two minutes ago
    server.key = ec.generate_private_key(ec.SECP256R1())  # the admin regenerated it
    assert (await proofs.trigger(make(server.key), USER)).user_id == USER
    assert server.fetches == 2
    # A forgery right after does not make the bot fetch again (at most one fetch a minute).
    with pytest.raises(Unproven, match="does not verify"):
        await proofs.trigger(make(ec.generate_private_key(ec.SECP256R1()), client="e" * 26), USER)
    assert server.fetches == 2
    await db.close()
