"""Mattermost as an OAuth 2.0 service provider: apps, authorization codes, access tokens (no I/O).

Follows mattermost/mattermost as of the 10.x servers the sandbox stands for:
- server/public/model/oauth.go: OAuthApp.IsValid / PreSave / Sanitize / IsValidRedirectURL;
- server/public/model/authorize.go: AuthorizeRequest.IsValid, AuthData.IsExpired, AuthCodeExpireTime (600 s),
  DefaultScope ("user");
- server/public/model/access.go: AccessData.IsExpired, AccessResponse;
- server/channels/app/oauth.go: CreateOAuthApp, GetOAuthApp, DeleteOAuthApp, RegenerateOAuthAppSecret,
  AllowOAuthAppAccessToUser, GetOAuthCodeRedirect, GetOAuthImplicitRedirect,
  GetOAuthAccessTokenForCodeFlow, newSession, newSessionUpdateToken, DeauthorizeOAuthAppForUser,
  GetAuthorizedAppsForUser.
The HTTP side (status codes, form and JSON parsing, pages) is sandbox/routes/oauth.py.

Not modelled: PKCE, public clients and Dynamic Client Registration (newer servers), and the sliding
extension of sessions with activity (ServiceSettings.ExtendSessionLengthWithActivity): an OAuth session
here ends exactly SessionLengthSSOInHours after it was issued.
"""
from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sandbox.errors import AppError
from sandbox.ids import is_valid_id, new_id
from sandbox.state import OAuthAccessData, OAuthApp, OAuthAuthData, State, Token

PREFERENCE_CATEGORY = "oauth_app"  # model.PreferenceCategoryAuthorizedOAuthApp
DEFAULT_SCOPE = "user"  # model.DefaultScope
AUTH_CODE_EXPIRE_S = 600  # model.AuthCodeExpireTime
CODE_RESPONSE_TYPE = "code"  # model.AuthCodeResponseType
IMPLICIT_RESPONSE_TYPE = "token"  # model.ImplicitResponseType
GRANT_AUTHORIZATION_CODE = "authorization_code"  # model.AccessTokenGrantType
GRANT_REFRESH_TOKEN = "refresh_token"  # model.RefreshTokenGrantType

MESSAGES = {
    "api.oauth.register_oauth_app.turn_off.app_error": "The system admin has turned off OAuth2 Service Provider.",
    "api.oauth.allow_oauth.turn_off.app_error": "The system admin has turned off OAuth2 Service Provider.",
    "api.oauth.authorize_oauth.disabled.app_error": "The system admin has turned off OAuth2 Service Provider.",
    "api.oauth.get_access_token.disabled.app_error": "The system admin has turned off OAuth2 Service Provider.",
    "api.oauth.allow_oauth.redirect_callback.app_error":
        "invalid_request: Supplied redirect_uri did not match registered callback_url.",
    "app.oauth.get_app.find.app_error": "Unable to find the requested app.",
    "app.oauth.save_app.existing.app_error": "Must call update for existing app.",
    "api.oauth.get_access_token.bad_request.app_error": "invalid_request: Bad request.",
    "api.oauth.get_access_token.bad_grant.app_error": "invalid_request: Bad grant_type.",
    "api.oauth.get_access_token.missing_code.app_error": "invalid_request: Missing code.",
    "api.oauth.get_access_token.missing_refresh_token.app_error": "invalid_request: Missing refresh_token.",
    "api.oauth.get_access_token.bad_client_id.app_error": "invalid_request: Bad client_id.",
    "api.oauth.get_access_token.bad_client_secret.app_error": "invalid_request: Missing client_secret.",
    "api.oauth.get_access_token.credentials.app_error": "invalid_client: Invalid client credentials.",
    "api.oauth.get_access_token.expired_code.app_error": "invalid_grant: Invalid or expired authorization code.",
    "api.oauth.get_access_token.redirect_uri.app_error":
        "invalid_request: Supplied redirect_uri does not match authorization code redirect_uri.",
    "api.oauth.get_access_token.refresh_token.app_error": "invalid_grant: Invalid refresh token.",
    "api.oauth.get_access_token.internal_user.app_error": "server_error: Encountered internal server error "
                                                          "while pulling user from database.",
    "model.oauth.is_valid.app_id.app_error": "Invalid app id.",
    "model.oauth.is_valid.creator_id.app_error": "Invalid creator id.",
    "model.oauth.is_valid.name.app_error": "Invalid name.",
    "model.oauth.is_valid.callback.app_error": "Callback URL must be a valid URL and start with http:// or https://.",
    "model.oauth.is_valid.homepage.app_error": "Homepage must be a valid URL and start with http:// or https://.",
    "model.oauth.is_valid.description.app_error": "Invalid description.",
    "model.oauth.is_valid.icon_url.app_error": "Icon URL must be a valid URL and start with http:// or https://.",
    "model.oauth.is_valid.mattermost_app_id.app_error": "Invalid Mattermost app id.",
    "model.authorize.is_valid.client_id.app_error": "Invalid client id.",
    "model.authorize.is_valid.response_type.app_error": "Invalid response type.",
    "model.authorize.is_valid.redirect_uri.app_error": "Invalid redirect uri.",
    "model.authorize.is_valid.state.app_error": "Invalid state.",
    "model.authorize.is_valid.scope.app_error": "Invalid scope.",
}


def error(error_id: str, status: int) -> AppError:
    return AppError(error_id, status, MESSAGES.get(error_id, ""))


def enabled(state: State) -> bool:
    return bool(state.config.get("EnableOAuthServiceProvider", True))


def require_enabled(state: State, error_id: str = "api.oauth.allow_oauth.turn_off.app_error") -> None:
    if not enabled(state):
        raise error(error_id, 501)


def is_valid_http_url(value: str) -> bool:
    """model.IsValidHTTPURL: starts with http:// or https:// and parses with a host."""
    if not (value.startswith("http://") or value.startswith("https://")):
        return False
    try:
        return bool(urlsplit(value).netloc)
    except ValueError:
        return False


# -- apps ------------------------------------------------------------------------------------------

def create_app(state: State, creator_id: str, fields: dict[str, Any]) -> OAuthApp:
    """app.CreateOAuthApp + SqlOAuthStore.SaveApp: a body that names an id is refused (400
    app.oauth.save_app.existing.app_error); otherwise PreSave (new id, times), a fresh secret
    (model.NewId, 26 characters) and OAuthApp.IsValid, in its order."""
    require_enabled(state, "api.oauth.register_oauth_app.turn_off.app_error")
    if fields.get("id"):
        raise error("app.oauth.save_app.existing.app_error", 400)
    now = state.now_ms()
    app = OAuthApp(id=new_id(), creator_id=creator_id, client_secret=new_id(), name=fields.get("name", ""),
                   homepage=fields.get("homepage", ""), callback_urls=list(fields.get("callback_urls") or []),
                   description=fields.get("description", ""), icon_url=fields.get("icon_url", ""),
                   is_trusted=bool(fields.get("is_trusted", False)),
                   mattermost_app_id=fields.get("mattermost_app_id", ""), create_at=now, update_at=now)
    validate_app(app)
    state.oauth_apps[app.id] = app
    return app


def validate_app(app: OAuthApp) -> None:
    """model.OAuthApp.IsValid (the checks a client can trip; lengths in bytes except the description)."""
    if not is_valid_id(app.id):
        raise error("model.oauth.is_valid.app_id.app_error", 400)
    if not is_valid_id(app.creator_id):
        raise error("model.oauth.is_valid.creator_id.app_error", 400)
    if not app.name or len(app.name.encode()) > 64:
        raise error("model.oauth.is_valid.name.app_error", 400)
    # len(fmt.Sprintf("%s", a.CallbackUrls)) > 1024: the Go rendering is "[a b c]".
    if not app.callback_urls or len(("[" + " ".join(app.callback_urls) + "]").encode()) > 1024:
        raise error("model.oauth.is_valid.callback.app_error", 400)
    if not all(is_valid_http_url(url) for url in app.callback_urls):
        raise error("model.oauth.is_valid.callback.app_error", 400)
    if not app.homepage or len(app.homepage.encode()) > 256 or not is_valid_http_url(app.homepage):
        raise error("model.oauth.is_valid.homepage.app_error", 400)
    if len(app.description) > 512:  # utf8.RuneCountInString
        raise error("model.oauth.is_valid.description.app_error", 400)
    if app.icon_url and (len(app.icon_url.encode()) > 512 or not is_valid_http_url(app.icon_url)):
        raise error("model.oauth.is_valid.icon_url.app_error", 400)
    if len(app.mattermost_app_id.encode()) > 32:
        raise error("model.oauth.is_valid.mattermost_app_id.app_error", 400)


def get_app(state: State, app_id: str) -> OAuthApp:
    """app.GetOAuthApp: 501 when the provider is off, 404 app.oauth.get_app.find.app_error when unknown."""
    require_enabled(state)
    app = state.oauth_apps.get(app_id)
    if app is None:
        raise error("app.oauth.get_app.find.app_error", 404)
    return app


def delete_app(state: State, app_id: str) -> None:
    """app.DeleteOAuthApp / SqlOAuthStore.DeleteApp: the app goes and so do the sessions it issued
    (deleteOAuthAppSessions: `DELETE FROM Sessions ... WHERE o.Token = s.Token AND o.ClientId = ?`)."""
    require_enabled(state)
    state.oauth_apps.pop(app_id, None)
    for token, access in list(state.oauth_access.items()):
        if access.client_id == app_id:
            state.tokens.pop(token, None)


def regenerate_secret(state: State, app: OAuthApp) -> OAuthApp:
    """app.RegenerateOAuthAppSecret: a new model.NewId secret; the old one stops working at once."""
    require_enabled(state)
    app.client_secret = new_id()
    app.update_at = state.now_ms()
    return app


def authorized_apps(state: State, user_id: str) -> list[OAuthApp]:
    """SqlOAuthStore.GetAuthorizedApps: the apps the user has an `oauth_app` preference for, by name."""
    apps = [state.oauth_apps[name] for (uid, category, name) in state.preferences
            if uid == user_id and category == PREFERENCE_CATEGORY and name in state.oauth_apps]
    return sorted(apps, key=lambda a: a.name)


# -- authorization ---------------------------------------------------------------------------------

def validate_authorize_request(request: dict[str, str]) -> None:
    """model.AuthorizeRequest.IsValid, in its order."""
    client_id = request.get("client_id", "")
    if not is_valid_id(client_id):
        raise error("model.authorize.is_valid.client_id.app_error", 400)
    if not request.get("response_type"):
        raise error("model.authorize.is_valid.response_type.app_error", 400)
    redirect_uri = request.get("redirect_uri", "")
    if not redirect_uri or len(redirect_uri.encode()) > 256 or not is_valid_http_url(redirect_uri):
        raise error("model.authorize.is_valid.redirect_uri.app_error", 400)
    if len(request.get("state", "").encode()) > 1024:
        raise error("model.authorize.is_valid.state.app_error", 400)
    if len(request.get("scope", "").encode()) > 128:
        raise error("model.authorize.is_valid.scope.app_error", 400)


def is_authorized(state: State, user_id: str, client_id: str) -> bool:
    """web/oauth.go authorizeOAuthPage: GetPreferenceByCategoryAndNameForUser(oauth_app, client id)."""
    return (user_id, PREFERENCE_CATEGORY, client_id) in state.preferences


def allow(state: State, user_id: str, request: dict[str, str]) -> str:
    """app.AllowOAuthAppAccessToUser: the URL to send the browser to. Saves the approval as the
    preference (oauth_app, client id) = scope, so the next authorize goes straight through."""
    require_enabled(state)
    scope = request.get("scope") or DEFAULT_SCOPE
    app = state.oauth_apps.get(request["client_id"])
    if app is None:
        raise error("app.oauth.get_app.find.app_error", 404)
    redirect_uri = request["redirect_uri"]
    if redirect_uri not in app.callback_urls:  # OAuthApp.IsValidRedirectURL: exact match
        raise error("api.oauth.allow_oauth.redirect_callback.app_error", 400)
    response_type = request.get("response_type", "")
    if response_type == CODE_RESPONSE_TYPE:
        target = _code_redirect(state, user_id, app.id, redirect_uri, request.get("state", ""), scope)
    elif response_type == IMPLICIT_RESPONSE_TYPE:
        target = _implicit_redirect(state, user_id, app, redirect_uri, request.get("state", ""), scope)
    else:
        return f"{redirect_uri}?error=unsupported_response_type&state={request.get('state', '')}"
    state.preferences[(user_id, PREFERENCE_CATEGORY, app.id)] = scope
    return target


def _code_redirect(state: State, user_id: str, client_id: str, redirect_uri: str, oauth_state: str,
                   scope: str) -> str:
    """app.GetOAuthCodeRedirect: a code of model.NewId()+model.NewId() (52 characters); the redirect URI's
    own query is kept and code and state are set in it (url.Values.Encode: keys sorted)."""
    code = new_id() + new_id()
    state.oauth_codes[code] = OAuthAuthData(client_id=client_id, user_id=user_id, code=code,
                                            create_at=state.now_ms(), redirect_uri=redirect_uri,
                                            state=oauth_state, scope=scope)
    parts = urlsplit(redirect_uri)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["code"] = code
    query["state"] = oauth_state
    return urlunsplit(parts._replace(query=urlencode(sorted(query.items()))))


def _implicit_redirect(state: State, user_id: str, app: OAuthApp, redirect_uri: str, oauth_state: str,
                       scope: str) -> str:
    """app.GetOAuthImplicitRedirect: a session at once, in the fragment (no refresh token)."""
    token = _new_session(state, user_id)
    record = state.tokens[token]
    state.oauth_access[token] = OAuthAccessData(client_id=app.id, user_id=user_id, token=token, refresh_token="",
                                                redirect_uri=redirect_uri, expires_at=record.expires_at,
                                                scope=scope)
    expires_in = (record.expires_at - state.now_ms()) // 1000
    fragment = urlencode(sorted({"access_token": token, "token_type": "bearer", "expires_in": str(expires_in),
                                 "scope": scope, "state": oauth_state}.items()))
    return f"{redirect_uri}#{fragment}"


def _session_length_ms(state: State) -> int:
    return int(state.config.get("SessionLengthSSOInHours", 720)) * 3600 * 1000


def _new_session(state: State, user_id: str) -> str:
    """app.newSession: an OAuth session (IsOAuth) expiring SessionLengthSSOInHours from now."""
    token = new_id()
    state.tokens[token] = Token(id=new_id(), token=token, user_id=user_id, description="oauth",
                                expires_at=state.now_ms() + _session_length_ms(state), is_oauth=True)
    return token


# -- tokens ----------------------------------------------------------------------------------------

def access_token(state: State, *, client_id: str, secret: str, grant_type: str, redirect_uri: str, code: str,
                 refresh_token: str) -> dict[str, Any]:
    """app.GetOAuthAccessTokenForCodeFlow (the form was checked by the route, as web/oauth.go
    getAccessToken does). Returns model.AccessResponse as JSON."""
    require_enabled(state, "api.oauth.get_access_token.disabled.app_error")
    app = state.oauth_apps.get(client_id)
    if app is None:
        raise error("api.oauth.get_access_token.credentials.app_error", 404)
    if not hmac.compare_digest(app.client_secret.encode(), secret.encode()):
        raise error("api.oauth.get_access_token.credentials.app_error", 403)
    if grant_type == GRANT_AUTHORIZATION_CODE:
        return _exchange_code(state, app, code, redirect_uri)
    # refresh_token: the real server looks the token up without checking that it belongs to client_id.
    access = next((a for a in state.oauth_access.values() if a.refresh_token and a.refresh_token == refresh_token),
                  None)
    if access is None:
        raise error("api.oauth.get_access_token.refresh_token.app_error", 404)
    if access.user_id not in state.users:
        raise error("api.oauth.get_access_token.internal_user.app_error", 404)
    return _rotate(state, access)


def _exchange_code(state: State, app: OAuthApp, code: str, redirect_uri: str) -> dict[str, Any]:
    auth = state.oauth_codes.get(code)
    if auth is None:
        raise error("api.oauth.get_access_token.expired_code.app_error", 400)
    # AuthData.IsExpired: GetMillis() > CreateAt + ExpiresIn*1000; an expired code is removed.
    if state.now_ms() > auth.create_at + auth.expires_in * 1000:
        del state.oauth_codes[code]
        raise error("api.oauth.get_access_token.expired_code.app_error", 403)
    # Not consumed by a mismatch: only a successful exchange removes the code (RemoveAuthData).
    if auth.redirect_uri != redirect_uri:
        raise error("api.oauth.get_access_token.redirect_uri.app_error", 400)
    user = state.users.get(auth.user_id)
    if user is None:
        raise error("api.oauth.get_access_token.internal_user.app_error", 404)
    if user.delete_at:
        raise error("api.oauth.get_access_token.expired_code.app_error", 403)
    # As the real server, the code's own client id is not compared with the caller's (GetAuthData(code)).
    previous = next((a for a in state.oauth_access.values() if a.user_id == user.id and a.client_id == app.id),
                    None)
    if previous is not None:
        if previous.expires_at > 0 and state.now_ms() > previous.expires_at:  # AccessData.IsExpired
            answer = _rotate(state, previous)
        else:
            # "Return the same token and no need to create a new session".
            answer = _answer(previous.token, previous.refresh_token,
                             (previous.expires_at - state.now_ms()) // 1000)
    else:
        token = _new_session(state, user.id)
        state.oauth_access[token] = OAuthAccessData(client_id=app.id, user_id=user.id, token=token,
                                                    refresh_token=new_id(), redirect_uri=redirect_uri,
                                                    expires_at=state.tokens[token].expires_at, scope=auth.scope)
        answer = _answer(token, state.oauth_access[token].refresh_token, _session_length_ms(state) // 1000)
    state.oauth_codes.pop(code, None)
    return answer


def _rotate(state: State, access: OAuthAccessData) -> dict[str, Any]:
    """app.newSessionUpdateToken: the old session is removed, a new one and a new refresh token issued."""
    state.tokens.pop(access.token, None)
    state.oauth_access.pop(access.token, None)
    token = _new_session(state, access.user_id)
    access.token = token
    access.refresh_token = new_id()
    access.expires_at = state.tokens[token].expires_at
    state.oauth_access[token] = access
    return _answer(token, access.refresh_token, _session_length_ms(state) // 1000)


def _answer(token: str, refresh_token: str, expires_in: int) -> dict[str, Any]:
    """model.AccessResponse. `scope` stays empty: the code flow never sets it (GetOAuthAccessTokenForCodeFlow
    builds the response without Scope), only the implicit flow's fragment carries one."""
    return {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": "",
            "refresh_token": refresh_token, "id_token": ""}


def deauthorize(state: State, user_id: str, client_id: str) -> None:
    """app.DeauthorizeOAuthAppForUser: revoke the user's sessions for the app, drop its access data, its
    pending codes and the approval preference."""
    require_enabled(state)
    for token, access in list(state.oauth_access.items()):
        if access.user_id == user_id and access.client_id == client_id:
            state.tokens.pop(token, None)
            del state.oauth_access[token]
    for code, auth in list(state.oauth_codes.items()):
        if auth.user_id == user_id and auth.client_id == client_id:
            del state.oauth_codes[code]
    state.preferences.pop((user_id, PREFERENCE_CATEGORY, client_id), None)
