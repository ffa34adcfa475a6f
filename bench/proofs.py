"""What proving a request costs the bot (issue 10): verifying a trigger id's ECDSA P-256 signature, and
verifying plus spending it in the database (one row per id, group-committed like clicks).

    .venv/bin/python bench/proofs.py [--n 2000]

Prints medians and p99 in microseconds, and the same for a bare HMAC check of a button's signature (the
bot's own, which every click already paid) as the floor measured in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from bot.actions import CheckItem, Signer  # noqa: E402
from bot.proof import Proofs, decode, load_key  # noqa: E402
from bot.tasks import Tasks  # noqa: E402
from storage.db import Database, make_engine, migrate  # noqa: E402


def trigger(key: ec.EllipticCurvePrivateKey, user: str, n: int, now_ms: int) -> str:
    prefix = f"{n:026d}:{user}:{now_ms}:"
    signature = key.sign(prefix.encode(), ec.ECDSA(hashes.SHA256()))
    return base64.b64encode((prefix + base64.b64encode(signature).decode()).encode()).decode()


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


class KeyServer:
    def __init__(self, published: str) -> None:
        self.published = published

    async def client_config(self) -> dict[str, str]:
        return {"AsymmetricSigningPublicKey": self.published}


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    published = base64.b64encode(der).decode()
    public = load_key(published)
    user = "u" * 26
    now_ms = int(time.time() * 1000)
    ids = [trigger(key, user, n, now_ms) for n in range(args.n)]

    signer = Signer(b"0123456789abcdef0123456789abcdef")
    context = signer.pack(CheckItem("r" * 26, "i" * 26))
    floor = []
    for _ in range(args.n):
        t = time.perf_counter()
        signer.unpack(json.loads(json.dumps(context)))
        floor.append((time.perf_counter() - t) * 1e6)

    verify = []
    for trigger_id in ids:
        t = time.perf_counter()
        decode(trigger_id, user, public, now_ms)
        verify.append((time.perf_counter() - t) * 1e6)

    spend = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/proofs.db")
        migrate(engine)
        db = Database(engine)
        proofs = Proofs(KeyServer(published), db, Tasks(), now=lambda: now_ms / 1000)  # type: ignore[arg-type]
        await proofs.load_key()
        fresh = [trigger(key, user, n + args.n, now_ms) for n in range(min(args.n, 500))]
        for trigger_id in fresh:
            t = time.perf_counter()
            await proofs.trigger(trigger_id, user)
            spend.append((time.perf_counter() - t) * 1e6)
        await db.close()

    f_med = statistics.median(floor)
    for name, samples in (("button HMAC check (floor)", floor), ("trigger id verify", verify),
                          ("trigger id verify + spend (SQLite)", spend)):
        med = statistics.median(samples)
        print(f"{name:36s} median {med:8.1f} us  p99 {pct(samples, 99):8.1f} us  "
              f"x{med / f_med:6.1f} the floor  (n={len(samples)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
