"""The Playbooks plugin's playbook JSON (its export, version 1, or a whole playbook as its API gives it) ->
our data dict, with a report of what became what and what has no meaning here. Pure: the server's ids are
turned into names by a `Names` the caller filled beforehand (`wanted_ids` says which ids to look up).

Every field of the plugin's playbook (docs/playbook-import.md has the table) is either mapped, or listed in
`Report.unmapped` with the reason, never dropped silently; a value that cannot be used (an assignee who is
not on this server, a team that is not there) is listed the same way. What makes the file unusable (not a
JSON object, no title, a wrong export version) is a `problem`: one line each, and nothing is imported.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

from bot.domain.durations import format_duration_compact
from bot.domain.keywords import WORD_MAX, WORDS_MAX
from bot.domain.naming import PLACEHOLDERS, template_placeholders

EXPORT_VERSION = 1

# Fields that are metadata of the plugin's server, never meaningful elsewhere (with the reason).
_METADATA = {
    "id": "the plugin's id; the playbook gets an id here from its title",
    "create_at": "the plugin's time stamps; versions here record when they were saved",
    "update_at": "the plugin's time stamps; versions here record when they were saved",
    "num_stages": "a counter the plugin computes",
    "num_steps": "a counter the plugin computes",
    "num_runs": "a counter the plugin computes; runs are counted here from their own rows",
    "num_actions": "a counter the plugin computes",
    "last_run_at": "a counter the plugin computes",
    "active_runs": "a counter the plugin computes",
    "is_favorite": "a per-person mark in the plugin's web app; there are no favourites here",
    "next_run_number": "the plugin's run counter; {seq} counts runs of the playbook here",
    "default_playbook_admin_role": "permission-scheme roles; [access] admins and members stand for them here",
    "default_playbook_member_role": "permission-scheme roles; [access] admins and members stand for them here",
    "default_run_admin_role": "permission-scheme roles; a run's owner and participants stand for them here",
    "default_run_member_role": "permission-scheme roles; a run's owner and participants stand for them here",
}


@dataclass(frozen=True)
class Names:
    """Ids of the plugin's server resolved to names on this one (absent: not found)."""

    users: Mapping[str, str] = field(default_factory=dict)  # user id -> username
    channels: Mapping[str, str] = field(default_factory=dict)  # channel id -> channel URL name
    teams: Mapping[str, str] = field(default_factory=dict)  # team id -> team URL name
    groups: Mapping[str, str] = field(default_factory=dict)  # group id -> group name


@dataclass(frozen=True)
class WantedIds:
    users: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


@dataclass
class Report:
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (plugin field, our key)
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # (plugin field, why)
    problems: list[str] = field(default_factory=list)  # the file cannot be imported

    def map(self, source: str, target: str) -> None:
        if (source, target) not in self.mapped:
            self.mapped.append((source, target))

    def skip(self, source: str, why: str) -> None:
        if (source, why) not in self.unmapped:
            self.unmapped.append((source, why))

    def as_dict(self) -> dict[str, Any]:
        return {"mapped": [{"field": s, "to": t} for s, t in self.mapped],
                "unmapped": [{"field": s, "reason": w} for s, w in self.unmapped],
                "problems": list(self.problems)}


@dataclass(frozen=True)
class Imported:
    data: dict[str, Any]
    report: Report


def parse_export(text: str | bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """The export's JSON object, or the problems (one line each)."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [f"not JSON: {exc}"]
    if not isinstance(raw, dict):
        return None, [f"expected a JSON object (a playbook), got {type(raw).__name__}"]
    return raw, []


def _ids(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def _items(export: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    for c, checklist in enumerate(export.get("checklists") or [], start=1):
        if isinstance(checklist, dict):
            for i, item in enumerate(checklist.get("items") or [], start=1):
                if isinstance(item, dict):
                    out.append((f"checklists[{c}].items[{i}]", item))
    return out


def wanted_ids(export: Mapping[str, Any]) -> WantedIds:
    """Every server id the export names, for the caller to look up before `map_export`."""
    users: set[str] = set(_ids(export.get("invited_user_ids")))
    if isinstance(export.get("default_owner_id"), str) and export["default_owner_id"]:
        users.add(export["default_owner_id"])
    for member in export.get("members") or []:
        if isinstance(member, dict) and isinstance(member.get("user_id"), str):
            users.add(member["user_id"])
    for _path, item in _items(export):
        if isinstance(item.get("assignee_id"), str) and item["assignee_id"]:
            users.add(item["assignee_id"])
        for action in item.get("task_actions") or []:
            trigger = _payload((action or {}).get("trigger", {}).get("payload")) if isinstance(action, dict) else {}
            users.update(_ids(trigger.get("user_ids")))
    channels = set(_ids(export.get("broadcast_channel_ids")))
    if isinstance(export.get("channel_id"), str) and export["channel_id"]:
        channels.add(export["channel_id"])
    teams = {export["team_id"]} if isinstance(export.get("team_id"), str) and export["team_id"] else set()
    groups = set(_ids(export.get("invited_group_ids")))
    return WantedIds(frozenset(users), frozenset(channels), frozenset(teams), frozenset(groups))


def _payload(raw: object) -> dict[str, Any]:
    """A task action's payload: a JSON string in the plugin (an object is taken too)."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _duration(ms_or_s: object, *, unit_ms: bool) -> str | None:
    if isinstance(ms_or_s, bool) or not isinstance(ms_or_s, (int, float)) or ms_or_s <= 0:
        return None
    seconds = int(ms_or_s / 1000) if unit_ms else int(ms_or_s)
    if seconds <= 0:
        return None
    return format_duration_compact(timedelta(seconds=seconds))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _enabled_text(export: Mapping[str, Any], data: dict[str, Any], report: Report, key: str, target: str) -> None:
    """A plugin text with its `<key>_enabled` switch (run summary template, message on join): kept as
    `target` when set and not switched off; otherwise both fields are reported as not used."""
    flag = f"{key}_enabled"
    text = _text(export.get(key))
    if text and export.get(flag, True) is not False:
        data[target] = text
        report.map(key, target)
        report.map(flag, f"{target} (kept when enabled)")
        return
    for name in (key, flag):
        if name in export:
            report.skip(name, "off or empty in the plugin")


_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slug(title: str) -> str:
    """A playbook id from a title: lower-case letters, digits and "-" (at most 48)."""
    out = _SLUG_RE.sub("-", title.lower()).strip("-")[:48].strip("-")
    return out or "imported"


def _property_key(name: str) -> str:
    key = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not key or not key[0].isalpha():
        key = "p_" + key
    key = key[:32]
    if key in {"seq", "name", "date", "owner", "playbook", "creator"}:
        key = f"{key}_property"
    return key


def map_export(export: Mapping[str, Any], names: Names) -> Imported:
    """The plugin playbook as our data dict, with the report of every field."""
    report = Report()
    data: dict[str, Any] = {}
    version = export.get("version")
    if "version" in export and version != EXPORT_VERSION:
        report.problems.append(f"version: expected the plugin's export version {EXPORT_VERSION}, got {version!r}")
    elif "version" in export:
        report.map("version", "(checked: the plugin's export format 1)")
    title = export.get("title")
    if not isinstance(title, str) or not title.strip():
        report.problems.append("title: required (a non-empty string); this does not look like a playbook export")
    known = set(_METADATA) | set(_HANDLED)
    for key in export:
        if key not in known:
            report.skip(key, "not a field of the plugin's playbook that this bot knows")
    for key, why in _METADATA.items():
        if key in export:
            report.skip(key, why)
    if report.problems:
        return Imported(data, report)
    _identity(export, names, data, report)
    _channel(export, names, data, report)
    _people(export, names, data, report)
    _status(export, names, data, report)
    _retro(export, data, report)
    props = _properties(export, data, report)
    _checklists(export, names, data, report, props)
    return Imported(data, report)


_HANDLED = (
    "version", "title", "description", "team_id", "delete_at", "public", "members", "admin_only_edit",
    "owner_group_only_actions", "checklists", "channel_mode", "channel_id", "new_channel_only",
    "create_public_playbook_run", "channel_name_template", "run_number_prefix", "run_summary_template_enabled",
    "run_summary_template", "auto_archive_channel", "invite_users_enabled", "invited_user_ids",
    "invited_group_ids", "default_owner_enabled", "default_owner_id", "message_on_join_enabled",
    "message_on_join", "categorize_channel_enabled", "category_name", "create_channel_member_on_new_participant",
    "remove_channel_member_on_removed_participant", "status_update_enabled", "reminder_timer_default_seconds",
    "reminder_message_template", "broadcast_enabled", "broadcast_channel_ids", "webhook_on_creation_enabled",
    "webhook_on_creation_urls", "webhook_on_status_update_enabled", "webhook_on_status_update_urls",
    "signal_any_keywords_enabled", "signal_any_keywords", "retrospective_enabled", "retrospective_template",
    "retrospective_reminder_interval_seconds", "metrics", "autofollows", "property_fields", "conditions",
)


def _identity(export: Mapping[str, Any], names: Names, data: dict[str, Any], report: Report) -> None:
    data["title"] = str(export["title"]).strip()
    report.map("title", "title")
    if "description" in export:
        if _text(export["description"]):
            data["description"] = export["description"]
        report.map("description", "description")
    if "delete_at" in export:
        if isinstance(export["delete_at"], int) and export["delete_at"] > 0:
            report.skip("delete_at", "archived in the plugin; imported as a playbook in use (archive it here "
                                     "with /playbook playbooks archive)")
        else:
            report.skip("delete_at", "the plugin's archive time stamp (0: not archived)")
    team_id = export.get("team_id")
    if isinstance(team_id, str) and team_id:
        team = names.teams.get(team_id)
        if team:
            data["team"] = team
            report.map("team_id", "team")
        else:
            report.skip("team_id", f"team {team_id} is not on this server; the playbook may run in every team "
                                   "(set team to limit it)")
    elif "team_id" in export:
        report.skip("team_id", "empty; the playbook may run in every team")
    access: dict[str, Any] = {}
    if isinstance(export.get("public"), bool):
        access["public"] = export["public"]
        report.map("public", "access.public")
    members: list[str] = []
    admins: list[str] = []
    lost: list[str] = []
    for member in export.get("members") or []:
        if not isinstance(member, dict):
            continue
        name = names.users.get(str(member.get("user_id", "")))
        if not name:
            lost.append(str(member.get("user_id", "")))
            continue
        roles = _ids(member.get("roles")) + _ids(member.get("scheme_roles"))
        (admins if any("admin" in r for r in roles) else members).append(name)
    if "members" in export:
        if members:
            access["members"] = members
        if admins:
            access["admins"] = admins
        report.map("members", "access.members, access.admins (by role)")
        if lost:
            report.skip("members", f"not on this server: {', '.join(lost)}")
    if isinstance(export.get("admin_only_edit"), bool):
        access["edit"] = "admins" if export["admin_only_edit"] else "members"
        report.map("admin_only_edit", "access.edit")
    if isinstance(export.get("owner_group_only_actions"), bool):
        access["finish"] = "owner" if export["owner_group_only_actions"] else "participants"
        report.map("owner_group_only_actions", "access.finish")
    if access:
        data["access"] = access
    if "autofollows" in export:
        report.skip("autofollows", "people follow runs here (/playbook follow), not playbooks")


def _channel(export: Mapping[str, Any], names: Names, data: dict[str, Any], report: Report) -> None:
    mode = export.get("channel_mode")
    existing = mode == "link_existing_channel"
    if "channel_mode" in export:
        if existing:
            data["channel_mode"] = "existing"
        report.map("channel_mode", "channel_mode")
    channel_id = _text(export.get("channel_id"))
    if existing and channel_id:
        channel = names.channels.get(channel_id)
        if channel:
            data["channel"] = channel
            report.map("channel_id", "channel")
        else:
            report.skip("channel_id", f"channel {channel_id} is not on this server; runs go into the channel "
                                      "they are started from")
    elif "channel_id" in export:
        report.skip("channel_id", "used only when the plugin links runs to an existing channel")
    if "new_channel_only" in export:
        report.skip("new_channel_only", "here channel_mode alone decides where runs go; the starter does not "
                                        "choose")
    if isinstance(export.get("create_public_playbook_run"), bool):
        data["private_channel"] = not export["create_public_playbook_run"]
        report.map("create_public_playbook_run", "private_channel (negated)")
    template = _text(export.get("channel_name_template")).strip()
    if template:
        kept, dropped = _template(template)
        if kept.strip():
            data["channel_name"] = kept
            report.map("channel_name_template", "channel_name")
        if dropped:
            report.skip("channel_name_template", "placeholders with no meaning here were left out: "
                                                 + ", ".join("{" + d + "}" for d in dropped))
    elif "channel_name_template" in export:
        report.map("channel_name_template", "channel_name (empty: the run's name)")
    if _text(export.get("run_number_prefix")):
        report.skip("run_number_prefix", "runs are numbered by {seq} in channel_name here, without a prefix "
                                         f'(write it in: "{export["run_number_prefix"]}-{{seq}} {{name}}")')
    elif "run_number_prefix" in export:
        report.skip("run_number_prefix", "empty")
    _enabled_text(export, data, report, "run_summary_template", "summary")
    if isinstance(export.get("auto_archive_channel"), bool):
        if export["auto_archive_channel"] and not existing:
            data["archive_channel_on_finish"] = True
            report.map("auto_archive_channel", "archive_channel_on_finish")
        elif export["auto_archive_channel"]:
            report.skip("auto_archive_channel", "the bot never archives a channel it did not create for the run")
        else:
            report.map("auto_archive_channel", "archive_channel_on_finish (false: left out)")
    _enabled_text(export, data, report, "message_on_join", "welcome")
    category = _text(export.get("category_name"))
    if "categorize_channel_enabled" in export or "category_name" in export:
        if export.get("categorize_channel_enabled") and category:
            data["category"] = category
            report.map("category_name", "category")
            report.map("categorize_channel_enabled", "category")
        else:
            data["category"] = ""
            report.map("categorize_channel_enabled", 'category = "" (off)')
            if category:
                report.skip("category_name", "categorizing was off in the plugin")
    for key in ("create_channel_member_on_new_participant", "remove_channel_member_on_removed_participant"):
        if key in export:
            report.skip(key, "fixed here: joining a run adds the person to its channel; leaving it keeps them "
                             "in the channel")


def _template(template: str) -> tuple[str, list[str]]:
    """The plugin's run name template with our placeholders; the unknown ones ({CREATOR}, properties) out."""
    dropped: list[str] = []

    def swap(match: re.Match[str]) -> str:
        word = match.group(1).strip().lower()
        if word in PLACEHOLDERS:
            return "{" + word + "}"
        dropped.append(match.group(1))
        return ""

    out = re.sub(r"\{([^{}]*)\}", swap, template)
    assert all(p in PLACEHOLDERS for p in template_placeholders(out))
    return re.sub(r"\s{2,}", " ", out).strip(), dropped


def _switched_ids(export: Mapping[str, Any], data: dict[str, Any], report: Report, enabled: str, ids_key: str,
                  known: Mapping[str, str], ours: str, ids_off: str, enabled_off: str) -> None:
    """A plugin list of ids behind an on/off switch (invited users, broadcast channels) -> `ours`, as the
    names found on this server; the ids that are not, and a list that was switched off, are reported."""
    ids = _ids(export.get(ids_key))
    if enabled not in export and ids_key not in export:
        return
    if export.get(enabled, True) is not False and ids:
        found = [known[i] for i in ids if i in known]
        lost = [i for i in ids if i not in known]
        if found:
            data[ours] = list(dict.fromkeys(found))
        report.map(ids_key, ours)
        report.map(enabled, f"{ours} (kept when enabled)")
        if lost:
            report.skip(ids_key, f"not on this server: {', '.join(lost)}")
    elif ids:
        report.skip(ids_key, ids_off)
        report.skip(enabled, enabled_off)
    else:
        report.map(enabled, f"{ours} (none)")


def _people(export: Mapping[str, Any], names: Names, data: dict[str, Any], report: Report) -> None:
    _switched_ids(export, data, report, "invite_users_enabled", "invited_user_ids", names.users, "members",
                  "invitations were off in the plugin", "off in the plugin: nobody is invited")
    groups = _ids(export.get("invited_group_ids"))
    if "invited_group_ids" in export:
        shown = [names.groups.get(g, g) for g in groups]
        report.skip("invited_group_ids", "the bot invites people, not groups; list their members in members"
                    + (f" ({', '.join(shown)})" if shown else ""))
    owner_id = _text(export.get("default_owner_id"))
    if "default_owner_id" in export or "default_owner_enabled" in export:
        if owner_id and export.get("default_owner_enabled", True) is not False:
            owner = names.users.get(owner_id)
            if owner:
                data["owner"] = owner
                report.map("default_owner_id", "owner")
                report.map("default_owner_enabled", "owner (kept when enabled)")
            else:
                report.skip("default_owner_id", f"user {owner_id} is not on this server; whoever starts a run "
                                                "owns it")
        else:
            report.map("default_owner_enabled", "owner (off: whoever starts a run owns it)")
            if owner_id:
                report.skip("default_owner_id", "the default owner was off in the plugin")
    _switched_ids(export, data, report, "broadcast_enabled", "broadcast_channel_ids", names.channels,
                  "broadcast_channels", "broadcasting was off in the plugin", "off in the plugin: nothing is broadcast")
    hooks: dict[str, list[str]] = {}
    for enabled, urls, ours in (("webhook_on_creation_enabled", "webhook_on_creation_urls", ("on_start",)),
                                ("webhook_on_status_update_enabled", "webhook_on_status_update_urls",
                                 ("on_status_update", "on_finish"))):
        listed = _ids(export.get(urls))
        if enabled not in export and urls not in export:
            continue
        if export.get(enabled, True) is not False and listed:
            for key in ours:
                hooks[key] = listed
            target = ", ".join(f"webhooks.{k}" for k in ours)
            report.map(urls, target)
            report.map(enabled, f"{target} (kept when enabled)")
        elif listed:
            report.skip(urls, "these webhooks were off in the plugin")
            report.skip(enabled, "off in the plugin: the URLs are not used")
        else:
            report.map(enabled, "webhooks (none)")
    if hooks:
        data["webhooks"] = hooks
    _keywords(export, data, report)


def _keywords(export: Mapping[str, Any], data: dict[str, Any], report: Report) -> None:
    """The plugin's playbook-level keywords -> `[keywords] words`. Its export names no channels to watch
    (the live prompt is a per-channel action, not part of the playbook), so they come in switched off:
    name the channels and set enabled = true to use them."""
    if "signal_any_keywords" not in export and "signal_any_keywords_enabled" not in export:
        return
    raw = export.get("signal_any_keywords")
    words: list[str] = []
    for value in raw if isinstance(raw, list) else []:
        word = " ".join(value.split()) if isinstance(value, str) else ""
        if not word:
            continue
        if len(word) > WORD_MAX:
            report.skip("signal_any_keywords", f'"{word[:40]}…" is longer than {WORD_MAX} characters')
        elif word.casefold() not in (w.casefold() for w in words) and len(words) < WORDS_MAX:
            words.append(word)
    if not words:
        report.map("signal_any_keywords", "keywords (none)")
        report.map("signal_any_keywords_enabled", "keywords (none)")
        return
    data["keywords"] = {"words": words, "enabled": False}
    report.map("signal_any_keywords", "keywords.words")
    on = export.get("signal_any_keywords_enabled") is not False
    report.map("signal_any_keywords_enabled",
               "keywords.enabled = false: the export names no channels to watch; add keywords.channels and "
               "set enabled = true" if on else "keywords.enabled = false (off in the plugin)")


def _status(export: Mapping[str, Any], names: Names, data: dict[str, Any], report: Report) -> None:
    keys = ("status_update_enabled", "reminder_timer_default_seconds", "reminder_message_template")
    if not any(k in export for k in keys):
        return
    table: dict[str, Any] = {"enabled": export.get("status_update_enabled", True) is not False}
    report.map("status_update_enabled", "status_updates.enabled")
    interval = _duration(export.get("reminder_timer_default_seconds"), unit_ms=False)
    if interval:
        table["interval"] = interval
        report.map("reminder_timer_default_seconds", "status_updates.interval")
    elif "reminder_timer_default_seconds" in export:
        report.skip("reminder_timer_default_seconds", "0 or not a number; the default interval (1 day) applies")
    template = _text(export.get("reminder_message_template"))
    if template:
        table["template"] = template
    if "reminder_message_template" in export:
        report.map("reminder_message_template", "status_updates.template")
    data["status_updates"] = table


def _retro(export: Mapping[str, Any], data: dict[str, Any], report: Report) -> None:
    keys = ("retrospective_enabled", "retrospective_template", "retrospective_reminder_interval_seconds")
    if any(k in export for k in keys):
        table: dict[str, Any] = {"enabled": export.get("retrospective_enabled", True) is not False}
        report.map("retrospective_enabled", "retrospective.enabled")
        template = _text(export.get("retrospective_template"))
        if template:
            table["template"] = template
        if "retrospective_template" in export:
            report.map("retrospective_template", "retrospective.template")
        reminder = _duration(export.get("retrospective_reminder_interval_seconds"), unit_ms=False)
        if reminder:
            table["reminder"] = reminder
        if "retrospective_reminder_interval_seconds" in export:
            report.map("retrospective_reminder_interval_seconds", "retrospective.reminder (0: once, left out)")
        data["retrospective"] = table
    metrics = []
    for metric in export.get("metrics") or []:
        if not isinstance(metric, dict):
            continue
        kind = _text(metric.get("type")).removeprefix("metric_")
        out: dict[str, Any] = {"title": _text(metric.get("title")), "type": kind}
        if _text(metric.get("description")):
            out["description"] = metric["description"]
        target = metric.get("target")
        if isinstance(target, (int, float)) and not isinstance(target, bool):
            if kind == "duration":
                shown = _duration(target, unit_ms=True)
                if shown:
                    out["target"] = shown
            else:
                out["target"] = target
        metrics.append(out)
    if "metrics" in export:
        report.map("metrics", "metrics (title, description, type, target)")
        if any(isinstance(m, dict) and "id" in m for m in export.get("metrics") or []):
            report.skip("metrics[].id", "the plugin's ids")
    if metrics:
        data["metrics"] = metrics


@dataclass(frozen=True)
class _Prop:
    key: str
    type: str
    options: Mapping[str, str]  # option id -> name


def _properties(export: Mapping[str, Any], data: dict[str, Any], report: Report) -> dict[str, _Prop]:
    fields: dict[str, _Prop] = {}
    out = []
    for raw in export.get("property_fields") or []:
        if not isinstance(raw, dict):
            continue
        name = _text(raw.get("name")).strip()
        kind = _text(raw.get("type"))
        if kind not in ("text", "select", "multiselect"):
            report.skip("property_fields[].type", f'property "{name}" is of type "{kind}"; properties here are '
                                                  "select, multiselect or text")
            continue
        attrs = raw.get("attrs") if isinstance(raw.get("attrs"), dict) else {}
        assert attrs is not None
        options = {(_text(o.get("id")) or _text(o.get("name"))): _text(o.get("name")).replace(",", " ")
                   for o in attrs.get("options") or [] if isinstance(o, dict) and _text(o.get("name"))}
        key = _property_key(name)
        while key in {p.key for p in fields.values()}:
            key = (key[:29] + "_" + str(len(fields) + 2))
        entry: dict[str, Any] = {"name": key, "title": name[:24] or key, "type": kind}
        if kind != "text":
            entry["options"] = list(dict.fromkeys(options.values()))
        out.append(entry)
        fields[_text(raw.get("id")) or name] = _Prop(key, kind, options)
    if "property_fields" in export:
        report.map("property_fields", "properties (name, type, options)")
        for attr, why in (("id", "the plugin's ids (conditions are rewritten to property names)"),
                          ("attrs.visibility", "properties show on the overview when set"),
                          ("attrs.sort_order", "properties keep the export's order"),
                          ("attrs.options[].color", "options have no colours here"),
                          ("attrs.value_type", "text properties are plain text here"),
                          ("attrs.parent_id", "no nested properties here")):
            report.skip(f"property_fields[].{attr}", why)
    if out:
        data["properties"] = out
    return fields


def _condition(raw: object, props: Mapping[str, _Prop], nested: bool = False) -> dict[str, Any] | None:
    """The plugin's {and|or: [...]} / {is|isNot: {field_id, value}} as our `when` (None: not expressible)."""
    if not isinstance(raw, dict):
        return None
    for group in ("and", "or"):
        if group in raw:
            if nested or not isinstance(raw[group], list):
                return None
            parts = [_condition(p, props, nested=True) for p in raw[group]]
            if not parts or any(p is None for p in parts):
                return None
            return {group: parts}
    for test, ours in (("is", "is"), ("isNot", "is_not")):
        if test in raw and isinstance(raw[test], dict):
            spec = props.get(_text(raw[test].get("field_id")))
            if spec is None:
                return None
            values = raw[test].get("value")
            listed = values if isinstance(values, list) else [values]
            names = [spec.options.get(v, v) if spec.type != "text" else v for v in listed if isinstance(v, str)]
            if not names:
                return None
            return {"property": spec.key, ours: names}
    return None


def _checklists(export: Mapping[str, Any], names: Names, data: dict[str, Any], report: Report,
                props: Mapping[str, _Prop]) -> None:
    conditions: dict[str, object] = {}
    for raw in export.get("conditions") or []:
        if isinstance(raw, dict) and _text(raw.get("id")):
            conditions[raw["id"]] = raw.get("condition_expr", raw.get("expr"))
    if "conditions" in export:
        report.map("conditions", "checklists.items.when")
    checklists = []
    for c, checklist in enumerate(export.get("checklists") or [], start=1):
        if not isinstance(checklist, dict):
            continue
        items = []
        for i, item in enumerate(checklist.get("items") or [], start=1):
            if isinstance(item, dict):
                items.append(_item(item, f"checklists[{c}].items[{i}]", names, report, props, conditions))
        out: dict[str, Any] = {"title": _text(checklist.get("title")).strip() or f"Checklist {c}"}
        if items:
            out["items"] = items
        checklists.append(out)
        for key in checklist:
            if key in ("title", "items"):
                report.map(f"checklists[].{key}", f"checklists.{key}")
            elif key in ("id", "update_at", "items_order"):
                report.skip(f"checklists[].{key}", "the plugin's ids and order; the order here is the list's")
            else:
                report.skip(f"checklists[].{key}", "not a checklist field this bot knows")
    if checklists:
        data["checklists"] = checklists


_ITEM_RUN_STATE = ("state", "state_modified", "assignee_modified", "command_last_run", "delete_at",
                   "condition_action", "condition_reason")


def _item(item: Mapping[str, Any], path: str, names: Names, report: Report, props: Mapping[str, _Prop],
          conditions: Mapping[str, object]) -> dict[str, Any]:
    out: dict[str, Any] = {"title": _text(item.get("title")).strip() or "(untitled)"}
    for key in item:
        if key in ("id", "update_at"):
            report.skip(f"checklists[].items[].{key}", "the plugin's ids; the order here is the list's")
        elif key in _ITEM_RUN_STATE:
            report.skip(f"checklists[].items[].{key}", "the state of a run's item; a playbook's items start open")
        elif key not in ("title", "description", "command", "due_date", "assignee_id", "assignee_type",
                         "assignee_property_field_id", "task_actions", "condition_id"):
            report.skip(f"checklists[].items[].{key}", "not an item field this bot knows")
    report.map("checklists[].items[].title", "checklists.items.title")
    if _text(item.get("description")):
        out["description"] = item["description"]
    if "description" in item:
        report.map("checklists[].items[].description", "checklists.items.description")
    if _text(item.get("command")):
        out["command"] = item["command"]
    if "command" in item:
        report.map("checklists[].items[].command", "checklists.items.command")
    due = _duration(item.get("due_date"), unit_ms=True)
    if due:
        out["due"] = due
    if "due_date" in item:
        report.map("checklists[].items[].due_date", "checklists.items.due (after the start)")
    kind = _text(item.get("assignee_type"))
    assignee_id = _text(item.get("assignee_id"))
    if kind in ("owner", "creator"):
        out["assignee"] = kind
        report.map("checklists[].items[].assignee_type", "checklists.items.assignee")
    elif kind == "property_user":
        report.skip("checklists[].items[].assignee_type",
                    f'{path}: "property_user": there are no user properties here; the item has no assignee')
    elif assignee_id:
        name = names.users.get(assignee_id)
        if name:
            out["assignee"] = name
            report.map("checklists[].items[].assignee_id", "checklists.items.assignee (username)")
        else:
            report.skip("checklists[].items[].assignee_id", f"{path}: user {assignee_id} is not on this server")
    else:
        if "assignee_type" in item:
            report.map("checklists[].items[].assignee_type", "checklists.items.assignee")
        if "assignee_id" in item:
            report.map("checklists[].items[].assignee_id", "checklists.items.assignee (username)")
    if "assignee_property_field_id" in item:
        report.skip("checklists[].items[].assignee_property_field_id", "there are no user properties here")
    auto = _task_actions(item.get("task_actions"), path, names, report)
    if auto:
        out["auto_check"] = auto
    condition_id = _text(item.get("condition_id"))
    if condition_id:
        when = _condition(conditions.get(condition_id), props)
        if when is not None:
            out["when"] = when
            report.map("checklists[].items[].condition_id", "checklists.items.when")
        else:
            report.skip("checklists[].items[].condition_id",
                        f"{path}: condition {condition_id} cannot be expressed here (unknown, or on a property "
                        "that was not imported); the item is always shown")
    elif "condition_id" in item:
        report.map("checklists[].items[].condition_id", "checklists.items.when (none)")
    return out


def _task_actions(raw: object, path: str, names: Names, report: Report) -> dict[str, Any] | None:
    if not isinstance(raw, list):
        return None
    keywords: list[str] = []
    users: list[str] = []
    for action in raw:
        if not isinstance(action, dict):
            continue
        trigger = action.get("trigger") if isinstance(action.get("trigger"), dict) else {}
        assert trigger is not None
        does = [a for a in action.get("actions") or [] if isinstance(a, dict)]
        marks = any(a.get("type") == "mark_item_as_done" and _payload(a.get("payload")).get("enabled", True)
                    for a in does)
        if trigger.get("type") != "keywords_by_users" or not marks:
            report.skip("checklists[].items[].task_actions",
                        f"{path}: only keywords that mark the item done are known here "
                        f"(got trigger {trigger.get('type')!r})")
            continue
        payload = _payload(trigger.get("payload"))
        keywords.extend(k for k in payload.get("keywords") or [] if isinstance(k, str) and k.strip())
        for uid in _ids(payload.get("user_ids")):
            if uid in names.users:
                users.append(names.users[uid])
            else:
                report.skip("checklists[].items[].task_actions",
                            f"{path}: keyword user {uid} is not on this server")
        report.map("checklists[].items[].task_actions", "checklists.items.auto_check")
    if not keywords:
        return None
    out: dict[str, Any] = {"keywords": list(dict.fromkeys(keywords))}
    if users:
        out["users"] = list(dict.fromkeys(users))
    return out
