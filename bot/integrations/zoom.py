"""Zoom REST API v2 with Server-to-Server OAuth (Zoom Meeting API OpenAPI, 2025-08; docs/integrations.md).

The access token comes from `POST <oauth_url>?grant_type=account_credentials&account_id=…` with basic auth
client_id:client_secret; it lives `expires_in` seconds (an hour) and has no refresh token, so it is cached
until a minute before it expires and fetched again then, or once more when Zoom calls it invalid (401,
code 124). Meetings: `POST /users/{host}/meetings`, a scheduled meeting (type 2) starting now that people
may join before the host (the host is usually a service account nobody signs in to).
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.integrations import CheckResult, IntegrationError, ZoomMeeting
from bot.integrations.http import DEFAULT_TIMEOUT_S, NOT_SENT, WRONG_SHAPE, Now, VendorHttp, generic_hint

SERVICE = "Zoom"
EXPIRY_MARGIN_S = 60.0  # fetch a new token this long before the old one expires
INVALID_TOKEN = 124
TOPIC_MAX = 200
AGENDA_MAX = 2000


def _message(data: Any) -> str:
    # API errors: {"code": 1001, "message": "User does not exist: x"}; OAuth: {"reason": "...", "error": "..."}
    if "message" in data:
        code = data.get("code")
        extra = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in data.get("errors") or []
                          if isinstance(e, dict))
        return (f"{data['message']}" + (f" (code {code})" if code is not None else "")
                + (f": {extra}" if extra else ""))
    if "reason" in data or "error" in data:
        return f"{data.get('reason') or data.get('error')}" + (f" ({data['error']})" if data.get("error") else "")
    return ""


def _hint(status: int, data: Any) -> str:
    code = data.get("code") if isinstance(data, dict) else None
    if status in (400, 401) and isinstance(data, dict) and data.get("error") in ("invalid_client", "invalid_request"):
        return ("Zoom refused the app's credentials: check account_id, client_id and client_secret in [zoom] "
                "(a Server-to-Server OAuth app, activated, in the Zoom App Marketplace)")
    if status == 401:
        return "Zoom refused the token: check the [zoom] app is activated and its credentials are current"
    if status == 404 or code == 1001:
        return "the meeting host is not a user of the Zoom account: set [zoom] host (or the action's host)"
    if status == 400 and code == 4711:
        return "the Zoom app lacks a scope: add meeting:write:admin (or meeting:write:meeting:admin)"
    if status == 403:
        return "the Zoom app lacks a scope: add meeting:write:admin and user:read:admin"
    if status == 429:
        return "Zoom rate limit reached (100 meetings per host per day, or per-second limits); tried again later"
    return generic_hint(SERVICE, "zoom", status, keys="account_id, client_id and client_secret",
                        not_found="")


class ZoomClient:
    def __init__(self, *, account_id: str, client_id: str, client_secret: str, host: str = "",
                 api_url: str = "https://api.zoom.us/v2", oauth_url: str = "https://zoom.us/oauth/token",
                 timeout_s: float = DEFAULT_TIMEOUT_S, now: Now = time.time) -> None:
        self.account_id = account_id
        self._basic = {"Authorization": aiohttp.encode_basic_auth(client_id, client_secret)}
        self.host = host
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url
        self._now = now
        self.http = VendorHttp(SERVICE, vendor_message=_message, hint=_hint, timeout_s=timeout_s, now=now)
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.tokens_fetched = 0  # for tests and logs

    async def close(self) -> None:
        await self.http.close()

    async def _access_token(self, *, stale: str = "") -> str:
        async with self._lock:  # parallel actions share one token request
            if self._token and self._token != stale and self._now() < self._expires_at:
                return self._token
            answer = await self.http.call("POST", self.oauth_url, headers=self._basic,
                                          form={"grant_type": "account_credentials", "account_id": self.account_id})
            data = answer.data if isinstance(answer.data, dict) else {}
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise IntegrationError(SERVICE, "the OAuth answer has no access_token", status=answer.status,
                                       hint="check [zoom] oauth_url (https://zoom.us/oauth/token)")
            try:
                lifetime = float(data.get("expires_in", 3600))
            except (TypeError, ValueError):
                lifetime = 3600.0
            self._token, self._expires_at = token, self._now() + max(0.0, lifetime - EXPIRY_MARGIN_S)
            self.tokens_fetched += 1
            return token

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            token = await self._access_token()
        except IntegrationError as err:
            err.sent = False  # no token, so the call itself was never made
            raise
        try:
            answer = await self.http.call(method, f"{self.api_url}{path}", json_body=body,
                                          headers={"Authorization": f"Bearer {token}"})
        except IntegrationError as err:
            if err.status != 401:
                raise
            token = await self._access_token(stale=token)  # revoked or expired early: one new token, once
            answer = await self.http.call(method, f"{self.api_url}{path}", json_body=body,
                                          headers={"Authorization": f"Bearer {token}"})
        return answer.data

    async def create_meeting(self, *, topic: str, agenda: str, host: str) -> ZoomMeeting:
        who = host.strip() or self.host
        if not who:
            raise IntegrationError(SERVICE, "no meeting host", status=NOT_SENT,
                                   hint="set [zoom] host (an email of a user of the Zoom account) or the action's host")
        start = datetime.fromtimestamp(self._now(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: dict[str, Any] = {
            "topic": (" ".join(topic.split()) or "Playbook run")[:TOPIC_MAX], "type": 2, "start_time": start,
            "duration": 60, "timezone": "UTC",
            "settings": {"join_before_host": True, "jbh_time": 0, "waiting_room": False},
        }
        if agenda.strip():
            body["agenda"] = agenda[:AGENDA_MAX]
        data = await self._call("POST", f"/users/{quote(who, safe='@')}/meetings", body)
        if not isinstance(data, dict) or not data.get("id") or not isinstance(data.get("join_url"), str):
            raise IntegrationError(SERVICE, f"create meeting: the answer has no id and join_url ({str(data)[:120]})",
                                   status=WRONG_SHAPE,
                                   hint="check [zoom] api_url (https://api.zoom.us/v2)")
        return ZoomMeeting(id=str(data["id"]), join_url=data["join_url"])

    async def check(self) -> CheckResult:
        try:
            await self._access_token()
            if not self.host:
                return CheckResult(SERVICE, True, f"account {self.account_id}: token granted; no [zoom] host set, "
                                                  "so every zoom action must name its host")
            user = await self._call("GET", f"/users/{quote(self.host, safe='@')}")
        except IntegrationError as err:
            return CheckResult(SERVICE, False, err.message + (f"; {err.hint}" if err.hint else ""))
        user = user if isinstance(user, dict) else {}
        name = " ".join(filter(None, [user.get("first_name"), user.get("last_name")]))
        return CheckResult(SERVICE, True, f"account {self.account_id}: signed in; meetings are hosted by "
                                          f"{user.get('email') or self.host}" + (f" ({name})" if name else ""))
