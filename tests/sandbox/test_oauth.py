"""The sandbox as Mattermost's OAuth 2.0 service provider (sandbox/oauth.py, sandbox/routes/oauth.py): app
registration, /oauth/authorize (login redirect, consent, approval), /oauth/access_token (codes, refresh),
OAuth sessions as ordinary bearer tokens, deauthorization, and the provider switched off. Each rule cites
the mattermost/mattermost function it follows in the module it tests; docs/sandbox.md lists them."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import aiohttp
import pytest
from yarl import URL

from sandbox import ops
from sandbox.server import Sandbox

CALLBACK = "http://bot.example/oauth/callback"
HOMEPAGE = "http://bot.example/"
PASSWORD = "secret1"


class Browser:
    """An aiohttp client that keeps cookies like a browser (unsafe=True: the sandbox is on 127.0.0.1)
    and never follows redirects by itself, so each hop can be checked."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def login(self, username: str, password: str = PASSWORD) -> None:
        async with self.session.post(f"{self.sb.url}/api/v4/users/login",
                                     json={"login_id": username, "password": password}) as resp:
            assert resp.status == 200, await resp.text()

    async def get(self, path_or_url: str) -> tuple[int, str, Any]:
        url = path_or_url if path_or_url.startswith("http") else f"{self.sb.url}{path_or_url}"
        # encoded=True: the request line carries the URI exactly as given (yarl would normalise it).
        async with self.session.get(URL(url, encoded=True), allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp.headers

    async def post_json(self, path: str, body: Any, xhr: bool = True) -> tuple[int, Any]:
        headers = {"X-Requested-With": "XMLHttpRequest"} if xhr else {}
        async with self.session.post(f"{self.sb.url}{path}", json=body, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def browser(sandbox: Sandbox) -> Any:
    b = Browser(sandbox)
    yield b
    await b.close()


@pytest.fixture
def alice(sandbox: Sandbox) -> Any:
    return ops.create_user(sandbox.state, sandbox.hub, username="alice", password=PASSWORD,
                           email="alice@example.com")


async def register(api: Any, **fields: Any) -> tuple[int, Any]:
    body = {"name": "Playbooks", "description": "Run playbooks", "homepage": HOMEPAGE,
            "callback_urls": [CALLBACK], "is_trusted": False, **fields}
    status, data, _ = await api.post("/oauth/apps", body)
    return status, data


def authorize_path(client_id: str, state: str = "xyz", redirect_uri: str = CALLBACK, **extra: str) -> str:
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
             **extra}
    return "/oauth/authorize?" + "&".join(f"{k}={quote_plus(v)}" for k, v in query.items())


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


async def token_call(sb: Sandbox, form: dict[str, str]) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sb.url}/oauth/access_token", data=form) as resp:
            return resp.status, await resp.json(), resp.headers


async def exchange(sb: Sandbox, app: dict[str, Any], code: str, redirect_uri: str = CALLBACK) -> tuple[int, Any]:
    status, body, _ = await token_call(sb, {"grant_type": "authorization_code", "client_id": app["id"],
                                            "client_secret": app["client_secret"], "code": code,
                                            "redirect_uri": redirect_uri})
    return status, body


async def refresh(sb: Sandbox, app: dict[str, Any], refresh_token: str) -> tuple[int, Any]:
    status, body, _ = await token_call(sb, {"grant_type": "refresh_token", "client_id": app["id"],
                                            "client_secret": app["client_secret"], "refresh_token": refresh_token})
    return status, body


async def me_with(api: Any, token: str) -> int:
    status, _, _ = await api.as_(token).get("/users/me")
    return status


async def code_for(browser: Browser, app: dict[str, Any], state: str = "xyz") -> str:
    """A signed-in browser approves (or passes straight through a trusted app) and gets a code."""
    status, _, headers = await browser.get(authorize_path(app["id"], state))
    if status == 200:  # the consent page: "Allow"
        status, answer = await browser.post_json("/oauth/authorize", {
            "response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": state})
        assert status == 200, answer
        location = answer["redirect"]
    else:
        assert status == 302
        location = headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return query_of(location)["code"]


# -- registration ----------------------------------------------------------------------------------

async def test_admin_registers_an_app_and_anyone_signed_in_reads_its_public_info(api, sandbox, alice) -> None:
    status, app = await register(api, is_trusted=True)
    assert status == 201
    assert len(app["id"]) == 26 and len(app["client_secret"]) == 26
    assert app["is_trusted"] is True and app["callback_urls"] == [CALLBACK] and app["homepage"] == HOMEPAGE
    assert app["creator_id"] == sandbox.state.user_by_username("sysadmin").id
    token = ops.create_token(sandbox.state, alice.id)
    status, info, _ = await api.as_(token).get(f"/oauth/apps/{app['id']}/info")
    assert status == 200 and info["client_secret"] == "" and info["name"] == "Playbooks"
    status, same, _ = await api.get(f"/oauth/apps/{app['id']}")
    assert status == 200 and same["client_secret"] == app["client_secret"]
    status, listed, _ = await api.get("/oauth/apps")
    assert status == 200 and [a["id"] for a in listed] == [app["id"]]
    # No description at all is fine (the spec says required; SPEC_EXCEPTIONS oauth-app-description-optional).
    status, _, _ = await api.post("/oauth/apps", {"name": "Bare", "homepage": HOMEPAGE, "callback_urls": [CALLBACK]})
    assert status == 201


@pytest.mark.parametrize("fields, error_id", [
    ({"name": ""}, "model.oauth.is_valid.name.app_error"),
    ({"name": "x" * 65}, "model.oauth.is_valid.name.app_error"),
    ({"callback_urls": []}, "model.oauth.is_valid.callback.app_error"),
    ({"callback_urls": ["ftp://bot.example/cb"]}, "model.oauth.is_valid.callback.app_error"),
    ({"callback_urls": ["http://bot.example/" + "c" * 1024]}, "model.oauth.is_valid.callback.app_error"),
    ({"homepage": ""}, "model.oauth.is_valid.homepage.app_error"),
    ({"homepage": "bot.example"}, "model.oauth.is_valid.homepage.app_error"),
    ({"homepage": "http://bot.example/" + "h" * 250}, "model.oauth.is_valid.homepage.app_error"),
    ({"description": "d" * 513}, "model.oauth.is_valid.description.app_error"),
    ({"icon_url": "icon.png"}, "model.oauth.is_valid.icon_url.app_error"),
    ({"id": "a" * 26}, "app.oauth.save_app.existing.app_error"),
    ({"callback_urls": "http://bot.example/cb"}, "api.context.invalid_body_param.app_error"),
    ({"is_trusted": "yes"}, "api.context.invalid_body_param.app_error"),
])
async def test_registration_is_validated_like_oauth_app_is_valid(api, sandbox, fields, error_id) -> None:
    status, body = await register(api, **fields)
    assert (status, body["id"]) == (400, error_id)
    assert sandbox.state.oauth_apps == {}


async def test_description_counts_runes_and_name_counts_bytes(api) -> None:
    status, _ = await register(api, description="é" * 512)
    assert status == 201
    status, body = await register(api, name="é" * 33)  # 66 bytes
    assert (status, body["id"]) == (400, "model.oauth.is_valid.name.app_error")


async def test_manage_oauth_rules(api, sandbox, alice) -> None:
    token = ops.create_token(sandbox.state, alice.id)
    as_alice = api.as_(token)
    status, body = await register(as_alice)
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    status, body, _ = await as_alice.get("/oauth/apps")
    assert (status, body["id"]) == (403, "api.command.admin_only.app_error")
    status, admin_app = await register(api, is_trusted=True)
    # A role with manage_oauth but not manage_system: may register, but never a trusted app.
    sandbox.state.role_permissions["system_user"].add("manage_oauth")
    status, own = await register(as_alice, name="Mine", is_trusted=True)
    assert status == 201 and own["is_trusted"] is False and own["creator_id"] == alice.id
    status, listed, _ = await as_alice.get("/oauth/apps")
    assert [a["id"] for a in listed] == [own["id"]]  # without manage_system_wide_oauth: one's own only
    status, listed, _ = await api.get("/oauth/apps")
    assert {a["id"] for a in listed} == {own["id"], admin_app["id"]}
    for call in (as_alice.get(f"/oauth/apps/{admin_app['id']}"), as_alice.delete(f"/oauth/apps/{admin_app['id']}"),
                 as_alice.post(f"/oauth/apps/{admin_app['id']}/regen_secret")):
        status, body, _ = await call
        assert (status, body["id"]) == (403, "api.context.permissions.app_error")
        assert "manage_system_wide_oauth" in body["detailed_error"]
    status, body, _ = await api.get(f"/oauth/apps/{'z' * 26}")
    assert (status, body["id"]) == (404, "app.oauth.get_app.find.app_error")
    status, body, _ = await api.get("/oauth/apps/not-an-id")
    assert (status, body["id"]) == (400, "api.context.invalid_url_param.app_error")
    status, body, _ = await api.as_(None).get(f"/oauth/apps/{own['id']}/info")
    assert (status, body["id"]) == (401, "api.context.session_expired.app_error")


async def test_regenerated_secret_replaces_the_old_one_and_delete_revokes_sessions(api, sandbox, alice,
                                                                                    browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    status, answer = await exchange(sandbox, app, await code_for(browser, app))
    assert status == 200 and await me_with(api, answer["access_token"]) == 200
    status, regenerated, _ = await api.post(f"/oauth/apps/{app['id']}/regen_secret")
    assert status == 200 and regenerated["client_secret"] != app["client_secret"]
    status, body = await exchange(sandbox, app, await code_for(browser, app))
    assert (status, body["id"]) == (403, "api.oauth.get_access_token.credentials.app_error")
    status, body, _ = await api.delete(f"/oauth/apps/{app['id']}")
    assert (status, body) == (200, {"status": "OK"})
    assert await me_with(api, answer["access_token"]) == 401  # deleteOAuthAppSessions
    status, body, _ = await api.get(f"/oauth/apps/{app['id']}")
    assert (status, body["id"]) == (404, "app.oauth.get_app.find.app_error")


# -- the provider switched off ---------------------------------------------------------------------

async def test_provider_off_answers_501_everywhere(api, sandbox, alice, browser) -> None:
    _, app = await register(api)
    await browser.login("alice")
    sandbox.state.config["EnableOAuthServiceProvider"] = False
    status, body = await register(api)
    assert (status, body["id"]) == (501, "api.oauth.register_oauth_app.turn_off.app_error")
    for call in (api.get("/oauth/apps"), api.get(f"/oauth/apps/{app['id']}"),
                 api.get(f"/oauth/apps/{app['id']}/info"), api.delete(f"/oauth/apps/{app['id']}"),
                 api.post(f"/oauth/apps/{app['id']}/regen_secret"), api.get("/users/me/oauth/apps/authorized")):
        status, body, _ = await call
        assert (status, body["id"]) == (501, "api.oauth.allow_oauth.turn_off.app_error")
    status, page, headers = await browser.get(authorize_path(app["id"]))
    assert status == 501 and headers["Content-Type"].startswith("text/html")
    assert "api.oauth.authorize_oauth.disabled.app_error" in page
    status, body = await browser.post_json("/oauth/authorize", {
        "response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s"})
    assert (status, body["id"]) == (501, "api.oauth.allow_oauth.turn_off.app_error")
    status, body = await browser.post_json("/oauth/deauthorize", {"client_id": app["id"]})
    assert (status, body["id"]) == (501, "api.oauth.allow_oauth.turn_off.app_error")
    status, body = await exchange(sandbox, app, "c" * 52)
    assert (status, body["id"]) == (501, "api.oauth.get_access_token.disabled.app_error")


# -- /oauth/authorize ------------------------------------------------------------------------------

async def test_not_signed_in_goes_to_login_with_the_escaped_request_uri(api, sandbox, browser) -> None:
    _, app = await register(api)
    path = authorize_path(app["id"], state="a b&c")
    status, _, headers = await browser.get(path)
    assert status == 302
    # http.Redirect(w, r, SiteURL+"/login?redirect_to="+url.QueryEscape(r.RequestURI), 302)
    assert headers["Location"] == f"{sandbox.state.site_url}/login?redirect_to={quote_plus(path, safe='')}"


async def test_authorize_page_refuses_bad_requests_unknown_apps_and_foreign_redirects(api, alice, browser) -> None:
    _, app = await register(api)
    status, page, _ = await browser.get(authorize_path("nope"))
    assert status == 400 and "model.authorize.is_valid.client_id.app_error" in page
    status, page, _ = await browser.get(authorize_path(app["id"], redirect_uri="not-a-url"))
    assert status == 400 and "model.authorize.is_valid.redirect_uri.app_error" in page
    status, page, _ = await browser.get(authorize_path("q" * 26))
    assert status == 404 and "app.oauth.get_app.find.app_error" in page  # before the session check
    # Not signed in, a foreign redirect_uri still goes to the login page first (the order of authorizeOAuthPage).
    status, _, _ = await browser.get(authorize_path(app["id"], redirect_uri="http://evil.example/cb"))
    assert status == 302
    await browser.login("alice")
    for foreign in ("http://evil.example/cb", CALLBACK + "/", CALLBACK + "?x=1",
                    "http://bot.example/OAUTH/callback"):
        status, page, headers = await browser.get(authorize_path(app["id"], redirect_uri=foreign))
        assert status == 400 and headers["Content-Type"].startswith("text/html")
        assert "api.oauth.allow_oauth.redirect_callback.app_error" in page


async def test_untrusted_app_gets_the_consent_page_then_allow_redirects_with_code_and_state(
        api, sandbox, alice, browser) -> None:
    _, app = await register(api)
    await browser.login("alice")
    status, page, headers = await browser.get(authorize_path(app["id"], state="st4te"))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 'id="authorize"' in page and ">Allow<" in page and ">Deny<" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]  # the web client's CSP, intact
    request = {"response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "st4te"}
    # The session cookie without X-Requested-With is a CSRF attempt: no session (sandbox/auth.py).
    status, body = await browser.post_json("/oauth/authorize", request, xhr=False)
    assert (status, body["id"]) == (401, "api.context.session_expired.app_error")
    status, body = await browser.post_json("/oauth/authorize", {**request, "redirect_uri": "http://evil.example/"})
    assert (status, body["id"]) == (400, "api.oauth.allow_oauth.redirect_callback.app_error")
    status, body = await browser.post_json("/oauth/authorize", {**request, "client_id": "x"})
    assert (status, body["id"]) == (400, "model.authorize.is_valid.client_id.app_error")
    status, body = await browser.post_json("/oauth/authorize", [request])
    assert (status, body["id"]) == (400, "api.context.invalid_body_param.app_error")
    status, body = await browser.post_json("/oauth/authorize", request)
    assert status == 200 and set(body) == {"redirect"}
    query = query_of(body["redirect"])
    assert body["redirect"].startswith(CALLBACK + "?") and query["state"] == "st4te" and len(query["code"]) == 52
    # The approval is remembered (preference oauth_app/<client id> = scope): next time straight through.
    assert sandbox.state.preferences[(alice.id, "oauth_app", app["id"])] == "user"
    status, _, headers = await browser.get(authorize_path(app["id"], state="again"))
    assert status == 302 and query_of(headers["Location"])["state"] == "again"


async def test_trusted_app_redirects_at_once_keeping_the_callbacks_own_query(api, alice, browser) -> None:
    callback = "http://bot.example/cb?tenant=7"
    _, app = await register(api, is_trusted=True, callback_urls=[callback])
    await browser.login("alice")
    status, _, headers = await browser.get(authorize_path(app["id"], state="s1", redirect_uri=callback))
    assert status == 302
    location = headers["Location"]
    assert location.startswith("http://bot.example/cb?")
    assert query_of(location) == {"code": query_of(location)["code"], "state": "s1", "tenant": "7"}


async def test_unsupported_response_type_and_the_implicit_flow(api, sandbox, alice, browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    status, _, headers = await browser.get(authorize_path(app["id"], state="s", response_type="magic"))
    assert (status, headers["Location"]) == (302, f"{CALLBACK}?error=unsupported_response_type&state=s")
    status, _, headers = await browser.get(authorize_path(app["id"], state="s", response_type="token"))
    assert status == 302 and headers["Location"].startswith(CALLBACK + "#")
    fragment = {k: v[0] for k, v in parse_qs(urlsplit(headers["Location"]).fragment).items()}
    assert fragment["token_type"] == "bearer" and fragment["state"] == "s" and fragment["scope"] == "user"
    assert await me_with(api, fragment["access_token"]) == 200


async def test_an_oauth_session_may_not_approve_apps(api, sandbox, alice, browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    _, tokens = await exchange(sandbox, app, await code_for(browser, app))
    status, body, _ = await api.as_(tokens["access_token"]).post(f"{sandbox.url}/oauth/authorize", {
        "response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s"})
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    assert body["detailed_error"].endswith(", attempted access by oauth app")


# -- /oauth/access_token ---------------------------------------------------------------------------

async def test_code_exchange_gives_a_bearer_session_token_that_works_on_the_api(api, sandbox, alice,
                                                                                browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    status, tokens, headers = await token_call(sandbox, {
        "grant_type": "authorization_code", "client_id": app["id"], "client_secret": app["client_secret"],
        "code": await code_for(browser, app), "redirect_uri": CALLBACK})
    assert status == 200 and headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 720 * 3600
    assert len(tokens["access_token"]) == 26 and len(tokens["refresh_token"]) == 26
    assert tokens["scope"] == ""  # the code flow never fills it in (GetOAuthAccessTokenForCodeFlow)
    status, me, _ = await api.as_(tokens["access_token"]).get("/users/me")
    assert status == 200 and me["id"] == alice.id
    # ?access_token= works for OAuth sessions only (web/handlers.go ServeHTTP).
    status, me, _ = await api.as_(None).get(f"/users/me?access_token={tokens['access_token']}")
    assert status == 200 and me["id"] == alice.id
    pat = ops.create_token(sandbox.state, alice.id)
    status, body, _ = await api.as_(None).get(f"/users/me?access_token={pat}")
    assert (status, body["id"]) == (401, "api.context.token_provided.app_error")
    # Signing in again while the session lives gives the same token back, for the remaining time.
    status, again = await exchange(sandbox, app, await code_for(browser, app))
    assert status == 200 and again["access_token"] == tokens["access_token"]
    assert again["refresh_token"] == tokens["refresh_token"]


async def test_session_length_follows_session_length_sso_in_hours() -> None:
    async with Sandbox(admin_token="admintoken", validate=True,
                       config={"ServiceSettings": {"SessionLengthSSOInHours": 24}}) as sb:
        alice = ops.create_user(sb.state, sb.hub, username="alice", password=PASSWORD, email="a@example.com")
        assert alice
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sb.url}/api/v4/oauth/apps", headers={"Authorization": "Bearer admintoken"},
                                    json={"name": "P", "homepage": HOMEPAGE, "callback_urls": [CALLBACK],
                                          "is_trusted": True}) as resp:
                app = await resp.json()
        browser = Browser(sb)
        try:
            await browser.login("alice")
            status, tokens = await exchange(sb, app, await code_for(browser, app))
        finally:
            await browser.close()
        assert status == 200 and tokens["expires_in"] == 24 * 3600


async def test_a_code_is_single_use(api, sandbox, alice, browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    code = await code_for(browser, app)
    status, _ = await exchange(sandbox, app, code)
    assert status == 200
    status, body = await exchange(sandbox, app, code)
    assert (status, body["id"]) == (400, "api.oauth.get_access_token.expired_code.app_error")


async def test_a_code_expires_after_600_seconds(api, sandbox, alice, browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    start = sandbox.hub.clock()
    code = await code_for(browser, app)
    sandbox.set_clock(lambda: start + 600.5)  # AuthData.IsExpired: now > create_at + 600 s
    status, body = await exchange(sandbox, app, code)
    assert (status, body["id"]) == (403, "api.oauth.get_access_token.expired_code.app_error")
    status, body = await exchange(sandbox, app, code)  # removed when found expired
    assert (status, body["id"]) == (400, "api.oauth.get_access_token.expired_code.app_error")
    fresh = await code_for(browser, app)
    sandbox.set_clock(lambda: start + 600.5 + 599)
    status, _ = await exchange(sandbox, app, fresh)
    assert status == 200


async def test_the_form_is_checked_in_the_servers_order(api, sandbox, alice, browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    code = await code_for(browser, app)
    good = {"grant_type": "authorization_code", "client_id": app["id"], "client_secret": app["client_secret"],
            "code": code, "redirect_uri": CALLBACK}
    cases = [
        ({"grant_type": "password"}, 400, "api.oauth.get_access_token.bad_grant.app_error"),
        ({"grant_type": ""}, 400, "api.oauth.get_access_token.bad_grant.app_error"),
        ({"code": ""}, 400, "api.oauth.get_access_token.missing_code.app_error"),
        ({"grant_type": "refresh_token"}, 400, "api.oauth.get_access_token.missing_refresh_token.app_error"),
        ({"client_id": "short"}, 400, "api.oauth.get_access_token.bad_client_id.app_error"),
        ({"client_secret": ""}, 400, "api.oauth.get_access_token.bad_client_secret.app_error"),
        ({"client_id": "u" * 26}, 404, "api.oauth.get_access_token.credentials.app_error"),  # unknown client
        ({"client_secret": "wrong"}, 403, "api.oauth.get_access_token.credentials.app_error"),  # wrong secret
        ({"code": "n" * 52}, 400, "api.oauth.get_access_token.expired_code.app_error"),  # unknown code
        ({"redirect_uri": CALLBACK + "/other"}, 400, "api.oauth.get_access_token.redirect_uri.app_error"),
        ({"grant_type": "refresh_token", "refresh_token": "r" * 26}, 404,
         "api.oauth.get_access_token.refresh_token.app_error"),
    ]
    for change, status, error_id in cases:
        got, body, _ = await token_call(sandbox, {**good, **change})
        assert (got, body["id"]) == (status, error_id), change
        assert set(body) >= {"id", "message", "detailed_error", "request_id", "status_code"}  # AppError JSON
    # None of those refusals used the code up.
    status, _, _ = await token_call(sandbox, good)
    assert status == 200


async def test_refresh_replaces_both_tokens(api, sandbox, alice, browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    _, first = await exchange(sandbox, app, await code_for(browser, app))
    status, second = await refresh(sandbox, app, first["refresh_token"])
    assert status == 200 and second["expires_in"] == 720 * 3600 and second["token_type"] == "bearer"
    assert second["access_token"] != first["access_token"] and second["refresh_token"] != first["refresh_token"]
    assert await me_with(api, first["access_token"]) == 401
    assert await me_with(api, second["access_token"]) == 200
    status, body = await refresh(sandbox, app, first["refresh_token"])
    assert (status, body["id"]) == (404, "api.oauth.get_access_token.refresh_token.app_error")
    status, third = await refresh(sandbox, app, second["refresh_token"])
    assert status == 200 and await me_with(api, third["access_token"]) == 200


async def test_an_oauth_session_expires_and_signing_in_again_gives_a_new_one(api, sandbox, alice, browser) -> None:
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    start = sandbox.hub.clock()
    _, tokens = await exchange(sandbox, app, await code_for(browser, app))
    sandbox.set_clock(lambda: start + 720 * 3600 - 1)
    assert await me_with(api, tokens["access_token"]) == 200
    sandbox.set_clock(lambda: start + 720 * 3600 + 1)
    status, body, _ = await api.as_(tokens["access_token"]).get("/users/me")
    assert (status, body["id"]) == (401, "api.context.session_expired.app_error")
    # The refresh token still works after the session ended (it has no expiry of its own).
    status, renewed = await refresh(sandbox, app, tokens["refresh_token"])
    assert status == 200 and await me_with(api, renewed["access_token"]) == 200
    # A new code while the stored access data is expired rotates it (newSessionUpdateToken).
    sandbox.set_clock(lambda: start + 2 * 720 * 3600 + 2)
    status, again = await exchange(sandbox, app, await code_for(browser, app))
    assert status == 200 and again["access_token"] != renewed["access_token"]
    assert await me_with(api, again["access_token"]) == 200 and await me_with(api, renewed["access_token"]) == 401


async def test_state_is_echoed_and_checking_it_is_the_clients_business(api, sandbox, alice, browser) -> None:
    """The server stores the state with the code and sends it back unchanged; it never compares it with
    anything, so a callback with a forged or missing state is the client's (the bot's) to refuse: the
    code exchange itself does not look at state at all."""
    _, app = await register(api, is_trusted=True)
    await browser.login("alice")
    status, _, headers = await browser.get(authorize_path(app["id"], state="bound-to-my-browser"))
    query = query_of(headers["Location"])
    assert query["state"] == "bound-to-my-browser"
    status, tokens, _ = await token_call(sandbox, {"grant_type": "authorization_code", "client_id": app["id"],
                                                   "client_secret": app["client_secret"], "code": query["code"],
                                                   "redirect_uri": CALLBACK, "state": "something-else"})
    assert status == 200


# -- deauthorize -----------------------------------------------------------------------------------

async def test_deauthorize_revokes_the_users_tokens_and_the_approval(api, sandbox, alice, browser) -> None:
    _, app = await register(api)  # not trusted: the approval matters
    await browser.login("alice")
    pending = await code_for(browser, app)  # approves, and leaves a code unused
    _, tokens = await exchange(sandbox, app, await code_for(browser, app))
    status, listed, _ = await api.as_(ops.create_token(sandbox.state, alice.id)).get("/users/me/oauth/apps/authorized")
    assert status == 200 and [a["id"] for a in listed] == [app["id"]] and listed[0]["client_secret"] == ""
    status, body = await browser.post_json("/oauth/deauthorize", {"client_id": "bad"})
    assert (status, body["id"]) == (400, "api.context.invalid_body_param.app_error")
    status, body = await browser.post_json("/oauth/deauthorize", {"client_id": app["id"]}, xhr=False)
    assert status == 401  # a cookie without X-Requested-With
    status, body = await browser.post_json("/oauth/deauthorize", {"client_id": app["id"]})
    assert (status, body) == (200, {"status": "OK"})
    assert await me_with(api, tokens["access_token"]) == 401
    status, body = await refresh(sandbox, app, tokens["refresh_token"])
    assert (status, body["id"]) == (404, "api.oauth.get_access_token.refresh_token.app_error")
    status, body = await exchange(sandbox, app, pending)  # RemoveAuthDataByClientId
    assert (status, body["id"]) == (400, "api.oauth.get_access_token.expired_code.app_error")
    status, page, _ = await browser.get(authorize_path(app["id"]))
    assert status == 200 and 'id="authorize"' in page  # asked again


# -- the whole browser-shaped flow over HTTP -------------------------------------------------------

async def test_browser_flow_login_redirect_authorize_exchange_and_call_the_api(api, sandbox, alice,
                                                                               browser) -> None:
    _, app = await register(api, is_trusted=True)
    start = authorize_path(app["id"], state="csrf-123")
    status, _, headers = await browser.get(start)
    assert status == 302
    login_url = headers["Location"]
    assert urlsplit(login_url).path == "/login" and query_of(login_url)["redirect_to"] == start
    status, page, headers = await browser.get(login_url)
    assert status == 200 and 'id="login-form"' in page  # the web client signs in here
    assert headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")
    await browser.login("alice")  # what the login form posts
    status, _, headers = await browser.get(query_of(login_url)["redirect_to"])  # where it goes next
    assert status == 302 and headers["Location"].startswith(CALLBACK + "?")
    query = query_of(headers["Location"])
    assert query["state"] == "csrf-123"
    status, tokens = await exchange(sandbox, app, query["code"])
    assert status == 200
    status, me, _ = await api.as_(tokens["access_token"]).get("/users/me")
    assert status == 200 and me["username"] == "alice"


# -- the web client's header links -----------------------------------------------------------------

async def test_webclient_lists_trusted_apps_for_signed_in_people(api, sandbox, alice, browser) -> None:
    await register(api, name="Playbooks", is_trusted=True, homepage="http://127.0.0.1:8081/")
    await register(api, name="Untrusted", is_trusted=False)
    async with browser.session.get(f"{sandbox.url}/sandbox/webclient/apps") as resp:
        assert resp.status == 401
    await browser.login("alice")
    async with browser.session.get(f"{sandbox.url}/sandbox/webclient/apps") as resp:
        assert resp.status == 200
        links = await resp.json()
    assert [(a["name"], a["homepage"]) for a in links] == [("Playbooks", "http://127.0.0.1:8081/")]
    sandbox.state.config["EnableOAuthServiceProvider"] = False
    async with browser.session.get(f"{sandbox.url}/sandbox/webclient/apps") as resp:
        assert await resp.json() == []
