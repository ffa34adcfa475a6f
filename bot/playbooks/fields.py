"""Field-by-field checks of parsed TOML values, collecting every problem with a "did you mean" hint."""
from __future__ import annotations

import difflib
import re
from datetime import timedelta
from pathlib import Path
from typing import Mapping

from bot.domain.durations import DurationError, parse_duration, parse_duration_or_off
from bot.playbooks.errors import PlaybookError
from bot.playbooks.model import TEXT_MAX

# Mattermost's username rule (model.IsValidUsername): a letter, then a-z 0-9 . - _, at most 64.
_USERNAME_RE = re.compile(r"^[a-z][a-z0-9.\-_]{0,63}$")
_GROUP_NAME_RE = re.compile(r"^[a-z0-9.\-_]{1,64}$")
_RESERVED_USERNAMES = frozenset({"all", "channel", "here", "matterbot", "system"})

# Names from the Mattermost plugin's export and other tools, and the key they correspond to here.
_ALIASES = {
    "name": "title", "summary": "description", "team_name": "team",
    "private": "private_channel", "public": "private_channel", "channel_name_template": "channel_name",
    "category_name": "category", "default_owner": "owner", "invited_users": "members",
    "participants": "members", "broadcast": "broadcast_channels", "message_on_join": "welcome",
    "status_update": "status_updates", "reminders": "status_updates", "retro": "retrospective",
    "sections": "checklists", "checklist": "checklists", "tasks": "items", "steps": "items",
    "reminder_timer": "interval", "owner": "assignee", "assigned_to": "assignee", "due_date": "due",
    "slash_command": "command", "on_create": "on_start", "on_creation": "on_start",
    "on_update": "on_status_update", "on_status": "on_status_update", "on_end": "on_finish",
    "on_complete": "on_finish",
}


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'the string "{shown}"'
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"  # TOML dates and times


class _Reader:
    """Collects every problem in one file instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[PlaybookError] = []

    def error(self, key: str, problem: str) -> None:
        self.errors.append(PlaybookError(self.path, key, problem))

    def keys(self, table: Mapping[str, object], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key.lower(), allowed, n=1, cutoff=0.6)
            alias = _ALIASES.get(key.lower())
            guess = alias if alias in allowed else (close[0] if close else None)
            hint = f'; did you mean "{guess}"?' if guess else f" (allowed: {', '.join(allowed)})"
            self.error(prefix + key, f"unknown key{hint}")

    def text(self, table: Mapping[str, object], key: str, path: str, *, default: str = "",
             required: bool = False, blank_ok: bool = True, limit: int = TEXT_MAX) -> str | None:
        """A string value (stripped of surrounding whitespace), or None after reporting a problem."""
        if key not in table:
            if required:
                self.error(path, "required; add " + f'{key} = "..."')
                return None
            return default
        value = table[key]
        if not isinstance(value, str):
            self.error(path, f"expected a string, got {_kind(value)}")
            return None
        value = value.strip()
        if not value and not blank_ok:
            self.error(path, "must not be empty")
            return None
        if len(value) > limit:
            self.error(path, f"is {len(value)} characters long; the limit is {limit}")
            return None
        return value

    def boolean(self, table: Mapping[str, object], key: str, path: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            hint = " (without quotes)" if isinstance(value, str) and value.lower() in ("true", "false") else ""
            self.error(path, f"expected true or false{hint}, got {_kind(value)}")
            return default
        return value

    def string_list(self, table: Mapping[str, object], key: str, path: str) -> list[tuple[str, str]]:
        """(key path, value) for each string in a list value."""
        if key not in table:
            return []
        value = table[key]
        if isinstance(value, str):
            self.error(path, f'expected a list, got {_kind(value)}; write {key} = ["{value}"]')
            return []
        if not isinstance(value, list):
            self.error(path, f"expected a list of strings, got {_kind(value)}")
            return []
        out = []
        for index, entry in enumerate(value, start=1):
            entry_path = f"{path}[{index}]"
            if not isinstance(entry, str):
                self.error(entry_path, f"expected a string, got {_kind(entry)}")
                continue
            out.append((entry_path, entry.strip()))
        return out

    def table(self, data: Mapping[str, object], key: str, path: str) -> dict[str, object] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(path, f"expected a table [{key}], got {_kind(value)}")
            return None
        return value

    def username(self, path: str, value: str, expected: str = "") -> str | None:
        """The normalised username (lower-case, no "@"), or None after reporting a problem."""
        name = value.removeprefix("@").lower()
        if not _USERNAME_RE.match(name):
            self.error(path, expected or f'"{value}" is not a valid username '
                                         f'(a letter, then letters, digits, ".", "-" or "_")')
            return None
        if name in _RESERVED_USERNAMES:
            self.error(path, f'"{value}" is a reserved word in Mattermost, not a username')
            return None
        return name

    def group_name(self, path: str, value: str) -> str | None:
        """A Mattermost group's name, normalised (lower-case, no "@"), or None after reporting a problem.
        model/group.go IsValidName: 1-64 of a-z 0-9 . - _, and not all/channel/here."""
        name = value.removeprefix("@").lower()
        if not _GROUP_NAME_RE.match(name):
            self.error(path, f'"{value}" is not a valid group name (1 to 64 of letters, digits, ".", "-", "_")')
            return None
        if name in {"all", "channel", "here"}:
            self.error(path, f'"{value}" is a reserved word in Mattermost, not a group name')
            return None
        return name

    def duration(self, table: Mapping[str, object], key: str, path: str, *, off_ok: bool,
                 minimum: timedelta = timedelta(seconds=1)) -> tuple[bool, timedelta | None]:
        """(ok, value); value None means "off" when off_ok."""
        value = table[key]
        if not isinstance(value, str):
            self.error(path, f'expected a duration string like "30m" or "1h30m", got {_kind(value)}')
            return False, None
        try:
            if off_ok:
                return True, parse_duration_or_off(value, minimum=minimum)
            return True, parse_duration(value, minimum=minimum)
        except DurationError as exc:
            self.error(path, str(exc))
            return False, None
