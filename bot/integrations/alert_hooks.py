"""Alerts sent to the bot (`POST /hooks/alerts/<source>`): each vendor's authentication, its payload read
into one `Delivery`, and whether a playbook's `[[alerts]]` route matches it. Pure: no I/O (handlers/alerts.py
records and acts on what this decides). The vendors' facts are in docs/alerts.md:

- Alertmanager (webhook v4, prometheus/alertmanager notify/webhook/webhook.go): `Authorization: Bearer <token>`
  (http_config.authorization) or Basic (http_config.basic_auth); the group is `groupKey`; a repeat is the
  same groupKey, status and alerts' startsAt.
- Grafana (webhook contact point, grafana/alerting receivers/webhook/v1): lower-case hex HMAC-SHA256 of
  `[timestamp ":"] body` in a configurable header (http/hmac.go), or Bearer/Basic; same grouping as above.
- PagerDuty webhooks v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of the raw body with
  the subscription's secret; any signature matching any configured secret passes (a rotation). The group is
  the incident's id; a repeat has the same `X-Webhook-Id`.
- Opsgenie outgoing webhook: no signature exists; a custom header carrying a shared secret. The group is
  the alert's id; a repeat is the same alertId and action.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.config import AlertsSettings

SOURCES = ("alertmanager", "grafana", "pagerduty", "opsgenie")
VENDOR = {"alertmanager": "Alertmanager", "grafana": "Grafana", "pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}


class Refused(Exception):
    """The delivery is not let in: `status` 401 (no or wrong credentials) or 403 (the source is not set up)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Ignored(Exception):
    """A delivery that is taken (2xx) but means nothing for runs (a vendor's test ping); str() says why."""


class Malformed(Exception):
    """The body is not what the source sends (400): its text says what is wrong."""


@dataclass(frozen=True)
class AlertItem:
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str = ""
    url: str = ""


@dataclass(frozen=True)
class Delivery:
    """One delivery, whatever its source. `kind`: "firing" (may start a run), "resolved" (closes it), or
    "update" (an acknowledgement, a note: posted to an open run, never starts one)."""

    source: str
    kind: str
    group: str  # the alert group: groupKey, PagerDuty incident id, Opsgenie alert id
    dedup: str  # the same for a repeat of this delivery, different for anything new
    title: str
    labels: dict[str, str] = field(default_factory=dict)  # common labels (Alertmanager, Grafana)
    annotations: dict[str, str] = field(default_factory=dict)
    alerts: tuple[AlertItem, ...] = ()
    url: str = ""  # where to look at it (externalURL, the incident's html_url)
    event: str = ""  # the vendor's word: status, event_type, action
    # What PagerDuty and Opsgenie routes match on.
    service_id: str = ""
    service: str = ""
    urgency: str = ""
    priority: str = ""
    tags: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()

    def template_values(self) -> dict[str, Any]:
        """What a route's `name` template and the channel post see as `alert`."""
        return {"source": self.source, "vendor": VENDOR[self.source], "status": self.kind, "event": self.event,
                "title": self.title, "labels": dict(self.labels), "annotations": dict(self.annotations),
                "url": self.url, "group": self.group, "service": self.service, "service_id": self.service_id,
                "urgency": self.urgency, "priority": self.priority, "tags": list(self.tags),
                "teams": list(self.teams),
                "alerts": [{"status": a.status, "labels": dict(a.labels), "annotations": dict(a.annotations),
                            "starts_at": a.starts_at, "url": a.url} for a in self.alerts]}


# -- authentication ---------------------------------------------------------------------------------------

def configured(source: str, cfg: AlertsSettings) -> bool:
    if source == "alertmanager":
        return bool(cfg.alertmanager_token or cfg.alertmanager_username)
    if source == "grafana":
        return bool(cfg.grafana_hmac_secret or cfg.grafana_token or cfg.grafana_username)
    if source == "pagerduty":
        return bool(cfg.pagerduty_secrets)
    return bool(cfg.opsgenie_secret)


def _equal(a: str, b: str) -> bool:
    # surrogatepass: a header of bytes that are not UTF-8 reaches here with lone surrogates; it must
    # compare unequal (401), not fail to encode (500).
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _authorization(headers: Mapping[str, str], token: str, username: str, password: str, vendor: str) -> None:
    """Bearer `token` or Basic `username:password`, whichever is configured (both: either passes)."""
    sent = headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    value = value.strip()
    if not sent:
        raise Refused(401, f"{vendor} deliveries must carry `Authorization` (bearer token or basic auth) as set "
                           f"in [alerts].")
    if token and scheme.lower() == "bearer" and _equal(value, token):
        return
    if username and scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(401, "The basic auth credentials are not base64 of `user:password`.") from None
        user, _, pw = decoded.partition(":")
        if _equal(user, username) & _equal(pw, password):  # both compared, whatever the first says
            return
    raise Refused(401, f"The `Authorization` credentials are not the ones [alerts] sets for {vendor}.")


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_grafana(cfg: AlertsSettings, headers: Mapping[str, str], body: bytes, now_s: float) -> None:
    if cfg.grafana_hmac_secret:
        signature = headers.get(cfg.grafana_hmac_header.lower(), "").strip().lower()
        if not signature:
            raise Refused(401, f"Grafana deliveries must carry the `{cfg.grafana_hmac_header}` signature header "
                               f"([alerts] grafana_hmac_header; set the same name in the contact point's HMAC "
                               f"settings).")
        message = body
        if cfg.grafana_timestamp_header:
            stamp = headers.get(cfg.grafana_timestamp_header.lower(), "").strip()
            if not re.fullmatch(r"[0-9]{1,12}", stamp):
                raise Refused(401, f"Grafana deliveries must carry the `{cfg.grafana_timestamp_header}` header "
                                   f"with Unix seconds ([alerts] grafana_timestamp_header).")
            if abs(now_s - int(stamp)) > cfg.grafana_max_age:
                raise Refused(401, f"The signed timestamp is {int(abs(now_s - int(stamp)))} s away from now; at "
                                   f"most {int(cfg.grafana_max_age)} s is accepted ([alerts] grafana_max_age).")
            message = stamp.encode("ascii") + b":" + body
        if not _equal(signature, hmac_hex(cfg.grafana_hmac_secret, message)):
            raise Refused(401, "The HMAC signature does not match the body with [alerts] grafana_hmac_secret.")
        if not (cfg.grafana_token or cfg.grafana_username):
            return
    if cfg.grafana_token or cfg.grafana_username:
        _authorization(headers, cfg.grafana_token, cfg.grafana_username, cfg.grafana_password, "Grafana")


def verify_pagerduty(secrets: tuple[str, ...], headers: Mapping[str, str], body: bytes) -> None:
    sent = headers.get("x-pagerduty-signature", "")
    signatures = [part.strip()[3:].lower() for part in sent.split(",") if part.strip().startswith("v1=")]
    if not signatures:
        raise Refused(401, "PagerDuty deliveries must carry `X-PagerDuty-Signature: v1=<hex>`.")
    expected = [hmac_hex(secret, body) for secret in secrets]
    matched = False
    for signature in signatures:  # every pair compared: the time taken says nothing about which matched
        for wanted in expected:
            matched |= _equal(signature, wanted)
    if not matched:
        raise Refused(401, "No `X-PagerDuty-Signature` matches the body with any of [alerts] pagerduty_secrets.")


def verify(source: str, cfg: AlertsSettings, headers: Mapping[str, str], body: bytes, now_s: float) -> None:
    """Raise Refused unless the delivery carries the source's credentials. `headers`: lower-case names."""
    if not configured(source, cfg):
        raise Refused(403, f"{VENDOR[source]} alerts are not set up: add its credentials to [alerts] in bot.toml "
                           f"(docs/alerts.md). Deliveries without credentials are never accepted.")
    if source == "alertmanager":
        _authorization(headers, cfg.alertmanager_token, cfg.alertmanager_username, cfg.alertmanager_password,
                       "Alertmanager")
    elif source == "grafana":
        verify_grafana(cfg, headers, body, now_s)
    elif source == "pagerduty":
        verify_pagerduty(cfg.pagerduty_secrets, headers, body)
    else:
        sent = headers.get(cfg.opsgenie_header.lower(), "")
        if not sent:
            raise Refused(401, f"Opsgenie deliveries must carry the `{cfg.opsgenie_header}` header "
                               f"([alerts] opsgenie_header).")
        if not _equal(sent.strip(), cfg.opsgenie_secret):
            raise Refused(401, f"The `{cfg.opsgenie_header}` header is not [alerts] opsgenie_secret.")


# -- payloads -------------------------------------------------------------------------------------------------

def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except RecursionError:
        raise Malformed("The body is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError):
        raise Malformed("The body is not JSON.") from None
    if not isinstance(data, dict):
        raise Malformed("The body must be a JSON object.")
    return data


def _text(data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise Malformed(f"`{where}{key}` must be a non-empty string." if required else
                        f"`{where}{key}` must be a string.")
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Malformed(f"`{where}{key}` must be an object of strings.")
    return {str(k): v for k, v in value.items()}


def _list_of_strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Malformed(f"`{where}{key}` must be a list of strings.")
    return tuple(value)


def _prometheus_style(source: str, data: dict[str, Any]) -> Delivery:
    """Alertmanager webhook v4, and Grafana's contact point (the same shape plus title, state, message)."""
    version = data.get("version")
    if source == "alertmanager" and version != "4":
        raise Malformed(f'`version` must be "4" (Alertmanager webhook v4), got {json.dumps(version)[:40]}.')
    group = _text(data, "groupKey", "")
    status = _text(data, "status", "")
    if status not in ("firing", "resolved"):
        raise Malformed(f'`status` must be "firing" or "resolved", got "{status[:40]}".')
    raw_alerts = data.get("alerts")
    if not isinstance(raw_alerts, list) or not raw_alerts:
        raise Malformed("`alerts` must be a non-empty list.")
    items = []
    for n, raw in enumerate(raw_alerts, start=1):
        where = f"alerts[{n}]."
        if not isinstance(raw, dict):
            raise Malformed(f"`alerts[{n}]` must be an object.")
        item_status = _text(raw, "status", where)
        if item_status not in ("firing", "resolved"):
            raise Malformed(f'`{where}status` must be "firing" or "resolved".')
        items.append(AlertItem(item_status, _strings(raw, "labels", where), _strings(raw, "annotations", where),
                               _text(raw, "startsAt", where, required=False),
                               _text(raw, "generatorURL", where, required=False)))
    common = _strings(data, "commonLabels", "") or dict(items[0].labels)
    labels = {**_strings(data, "groupLabels", ""), **common}
    annotations = _strings(data, "commonAnnotations", "") or dict(items[0].annotations)
    title = labels.get("alertname") or (data.get("title") if isinstance(data.get("title"), str) else "") or group
    # Each alert's own status too: a "firing" group notification in which some alerts resolved is news.
    starts = ",".join(sorted(f"{a.labels.get('alertname', '')}@{a.starts_at}:{a.status}" for a in items))
    return Delivery(source=source, kind=status, group=group, dedup=f"{group}|{status}|{starts}", title=title,
                    labels=labels, annotations=annotations, alerts=tuple(items),
                    url=_text(data, "externalURL", "", required=False), event=status)


PD_FIRING = ("incident.triggered",)
PD_RESOLVED = ("incident.resolved",)


def _pagerduty(data: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    event = data.get("event")
    if not isinstance(event, dict):
        raise Malformed("`event` must be an object (PagerDuty webhooks v3).")
    event_type = _text(event, "event_type", "event.")
    if event_type == "pagey.ping" or event.get("resource_type", "incident") != "incident":
        # PagerDuty's test ping and events of other resources: taken (2xx), since PagerDuty disables a
        # subscription whose deliveries it keeps seeing refused; nothing to do with them.
        raise Ignored(f"PagerDuty {event_type} events start no run (only incident events do).")
    incident = event.get("data")
    if not isinstance(incident, dict):
        raise Malformed("`event.data` must be an object.")
    incident_id = _text(incident, "id", "event.data.")
    service = incident.get("service") or {}
    if not isinstance(service, dict):
        raise Malformed("`event.data.service` must be an object.")
    # Repeats: PagerDuty sends a retry with the same X-Webhook-Id and the same body. The header is not
    # signed (anyone holding one signed body could vary it), the event's id is: key on that, so a replay
    # with a new header is a repeat too; the header counts only where an event has no id.
    webhook_id = str(event.get("id") or "").strip() or headers.get("x-webhook-id", "").strip()
    if not webhook_id:
        raise Malformed("`event.id` must be a string (PagerDuty webhooks v3).")
    kind = "firing" if event_type in PD_FIRING else "resolved" if event_type in PD_RESOLVED else "update"
    return Delivery(source="pagerduty", kind=kind, group=incident_id, dedup=webhook_id,
                    title=_text(incident, "title", "event.data.", required=False) or incident_id,
                    url=_text(incident, "html_url", "event.data.", required=False), event=event_type,
                    service_id=str(service.get("id") or ""),
                    service=str(service.get("summary") or service.get("name") or ""),
                    urgency=str(incident.get("urgency") or ""),
                    priority=str((incident.get("priority") or {}).get("summary") or "")
                    if isinstance(incident.get("priority") or {}, dict) else "")


OG_FIRING = ("Create",)
OG_RESOLVED = ("Close",)


def _opsgenie(data: dict[str, Any]) -> Delivery:
    action = _text(data, "action", "")
    alert = data.get("alert")
    if not isinstance(alert, dict):
        raise Malformed("`alert` must be an object (Opsgenie outgoing webhook).")
    alert_id = _text(alert, "alertId", "alert.")
    kind = "firing" if action in OG_FIRING else "resolved" if action in OG_RESOLVED else "update"
    # updatedAt too: a second AddNote, or an Acknowledge after an UnAcknowledge, is news, not a repeat.
    updated = str(alert.get("updatedAt") or "")
    return Delivery(source="opsgenie", kind=kind, group=alert_id, dedup=f"{alert_id}|{action}|{updated}",
                    title=_text(alert, "message", "alert.", required=False) or alert_id, event=action,
                    priority=str(alert.get("priority") or ""), tags=_list_of_strings(alert, "tags", "alert."),
                    teams=_list_of_strings(alert, "teams", "alert."),
                    labels={key: str(alert[key]) for key in ("entity", "alias") if alert.get(key)})


def parse(source: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
    """The delivery in one shape; Malformed naming what is wrong."""
    data = _json(body)
    if source in ("alertmanager", "grafana"):
        return _prometheus_style(source, data)
    if source == "pagerduty":
        return _pagerduty(data, headers)
    return _opsgenie(data)


# -- routes ----------------------------------------------------------------------------------------------------

def _one_of(wanted: Any, value: str) -> bool:
    values = wanted if isinstance(wanted, (list, tuple)) else [wanted]
    return any(str(w).lower() == value.lower() for w in values)


def matches(match: Mapping[str, Any], delivery: Delivery) -> bool:
    """Whether a route's `match` (validated by bot/playbooks/validation.py) holds for the delivery."""
    if delivery.source in ("alertmanager", "grafana"):
        equal = match.get("labels") or {}
        regex = match.get("labels_regex") or {}
        candidates = [delivery.labels] + [{**delivery.labels, **a.labels} for a in delivery.alerts]
        return any(all(labels.get(k) == v for k, v in equal.items())
                   and all(re.fullmatch(str(p), labels.get(k, "")) is not None for k, p in regex.items())
                   for labels in candidates)
    if delivery.source == "pagerduty":
        return (("service_id" not in match or _one_of(match["service_id"], delivery.service_id))
                and ("service" not in match or _one_of(match["service"], delivery.service))
                and ("urgency" not in match or _one_of(match["urgency"], delivery.urgency)))
    tags = {t.lower() for t in delivery.tags}
    teams = {t.lower() for t in delivery.teams}
    return (all(str(t).lower() in tags for t in match.get("tags", []))
            and (not match.get("teams") or any(str(t).lower() in teams for t in match["teams"]))
            and ("priority" not in match or _one_of(match["priority"], delivery.priority)))


# The `match` keys of each source (bot/playbooks/validation.py checks them; docs/alerts.md lists them).
MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "alertmanager": ("labels", "labels_regex"), "grafana": ("labels", "labels_regex"),
    "pagerduty": ("service_id", "service", "urgency"), "opsgenie": ("tags", "teams", "priority"),
}

