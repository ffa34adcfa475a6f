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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken

from bot.models import MattermostError
from storage import web as web_rows
from storage.models import OAuthClient, SignInGrant

if TYPE_CHECKING:
    from bot.context import Context

log = logging.getLogger(__name__)

STATE_LIFETIME_MS = 10 * 60_000  # as long as Mattermost keeps a code (model.AuthCodeExpireTime = 600 s)
LINK_LIFETIME_MS = 5 * 60_000
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


def safe_next(path: str) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or an absolute URL)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or any(c < " " for c in path):
        return "/runs"
    return path[:2048]


__all__ = ["OAuthApp", "SignIn", "TokenBox", "key_of", "new_link", "prepare", "safe_next", "secret"]
