"""Mattermost-style identifiers: 26 characters of a lower-case base32 alphabet.

Made like Mattermost's model.NewId: a random UUID (16 bytes) in base32 with Mattermost's own alphabet,
without padding. Ids of our rows therefore look like, and sort among, the server's own ids.
"""
from __future__ import annotations

import base64
import uuid

ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_FROM_STANDARD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)


def new_id() -> str:
    """A new random 26-character id."""
    return base64.b32encode(uuid.uuid4().bytes).decode("ascii").translate(_FROM_STANDARD)[:26]


def is_id(value: object) -> bool:
    """Whether `value` has the shape of a Mattermost id (26 characters of the alphabet)."""
    return isinstance(value, str) and len(value) == 26 and all(c in ALPHABET for c in value)
