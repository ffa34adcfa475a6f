"""Parsed TOML -> `Playbook`: which keys each table holds and what each value must be."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Literal, Mapping
from urllib.parse import urlsplit

from jinja2 import TemplateSyntaxError

from bot.domain.conditions import PROPERTY_TYPES, PropertySpec
from bot.domain.keywords import PATTERNS_MAX, WORD_MAX, WORDS_MAX, pattern_problem, patterns_problem
from bot.domain.metrics import METRIC_TYPES, METRICS_MAX, MetricSpec, MetricValueError, parse_value
from bot.domain.naming import SERVER_NAME_RE, TemplateError, validate_channel_template
from bot.domain.permissions import PlaybookAccess
from bot.domain.schedules import DEFAULT_NAME, ScheduleError, check_name_template, parse_cron, zone
from bot.domain.templating import SafeEnvironment
from bot.integrations.alert_hooks import MATCH_KEYS, SOURCES
from bot.playbooks.actions import parse_actions
from bot.playbooks.errors import PlaybookInvalid
from bot.playbooks.fields import _kind, _Reader
from bot.playbooks.model import (
    ALERT_NAME_DEFAULT,
    ALERT_ROUTES_MAX,
    CATEGORY_MAX_BYTES,
    COMMAND_MAX,
    DEFAULT_CATEGORY,
    DEFAULT_CHANNEL_NAME,
    DEFAULT_RETROSPECTIVE_TEMPLATE,
    DEFAULT_STATUS_INTERVAL,
    ITEM_DESCRIPTION_MAX,
    KEYWORDS_MAX,
    PROPERTIES_MAX,
    PROPERTY_OPTION_MAX,
    PROPERTY_TEXT_MAX,
    PROPERTY_TITLE_MAX,
    REMINDER_MIN,
    SUMMARY_MAX,
    TITLE_MAX,
    WEBHOOKS_MAX,
    AlertRoute,
    Assignee,
    AutoCheck,
    ChecklistSpec,
    ItemSpec,
    Keywords,
    Playbook,
    Retrospective,
    Schedule,
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
             "members", "broadcast_channels", "welcome", "summary", "archive_channel_on_finish", "status_updates",
             "retrospective", "webhooks", "checklists", "metrics", "properties", "access",
             "keywords", "schedule", "actions", "alerts")
_ACCESS_KEYS = ("members", "admins", "groups", "public", "edit", "finish")
_ACCESS_EDIT: dict[str, Literal["admins", "members"]] = {"admins": "admins", "members": "members"}
_ACCESS_FINISH: dict[str, Literal["owner", "participants"]] = {"owner": "owner", "participants": "participants"}
_STATUS_KEYS = ("enabled", "interval", "template")
_SCHEDULE_KEYS = ("cron", "timezone", "name", "owner", "members", "enabled")
_RETRO_KEYS = ("enabled", "template", "reminder")
_WEBHOOK_KEYS = ("on_start", "on_status_update", "on_finish")
_CHECKLIST_KEYS = ("title", "items")
_ITEM_KEYS = ("title", "description", "assignee", "due", "command", "when", "auto_check")
_PROPERTY_KEYS = ("name", "title", "type", "options", "required", "default")
_WHEN_KEYS = ("property", "is", "is_not")
_AUTO_CHECK_KEYS = ("keywords", "users")
_PROPERTY_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# The channel-name template's placeholders (bot.domain.naming): kept free for properties used there later.
_RESERVED_PROPERTY_NAMES = frozenset({"seq", "name", "date", "owner", "playbook", "creator"})
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
    summary = r.text(data, "summary", "summary", limit=SUMMARY_MAX) or ""
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
    properties = _properties(r, data)
    checklists = _checklists(r, data, {p.name: p for p in properties})
    metrics = _metrics(r, data)
    access = _access(r, data)
    keywords = _keywords(r, data)
    schedule = _schedule(r, data, team=team, existing=channel_mode == "existing" and not channel)
    actions = parse_actions(r, data, {i.title for c in checklists for i in c.items})
    alerts = _alerts(r, data, has_owner=owner is not None, has_team=team is not None)

    if r.errors:
        raise PlaybookInvalid(r.errors)
    assert title is not None and channel_name is not None and category is not None
    return Playbook(
        id=playbook_id, title=title, description=description, team=team,
        private_channel=private_channel, channel_mode=channel_mode, channel=channel,
        channel_name=channel_name, category=category,
        owner=owner, members=members, broadcast_channels=broadcast, welcome=welcome, summary=summary,
        archive_channel_on_finish=bool(archive), status_updates=status, retrospective=retro, webhooks=webhooks,
        checklists=checklists, metrics=metrics, properties=properties,
        access=access, keywords=keywords, schedule=schedule, actions=actions, alerts=alerts, path=path,
    )


def _schedule(r: _Reader, data: Mapping[str, object], *, team: str | None, existing: bool) -> Schedule | None:
    """`[schedule]`: a cron expression in a time zone, the run's name template, its owner and members."""
    table = r.table(data, "schedule", "schedule")
    if table is None:
        return None
    r.keys(table, _SCHEDULE_KEYS, "schedule.")
    cron = r.text(table, "cron", "schedule.cron", required=True, blank_ok=False, limit=200)
    tz_name = r.text(table, "timezone", "schedule.timezone", default="UTC", blank_ok=False, limit=64)
    tz = None
    if tz_name is not None:
        try:
            tz = zone(tz_name)
        except ScheduleError as exc:
            r.error("schedule.timezone", str(exc))
    if cron is not None:
        try:
            parse_cron(cron, tz)
        except ScheduleError as exc:
            r.error("schedule.cron", str(exc))
    name = r.text(table, "name", "schedule.name", default=DEFAULT_NAME, blank_ok=False, limit=TITLE_MAX)
    if name is not None:
        try:
            check_name_template(name)
        except ScheduleError as exc:
            r.error("schedule.name", str(exc))
    owner = None
    raw_owner = r.text(table, "owner", "schedule.owner", required=True, blank_ok=False)
    if raw_owner is not None:
        owner = r.username("schedule.owner", raw_owner)
    members = _unique(member for key, raw in r.string_list(table, "members", "schedule.members")
                      if (member := r.username(key, raw)) is not None)
    enabled = r.boolean(table, "enabled", "schedule.enabled", True)
    if team is None and "team" not in data:
        r.error("team", 'required with [schedule]: a scheduled run starts in one team; add team = "..." '
                        "(the team's URL name)")
    if existing:
        r.error("channel", 'required with [schedule] and channel_mode = "existing": a scheduled run is not '
                           'started from a channel; add channel = "..." (the channel\'s URL name)')
    if cron is None or tz_name is None or name is None or owner is None or tz is None:
        return None
    return Schedule(cron=" ".join(cron.split()), timezone=tz_name, name=name, owner=owner, members=members,
                    enabled=bool(enabled))


def _access(r: _Reader, data: Mapping[str, object]) -> PlaybookAccess:
    """`[access]`: who may see, run and edit the playbook and finish its runs (bot.domain.permissions)."""
    table = r.table(data, "access", "access")
    if table is None:
        return PlaybookAccess()
    r.keys(table, _ACCESS_KEYS, "access.")
    members = _unique(name for key, raw in r.string_list(table, "members", "access.members")
                      if (name := r.username(key, raw)) is not None)
    admins = _unique(name for key, raw in r.string_list(table, "admins", "access.admins")
                     if (name := r.username(key, raw)) is not None)
    # Mattermost groups by name (custom or LDAP-synced; they need a licensed server: `python -m bot check`
    # says when the server has none, and then a group grants nothing).
    groups = _unique(name for key, raw in r.string_list(table, "groups", "access.groups")
                     if (name := r.group_name(key, raw)) is not None)
    public = r.boolean(table, "public", "access.public", True)
    edit: Literal["admins", "members"] = "admins"
    raw_edit = r.text(table, "edit", "access.edit", default="admins", blank_ok=False)
    if raw_edit is not None:
        if raw_edit in _ACCESS_EDIT:
            edit = _ACCESS_EDIT[raw_edit]
        else:
            r.error("access.edit", f'expected "admins" (only the playbook\'s admins edit it) or "members" '
                                   f'(its members too), got "{raw_edit}"')
    finish: Literal["owner", "participants"] = "owner"
    raw_finish = r.text(table, "finish", "access.finish", default="owner", blank_ok=False)
    if raw_finish is not None:
        if raw_finish in _ACCESS_FINISH:
            finish = _ACCESS_FINISH[raw_finish]
        else:
            r.error("access.finish", f'expected "owner" (only a run\'s owner finishes it, restores it and '
                                     f'hands it over) or "participants" (its participants too), got "{raw_finish}"')
    if public is False and not members and not admins and not groups:
        r.error("access.public", "a private playbook needs someone in access.members, access.admins or "
                                 "access.groups; otherwise only system admins could see it")
    return PlaybookAccess(members=members, admins=admins, groups=groups, public=bool(public), edit=edit,
                          finish=finish)


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


def _checklists(r: _Reader, data: Mapping[str, object], props: Mapping[str, PropertySpec]
                ) -> tuple[ChecklistSpec, ...]:
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
        items = _items(r, checklist, c_path, props)
        if title is not None:
            result.append(ChecklistSpec(title=title, items=items))
    return tuple(result)


def _items(r: _Reader, checklist: Mapping[str, object], c_path: str, props: Mapping[str, PropertySpec]
           ) -> tuple[ItemSpec, ...]:
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
        when = _when(r, item["when"], path + ".when", props, nested=False) if "when" in item else None
        auto_check = _auto_check(r, item, path + ".auto_check") if "auto_check" in item else None
        if title is not None:
            items.append(ItemSpec(title=title, description=description or "", assignee=assignee,
                                  due=due, command=command or "", when=when, auto_check=auto_check))
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


def _properties(r: _Reader, data: Mapping[str, object]) -> tuple[PropertySpec, ...]:
    if "properties" not in data:
        return ()
    value = data["properties"]
    if isinstance(value, dict):
        r.error("properties", "expected [[properties]] blocks (double brackets: a list of tables), got [properties]")
        return ()
    if not isinstance(value, list):
        r.error("properties", f"expected [[properties]] blocks, got {_kind(value)}")
        return ()
    if len(value) > PROPERTIES_MAX:
        r.error("properties", f"has {len(value)} properties; a playbook may have at most {PROPERTIES_MAX}")
    result: list[PropertySpec] = []
    names: set[str] = set()
    for index, prop in enumerate(value, start=1):
        path = f"properties[{index}]"
        if not isinstance(prop, dict):
            r.error(path, f"expected a [[properties]] table, got {_kind(prop)}")
            continue
        r.keys(prop, _PROPERTY_KEYS, path + ".")
        name = r.text(prop, "name", path + ".name", required=True, blank_ok=False, limit=32)
        if name is not None:
            if not _PROPERTY_NAME_RE.match(name):
                r.error(path + ".name", f'expected a key like "severity" (lower-case letters, digits and "_", '
                                        f'starting with a letter, at most 32), got "{name}"')
                name = None
            elif name in _RESERVED_PROPERTY_NAMES:
                r.error(path + ".name", f'"{name}" is a placeholder of channel_name; choose another name')
                name = None
            elif name in names:
                r.error(path + ".name", f'"{name}" is the name of an earlier property; give each its own')
                name = None
        if name is not None:
            names.add(name)
        title = r.text(prop, "title", path + ".title", default=name or "", blank_ok=False,
                       limit=PROPERTY_TITLE_MAX)
        kind = r.text(prop, "type", path + ".type", required=True, blank_ok=False)
        if kind is not None and kind not in PROPERTY_TYPES:
            r.error(path + ".type", f'expected "select", "multiselect" or "text", got "{kind}"')
            kind = None
        options = _property_options(r, prop, path, kind)
        required = r.boolean(prop, "required", path + ".required", False)
        default = _property_default(r, prop, path, kind, options) if "default" in prop and kind else None
        if name is not None and title is not None and kind is not None and options is not None:
            result.append(PropertySpec(name=name, title=title or name, type=kind, options=options,
                                       required=required, default=default))
    return tuple(result)


def _property_options(r: _Reader, prop: Mapping[str, object], path: str, kind: str | None
                      ) -> tuple[str, ...] | None:
    if kind == "text":
        if "options" in prop:
            r.error(path + ".options", 'a "text" property takes no options; use type = "select" for a choice')
            return None
        return ()
    entries = r.string_list(prop, "options", path + ".options")
    if kind is None:
        return ()
    if "options" not in prop:
        r.error(path + ".options", f'required for a "{kind}" property; add options = ["...", "..."]')
        return None
    if not entries:
        if isinstance(prop["options"], list) and not prop["options"]:
            r.error(path + ".options", "must list at least one option")
        return None
    seen: set[str] = set()
    options: list[str] = []
    ok = True
    for entry_path, option in entries:
        if not option:
            r.error(entry_path, "must not be empty")
            ok = False
        elif len(option) > PROPERTY_OPTION_MAX:
            r.error(entry_path, f"is {len(option)} characters long; the limit is {PROPERTY_OPTION_MAX}")
            ok = False
        elif "," in option:
            # A multiselect is typed as options separated by commas (dialogs of Mattermost before v11 have no
            # multiple choice), so an option cannot hold one.
            r.error(entry_path, f'"{option}" contains a comma; options cannot')
            ok = False
        elif option.casefold() in seen:
            r.error(entry_path, f'"{option}" is listed twice')
            ok = False
        else:
            seen.add(option.casefold())
            options.append(option)
    return tuple(options) if ok else None


def _property_default(r: _Reader, prop: Mapping[str, object], path: str, kind: str,
                      options: tuple[str, ...] | None) -> str | tuple[str, ...] | None:
    raw = prop["default"]
    key = path + ".default"
    if kind == "multiselect":
        values = [raw] if isinstance(raw, str) else raw
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            r.error(key, f"expected a list of options, got {_kind(raw)}")
            return None
        chosen: list[str] = []
        for v in values:
            if options is not None and v not in options:
                r.error(key, f'"{v}" is not one of the options ({", ".join(options)})')
                return None
            chosen.append(v)
        return tuple(chosen)
    if not isinstance(raw, str):
        r.error(key, f"expected a string, got {_kind(raw)}")
        return None
    value = raw.strip()
    if kind == "select" and options is not None and value not in options:
        r.error(key, f'"{value}" is not one of the options ({", ".join(options)})')
        return None
    if kind == "text" and len(value) > PROPERTY_TEXT_MAX:
        r.error(key, f"is {len(value)} characters long; the limit is {PROPERTY_TEXT_MAX}")
        return None
    return value


def _when(r: _Reader, raw: object, path: str, props: Mapping[str, PropertySpec], *, nested: bool
          ) -> dict[str, object] | None:
    """An item's condition, normalised ({"property", "is"|"is_not": [..]} or {"and"|"or": [..]})."""
    if not isinstance(raw, dict):
        r.error(path, f'expected a table like {{ property = "severity", is = ["sev1"] }}, got {_kind(raw)}')
        return None
    groups = [k for k in ("and", "or") if k in raw]
    if groups:
        key = groups[0]
        if len(raw) != 1:
            r.error(path, f'"{key}" stands alone: write {key} = [ {{ ... }}, {{ ... }} ] and nothing beside it')
            return None
        if nested:
            r.error(path + "." + key, "conditions nest one level deep (as in the Playbooks plugin)")
            return None
        parts = raw[key]
        if not isinstance(parts, list) or not parts:
            r.error(path + "." + key, f"expected a list of conditions, got {_kind(parts)}")
            return None
        out = [_when(r, part, f"{path}.{key}[{n}]", props, nested=True) for n, part in enumerate(parts, start=1)]
        if any(o is None for o in out):
            return None
        return {key: out}
    r.keys(raw, _WHEN_KEYS + ("and", "or"), path + ".")
    name = r.text(raw, "property", path + ".property", required=True, blank_ok=False)
    spec = None
    if name is not None:
        spec = props.get(name)
        if spec is None:
            known = ", ".join(props) or "none declared in [[properties]]"
            r.error(path + ".property", f'unknown property "{name}" (known: {known})')
    tests = [k for k in ("is", "is_not") if k in raw]
    if len(tests) != 1:
        r.error(path, 'expected exactly one of is = [...] or is_not = [...]')
        return None
    test = tests[0]
    values = raw[test]
    listed = [values] if isinstance(values, str) else values
    if not isinstance(listed, list) or not listed or not all(isinstance(v, str) and v.strip() for v in listed):
        r.error(f"{path}.{test}", f"expected a list of values, got {_kind(values)}")
        return None
    if spec is not None and spec.type != "text":
        for v in listed:
            if v not in spec.options:
                r.error(f"{path}.{test}", f'"{v}" is not an option of "{spec.name}" ({", ".join(spec.options)})')
                return None
    if spec is None:
        return None
    return {"property": spec.name, test: [v.strip() for v in listed]}


def _auto_check(r: _Reader, item: Mapping[str, object], path: str) -> AutoCheck | None:
    table = item["auto_check"]
    if not isinstance(table, dict):
        r.error(path, f'expected a table [checklists.items.auto_check] with keywords = ["..."], got {_kind(table)}')
        return None
    r.keys(table, _AUTO_CHECK_KEYS, path + ".")
    if "keywords" not in table:
        r.error(path + ".keywords", 'required; add keywords = ["deployed"]')
        return None
    entries = r.string_list(table, "keywords", path + ".keywords")
    if not entries and isinstance(table["keywords"], list):
        r.error(path + ".keywords", "must list at least one keyword")
        return None
    if len(entries) > KEYWORDS_MAX:
        r.error(path + ".keywords", f"has {len(entries)} keywords; the limit is {KEYWORDS_MAX}")
    keywords = []
    for entry_path, word in entries:
        if not word:
            r.error(entry_path, "must not be empty")
        elif len(word) > 64:
            r.error(entry_path, f"is {len(word)} characters long; the limit is 64")
        else:
            keywords.append(word)
    users = _unique(name for key, raw in r.string_list(table, "users", path + ".users")
                    if (name := r.username(key, raw)) is not None)
    if not keywords:
        return None
    return AutoCheck(keywords=_unique(keywords), users=users)


_KEYWORDS_KEYS = ("words", "patterns", "channels", "enabled")


def _keywords(r: _Reader, data: Mapping[str, object]) -> Keywords | None:
    """`[keywords]`: words and patterns watched in named channels, offering a run (handlers/keywords.py)."""
    table = r.table(data, "keywords", "keywords")
    if table is None:
        return None
    before = len(r.errors)
    r.keys(table, _KEYWORDS_KEYS, "keywords.")
    enabled = r.boolean(table, "enabled", "keywords.enabled", True)
    words: list[str] = []
    entries = r.string_list(table, "words", "keywords.words")
    if len(entries) > WORDS_MAX:
        r.error("keywords.words", f"has {len(entries)} words; the limit is {WORDS_MAX}")
    for entry_path, word in entries:
        word = " ".join(word.split())
        if not word:
            r.error(entry_path, "must not be empty")
        elif len(word) > WORD_MAX:
            r.error(entry_path, f"is {len(word)} characters long; the limit is {WORD_MAX}")
        elif word.casefold() in (w.casefold() for w in words):
            r.error(entry_path, f'"{word}" is listed twice')
        else:
            words.append(word)
    patterns: list[str] = []
    entries = r.string_list(table, "patterns", "keywords.patterns")
    if len(entries) > PATTERNS_MAX:
        r.error("keywords.patterns", f"has {len(entries)} patterns; the limit is {PATTERNS_MAX}")
    for entry_path, pattern in entries:
        problem = pattern_problem(pattern)
        if problem:
            r.error(entry_path, f'"{pattern[:80]}": {problem}')
        elif pattern not in patterns:
            patterns.append(pattern)
    if together := patterns_problem(patterns):
        r.error("keywords.patterns", together)
    channels = _unique(ch for key, raw in r.string_list(table, "channels", "keywords.channels")
                       if (ch := _channel_name(r, key, raw)) is not None)
    if "words" not in table and "patterns" not in table:
        r.error("keywords", 'needs words = ["outage", "sev1"] and/or patterns = ["error rate \\d+%"]')
    elif not words and not patterns and len(r.errors) == before:
        r.error("keywords", "lists no word and no pattern; add some, or remove [keywords]")
    if enabled and not channels and "channels" not in table:
        r.error("keywords.channels", 'required: the channels to watch, by URL name, like channels = ["ops"] '
                                     "(set enabled = false to keep the keywords without watching)")
    elif enabled and not channels and isinstance(table.get("channels"), list) and not table["channels"]:
        r.error("keywords.channels", "must list at least one channel (or set enabled = false)")
    return Keywords(words=tuple(words), patterns=tuple(patterns), channels=channels, enabled=bool(enabled))


# -- [[alerts]]: routes from alert sources to this playbook (handlers/alerts.py, docs/alerts.md) ------------

_ALERT_KEYS = ("source", "match", "name", "owner", "members", "finish_on_resolve")
_PD_URGENCIES = ("high", "low")
_OG_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


def _alerts(r: _Reader, data: Mapping[str, object], *, has_owner: bool, has_team: bool) -> tuple[AlertRoute, ...]:
    raw = data.get("alerts")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        r.error("alerts", f"expected [[alerts]] tables, got {_kind(raw)}")
        return ()
    if len(raw) > ALERT_ROUTES_MAX:
        r.error("alerts", f"has {len(raw)} routes; the limit is {ALERT_ROUTES_MAX}")
        return ()
    if raw and not has_team:
        r.error("alerts", 'a playbook with [[alerts]] needs its `team` (the team whose runs alerts start), '
                          'e.g. team = "eng"')
    routes = []
    for n, table in enumerate(raw, start=1):
        path = f"alerts[{n}]"
        before = len(r.errors)
        r.keys(table, _ALERT_KEYS, path + ".")
        source = r.text(table, "source", f"{path}.source", required=True, blank_ok=False, limit=32)
        if source is not None and source not in SOURCES:
            r.error(f"{path}.source", f'expected one of {", ".join(SOURCES)}, got "{source}"')
            source = None
        match = _alert_match(r, table, path, source) if source else {}
        name = r.text(table, "name", f"{path}.name", default=ALERT_NAME_DEFAULT, blank_ok=False, limit=TITLE_MAX)
        if name is not None:
            try:
                SafeEnvironment().from_string(name)
            except TemplateSyntaxError as exc:
                r.error(f"{path}.name", f"is not a valid template: {exc}")
        owner: str | None = None
        if "owner" in table:
            raw_owner = r.text(table, "owner", f"{path}.owner", blank_ok=False)
            if raw_owner is not None:
                owner = r.username(f"{path}.owner", raw_owner)
        elif not has_owner:
            r.error(f"{path}.owner", 'required: no person starts an alert\'s run, and the playbook has no `owner`; '
                                     'add owner = "username" here or to the playbook')
        members = _unique(m for key, rawm in r.string_list(table, "members", f"{path}.members")
                          if (m := r.username(key, rawm)) is not None)
        finish = r.boolean(table, "finish_on_resolve", f"{path}.finish_on_resolve", False)
        if len(r.errors) == before and source is not None and name is not None:
            routes.append(AlertRoute(source=source, match=match, name=name, owner=owner, members=members,
                                     finish_on_resolve=finish))
    return tuple(routes)


def _alert_match(r: _Reader, table: Mapping[str, object], path: str, source: str) -> dict[str, object]:
    match = r.table(table, "match", f"{path}.match")
    if match is None:
        return {}
    r.keys(match, MATCH_KEYS[source], f"{path}.match.")
    out: dict[str, object] = {}
    where = f"{path}.match."
    if source in ("alertmanager", "grafana"):
        for key in ("labels", "labels_regex"):
            labels = r.table(match, key, where + key)
            if labels is None:
                continue
            values: dict[str, str] = {}
            for label, value in labels.items():
                if not isinstance(value, str):
                    r.error(f"{where}{key}.{label}", f"expected a string, got {_kind(value)}")
                    continue
                if key == "labels_regex":
                    try:
                        re.compile(value)
                    except re.error as exc:
                        r.error(f"{where}{key}.{label}", f'"{value}" is not a regular expression: {exc}')
                        continue
                values[label] = value
            out[key] = values
        return out
    allowed = {"urgency": _PD_URGENCIES, "priority": _OG_PRIORITIES}
    for key in MATCH_KEYS[source]:
        if key not in match:
            continue
        value = match[key]
        entries = [(f"{where}{key}", value)] if isinstance(value, str) else \
            r.string_list(match, key, where + key) if isinstance(value, list) else None
        if entries is None:
            r.error(where + key, f"expected a string or a list of strings, got {_kind(value)}")
            continue
        if key in allowed:
            for entry_path, entry in entries:
                if entry not in allowed[key]:
                    r.error(entry_path, f'expected one of {", ".join(allowed[key])}, got "{entry}"')
        out[key] = [entry for _p, entry in entries]
    return out
