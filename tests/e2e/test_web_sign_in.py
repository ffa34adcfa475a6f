"""The web view's doors where Mattermost's OAuth sign-in is not used (`[web] register = false`, no app): a
page needs a session, a one-time link signs in once, a form needs the session's CSRF token and this site's
origin, and signing out ends the session."""
from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from yarl import URL

from bot import signin
from storage import web as web_rows
from tests.e2e.conftest import INCIDENT, World


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT},
            "env": {"BOT_WEB_REGISTER": "false"}}


async def test_pages_need_a_session_and_a_link_signs_in_once(world: World) -> None:
    base = world.bot.url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as anonymous:
        async with anonymous.get(f"{base}/?status=finished", allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/login?next=%2F%3Fstatus%3Dfinished"
        assert world.bot.ctx is not None
        link = await signin.new_link(world.bot.ctx, world["alice"].id)
        # Opening the link (as a link preview or a mail scanner would) spends nothing: a page with a button.
        for _ in range(2):
            async with anonymous.get(link, allow_redirects=False) as r:
                assert r.status == 200 and "pb_session" not in r.cookies
                page = await r.text()
                assert "@alice" in page and '<form method="post">' in page
        # A page on another site cannot press it for the browser (it would sign it in as the link's owner).
        async with anonymous.post(link, allow_redirects=False, headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403 and "pb_session" not in r.cookies
        async with anonymous.post(link, allow_redirects=False, headers={"Origin": base}) as r:
            assert r.status == 303 and r.headers["Location"] == "/runs"
            cookie = r.cookies["pb_session"]
            assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # The same link a second time, in another browser: spent.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        async with other.get(link, allow_redirects=False) as r:
            assert r.status == 400
            assert "/playbook dashboard" in await r.text()
        async with other.post(link, allow_redirects=False, headers={"Origin": base}) as r:
            assert r.status == 400
            assert "pb_session" not in r.cookies


async def test_the_dashboard_command_gives_a_link_only_its_person_can_use(world: World) -> None:
    assert world.bot.ctx is not None and world.bot.ctx.sign_in is not None
    assert world.bot.ctx.sign_in.app is None and "register = false" in world.bot.ctx.sign_in.reason
    status, body = await world["bob"].command(world.town_square, "/playbook dashboard")
    assert status == 200, body
    match = re.search(r"\((http://[^)]+/signin/[^)]+)\)", body["text"])
    assert match, body["text"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(match.group(1), allow_redirects=False, headers={"Origin": world.bot.url}) as r:
            assert r.status == 303
        assert world.bot.ctx is not None
        key = signin.key_of(browser.cookie_jar.filter_cookies(URL(world.bot.url))["pb_session"].value)
        row = await world.bot.ctx.db.run(web_rows.get_session, key, world.clock.now_ms())
        assert row is not None and row.user_id == world["bob"].id
    status, body = await world["bob"].command(world.town_square, "/playbook dashboard please")
    assert "takes no arguments" in body["text"]


async def test_sign_out_needs_the_csrf_token_and_this_origin(world: World) -> None:
    browser = await world.browser("alice")
    base = world.bot.url
    cookie = browser.cookie_jar.filter_cookies(URL(base))["pb_session"].value
    assert world.bot.ctx is not None
    row = await world.bot.ctx.db.run(web_rows.get_session, signin.key_of(cookie), world.clock.now_ms())
    assert row is not None
    # Another site posting with the stolen cookie but without the token: refused, still signed in.
    async with browser.post(f"{base}/logout", data={"csrf": "guess"},
                            headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403
    # The right token from another origin: refused too.
    async with browser.post(f"{base}/logout", data={"csrf": row.csrf},
                            headers={"Origin": "http://evil.example"}) as r:
        assert r.status == 403
    # From this site with the token: signed out, and the cookie no longer opens anything.
    async with browser.get(f"{base}/", allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/runs"  # signed in
    async with browser.post(f"{base}/logout", data={"csrf": row.csrf}, headers={"Origin": base}) as r:
        assert r.status == 200
        assert "Signed out" in await r.text()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as thief:
        thief.cookie_jar.update_cookies({"pb_session": cookie})
        async with thief.get(f"{base}/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith("/login")
