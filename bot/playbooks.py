"""Playbook files (`playbooks/<id>.toml`) -> validated, frozen `Playbook` definitions.

The file format is a user contract (contracts.md, "Playbook files"). Every problem is reported as a
`PlaybookError` naming the file, the key path (`checklists[2].items[3].due`; list positions count
from 1, as people count the `[[checklists]]` blocks in the file) and what is wrong. One broken
file never stops the others from loading.

Usernames, teams and channels are only checked for their form here; whether they exist on the
server is for `python -m bot check` (see `Playbook.usernames`).
"""
from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping
from urllib.parse import urlsplit

from bot.domain.durations import DurationError, parse_duration, parse_duration_or_off
from bot.domain.naming import SERVER_NAME_RE, TemplateError, validate_channel_template

__all__ = [
    "Assignee",
    "ItemSpec",
    "ChecklistSpec",
    "StatusUpdates",
    "Retrospective",
    "Webhooks",
    "Playbook",
    "PlaybookError",
    "PlaybookInvalid",
    "PlaybookNotFound",
    "parse_playbook",
    "load_playbook",
    "load_playbooks",
    "find_playbook",
    "DEFAULT_CATEGORY",
    "DEFAULT_CHANNEL_NAME",
    "DEFAULT_RETROSPECTIVE_TEMPLATE",
]

DEFAULT_CHANNEL_NAME = "{name}"
DEFAULT_CATEGORY = "Playbook runs"
DEFAULT_STATUS_INTERVAL = timedelta(days=1)
DEFAULT_RETROSPECTIVE_TEMPLATE = (
    "### Summary\n\n### Impact\n\n### Contributing factors\n\n### What was done\n\n"
    "### What did we learn?\n\n### Follow-up tasks\n\n### Timeline highlights\n"
)

# Limits, and where they come from.
CATEGORY_MAX_BYTES = 22  # Mattermost sidebar category names (playbooks-reference.md §8)
WEBHOOKS_MAX = 64  # per list, as the plugin allows
TITLE_MAX = 1024  # a run name's limit; titles also become channel and run names
ITEM_DESCRIPTION_MAX = 4000  # the item dialog's limit
TEXT_MAX = 16000  # texts become posts; Mattermost posts hold 16383 runes
COMMAND_MAX = 4000
ID_MAX = 64
FILE_MAX_BYTES = 1 << 20
REMINDER_MIN = timedelta(minutes=1)  # anything shorter would flood the channel

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Mattermost's username rule (model.IsValidUsername): a letter, then a-z 0-9 . - _, at most 64.
_USERNAME_RE = re.compile(r"^[a-z][a-z0-9.\-_]{0,63}$")
_RESERVED_USERNAMES = frozenset({"all", "channel", "here", "matterbot", "system"})
_TEAM_RE = re.compile(r"^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$")
_COMMAND_RE = re.compile(r"^/[^\s/]\S*")

_TOP_KEYS = ("title", "description", "team", "private_channel", "channel_name", "category", "owner",
             "members", "broadcast_channels", "welcome", "status_updates", "retrospective",
             "webhooks", "checklists")
_STATUS_KEYS = ("enabled", "interval", "template")
_RETRO_KEYS = ("enabled", "template", "reminder")
_WEBHOOK_KEYS = ("on_start", "on_status_update", "on_finish")
_CHECKLIST_KEYS = ("title", "items")
_ITEM_KEYS = ("title", "description", "assignee", "due", "command")

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

# --- the model ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Assignee:
    """Who an item goes to at run start: the run's owner, its creator, or one user."""
    kind: Literal["owner", "creator", "user"]
    username: str = ""  # only for kind "user", lower-case, without "@"


@dataclass(frozen=True)
class ItemSpec:
    title: str
    description: str = ""
    assignee: Assignee | None = None
    due: timedelta | None = None  # after the run starts
    command: str = ""  # slash command, may contain $vars


@dataclass(frozen=True)
class ChecklistSpec:
    title: str
    items: tuple[ItemSpec, ...] = ()


@dataclass(frozen=True)
class StatusUpdates:
    enabled: bool = False  # on when the file has a [status_updates] table, unless enabled = false
    interval: timedelta = DEFAULT_STATUS_INTERVAL  # first reminder after start, then after each update
    template: str = ""


@dataclass(frozen=True)
class Retrospective:
    enabled: bool = False  # on when the file has a [retrospective] table, unless enabled = false
    template: str = DEFAULT_RETROSPECTIVE_TEMPLATE
    remind: bool = True  # false with reminder = "off"
    reminder_interval: timedelta | None = None  # repeat interval; None = remind once at finish


@dataclass(frozen=True)
class Webhooks:
    on_start: tuple[str, ...] = ()
    on_status_update: tuple[str, ...] = ()
    on_finish: tuple[str, ...] = ()


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    description: str = ""
    team: str | None = None  # team URL name; None = every team the bot belongs to
    private_channel: bool = True
    channel_name: str = DEFAULT_CHANNEL_NAME  # display-name template, see bot.domain.naming
    category: str = DEFAULT_CATEGORY  # "" = leave the channel where Mattermost puts it
    owner: str | None = None  # username; None = whoever starts the run
    members: tuple[str, ...] = ()
    broadcast_channels: tuple[str, ...] = ()  # channel URL names in the run's team
    welcome: str = ""
    status_updates: StatusUpdates = StatusUpdates()
    retrospective: Retrospective = Retrospective()
    webhooks: Webhooks = Webhooks()
    checklists: tuple[ChecklistSpec, ...] = ()
    path: Path | None = field(default=None, compare=False)

    @property
    def channel_type(self) -> Literal["O", "P"]:
        """Mattermost's channel type for run channels: "P" private, "O" public."""
        return "P" if self.private_channel else "O"

    def usernames(self) -> set[str]:
        """Every username the playbook names (owner, members, item assignees), for `bot check`."""
        names = set(self.members)
        if self.owner:
            names.add(self.owner)
        for checklist in self.checklists:
            for item in checklist.items:
                if item.assignee and item.assignee.kind == "user":
                    names.add(item.assignee.username)
        return names


class PlaybookError(Exception):
    """One problem in one playbook file: str() is "<file>: <key path>: <what is wrong>"."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = Path(path)
        self.key = key
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.key}: {self.problem}" if self.key else f"{self.path}: {self.problem}"

    def __repr__(self) -> str:
        return f"PlaybookError({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlaybookError) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class PlaybookInvalid(Exception):
    """A playbook file with one or more problems; `errors` lists them all."""

    def __init__(self, errors: Iterable[PlaybookError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class PlaybookNotFound(LookupError):
    """No playbook, or several, match a query; `choices` are the candidates to offer."""

    def __init__(self, message: str, choices: Iterable[Playbook]) -> None:
        super().__init__(message)
        self.choices = tuple(choices)


# --- validation -----------------------------------------------------------------------------

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

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key.lower(), allowed, n=1, cutoff=0.6)
            alias = _ALIASES.get(key.lower())
            guess = alias if alias in allowed else (close[0] if close else None)
            hint = f'; did you mean "{guess}"?' if guess else f" (allowed: {', '.join(allowed)})"
            self.error(prefix + key, f"unknown key{hint}")

    def text(self, table: Mapping[str, Any], key: str, path: str, *, default: str = "",
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

    def boolean(self, table: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            hint = " (without quotes)" if isinstance(value, str) and value.lower() in ("true", "false") else ""
            self.error(path, f"expected true or false{hint}, got {_kind(value)}")
            return default
        return value

    def string_list(self, table: Mapping[str, Any], key: str, path: str) -> list[tuple[str, str]]:
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

    def table(self, data: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
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

    def duration(self, table: Mapping[str, Any], key: str, path: str, *, off_ok: bool,
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


def parse_playbook(data: Mapping[str, Any], *, playbook_id: str, path: Path | str) -> Playbook:
    """Validate parsed TOML into a Playbook; raises PlaybookInvalid listing every problem."""
    path = Path(path)
    r = _Reader(path)
    r.keys(data, _TOP_KEYS, "")

    title = r.text(data, "title", "title", required=True, blank_ok=False, limit=TITLE_MAX)
    description = r.text(data, "description", "description") or ""
    welcome = r.text(data, "welcome", "welcome") or ""
    private_channel = r.boolean(data, "private_channel", "private_channel", True)

    team: str | None = None
    if "team" in data:
        raw_team = r.text(data, "team", "team", blank_ok=False, limit=64)
        if raw_team is not None:
            if _TEAM_RE.match(raw_team) and len(raw_team) <= 64:
                team = raw_team
            else:
                r.error("team", f'expected a team\'s URL name such as "eng" (lower-case letters, digits, "-"), '
                                f'got "{raw_team}"; leave it out to allow every team')

    channel_name = r.text(data, "channel_name", "channel_name", default=DEFAULT_CHANNEL_NAME, limit=10_000)
    if channel_name is not None:
        try:
            validate_channel_template(channel_name)
        except TemplateError as exc:
            r.error("channel_name", str(exc))

    category = r.text(data, "category", "category", default=DEFAULT_CATEGORY)
    if category is not None and len(category.encode("utf-8")) > CATEGORY_MAX_BYTES:
        r.error("category", f'"{category}" is {len(category.encode("utf-8"))} bytes long; '
                            f"Mattermost allows {CATEGORY_MAX_BYTES} bytes (\"\" for no category)")

    owner: str | None = None
    if "owner" in data:
        raw_owner = r.text(data, "owner", "owner", blank_ok=False)
        if raw_owner is not None:
            owner = r.username("owner", raw_owner)

    members = _unique(name for key, raw in r.string_list(data, "members", "members")
                      if (name := r.username(key, raw)) is not None)
    broadcast = _unique(ch for key, raw in r.string_list(data, "broadcast_channels", "broadcast_channels")
                        if (ch := _channel_name(r, key, raw)) is not None)

    status = _status_updates(r, data)
    retro = _retrospective(r, data)
    webhooks = _webhooks(r, data)
    checklists = _checklists(r, data)

    if r.errors:
        raise PlaybookInvalid(r.errors)
    assert title is not None and channel_name is not None and category is not None
    return Playbook(
        id=playbook_id, title=title, description=description, team=team,
        private_channel=private_channel, channel_name=channel_name, category=category,
        owner=owner, members=members, broadcast_channels=broadcast, welcome=welcome,
        status_updates=status, retrospective=retro, webhooks=webhooks, checklists=checklists,
        path=path,
    )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _channel_name(r: _Reader, key: str, raw: str) -> str | None:
    name = raw.removeprefix("~")
    if len(name) <= 64 and SERVER_NAME_RE.match(name):
        return name
    r.error(key, f'"{raw}" is not a channel URL name; use the name from the channel\'s link, '
                 f'like "town-square" (lower-case letters, digits, "-" and "_")')
    return None


def _status_updates(r: _Reader, data: Mapping[str, Any]) -> StatusUpdates:
    table = r.table(data, "status_updates", "status_updates")
    if table is None:
        return StatusUpdates()
    r.keys(table, _STATUS_KEYS, "status_updates.")
    enabled = r.boolean(table, "enabled", "status_updates.enabled", True)
    interval = DEFAULT_STATUS_INTERVAL
    if "interval" in table:
        if isinstance(table["interval"], str) and table["interval"].strip().lower() == "off":
            r.error("status_updates.interval", '"off" is not allowed here; set enabled = false to turn '
                                               "status updates off")
        else:
            ok, value = r.duration(table, "interval", "status_updates.interval", off_ok=False,
                                   minimum=REMINDER_MIN)
            if ok and value is not None:
                interval = value
    template = r.text(table, "template", "status_updates.template") or ""
    return StatusUpdates(enabled=enabled, interval=interval, template=template)


def _retrospective(r: _Reader, data: Mapping[str, Any]) -> Retrospective:
    table = r.table(data, "retrospective", "retrospective")
    if table is None:
        return Retrospective()
    r.keys(table, _RETRO_KEYS, "retrospective.")
    enabled = r.boolean(table, "enabled", "retrospective.enabled", True)
    template = r.text(table, "template", "retrospective.template", default=DEFAULT_RETROSPECTIVE_TEMPLATE)
    remind, interval = True, None
    if "reminder" in table:
        ok, interval = r.duration(table, "reminder", "retrospective.reminder", off_ok=True,
                                  minimum=REMINDER_MIN)
        remind = not (ok and interval is None)
    return Retrospective(enabled=enabled, template=template or DEFAULT_RETROSPECTIVE_TEMPLATE,
                         remind=remind, reminder_interval=interval)


def _webhooks(r: _Reader, data: Mapping[str, Any]) -> Webhooks:
    table = r.table(data, "webhooks", "webhooks")
    if table is None:
        return Webhooks()
    r.keys(table, _WEBHOOK_KEYS, "webhooks.")
    lists: dict[str, tuple[str, ...]] = {}
    for key in _WEBHOOK_KEYS:
        path = f"webhooks.{key}"
        entries = r.string_list(table, key, path)
        if len(entries) > WEBHOOKS_MAX:
            r.error(path, f"has {len(entries)} URLs; the limit is {WEBHOOKS_MAX}")
        urls = []
        for entry_path, url in entries:
            if not _is_http_url(url):
                r.error(entry_path, f'"{url}" is not an http(s) URL like "https://hooks.example.com/incident"')
                continue
            urls.append(url)
        lists[key] = _unique(urls)
    return Webhooks(**lists)


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    try:
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def _checklists(r: _Reader, data: Mapping[str, Any]) -> tuple[ChecklistSpec, ...]:
    if "checklists" not in data:
        return ()
    value = data["checklists"]
    if isinstance(value, dict):
        r.error("checklists", "expected [[checklists]] blocks (double brackets: a list of tables), got [checklists]")
        return ()
    if not isinstance(value, list):
        r.error("checklists", f"expected [[checklists]] blocks, got {_kind(value)}")
        return ()
    result = []
    for c_index, checklist in enumerate(value, start=1):
        c_path = f"checklists[{c_index}]"
        if not isinstance(checklist, dict):
            r.error(c_path, f"expected a [[checklists]] table, got {_kind(checklist)}")
            continue
        r.keys(checklist, _CHECKLIST_KEYS, c_path + ".")
        title = r.text(checklist, "title", c_path + ".title", required=True, blank_ok=False, limit=TITLE_MAX)
        items = _items(r, checklist, c_path)
        if title is not None:
            result.append(ChecklistSpec(title=title, items=items))
    return tuple(result)


def _items(r: _Reader, checklist: Mapping[str, Any], c_path: str) -> tuple[ItemSpec, ...]:
    if "items" not in checklist:
        return ()
    value = checklist["items"]
    if isinstance(value, dict):
        r.error(c_path + ".items", "expected [[checklists.items]] blocks (double brackets), got a single table")
        return ()
    if not isinstance(value, list):
        r.error(c_path + ".items", f"expected [[checklists.items]] blocks, got {_kind(value)}")
        return ()
    items = []
    for i_index, item in enumerate(value, start=1):
        path = f"{c_path}.items[{i_index}]"
        if not isinstance(item, dict):
            r.error(path, f"expected a [[checklists.items]] table, got {_kind(item)}")
            continue
        r.keys(item, _ITEM_KEYS, path + ".")
        title = r.text(item, "title", path + ".title", required=True, blank_ok=False, limit=TITLE_MAX)
        description = r.text(item, "description", path + ".description", limit=ITEM_DESCRIPTION_MAX)
        assignee = None
        if "assignee" in item:
            raw = r.text(item, "assignee", path + ".assignee", blank_ok=False)
            if raw is not None:
                if raw.lower() in ("owner", "creator"):
                    assignee = Assignee(kind=raw.lower())  # type: ignore[arg-type]
                else:
                    # "@owner" is the user named owner; bare "owner" is the run's owner.
                    name = r.username(path + ".assignee", raw,
                                      expected=f'expected "owner", "creator" or a username, got "{raw}"')
                    if name is not None:
                        assignee = Assignee(kind="user", username=name)
        due = None
        if "due" in item:
            _, due = r.duration(item, "due", path + ".due", off_ok=False)
        command = r.text(item, "command", path + ".command", limit=COMMAND_MAX)
        if command and not _COMMAND_RE.match(command):
            r.error(path + ".command",
                    f'expected a slash command starting with "/", like "/echo hello", got "{command}"')
        if title is not None:
            items.append(ItemSpec(title=title, description=description or "", assignee=assignee,
                                  due=due, command=command or ""))
    return tuple(items)


# --- files ----------------------------------------------------------------------------------

def load_playbook(path: Path | str) -> Playbook:
    """Read and validate one playbook file; raises PlaybookInvalid (with every problem)."""
    path = Path(path)
    stem = path.stem
    problems: list[PlaybookError] = []
    if not _ID_RE.match(stem) or len(stem) > ID_MAX:
        suggestion = re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_")[:ID_MAX]
        hint = f'; rename it to "{suggestion}.toml"' if suggestion else ""
        problems.append(PlaybookError(
            path, "", "the file name is the playbook id and must be lower-case letters, digits, "
                      f'"-" and "_", starting with a letter or digit{hint}'))
        raise PlaybookInvalid(problems)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlaybookInvalid([PlaybookError(path, "", f"cannot read the file ({exc.strerror or exc})")]) from None
    if len(raw) > FILE_MAX_BYTES:
        raise PlaybookInvalid([PlaybookError(path, "", f"the file is larger than {FILE_MAX_BYTES // 1024} KiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlaybookInvalid([PlaybookError(path, "", "not UTF-8 text; save the file as UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if match:
            where = f"line {match.group(1)}, column {match.group(2)}"
            raise PlaybookInvalid([PlaybookError(path, where, f"invalid TOML: {message[:match.start()]}")]) from None
        raise PlaybookInvalid([PlaybookError(path, "", f"invalid TOML: {message}")]) from None
    return parse_playbook(data, playbook_id=stem, path=path)


def load_playbooks(directory: Path | str) -> tuple[dict[str, Playbook], list[PlaybookError]]:
    """Load every `*.toml` in directory (not sub-folders; names starting with "." are skipped).

    Returns the valid playbooks by id, sorted by id, and every problem found in the others.
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "folder not found"
        return {}, [PlaybookError(directory, "", f"{what}; set [playbooks] dir in bot.toml")]
    playbooks: dict[str, Playbook] = {}
    errors: list[PlaybookError] = []
    for path in sorted(directory.glob("*.toml")):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            playbook = load_playbook(path)
        except PlaybookInvalid as exc:
            errors.extend(exc.errors)
            continue
        playbooks[playbook.id] = playbook
    return playbooks, errors


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def find_playbook(playbooks: Mapping[str, Playbook], query: str) -> Playbook:
    """The playbook whose id or title matches query, ignoring case and extra spaces.

    An exact id wins, then an exact title, then a unique prefix of an id or title ("inc").
    Raises PlaybookNotFound (a LookupError) when nothing or several match; its message lists the
    choices and `.choices` holds them.
    """
    wanted = _fold(query)
    every = sorted(playbooks.values(), key=lambda p: p.id)
    if not wanted:
        raise PlaybookNotFound(f"Which playbook? Choose one of: {_choices(every)}.", every)
    for stage in (
        [p for p in every if p.id.casefold() == wanted],
        [p for p in every if _fold(p.title) == wanted],
        [p for p in every if p.id.casefold().startswith(wanted) or _fold(p.title).startswith(wanted)],
    ):
        if len(stage) == 1:
            return stage[0]
        if len(stage) > 1:
            raise PlaybookNotFound(
                f'"{query.strip()}" matches {len(stage)} playbooks: {_choices(stage)}. Use the id.', stage)
    if not every:
        raise PlaybookNotFound("There are no playbooks yet; add a file to the playbooks folder.", [])
    raise PlaybookNotFound(f'No playbook matches "{query.strip()}". Choose one of: {_choices(every)}.', every)


def _choices(playbooks: Iterable[Playbook]) -> str:
    return ", ".join(f"{p.id} ({p.title})" for p in playbooks)
