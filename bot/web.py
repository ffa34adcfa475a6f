"""The web view's HTTP side: sign-in routes, sessions, CSRF, and every page a feature registers.

- `GET /login` sends the browser to Mattermost's `/oauth/authorize` (or explains the one-time links
  where there is no OAuth app); `GET /oauth/callback` checks the state against its row and this
  browser's cookie, exchanges the code, and starts a session; `GET /signin/{secret}` spends a one-time
  link; `POST /logout` ends the session and revokes the person's Mattermost tokens.
- A page (`Router.page`) runs only for a signed-in person: a GET without a session goes to /login and
  comes back; a POST must carry the session's CSRF token and come from this site (Origin or
  Sec-Fetch-Site), or it is refused with 403 and nothing changes.
- Every page is sent with a Content-Security-Policy that allows this site's own scripts and styles only.
Handlers never see aiohttp: they get a `WebRequest` and return `Page`, `Redirect`, `Download` or
`EventStream` (bot/router.py).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from aiohttp import BodyPartReader, web

from bot import signin
from bot.context import Context
from bot.domain.permissions import Viewer
from bot.models import MattermostError, MMUser
from bot.router import (
    Dispatcher,
    Download,
    EventStream,
    Page,
    Redirect,
    UploadedFile,
    UserError,
    WebHandler,
    WebReply,
    WebRequest,
)
from storage import web as web_rows
from storage.db import StorageError
from storage.models import SignInGrant, WebSession

log = logging.getLogger(__name__)

SESSION_COOKIE = "pb_session"
STATE_COOKIE = "pb_oauth_state"
STATIC = Path(__file__).resolve().parent / "static"
MAX_FORM = 64 * 1024
MAX_UPLOAD = 1024 * 1024  # a page registered with upload=True: its form with one file
STREAM_WATCH_S = 0.5  # how often an event stream with nothing to send checks that its browser is still there
_PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# A report is one self-contained file (inline CSS and SVG): its styles are inline, nothing else may load.
_DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


class Viewers:
    """Who a signed-in person is and which teams they are in, asked of Mattermost at most once a minute."""

    def __init__(self, ctx: Context, ttl_s: float = 60.0) -> None:
        self.ctx = ctx
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, MMUser, frozenset[str]]] = {}

    async def get(self, user_id: str) -> tuple[MMUser, frozenset[str]] | None:
        hit = self._cache.get(user_id)
        if hit and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1], hit[2]
        try:
            user = await self.ctx.gateway.get_user(user_id)
            teams = frozenset(await self.ctx.gateway.user_team_ids(user_id))
        except MattermostError as err:
            if err.status == 404:
                return None
            raise
        if user.delete_at:
            return None  # deactivated in Mattermost: signed out here too
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[user_id] = (time.monotonic(), user, teams)
        return user, teams


class WebServer:
    def __init__(self, ctx: Context, dispatcher: Dispatcher) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.viewers = Viewers(ctx)
        self._starting = signin.SignIn(signin.TokenBox(ctx.settings.signing_key), "", reason="starting")
        self._closing = False  # the server is shutting down: open event streams end

    # The public URL is known once the server is bound, and the OAuth app is chosen after that (app.py).
    @property
    def sign_in(self) -> signin.SignIn:
        return self.ctx.sign_in or self._starting

    @property
    def secure(self) -> bool:
        return urlsplit(self.ctx.public_url).scheme == "https"

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return _origin_of(self.ctx.public_url)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/login", self.login)
        app.router.add_get("/oauth/callback", self.callback)
        app.router.add_get("/signin/{secret}", self.link_page)
        app.router.add_post("/signin/{secret}", self.link)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/static/{name}", self.static)
        for (method, path), handler in sorted(self.dispatcher.router.pages.items()):
            upload = (method, path) in self.dispatcher.router.uploads
            app.router.add_route(method, path, self._page(handler, upload=upload))
        app.on_shutdown.append(self._shutting_down)

    async def _shutting_down(self, app: web.Application) -> None:
        # Before aiohttp waits for open requests: a browser left on a live page must not hold up a stop.
        self._closing = True

    # -- signing in and out ------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.StreamResponse:
        next_path = signin.safe_next(request.query.get("next", "/runs"))
        app = self.sign_in.app
        if app is None:
            return self._html(self.ctx.render_html("web/signin_links.html.j2", reason=self.sign_in.reason), 200)
        state = signin.secret()
        now = self.ctx.clock.now_ms()
        await self.ctx.db.run(web_rows.add_grant, SignInGrant(
            id=signin.key_of(state), kind="oauth", next_path=next_path,
            expires_at=now + signin.STATE_LIFETIME_MS), now)
        query = urlencode({"response_type": "code", "client_id": app.client_id,
                           "redirect_uri": self.sign_in.callback_url, "state": state})
        response = _redirect(f"{self.ctx.mattermost_url}/oauth/authorize?{query}", 302)
        # Lax: the browser sends it back on Mattermost's top-level redirect to the callback, and on
        # nothing another site embeds or posts.
        response.set_cookie(STATE_COOKIE, state, max_age=signin.STATE_LIFETIME_MS // 1000, httponly=True,
                            samesite="Lax", secure=self.secure, path="/oauth/callback")
        return response

    async def callback(self, request: web.Request) -> web.StreamResponse:
        state = request.query.get("state", "")
        cookie = request.cookies.get(STATE_COOKIE, "")
        now = self.ctx.clock.now_ms()
        # The state must be the one this browser was sent off with (the cookie), and unspent (the row).
        if not state or not cookie or not hmac.compare_digest(state, cookie):
            log.warning("web sign-in refused: the state is not this browser's remote=%s", request.remote)
            return self._error(400, "web/errors/bad_state.html.j2")
        grant = await self.ctx.db.run(web_rows.spend_grant, signin.key_of(state), "oauth", now)
        if grant is None:
            log.warning("web sign-in refused: unknown, spent or expired state remote=%s", request.remote)
            return self._error(400, "web/errors/bad_state.html.j2")
        if request.query.get("error"):
            return self._error(403, "web/errors/declined.html.j2")
        app = self.sign_in.app
        code = request.query.get("code", "")
        if app is None or not code:
            return self._error(400, "web/errors/bad_state.html.j2")
        try:
            tokens = await self.ctx.gateway.oauth_token({
                "grant_type": "authorization_code", "client_id": app.client_id,
                "client_secret": app.client_secret, "code": code, "redirect_uri": self.sign_in.callback_url})
            user, _teams = await self.ctx.gateway.whoami(tokens.access_token)
        except MattermostError as err:
            log.warning("web sign-in: Mattermost refused the code status=%s error_id=%s", err.status, err.error_id)
            return self._error(502 if err.status in (0,) or err.status >= 500 else 400,
                               "web/errors/exchange_failed.html.j2", error_id=err.error_id or err.message)
        response = await self._start_session(user.id, grant.next_path, access=tokens.access_token,
                                             refresh=tokens.refresh_token,
                                             token_expires_at=now + tokens.expires_in * 1000)
        response.del_cookie(STATE_COOKIE, path="/oauth/callback")
        return response

    async def link_page(self, request: web.Request) -> web.StreamResponse:
        """A one-time link opened: a page with a button. Only the button's POST spends the link, so a link
        preview or a mail scanner that fetches the address cannot use it up (nor sign itself in)."""
        grant = await self.ctx.db.run(web_rows.peek_grant, signin.key_of(request.match_info["secret"]), "link",
                                      self.ctx.clock.now_ms(), readonly=True)
        if grant is None:
            return self._error(400, "web/errors/bad_link.html.j2")
        user = await self.ctx.users.get(grant.user_id)
        return self._html(self.ctx.render_html("web/signin_confirm.html.j2",
                                               username=user.username if user else ""), 200)

    async def link(self, request: web.Request) -> web.StreamResponse:
        # No session yet, so no CSRF token: the post must come from this site (a page elsewhere must not
        # sign a browser in as whoever's link it holds).
        if not self._same_site(request):
            return self._error(403, "web/errors/csrf.html.j2")
        now = self.ctx.clock.now_ms()
        grant = await self.ctx.db.run(web_rows.spend_grant, signin.key_of(request.match_info["secret"]), "link",
                                      now)
        if grant is None:
            return self._error(400, "web/errors/bad_link.html.j2")
        return await self._start_session(grant.user_id, grant.next_path)

    async def _start_session(self, user_id: str, next_path: str, *, access: str = "", refresh: str = "",
                             token_expires_at: int = 0) -> web.StreamResponse:
        value = signin.secret()
        now = self.ctx.clock.now_ms()
        box = self.sign_in.box
        row = WebSession(id=signin.key_of(value), user_id=user_id, csrf=signin.secret(), created_at=now,
                         expires_at=now + self.ctx.settings.web.session_hours * 3600_000,
                         access_token=box.seal(access), refresh_token=box.seal(refresh),
                         token_expires_at=token_expires_at)
        await self.ctx.db.run(web_rows.add_session, row)
        log.info("web sign-in user=%s with=%s", user_id, "oauth" if access else "link")
        response = _redirect(signin.safe_next(next_path), 303)
        response.set_cookie(SESSION_COOKIE, value, max_age=self.ctx.settings.web.session_hours * 3600,
                            httponly=True, samesite="Lax", secure=self.secure, path="/")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        key = self._session_key(request)
        form = await _small_form(request)
        if key is None or form is None:
            return _redirect("/login", 303)
        row = await self.ctx.db.run(web_rows.get_session, key, self.ctx.clock.now_ms(), readonly=True)
        if row is None:
            return _redirect("/login", 303)
        if not self._same_site(request) or not hmac.compare_digest(form.get("csrf", ""), row.csrf):
            return self._error(403, "web/errors/csrf.html.j2")
        ended = await self.ctx.db.run(web_rows.end_session, key)
        token = self.sign_in.box.open(ended.access_token) if ended else ""
        if token and self.sign_in.app is not None:
            try:
                await self.ctx.gateway.oauth_deauthorize(token, self.sign_in.app.client_id)
            except MattermostError as err:
                log.warning("web sign-out: could not revoke the Mattermost token status=%s error_id=%s",
                            err.status, err.error_id)
        response = self._html(self.ctx.render_html("web/signed_out.html.j2"), 200)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages -------------------------------------------------------------------------------------
    def _session_key(self, request: web.Request) -> str | None:
        value = request.cookies.get(SESSION_COOKIE, "")
        return signin.key_of(value) if value else None

    async def _signed_in(self, request: web.Request) -> tuple[WebSession, MMUser, frozenset[str]] | None:
        key = self._session_key(request)
        if key is None:
            return None
        now = self.ctx.clock.now_ms()
        row = await self.ctx.db.run(web_rows.get_session, key, now, readonly=True)
        if row is None:
            return None
        if row.refresh_token and row.token_expires_at - now < signin.REFRESH_MARGIN_MS:
            if not await self._refresh(row, now):
                await self.ctx.db.run(web_rows.end_session, key)
                return None
        who = await self.viewers.get(row.user_id)
        if who is None:
            await self.ctx.db.run(web_rows.end_session, key)
            return None
        return row, who[0], who[1]

    async def _refresh(self, row: WebSession, now: int) -> bool:
        """Swap the person's tokens for fresh ones; False when Mattermost refuses (sign in again). Unreachable
        or failing: keep the session and try again on the next page."""
        outcome, _token = await signin.refresh(self.ctx, self.sign_in, row, now)
        return outcome != "refused"

    def _same_site(self, request: web.Request) -> bool:
        """A form post from this site: its Origin is ours, or the browser says same-origin. A request with
        neither header is no browser's cross-site post (browsers send Origin on every POST)."""
        origin = request.headers.get("Origin")
        if origin is not None:
            return origin != "null" and _origin_of(origin) == self.origin
        fetch_site = request.headers.get("Sec-Fetch-Site")
        return fetch_site in (None, "same-origin", "none")

    def _page(self, handler: WebHandler, upload: bool = False
              ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def route(request: web.Request) -> web.StreamResponse:
            try:
                signed = await self._signed_in(request)
            except StorageError:
                log.exception("web: the database failed path=%s", request.path)
                return self._error(503, "web/errors/unavailable.html.j2")
            except MattermostError as err:
                log.warning("web: Mattermost did not answer status=%s error_id=%s", err.status, err.error_id)
                return self._error(502, "web/errors/mattermost.html.j2")
            if signed is None:
                if request.method == "GET":
                    return _redirect("/login?" + urlencode({"next": request.path_qs}), 302)
                return self._error(403, "web/errors/signed_out.html.j2")
            row, user, team_ids = signed
            form: dict[str, str] = {}
            files: dict[str, UploadedFile] = {}
            if request.method != "GET":
                parsed = await (_upload_form(request, files) if upload else _small_form(request))
                if parsed is None:
                    return self._error(400, "web/errors/bad_form.html.j2")
                if not self._same_site(request) or not hmac.compare_digest(parsed.get("csrf", ""), row.csrf):
                    log.warning("web: refused a form without this session's CSRF token path=%s user=%s remote=%s",
                                request.path, user.id, request.remote)
                    return self._error(403, "web/errors/csrf.html.j2")
                form = parsed
            query_lists: dict[str, list[str]] = {}
            for key, value in request.query.items():
                query_lists.setdefault(key, []).append(value)
            groups = await self.ctx.viewer_groups(user.id)
            req = WebRequest(user=user, team_ids=team_ids, query={k: v[0] for k, v in query_lists.items()},
                             params=dict(request.match_info), form=form, csrf=row.csrf, path=request.path_qs,
                             last_event_id=request.headers.get("Last-Event-ID", ""),
                             query_lists={k: tuple(v) for k, v in query_lists.items()},
                             groups=groups, files=files, hidden_playbooks=self.ctx.playbooks_hidden_from(
                                 Viewer(user.id, user.is_admin, team_ids, username=user.username, groups=groups)))
            try:
                reply = await handler(req, self.ctx)
            except UserError as err:
                return self._error(400, "web/errors/user_error.html.j2", text=str(err))
            except StorageError:
                log.exception("web: the database failed path=%s", request.path)
                return self._error(503, "web/errors/unavailable.html.j2")
            except Exception:
                log.exception("web: page failed path=%s user=%s", request.path, user.id)
                return self._error(500, "web/errors/internal.html.j2")
            return await self._send(request, reply)

        return route

    async def _send(self, request: web.Request, reply: WebReply) -> web.StreamResponse:
        if isinstance(reply, Page):
            return self._html(reply.html, reply.status)
        if isinstance(reply, Redirect):
            location = reply.location if "://" in reply.location else signin.safe_next(reply.location)
            return _redirect(location, reply.status)
        if isinstance(reply, Download):
            headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
                       "Content-Security-Policy": _DOCUMENT_CSP}
            if reply.filename:
                safe = "".join(c for c in reply.filename if c.isalnum() or c in "-_. ")[:120] or "download"
                headers["Content-Disposition"] = f'attachment; filename="{safe}"'
            return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type.split(";")[0],
                                charset="utf-8" if reply.content_type.startswith("text/") else None,
                                headers=headers)
        return await self._stream(request, reply)

    async def _stream(self, request: web.Request, reply: EventStream) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        events = reply.events()
        try:
            while True:
                # aiohttp does not cancel a handler whose client went away, and a stream with nothing to
                # say never writes to find out: look at the connection while waiting for the next event.
                upcoming = asyncio.ensure_future(anext(events))
                while not upcoming.done():
                    await asyncio.wait({upcoming}, timeout=STREAM_WATCH_S)
                    gone = request.transport is None or request.transport.is_closing()
                    if not upcoming.done() and (gone or self._closing):
                        upcoming.cancel()
                        await asyncio.gather(upcoming, return_exceptions=True)
                        return response
                try:
                    event = upcoming.result()
                except StopAsyncIteration:
                    break
                lines = [f"id: {event.id}"] if event.id else []
                if event.event != "message":
                    lines.append(f"event: {event.event}")
                lines += [f"data: {line}" for line in event.data.split("\n")]
                await response.write(("\n".join(lines) + "\n\n").encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the browser went away (it reconnects by itself with Last-Event-ID)
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file() or name.startswith("."):
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "public, max-age=300",
                                               "X-Content-Type-Options": "nosniff"})

    # -- answers -----------------------------------------------------------------------------------
    def _html(self, html: str, status: int) -> web.Response:
        return web.Response(text=html, status=status, content_type="text/html", headers={
            "Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "private, no-store"})

    def _error(self, status: int, template: str, **values: str) -> web.Response:
        return self._html(self.ctx.render_html(template, status=status, **values), status)


async def _small_form(request: web.Request) -> dict[str, str] | None:
    """A form of text fields, at most MAX_FORM bytes; None for anything else."""
    if request.content_length is not None and request.content_length > MAX_FORM:
        return None
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        return None
    fields: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            return None
        fields.setdefault(key, value)
    return fields


async def _upload_form(request: web.Request, files: dict[str, UploadedFile]) -> dict[str, str] | None:
    """A multipart form of text fields and at most one file, at most MAX_UPLOAD bytes in all (read as a
    stream, so a body without a Content-Length is cut off too); None for anything else."""
    if request.content_length is not None and request.content_length > MAX_UPLOAD:
        return None
    if request.content_type != "multipart/form-data":
        return None
    fields: dict[str, str] = {}
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                return None
            body = bytearray()
            while chunk := await part.read_chunk():
                total += len(chunk)
                if total > MAX_UPLOAD:
                    return None
                body += chunk
            data = bytes(part.decode(bytes(body)))
            if part.filename is not None:
                if files:
                    return None
                files[part.name] = UploadedFile(part.filename, part.headers.get("Content-Type", ""), data)
            else:
                fields.setdefault(part.name, data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, AssertionError):
        return None
    return fields


def _redirect(location: str, status: int) -> web.Response:
    # A plain response, not aiohttp's HTTPFound: the Location goes out exactly as written.
    return web.Response(status=status, headers={"Location": location})


def _origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


__all__ = ["SESSION_COOKIE", "WebServer"]
