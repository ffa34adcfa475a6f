"""Playbooks out and in: TOML that reads back to the same data, and the plugin's JSON mapped field by field."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.playbooks.export import NotTomlable, to_plugin_json, to_toml
from bot.playbooks.importer import finish_import
from bot.playbooks.loader import parse_playbook_file
from bot.playbooks.plugin_import import _HANDLED, _METADATA, Names, map_export, parse_export, slug
from bot.playbooks.validation import parse_playbook

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "tests" / "data" / "plugin_playbook_export.json"
NAMES = Names(users={"USER_ALICE": "alice", "USER_BOB": "bob", "USER_CAROL": "carol", "USER_DAVE": "dave"},
              channels={"CHANNEL_TOWN_SQUARE": "town-square"}, teams={"TEAM_ENG": "eng"})


@pytest.mark.parametrize("path", sorted((ROOT / "playbooks").glob("*.toml")), ids=lambda p: p.name)
def test_each_example_playbook_round_trips(path: Path) -> None:
    data, playbook = parse_playbook_file(path, path.read_bytes())
    text = to_toml(data)
    assert tomllib.loads(text) == data
    assert parse_playbook(tomllib.loads(text), playbook_id=playbook.id, path=path) == playbook


ODD = {
    "title": "Ünïcödé — 事件 🚒",
    "description": "line one\nline two\n\n  indented \"quoted\" 'single' \\ backslash\ttab",
    "welcome": 'ends with quotes"""',
    "summary": "carriage\r\nreturn",
    "members": [],
    "broadcast_channels": ["town-square"],
    "status_updates": {"enabled": True, "interval": "1h30m", "template": "**Impact:**\n**Next:**\n"},
    "retrospective": {},
    "webhooks": {"on_start": [], "on_finish": ["https://hooks.example.com/x?a=1&b=2"]},
    "properties": [{"name": "severity", "type": "select", "options": ["SEV1", "SEV2"]}],
    "checklists": [
        {"title": "Empty"},
        {"title": "Nested", "items": [
            {"title": "a", "when": {"or": [{"property": "severity", "is": ["SEV1"]},
                                           {"property": "severity", "is_not": ["SEV2"]}]},
             "auto_check": {"keywords": ["done"], "users": []}},
            {"title": "b", "description": "\n\nleading newlines", "due": "15m"},
        ]},
    ],
    "metrics": [{"title": "Cost", "type": "currency", "target": 12.5}],
}


def test_odd_values_round_trip_and_load_the_same() -> None:
    text = to_toml(ODD)
    assert tomllib.loads(text) == ODD
    assert parse_playbook(tomllib.loads(text), playbook_id="odd", path="odd") == parse_playbook(
        ODD, playbook_id="odd", path="odd")


def test_a_null_cannot_be_written_as_toml() -> None:
    with pytest.raises(NotTomlable):
        to_toml({"title": "x", "description": None})


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_scalar = st.one_of(_text, st.integers(-2**63, 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=False), st.lists(_text, max_size=3))
_table = st.dictionaries(st.text(min_size=1, max_size=8), _scalar, max_size=4)
_data = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.one_of(_scalar, _table, st.lists(_table, max_size=3),
              st.dictionaries(st.text(min_size=1, max_size=5), st.lists(_table, max_size=2), max_size=2)),
    max_size=6)


@settings(max_examples=300, deadline=None)
@given(_data)
def test_any_toml_data_round_trips(data: dict[str, Any]) -> None:
    assert tomllib.loads(to_toml(data)) == data


def _export() -> dict[str, Any]:
    export, problems = parse_export(EXPORT.read_bytes())
    assert export is not None and not problems
    return export


def test_the_realistic_export_names_every_field_of_the_plugins_playbook() -> None:
    export = _export()
    assert set(_HANDLED) | set(_METADATA) <= set(export) | {"autofollows"} | set(export)
    assert set(export) == set(_HANDLED) | set(_METADATA)


def test_every_field_is_mapped_or_reported() -> None:
    export = _export()
    prepared = finish_import(export, NAMES)
    assert prepared.problems == []
    fields = {s.split(".")[0].split("[")[0] for s, _ in prepared.report.mapped + prepared.report.unmapped}
    assert set(export) <= fields, set(export) - fields
    item_fields = {s.removeprefix("checklists[].items[].") for s, _ in prepared.report.mapped
                   + prepared.report.unmapped if s.startswith("checklists[].items[].")}
    first = export["checklists"][0]["items"][0]
    assert set(first) <= item_fields, set(first) - item_fields
    unmapped = dict(prepared.report.unmapped)
    assert dict(prepared.report.mapped)["signal_any_keywords"] == "keywords.words"
    for field in ("invited_group_ids", "run_number_prefix", "autofollows", "num_runs",
                  "default_playbook_admin_role", "new_channel_only"):
        assert unmapped[field]


def test_the_mapping_itself() -> None:
    prepared = finish_import(_export(), NAMES)
    data = prepared.data
    assert prepared.playbook is not None
    assert data["title"] == "Incident Resolution — Sev 1/2" and data["team"] == "eng"
    assert data["owner"] == "alice" and data["members"] == ["bob", "carol"]
    assert data["broadcast_channels"] == ["town-square"] and data["category"] == "Incidents"
    assert data["channel_name"] == "Incident {seq}" and data["private_channel"] is True
    assert data["archive_channel_on_finish"] is True and data["welcome"].startswith("Welcome!")
    assert data["summary"].startswith("**Service:**")
    assert data["status_updates"] == {"enabled": True, "interval": "30m",
                                      "template": "**Impact:**\n**Next steps:**"}
    assert data["retrospective"]["reminder"] == "1d"
    assert data["webhooks"]["on_start"] == ["https://hooks.example.com/incident-created"]
    assert data["webhooks"]["on_finish"] == data["webhooks"]["on_status_update"]
    assert [m["type"] for m in data["metrics"]] == ["duration", "currency", "integer"]
    assert data["metrics"][0]["target"] == "15m"
    assert [p["name"] for p in data["properties"]] == ["severity", "service"]
    triage, follow = data["checklists"]
    ack, page, announce = triage["items"]
    assert ack["assignee"] == "owner" and ack["due"] == "15m" and "5 minutes" in ack["description"]
    assert page["assignee"] == "carol" and page["due"] == "1h30m" and page["command"].startswith("/echo")
    assert page["when"] == {"or": [{"property": "severity", "is": ["SEV1"]},
                                   {"property": "severity", "is": ["SEV2"]}]}
    assert announce["assignee"] == "creator"
    assert announce["auto_check"] == {"keywords": ["deployed", "rolled back"], "users": ["bob"]}
    assert "assignee" not in follow["items"][0]  # property_user: reported
    # The plugin's keywords come in switched off: its export names no channel to watch.
    assert data["keywords"] == {"words": ["outage", "sev1"], "enabled": False}
    assert prepared.playbook.keywords is not None and not prepared.playbook.keywords.enabled
    assert follow["items"][1]["when"] == {"property": "severity", "is_not": ["SEV3"]}


def test_names_not_on_this_server_are_reported_not_guessed() -> None:
    prepared = finish_import(_export(), Names())
    # The export's playbook is private; with none of its members here it would be nobody's: refused, said.
    assert prepared.problems == ["access.public: a private playbook needs someone in access.members, "
                                 "access.admins or access.groups; otherwise only system admins could see it"]
    assert "owner" not in prepared.data and "members" not in prepared.data and "team" not in prepared.data
    reasons = " ".join(w for _, w in prepared.report.unmapped)
    assert "USER_ALICE" in reasons and "TEAM_ENG" in reasons and "CHANNEL_TOWN_SQUARE" in reasons


@pytest.mark.parametrize(("raw", "expected"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_a_file_that_is_not_an_export_is_one_line(raw: bytes, expected: str) -> None:
    export, problems = parse_export(raw)
    assert export is None and len(problems) == 1 and expected in problems[0]


def test_no_title_or_another_version_is_refused() -> None:
    imported = map_export({"version": 2, "checklists": []}, Names())
    assert len(imported.report.problems) == 2
    assert any(p.startswith("version:") for p in imported.report.problems)
    assert any(p.startswith("title:") for p in imported.report.problems)


def test_an_invalid_result_is_refused_with_its_key() -> None:
    export = {"title": "x", "checklists": [{"title": "a", "items": [{"title": "b", "command": "no slash"}]}]}
    prepared = finish_import(export, Names())
    assert prepared.problems and prepared.problems[0].startswith("checklists[1].items[1].command:")


def test_slug() -> None:
    assert slug("Incident Resolution — Sev 1/2") == "incident-resolution-sev-1-2"
    assert slug("事件") == "imported"


def test_plugin_json_export_reads_back_through_the_importer() -> None:
    prepared = finish_import(_export(), NAMES)
    ids = {v: k for k, v in NAMES.users.items()}
    channels = {v: k for k, v in NAMES.channels.items()}
    out = to_plugin_json(prepared.data, user_id=lambda n: ids.get(n, ""), channel_id=lambda n: channels.get(n, ""))
    json.dumps(out)
    again = finish_import(out, NAMES)
    assert again.problems == []
    for key in ("title", "owner", "members", "broadcast_channels", "welcome", "category", "status_updates",
                "retrospective", "archive_channel_on_finish", "private_channel", "summary"):
        assert again.data.get(key) == prepared.data.get(key), key
    strip = [[{k: v for k, v in i.items() if k != "when"} for i in c.get("items", [])]
             for c in prepared.data["checklists"]]
    assert [[{k: v for k, v in i.items() if k != "when"} for i in c.get("items", [])]
            for c in again.data["checklists"]] == strip
