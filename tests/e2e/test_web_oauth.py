"""Signing in to the web view with a Mattermost account, through the sandbox's OAuth 2.0 provider as a
browser would (cookies kept, redirects followed by hand), and the attacks on it: a forged or replayed
callback, a state from another browser, a code used twice. Each is refused and starts no session."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from yarl import URL

from bot import signin
from bot.models import MattermostError
from storage import web as web_rows
from tests.e2e.conftest import World


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def mattermost_sign_in(browser: aiohttp.ClientSession, world: World, who: str) -> None:
    """The person signs in to Mattermost in this browser (its session cookie), as on its login page."""
    async with browser.post(f"{world.sb.url}/api/v4/users/login",
                            json={"login_id": who, "password": "Password1!"}) as r:
        assert r.status == 200, await r.text()


async def authorize(browser: aiohttp.ClientSession, world: World, next_path: str = "/") -> tuple[str, dict[str, Any]]:
    """/login on the bot, then Mattermost's /oauth/authorize: the callback URL Mattermost sends the browser
    to, and its query."""
    async with browser.get(f"{world.bot.url}/login?next={next_path}", allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        authorize_url = r.headers["Location"]
    assert authorize_url.startswith(f"{world.sb.url}/oauth/authorize?")
    async with browser.get(authorize_url, allow_redirects=False) as r:
        assert r.status == 302, await r.text()  # a trusted app: no consent page
        callback = r.headers["Location"]
    assert callback.startswith(f"{world.bot.url}/oauth/callback?")
    return callback, {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}


async def session_user(world: World, browser: aiohttp.ClientSession) -> str | None:
    cookie = browser.cookie_jar.filter_cookies(URL(world.bot.url)).get("pb_session")
    if cookie is None:
        return None
    assert world.bot.ctx is not None
    row = await world.bot.ctx.db.run(web_rows.get_session, signin.key_of(cookie.value), world.clock.now_ms())
    return row.user_id if row else None


async def test_signing_in_with_mattermost_starts_a_session_for_that_person(world: World) -> None:
    assert world.bot.ctx is not None and world.bot.ctx.sign_in is not None
    assert world.bot.ctx.sign_in.app is not None, world.bot.ctx.sign_in.reason  # the bot registered its app
    async with jar() as browser:
        await mattermost_sign_in(browser, world, "carol")
        callback, _query = await authorize(browser, world, "/runs")
        async with browser.get(callback, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
            assert r.headers["Location"] == "/runs"
        assert await session_user(world, browser) == world["carol"].id
        # The token the bot holds is encrypted at rest and works as carol's.
        cookie = browser.cookie_jar.filter_cookies(URL(world.bot.url))["pb_session"].value
        row = await world.bot.ctx.db.run(web_rows.get_session, signin.key_of(cookie), world.clock.now_ms())
        assert row is not None and row.access_token and "carol" not in row.access_token
        token = world.bot.ctx.sign_in.box.open(row.access_token)
        async with browser.get(f"{world.sb.url}/api/v4/users/me", headers={"Authorization": f"Bearer {token}"},
                               cookies={}) as r:
            assert (await r.json())["id"] == world["carol"].id
        # Signing out revokes it in Mattermost.
        async with browser.post(f"{world.bot.url}/logout", data={"csrf": row.csrf},
                                headers={"Origin": world.bot.url}) as r:
            assert r.status == 200
        async with aiohttp.ClientSession() as plain:
            async with plain.get(f"{world.sb.url}/api/v4/users/me", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 401


async def test_a_forged_state_or_one_from_another_browser_is_refused(world: World) -> None:
    async with jar() as alice, jar() as mallory:
        await mattermost_sign_in(alice, world, "alice")
        callback, query = await authorize(alice, world)
        # Mallory makes alice's browser open a callback with mallory's own code and state (login CSRF):
        await mattermost_sign_in(mallory, world, "dave")
        mallory_callback, _ = await authorize(mallory, world)
        async with alice.get(mallory_callback, allow_redirects=False) as r:
            assert r.status == 400
        assert await session_user(world, alice) is None
        # A made-up state, or none at all.
        forged = callback.replace(query["state"], "x" * len(query["state"]))
        async with alice.get(forged, allow_redirects=False) as r:
            assert r.status == 400
        async with alice.get(f"{world.bot.url}/oauth/callback?code={query['code']}", allow_redirects=False) as r:
            assert r.status == 400
        assert await session_user(world, alice) is None


async def test_a_replayed_callback_is_refused(world: World) -> None:
    async with jar() as browser:
        await mattermost_sign_in(browser, world, "alice")
        callback, query = await authorize(browser, world)
        async with browser.get(callback, allow_redirects=False) as r:
            assert r.status == 303
        assert await session_user(world, browser) == world["alice"].id
        first = browser.cookie_jar.filter_cookies(URL(world.bot.url))["pb_session"].value
    # The same callback again (its state spent, its code used): no second session.
    async with jar() as replay:
        replay.cookie_jar.update_cookies({"pb_oauth_state": query["state"]},
                                         response_url=URL(f"{world.bot.url}/oauth/callback"))
        async with replay.get(callback, allow_redirects=False) as r:
            assert r.status == 400
        assert "pb_session" not in {c.key for c in replay.cookie_jar}
    # And the code alone, presented to Mattermost a second time, is refused there too.
    assert world.bot.ctx is not None and world.bot.ctx.sign_in and world.bot.ctx.sign_in.app
    app = world.bot.ctx.sign_in.app
    async with aiohttp.ClientSession() as plain:
        async with plain.post(f"{world.sb.url}/oauth/access_token", data={
                "grant_type": "authorization_code", "client_id": app.client_id, "client_secret": app.client_secret,
                "code": query["code"], "redirect_uri": world.bot.ctx.sign_in.callback_url}) as r:
            assert r.status in (400, 403), await r.text()
    assert first


async def test_declining_on_the_consent_page_signs_nobody_in(world: World) -> None:
    async with jar() as browser:
        async with browser.get(f"{world.bot.url}/login", allow_redirects=False) as r:
            authorize_url = r.headers["Location"]
        state = parse_qs(urlsplit(authorize_url).query)["state"][0]
        async with browser.get(f"{world.bot.url}/oauth/callback?error=access_denied&state={state}",
                               allow_redirects=False) as r:
            assert r.status == 403
            assert "did not allow" in await r.text()
        assert await session_user(world, browser) is None


async def test_the_dashboard_command_points_to_the_sign_in_page(world: World) -> None:
    status, body = await world["bob"].command(world.town_square, "/playbook dashboard")
    assert status == 200, body
    assert f"({world.bot.url}/runs)" in body["text"] and "/signin/" not in body["text"]


async def signed_in_with_oauth(world: World, who: str) -> tuple[aiohttp.ClientSession, str]:
    browser = jar()
    await mattermost_sign_in(browser, world, who)
    callback, _ = await authorize(browser, world)
    async with browser.get(callback, allow_redirects=False) as r:
        assert r.status == 303
    key = signin.key_of(browser.cookie_jar.filter_cookies(URL(world.bot.url))["pb_session"].value)
    return browser, key


async def test_a_token_near_its_end_is_refreshed_and_a_revoked_one_signs_out(world: World) -> None:
    assert world.bot.ctx is not None and world.bot.ctx.sign_in is not None
    ctx, box = world.bot.ctx, world.bot.ctx.sign_in.box
    browser, key = await signed_in_with_oauth(world, "carol")
    try:
        row = await ctx.db.run(web_rows.get_session, key, world.clock.now_ms())
        assert row is not None
        old_token = box.open(row.access_token)
        # Twelve hours left on carol's Mattermost token: the next page swaps it for a fresh one.
        await ctx.db.run(web_rows.update_tokens, key, row.access_token, row.refresh_token,
                         world.clock.now_ms() + 12 * 3600_000)
        async with browser.get(f"{world.bot.url}/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/runs"  # still signed in
        row = await ctx.db.run(web_rows.get_session, key, world.clock.now_ms())
        assert row is not None and row.token_expires_at > world.clock.now_ms() + 29 * 24 * 3600_000
        new_token = box.open(row.access_token)
        assert new_token and new_token != old_token
        async with aiohttp.ClientSession() as plain:
            async with plain.get(f"{world.sb.url}/api/v4/users/me",
                                 headers={"Authorization": f"Bearer {old_token}"}) as r:
                assert r.status == 401  # Mattermost replaced it
            # Carol revokes the bot's access in Mattermost; near its end again, the refresh is refused.
            assert ctx.sign_in.app is not None
            async with plain.post(f"{world.sb.url}/oauth/deauthorize", json={"client_id": ctx.sign_in.app.client_id},
                                  headers={"Authorization": f"Bearer {new_token}"}) as r:
                assert r.status == 200, await r.text()
        await ctx.db.run(web_rows.update_tokens, key, row.access_token, row.refresh_token,
                         world.clock.now_ms() + 3600_000)
        async with browser.get(f"{world.bot.url}/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"].startswith("/login")
        assert await ctx.db.run(web_rows.get_session, key, world.clock.now_ms()) is None
    finally:
        await browser.close()


async def test_a_refresh_mattermost_cannot_answer_now_keeps_the_session(world: World,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5xx or a 429 from the token endpoint is "unavailable": the session stays (signed in, same tokens)
    and the refresh is tried again on a later page."""
    assert world.bot.ctx is not None and world.bot.ctx.sign_in is not None
    ctx = world.bot.ctx
    browser, key = await signed_in_with_oauth(world, "carol")
    try:
        row = await ctx.db.run(web_rows.get_session, key, world.clock.now_ms())
        assert row is not None
        await ctx.db.run(web_rows.update_tokens, key, row.access_token, row.refresh_token,
                         world.clock.now_ms() + 3600_000)
        world.sb.fail("POST", "/oauth/access_token", 502)
        async with browser.get(f"{world.bot.url}/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/runs"  # still signed in
        slowed = MattermostError(429, "gateway.rate_limited", "limit exceeded", "", "POST", "/oauth/access_token")

        async def too_many(fields: dict[str, str]) -> Any:
            raise slowed

        monkeypatch.setattr(ctx.gateway, "oauth_token", too_many)
        now = world.clock.now_ms()
        row = await ctx.db.run(web_rows.get_session, key, now)
        assert row is not None
        assert await signin.refresh(ctx, ctx.sign_in, row, now) == ("unavailable", "")
        async with browser.get(f"{world.bot.url}/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/runs"
        monkeypatch.undo()
        kept = await ctx.db.run(web_rows.get_session, key, world.clock.now_ms())
        assert kept is not None and kept.access_token == row.access_token
        async with browser.get(f"{world.bot.url}/", allow_redirects=False) as r:
            assert r.status == 303
        fresh = await ctx.db.run(web_rows.get_session, key, world.clock.now_ms())
        assert fresh is not None and fresh.access_token != row.access_token  # refreshed once it answered
    finally:
        await browser.close()


async def test_with_the_provider_off_people_get_one_time_links(world: World) -> None:
    assert world.bot.ctx is not None
    status, body, _ = await world.admin.put("/config/patch", {"ServiceSettings": {"EnableOAuthServiceProvider": False}})
    assert status == 200, body
    world.bot.ctx.sign_in = await signin.prepare(world.bot.ctx)  # as at the bot's next start
    assert world.bot.ctx.sign_in.app is None
    assert "OAuth 2.0 service provider is off" in world.bot.ctx.sign_in.reason
    async with jar() as browser:
        async with browser.get(f"{world.bot.url}/login", allow_redirects=False) as r:
            assert r.status == 200
            assert "/playbook dashboard" in await r.text()
    status, body = await world["bob"].command(world.town_square, "/playbook dashboard")
    assert "/signin/" in body["text"] and "works once" in body["text"]
