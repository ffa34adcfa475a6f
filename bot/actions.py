"""Typed, signed button references.

Each button kind is a frozen dataclass (`CheckItem(run_id, item_id)`). It packs into the action's
`integration.context` as {"k": kind, "v": version, "f": [fields...], "s": signature}; Mattermost echoes
the context back on click, so the signature (HMAC-SHA256 over kind, version and fields with the bot's
secret) is what proves the click came from a button this bot posted. Kinds are permanent once posted:
add new kinds or versions, never rename.

Action ids must match `[A-Za-z0-9]+`: on v9-v11 the click route is
`/posts/{post_id}/actions/{action_id:[A-Za-z0-9]+}` and other ids 404 (mattermost-api.md §2.1).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

_ACTION_ID = re.compile(r"^[A-Za-z0-9]+$")


class ForgedAction(Exception):
    """The context is missing, malformed, of an unknown kind, or its signature does not verify."""


@dataclasses.dataclass(frozen=True)
class ActionRef:
    kind: ClassVar[str] = ""
    version: ClassVar[int] = 1


_KINDS: dict[str, type[ActionRef]] = {}

_Ref = TypeVar("_Ref", bound=ActionRef)


def action_kind(kind: str, version: int = 1) -> Callable[[type[_Ref]], type[_Ref]]:
    """Register a button kind; a duplicate kind is a programming error."""

    def register(cls: type[_Ref]) -> type[_Ref]:
        if kind in _KINDS:
            raise ValueError(f"button kind {kind!r} is registered twice")
        if not _ACTION_ID.match(kind):
            raise ValueError(f"button kind {kind!r} must be [A-Za-z0-9]+")
        cls.kind = kind
        cls.version = version
        _KINDS[kind] = cls
        return cls

    return register


def kinds() -> dict[str, type[ActionRef]]:
    return dict(_KINDS)


class Signer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the signing secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: list[Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return hmac.new(self._secret, raw, hashlib.sha256).hexdigest()[:32]

    def pack(self, ref: ActionRef) -> dict[str, Any]:
        fields = [getattr(ref, f.name) for f in dataclasses.fields(ref)]
        return {"k": ref.kind, "v": ref.version, "f": fields,
                "s": self._sign([ref.kind, ref.version, fields])}

    def unpack(self, context: Any) -> ActionRef:
        if not isinstance(context, dict):
            raise ForgedAction("no context")
        kind, version, fields, sig = (context.get(k) for k in ("k", "v", "f", "s"))
        if not isinstance(kind, str) or not isinstance(fields, list) or not isinstance(sig, str):
            raise ForgedAction("malformed context")
        expected = self._sign([kind, version, fields])
        if not hmac.compare_digest(expected, sig):
            raise ForgedAction("bad signature")
        cls = _KINDS.get(kind)
        if cls is None or cls.version != version:
            raise ForgedAction(f"unknown button kind {kind!r} v{version}")
        names = [f.name for f in dataclasses.fields(cls)]
        if len(names) != len(fields):
            raise ForgedAction("wrong number of fields")
        return cls(**dict(zip(names, fields, strict=True)))

    def pack_state(self, ref: ActionRef, *, user_id: str, channel_id: str, team_id: str, expires_at: int,
                   nonce: str = "") -> str:
        """A dialog's `state`: the reference (its kind is the dialog's purpose, its fields name the run),
        bound to the one person it was opened for, where, until when (ms), with a nonce so that it is
        accepted once (bot/server.py spends it). Mattermost hands the state to that person's client
        (`open_dialog`), so it must prove nothing more than this."""
        fields = [getattr(ref, f.name) for f in dataclasses.fields(ref)]
        nonce = nonce or secrets.token_hex(16)
        bound = [user_id, channel_id, team_id, int(expires_at), nonce]
        return json.dumps({"k": ref.kind, "v": ref.version, "f": fields, "b": bound,
                           "s": self._sign(["dialog", ref.kind, ref.version, fields, bound])},
                          separators=(",", ":"))

    def unpack_state(self, state: object) -> DialogState:
        """The state's reference and binding once its signature verifies; ForgedAction otherwise."""
        if not isinstance(state, str) or len(state) > MAX_STATE:
            raise ForgedAction("malformed state")
        try:
            body = json.loads(state)
        except (ValueError, RecursionError) as exc:
            raise ForgedAction("malformed state") from exc
        if not isinstance(body, dict):
            raise ForgedAction("malformed state")
        kind, version, fields, bound, sig = (body.get(k) for k in ("k", "v", "f", "b", "s"))
        if not (isinstance(kind, str) and isinstance(fields, list) and isinstance(sig, str)
                and isinstance(bound, list) and len(bound) == 5):
            raise ForgedAction("malformed state")
        if not hmac.compare_digest(self._sign(["dialog", kind, version, fields, bound]), sig):
            raise ForgedAction("bad signature")
        user_id, channel_id, team_id, expires_at, nonce = bound
        if not (isinstance(user_id, str) and isinstance(channel_id, str) and isinstance(team_id, str)
                and isinstance(expires_at, int) and isinstance(nonce, str)):
            raise ForgedAction("malformed state")
        ref = self.unpack({"k": kind, "v": version, "f": fields, "s": self._sign([kind, version, fields])})
        return DialogState(ref, user_id, channel_id, team_id, expires_at, nonce)


# A dialog state is a few hundred bytes; anything much longer was not made here.
MAX_STATE = 4096


@dataclasses.dataclass(frozen=True)
class DialogState:
    ref: ActionRef
    user_id: str
    channel_id: str
    team_id: str
    expires_at: int  # ms, the bot's clock
    nonce: str


def button(signer: Signer, action_id: str, name: str, ref: ActionRef, url: str,
           style: str = "default") -> dict[str, Any]:
    """A PostAction for message attachments."""
    if not _ACTION_ID.match(action_id):
        raise ValueError(f"action id {action_id!r} must be [A-Za-z0-9]+")
    return {"id": action_id, "type": "button", "name": name, "style": style,
            "integration": {"url": url, "context": signer.pack(ref)}}


# -- the button kinds -----------------------------------------------------------------------------

@action_kind("check")
@dataclasses.dataclass(frozen=True)
class CheckItem(ActionRef):
    run_id: str
    item_id: str


@action_kind("uncheck")
@dataclasses.dataclass(frozen=True)
class UncheckItem(ActionRef):
    run_id: str
    item_id: str


@action_kind("skip")
@dataclasses.dataclass(frozen=True)
class SkipItem(ActionRef):
    run_id: str
    item_id: str


@action_kind("restore")
@dataclasses.dataclass(frozen=True)
class RestoreItem(ActionRef):
    run_id: str
    item_id: str


@action_kind("take")
@dataclasses.dataclass(frozen=True)
class TakeItem(ActionRef):
    run_id: str
    item_id: str


@action_kind("runcommand")
@dataclasses.dataclass(frozen=True)
class RunItemCommand(ActionRef):
    """An item's slash command, run as the person who clicks (handlers/item_commands.py)."""

    run_id: str
    item_id: str


@action_kind("postupdate")
@dataclasses.dataclass(frozen=True)
class PostUpdate(ActionRef):
    run_id: str


@action_kind("snooze")
@dataclasses.dataclass(frozen=True)
class Snooze(ActionRef):
    run_id: str
    seconds: int


@action_kind("finish")
@dataclasses.dataclass(frozen=True)
class FinishRun(ActionRef):
    run_id: str


@action_kind("editrun")
@dataclasses.dataclass(frozen=True)
class EditRun(ActionRef):
    run_id: str


@action_kind("editrundialog")
@dataclasses.dataclass(frozen=True)
class EditRunDialog(ActionRef):
    run_id: str


@action_kind("startrun")
@dataclasses.dataclass(frozen=True)
class StartRunDialog(ActionRef):
    team_id: str
    channel_id: str


@action_kind("updatedialog")
@dataclasses.dataclass(frozen=True)
class UpdateDialog(ActionRef):
    run_id: str


@action_kind("finishdialog")
@dataclasses.dataclass(frozen=True)
class FinishDialog(ActionRef):
    run_id: str


@action_kind("retrodialog")
@dataclasses.dataclass(frozen=True)
class RetroDialog(ActionRef):
    run_id: str


@action_kind("retrofill")
@dataclasses.dataclass(frozen=True)
class FillRetro(ActionRef):
    run_id: str


@action_kind("retrocancel")
@dataclasses.dataclass(frozen=True)
class CancelRetro(ActionRef):
    run_id: str


@action_kind("kwstart")
@dataclasses.dataclass(frozen=True)
class StartFromKeyword(ActionRef):
    offer_id: str


@action_kind("kwdismiss")
@dataclasses.dataclass(frozen=True)
class DismissKeyword(ActionRef):
    offer_id: str
