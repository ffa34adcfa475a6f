"""A playbook's data dict written out: as a TOML file that reads back to the same dict, and as the
Playbooks plugin's JSON export (best effort; docs/playbook-import.md says what each key becomes).

TOML: `to_toml(data)` writes with tomli-w, long texts as multi-line strings where that reads back the same
(a text holding "\\r" is written on one line with escapes instead), and checks that
`tomllib.loads(to_toml(data)) == data` before returning; a dict TOML cannot hold (a None, an empty key
path that tomli-w refuses) raises NotTomlable.
"""
from __future__ import annotations

import tomllib
from typing import Any, Callable, Mapping

import tomli_w

from bot.domain.durations import DurationError, parse_duration


class NotTomlable(ValueError):
    """The data holds something TOML cannot say (e.g. a null)."""


def to_toml(data: Mapping[str, Any]) -> str:
    """The data dict as TOML text whose `tomllib.loads` equals `data`."""
    for multiline in (True, False):
        try:
            text = tomli_w.dumps(dict(data), multiline_strings=multiline)
        except TypeError as exc:
            raise NotTomlable(f"cannot be written as TOML: {exc}") from None
        if tomllib.loads(text) == data:
            return text
    raise NotTomlable("cannot be written as TOML that reads back the same")


# -- the plugin's JSON ---------------------------------------------------------------------------------

UserIds = Callable[[str], str]  # username -> user id ("" when unknown)
ChannelIds = Callable[[str], str]  # channel URL name -> channel id ("" when unknown)


def _seconds(text: object, default: int = 0) -> int:
    if not isinstance(text, str):
        return default
    try:
        return int(parse_duration(text).total_seconds())
    except DurationError:
        return default  # "off", or a value the playbook's validation would refuse anyway


def to_plugin_json(data: Mapping[str, Any], *, user_id: UserIds | None = None,
                   channel_id: ChannelIds | None = None) -> dict[str, Any]:
    """The playbook as the plugin's export (version 1) and its playbook fields, best effort: ids the plugin
    wants are looked up with the resolvers (left out when unknown); what the plugin has no field for (an
    item's `when` as a plugin condition needs property field ids, `on_finish` webhooks, `welcome` as a
    per-channel action...) is carried where a field exists and otherwise left out (docs/playbook-import.md)."""
    users = user_id or (lambda _name: "")
    channels = channel_id or (lambda _name: "")
    status = data.get("status_updates") if isinstance(data.get("status_updates"), dict) else None
    retro = data.get("retrospective") if isinstance(data.get("retrospective"), dict) else None
    hooks = data.get("webhooks") if isinstance(data.get("webhooks"), dict) else {}
    assert hooks is not None
    members = [str(m) for m in data.get("members", [])]
    member_ids = [uid for uid in (users(m) for m in members) if uid]
    owner = str(data.get("owner", "") or "")
    owner_id = users(owner) if owner else ""
    broadcast = [cid for cid in (channels(str(c)) for c in data.get("broadcast_channels", [])) if cid]
    existing = data.get("channel_mode") == "existing"
    channel = str(data.get("channel", "") or "")
    category = data.get("category", "Playbook runs")
    out: dict[str, Any] = {
        "version": 1,
        "title": data.get("title", ""),
        "description": data.get("description", ""),
        "create_public_playbook_run": not data.get("private_channel", True),
        "channel_mode": "link_existing_channel" if existing else "create_new_channel",
        "channel_id": channels(channel) if existing and channel else "",
        "channel_name_template": _plugin_template(str(data.get("channel_name", "{name}"))),
        "categorize_channel_enabled": bool(category) and not existing,
        "category_name": category or "",
        "invite_users_enabled": bool(member_ids),
        "invited_user_ids": member_ids,
        "default_owner_enabled": bool(owner_id),
        "default_owner_id": owner_id,
        "broadcast_enabled": bool(broadcast),
        "broadcast_channel_ids": broadcast,
        "run_summary_template_enabled": bool(data.get("summary")),
        "run_summary_template": data.get("summary", ""),
        "message_on_join_enabled": bool(data.get("welcome")),
        "message_on_join": data.get("welcome", ""),
        "auto_archive_channel": bool(data.get("archive_channel_on_finish", False)),
        "status_update_enabled": bool(status and status.get("enabled", True)),
        "reminder_timer_default_seconds": _seconds(status.get("interval") if status else None, 86400) or 86400,
        "reminder_message_template": (status or {}).get("template", ""),
        "retrospective_enabled": bool(retro and retro.get("enabled", True)),
        "retrospective_template": (retro or {}).get("template", ""),
        "retrospective_reminder_interval_seconds": _seconds((retro or {}).get("reminder")),
        "webhook_on_creation_enabled": bool(hooks.get("on_start")),
        "webhook_on_creation_urls": list(hooks.get("on_start", [])),
        "webhook_on_status_update_enabled": bool(hooks.get("on_status_update")),
        "webhook_on_status_update_urls": list(hooks.get("on_status_update", [])),
        "metrics": [_plugin_metric(m) for m in data.get("metrics", []) if isinstance(m, dict)],
        "checklists": [_plugin_checklist(c, users) for c in data.get("checklists", []) if isinstance(c, dict)],
    }
    keywords = data.get("keywords") if isinstance(data.get("keywords"), dict) else None
    if keywords is not None:  # the plugin has words only: patterns and channels have no field there
        words = [str(w) for w in keywords.get("words", []) if isinstance(w, str)]
        out["signal_any_keywords_enabled"] = bool(words) and keywords.get("enabled", True) is not False
        out["signal_any_keywords"] = words
    props = [p for p in data.get("properties", []) if isinstance(p, dict)]
    if props:
        out["property_fields"] = [_plugin_property(p) for p in props]
    return out


def _plugin_template(template: str) -> str:
    """Our placeholders in the plugin's spelling where it has one ({seq} -> {SEQ}, {owner} -> {OWNER})."""
    return template.replace("{seq}", "{SEQ}").replace("{owner}", "{OWNER}")


def _plugin_metric(metric: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(metric.get("type", "integer"))
    target = metric.get("target")
    if kind == "duration":
        target = _seconds(target) * 1000 if isinstance(target, str) else None
    elif kind == "currency" and isinstance(target, (int, float)):
        target = int(target)
    return {"title": metric.get("title", ""), "description": metric.get("description", ""),
            "type": f"metric_{kind}", "target": target}


def _plugin_checklist(checklist: Mapping[str, Any], users: UserIds) -> dict[str, Any]:
    items = []
    for item in checklist.get("items", []):
        if not isinstance(item, dict):
            continue
        assignee = str(item.get("assignee", "") or "")
        out: dict[str, Any] = {"title": item.get("title", ""), "description": item.get("description", ""),
                               "command": item.get("command", ""),
                               "due_date": _seconds(item.get("due")) * 1000,
                               "assignee_type": assignee.lower() if assignee.lower() in ("owner", "creator") else "",
                               "assignee_id": "" if assignee.lower() in ("owner", "creator", "")
                               else users(assignee), "state": ""}
        auto = item.get("auto_check")
        if isinstance(auto, dict):
            user_ids = [uid for uid in (users(str(u)) for u in auto.get("users", [])) if uid]
            out["task_actions"] = [{
                "trigger": {"type": "keywords_by_users",
                            "payload": _json({"keywords": list(auto.get("keywords", [])), "user_ids": user_ids})},
                "actions": [{"type": "mark_item_as_done", "payload": _json({"enabled": True})}]}]
        items.append(out)
    return {"title": checklist.get("title", ""), "items": items}


def _plugin_property(prop: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": prop.get("title") or prop.get("name", ""), "type": prop.get("type", "text"),
            "attrs": {"options": [{"name": o} for o in prop.get("options", [])],
                      "visibility": "when_set"}}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
