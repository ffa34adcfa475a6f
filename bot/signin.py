"""Signing in to the web view with a Mattermost account: the bot's OAuth 2.0 app, one-time grants, sessions.

Mattermost is the identity provider (api4/oauth.go, web/oauth.go; docs/web.md). The bot never holds a
password and never trusts a browser's word for who it is:
- An OAuth `state` is a random secret kept as a row (its SHA-256) and in a cookie of the browser that
  asked; the callback counts only when both match, once, within ten minutes. The code it carries is
  exchanged at Mattermost's token endpoint by the bot, with the app's secret.
- Where Mattermost's OAuth provider is off (or the bot may not register an app), `/playbook dashboard`
  gives the person a one-time link: a random secret bound to them, valid five minutes, spent by the POST
  of the page it opens (a preview fetching the address spends nothing). The slash command proved who they
  are (its trigger id, bot/proof.py).
- A session is a random secret in an HttpOnly cookie; its row is keyed by the secret's SHA-256. The
  person's OAuth tokens are encrypted at rest with a key derived from the bot's signing secret
  (`cryptography`'s Fernet: AES-128-CBC with HMAC-SHA256), refreshed before they run out, revoked at
  sign-out.

This module holds no aiohttp: bot/web.py serves the routes; features (the `dashboard` command) use it too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken

from bot.models import MattermostError
from storage import web as web_rows
from storage.models import OAuthClient, SignInGrant, WebSession

if TYPE_CHECKING:
    from bot.context import Context

log = logging.getLogger(__name__)

STATE_LIFETIME_MS = 10 * 60_000  # as long as Mattermost keeps a code (model.AuthCodeExpireTime = 600 s)
LINK_LIFETIME_MS = 5 * 60_000
REFRESH_MARGIN_MS = 24 * 3600_000  # refresh a person's token once it has less than a day left
APP_NAME = "Playbooks"


def secret() -> str:
    """A fresh random secret, URL-safe (256 bits)."""
    return secrets.token_urlsafe(32)


def key_of(value: str) -> str:
    """What a secret is stored as: its SHA-256, so the table never holds a usable cookie or link."""
    return hashlib.sha256(value.encode()).hexdigest()


class TokenBox:
    """Encrypts the tokens and the app secret kept in the database (Fernet, key from the signing secret)."""

    def __init__(self, signing_key: bytes) -> None:
        derived = hmac.new(signing_key, b"playbooks-for-mattermost/web-tokens/v1", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode() if text else ""

    def open(self, sealed: str) -> str:
        """The plain text; "" when it was empty or was sealed under another key (a rotated secret)."""
        if not sealed:
            return ""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return ""


@dataclass(frozen=True)
class OAuthApp:
    client_id: str
    client_secret: str
    source: str  # "configured" ([web] client_id) or "registered" (by the bot, kept in the database)


@dataclass
class SignIn:
    """How people sign in here, decided at start-up: with the OAuth `app`, or (None) one-time links only,
    for the `reason` given."""

    box: TokenBox
    callback_url: str
    app: OAuthApp | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.app is None:
            return f"sign-in with one-time links from /playbook dashboard ({self.reason})"
        return f"sign-in with Mattermost (OAuth app {self.app.client_id}, {self.app.source})"


async def prepare(ctx: Context) -> SignIn:
    """Choose the OAuth app: the configured one; else the one a bot process registered before (if
    Mattermost still has it and its callback is still ours); else register one where the bot may."""
    settings = ctx.settings.web
    box = TokenBox(ctx.settings.signing_key)
    callback = f"{ctx.public_url}/oauth/callback"
    sign_in = SignIn(box, callback)
    if settings.client_id:
        sign_in.app = OAuthApp(settings.client_id, settings.client_secret, "configured")
        return sign_in
    row = await ctx.db.run(web_rows.get_client, readonly=True)
    try:
        if row is not None and row.callback_url == callback and await ctx.gateway.oauth_app_exists(row.client_id):
            secret_text = box.open(row.client_secret)
            if secret_text:
                sign_in.app = OAuthApp(row.client_id, secret_text, "registered")
                return sign_in
        if row is not None:
            await ctx.db.run(web_rows.forget_client)
        if not settings.register:
            sign_in.reason = "[web] register = false and no client_id is configured"
            return sign_in
        client_id, client_secret = await ctx.gateway.register_oauth_app(
            name=APP_NAME, description="Runs, insights and reports of Playbooks for Mattermost.",
            homepage=f"{ctx.public_url}/runs", callback_url=callback, trusted=True)
    except MattermostError as err:
        sign_in.reason = _why_not(err)
        log.warning("web sign-in: no OAuth app status=%s error_id=%s; one-time links only", err.status,
                    err.error_id)
        return sign_in
    kept = await ctx.db.run(web_rows.save_client, OAuthClient(
        id=web_rows.CLIENT_ROW, client_id=client_id, client_secret=box.seal(client_secret), callback_url=callback,
        created_at=ctx.clock.now_ms()))
    if kept.client_id != client_id:
        log.info("web sign-in: another bot process registered the OAuth app first; using %s", kept.client_id)
    sign_in.app = OAuthApp(kept.client_id, box.open(kept.client_secret), "registered")
    log.info("web sign-in: OAuth app %s (%s)", sign_in.app.client_id, sign_in.app.source)
    return sign_in


def _why_not(err: MattermostError) -> str:
    if err.status == 501:
        return "Mattermost's OAuth 2.0 service provider is off (System Console > Integrations > " \
               "Integration Management > Enable OAuth 2.0 Service Provider)"
    if err.status == 403:
        return "the bot may not register an OAuth app (it needs manage_oauth, e.g. the system admin role); " \
               "or set [web] client_id and client_secret"
    return f"Mattermost answered {err.status} {err.error_id or err.message}"


async def new_link(ctx: Context, user_id: str, next_path: str = "/runs") -> str:
    """A one-time sign-in link for `user_id` (proven by the slash command that asks for it)."""
    value = secret()
    now = ctx.clock.now_ms()
    await ctx.db.run(web_rows.add_grant, SignInGrant(id=key_of(value), kind="link", user_id=user_id,
                                                      next_path=next_path, expires_at=now + LINK_LIFETIME_MS),
                     now)
    return f"{ctx.public_url}/signin/{value}"


async def refresh(ctx: Context, sign_in: SignIn, row: WebSession, now: int) -> tuple[str, str]:
    """Swap a session's tokens for fresh ones at Mattermost's token endpoint and keep them (encrypted):
    ("ok", the new access token); ("refused", "") when Mattermost said no (the grant is gone: the session
    is ended here; sign in again); ("unavailable", "") when it did not answer, failed (5xx) or asked to
    slow down (429): try again later, the session stays.

    Two refreshes of one session may run at once (a page and its event stream, two clicks, two bot
    processes). Mattermost rotates the refresh token, so the later one is refused: when the session's
    stored refresh token is no longer the one this refresh began with, the other refresh won and its
    tokens are used ("ok", the stored access token) instead of ending the session; and a success is stored
    only over the refresh token it replaced (storage.web.update_tokens `replacing`)."""
    app = sign_in.app
    refresh_token = sign_in.box.open(row.refresh_token)
    if app is None or not refresh_token:
        return "refused", ""
    try:
        tokens = await ctx.gateway.oauth_token({
            "grant_type": "refresh_token", "client_id": app.client_id, "client_secret": app.client_secret,
            "refresh_token": refresh_token, "redirect_uri": sign_in.callback_url})
    except MattermostError as err:
        log.warning("web session: token refresh failed status=%s error_id=%s user=%s", err.status,
                    err.error_id, row.user_id)
        if err.status == 0 or err.status >= 500 or err.status == 429:
            return "unavailable", ""
        kept = await ctx.db.run(web_rows.end_unless_refreshed, row.id, row.refresh_token, now)
        token = sign_in.box.open(kept.access_token) if kept is not None else ""
        if token:
            log.info("web session: another refresh of this session won; using its tokens user=%s", row.user_id)
            return "ok", token
        return "refused", ""
    await ctx.db.run(web_rows.update_tokens, row.id, sign_in.box.seal(tokens.access_token),
                     sign_in.box.seal(tokens.refresh_token), now + tokens.expires_in * 1000, row.refresh_token)
    return "ok", tokens.access_token


@dataclass(frozen=True)
class PersonToken:
    """A person's own Mattermost token, from their web session (`session_id`, the row's key)."""

    session_id: str
    user_id: str
    token: str = field(repr=False)


async def person_token(ctx: Context, user_id: str) -> tuple[PersonToken | None, bool]:
    """The token the person gave the bot by signing in to the web view with Mattermost: that of their newest
    live session holding one, refreshed first when it runs out within a day. (None, refused): no such
    session; `refused` when there was one but Mattermost refused to refresh its token (that session is then
    ended, as the web view does: sign in again). Signing out deletes the session and revokes the token."""
    sign_in = ctx.sign_in
    if sign_in is None:
        return None, False
    now = ctx.clock.now_ms()
    row = await ctx.db.run(web_rows.person_session, user_id, now, readonly=True)
    token = sign_in.box.open(row.access_token) if row is not None else ""
    if row is None or not token:
        return None, False
    if row.refresh_token and row.token_expires_at - now < REFRESH_MARGIN_MS:
        outcome, fresh = await refresh(ctx, sign_in, row, now)
        if outcome == "refused":
            await ctx.db.run(web_rows.end_session, row.id)
            return None, True
        token = fresh or token  # unavailable: the old one may still be good
    return PersonToken(row.id, user_id, token), False


async def renew_refused(ctx: Context, held: PersonToken) -> tuple[PersonToken | None, bool]:
    """Mattermost answered 401 to `held`: refresh it once. (the fresh token, False); (None, False) when that
    is refused too (the session is ended then) or there is nothing to refresh with; (None, True) with the
    session kept when Mattermost cannot answer now (5xx, no answer, 429). A session whose token another
    refresh already replaced answers with that one."""
    sign_in = ctx.sign_in
    now = ctx.clock.now_ms()
    row = await ctx.db.run(web_rows.get_session, held.session_id, now, readonly=True)
    if sign_in is None or row is None:
        return None, False
    stored = sign_in.box.open(row.access_token)
    if stored and stored != held.token:
        return PersonToken(row.id, held.user_id, stored), False
    outcome, fresh = await refresh(ctx, sign_in, row, now)
    if outcome == "refused":
        await ctx.db.run(web_rows.end_session, row.id)
        return None, False
    if outcome != "ok":
        return None, True
    return PersonToken(row.id, held.user_id, fresh), False


async def end_session(ctx: Context, held: PersonToken) -> None:
    """Mattermost refuses even a freshly refreshed token: forget it (the person signs in again)."""
    await ctx.db.run(web_rows.end_session, held.session_id)


def safe_next(path: str) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or an absolute URL)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or any(c < " " for c in path):
        return "/runs"
    return path[:2048]


__all__ = ["OAuthApp", "PersonToken", "SignIn", "TokenBox", "end_session", "key_of", "new_link", "person_token",
           "prepare", "refresh", "renew_refused", "safe_next", "secret"]
