"""The values of a dialog submission, typed and bounded, and the lengths Mattermost allows.

Mattermost sends a text or textarea element's value as a JSON string, a select's as its option's value
(a string), a bool element's as a boolean (some clients: the string "true" or "false"); an element left
empty is missing or null. Anything else was not sent by our dialog, so it is an error on that field,
never `str(value)` stored and posted (a list posted as "['a']"). Text over its limit is an error on its
field too, before anything is stored: refused input is never kept.
"""
from __future__ import annotations

from typing import Any

from bot.context import Context
from bot.router import DialogSubmission

# server/public/model/integration_action.go: what a dialog element may hold at most (characters).
DIALOG_TEXT_MAX = 150  # DialogElementTextMaxLength
DIALOG_TEXTAREA_MAX = 3000  # DialogElementTextareaMaxLength
DIALOG_SELECT_MAX = 3000  # DialogElementSelectMaxLength
# server/public/model/post.go PostMessageMaxRunesV2: the longest post message Mattermost stores (runes,
# which is what len() of a Python str counts). Texts people give us must fit in it with our wording.
POST_MESSAGE_MAX_RUNES = 16383

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


class Fields:
    """Read a submission's values one by one; each problem lands in `errors` under its field's name."""

    def __init__(self, ctx: Context, sub: DialogSubmission) -> None:
        self._ctx = ctx
        self._values: dict[str, Any] = sub.submission
        self.errors: dict[str, str] = {}

    def text(self, name: str, limit: int | None) -> str:
        """A text or textarea value, stripped; "" when empty or refused. `limit=None`: the caller
        bounds it (a check shared with a slash command)."""
        value = self._values.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            return self._wrong(name, "text")
        value = value.strip()
        if limit is not None and len(value) > limit:
            self.error(name, self._ctx.render("fields/too_long.md.j2", length=len(value), limit=limit))
            return ""
        return value

    def choice(self, name: str) -> str:
        """A select's value (the caller checks it is one of the options); "" when empty or refused."""
        value = self._values.get(name)
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > DIALOG_SELECT_MAX:
            return self._wrong(name, "one of the listed options")
        return value

    def flag(self, name: str) -> bool:
        """A bool element's value; False when missing or refused."""
        value = self._values.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        self._wrong(name, "true or false")
        return False

    def error(self, name: str, text: str) -> None:
        """Report a problem with a field; the first one reported for a field is kept."""
        self.errors.setdefault(name, text)

    def _wrong(self, name: str, expected: str) -> str:
        self.error(name, self._ctx.render("fields/wrong_type.md.j2", expected=expected))
        return ""
