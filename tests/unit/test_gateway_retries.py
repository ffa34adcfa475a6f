"""MattermostGateway's HTTP behaviour against a tiny scripted aiohttp server (port 0): retries, error ids,
timeouts, auth header. Backoff goes through an injected sleep that only records, so nothing sleeps."""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp import web

from bot.mattermost import CONNECTION_ERROR, RATE_LIMITED, TIMEOUT, MattermostGateway, RetryPolicy
from bot.models import MattermostError

USER = {"id": "u" * 26, "username": "bot", "roles": "system_user", "is_bot": True}


class Script:
    """Answers queued per (method, path); the last answer repeats. Records every request seen."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[Callable[[], web.StreamResponse]]] = {}
        self.seen: list[tuple[str, str, dict[str, str], Any]] = []
        self.release = asyncio.Event()  # hangs a `hang` answer until the test ends
        self.expect = 0  # `reached` is set once this many requests have arrived
        self.reached = asyncio.Event()

    def on(self, method: str, path: str, *answers: Callable[[], web.StreamResponse]) -> None:
        self.answers[(method, path)] = list(answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.seen.append((request.method, request.path, dict(request.headers),
                          json.loads(body) if body else None))
        if self.expect and len(self.seen) >= self.expect:
            self.reached.set()
        queue = self.answers.get((request.method, request.path))
        if not queue:
            return _app_error(404, "api.context.404.app_error")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if answer is HANG:
            await self.release.wait()
            return web.json_response(USER)
        return answer()


def HANG() -> web.StreamResponse:  # noqa: N802 - a marker answer
    raise AssertionError("never called")


def _app_error(status: int, error_id: str, request_id: str = "rid") -> web.Response:
    return web.json_response({"id": error_id, "message": "m", "detailed_error": "", "request_id": request_id,
                              "status_code": status}, status=status, headers={"X-Request-ID": request_id})


def ok(data: Any = USER, status: int = 200) -> Callable[[], web.Response]:
    return lambda: web.json_response(data, status=status)


def err(status: int, error_id: str) -> Callable[[], web.Response]:
    return lambda: _app_error(status, error_id)


def limited(retry_after: str | None = "3") -> Callable[[], web.Response]:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return lambda: web.Response(status=429, text="limit exceeded", headers=headers)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Script, str]]:
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield script, f"http://127.0.0.1:{port}"
    script.release.set()
    await runner.cleanup()


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def gateway(url: str, sleeps: Sleeps, token: str = "tok", **kw: Any) -> MattermostGateway:
    kw.setdefault("retry", RetryPolicy(attempts=4, backoff_base=0.5, backoff_max=10.0))
    return MattermostGateway(url, token, sleep=sleeps, random=lambda: 1.0, **kw)


async def test_bearer_header_and_dataclass(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("GET", "/api/v4/users/me", ok())
    gw = gateway(url, Sleeps())
    me = await gw.me()
    await gw.close()
    assert me.username == "bot" and me.is_bot
    assert script.seen[0][2]["Authorization"] == "Bearer tok"
    assert gw.calls == 1


async def test_url_with_subpath_and_default_port() -> None:
    gw = MattermostGateway("https://chat.example.com/mm/", "tok")
    assert gw.driver.client.url == "https://chat.example.com:443/mm/api/v4"
    await gw.close()
    with pytest.raises(ValueError):
        MattermostGateway("ftp://x", "tok")


async def test_429_honours_retry_after_then_succeeds(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("POST", "/api/v4/posts", limited("3"), limited("2"),
              ok({"id": "p" * 26, "channel_id": "c" * 26, "user_id": USER["id"], "message": "hi"}, 201))
    sleeps = Sleeps()
    gw = gateway(url, sleeps)
    post = await gw.create_post("c" * 26, "hi")  # a non-idempotent POST: 429 is still safe to retry
    await gw.close()
    assert post.message == "hi"
    assert sleeps == [3.0, 2.0]
    assert gw.calls == 3 and len(script.seen) == 3


async def test_429_without_retry_after_backs_off_and_gives_up_with_rate_limited_id(
        server: tuple[Script, str]) -> None:
    script, url = server
    script.on("GET", "/api/v4/users/me", limited(None))
    sleeps = Sleeps()
    gw = gateway(url, sleeps)
    with pytest.raises(MattermostError) as info:
        await gw.me()
    await gw.close()
    assert (info.value.status, info.value.error_id) == (429, RATE_LIMITED)
    assert info.value.message == "limit exceeded"
    assert sleeps == [0.5, 1.0, 2.0]  # random()=1.0 -> the full nominal delay each time
    assert len(script.seen) == 4


async def test_retry_after_too_long_is_not_waited(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("GET", "/api/v4/users/me", limited("3600"))
    sleeps = Sleeps()
    gw = gateway(url, sleeps)
    with pytest.raises(MattermostError) as info:
        await gw.me()
    await gw.close()
    assert info.value.status == 429 and sleeps == [] and len(script.seen) == 1


async def test_5xx_backoff_is_exponential_with_jitter(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("GET", "/api/v4/users/me", err(500, "app.x.y"), err(503, "app.x.y"), err(502, "app.x.y"), ok())
    sleeps = Sleeps()
    gw = MattermostGateway(url, "tok", sleep=sleeps, random=lambda: 0.0,
                           retry=RetryPolicy(attempts=4, backoff_base=1.0, backoff_max=3.0))
    me = await gw.me()
    await gw.close()
    assert me.id == USER["id"]
    # equal jitter with random()=0: half of min(max, base * 2**n)
    assert sleeps == [0.5, 1.0, 1.5]


async def test_5xx_gives_up_after_bounded_attempts_keeping_error_id(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("GET", "/api/v4/users/me", err(500, "app.user.get.app_error"))
    sleeps = Sleeps()
    gw = gateway(url, sleeps, retry=RetryPolicy(attempts=3))
    with pytest.raises(MattermostError) as info:
        await gw.me()
    await gw.close()
    assert (info.value.status, info.value.error_id, info.value.request_id) == (500, "app.user.get.app_error", "rid")
    assert (info.value.method, info.value.path) == ("GET", "/api/v4/users/me")
    assert len(sleeps) == 2 and len(script.seen) == 3


async def test_5xx_on_create_post_is_not_retried(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("POST", "/api/v4/posts", err(500, "app.post.save.app_error"))
    sleeps = Sleeps()
    gw = gateway(url, sleeps)
    with pytest.raises(MattermostError) as info:
        await gw.create_post("c" * 26, "hi")
    await gw.close()
    assert info.value.error_id == "app.post.save.app_error"
    assert sleeps == [] and len(script.seen) == 1


@pytest.mark.parametrize("status,error_id", [(400, "store.sql_channel.save_channel.exists.app_error"),
                                             (403, "api.context.permissions.app_error"),
                                             (404, "app.channel.get.existing.app_error"),
                                             (401, "api.context.session_expired.app_error")])
async def test_4xx_is_never_retried_and_keeps_id(server: tuple[Script, str], status: int, error_id: str) -> None:
    script, url = server
    script.on("GET", "/api/v4/channels/" + "c" * 26, err(status, error_id))
    sleeps = Sleeps()
    gw = gateway(url, sleeps)
    with pytest.raises(MattermostError) as info:
        await gw.get_channel("c" * 26)
    await gw.close()
    assert (info.value.status, info.value.error_id) == (status, error_id)
    assert sleeps == [] and len(script.seen) == 1


async def test_timeout_raises_gateway_timeout(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("GET", "/api/v4/users/me", HANG)
    sleeps = Sleeps()
    # The read timeout is the one real wait in this file: it is what is under test.
    gw = gateway(url, sleeps, timeout=0.2, retry=RetryPolicy(attempts=2))
    with pytest.raises(MattermostError) as info:
        await gw.me()
    await gw.close()
    assert (info.value.status, info.value.error_id) == (0, TIMEOUT)
    assert len(sleeps) == 1  # a GET is retried once, then the timeout surfaces


async def test_read_timeout_on_post_is_not_retried(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("POST", "/api/v4/posts", HANG)
    sleeps = Sleeps()
    gw = gateway(url, sleeps, timeout=0.2)
    with pytest.raises(MattermostError) as info:
        await gw.create_post("c" * 26, "hi")
    await gw.close()
    assert info.value.error_id == TIMEOUT and sleeps == [] and len(script.seen) == 1


async def test_connection_refused_retries_even_a_post() -> None:
    # Bind and release a port so nothing listens there: the connection is refused before sending.
    runner = web.AppRunner(web.Application(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()
    sleeps = Sleeps()
    gw = gateway(f"http://127.0.0.1:{port}", sleeps, retry=RetryPolicy(attempts=3))
    with pytest.raises(MattermostError) as info:
        await gw.create_post("c" * 26, "hi")
    await gw.close()
    assert (info.value.status, info.value.error_id) == (0, CONNECTION_ERROR)
    assert len(sleeps) == 2


async def test_json_with_charset_is_parsed_and_body_sent(server: tuple[Script, str]) -> None:
    script, url = server
    # The stock driver returns a raw Response unless Content-Type is exactly application/json.
    script.on("POST", "/api/v4/users/ids", lambda: web.Response(
        text=json.dumps([USER]), content_type="application/json", charset="utf-8"))
    gw = gateway(url, Sleeps())
    users = await gw.get_users_by_ids([USER["id"], "x" * 26])
    assert await gw.get_users_by_ids([]) == []  # no call: the server 400s an empty list
    await gw.close()
    assert [u.id for u in users] == [USER["id"]]
    assert script.seen[0][3] == [USER["id"], "x" * 26]
    assert gw.calls == 1


async def test_calls_run_concurrently_off_the_loop(server: tuple[Script, str]) -> None:
    script, url = server
    script.on("GET", "/api/v4/users/me", HANG)
    script.expect = 4
    gw = gateway(url, Sleeps(), max_workers=4)
    tasks = [asyncio.create_task(gw.me()) for _ in range(4)]
    # All four requests are held open by the server at once, and the loop stays free to serve them.
    await asyncio.wait_for(script.reached.wait(), 5)
    assert len(script.seen) == 4
    script.release.set()
    results = await asyncio.gather(*tasks)
    await gw.close()
    assert all(r.id == USER["id"] for r in results)


# -- the same rules against the sandbox's fault injection -------------------------------------------------

async def test_against_sandbox_faults() -> None:
    import secrets

    from sandbox import Sandbox

    async with Sandbox(admin_token=secrets.token_hex(13), validate=True) as sb:
        sleeps = Sleeps()
        gw = gateway(sb.url, sleeps, sb.admin_token)
        sb.fail("GET", r"/api/v4/users/me", 429, times=2)  # text/plain `limit exceeded`, Retry-After: 1
        assert (await gw.me()).username == "sysadmin"
        assert sleeps == [1.0, 1.0]
        sb.fail("GET", r"/api/v4/users/me", 503, times=1)
        await gw.me()
        assert sleeps[2:] == [0.5]
        sb.fail("POST", r"/api/v4/posts", 503, times=1)
        await expect_sandbox_error(gw.create_post("c" * 26, "x"), 503, "app.sandbox.injected_fault.app_error")
        assert len(sleeps) == 3  # a POST that may have been processed is not repeated
        await expect_sandbox_error(gw.get_channel("c" * 26), 404, "app.channel.get.existing.app_error")
        assert len(sleeps) == 3
        await gw.close()


async def expect_sandbox_error(coro: Any, status: int, error_id: str) -> None:
    with pytest.raises(MattermostError) as info:
        await coro
    assert (info.value.status, info.value.error_id) == (status, error_id)
    assert info.value.request_id  # the server's X-Request-ID / body request_id, for support
