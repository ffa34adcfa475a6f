"""PagerDuty: the REST API v2 for who is on call, Events API v2 for paging (PagerDuty/api-schema
`reference/REST/openapiv3.json` and `reference/events-v2/openapiv3.json`; docs/integrations.md).

REST: `Authorization: Token token=<api_token>`, `Accept: application/vnd.pagerduty+json;version=2`;
`GET /oncalls?escalation_policy_ids[]=…&schedule_ids[]=…&include[]=users&earliest=true`, paged with
limit/offset while `more`. Events: `POST <events_url>` with the integration (routing) key in the body and
`dedup_key` per run, so a repeat trigger updates the same incident and a resolve closes it.

Why not the official `pagerduty` package (7.2.0): it is synchronous (httpx), so every call would need a
thread, and it retries 429/5xx itself with sleeps, hiding Retry-After from the action engine, which owns
retries and backoff for every action alike; see docs/integrations.md.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from bot.integrations import CheckResult, IntegrationError
from bot.integrations.http import DEFAULT_TIMEOUT_S, NOT_SENT, Now, VendorHttp, generic_hint, parse_retry_after

SERVICE = "PagerDuty"
PAGE = 100  # the REST API's largest page
MAX_PAGES = 50
SEVERITIES = ("critical", "error", "warning", "info")
CLIENT = "Playbooks for Mattermost"


def _message(data: Any) -> str:
    error = data.get("error")
    if isinstance(error, dict):  # REST: {"error": {"message", "code", "errors": [...]}}
        details = "; ".join(str(e) for e in error.get("errors") or [])
        code = error.get("code")
        return f"{error.get('message', '')}" + (f" (code {code})" if code is not None else "") + \
            (f": {details}" if details else "")
    if "message" in data or "errors" in data:  # Events v2: {"status", "message", "errors": [...]}
        details = "; ".join(str(e) for e in data.get("errors") or [])
        return f"{data.get('message', '')}" + (f": {details}" if details else "")
    return ""


def _hint(status: int, data: Any) -> str:
    if status == 401:
        return "PagerDuty refused the key: check api_token in [pagerduty] (a REST API key, not an integration key)"
    if status == 403:
        return "the PagerDuty API key may not read this: use a key with read access to schedules and on-calls"
    if status == 404:
        return "not found: check the escalation policy or schedule ids in the playbook"
    if status == 400 and isinstance(data, dict) and "status" in data:
        return "PagerDuty Events refused the event: check the routing key in [pagerduty] routing_keys and the " \
               "action's severity and summary"
    return generic_hint(SERVICE, "pagerduty", status, keys="api_token", not_found="")


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    # REST sends ratelimit-reset (seconds); Events and proxies Retry-After.
    return parse_retry_after(headers.get("ratelimit-reset"), now) or parse_retry_after(headers.get("Retry-After"),
                                                                                         now)


class PagerDutyClient:
    def __init__(self, *, api_token: str = "", api_url: str = "https://api.pagerduty.com",
                 events_url: str = "https://events.pagerduty.com/v2/enqueue",
                 routing_keys: Mapping[str, str] | None = None, from_email: str = "",
                 timeout_s: float = DEFAULT_TIMEOUT_S, now: Now = time.time) -> None:
        self.api_token = api_token
        self.api_url = api_url.rstrip("/")
        self.events_url = events_url
        self.routing_keys = dict(routing_keys or {})
        self.from_email = from_email
        self.http = VendorHttp(SERVICE, vendor_message=_message, hint=_hint, retry_after=_retry_after,
                               timeout_s=timeout_s, now=now)

    async def close(self) -> None:
        await self.http.close()

    def _rest_headers(self) -> dict[str, str]:
        if not self.api_token:
            raise IntegrationError(SERVICE, "no REST API key", status=NOT_SENT, hint="set [pagerduty] api_token (or "
                                   "BOT_PAGERDUTY_API_TOKEN) to look up who is on call")
        headers = {"Authorization": f"Token token={self.api_token}",
                   "Accept": "application/vnd.pagerduty+json;version=2"}
        if self.from_email:
            headers["From"] = self.from_email
        return headers

    async def oncall_emails(self, *, escalation_policy_ids: list[str], schedule_ids: list[str]) -> list[str]:
        if not escalation_policy_ids and not schedule_ids:
            raise IntegrationError(SERVICE, "no escalation policy or schedule to look up", status=NOT_SENT,
                                   hint="give the action escalation_policy and/or schedule (PagerDuty ids)")
        headers = self._rest_headers()
        found: list[tuple[int, int, str]] = []
        offset = 0
        for _ in range(MAX_PAGES):
            params = [("escalation_policy_ids[]", p) for p in escalation_policy_ids]
            params += [("schedule_ids[]", s) for s in schedule_ids]
            params += [("include[]", "users"), ("earliest", "true"), ("limit", str(PAGE)), ("offset", str(offset))]
            answer = await self.http.call("GET", f"{self.api_url}/oncalls", headers=headers, params=params)
            data = answer.data if isinstance(answer.data, dict) else {}
            oncalls = data.get("oncalls")
            if not isinstance(oncalls, list):
                raise IntegrationError(SERVICE, "on-calls: the answer has no oncalls list", status=answer.status,
                                       hint="check [pagerduty] api_url (https://api.pagerduty.com)")
            for entry in oncalls:
                user = entry.get("user") if isinstance(entry, dict) else None
                email = user.get("email") if isinstance(user, dict) else None
                if isinstance(email, str) and email:
                    level = entry.get("escalation_level")
                    found.append((level if isinstance(level, int) else 99, len(found), email))
            if not data.get("more") or not oncalls:
                break
            offset += len(oncalls)
        emails: list[str] = []
        for _, _, email in sorted(found):  # level 1 first: "the first one" is who is paged first
            if email.lower() not in (e.lower() for e in emails):
                emails.append(email)
        return emails

    def _routing_key(self, routing: str) -> str:
        name = routing or "default"
        key = self.routing_keys.get(name)
        if not key:
            known = ", ".join(sorted(self.routing_keys)) or "none configured"
            raise IntegrationError(SERVICE, f'no routing key named "{name}" (known: {known})', status=NOT_SENT,
                                   hint=f'add it to bot.toml: [pagerduty.routing_keys] {name} = "<integration '
                                        'key of an Events API v2 integration>"')
        return key

    async def _event(self, body: dict[str, Any]) -> None:
        answer = await self.http.call("POST", self.events_url, json_body=body)
        data = answer.data if isinstance(answer.data, dict) else {}
        if data.get("status") not in (None, "success"):
            raise IntegrationError(SERVICE, f"event not accepted: {data.get('message', data)}", status=answer.status)

    async def trigger(self, *, routing: str, dedup_key: str, summary: str, source: str, severity: str,
                      link: str) -> None:
        if severity not in SEVERITIES:
            raise IntegrationError(SERVICE, f'severity "{severity}" is not one of {", ".join(SEVERITIES)}',
                                   status=NOT_SENT,
                                   hint="set the action's severity to critical, error, warning or info")
        body: dict[str, Any] = {
            "routing_key": self._routing_key(routing), "event_action": "trigger", "dedup_key": dedup_key[:255],
            "payload": {"summary": (" ".join(summary.split()) or "Playbook run")[:1024],
                        "source": source or CLIENT, "severity": severity},
            "client": CLIENT,
        }
        if link:
            body["client_url"] = link
            body["links"] = [{"href": link, "text": "Playbook run"}]
        await self._event(body)

    async def resolve(self, *, routing: str, dedup_key: str) -> None:
        await self._event({"routing_key": self._routing_key(routing), "event_action": "resolve",
                           "dedup_key": dedup_key[:255]})

    async def check(self) -> CheckResult:
        routes = f"; routing keys: {', '.join(sorted(self.routing_keys))} (Events v2 has no sign-in to test)" \
            if self.routing_keys else "; no routing keys (paging is off)"
        if not self.api_token:
            return CheckResult(SERVICE, True, "no api_token (on-call lookups are off)" + routes)
        try:
            headers = self._rest_headers()
            try:
                me = await self.http.call("GET", f"{self.api_url}/users/me", headers=headers)
                user = me.data.get("user") if isinstance(me.data, dict) else None
                user = user if isinstance(user, dict) else {}
                who = f"signed in as {user.get('email') or user.get('name') or user.get('id') or 'a user'}"
            except IntegrationError as err:
                if err.status != 400:  # 400: an account-level key has no user; it may still read on-calls
                    raise
                abilities = await self.http.call("GET", f"{self.api_url}/abilities", headers=headers)
                count = len(abilities.data.get("abilities") or []) if isinstance(abilities.data, dict) else 0
                who = f"signed in with an account-level API key ({count} abilities)"
        except IntegrationError as err:
            return CheckResult(SERVICE, False, err.message + (f"; {err.hint}" if err.hint else ""))
        return CheckResult(SERVICE, True, who + routes)
