"""Scheduled runs end to end: a playbook's [schedule] starts one run per occurrence, through the sandbox.

Two bot processes share one database (SQLite file, and PostgreSQL where tests/pg.py finds a server) and
one clock; both wake up at each occurrence and exactly one starts its run. Across a restart an occurrence
already started starts nothing again, a missed one is started if it is less than an hour old, and
recorded as skipped otherwise. Time only moves when the test moves it; nothing sleeps.
"""
from __future__ import annotations

import asyncio
import textwrap
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.app import BotApp
from bot.clock import iso
from bot.domain import schedules as cron
from storage import schedules as occurrences
from storage.models import TimelineEvent
from tests.e2e.conftest import INCIDENT, ONBOARDING, World

pytest_plugins = ["tests.pg"]

BERLIN = ZoneInfo("Europe/Berlin")
MIN = 60_000

STANDUP = """
title = "Daily standup"
team = "eng"
channel_name = "{name}"
category = ""

[schedule]
cron = "0 9 * * *"
timezone = "Europe/Berlin"
name = "Standup {{ date }} ({{ weekday }})"
owner = "bob"
members = ["carol"]

[[checklists]]
title = "Round"
  [[checklists.items]]
  title = "Yesterday, today, blockers"
"""

PAUSED = STANDUP.replace('members = ["carol"]', 'members = ["carol"]\nenabled = false')
GHOST_OWNER = STANDUP.replace('owner = "bob"', 'owner = "zed"')
OUTSIDE_OWNER = STANDUP.replace('owner = "bob"', 'owner = "outsider"')
BOT_OWNER = STANDUP.replace('owner = "bob"', 'owner = "playbooks"')


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"incident": INCIDENT, "onboarding": ONBOARDING, "standup": STANDUP}}


def next_nine(world: World) -> int:
    """The schedule's next occurrence after the world's now: 09:00 in Berlin."""
    at = cron.next_occurrence(cron.parse_cron("0 9 * * *", BERLIN), world.clock.now_ms())
    assert at is not None
    local = datetime.fromtimestamp(at / 1000, tz=BERLIN)
    assert (local.hour, local.minute) == (9, 0)
    return at


async def standups(world: World) -> list[dict[str, Any]]:
    status, body = await world.runs_json("bob")
    assert status == 200, body
    return sorted((r for r in body["items"] if r["playbook"]["id"] == "standup"), key=lambda r: r["name"])


async def due_everywhere(*apps: BotApp) -> int:
    """Every process wakes at once, twice: the rows let one of them start each occurrence."""
    started = await asyncio.gather(*(app.ctx.jobs["schedules"].run_due() for app in apps + apps))  # type: ignore[attr-defined]
    for app in apps:
        await app.ctx.tasks.drain()
    return sum(started)


async def two_bots_start_each_occurrence_once(world: World, url: str | None) -> None:
    settings = world.bot.settings
    await world.bot.stop()
    shared = settings if url is None else replace(settings, storage=replace(settings.storage, url=url))
    first = await BotApp(shared, clock=world.clock).start()
    second = await BotApp(shared, clock=world.clock).start()
    world.bot = second
    try:
        nine = next_nine(world)
        world.clock.set(nine - MIN)
        assert await due_everywhere(first, second) == 0  # not yet
        for day in range(3):
            world.clock.set(nine + day * 86_400_000)
            assert await due_everywhere(first, second) == 1, f"day {day}"
            runs = await standups(world)
            assert len(runs) == day + 1
        date = datetime.fromtimestamp(nine / 1000, tz=BERLIN)
        first_run = (await standups(world))[0]
        assert first_run["name"] == f"Standup {date:%Y-%m-%d} ({date:%A})"
        assert first_run["owner_id"] == first_run["creator_id"] == world["bob"].id
        world.clock.advance(30)  # a little later: every occurrence is recorded, nothing starts again
        assert await due_everywhere(first, second) == 0
        assert len(await standups(world)) == 3
        # The owner heard, the member is in, the timeline says what started it.
        channel = first_run["channel_id"]
        status, members, _ = await world.admin.get(f"/channels/{channel}/members")
        assert status == 200
        assert {world["bob"].id, world["carol"].id} <= {m["user_id"] for m in members}
        events = await first.ctx.db.run(
            lambda s: [e.summary for e in s.exec(select(TimelineEvent).where(TimelineEvent.run_id == first_run["id"]))],
            readonly=True)
        assert "Run started from Daily standup by the schedule (0 9 * * *, Europe/Berlin)" in events
    finally:
        await first.stop()


async def test_two_bots_on_one_sqlite_file_start_each_occurrence_once(world: World) -> None:
    await two_bots_start_each_occurrence_once(world, None)


async def test_two_bots_on_one_postgresql_start_each_occurrence_once(world: World, pg_url: str) -> None:
    await two_bots_start_each_occurrence_once(world, pg_url)


async def restarted(world: World) -> BotApp:
    """Stop the bot and start a new one on the same database and clock (its start-up round included)."""
    await world.bot.stop()
    world.bot = await BotApp(world.bot.settings, clock=world.clock).start()
    await world.bot.ctx.tasks.drain()
    return world.bot


async def test_a_restart_starts_no_occurrence_twice_and_only_a_recent_missed_one(world: World) -> None:
    nine = next_nine(world)
    world.clock.set(nine)
    assert await due_everywhere(world.bot) == 1
    world.clock.set(nine + 10 * MIN)
    app = await restarted(world)  # the 09:00 occurrence is recorded: nothing again
    assert await due_everywhere(app) == 0
    assert len(await standups(world)) == 1

    # Down over the next 09:00; back at 09:30: less than an hour late, so it starts now.
    await world.bot.stop()
    world.clock.set(nine + 86_400_000 + 30 * MIN)
    world.bot = await BotApp(world.bot.settings, clock=world.clock).start()
    await world.bot.ctx.tasks.drain()
    assert len(await standups(world)) == 2

    # Down over the third 09:00; back at 12:00: too late; recorded as skipped, never started.
    await world.bot.stop()
    world.clock.set(nine + 2 * 86_400_000 + 180 * MIN)
    app = await restarted(world)
    assert await due_everywhere(app) == 0
    assert len(await standups(world)) == 2
    skipped = await app.ctx.db.run(occurrences.skipped_since, 0, readonly=True)
    assert [(s.playbook_id, s.occurrence_at) for s in skipped] == [("standup", nine + 2 * 86_400_000)]
    assert skipped[0].reason.startswith("missed: no bot was running at ")
    assert "3 hours late" in skipped[0].reason


async def test_the_occurrence_is_at_nine_in_berlin_across_the_clock_change(world: World) -> None:
    """09:00 Europe/Berlin is 08:00 UTC in winter and 07:00 UTC in summer: the run starts at 09:00 local."""
    nine = next_nine(world)
    local = datetime.fromtimestamp(nine / 1000, tz=BERLIN)
    utc_hour = datetime.fromtimestamp(nine / 1000, tz=ZoneInfo("UTC")).hour
    assert utc_hour == 9 - int(local.utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]
    world.clock.set(nine - 1)
    assert await due_everywhere(world.bot) == 0
    world.clock.set(nine)
    assert await due_everywhere(world.bot) == 1


async def test_the_next_scheduled_run_shows_in_the_playbook_list(world: World) -> None:
    nine = next_nine(world)
    shown = datetime.fromtimestamp(nine / 1000, tz=BERLIN).strftime("%Y-%m-%d %H:%M %Z")
    status, body = await world["bob"].command(world.town_square, "/playbook playbooks")
    assert status == 200, body
    line = next(x for x in body["text"].splitlines() if "Daily standup" in x)
    assert line.endswith(f"next scheduled run {shown}"), line
    assert "next scheduled run" not in next(x for x in body["text"].splitlines() if "Incident response" in x)
    # The playbook's web page says so too.
    browser = await world.browser("bob")
    async with browser.get(f"{world.bot.url}/playbooks/standup") as resp:
        page = await resp.text()
    assert resp.status == 200, page
    assert "<code>0 9 * * *</code> (Europe/Berlin), owned by @bob" in page and " · next run " in page


async def test_a_disabled_schedule_starts_nothing(world: World) -> None:
    (world.playbooks_dir / "standup.toml").write_text(textwrap.dedent(PAUSED))
    assert world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    assert world.bot.ctx.playbooks["standup"].schedule.enabled is False  # type: ignore[union-attr]
    nine = next_nine(world)
    for day in range(2):
        world.clock.set(nine + day * 86_400_000)
        assert await due_everywhere(world.bot) == 0
    assert await standups(world) == []
    status, body = await world["bob"].command(world.town_square, "/playbook playbooks")
    assert "next scheduled run" not in body["text"]


async def test_an_owner_who_is_not_there_skips_the_occurrence_with_a_reason(world: World) -> None:
    (world.playbooks_dir / "standup.toml").write_text(textwrap.dedent(GHOST_OWNER))
    assert world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    nine = next_nine(world)
    world.clock.set(nine)
    assert await due_everywhere(world.bot) == 0
    skipped = await world.bot.ctx.db.run(occurrences.skipped_since, 0, readonly=True)
    assert [(s.occurrence_at, s.reason) for s in skipped] == [
        (nine, "the owner @zed is not a user of this Mattermost")]
    assert await standups(world) == []
    # `python -m bot check` says so (a [note] line), reading the database the bot writes.
    from bot.__main__ import _skipped_schedules

    assert _skipped_schedules(world.bot.settings) == [
        f"schedule of playbook standup: the run due at {iso(nine)} was skipped: the owner @zed is not a user "
        "of this Mattermost"]
    world.clock.advance(60)  # recorded once: another round adds nothing
    assert await due_everywhere(world.bot) == 0
    assert len(await world.bot.ctx.db.run(occurrences.skipped_since, 0, readonly=True)) == 1


async def test_an_owner_outside_the_team_or_a_bot_skips_the_occurrence_with_a_reason(world: World) -> None:
    """Checked before the start: it would make the channel, fail to add the owner and archive it, each time."""
    status, user, _ = await world.admin.post("/users", {"username": "outsider", "email": "outsider@example.com",
                                                        "password": "Password1!"})
    assert status == 201, user
    assert world.bot.ctx.library is not None
    nine = next_nine(world)
    for day, text in enumerate((OUTSIDE_OWNER, BOT_OWNER)):
        (world.playbooks_dir / "standup.toml").write_text(textwrap.dedent(text))
        await world.bot.ctx.library.check_now()
        world.clock.set(nine + day * 86_400_000)
        assert await due_everywhere(world.bot) == 0
    skipped = await world.bot.ctx.db.run(occurrences.skipped_since, 0, readonly=True)
    assert sorted((s.occurrence_at, s.reason) for s in skipped) == [
        (nine, 'the owner @outsider is not a member of the team "eng"'),
        (nine + 86_400_000, "the owner @playbooks is a bot account; runs are owned by people")]
    assert await standups(world) == []


async def test_an_edit_of_anything_but_the_schedule_while_down_drops_no_occurrence(world: World) -> None:
    """A deploy that fixes a typo in the checklist while no bot ran over 09:00 makes a new version; the
    schedule is the same, so the 09:00 occurrence is still started within the grace."""
    nine = next_nine(world)
    await world.bot.stop()
    (world.playbooks_dir / "standup.toml").write_text(textwrap.dedent(STANDUP.replace("blockers", "blockers!")))
    world.clock.set(nine + 20 * MIN)
    app = await restarted(world)
    assert app.ctx.playbooks["standup"].checklists[0].items[0].title.endswith("blockers!")
    started = await standups(world)
    assert len(started) == 1, started
    # A change of the schedule itself counts from its save: the next day's 09:00 passed while the bot was
    # down and the cron was edited then, so nothing starts for it.
    await world.bot.stop()
    (world.playbooks_dir / "standup.toml").write_text(
        textwrap.dedent(STANDUP.replace('cron = "0 9 * * *"', 'cron = "0 9,18 * * *"')))
    world.clock.set(nine + 86_400_000 + 20 * MIN)
    await restarted(world)
    assert len(await standups(world)) == 1
