"""The OpenAPI checker itself: a wrong response or an accepted bad request is caught, a good one passes."""
from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from sandbox.state import State, User
from sandbox.validation import (
    SPEC_EXCEPTIONS,
    SpecViolationError,
    assert_no_violations,
    load_spec,
    openapi_middleware,
    render_markdown,
    violations_of,
)

USER_ID = "q" * 26
CHANNEL_ID = "c" * 26
TEAM_ID = "t" * 26

Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


def json_response(data: Any, status: int = 200) -> web.Response:
    """What the real server sends: `Content-Type: application/json`, no charset."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def good_user() -> dict[str, Any]:
    return User(id=USER_ID, username="alice", email="alice@example.com").to_json()


class Harness:
    def __init__(self, state: State, session: aiohttp.ClientSession, url: str) -> None:
        self.state = state
        self.session = session
        self.url = url

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, **kw) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    @property
    def violations(self) -> list[Any]:
        return violations_of(self.state)


async def serve(routes: list[Route], fail_fast: bool = False) -> AsyncIterator[Harness]:
    state = State()
    app = web.Application(middlewares=[openapi_middleware(state, fail_fast=fail_fast)])
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        yield Harness(state, session, f"http://127.0.0.1:{port}")
    await runner.cleanup()


def app_error(status: int, error_id: str = "api.context.404.app_error") -> web.Response:
    return json_response({"id": error_id, "message": "m", "detailed_error": "", "request_id": "r",
                              "status_code": status}, status=status)


async def get_user_good(request: web.Request) -> web.Response:
    return json_response(good_user())


async def get_user_wrong_type(request: web.Request) -> web.Response:
    user = good_user()
    user["create_at"] = "yesterday"  # the spec says integer
    return json_response(user)


async def create_post(request: web.Request) -> web.Response:
    body = await request.json()  # the middleware has read the body already: it must still be readable
    return json_response({"id": "p" * 26, "channel_id": body.get("channel_id", ""), "message": "hi",
                              "create_at": 1, "update_at": 1, "delete_at": 0, "edit_at": 0,
                              "user_id": USER_ID, "root_id": "", "type": "", "props": {}}, status=201)


async def create_post_wrong_status(request: web.Request) -> web.Response:
    await request.json()
    return json_response({"id": "p" * 26, "message": "hi"}, status=200)  # the spec says 201


async def reject_bad_request(request: web.Request) -> web.Response:
    return app_error(400, "api.context.invalid_body_param.app_error")


async def not_found(request: web.Request) -> web.Response:
    return app_error(404)


async def not_json_error(request: web.Request) -> web.Response:
    return web.Response(status=403, text="no")


async def limited(request: web.Request) -> web.Response:
    return web.Response(status=429, text="limit exceeded", headers={"Retry-After": "1"})


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError("boom")


async def get_user_with_charset(request: web.Request) -> web.Response:
    return web.json_response(good_user())  # aiohttp adds "; charset=utf-8"


async def channel_posts(request: web.Request) -> web.Response:
    return json_response({"order": [], "posts": {}, "next_post_id": "", "prev_post_id": ""})


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async for h in serve([
        ("GET", "/api/v4/users/{user_id}", get_user_good),
        ("GET", "/api/v4/users/username/{username}", get_user_wrong_type),
        ("GET", "/api/v4/users/email/{email}", get_user_with_charset),
        ("POST", "/api/v4/posts", create_post),
        ("POST", "/api/v4/posts/ephemeral", create_post_wrong_status),
        ("POST", "/api/v4/channels", reject_bad_request),
        ("GET", "/api/v4/teams/{team_id}", not_found),
        ("GET", "/api/v4/teams/{team_id}/members", not_json_error),
        ("GET", "/api/v4/channels/{channel_id}", limited),
        ("GET", "/api/v4/channels/{channel_id}/posts", channel_posts),
        ("GET", "/api/v4/no_such_route", get_user_good),
        ("GET", "/api/v4/also_not_in_spec", not_found),
        ("GET", "/api/v4/websocket", get_user_good),
        ("GET", "/sandbox/anything", get_user_wrong_type),
        ("DELETE", "/api/v4/posts/{post_id}", crash),
    ]):
        yield h


async def test_a_good_response_passes(harness: Harness) -> None:
    status, body = await harness.call("GET", f"/api/v4/users/{USER_ID}")
    assert status == 200 and body["timezone"]["useAutomaticTimezone"] == "true"
    # The timezone strings pass only thanks to SPEC_EXCEPTIONS["user-timezone-strings"].
    assert harness.violations == []
    assert_no_violations(harness.state)


async def test_a_wrong_type_in_a_response_is_caught(harness: Harness) -> None:
    status, _ = await harness.call("GET", "/api/v4/users/username/alice")
    assert status == 200
    [violation] = harness.violations
    assert violation.kind == "response"
    assert violation.operation == "GET /api/v4/users/username/{username}"
    assert "$.create_at" in violation.message and "'integer'" in violation.message
    with pytest.raises(SpecViolationError, match="create_at"):
        assert_no_violations(harness.state)


async def test_a_content_type_with_charset_is_caught(harness: Harness) -> None:
    status, body = await harness.call("GET", "/api/v4/users/email/alice@example.com")
    assert status == 200 and body["id"] == USER_ID
    [violation] = harness.violations
    assert violation.kind == "header" and "charset=utf-8" in violation.message


async def test_a_valid_request_body_passes_and_stays_readable(harness: Harness) -> None:
    status, body = await harness.call("POST", "/api/v4/posts", json={"channel_id": CHANNEL_ID, "message": "hi"})
    assert status == 201 and body["channel_id"] == CHANNEL_ID
    assert harness.violations == []


async def test_an_accepted_invalid_request_body_is_caught(harness: Harness) -> None:
    status, _ = await harness.call("POST", "/api/v4/posts", json={"channel_id": CHANNEL_ID, "message": 5})
    assert status == 201
    [violation] = harness.violations
    assert violation.kind == "request"
    assert "$.message" in violation.message and "'string'" in violation.message


async def test_a_missing_required_field_that_is_accepted_is_caught(harness: Harness) -> None:
    await harness.call("POST", "/api/v4/posts", json={"message": "no channel"})
    [violation] = harness.violations
    assert "'channel_id' is a required property" in violation.message


async def test_a_rejected_invalid_request_is_not_a_violation(harness: Harness) -> None:
    status, body = await harness.call("POST", "/api/v4/channels", json={"team_id": 7})
    assert status == 400 and body["id"] == "api.context.invalid_body_param.app_error"
    assert harness.violations == []


async def test_an_accepted_bad_query_parameter_is_caught(harness: Harness) -> None:
    status, _ = await harness.call("GET", f"/api/v4/channels/{CHANNEL_ID}/posts", params={"page": "first"})
    assert status == 200
    [violation] = harness.violations
    assert violation.kind == "request" and "page" in violation.message


async def test_an_undeclared_success_status_is_caught(harness: Harness) -> None:
    await harness.call("POST", "/api/v4/posts/ephemeral",
                       json={"user_id": USER_ID, "post": {"channel_id": CHANNEL_ID, "message": "x"}})
    [violation] = harness.violations
    assert violation.kind == "response" and "status 200 is not declared" in violation.message


async def test_an_undeclared_error_status_must_still_be_an_app_error(harness: Harness) -> None:
    status, _ = await harness.call("GET", f"/api/v4/teams/{TEAM_ID}")
    assert status == 404
    assert harness.violations == []
    status, _ = await harness.call("GET", f"/api/v4/teams/{TEAM_ID}/members")
    assert status == 403
    [violation] = harness.violations
    assert "text/plain" in violation.message


async def test_rate_limit_text_plain_is_the_real_servers_answer(harness: Harness) -> None:
    status, body = await harness.call("GET", f"/api/v4/channels/{CHANNEL_ID}")
    assert (status, body) == (429, "limit exceeded")
    assert harness.violations == []


async def test_routes_outside_the_spec(harness: Harness) -> None:
    # Allow-listed (the WebSocket upgrade) and non-API routes are not checked at all.
    assert (await harness.call("GET", "/api/v4/websocket"))[0] == 200
    assert (await harness.call("GET", "/sandbox/anything"))[0] == 200
    # An unknown /api/v4 route answered 404 is the sandbox's (and the server's) unknown-route reply.
    assert (await harness.call("GET", "/api/v4/also_not_in_spec"))[0] == 404
    assert harness.violations == []
    # An /api/v4 route the spec does not describe, served anyway, is a violation.
    assert (await harness.call("GET", "/api/v4/no_such_route"))[0] == 200
    [violation] = harness.violations
    assert violation.kind == "route"


async def test_a_crashing_handler_is_recorded(harness: Harness) -> None:
    status, _ = await harness.call("DELETE", f"/api/v4/posts/{'p' * 26}")
    assert status == 500
    [violation] = harness.violations
    assert violation.kind == "crash" and "RuntimeError" in violation.message


async def test_fail_fast_answers_599() -> None:
    async for h in serve([("GET", "/api/v4/users/username/{username}", get_user_wrong_type)], fail_fast=True):
        status, body = await h.call("GET", "/api/v4/users/username/alice")
        assert status == 599 and "create_at" in body
        assert len(h.violations) == 1


def test_every_spec_exception_has_proof_and_applies() -> None:
    spec = load_spec()
    assert spec is load_spec()  # parsed once per process
    for exc in SPEC_EXCEPTIONS:
        assert "mattermost/mattermost" in exc.proof and ".go" in exc.proof, exc.id
    tz = spec.document["components"]["schemas"]["Timezone"]["properties"]["useAutomaticTimezone"]
    assert tz["type"] == "string"
    assert spec.find("GET", f"/api/v4/teams/{TEAM_ID}/commands/autocomplete_suggestions").template == \
        "/api/v4/teams/{team_id}/commands/autocomplete_suggestions"


def test_the_router_prefers_literal_segments() -> None:
    spec = load_spec()
    assert spec.find("POST", "/api/v4/channels/direct").template == "/api/v4/channels/direct"
    assert spec.find("GET", "/api/v4/users/tokens").template == "/api/v4/users/tokens"
    found = spec.find("GET", "/api/v4/users/me")
    assert found.template == "/api/v4/users/{user_id}" and found.variables == {"user_id": "me"}
    found = spec.find("GET", "/api/v4/teams/name/t1/channels/name/c1")
    assert found.variables == {"team_name": "t1", "channel_name": "c1"}


def test_the_checks_are_cheap() -> None:
    spec = load_spec()
    data = json_response(good_user()).body
    assert isinstance(data, bytes)
    for _ in range(20):  # warm up openapi-core's caches
        op = spec.find("GET", f"/api/v4/users/{USER_ID}")
        spec.request_errors(op, {}, {}, {}, b"", "")
        spec.response_errors(op, 200, data, "application/json")
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        op = spec.find("GET", f"/api/v4/users/{USER_ID}")
        assert spec.request_errors(op, {}, {}, {}, b"", "") == []
        assert spec.response_errors(op, 200, data, "application/json") == []
    per_call = (time.perf_counter() - started) / runs
    assert per_call < 0.01, f"{per_call * 1000:.2f} ms per exchange"


def test_spec_exceptions_md_is_up_to_date() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "sandbox" / "SPEC_EXCEPTIONS.md").read_text()
    assert doc == render_markdown(), "run: python -m sandbox.validation > sandbox/SPEC_EXCEPTIONS.md"


def test_the_report_counts_repeats_once() -> None:
    from sandbox.validation import Violation, format_violations

    same = [Violation("response", "GET", f"/api/v4/users/{n}", 200, "GET /api/v4/users/{user_id}", "bad")
            for n in ("a", "b")]
    header = [Violation("header", "GET", p, 200, op, "charset") for p, op in
              (("/api/v4/users/a", "GET /api/v4/users/{user_id}"), ("/api/v4/teams/t", "GET /api/v4/teams/{team_id}"))]
    report = format_violations(same + header)
    assert report.splitlines()[0].startswith("4 OpenAPI violation(s)")
    assert len(report.splitlines()) == 3 and report.count("(x2)") == 2
