"""Fire an alert at the bot as Alertmanager, Grafana, PagerDuty or Opsgenie sends it, with its real
authentication (docs/alerts.md):

    .venv/bin/python scripts/send_alert.py http://127.0.0.1:8081 alertmanager --name HighLatency --token s3cret
    .venv/bin/python scripts/send_alert.py URL alertmanager --name HighLatency --status resolved --token s3cret
    .venv/bin/python scripts/send_alert.py URL grafana --name DiskFull --hmac-secret k \\
        --hmac-header X-Grafana-Alert-Signature --timestamp-header X-Grafana-Alert-Timestamp
    .venv/bin/python scripts/send_alert.py URL pagerduty --name "Checkout down" --secret old --secret new
    .venv/bin/python scripts/send_alert.py URL opsgenie --name "DB replica lag" --header X-Opsgenie-Secret \\
        --secret s3cret

`--group` keeps a group (groupKey, incident id, alert id) across calls, so a `--status resolved` lands in
the run the firing one started. Prints the bot's answer. The payload builders and `auth_headers` are used
by the tests and the benchmark too, so what they send is what this sends.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert that is still firing


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alertmanager(name: str, status: str = "firing", *, group: str = "", labels: dict[str, str] | None = None,
                 starts_at: str = "2026-12-01T10:00:00Z", summary: str = "") -> dict[str, Any]:
    """Alertmanager's webhook v4 body (notify/webhook/webhook.go Message) for one alert group."""
    labels = {"alertname": name, "severity": "critical", **(labels or {})}
    group = group or '{}/{severity="critical"}:{alertname="%s"}' % name
    alert = {"status": status, "labels": labels, "annotations": {"summary": summary or f"{name} is {status}"},
             "startsAt": starts_at, "endsAt": _now_iso() if status == "resolved" else ZERO_TIME,
             "generatorURL": f"http://prometheus.example.com/graph?g0.expr={name}",
             "fingerprint": hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]}
    return {"version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "playbooks",
            "groupLabels": {"alertname": name}, "commonLabels": labels,
            "commonAnnotations": alert["annotations"], "externalURL": "http://alertmanager.example.com",
            "alerts": [alert]}


def grafana(name: str, status: str = "firing", *, group: str = "", labels: dict[str, str] | None = None,
            starts_at: str = "2026-12-01T10:00:00Z") -> dict[str, Any]:
    """Grafana's webhook contact point body (receivers/webhook/v1): Alertmanager's plus its own fields."""
    body = alertmanager(name, status, group=group or '{}:{alertname="%s"}' % name, labels=labels,
                        starts_at=starts_at)
    body.update({"version": "1", "orgId": 1, "state": "alerting" if status == "firing" else "ok",
                 "title": f"[{status.upper()}:1] {name}", "message": f"{name} is {status}"})
    for alert in body["alerts"]:
        alert.update({"silenceURL": "http://grafana.example.com/alerting/silence/new", "dashboardURL": "",
                      "panelURL": "", "values": {"A": 1}, "valueString": "[ var='A' value=1 ]"})
    return body


def pagerduty(title: str, status: str = "firing", *, incident: str = "", service_id: str = "PSVC001",
              service: str = "Checkout", urgency: str = "high") -> dict[str, Any]:
    """A PagerDuty webhooks v3 incident event (incident.triggered, or incident.resolved)."""
    incident = incident or "Q" + uuid.uuid4().hex[:13].upper()
    event_type = {"firing": "incident.triggered", "resolved": "incident.resolved"}.get(status, status)
    return {"event": {
        "id": "01" + uuid.uuid4().hex[:24].upper(), "event_type": event_type, "resource_type": "incident",
        "occurred_at": _now_iso(), "agent": None, "client": None,
        "data": {"id": incident, "type": "incident", "self": f"https://api.pagerduty.com/incidents/{incident}",
                 "html_url": f"https://acme.pagerduty.com/incidents/{incident}", "number": 42,
                 "status": "resolved" if status == "resolved" else "triggered", "incident_key": incident.lower(),
                 "title": title,
                 "service": {"id": service_id, "type": "service_reference", "summary": service,
                             "html_url": f"https://acme.pagerduty.com/services/{service_id}"},
                 "assignees": [], "escalation_policy": {"id": "PEP0001", "type": "escalation_policy_reference"},
                 "teams": [], "priority": None, "urgency": urgency, "conference_bridge": None,
                 "resolve_reason": None, "created_at": _now_iso()}}}


def opsgenie(message: str, status: str = "firing", *, alert_id: str = "", tags: list[str] | None = None,
             teams: list[str] | None = None, priority: str = "P1") -> dict[str, Any]:
    """An Opsgenie outgoing webhook body (action Create, or Close)."""
    action = {"firing": "Create", "resolved": "Close"}.get(status, status)
    alert_id = alert_id or str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    return {"action": action, "integrationId": "8418d193-2dab-4490-b331-8c02cdd196b7",
            "integrationName": "Playbooks", "source": {"name": "", "type": "web"},
            "alert": {"alertId": alert_id, "message": message, "tags": tags or ["prod"], "teams": teams or ["sre"],
                      "recipients": [], "username": "ops@example.com", "userId": "", "source": "api",
                      "alias": message.lower().replace(" ", "-"), "tinyId": "7", "entity": "", "priority": priority,
                      "createdAt": now_ms, "updatedAt": now_ms * 1_000_000}}


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def auth_headers(source: str, body: bytes, *, token: str = "", user: str = "", password: str = "",
                 secrets: list[str] | None = None, hmac_secret: str = "", hmac_header: str = "",
                 timestamp_header: str = "", timestamp: int | None = None, header: str = "",
                 webhook_id: str = "") -> dict[str, str]:
    """The headers the vendor sends with `body`: its content type, user agent and authentication."""
    agent = {"alertmanager": "Alertmanager/0.34.0", "grafana": "Grafana", "pagerduty": "PagerDuty-Webhook/V3.0",
             "opsgenie": "Opsgenie"}.get(source, "send_alert")
    headers = {"Content-Type": "application/json", "User-Agent": agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if source == "grafana" and hmac_secret:
        message = body
        if timestamp_header:
            stamp = str(int(time.time()) if timestamp is None else timestamp)
            headers[timestamp_header] = stamp
            message = stamp.encode() + b":" + body
        headers[hmac_header or "X-Grafana-Alert-Signature"] = sign(hmac_secret, message)
    if source == "pagerduty":
        headers["X-PagerDuty-Signature"] = ",".join(f"v1={sign(s, body)}" for s in secrets or [])
        headers["X-Webhook-Id"] = webhook_id or str(uuid.uuid4())
        headers["X-Webhook-Subscription"] = "PSUB001"
    if source == "opsgenie" and header:
        headers[header] = (secrets or [""])[0]
    return headers


def build(source: str, name: str, status: str, group: str) -> dict[str, Any]:
    if source == "alertmanager":
        return alertmanager(name, status, group=group)
    if source == "grafana":
        return grafana(name, status, group=group)
    if source == "pagerduty":
        return pagerduty(name, status, incident=group)
    return opsgenie(name, status, alert_id=group)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the bot's public URL, e.g. http://127.0.0.1:8081")
    parser.add_argument("source", choices=("alertmanager", "grafana", "pagerduty", "opsgenie"))
    parser.add_argument("--name", default="HighLatency", help="alert name / incident title / message")
    parser.add_argument("--status", default="firing", choices=("firing", "resolved"))
    parser.add_argument("--group", default="", help="groupKey, PagerDuty incident id or Opsgenie alert id")
    parser.add_argument("--token", default="", help="bearer token (Alertmanager, Grafana)")
    parser.add_argument("--user", default="", help="basic auth user (Alertmanager, Grafana)")
    parser.add_argument("--password", default="")
    parser.add_argument("--secret", action="append", default=[],
                        help="PagerDuty subscription secret (repeat: one signature each), or the Opsgenie secret")
    parser.add_argument("--hmac-secret", default="", help="Grafana HMAC secret")
    parser.add_argument("--hmac-header", default="X-Grafana-Alert-Signature")
    parser.add_argument("--timestamp-header", default="", help="Grafana: also sign a timestamp, sent in this header")
    parser.add_argument("--header", default="X-Opsgenie-Secret", help="Opsgenie: the shared-secret header")
    parser.add_argument("--webhook-id", default="", help="PagerDuty X-Webhook-Id (same id = a retry)")
    args = parser.parse_args(argv)
    body = json.dumps(build(args.source, args.name, args.status, args.group)).encode()
    headers = auth_headers(args.source, body, token=args.token, user=args.user, password=args.password,
                           secrets=args.secret, hmac_secret=args.hmac_secret, hmac_header=args.hmac_header,
                           timestamp_header=args.timestamp_header, header=args.header, webhook_id=args.webhook_id)
    request = urllib.request.Request(f"{args.url.rstrip('/')}/hooks/alerts/{args.source}", data=body,
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the URL is the operator's
            print(response.status, response.read().decode())
            return 0
    except urllib.error.HTTPError as err:
        print(err.code, err.read().decode(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
