"""Alert sources' authentication, payload reading and route matching (bot/integrations/alert_hooks.py), the
[alerts] section of bot.toml and the [[alerts]] routes of playbook files."""
from __future__ import annotations

import base64
import json
import tomllib
from dataclasses import replace

import pytest

from bot.config import GRAFANA_HMAC_HEADER, AlertsSettings, ConfigError, load_settings
from bot.integrations.alert_hooks import Ignored, Malformed, Refused, matches, parse, verify, verify_pagerduty
from bot.playbooks import PlaybookInvalid, parse_playbook
from bot.playbooks.export import to_toml
from scripts import send_alert

BODY = json.dumps(send_alert.alertmanager("HighLatency")).encode()
NOW = 1_800_000_000.0


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def refused(source: str, cfg: AlertsSettings, headers: dict[str, str], body: bytes = BODY) -> Refused:
    with pytest.raises(Refused) as caught:
        verify(source, cfg, lower(headers), body, NOW)
    return caught.value


# -- Alertmanager ---------------------------------------------------------------------------------------------

def test_alertmanager_bearer_and_basic() -> None:
    cfg = AlertsSettings(alertmanager_token="tok-123", alertmanager_username="am", alertmanager_password="pw")
    verify("alertmanager", cfg, {"authorization": "Bearer tok-123"}, BODY, NOW)
    basic = "Basic " + base64.b64encode(b"am:pw").decode()
    verify("alertmanager", cfg, {"authorization": basic}, BODY, NOW)
    assert refused("alertmanager", cfg, {}).status == 401
    assert refused("alertmanager", cfg, {"Authorization": "Bearer tok-124"}).status == 401
    assert refused("alertmanager", cfg, {"Authorization": "Basic " + base64.b64encode(b"am:no").decode()}).status == 401
    assert refused("alertmanager", cfg, {"Authorization": "Basic !!!"}).status == 401
    assert refused("alertmanager", cfg, {"Authorization": "Token tok-123"}).status == 401
    # Bytes that are not UTF-8 (aiohttp hands them over as lone surrogates): refused, not a crash.
    assert refused("alertmanager", cfg, {"Authorization": "Bearer \udcff\udcfe"}).status == 401


def test_a_source_without_credentials_refuses_everything() -> None:
    for source in ("alertmanager", "grafana", "pagerduty", "opsgenie"):
        err = refused(source, AlertsSettings(), {"Authorization": "Bearer x", "X-Opsgenie-Secret": ""})
        assert err.status == 403 and "not set up" in err.text


# -- Grafana ---------------------------------------------------------------------------------------------------

def test_grafana_hmac_over_the_body_in_the_configured_header() -> None:
    cfg = AlertsSettings(grafana_hmac_secret="k")
    signature = send_alert.sign("k", BODY)
    verify("grafana", cfg, {GRAFANA_HMAC_HEADER.lower(): signature}, BODY, NOW)
    verify("grafana", cfg, {GRAFANA_HMAC_HEADER.lower(): signature.upper()}, BODY, NOW)  # hex in any case
    assert "does not match" in refused("grafana", cfg, {GRAFANA_HMAC_HEADER: signature}, BODY + b" ").text
    # The docs' name is not the default: it must be configured to be read.
    assert GRAFANA_HMAC_HEADER in refused("grafana", cfg, {"X-Grafana-Alerting-Signature": signature}).text
    docs_name = replace(cfg, grafana_hmac_header="X-Grafana-Alerting-Signature")
    verify("grafana", docs_name, {"x-grafana-alerting-signature": signature}, BODY, NOW)


def test_grafana_timestamp_is_signed_and_must_be_fresh() -> None:
    cfg = AlertsSettings(grafana_hmac_secret="k", grafana_timestamp_header="X-Ts", grafana_max_age=300)
    stamp = str(int(NOW) - 10)
    signed = send_alert.sign("k", stamp.encode() + b":" + BODY)
    verify("grafana", cfg, {"x-ts": stamp, GRAFANA_HMAC_HEADER.lower(): signed}, BODY, NOW)
    # The body alone signed: the timestamp is part of the message.
    assert refused("grafana", cfg, {"X-Ts": stamp, GRAFANA_HMAC_HEADER: send_alert.sign("k", BODY)}).status == 401
    old = str(int(NOW) - 301)
    stale = send_alert.sign("k", old.encode() + b":" + BODY)
    assert "away from now" in refused("grafana", cfg, {"X-Ts": old, GRAFANA_HMAC_HEADER: stale}).text
    assert "X-Ts" in refused("grafana", cfg, {GRAFANA_HMAC_HEADER: signed}).text
    assert "X-Ts" in refused("grafana", cfg, {"X-Ts": "soon", GRAFANA_HMAC_HEADER: signed}).text


def test_grafana_bearer_or_basic_without_hmac() -> None:
    cfg = AlertsSettings(grafana_token="g-tok")
    verify("grafana", cfg, {"authorization": "Bearer g-tok"}, BODY, NOW)
    assert refused("grafana", cfg, {"Authorization": "Bearer nope"}).status == 401


# -- PagerDuty -------------------------------------------------------------------------------------------------

def test_pagerduty_any_signature_matching_any_secret_passes() -> None:
    secrets = ("old", "new")
    for sent in ([send_alert.sign("old", BODY)], [send_alert.sign("new", BODY)],
                 [send_alert.sign("retired", BODY), send_alert.sign("new", BODY)]):
        verify_pagerduty(secrets, {"x-pagerduty-signature": ",".join(f"v1={s}" for s in sent)}, BODY)
    verify_pagerduty(secrets, {"x-pagerduty-signature": f"v1={send_alert.sign('new', BODY)} , v2=zzz"}, BODY)
    with pytest.raises(Refused):
        verify_pagerduty(secrets, {"x-pagerduty-signature": f"v1={send_alert.sign('retired', BODY)}"}, BODY)
    with pytest.raises(Refused):
        verify_pagerduty(secrets, {"x-pagerduty-signature": f"v2={send_alert.sign('new', BODY)}"}, BODY)
    with pytest.raises(Refused):
        verify_pagerduty(secrets, {}, BODY)
    with pytest.raises(Refused):  # over the raw bytes: the same JSON spaced differently does not pass
        verify_pagerduty(secrets, {"x-pagerduty-signature": f"v1={send_alert.sign('new', BODY)}"},
                         json.dumps(json.loads(BODY), indent=1).encode())


# -- Opsgenie --------------------------------------------------------------------------------------------------

def test_opsgenie_shared_secret_header() -> None:
    cfg = AlertsSettings(opsgenie_secret="s3", opsgenie_header="X-Og")
    verify("opsgenie", cfg, {"x-og": "s3"}, BODY, NOW)
    assert refused("opsgenie", cfg, {"X-Og": "s4"}).status == 401
    assert "X-Og" in refused("opsgenie", cfg, {"X-Opsgenie-Secret": "s3"}).text


# -- payloads and matching -------------------------------------------------------------------------------------

def test_alertmanager_payload_dedup_key_changes_with_status_and_starts() -> None:
    firing = parse("alertmanager", BODY, {})
    again = parse("alertmanager", BODY, {})
    resolved = parse("alertmanager", json.dumps(send_alert.alertmanager("HighLatency", "resolved")).encode(), {})
    later = parse("alertmanager", json.dumps(send_alert.alertmanager(
        "HighLatency", starts_at="2026-12-01T11:00:00Z")).encode(), {})
    assert firing.dedup == again.dedup
    assert len({firing.dedup, resolved.dedup, later.dedup}) == 3
    assert firing.group == resolved.group == later.group
    assert (firing.kind, resolved.kind, firing.title) == ("firing", "resolved", "HighLatency")


@pytest.mark.parametrize(("body", "problem"), [
    (b"[1]", "JSON object"), (b"\xff", "not JSON"), (b"{}", "`version`"),
    (json.dumps({"version": "4", "groupKey": "g", "status": "firing", "alerts": [1]}).encode(), "`alerts[1]`"),
    (json.dumps({"version": "4", "groupKey": "g", "status": "firing",
                 "alerts": [{"status": "firing", "labels": {"a": 1}}]}).encode(), "`alerts[1].labels`"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
])
def test_malformed_alertmanager_bodies_say_what_is_wrong(body: bytes, problem: str) -> None:
    with pytest.raises(Malformed) as caught:
        parse("alertmanager", body, {})
    assert problem in str(caught.value)


def test_pagerduty_and_opsgenie_payloads() -> None:
    pd = send_alert.pagerduty("Checkout down", incident="Q1", urgency="high")
    delivery = parse("pagerduty", json.dumps(pd).encode(), {"x-webhook-id": "wh-1"})
    assert (delivery.kind, delivery.group, delivery.dedup, delivery.service) == ("firing", "Q1", pd["event"]["id"],
                                                                                "Checkout")
    # The repeat key is the signed event id: the same body under another X-Webhook-Id is the same delivery.
    assert parse("pagerduty", json.dumps(pd).encode(), {"x-webhook-id": "wh-2"}).dedup == delivery.dedup
    # PagerDuty's test ping and non-incident events are taken and ignored, never refused (it disables a
    # subscription whose deliveries it sees refused).
    with pytest.raises(Ignored):
        parse("pagerduty", json.dumps({"event": {"id": "E1", "event_type": "pagey.ping", "resource_type": "pagey",
                                                 "data": {"type": "ping"}}}).encode(), {})
    pd["event"]["event_type"] = "incident.acknowledged"
    assert parse("pagerduty", json.dumps(pd).encode(), {}).kind == "update"
    og = send_alert.opsgenie("Lag", "resolved", alert_id="a-1")
    delivery = parse("opsgenie", json.dumps(og).encode(), {})
    assert (delivery.kind, delivery.group) == ("resolved", "a-1")
    assert delivery.dedup == f"a-1|Close|{og['alert']['updatedAt']}"  # a later action on the alert is news
    with pytest.raises(Malformed, match="alert.alertId"):
        parse("opsgenie", json.dumps({"action": "Create", "alert": {}}).encode(), {})


def test_route_matching() -> None:
    payload = send_alert.alertmanager("HighLatency", labels={"service": "checkout"})
    am = parse("alertmanager", json.dumps(payload).encode(), {})
    assert matches({}, am)
    assert matches({"labels": {"severity": "critical"}, "labels_regex": {"service": "check.*"}}, am)
    assert not matches({"labels": {"severity": "warning"}}, am)
    assert not matches({"labels_regex": {"service": "check"}}, am)  # the whole value must match
    pd = parse("pagerduty", json.dumps(send_alert.pagerduty("x", service_id="PABC", urgency="low")).encode(), {})
    assert matches({"service_id": ["PABC"], "urgency": ["low"]}, pd)
    assert not matches({"urgency": ["high"]}, pd)
    og = parse("opsgenie", json.dumps(send_alert.opsgenie("x", tags=["prod", "db"], teams=["sre"],
                                                          priority="P2")).encode(), {})
    assert matches({"tags": ["prod"], "teams": ["sre", "web"], "priority": ["P1", "P2"]}, og)
    assert not matches({"tags": ["prod", "eu"]}, og)
    assert not matches({"priority": ["P1"]}, og)


# -- bot.toml [alerts] ---------------------------------------------------------------------------------------

def test_alerts_settings_from_file_and_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "bot.toml"
    config.write_text('[alerts]\npagerduty_secrets = ["a", "b"]\ngrafana_max_age = "2m"\n'
                      'grafana_hmac_header = "X-Grafana-Alerting-Signature"\n')
    settings = load_settings(config, env={"BOT_ALERTS_ALERTMANAGER_TOKEN": "t", "BOT_ALERTS_OPSGENIE_SECRET": "o"})
    alerts = settings.alerts
    assert (alerts.pagerduty_secrets, alerts.grafana_max_age, alerts.alertmanager_token) == (("a", "b"), 120.0, "t")
    assert alerts.grafana_hmac_header == "X-Grafana-Alerting-Signature" and alerts.opsgenie_secret == "o"
    env = load_settings(tmp_path / "none.toml", env={"BOT_ALERTS_PAGERDUTY_SECRETS": "x, y"})
    assert env.alerts.pagerduty_secrets == ("x", "y")
    assert env.alerts.grafana_hmac_header == GRAFANA_HMAC_HEADER
    with pytest.raises(ConfigError, match="alertmanager_username and alertmanager_password"):
        load_settings(tmp_path / "none.toml", env={"BOT_ALERTS_ALERTMANAGER_USERNAME": "u"})
    with pytest.raises(ConfigError, match="grafana_hmac_header"):
        load_settings(tmp_path / "none.toml", env={"BOT_ALERTS_GRAFANA_HMAC_HEADER": "bad header"})
    with pytest.raises(ConfigError, match="did you mean BOT_ALERTS_OPSGENIE_SECRET"):
        load_settings(tmp_path / "none.toml", env={"BOT_ALERTS_OPSGENIE_SECRT": "x"})


# -- [[alerts]] in playbooks -----------------------------------------------------------------------------------

ROUTED = {
    "title": "Incident", "team": "eng", "owner": "alice",
    "alerts": [
        {"source": "alertmanager", "match": {"labels": {"severity": "critical"}, "labels_regex": {"svc": "a|b"}},
         "name": "{{ alert.labels.alertname }}", "members": ["bob"], "finish_on_resolve": True},
        {"source": "pagerduty", "match": {"urgency": "high", "service_id": ["P1", "P2"]}, "owner": "carol"},
        {"source": "opsgenie", "match": {"tags": ["prod"], "priority": "P1"}},
        {"source": "grafana"},
    ],
}


def test_alert_routes_load_and_round_trip_through_toml() -> None:
    playbook = parse_playbook(ROUTED, playbook_id="inc", path="inc.toml")
    assert [r.source for r in playbook.alerts] == ["alertmanager", "pagerduty", "opsgenie", "grafana"]
    assert playbook.alerts[0].finish_on_resolve and playbook.alerts[0].members == ("bob",)
    assert playbook.alerts[1].owner == "carol" and playbook.alerts[3].name == "{{ alert.title }}"
    assert {"bob", "carol"} <= playbook.usernames()
    text = to_toml(ROUTED)
    assert tomllib.loads(text) == ROUTED
    assert parse_playbook(tomllib.loads(text), playbook_id="inc", path="inc.toml") == playbook


@pytest.mark.parametrize(("route", "key", "problem"), [
    ({"source": "nagios"}, "alerts[1].source", "expected one of alertmanager"),
    ({}, "alerts[1].source", "required"),
    ({"source": "alertmanager", "match": {"label": {}}}, "alerts[1].match.label", 'did you mean "labels"'),
    ({"source": "alertmanager", "match": {"labels_regex": {"a": "("}}}, "alerts[1].match.labels_regex.a",
     "not a regular expression"),
    ({"source": "alertmanager", "match": {"labels": {"a": 1}}}, "alerts[1].match.labels.a", "expected a string"),
    ({"source": "pagerduty", "match": {"urgency": "urgent"}}, "alerts[1].match.urgency", "high, low"),
    ({"source": "pagerduty", "match": {"tags": ["x"]}}, "alerts[1].match.tags", "unknown key"),
    ({"source": "opsgenie", "match": {"priority": ["P0"]}}, "alerts[1].match.priority[1]", "P1, P2"),
    ({"source": "grafana", "name": "{{ alert."}, "alerts[1].name", "not a valid template"),
    ({"source": "grafana", "owner": "@@x"}, "alerts[1].owner", "not a valid username"),
    ({"source": "grafana", "finish_on_resolve": "yes"}, "alerts[1].finish_on_resolve", "true or false"),
    ({"source": "grafana", "finish": True}, "alerts[1].finish", "unknown key"),
])
def test_bad_alert_routes_are_reported_at_their_key(route: dict[str, object], key: str, problem: str) -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook({"title": "x", "team": "eng", "owner": "alice", "alerts": [route]}, playbook_id="x",
                       path="x.toml")
    assert any(e.key == key and problem in e.problem for e in caught.value.errors), caught.value.errors


def test_alert_routes_need_a_team_and_an_owner() -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook({"title": "x", "alerts": [{"source": "grafana"}]}, playbook_id="x", path="x.toml")
    keys = {e.key: e.problem for e in caught.value.errors}
    assert "team" in keys["alerts"] and "owner" in keys["alerts[1].owner"]
