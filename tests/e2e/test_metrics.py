"""`GET /metrics` on the real bot: the gauges follow what people do in chat, two bot processes on one
database report the same numbers, and a scrape from elsewhere without the token is refused."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import BotApp
from tests.e2e.conftest import World
from tests.e2e.test_finish_retro import finish_with_confirmation
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_status_updates import MIN, follow

TOKEN = "metrics-token-for-the-tests"

# The gauges computed from the rows, which every process sharing the database must agree on.
FROM_ROWS = ("playbooks_database_up", "playbooks_runs_active_total", "playbooks_runs_created_total",
             "playbooks_runs_finished_total", "playbooks_reminders_outstanding_total",
             "playbooks_reminders_due_total", "playbooks_status_updates_overdue_total",
             "playbooks_retros_outstanding_total", "playbooks_active_participants_total",
             "playbooks_active_followers_total")


@pytest.fixture
def world_options(world_options: dict[str, Any]) -> dict[str, Any]:
    return {**world_options, "env": {"BOT_METRICS_TOKEN": TOKEN}}


async def scrape(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics", headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, content_type, text = await scrape(url)
    assert status == 200, text
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def gauges(got: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {name: got[(name, ())] for name in FROM_ROWS}


async def test_the_gauges_follow_a_run_started_in_chat_and_finished(world: World) -> None:
    before = gauges(await metrics(world.bot.url))
    assert before == {**dict.fromkeys(FROM_ROWS, 0), "playbooks_database_up": 1}

    run = await start_incident(world)  # owner alice, members bob and carol, status updates every 30 min
    await follow(world, run["id"], "dave")
    got = await metrics(world.bot.url)
    assert gauges(got) == {**before, "playbooks_runs_active_total": 1, "playbooks_runs_created_total": 1,
                           "playbooks_reminders_outstanding_total": 1, "playbooks_active_participants_total": 3,
                           "playbooks_active_followers_total": 1}
    # This process's own counters: the command it was sent and the Mattermost calls it made.
    assert got[("playbooks_requests_total", (("kind", "command"),))] == 1
    assert got[("playbooks_mattermost_request_duration_seconds_count",
                (("method", "create_channel"), ("status", "200")))] == 1

    # The update falls due: the reminder is due (not yet posted) and the update overdue.
    world.clock.advance(31 * MIN)
    due = gauges(await metrics(world.bot.url))
    assert (due["playbooks_reminders_due_total"], due["playbooks_status_updates_overdue_total"]) == (1, 1)
    assert world.bot.scheduler is not None
    assert await world.bot.scheduler.run_due() == 1
    await world.settle()
    posted = gauges(await metrics(world.bot.url))
    assert (posted["playbooks_reminders_due_total"], posted["playbooks_status_updates_overdue_total"]) == (0, 1)

    await finish_with_confirmation(world, run)
    done = gauges(await metrics(world.bot.url))
    assert done == {**before, "playbooks_runs_created_total": 1, "playbooks_runs_finished_total": 1,
                    "playbooks_retros_outstanding_total": 1}

    # The retrospective declined: nothing outstanding any more.
    status, body = await world["alice"].command(run["channel_id"], "/playbook retro cancel")
    assert status == 200, body
    await world.settle()
    assert gauges(await metrics(world.bot.url))["playbooks_retros_outstanding_total"] == 0


async def test_two_bot_processes_on_one_database_report_the_same(world: World) -> None:
    first = world.bot
    second = await BotApp(replace(first.settings), clock=world.clock).start()  # /playbook now points here
    world.bot = second
    try:
        for n in range(3):
            status, body = await world["alice"].command(world.town_square, f"/playbook run incident Outage {n}")
            assert status == 200, body
        await second.ctx.tasks.drain()
        one, two = await metrics(first.url), await metrics(second.url)
        assert gauges(one) == gauges(two)
        assert gauges(two)["playbooks_runs_active_total"] == 3
        # The process counters are each process's own: only the second was asked to start runs.
        assert two[("playbooks_requests_total", (("kind", "command"),))] == 3
        assert ("playbooks_requests_total", (("kind", "command"),)) not in one
    finally:
        world.bot = first
        await second.stop()


async def test_a_scrape_from_elsewhere_needs_the_token(world: World) -> None:
    # Through a proxy (which says whom it forwards for), the request is not this machine's.
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    status, _, text = await scrape(world.bot.url, proxied)
    assert status == 401 and "Authorization: Bearer" in text
    status, _, text = await scrape(world.bot.url, {**proxied, "Authorization": "Bearer not-the-token-at-all"})
    assert status == 401 and "not this bot's [metrics] token" in text
    assert "playbooks_" not in text
    status, _, text = await scrape(world.bot.url, {**proxied, "Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "playbooks_runs_active_total 0.0" in text
    # A web session is no way in either: /metrics is for operators, not a signed-in page.
    browser = await world.browser("alice")
    async with browser.get(f"{world.bot.url}/metrics", headers=proxied) as response:
        assert response.status == 401
