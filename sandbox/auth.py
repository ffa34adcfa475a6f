"""Who is calling: the real server's token lookup order (ParseAuthTokenFromRequest)."""
from __future__ import annotations

from aiohttp import web

from sandbox.errors import AppError, session_expired
from sandbox.keys import STATE
from sandbox.state import State, User


def token_from_request(request: web.Request) -> str | None:
    cookie = request.cookies.get("MMAUTHTOKEN")
    if cookie:
        # A cookie on a non-GET request without X-Requested-With is treated as CSRF (401).
        if request.method != "GET" and request.headers.get("X-Requested-With") != "XMLHttpRequest":
            return None
        return cookie
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    if "access_token" in request.query:
        # Only OAuth sessions may use the query parameter; personal and bot tokens are refused
        # (web/handlers.go ServeHTTP: `!session.IsOAuth && tokenLocation == TokenLocationQueryString`).
        token = request.query["access_token"]
        record = request.app[STATE].tokens.get(token)
        if record is not None and record.is_oauth:
            return token
        raise AppError("api.context.token_provided.app_error", 401)
    return None


def user_for_token(state: State, token: str | None) -> User | None:
    if not token:
        return None
    record = state.tokens.get(token)
    if record is None or not record.is_active:
        return None
    # model.Session.IsExpired: `ExpiresAt > 0 && GetMillis() > ExpiresAt` (app/session.go GetSession
    # answers 401 for it like for an unknown token).
    if record.expires_at and state.now_ms() > record.expires_at:
        return None
    user = state.users.get(record.user_id)
    if user is None or user.delete_at:
        return None
    return user


def optional_user(request: web.Request) -> User | None:
    state: State = request.app[STATE]
    return user_for_token(state, token_from_request(request))


def require_user(request: web.Request) -> User:
    """For APISessionRequired routes: 401 session_expired without a valid token."""
    user = optional_user(request)
    if user is None:
        raise session_expired()
    return user
