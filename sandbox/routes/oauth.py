"""Mattermost as an OAuth 2.0 service provider, over HTTP (the rules themselves are sandbox/oauth.py).

REST, as server/channels/api4/oauth.go (APISessionRequired):
    POST   /api/v4/oauth/apps                      createOAuthApp (201)
    GET    /api/v4/oauth/apps                      getOAuthApps
    GET    /api/v4/oauth/apps/{app_id}             getOAuthApp
    GET    /api/v4/oauth/apps/{app_id}/info        getOAuthAppInfo (any session; secret blanked)
    DELETE /api/v4/oauth/apps/{app_id}             deleteOAuthApp
    POST   /api/v4/oauth/apps/{app_id}/regen_secret  regenerateOAuthAppSecret
    GET    /api/v4/users/{user_id}/oauth/apps/authorized  getAuthorizedOAuthApps
Outside /api/v4, as server/channels/web/oauth.go:
    GET    /oauth/authorize      authorizeOAuthPage (APIHandlerTrustRequester): a redirect or an HTML page
    POST   /oauth/authorize      authorizeOAuthApp (APISessionRequired, JSON) -> {"redirect": url}
    POST   /oauth/deauthorize    deauthorizeOAuthApp (APISessionRequired) {"client_id"}
    POST   /oauth/access_token   getAccessToken (no session; a form)
Sandbox only (no such route on a real server):
    GET    /sandbox/webclient/apps   the trusted apps' names and homepages, for the web client's header links
"""
from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote_plus

from aiohttp import web

from sandbox import oauth
from sandbox.auth import optional_user, require_user, token_from_request
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.ids import is_valid_id
from sandbox.routes import webclient
from sandbox.routes._helpers import (
    created,
    json_response,
    page_slice,
    read_json,
    state_of,
    url_id,
    user_id_param,
)
from sandbox.state import OAuthApp, State, User

STRING_FIELDS = ("id", "name", "description", "icon_url", "homepage", "mattermost_app_id")


def _app_fields(body: Any) -> dict[str, Any]:
    """json.NewDecoder(r.Body).Decode(&oauthApp): a wrongly typed field is a decode error, null a zero value."""
    if not isinstance(body, dict):
        raise invalid_body("oauth_app")
    fields: dict[str, Any] = {}
    for key in STRING_FIELDS:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise invalid_body("oauth_app")
        fields[key] = value or ""
    urls = body.get("callback_urls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
        raise invalid_body("oauth_app")
    fields["callback_urls"] = urls or []
    trusted = body.get("is_trusted")
    if trusted is not None and not isinstance(trusted, bool):
        raise invalid_body("oauth_app")
    fields["is_trusted"] = bool(trusted)
    return fields


def _require_permission(state: State, me: User, permission: str) -> None:
    if not state.has_system_permission(me, permission):
        raise forbidden(permission, me.id)


def _own_or_system_wide(state: State, me: User, app: OAuthApp) -> None:
    """Another person's app needs manage_system_wide_oauth (getOAuthApp, deleteOAuthApp, ...)."""
    if app.creator_id != me.id:
        _require_permission(state, me, "manage_system_wide_oauth")


async def create_app(request: web.Request) -> web.Response:
    """api4/oauth.go createOAuthApp: decode, manage_oauth, is_trusted only with manage_system, 201."""
    state = state_of(request)
    me = require_user(request)
    fields = _app_fields(await read_json(request, "oauth_app"))
    _require_permission(state, me, "manage_oauth")
    if not state.has_system_permission(me, "manage_system"):
        fields["is_trusted"] = False
    app = oauth.create_app(state, me.id, fields)
    return created(app.to_json())


async def list_apps(request: web.Request) -> web.Response:
    """api4/oauth.go getOAuthApps: without manage_oauth 403 api.command.admin_only.app_error; with
    manage_system_wide_oauth every app, else the caller's own."""
    state = state_of(request)
    me = require_user(request)
    if not state.has_system_permission(me, "manage_oauth"):
        raise AppError("api.command.admin_only.app_error", 403, "Only an admin can do that.")
    oauth.require_enabled(state)
    apps = sorted(state.oauth_apps.values(), key=lambda a: (a.create_at, a.id))
    if not state.has_system_permission(me, "manage_system_wide_oauth"):
        apps = [a for a in apps if a.creator_id == me.id]
    return json_response([a.to_json() for a in page_slice(apps, request)])


def _managed_app(request: web.Request) -> tuple[Any, Any]:
    """The path's app, for a user with manage_oauth who owns it (or manage_system_wide_oauth): the preface
    of api4/oauth.go getOAuthApp, deleteOAuthApp and regenerateOAuthAppSecret."""
    state = state_of(request)
    me = require_user(request)
    app_id = url_id(request, "app_id")
    _require_permission(state, me, "manage_oauth")
    app = oauth.get_app(state, app_id)
    _own_or_system_wide(state, me, app)
    return state, app


async def get_app(request: web.Request) -> web.Response:
    state, app = _managed_app(request)
    return json_response(app.to_json())


async def get_app_info(request: web.Request) -> web.Response:
    """api4/oauth.go getOAuthAppInfo: any session; OAuthApp.Sanitize blanks the secret."""
    state = state_of(request)
    require_user(request)
    app = oauth.get_app(state, url_id(request, "app_id"))
    return json_response(app.to_json(sanitize=True))


async def delete_app(request: web.Request) -> web.Response:
    state, app = _managed_app(request)
    oauth.delete_app(state, app.id)
    return json_response({"status": "OK"})


async def regen_secret(request: web.Request) -> web.Response:
    state, app = _managed_app(request)
    return json_response(oauth.regenerate_secret(state, app).to_json())


async def authorized_apps(request: web.Request) -> web.Response:
    """api4/oauth.go getAuthorizedOAuthApps: yourself or edit_other_users; secrets blanked."""
    state = state_of(request)
    me = require_user(request)
    user_id = user_id_param(request, me)
    if not state.has_permission_to_user(me, user_id):
        raise forbidden("edit_other_users", me.id)
    oauth.require_enabled(state)
    apps = oauth.authorized_apps(state, user_id)
    return json_response([a.to_json(sanitize=True) for a in page_slice(apps, request)])


# -- /oauth/authorize ------------------------------------------------------------------------------

def _error_page(err: AppError, page_type: str = "") -> web.Response:
    """utils.RenderWebError / RenderWebAppError: the error's status with an HTML page. The real page sends
    the browser on to the web app's /error?type=...&message=...; the sandbox shows the message itself,
    with the AppError id, so a test or a person can read which rule refused."""
    kind = f' <code id="error-type">{html.escape(page_type)}</code>' if page_type else ""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Mattermost sandbox: error</title></head><body><main>"
        f'<h1>Something went wrong</h1><p id="error-message">{html.escape(err.message)}</p>'
        f'<p><code id="error-id">{html.escape(err.id)}</code>{kind}</p>'
        "</main></body></html>")
    return web.Response(status=err.status_code, text=body, content_type="text/html", headers={
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff"})


def _authorize_request(source: Any) -> dict[str, str]:
    return {key: source.get(key) or "" for key in ("response_type", "client_id", "redirect_uri", "scope", "state")}


def _site_url(request: web.Request) -> str:
    """Context.GetSiteURLHeader: SiteURL, or the request's own origin when none is set."""
    return state_of(request).site_url or f"{request.scheme}://{request.host}"


async def authorize_page(request: web.Request) -> web.StreamResponse:
    """web/oauth.go authorizeOAuthPage, in its order: provider off (501 page); AuthorizeRequest.IsValid
    (page); unknown app (404 page); not signed in -> 302 to <SiteURL>/login?redirect_to=<QueryEscape(
    RequestURI)>; redirect_uri not exactly a callback URL (400 page); a trusted or already approved app ->
    302 to the redirect URI with code and state; otherwise the web app, which shows the consent page."""
    state = state_of(request)
    if not oauth.enabled(state):
        return _error_page(oauth.error("api.oauth.authorize_oauth.disabled.app_error", 501))
    auth_request = _authorize_request(request.query)
    try:
        oauth.validate_authorize_request(auth_request)
        app = oauth.get_app(state, auth_request["client_id"])
    except AppError as err:
        return _error_page(err, "oauth_invalid_param" if err.id.startswith("model.") else "")
    try:
        user = optional_user(request)
    except AppError:
        user = None
    if user is None:
        return _found(f"{_site_url(request)}/login?redirect_to={quote_plus(request.raw_path, safe='')}")
    if auth_request["redirect_uri"] not in app.callback_urls:
        return _error_page(oauth.error("api.oauth.allow_oauth.redirect_callback.app_error", 400),
                           "oauth_invalid_redirect_url")
    if app.is_trusted or oauth.is_authorized(state, user.id, app.id):
        try:
            target = oauth.allow(state, user.id, auth_request)
        except AppError as err:
            return _error_page(err)
        return _found(target)
    response = await webclient.index(request)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _found(location: str) -> web.Response:
    """http.Redirect(w, r, location, 302), the Location exactly as built (aiohttp's HTTPFound would
    re-encode it through yarl)."""
    return web.Response(status=302, headers={"Location": location})


def _is_oauth_session(request: web.Request) -> bool:
    token = token_from_request(request)
    record = state_of(request).tokens.get(token or "")
    return record is not None and record.is_oauth


async def authorize_app(request: web.Request) -> web.Response:
    """web/oauth.go authorizeOAuthApp: what the consent page's "Allow" posts. JSON body (400
    api.context.invalid_body_param.app_error for authorize_request), AuthorizeRequest.IsValid, an OAuth
    session may not approve apps (403), then AllowOAuthAppAccessToUser -> {"redirect": url}."""
    state = state_of(request)
    me = require_user(request)
    body = await read_json(request, "authorize_request")
    if not isinstance(body, dict) or any(v is not None and not isinstance(v, str) for v in body.values()):
        raise invalid_body("authorize_request")
    auth_request = _authorize_request(body)
    oauth.validate_authorize_request(auth_request)
    if _is_oauth_session(request):
        err = forbidden("edit_other_users", me.id)
        err.detailed_error += ", attempted access by oauth app"
        raise err
    return json_response({"redirect": oauth.allow(state, me.id, auth_request)})


async def deauthorize_app(request: web.Request) -> web.Response:
    """web/oauth.go deauthorizeOAuthApp: {"client_id"} (model.MapFromJSON: anything but a map of strings
    reads as empty), then DeauthorizeOAuthAppForUser."""
    state = state_of(request)
    me = require_user(request)
    try:
        body = await read_json(request, "client_id")
    except AppError:
        body = None
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        body = {}
    client_id = body.get("client_id", "")
    if not is_valid_id(client_id):
        raise invalid_body("client_id")
    oauth.deauthorize(state, me.id, client_id)
    return json_response({"status": "OK"})


async def access_token(request: web.Request) -> web.Response:
    """web/oauth.go getAccessToken (10.x): the form (body before query, as r.FormValue), then grant_type,
    code / refresh_token, client_id, client_secret, in that order; the rest is
    app.GetOAuthAccessTokenForCodeFlow (sandbox/oauth.py access_token)."""
    try:
        form = await request.post()
    except ValueError:
        raise oauth.error("api.oauth.get_access_token.bad_request.app_error", 400) from None

    def value(key: str) -> str:
        found = form.get(key)
        if found is None:
            found = request.query.get(key)
        return found if isinstance(found, str) else ""

    grant_type, code, refresh = value("grant_type"), value("code"), value("refresh_token")
    if grant_type == oauth.GRANT_AUTHORIZATION_CODE:
        if not code:
            raise oauth.error("api.oauth.get_access_token.missing_code.app_error", 400)
    elif grant_type == oauth.GRANT_REFRESH_TOKEN:
        if not refresh:
            raise oauth.error("api.oauth.get_access_token.missing_refresh_token.app_error", 400)
    else:
        raise oauth.error("api.oauth.get_access_token.bad_grant.app_error", 400)
    client_id = value("client_id")
    if not is_valid_id(client_id):
        raise oauth.error("api.oauth.get_access_token.bad_client_id.app_error", 400)
    secret = value("client_secret")
    if not secret:
        raise oauth.error("api.oauth.get_access_token.bad_client_secret.app_error", 400)
    answer = oauth.access_token(state_of(request), client_id=client_id, secret=secret, grant_type=grant_type,
                                redirect_uri=value("redirect_uri"), code=code, refresh_token=refresh)
    return json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def webclient_apps(request: web.Request) -> web.Response:
    """Sandbox only: the trusted OAuth apps as header links of the web client, by name. A signed-in
    session is needed (the web client's cookie); nothing when the provider is off."""
    state = state_of(request)
    require_user(request)
    if not oauth.enabled(state):
        return json_response([])
    apps = sorted((a for a in state.oauth_apps.values() if a.is_trusted), key=lambda a: (a.name.lower(), a.id))
    return json_response([{"id": a.id, "name": a.name, "homepage": a.homepage, "icon_url": a.icon_url}
                          for a in apps])


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/oauth/apps", create_app)
    r.add_get("/api/v4/oauth/apps", list_apps)
    r.add_get("/api/v4/oauth/apps/{app_id}", get_app)
    r.add_delete("/api/v4/oauth/apps/{app_id}", delete_app)
    r.add_get("/api/v4/oauth/apps/{app_id}/info", get_app_info)
    r.add_post("/api/v4/oauth/apps/{app_id}/regen_secret", regen_secret)
    r.add_get("/api/v4/users/{user_id}/oauth/apps/authorized", authorized_apps)
    r.add_get("/oauth/authorize", authorize_page)
    r.add_post("/oauth/authorize", authorize_app)
    r.add_post("/oauth/deauthorize", deauthorize_app)
    r.add_post("/oauth/access_token", access_token)
    r.add_get("/sandbox/webclient/apps", webclient_apps)
