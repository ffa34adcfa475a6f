"""Zoom stand-in: Server-to-Server OAuth (`POST /oauth/token`, grant_type=account_credentials) and the
Meeting API v2 (`POST /v2/users/{userId}/meetings`, `GET /v2/users/{userId}`) as in Zoom's Meeting API
OpenAPI (2025-08) and developers.zoom.us/docs/api/errors; docs/standins.md.

Tokens live `token_lifetime_s` on the stand-in's own clock (`now`, injectable), several may coexist, and an
unknown or expired token gets 401 `{"code": 124, "message": "Invalid access token."}`.
"""
from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from standins.common import Fault, StandIn, json_body, json_response

DAILY_CREATES_PER_HOST = 100


def zoom_error(code: int, message: str, status: int, errors: list[dict[str, str]] | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status, headers)


class ZoomStandIn(StandIn):
    name = "Zoom"

    def __init__(self, *, account_id: str = "acct-1", client_id: str = "zoom-client",
                 client_secret: str = "zoom-secret", users: list[str] | None = None,
                 token_lifetime_s: int = 3599, now: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.account_id, self.client_id, self.client_secret = account_id, client_id, client_secret
        self.users = {email: {"id": secrets.token_hex(11), "email": email, "first_name": email.split("@")[0].title(),
                              "last_name": "", "type": 2, "status": "active"}
                      for email in (users or ["host@example.com"])}
        self.token_lifetime_s = token_lifetime_s
        self.now = now
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.tokens_issued = 0
        self.meetings: dict[int, dict[str, Any]] = {}
        self._creates: dict[tuple[str, str], int] = {}  # (host, UTC day) -> meetings created

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/oauth/token", self.token)
        app.router.add_post("/v2/users/{user}/meetings", self.create_meeting)
        app.router.add_get("/v2/users/{user}", self.get_user)
        app.router.add_get("/v2/meetings/{id}", self.get_meeting)

    def fault_reply(self, fault: Fault) -> web.Response:
        if fault.body is not None:
            return json_response(fault.body, fault.status)
        if fault.status == 429:
            return zoom_error(429, "You have reached the maximum per-second rate limit for this API. Try again "
                              "later.", 429, headers={"X-RateLimit-Category": "Medium", "X-RateLimit-Type": "QPS",
                                                      "X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0",
                                                      "Retry-After": fault.retry_after})
        if fault.status == 401:
            return zoom_error(124, "Invalid access token.", 401)
        if fault.status == 404:
            return zoom_error(1001, "User does not exist: someone@example.com.", 404)
        if fault.status == 403:
            return zoom_error(4711, "Invalid access token, does not contain scopes:[meeting:write:admin].", 403)
        return zoom_error(fault.status, "Internal Error.", fault.status)

    async def token(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form: dict[str, Any] = dict(request.query)
        if request.content_type == "application/x-www-form-urlencoded":
            form.update((await request.post()).items())
        if request.headers.get("Authorization") != f"Basic {expected}":
            return json_response({"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, 400)
        if form.get("grant_type") != "account_credentials":
            return json_response({"reason": "Unsupported grant type", "error": "unsupported_grant_type"}, 400)
        if form.get("account_id") != self.account_id:
            return json_response({"reason": "Invalid request : Account ID is invalid.", "error": "invalid_request"},
                                 400)
        token = "zs2s." + secrets.token_urlsafe(24)
        self.tokens[token] = self.now() + self.token_lifetime_s
        self.tokens_issued += 1
        return json_response({"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime_s,
                              "scope": "meeting:write:admin user:read:admin", "api_url": self.url or ""})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        return bool(token) and self.tokens.get(token, 0.0) > self.now()

    def _user(self, ident: str) -> dict[str, Any] | None:
        if ident == "me":  # under S2S Zoom's behaviour is unverified; the stand-in gives the account owner
            return next(iter(self.users.values()), None)
        return self.users.get(ident) or next((u for u in self.users.values() if u["id"] == ident), None)

    async def get_user(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return zoom_error(124, "Invalid access token.", 401)
        user = self._user(request.match_info["user"])
        if user is None:
            return zoom_error(1001, f"User does not exist: {request.match_info['user']}.", 404)
        return json_response({**user, "account_id": self.account_id, "timezone": "UTC"})

    async def create_meeting(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return zoom_error(124, "Invalid access token.", 401)
        ident = request.match_info["user"]
        user = self._user(ident)
        if user is None:
            return zoom_error(1001, f"User does not exist: {ident}.", 404)
        body = await json_body(request)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            return zoom_error(300, "Request Body should be a valid JSON object.", 400)
        problems = []
        topic = body.get("topic", "")
        if not isinstance(topic, str) or len(topic) > 200:
            problems.append({"field": "topic", "message": "Topic is too long (at most 200 characters)."})
        if body.get("type", 2) not in (1, 2, 3, 8, 10):
            problems.append({"field": "type", "message": "Invalid meeting type."})
        agenda = body.get("agenda", "")
        if not isinstance(agenda, str) or len(agenda) > 2000:
            problems.append({"field": "agenda", "message": "Agenda is too long (at most 2000 characters)."})
        if problems:
            return zoom_error(300, "Validation Failed.", 400, problems)
        day = datetime.fromtimestamp(self.now(), tz=timezone.utc).strftime("%Y-%m-%d")
        count = self._creates.get((user["email"], day), 0)
        if count >= DAILY_CREATES_PER_HOST:
            tomorrow = (datetime.fromtimestamp(self.now(), tz=timezone.utc) + timedelta(days=1)).strftime(
                "%Y-%m-%dT00:00:00Z")
            return zoom_error(429, f"You have exceeded the daily rate limit ({DAILY_CREATES_PER_HOST}) of Meeting "
                              "Create/Update API requests permitted for this particular user. You may resume these "
                              "requests at GMT 00:00:00.", 429,
                              headers={"X-RateLimit-Type": "Daily-limit", "X-RateLimit-Limit": "100",
                                       "X-RateLimit-Remaining": "0", "Retry-After": tomorrow})
        self._creates[(user["email"], day)] = count + 1
        meeting_id = 80000000000 + len(self.meetings) + 1
        password = secrets.token_hex(3)
        base = self.url or f"{request.scheme}://{request.host}"
        meeting = {
            "uuid": base64.b64encode(secrets.token_bytes(16)).decode(), "id": meeting_id, "host_id": user["id"],
            "host_email": user["email"], "topic": topic, "type": body.get("type", 2),
            "start_time": body.get("start_time") or datetime.fromtimestamp(self.now(), tz=timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "duration": body.get("duration", 60), "timezone": body.get("timezone", "UTC"), "agenda": agenda,
            "created_at": datetime.fromtimestamp(self.now(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "password": password, "join_url": f"{base}/j/{meeting_id}?pwd={password}",
            "start_url": f"{base}/s/{meeting_id}?zak={secrets.token_urlsafe(12)}",
            "settings": {"join_before_host": False, "waiting_room": True, **(body.get("settings") or {})},
        }
        self.meetings[meeting_id] = meeting
        return json_response(meeting, 201)

    async def get_meeting(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return zoom_error(124, "Invalid access token.", 401)
        try:
            meeting = self.meetings.get(int(request.match_info["id"]))
        except ValueError:
            meeting = None
        if meeting is None:
            return zoom_error(3001, "Meeting does not exist: " + request.match_info["id"] + ".", 404)
        return json_response(meeting)
