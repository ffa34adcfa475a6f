"""Opsgenie REST API v2 stand-in (opsgenie/opsgenie-oas swagger.yaml, 2021; docs.opsgenie.com; docs/standins.md):
GenieKey auth, who is on call (`/v2/schedules/{identifier}/on-calls`, flat or not), alerts created and closed
asynchronously (202 + `GET /v2/alerts/requests/{requestId}`), alias dedup, `GET /v2/account`.
Every answer carries `took` and `requestId`, and the headers X-Request-ID / X-RateLimit-State.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from standins.common import Fault, StandIn, json_body, json_response

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


def og(body: dict[str, Any], status: int = 200, state: str = "OK", extra: dict[str, str] | None = None
       ) -> web.Response:
    request_id = str(uuid.uuid4())
    return json_response({**body, "took": 0.012, "requestId": request_id}, status,
                         {"X-Request-ID": request_id, "X-Response-Time": "0.012", "X-RateLimit-State": state,
                          **(extra or {})})


@dataclass
class Schedule:
    id: str
    name: str
    on_call: list[str]  # emails
    enabled: bool = True


@dataclass
class OgAlert:
    id: str
    alias: str
    message: str
    body: dict[str, Any]
    status: str = "open"
    count: int = 1
    closes: list[dict[str, Any]] = field(default_factory=list)


class OpsgenieStandIn(StandIn):
    name = "Opsgenie"

    def __init__(self, *, api_keys: dict[str, bool] | None = None, teams: list[str] | None = None) -> None:
        super().__init__()
        self.api_keys = api_keys if api_keys is not None else {"og-key": True}  # key -> configuration access
        self.teams = set(teams if teams is not None else ["ops"])
        self.schedules: dict[str, Schedule] = {}
        self.alerts: dict[str, OgAlert] = {}  # id -> alert
        self.requests_done: dict[str, dict[str, Any]] = {}

    def add_schedule(self, name: str, on_call: list[str], schedule_id: str = "") -> Schedule:
        schedule = Schedule(schedule_id or str(uuid.uuid4()), name, list(on_call))
        self.schedules[schedule.id] = schedule
        return schedule

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/account", self.account)
        app.router.add_get("/v2/schedules/{identifier}/on-calls", self.oncalls)
        app.router.add_post("/v2/alerts", self.create_alert)
        app.router.add_get("/v2/alerts/requests/{id}", self.request_status)
        app.router.add_post("/v2/alerts/{identifier}/close", self.close_alert)

    def fault_reply(self, fault: Fault) -> web.Response:
        if fault.body is not None:
            return json_response(fault.body, fault.status)
        if fault.status == 429:
            return og({"message": "You are making too many requests! To avoid errors, we recommend you limit "
                                  "requests."}, 429, "THROTTLED",
                      {"X-RateLimit-Reason": "ACCOUNT", "X-RateLimit-Period-In-Sec": "60",
                       "Retry-After": fault.retry_after})
        texts = {401: "Could not authenticate", 403: "You are not authorized for this operation",
                 404: "No schedule exists with identifier [x]", 500: "Internal Server Error"}
        body: dict[str, Any] = {"message": texts.get(fault.status, "Error")}
        if fault.status == 403:
            body["code"] = 40301
        return og(body, fault.status)

    def _key(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        key = header[len("GenieKey "):] if header.startswith("GenieKey ") else ""
        return key if key in self.api_keys else None

    async def account(self, request: web.Request) -> web.Response:
        key = self._key(request)
        if key is None:
            return og({"message": "Could not authenticate"}, 401)
        if not self.api_keys[key]:
            return og({"message": "You are not authorized for this operation", "code": 40301}, 403)
        return og({"data": {"name": "acme", "userCount": 12, "plan": {"maxUserCount": 1500, "name": "Enterprise",
                                                                      "isYearly": True}}})

    async def oncalls(self, request: web.Request) -> web.Response:
        key = self._key(request)
        if key is None:
            return og({"message": "Could not authenticate"}, 401)
        if not self.api_keys[key]:
            return og({"message": "You are not authorized for this operation", "code": 40301}, 403)
        ident = request.match_info["identifier"]
        kind = request.query.get("scheduleIdentifierType", "id")
        if kind not in ("id", "name"):
            return og({"message": "Invalid schedule identifier type [" + kind + "]"}, 422)
        schedule = self.schedules.get(ident) if kind == "id" else \
            next((s for s in self.schedules.values() if s.name == ident), None)
        if schedule is None:
            return og({"message": f"No schedule exists with {'name' if kind == 'name' else 'identifier'} [{ident}]"},
                      404)
        parent = {"id": schedule.id, "name": schedule.name, "enabled": schedule.enabled}
        if request.query.get("flat", "false").lower() == "true":
            return og({"data": {"_parent": parent, "onCallRecipients": list(schedule.on_call)}})
        participants = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, e)), "name": e, "type": "user"}
                        for e in schedule.on_call]
        return og({"data": {"_parent": parent, "onCallParticipants": participants}})

    def _done(self, action: str, success: bool, status: str, alert: OgAlert | None, alias: str) -> str:
        request_id = str(uuid.uuid4())
        self.requests_done[request_id] = {
            "success": success, "action": action, "processedAt": datetime.now(timezone.utc).isoformat(),
            "integrationId": "c9cec2cb-e782-4ebb-bc1d-1b2fa703cf03", "isSuccess": success, "status": status,
            "alertId": alert.id if alert else "", "alias": alias}
        return request_id

    async def create_alert(self, request: web.Request) -> web.Response:
        if self._key(request) is None:
            return og({"message": "Could not authenticate"}, 401)
        body = await json_body(request)
        if not isinstance(body, dict):
            return og({"message": "Request body is not processable. Please check the errors.",
                       "errors": {"message": "Message can not be empty."}}, 422)
        problems: dict[str, str] = {}
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            problems["message"] = "Message can not be empty."
        elif len(message) > 130:
            problems["message"] = "Message can not be longer than 130 characters."
        if "priority" in body and body["priority"] not in PRIORITIES:
            problems["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]"
        alias = body.get("alias", "")
        if not isinstance(alias, str) or len(alias) > 512:
            problems["alias"] = "Alias can not be longer than 512 characters."
        for r in body.get("responders") or []:
            if not isinstance(r, dict) or r.get("type") not in ("team", "user", "escalation", "schedule"):
                problems["responders"] = "Responder type must be one of [team, user, escalation, schedule]"
        if problems:
            return og({"message": "Request body is not processable. Please check the errors.", "errors": problems},
                      422)
        # Processed at once here (Opsgenie does it within seconds); the outcome is at requests/{id}.
        alias = alias or str(uuid.uuid4())
        alert = next((a for a in self.alerts.values() if a.alias == alias and a.status == "open"), None)
        unknown = [r.get("name") for r in body.get("responders") or []
                   if r.get("type") == "team" and r.get("name") not in self.teams]
        if unknown:
            request_id = self._done("Create", False, f"Team [{unknown[0]}] does not exist", None, alias)
        elif alert is not None:
            alert.count += 1
            request_id = self._done("Create", True, "Alert already exists; count increased", alert, alias)
        else:
            alert = OgAlert(str(uuid.uuid4()), alias, message, body)
            self.alerts[alert.id] = alert
            request_id = self._done("Create", True, "Created alert", alert, alias)
        response = og({"result": "Request will be processed"}, 202)
        return _with_request_id(response, request_id)

    async def close_alert(self, request: web.Request) -> web.Response:
        if self._key(request) is None:
            return og({"message": "Could not authenticate"}, 401)
        ident = request.match_info["identifier"]
        kind = request.query.get("identifierType", "id")
        if kind not in ("id", "alias", "tiny"):
            return og({"message": "Invalid identifier type [" + kind + "]"}, 422)
        alert = next((a for a in self.alerts.values() if (a.alias if kind == "alias" else a.id) == ident
                      and a.status == "open"), None)
        if alert is None:
            request_id = self._done("Close", False, "Alert does not exist", None, ident if kind == "alias" else "")
        else:
            alert.status = "closed"
            alert.closes.append(await json_body(request) or {})
            request_id = self._done("Close", True, "Closed alert", alert, alert.alias)
        return _with_request_id(og({"result": "Request will be processed"}, 202), request_id)

    async def request_status(self, request: web.Request) -> web.Response:
        if self._key(request) is None:
            return og({"message": "Could not authenticate"}, 401)
        done = self.requests_done.get(request.match_info["id"])
        if done is None:
            return og({"message": "Request not found. It might not be processed, yet."}, 404)
        return og({"data": done})


def _with_request_id(response: web.Response, request_id: str) -> web.Response:
    """The 202 answer names the request whose outcome requests/{id} gives."""
    body = json.loads(response.text or "{}")
    body["requestId"] = request_id
    response.text = json.dumps(body)
    response.headers["X-Request-ID"] = request_id
    return response

