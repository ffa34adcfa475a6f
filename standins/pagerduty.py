"""PagerDuty stand-in: REST API v2 (`/oncalls` paged with include[]=users, `/users/me`, `/abilities`) and
Events API v2 (`/v2/enqueue`, dedup per routing key + dedup_key), after PagerDuty/api-schema
`reference/REST/openapiv3.json` and `reference/events-v2/openapiv3.json` and PagerDuty/developer-docs;
plus `send_webhook`, which delivers a webhook v3 with `X-PagerDuty-Signature` and `X-Webhook-Id` as
PagerDuty does (docs/webhooks/04-Signatures.md). docs/standins.md.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import web

from standins.common import Fault, StandIn, json_body, json_response

SEVERITIES = ("critical", "error", "warning", "info")


def pd_error(message: str, code: int, status: int, errors: list[str] | None = None,
             headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": {"message": message, "code": code}}
    if errors:
        body["error"]["errors"] = errors
    return json_response(body, status, headers)


def events_error(message: str, errors: list[str], status: int = 400) -> web.Response:
    return json_response({"status": "invalid event", "message": message, "errors": errors}, status)


@dataclass
class OnCall:
    user_id: str
    escalation_policy: str
    level: int = 1
    schedule: str | None = None


@dataclass
class Alert:
    routing_key: str
    dedup_key: str
    status: str  # "triggered" | "acknowledged" | "resolved"
    events: list[dict[str, Any]] = field(default_factory=list)


class PagerDutyStandIn(StandIn):
    name = "PagerDuty"

    def __init__(self, *, api_tokens: dict[str, str | None] | None = None,
                 routing_keys: list[str] | None = None) -> None:
        super().__init__()
        # REST API key -> the user it belongs to (None: an account-level key)
        self.api_tokens = api_tokens if api_tokens is not None else {"pd-token": "PUSER01"}
        self.routing_keys = set(routing_keys if routing_keys is not None else ["R" * 32])
        self.users: dict[str, dict[str, Any]] = {"PUSER01": {"name": "Ops Bot", "email": "ops-bot@example.com"}}
        self.oncalls: list[OnCall] = []
        self.alerts: dict[tuple[str, str], Alert] = {}

    # --- seeding ------------------------------------------------------------------------------------------
    def add_user(self, email: str, name: str = "") -> str:
        user_id = "P" + secrets.token_hex(3).upper()
        self.users[user_id] = {"name": name or email.split("@")[0].title(), "email": email}
        return user_id

    def put_on_call(self, email: str, *, escalation_policy: str = "PEP0001", level: int = 1,
                    schedule: str | None = None) -> None:
        user_id = next((k for k, u in self.users.items() if u["email"] == email), None) or self.add_user(email)
        self.oncalls.append(OnCall(user_id, escalation_policy, level, schedule))

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/oncalls", self.get_oncalls)
        app.router.add_get("/users/me", self.users_me)
        app.router.add_get("/users/{id}", self.get_user)
        app.router.add_get("/abilities", self.abilities)
        app.router.add_post("/v2/enqueue", self.enqueue)

    def fault_reply(self, fault: Fault) -> web.Response:
        if fault.body is not None:
            return json_response(fault.body, fault.status)
        if fault.prefix.startswith("/v2/enqueue"):
            if fault.status == 429:
                return json_response({"status": "throttle event", "message": "Requests for this service are "
                                      "arriving too quickly. Please retry later."}, 429,
                                     {"Retry-After": fault.retry_after})
            if fault.status >= 500:
                return web.Response(status=fault.status, text="Internal Server Error")
            return events_error("Event object is invalid", ["Invalid routing key"], fault.status)
        if fault.status == 429:
            return pd_error("Rate Limit Exceeded", 2020, 429, headers={
                "ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": fault.retry_after})
        texts = {401: ("Authentication failed", 2006), 403: ("Access Denied", 2010), 404: ("Not Found", 2100),
                 500: ("Internal Server Error", 2000)}
        message, code = texts.get(fault.status, ("Error", 2000))
        return pd_error(message, code, fault.status)

    # --- REST ---------------------------------------------------------------------------------------------
    def _token(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header[len("Token token="):] if header.startswith("Token token=") else ""
        return token if token in self.api_tokens else None

    def _user_json(self, request: web.Request, user_id: str) -> dict[str, Any]:
        user = self.users[user_id]
        base = self.url or f"{request.scheme}://{request.host}"
        return {"id": user_id, "type": "user", "name": user["name"], "summary": user["name"],
                "email": user["email"], "time_zone": "Etc/UTC", "role": "user", "self": f"{base}/users/{user_id}",
                "html_url": f"https://example.pagerduty.com/users/{user_id}"}

    async def get_oncalls(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return pd_error("Authentication failed", 2006, 401)
        try:
            limit = min(100, max(1, int(request.query.get("limit", "25"))))
            offset = max(0, int(request.query.get("offset", "0")))
        except ValueError:
            return pd_error("Invalid Input Provided", 2001, 400, ["limit and offset must be integers"])
        policies = request.query.getall("escalation_policy_ids[]", [])
        schedules = request.query.getall("schedule_ids[]", [])
        with_users = "users" in request.query.getall("include[]", [])
        found = [o for o in self.oncalls
                 if (not policies or o.escalation_policy in policies) and (not schedules or o.schedule in schedules)]
        base = self.url or f"{request.scheme}://{request.host}"
        page = found[offset:offset + limit]
        entries = []
        for o in page:
            user = self._user_json(request, o.user_id) if with_users else {
                "id": o.user_id, "type": "user_reference", "summary": self.users[o.user_id]["name"],
                "self": f"{base}/users/{o.user_id}", "html_url": f"https://example.pagerduty.com/users/{o.user_id}"}
            entries.append({
                "user": user, "escalation_level": o.level, "start": None, "end": None,
                "escalation_policy": {"id": o.escalation_policy, "type": "escalation_policy_reference"},
                "schedule": {"id": o.schedule, "type": "schedule_reference"} if o.schedule else None})
        return json_response({"oncalls": entries, "limit": limit, "offset": offset,
                              "more": offset + limit < len(found), "total": None})

    async def users_me(self, request: web.Request) -> web.Response:
        token = self._token(request)
        if token is None:
            return pd_error("Authentication failed", 2006, 401)
        user_id = self.api_tokens[token]
        if user_id is None:
            return pd_error("Because this request was made using an account-level access token, we were unable "
                            "to determine the user's identity. Please use a user-level token.", 2500, 400)
        return json_response({"user": self._user_json(request, user_id)})

    async def get_user(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return pd_error("Authentication failed", 2006, 401)
        if request.match_info["id"] not in self.users:
            return pd_error("Not Found", 2100, 404)
        return json_response({"user": self._user_json(request, request.match_info["id"])})

    async def abilities(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return pd_error("Authentication failed", 2006, 401)
        return json_response({"abilities": ["teams", "read_only_users", "advanced_reports", "urgencies"]})

    # --- Events v2 ----------------------------------------------------------------------------------------
    async def enqueue(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            return events_error("Event object is invalid", ["Request body is not a JSON object"])
        problems: list[str] = []
        key = body.get("routing_key")
        if not isinstance(key, str) or len(key) != 32:
            problems.append("'routing_key' must be a 32 character string")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            problems.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
        dedup = body.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            problems.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup:
            problems.append("'dedup_key' is required for acknowledge and resolve events")
        if action == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                problems.append("'payload' is missing or invalid")
            else:
                if not isinstance(payload.get("summary"), str) or not payload["summary"] or \
                        len(payload["summary"]) > 1024:
                    problems.append("'payload.summary' is missing or longer than 1024 characters")
                if not isinstance(payload.get("source"), str) or not payload["source"]:
                    problems.append("'payload.source' is missing or blank")
                if payload.get("severity") not in SEVERITIES:
                    problems.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
        if problems:
            return events_error("Event object is invalid", problems)
        if key not in self.routing_keys:
            return events_error("Event object is invalid", ["Invalid routing key"])
        dedup = dedup or uuid.uuid4().hex
        alert = self.alerts.get((key, dedup))
        if action == "trigger":
            if alert is None or alert.status == "resolved":
                alert = self.alerts[(key, dedup)] = Alert(key, dedup, "triggered")
            alert.events.append(body)
        elif alert is not None and alert.status != "resolved":
            alert.status = "resolved" if action == "resolve" else "acknowledged"
            alert.events.append(body)
        return json_response({"status": "success", "message": "Event processed", "dedup_key": dedup}, 202)


# --- webhooks v3 (what PagerDuty sends) -----------------------------------------------------------------------
def sign_webhook(body: bytes, secrets_: list[str]) -> str:
    """`X-PagerDuty-Signature`: v1=<hex HMAC-SHA256 of the raw body>, one per secret (rotation)."""
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets_)


def webhook_payload(event_type: str = "incident.triggered", *, incident_id: str = "PINC001", title: str =
                    "Server is on fire", status: str = "triggered", service: str = "PSVC001",
                    incident_key: str = "", number: int = 1) -> dict[str, Any]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"event": {
        "id": "01" + secrets.token_hex(12).upper(), "event_type": event_type, "resource_type": "incident",
        "occurred_at": now, "agent": None, "client": None,
        "data": {"id": incident_id, "type": "incident", "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                 "html_url": f"https://example.pagerduty.com/incidents/{incident_id}", "number": number,
                 "status": status, "incident_key": incident_key or secrets.token_hex(16), "created_at": now,
                 "title": title,
                 "service": {"id": service, "type": "service_reference", "summary": "My Service",
                             "html_url": f"https://example.pagerduty.com/services/{service}",
                             "self": f"https://api.pagerduty.com/services/{service}"},
                 "assignees": [], "escalation_policy": {"id": "PEP0001", "type": "escalation_policy_reference",
                                                        "summary": "Default"},
                 "teams": [], "priority": None, "urgency": "high", "conference_bridge": None,
                 "resolve_reason": None}}}


async def send_webhook(url: str, payload: dict[str, Any], secrets_: list[str], *, webhook_id: str = "",
                       session: aiohttp.ClientSession | None = None) -> tuple[int, str]:
    """POST one delivery as PagerDuty does; the same `webhook_id` on a retry. Returns (status, body text)."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "PagerDuty-Webhook/V3.0",
               "X-Webhook-Id": webhook_id or str(uuid.uuid4()), "X-Webhook-Subscription": "PSUB001",
               "X-PagerDuty-Signature": sign_webhook(body, secrets_)}
    own = session is None
    client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    try:
        async with client.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()
    finally:
        if own:
            await client.close()
