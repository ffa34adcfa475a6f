"""Signing in to an app "with your Mattermost account" in a real browser against the sandbox: the app sends
the browser to /oauth/authorize, the sandbox sends it to its login page (/login?redirect_to=...), the web
client signs in and goes back, the consent page asks, and Allow or Deny lands on the app's callback. Also
the header links to trusted apps (the Playbooks dashboard under `make run`) and the login page's refusal of
a redirect_to that leaves the server.

Only the sandbox runs here (no bot): a tiny aiohttp server on port 0 plays the app's callback."""
from __future__ import annotations

from typing import Any, AsyncIterator
from urllib.parse import parse_qs, quote_plus, urlsplit

import aiohttp
import pytest
from aiohttp import web

from sandbox import Sandbox
from sandbox.validation import assert_no_violations
from tests.browser.conftest import EXPECTED_CONSOLE, Shots
from tests.conftest import LOOPBACK, Api


@pytest.fixture
async def world() -> AsyncIterator[dict[str, Any]]:
    seen: list[dict[str, str]] = []

    async def callback(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.Response(text="the app's callback", content_type="text/html")

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/oauth/callback", callback)
    app.router.add_get("/favicon.ico", no_icon)  # Chromium asks for one
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    app_url = f"http://127.0.0.1:{port}"
    async with Sandbox(admin_token="admintoken", demo=True, validate=True, allow_internal=LOOPBACK) as sb, \
            aiohttp.ClientSession() as session:
        admin = Api(session, sb.url, sb.admin_token)
        apps = {}
        for name, trusted in (("Playbooks", True), ("Reports", False)):
            status, body, _ = await admin.post("/oauth/apps", {
                "name": name, "description": "", "homepage": f"{app_url}/{name.lower()}",
                "callback_urls": [f"{app_url}/oauth/callback"], "is_trusted": trusted})
            assert status == 201, body
            apps[name] = body
        yield {"sb": sb, "apps": apps, "app_url": app_url, "seen": seen, "session": session}
    await runner.cleanup()
    assert_no_violations(sb.state)


async def new_page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US", timezone_id="UTC")
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda m: m.type == "error" and not EXPECTED_CONSOLE.search(m.text) and console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    return context, page, console


def authorize_url(world: dict[str, Any], name: str, state: str) -> str:
    app = world["apps"][name]
    return (f"{world['sb'].url}/oauth/authorize?response_type=code&client_id={app['id']}"
            f"&redirect_uri={quote_plus(world['app_url'] + '/oauth/callback')}&state={state}")


async def sign_in(page: Any, name: str) -> None:
    await page.get_by_label("Username or email").fill(name)
    await page.get_by_label("Password").fill("demo")
    await page.get_by_role("button", name="Sign in").click()


async def test_sign_in_with_mattermost_consent_allow_and_deny(browser: Any, world: dict[str, Any],
                                                              shots: Shots) -> None:
    from playwright.async_api import expect

    context, page, console = await new_page(browser)
    await page.goto(authorize_url(world, "Reports", "s-allow"))
    assert urlsplit(page.url).path == "/login"  # not signed in: the sandbox's login page
    await shots.take(page, "alice", "login-with-redirect")
    await sign_in(page, "alice")
    await expect(page.get_by_text("Allow Reports access?")).to_be_visible()
    await shots.take(page, "alice", "consent")
    async with page.expect_navigation(url=f"{world['app_url']}/oauth/callback**"):
        await page.get_by_role("button", name="Allow").click()
    got = world["seen"][-1]
    assert got["state"] == "s-allow" and len(got["code"]) == 52
    # The app exchanges the code (a form post, no session) and calls the API with the token.
    app = world["apps"]["Reports"]
    async with world["session"].post(f"{world['sb'].url}/oauth/access_token", data={
            "grant_type": "authorization_code", "client_id": app["id"], "client_secret": app["client_secret"],
            "code": got["code"], "redirect_uri": f"{world['app_url']}/oauth/callback"}) as resp:
        assert resp.status == 200
        tokens = await resp.json()
    me = Api(world["session"], world["sb"].url, tokens["access_token"])
    status, user, _ = await me.get("/users/me")
    assert (status, user["username"]) == (200, "alice")
    # Approved once: the next visit goes straight to the callback.
    async with page.expect_navigation(url=f"{world['app_url']}/oauth/callback**"):
        await page.goto(authorize_url(world, "Reports", "s-again"))
    assert world["seen"][-1]["state"] == "s-again"
    assert not console, console
    await context.close()

    context, page, console = await new_page(browser)
    await page.goto(authorize_url(world, "Reports", "s-deny"))
    await sign_in(page, "bob")
    await expect(page.get_by_text("Allow Reports access?")).to_be_visible()
    async with page.expect_navigation(url=f"{world['app_url']}/oauth/callback**"):
        await page.get_by_role("button", name="Deny").click()
    # As the web app: redirect_uri + "?error=access_denied", without the state.
    assert parse_qs(urlsplit(page.url).query) == {"error": ["access_denied"]}
    assert not console, console
    await context.close()


async def test_trusted_app_goes_straight_back_and_shows_in_the_header(browser: Any, world: dict[str, Any],
                                                                      shots: Shots) -> None:
    from playwright.async_api import expect

    context, page, console = await new_page(browser)
    await page.goto(authorize_url(world, "Playbooks", "s-trusted"))
    async with page.expect_navigation(url=f"{world['app_url']}/oauth/callback**"):
        await sign_in(page, "alice")
    assert world["seen"][-1]["state"] == "s-trusted"
    await page.goto(world["sb"].url)
    await expect(page.locator("#channel-title")).to_have_text("Town Square")
    link = page.get_by_role("link", name="Playbooks")
    await expect(link).to_have_attribute("href", f"{world['app_url']}/playbooks")
    await expect(page.get_by_role("link", name="Reports")).to_have_count(0)  # not trusted: no link
    await shots.take(page, "alice", "header-link", focus=link)
    assert not console, console
    await context.close()


async def test_login_ignores_a_redirect_to_another_origin(browser: Any, world: dict[str, Any]) -> None:
    from playwright.async_api import expect

    context, page, console = await new_page(browser)
    for target in ("//evil.example/", "/\\evil.example/", "http://evil.example/"):
        await page.goto(f"{world['sb'].url}/login?redirect_to={quote_plus(target)}")
        await sign_in(page, "alice")
        await expect(page.locator("#channel-title")).to_have_text("Town Square")
        assert urlsplit(page.url).netloc == urlsplit(world["sb"].url).netloc and urlsplit(page.url).path == "/"
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Username or email")).to_be_visible()
    assert not console, console
    await context.close()
