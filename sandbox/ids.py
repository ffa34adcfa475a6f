"""Identifiers and times as the real server makes them (model.NewId, model.GetMillis)."""
from __future__ import annotations

import secrets
import time

# Mattermost's ids are 26 characters of this base32 alphabet (model.NewId).
_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"


def new_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(26))


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == 26 and value.isalnum()


def now_ms() -> int:
    return int(time.time() * 1000)
