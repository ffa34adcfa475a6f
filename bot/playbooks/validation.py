"""Parsed TOML -> `Playbook`: which keys each table holds and what each value must be."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Literal, Mapping
from urllib.parse import urlsplit

from bot.domain.metrics import METRIC_TYPES, METRICS_MAX, MetricSpec, MetricValueError, parse_value
from bot.domain.naming import SERVER_NAME_RE, TemplateError, validate_channel_template
from bot.playbooks.errors import PlaybookInvalid
from bot.playbooks.fields import _kind, _Reader
from bot.playbooks.model import (
    CATEGORY_MAX_BYTES,
    COMMAND_MAX,
    DEFAULT_CATEGORY,
    DEFAULT_CHANNEL_NAME,
    DEFAULT_RETROSPECTIVE_TEMPLATE,
    DEFAULT_STATUS_INTERVAL,
    ITEM_DESCRIPTION_MAX,
    REMINDER_MIN,
    TITLE_MAX,
    WEBHOOKS_MAX,
    Assignee,
    ChecklistSpec,
    ItemSpec,
    Playbook,
    Retrospective,
    StatusUpdates,
    Webhooks,
)

_TEAM_RE = re.compile(r"^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$")
_COMMAND_RE = re.compile(r"^/[^\s/]\S*")
# The assignee words that name a role rather than a user, typed so that Assignee.kind stays a Literal.
_ASSIGNEE_ROLES: dict[str, Literal["owner", "creator"]] = {"owner": "owner", "creator": "creator"}
_CHANNEL_MODES: dict[str, Literal["create", "existing"]] = {"create": "create", "existing": "existing"}

_TOP_KEYS = ("title", "description", "team", "private_channel", "channel_mode", "channel", "channel_name",
             "category", "owner",
             "members", "broadcast_channels", "welcome", "archive_channel_on_finish", "status_updates",
             "retrospective", "webhooks", "checklists", "metrics")
_STATUS_KEYS = ("enabled", "interval", "template")
_RETRO_KEYS = ("enabled", "template", "reminder")
_WEBHOOK_KEYS = ("on_start", "on_status_update", "on_finish")
_CHECKLIST_KEYS = ("title", "items")
_ITEM_KEYS = ("title", "description", "assignee", "due", "command")
_METRIC_KEYS = ("title", "type", "description", "target")
METRIC_TITLE_MAX = 64  # the plugin's metric name limit
METRIC_DESCRIPTION_MAX = 150  # shown as a dialog field's help text (DialogElementTextMaxLength)


def parse_playbook(data: Mapping[str, object], *, playbook_id: str, path: Path | str) -> Playbook:
    """Validate parsed TOML into a Playbook; raises PlaybookInvalid listing every problem."""
    path = Path(path)
    r = _Reader(path)
    r.keys(data, _TOP_KEYS, "")

    title = r.text(data, "title", "title", required=True, blank_ok=False, limit=TITLE_MAX)
    description = r.text(data, "description", "description") or ""
    welcome = r.text(data, "welcome", "welcome") or ""
    private_channel = r.boolean(data, "private_channel", "private_channel", True)
    archive = r.boolean(data, "archive_channel_on_finish", "archive_channel_on_finish", False)

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

    channel_mode, channel = _channel_mode(r, data, archive=bool(archive))

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
    metrics = _metrics(r, data)

    if r.errors:
        raise PlaybookInvalid(r.errors)
    assert title is not None and channel_name is not None and category is not None
    return Playbook(
        id=playbook_id, title=title, description=description, team=team,
        private_channel=private_channel, channel_mode=channel_mode, channel=channel,
        channel_name=channel_name, category=category,
        owner=owner, members=members, broadcast_channels=broadcast, welcome=welcome,
        archive_channel_on_finish=bool(archive), status_updates=status, retrospective=retro, webhooks=webhooks,
        checklists=checklists, metrics=metrics,
        path=path,
    )


def _channel_mode(r: _Reader, data: Mapping[str, object], *,
                  archive: bool) -> tuple[Literal["create", "existing"], str]:
    """`channel_mode` ("create" or "existing") and, for "existing", `channel` ("" = where it is started)."""
    mode: Literal["create", "existing"] = "create"
    raw = r.text(data, "channel_mode", "channel_mode", default="create", blank_ok=False)
    if raw is not None:
        found = _CHANNEL_MODES.get(raw)
        if found is None:
            r.error("channel_mode", f'expected "create" (a new channel for each run) or "existing" (runs post '
                                    f'into a channel that is already there), got "{raw}"')
        else:
            mode = found
    channel = ""
    if "channel" in data:
        raw_channel = r.text(data, "channel", "channel")
        if raw_channel and mode == "create" and raw == "create":
            r.error("channel", 'is only used with channel_mode = "existing"; remove it, or set channel_mode = '
                               '"existing" to run in that channel')
        elif raw_channel:
            channel = _channel_name(r, "channel", raw_channel) or ""
    if mode == "existing" and archive:
        r.error("archive_channel_on_finish", 'cannot be true with channel_mode = "existing": the bot never '
                                             "archives a channel it did not create for the run")
    return mode, channel


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _channel_name(r: _Reader, key: str, raw: str) -> str | None:
    name = raw.removeprefix("~")
    if len(name) <= 64 and SERVER_NAME_RE.match(name):
        return name
    r.error(key, f'"{raw}" is not a channel URL name; use the name from the channel\'s link, '
                 f'like "town-square" (lower-case letters, digits, "-" and "_")')
    return None


def _status_updates(r: _Reader, data: Mapping[str, object]) -> StatusUpdates:
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


def _retrospective(r: _Reader, data: Mapping[str, object]) -> Retrospective:
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


def _webhooks(r: _Reader, data: Mapping[str, object]) -> Webhooks:
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


def _checklists(r: _Reader, data: Mapping[str, object]) -> tuple[ChecklistSpec, ...]:
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


def _items(r: _Reader, checklist: Mapping[str, object], c_path: str) -> tuple[ItemSpec, ...]:
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
                role = _ASSIGNEE_ROLES.get(raw.lower())
                if role is not None:
                    assignee = Assignee(kind=role)
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


def _metrics(r: _Reader, data: Mapping[str, object]) -> tuple[MetricSpec, ...]:
    if "metrics" not in data:
        return ()
    value = data["metrics"]
    if isinstance(value, dict):
        r.error("metrics", "expected [[metrics]] blocks (double brackets: a list of tables), got [metrics]")
        return ()
    if not isinstance(value, list):
        r.error("metrics", f"expected [[metrics]] blocks, got {_kind(value)}")
        return ()
    if len(value) > METRICS_MAX:
        r.error("metrics", f"has {len(value)} metrics; a playbook may have at most {METRICS_MAX}")
    result: list[MetricSpec] = []
    titles: set[str] = set()
    for index, metric in enumerate(value, start=1):
        path = f"metrics[{index}]"
        if not isinstance(metric, dict):
            r.error(path, f"expected a [[metrics]] table, got {_kind(metric)}")
            continue
        r.keys(metric, _METRIC_KEYS, path + ".")
        title = r.text(metric, "title", path + ".title", required=True, blank_ok=False, limit=METRIC_TITLE_MAX)
        if title is not None and title.lower() in titles:
            r.error(path + ".title", f'"{title}" is the title of an earlier metric; give each metric its own')
        if title is not None:
            titles.add(title.lower())
        description = r.text(metric, "description", path + ".description", limit=METRIC_DESCRIPTION_MAX)
        kind = r.text(metric, "type", path + ".type", required=True, blank_ok=False)
        if kind is not None and kind not in METRIC_TYPES:
            r.error(path + ".type", f'expected "duration", "currency" or "integer", got "{kind}"')
            kind = None
        target = _metric_target(r, metric, path + ".target", kind) if "target" in metric and kind else None
        if title is not None and kind is not None:
            result.append(MetricSpec(title=title, type=kind, description=description or "", target=target))
    return tuple(result)


def _metric_target(r: _Reader, metric: Mapping[str, object], path: str, kind: str) -> int | None:
    """A duration target is written like "2h"; currency and integer targets as numbers."""
    raw = metric["target"]
    if kind == "duration":
        if not isinstance(raw, str):
            r.error(path, f'expected a duration string like "2h" or "1h30m", got {_kind(raw)}')
            return None
    elif isinstance(raw, bool) or not isinstance(raw, (int, float)):
        example = "1250.50" if kind == "currency" else "10"
        r.error(path, f"expected a number like {example} (without quotes), got {_kind(raw)}")
        return None
    elif kind == "integer" and not isinstance(raw, int):
        r.error(path, f"expected a whole number, got {_kind(raw)}")
        return None
    try:
        return parse_value(kind, raw if isinstance(raw, str) else repr(raw))
    except MetricValueError as exc:
        r.error(path, str(exc))
        return None
