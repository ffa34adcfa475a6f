"""`[[actions]]` in playbook files: each problem at its key, templates checked and rendered in the sandbox,
credentials refused, a TOML round trip; the [http_actions] secrets in bot.toml and BOT_*."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, load_settings
from bot.playbooks import PlaybookInvalid, parse_playbook
from bot.playbooks.actions import ActionTemplateError, render, template_problem
from bot.playbooks.export import to_toml

BASE: dict[str, Any] = {"title": "Incident",
                        "checklists": [{"title": "Triage", "items": [{"title": "Page the team"}]}]}


def parse(*actions: dict[str, Any]) -> Any:
    return parse_playbook({**BASE, "actions": list(actions)}, playbook_id="incident", path="incident.toml")


def problems(*actions: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PlaybookInvalid) as caught:
        parse(*actions)
    return {e.key: e.problem for e in caught.value.errors}


def test_every_kind_parses_with_its_keys() -> None:
    playbook = parse(
        {"on": "run_started", "kind": "jira.create_issue", "project": "OPS", "summary": "{{ run.name }}",
         "labels": ["incident"]},
        {"on": "status_updated", "kind": "jira.comment", "text": "{{ event.update }}"},
        {"on": "run_finished", "kind": "jira.transition", "to": "Done"},
        {"on": "run_started", "kind": "zoom.create_meeting", "host": "ops@example.com"},
        {"on": "run_started", "kind": "pagerduty.invite_oncall", "schedule": "PSCHED1", "make_owner": True},
        {"on": "run_started", "kind": "opsgenie.invite_oncall", "schedule": "ops-schedule"},
        {"on": "run_started", "kind": "pagerduty.page", "routing": "default", "severity": "error"},
        {"on": "run_finished", "kind": "pagerduty.resolve"},
        {"on": "run_started", "kind": "opsgenie.page", "responders": ["ops"], "priority": "P2"},
        {"on": "run_finished", "kind": "opsgenie.close"},
        {"on": "item_checked", "item": "Page the team", "kind": "http", "method": "PUT",
         "url": "https://hooks.example.com/x", "headers": {"X-Source": "playbooks"},
         "secret_headers": {"X-Api-Key": "statuspage"}, "body": '{"name": {{ run.name | tojson }}}'},
    )
    assert [a.kind for a in playbook.actions][:3] == ["jira.create_issue", "jira.comment", "jira.transition"]
    assert playbook.actions[0].get("labels") == ("incident",)
    assert playbook.actions[4].get("schedule") == ("PSCHED1",) and playbook.actions[4].get("make_owner") is True
    http = playbook.actions[-1]
    assert http.item == "Page the team" and http.get("secret_headers") == (("X-Api-Key", "statuspage"),)


def test_problems_are_placed_at_their_keys() -> None:
    found = problems(
        {"on": "run_started", "kind": "jira.make_issue"},
        {"on": "run_started", "kind": "jira.create_issue"},
        {"on": "run_started", "kind": "jira.create_issue", "project": "OPS", "summary": "{{ run.name"},
        {"on": "run_started", "item": "Page the team", "kind": "jira.transition", "to": "Done"},
        {"on": "run_started", "kind": "http", "url": "https://x.example.com", "headers": {"Authorization": "Bearer x"}},
        {"on": "run_started", "kind": "http", "url": "https://x.example.com", "secret_headers": {"X-Key": "s3 cr3t!"}},
        {"on": "when_ever", "kind": "opsgenie.close"},
        {"on": "run_started", "kind": "zoom.create_meeting", "topic": "{{ secrets.key }}"},
        {"on": "run_started", "kind": "pagerduty.page", "routing": "0123456789abcdef0123456789abcdef"},
        {"on": "item_checked", "item": "No such item", "kind": "opsgenie.close"},
        {"on": "run_started", "kind": "opsgenie.close", "project": "OPS"},
    )
    assert "unknown kind" in found["actions[1].kind"]
    assert "required" in found["actions[2].project"]
    assert "not a valid template" in found["actions[3].summary"]
    assert 'only used with on = "item_checked"' in found["actions[4].item"]
    assert "credential" in found["actions[5].headers.Authorization"]
    assert "name of a secret" in found["actions[6].secret_headers.X-Key"]
    assert "expected one of" in found["actions[7].on"]
    assert "uses secrets" in found["actions[8].topic"]
    assert "routing key itself" in found["actions[9].routing"]
    assert "no item" in found["actions[10].item"]
    assert "unknown key" in found["actions[11].project"]


def test_actions_round_trip_through_toml() -> None:
    data = {**BASE, "actions": [
        {"on": "run_started", "kind": "jira.create_issue", "project": "OPS", "labels": ["a", "b"],
         "description": "Line one\nLine two: {{ run.summary }}"},
        {"on": "item_checked", "item": "Page the team", "kind": "http", "url": "https://x.example.com/h",
         "headers": {"X-A": "1"}, "secret_headers": {"X-Key": "k"}, "body": '{"a": {{ event.by | tojson }}}'}]}
    text = to_toml(data)
    assert tomllib.loads(text) == data
    assert parse_playbook(tomllib.loads(text), playbook_id="p", path="p") == parse_playbook(data, playbook_id="p",
                                                                                            path="p")


def test_templates_render_in_a_sandbox() -> None:
    class Values:
        name = "DB down"

    assert render("Incident: {{ run.name }}", {"run": Values(), "event": Values()}) == "Incident: DB down"
    with pytest.raises(ActionTemplateError):
        render("{{ run.missing }}", {"run": Values(), "event": Values()})
    with pytest.raises(ActionTemplateError):  # the sandbox refuses internals
        render("{{ run.__class__.__mro__ }}", {"run": Values(), "event": Values()})
    assert template_problem("{% for x in run.properties %}{{ x }}{% endfor %}") == ""
    assert "uses token" in template_problem("{{ token }}")


def test_http_action_secrets_come_from_bot_toml_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('[http_actions]\nsecrets = { statuspage = "abc" }\n')
    assert load_settings(path, env={}).http_actions.secrets == {"statuspage": "abc"}
    env = {"BOT_HTTP_ACTIONS_SECRETS": json.dumps({"a": "1", "b.c": "2"})}
    assert load_settings(tmp_path / "absent.toml", env=env).http_actions.secrets == {"a": "1", "b.c": "2"}
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.toml", env={"BOT_HTTP_ACTIONS_SECRETS": "a=1"})
    assert "BOT_HTTP_ACTIONS_SECRETS" in str(caught.value) and "JSON object" in str(caught.value)
    assert "a=1" not in str(caught.value)


def test_the_internal_hosts_http_actions_may_reach_come_from_bot_toml_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    assert load_settings(tmp_path / "absent.toml", env={"BOT_MATTERMOST_URL": ""}).http_actions.allow_internal == ()
    path.write_text('[http_actions]\nallow_internal = ["Status.Internal", "10.0.0.0/8", "fd00::1"]\n')
    assert load_settings(path, env={}).http_actions.allow_internal == ("status.internal", "10.0.0.0/8", "fd00::1")
    env = {"BOT_HTTP_ACTIONS_ALLOW_INTERNAL": "127.0.0.1, hooks.corp 192.168.0.0/16"}
    assert load_settings(tmp_path / "absent.toml", env=env).http_actions.allow_internal == (
        "127.0.0.1", "hooks.corp", "192.168.0.0/16")
    for bad in ("10.0.0.0/99", "http://hooks.corp", "a b/c", "999.1.1.1"):
        with pytest.raises(ConfigError) as caught:
            load_settings(tmp_path / "absent.toml", env={"BOT_HTTP_ACTIONS_ALLOW_INTERNAL": bad})
        assert "BOT_HTTP_ACTIONS_ALLOW_INTERNAL" in str(caught.value) and "network" in str(caught.value)


@pytest.mark.parametrize("source", ['{{ 99**99999999 }}', '{{ "ab" * 300000000 }}', '{{ 1/0 }}',
                                    '{{ "{:999999999}".format(1) }}', '{{ "a".ljust(999999999) }}',
                                    '{{ "%999999999s" % 1 }}', '{{ "a" | center(999999999) }}',
                                    '{% for i in range(100000) %}xxxxxxxxxx{% endfor %}',
                                    '{{ "a" | replace("", "b" * 100000) }}',
                                    '{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}'])
def test_a_template_that_would_hang_eat_memory_or_crash_fails_cleanly(source: str) -> None:
    assert template_problem(source) == ""
    with pytest.raises(ActionTemplateError):
        render(source, {"run": {}, "event": {}})


def test_small_powers_repeats_and_formats_still_work() -> None:
    assert render('{{ 2**10 }} {{ "ab" * 3 }} {{ "%05d" % 3 }} {{ "{:>4}".format(1) }}', {}) == "1024 ababab 00003    1"


def test_alert_and_schedule_names_render_in_the_same_sandbox() -> None:
    from zoneinfo import ZoneInfo

    from bot.domain.schedules import ScheduleError, render_name
    from handlers import alerts
    with pytest.raises(ScheduleError):
        render_name("{{ 1/0 }}", 0, ZoneInfo("UTC"), "P")
    with pytest.raises(ScheduleError):
        render_name("{{ 9**9999999 }}", 0, ZoneInfo("UTC"), "P")
    assert alerts._NAMES.from_string("{{ 1 }}").render() == "1"
    from jinja2 import TemplateError
    with pytest.raises(TemplateError):
        alerts._NAMES.from_string('{{ "x" * 999999999 }}').render()


def test_a_playbook_may_not_set_the_bots_own_signature_headers() -> None:
    got = problems({"on": "run_started", "kind": "http", "url": "https://hooks.example.com/x",
                    "headers": {"X-Playbooks-Event": "run_finished", "x-playbooks-delivery": "1"}})
    assert "the bot's own" in got["actions[1].headers.X-Playbooks-Event"]
    assert "the bot's own" in got["actions[1].headers.x-playbooks-delivery"]


def test_secret_hosts_come_from_bot_toml_and_the_environment(tmp_path: Path) -> None:
    from bot.config import load_settings as load
    base = tmp_path / "bot.toml"
    base.write_text('[mattermost]\nurl = "http://mm"\ntoken = "t"\n'
                    '[http_actions]\nsecrets = { sp = "v" }\nsecret_hosts = { sp = ["API.Example.com"] }\n')
    settings = load(base, env={})
    assert settings.http_actions.secret_hosts == {"sp": ("api.example.com",)}
    settings = load(base, env={"BOT_HTTP_ACTIONS_SECRET_HOSTS": '{"sp": ["a.example.com", "b.example.com"]}'})
    assert settings.http_actions.secret_hosts == {"sp": ("a.example.com", "b.example.com")}
    with pytest.raises(ConfigError):
        load(base, env={"BOT_HTTP_ACTIONS_SECRET_HOSTS": '{"sp": "a.example.com"}'})
