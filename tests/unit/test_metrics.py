"""`/metrics` in parts: the exposition of a database snapshot and of a process's counters, the gateway's
timing of each Mattermost call, who may scrape, and the `[metrics] token` setting."""
from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, load_settings
from bot.mattermost import MattermostGateway, RetryPolicy
from bot.metrics import ProcessMetrics, exposition
from bot.models import MattermostError
from bot.server import metrics_refusal
from storage.metrics import Snapshot

SNAPSHOT = Snapshot(runs_active=3, runs_created=7, runs_finished=5, reminders_outstanding=2, reminders_due=1,
                    updates_overdue=1, retros_outstanding=4, active_participants=6, active_followers=2)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, as Prometheus would parse the page."""
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_the_snapshot_is_exposed_with_the_plugins_names() -> None:
    text = exposition(ProcessMetrics(), SNAPSHOT)
    got = samples(text)
    expected = {
        "playbooks_database_up": 1, "playbooks_runs_active_total": 3, "playbooks_runs_created_total": 7,
        "playbooks_runs_finished_total": 5, "playbooks_reminders_outstanding_total": 2,
        "playbooks_reminders_due_total": 1, "playbooks_status_updates_overdue_total": 1,
        "playbooks_retros_outstanding_total": 4, "playbooks_active_participants_total": 6,
        "playbooks_active_followers_total": 2,
    }
    for name, value in expected.items():
        assert got[(name, ())] == value, name
    assert b"# TYPE playbooks_runs_active_total gauge" in text
    assert b"# TYPE playbooks_runs_created_total counter" in text
    assert b"# HELP playbooks_retros_outstanding_total Finished runs whose retrospective" in text


def test_without_the_database_only_the_process_counters_and_database_up_0() -> None:
    process = ProcessMetrics()
    process.webhook_failed("run_finished")
    got = samples(exposition(process, None))
    assert got[("playbooks_database_up", ())] == 0
    assert not any(name == "playbooks_runs_active_total" for name, _ in got)
    assert got[("playbooks_webhook_delivery_failures_total", (("event", "run_finished"),))] == 1


def test_process_counters_are_per_instance_not_global() -> None:
    first, second = ProcessMetrics(), ProcessMetrics()
    first.request("click")
    first.request("click")
    first.mattermost_call("create_post", 200, 0.02)
    first.mattermost_call("create_post", 503, 0.5)
    second.request("command")
    a, b = samples(exposition(first, SNAPSHOT)), samples(exposition(second, SNAPSHOT))
    assert a[("playbooks_requests_total", (("kind", "click"),))] == 2
    assert ("playbooks_requests_total", (("kind", "command"),)) not in a
    assert b[("playbooks_requests_total", (("kind", "command"),))] == 1
    assert a[("playbooks_mattermost_errors_total", (("method", "create_post"), ("status", "503")))] == 1
    assert ("playbooks_mattermost_errors_total", (("method", "create_post"), ("status", "200"))) not in a
    hist = ("playbooks_mattermost_request_duration_seconds_count", (("method", "create_post"), ("status", "200")))
    assert a[hist] == 1
    assert a[("playbooks_mattermost_request_duration_seconds_bucket",
              (("le", "0.025"), ("method", "create_post"), ("status", "200")))] == 1


@pytest.fixture
async def mattermost() -> AsyncIterator[str]:
    """A stand-in answering GET /api/v4/users/me, and 404 with an AppError for any other user."""
    async def user(request: web.Request) -> web.Response:
        if request.match_info["id"] == "me":
            return web.json_response({"id": "u" * 26, "username": "bot", "roles": "system_user"})
        return web.json_response({"id": "app.user.missing.app_error", "message": "m", "status_code": 404},
                                 status=404)

    app = web.Application()
    app.router.add_get("/api/v4/users/{id}", user)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_the_gateway_times_each_call_by_its_method_and_status(mattermost: str) -> None:
    gateway = MattermostGateway(mattermost, "tok", retry=RetryPolicy(attempts=1))
    try:
        await gateway.me()
        await gateway.me()
        with pytest.raises(MattermostError):
            await gateway.get_user("x" * 26)
    finally:
        await gateway.close()
    got = samples(exposition(gateway.metrics, None))
    assert got[("playbooks_mattermost_request_duration_seconds_count", (("method", "me"), ("status", "200")))] == 2
    assert got[("playbooks_mattermost_request_duration_seconds_count",
                (("method", "get_user"), ("status", "404")))] == 1
    assert got[("playbooks_mattermost_errors_total", (("method", "get_user"), ("status", "404")))] == 1
    assert ("playbooks_mattermost_errors_total", (("method", "me"), ("status", "200"))) not in got


def scrape(remote: str, headers: dict[str, str] | None = None) -> web.Request:
    return make_mocked_request("GET", "/metrics", headers=headers or {}).clone(remote=remote)


TOKEN = "s3cret-metrics-token"


@pytest.mark.parametrize("remote", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.0.2"])
def test_this_machine_may_scrape_without_a_token(remote: str) -> None:
    assert metrics_refusal(scrape(remote), "") is None
    assert metrics_refusal(scrape(remote), TOKEN) is None


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_request_a_proxy_forwarded_is_not_from_this_machine(header: str) -> None:
    refusal = metrics_refusal(scrape("127.0.0.1", {header: "203.0.113.9"}), "")
    assert refusal is not None and refusal[0] == 403 and "[metrics] token" in refusal[1]


def test_elsewhere_needs_the_token() -> None:
    status, text = metrics_refusal(scrape("10.1.2.3"), "") or (0, "")
    assert status == 403 and "only requests from this machine" in text
    status, text = metrics_refusal(scrape("10.1.2.3"), TOKEN) or (0, "")
    assert status == 401 and "Authorization: Bearer" in text
    status, text = metrics_refusal(scrape("10.1.2.3", {"Authorization": "Bearer wrong-token-xxxxxxx"}), TOKEN) \
        or (0, "")
    assert status == 401 and "not this bot's [metrics] token" in text
    assert metrics_refusal(scrape("10.1.2.3", {"Authorization": f"Bearer {TOKEN}"}), TOKEN) is None
    # A token sent where none is configured proves nothing.
    assert metrics_refusal(scrape("10.1.2.3", {"Authorization": f"Bearer {TOKEN}"}), "") is not None


def test_the_metrics_token_setting(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(f'[metrics]\ntoken = "{TOKEN}"\n')
    assert load_settings(path, env={}).metrics.token == TOKEN
    assert load_settings(path, env={"BOT_METRICS_TOKEN": "another-token-of-length"}).metrics.token == \
        "another-token-of-length"
    assert TOKEN not in repr(load_settings(path, env={}))
    path.write_text('[metrics]\ntoken = "short"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == (f"{path}: [metrics] token: expected a token of at least 16 letters, digits or "
                               f"punctuation (no spaces), or \"\" for loopback only, got a value of 5 characters")
    assert "short" not in str(info.value)
    path.write_text('[metrics]\n')
    assert load_settings(path, env={}).metrics.token == ""
