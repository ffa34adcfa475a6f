"""Opsgenie REST API v2 (opsgenie/opsgenie-oas `swagger.yaml`, 2021; docs.opsgenie.com; docs/integrations.md).

`Authorization: GenieKey <api_key>`. Who is on call: `GET /v2/schedules/{id or name}/on-calls?flat=true`
(`scheduleIdentifierType=name` when the schedule is not an id). Alerts: `POST /v2/alerts` and
`POST /v2/alerts/{alias}/close?identifierType=alias`; both answer 202 and are processed asynchronously
(the outcome is at `GET /v2/alerts/requests/{requestId}`); `alias` is Opsgenie's dedup key.

Atlassian is retiring Opsgenie: sales ended 2025-06-04 and support ends 2027-04-05, when this REST API stops
working. Move on-call and alerting to Jira Service Management or Compass before then.
"""
from __future__ import annotations

import re
import time
from typing import Any, Mapping
from urllib.parse import quote

from bot.integrations import CheckResult, IntegrationError
from bot.integrations.http import (
    DEFAULT_TIMEOUT_S,
    NOT_SENT,
    WRONG_SHAPE,
    Now,
    VendorHttp,
    generic_hint,
    parse_retry_after,
)

SERVICE = "Opsgenie"
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
SOURCE = "Playbooks for Mattermost"
RETIREMENT = "Opsgenie's REST API stops working when Atlassian turns Opsgenie off (support ends 2027-04-05)"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _message(data: Any) -> str:
    # ErrorResponse {message, code?, took, requestId}; validation errors add "errors": {"field": "msg"}
    text = str(data.get("message", ""))
    errors = data.get("errors")
    if isinstance(errors, dict) and errors:
        text += ": " + "; ".join(f"{k}: {v}" for k, v in errors.items())
    if data.get("requestId"):
        text += f" (request {data['requestId']})"
    return text


def _hint(status: int, data: Any) -> str:
    if status == 401:
        return "Opsgenie refused the key: check api_key in [opsgenie] and [opsgenie] api_url (US or EU)"
    if status == 403:
        return ("the Opsgenie key may not do this: on-call lookups need an API key with configuration access, "
                "alerts an API integration key with create and update access")
    if status == 404:
        return "not found: check the schedule's id or name in the playbook"
    if status == 422:
        return "Opsgenie refused the alert: check the action's responders (team names) and priority"
    return generic_hint(SERVICE, "opsgenie", status, keys="api_key", not_found="")


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    # Opsgenie documents no Retry-After; its 429 names the throttling window (X-RateLimit-Period-In-Sec).
    return parse_retry_after(headers.get("Retry-After"), now) or \
        parse_retry_after(headers.get("X-RateLimit-Period-In-Sec"), now)


class OpsgenieClient:
    def __init__(self, *, api_key: str, api_url: str = "https://api.opsgenie.com",
                 timeout_s: float = DEFAULT_TIMEOUT_S, now: Now = time.time) -> None:
        self.api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"GenieKey {api_key}", "Accept": "application/json"}
        self.http = VendorHttp(SERVICE, vendor_message=_message, hint=_hint, retry_after=_retry_after,
                               timeout_s=timeout_s, now=now)

    async def close(self) -> None:
        await self.http.close()

    async def _call(self, method: str, path: str, body: Any = None,
                    params: list[tuple[str, str]] | None = None) -> Any:
        answer = await self.http.call(method, f"{self.api_url}{path}", headers=self._headers, json_body=body,
                                      params=params)
        return answer.data

    async def oncall_emails(self, *, schedule: str) -> list[str]:
        if not schedule.strip():
            raise IntegrationError(SERVICE, "no schedule", status=NOT_SENT,
                                   hint="give the action a schedule (its id or name)")
        params = [("flat", "true")]
        if not _UUID.fullmatch(schedule.strip()):
            params.append(("scheduleIdentifierType", "name"))
        data = await self._call("GET", f"/v2/schedules/{quote(schedule.strip(), safe='')}/on-calls",
                                params=params)
        recipients = ((data or {}).get("data") or {}).get("onCallRecipients") if isinstance(data, dict) else None
        if not isinstance(recipients, list):
            raise IntegrationError(SERVICE, "on-calls: the answer has no data.onCallRecipients", status=WRONG_SHAPE,
                                   hint="check [opsgenie] api_url (https://api.opsgenie.com)")
        emails: list[str] = []
        for r in recipients:
            if isinstance(r, str) and "@" in r and r.lower() not in (e.lower() for e in emails):
                emails.append(r)
        return emails

    async def create_alert(self, *, message: str, alias: str, description: str, priority: str,
                           responders: list[str]) -> None:
        if priority and priority not in PRIORITIES:
            raise IntegrationError(SERVICE, f'priority "{priority}" is not one of P1..P5', status=NOT_SENT,
                                   hint="set the action's priority to P1, P2, P3, P4 or P5")
        body: dict[str, Any] = {"message": (" ".join(message.split()) or "Playbook run")[:130],
                                "alias": alias[:512], "source": SOURCE}
        if description.strip():
            body["description"] = description[:15000]
        if priority:
            body["priority"] = priority
        if responders:
            body["responders"] = [{"type": "team", "name": name} for name in responders]
        await self._call("POST", "/v2/alerts", body)

    async def close_alert(self, *, alias: str) -> None:
        await self._call("POST", f"/v2/alerts/{quote(alias[:512], safe='')}/close", {"source": SOURCE},
                         params=[("identifierType", "alias")])

    async def check(self) -> CheckResult:
        try:
            data = await self._call("GET", "/v2/account")
        except IntegrationError as err:
            if err.status == 403:  # an API integration key, the only kind that creates alerts: paging works
                return CheckResult(SERVICE, True, "the key is accepted but has no configuration access: alerts "
                                   "may work, on-call lookups will not; " + RETIREMENT)
            return CheckResult(SERVICE, False, err.message + (f"; {err.hint}" if err.hint else ""))
        name = ((data or {}).get("data") or {}).get("name", "?")
        return CheckResult(SERVICE, True, f"signed in to account {name}; note: {RETIREMENT}")
