"""Everyone in a run finds its channel under the playbook's sidebar category, once, whatever the timing.

Mattermost's category API is read-modify-write with no version, and an update rewrites only the categories
it names (docs/sidebar.md). These tests read each person's sidebar back through the sandbox, which keeps
the server's rules, after forcing the interleavings that lose a filing: two filings that read before either
writes (`ReadGate`), and someone else writing back a stale sidebar right after the bot wrote (`StaleWriter`).
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from bot.app import BotApp
from bot.models import MMCategory
from handlers.runs import execute_run, prepare_run
from tests.e2e.conftest import INCIDENT, Person, World

pytest_plugins = ["tests.pg"]

# A run only its owner starts in: everyone else comes later. Public, so anyone in the team may join it.
SOLO = """
title = "Solo incident"
team = "eng"
private_channel = false
channel_name = "solo-{seq} {name}"
category = "Incidents"
owner = "alice"
welcome = "Read the runbook first."

[[checklists]]
title = "Triage"
  [[checklists.items]]
  title = "Acknowledge the page"
  [[checklists.items]]
  title = "Open a bridge call"
"""

WELCOME = "Read the runbook first."


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT, "solo": SOLO}}


async def sidebar(person: Person, team_id: str) -> list[dict[str, Any]]:
    status, body, _ = await person.api.get(f"/users/{person.id}/teams/{team_id}/channels/categories")
    assert status == 200, body
    return list(body["categories"])


async def shown_under(world: World, name: str, channel_id: str) -> list[str]:
    """The categories `name` sees the channel under, reading the sidebar again as the web app does."""
    return [c["display_name"] for c in await sidebar(world[name], world.team_id) if channel_id in c["channel_ids"]]


async def start(world: World, name: str, playbook: str = "solo") -> dict[str, Any]:
    status, body = await world["alice"].command(world.town_square, f"/playbook run {playbook} {name}")
    assert status == 200 and "Starting" in body["text"], body
    await world.settle()
    return await run_named(world, name)


async def run_named(world: World, name: str) -> dict[str, Any]:
    status, runs = await world.runs_json("alice")
    assert status == 200, runs
    return next(r for r in runs["items"] if r["name"] == name)


async def told(person: Person, text: str, since: int) -> str:
    """The first private message to `person` containing `text` (ephemeral, or by DM when the bot may not
    post ephemerally), waiting for it if need be."""
    def private(event: dict[str, Any]) -> bool:
        if event.get("event") == "ephemeral_message":
            return text in json.loads(event["data"]["post"])["message"]
        if event.get("event") == "posted" and event["data"].get("channel_type") == "D":
            return text in json.loads(event["data"]["post"])["message"]
        return False

    event = await person.wait_event(private, since=since)
    return str(json.loads(event["data"]["post"])["message"])


async def welcomed(person: Person, since: int) -> None:
    """The bot's private welcome reached `person`: it has acted on their joining (and spawned the filing)."""
    await told(person, WELCOME, since)


class ReadGate:
    """Holds the answer to the first read of one person's categories until a second read has been answered
    too, so both filings start from the same state, unless `open()` is called first. The caller opens the
    gate once every filing has begun (its run's welcome is posted): a filing that waits for the person's
    lock then cannot read, and the one holding the lock goes on."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.answered = 0
        self.in_flight = 0
        self._opened = asyncio.Event()
        self._open_requested = False

    def wrap(self, get: Callable[[str, str], Awaitable[list[MMCategory]]]
             ) -> Callable[[str, str], Awaitable[list[MMCategory]]]:
        async def gated(user_id: str, team_id: str) -> list[MMCategory]:
            if user_id != self.user_id or self._opened.is_set():
                return await get(user_id, team_id)
            self.in_flight += 1
            try:
                answer = await get(user_id, team_id)
            finally:
                self.in_flight -= 1
            self.answered += 1
            self._maybe_open()
            await self._opened.wait()
            return answer

        return gated

    def open(self) -> None:
        """Open once no read is under way: a read already sent must be answered, and held, first."""
        self._open_requested = True
        self._maybe_open()

    def _maybe_open(self) -> None:
        if self.answered >= 2 or (self._open_requested and self.in_flight == 0):
            self._opened.set()


async def wait_welcomes(person: Person, count: int, since: int) -> None:
    """Both starts are under way: the person was added to `count` new channels. (A start files the
    channel before it posts, so waiting for the welcome posts would wait behind the gate itself.)"""
    seen: set[str] = set()

    def posted(event: dict[str, Any]) -> bool:
        if event.get("event") == "user_added" and event.get("data", {}).get("user_id") == person.id:
            seen.add(str(event.get("broadcast", {}).get("channel_id", "")))
        return len(seen) >= count

    await person.wait_event(posted, since=since, timeout=15)


async def test_two_runs_starting_at_once_for_one_person_both_end_filed(world: World) -> None:
    alice = world["alice"]
    assert world.bot.ctx is not None
    gateway = world.bot.ctx.gateway
    gate = ReadGate(alice.id)
    gateway.get_categories = gate.wrap(gateway.get_categories)  # type: ignore[method-assign]
    since = len(alice.events)
    answers = await asyncio.gather(*(alice.command(world.town_square, f"/playbook run solo Outage {n}")
                                     for n in (1, 2)))
    assert all(status == 200 for status, _ in answers), answers
    await wait_welcomes(alice, 2, since)
    gate.open()
    await world.settle()
    first, second = await run_named(world, "Outage 1"), await run_named(world, "Outage 2")
    incidents = [c for c in await sidebar(alice, world.team_id) if c["display_name"] == "Incidents"]
    assert len(incidents) == 1, incidents  # one category, not one per run
    assert {first["channel_id"], second["channel_id"]} <= set(incidents[0]["channel_ids"])
    for run in (first, second):
        assert await shown_under(world, "alice", run["channel_id"]) == ["Incidents"]


async def test_two_bot_processes_filing_for_one_person_lose_nothing(world: World, pg_url: str) -> None:
    settings = world.bot.settings
    await world.bot.stop()
    shared = replace(settings, storage=replace(settings.storage, url=pg_url))
    apps = [await BotApp(shared, clock=world.clock).start(), await BotApp(shared, clock=world.clock).start()]
    world.bot = apps[1]
    alice = world["alice"]
    try:
        existing = await start(world, "Yesterday")  # alice has an Incidents category already
        gate = ReadGate(alice.id)
        for app in apps:
            assert app.ctx is not None
            app.ctx.gateway.get_categories = gate.wrap(app.ctx.gateway.get_categories)  # type: ignore[method-assign]
        since = len(alice.events)

        async def start_in(app: BotApp, name: str) -> None:
            ctx = app.ctx
            assert ctx is not None
            plan = prepare_run(ctx, ctx.playbooks["solo"], name, "", alice.id, world.team_id, world.town_square)
            outcome = await execute_run(ctx, plan)
            assert outcome.run_id and not outcome.problems, outcome

        starts = asyncio.gather(*(start_in(app, f"Outage {n}") for n, app in enumerate(apps)))
        await wait_welcomes(alice, 2, since)
        gate.open()
        await starts
        for app in apps:
            assert app.ctx is not None
            await app.ctx.tasks.drain()
        channels = [existing["channel_id"]] + [(await run_named(world, f"Outage {n}"))["channel_id"] for n in (0, 1)]
        for channel_id in channels:
            assert await shown_under(world, "alice", channel_id) == ["Incidents"], channel_id
    finally:
        await apps[0].stop()


async def test_a_channel_with_a_row_under_channels_moves_out_of_it(world: World) -> None:
    alice = world["alice"]
    await start(world, "Yesterday")  # alice has an Incidents category already
    assert world.bot.ctx is not None
    gateway = world.bot.ctx.gateway
    held = asyncio.Event()
    get = gateway.get_categories

    async def after_the_web_app(user_id: str, team_id: str) -> list[MMCategory]:
        if user_id == alice.id:
            await held.wait()
        return await get(user_id, team_id)

    gateway.get_categories = after_the_web_app  # type: ignore[method-assign]
    since = len(alice.events)
    status, body = await alice.command(world.town_square, "/playbook run solo Today")
    assert status == 200, body
    added = await alice.wait_event(lambda e: e.get("event") == "user_added"
                                   and e["data"].get("user_id") == alice.id, since=since)
    channel_id = added["broadcast"]["channel_id"]
    # Before the bot files it, alice drags the new channel inside Channels: her web app writes the category
    # back, and the channel gets a row of its own there (the Channels list came with it implicitly).
    channels = next(c for c in await sidebar(alice, world.team_id) if c["type"] == "channels")
    assert channel_id in channels["channel_ids"]
    status, body, _ = await alice.api.put(f"/users/{alice.id}/teams/{world.team_id}/channels/categories",
                                          [{**channels, "sorting": "manual"}])
    assert status == 200, body
    held.set()
    await world.settle()
    assert await shown_under(world, "alice", channel_id) == ["Incidents"]  # not under Channels as well


async def test_everyone_who_joins_later_is_filed(world: World) -> None:
    run = await start(world, "Checkout down")
    ch = run["channel_id"]
    bob, carol, dave = world["bob"], world["carol"], world["dave"]
    assert await shown_under(world, "bob", ch) == []  # not in the run yet

    # bob is given an item; carol joins; alice adds dave to the channel in Mattermost itself.
    since = len(bob.events)
    status, body = await world["alice"].command(ch, "/playbook assign 1.1 @bob")
    assert status == 200 and "@bob" in body["text"], body
    await welcomed(bob, since)
    since = len(carol.events)
    status, body = await carol.command(world.town_square, '/playbook join --run "Checkout down"')
    assert status == 200, body
    await welcomed(carol, since)
    since = len(dave.events)
    status, body, _ = await world["alice"].api.post(f"/channels/{ch}/members", {"user_id": dave.id})
    assert status == 201, body
    await welcomed(dave, since)
    await world.settle()
    for name in ("alice", "bob", "carol", "dave"):
        assert await shown_under(world, name, ch) == ["Incidents"], name

    # A new owner who was not in the run yet.
    other = await start(world, "Payments down")
    since = len(carol.events)
    status, body = await world["alice"].command(other["channel_id"], "/playbook owner @carol")
    assert status == 200 and "@carol" in body["text"], body
    await world.settle()
    assert await shown_under(world, "carol", other["channel_id"]) == ["Incidents"]


class StaleWriter:
    """Right after the bot's first write to one person's categories, writes back what that person's sidebar
    showed just before it, as a web app with a stale view does when the person drags something."""

    def __init__(self, person: Person, team_id: str) -> None:
        self.person, self.team_id = person, team_id
        self.done = False

    def wrap(self, write: Callable[..., Awaitable[Any]], user_of: Callable[..., str]) -> Callable[..., Awaitable[Any]]:
        async def stale(*args: Any, **kwargs: Any) -> Any:
            if self.done or user_of(*args, **kwargs) != self.person.id:
                return await write(*args, **kwargs)
            self.done = True
            before = {c["id"]: c for c in await sidebar(self.person, self.team_id)}
            answer = await write(*args, **kwargs)
            now = await sidebar(self.person, self.team_id)
            back = [{**c, "channel_ids": before[c["id"]]["channel_ids"] if c["id"] in before else []}
                    for c in now if c["type"] != "direct_messages"]
            status, body, _ = await self.person.api.put(
                f"/users/{self.person.id}/teams/{self.team_id}/channels/categories", back)
            assert status == 200, body
            return answer

        return stale


async def test_a_filing_undone_at_once_by_someone_else_is_made_again(world: World) -> None:
    carol = world["carol"]  # a member of the incident playbook: filed at the start
    assert world.bot.ctx is not None
    gateway = world.bot.ctx.gateway
    writer = StaleWriter(carol, world.team_id)
    gateway.create_category = writer.wrap(gateway.create_category,  # type: ignore[method-assign]
                                          lambda user_id, *_a, **_k: user_id)
    gateway.update_category = writer.wrap(gateway.update_category,  # type: ignore[method-assign]
                                          lambda category, *_a, **_k: category.user_id)
    gateway.update_categories = writer.wrap(gateway.update_categories,  # type: ignore[method-assign]
                                            lambda user_id, *_a, **_k: user_id)
    run = await start(world, "Checkout down", playbook="incident")
    assert writer.done  # the bot wrote carol's categories, and was undone at once
    assert await shown_under(world, "carol", run["channel_id"]) == ["Incidents"]
    for name in ("alice", "bob"):
        assert await shown_under(world, name, run["channel_id"]) == ["Incidents"], name


async def test_a_joiner_the_bot_cannot_file_is_told_why(world: World) -> None:
    run = await start(world, "Checkout down")
    # An admin takes the bot's system admin role away: it may no longer change other people's categories.
    status, body, _ = await world.admin.put(f"/users/{world.bot_user_id}/roles", {"roles": "system_user"})
    assert status == 200, body
    carol = world["carol"]
    since = len(carol.events)
    status, body = await carol.command(world.town_square, '/playbook join --run "Checkout down"')
    assert status == 200, body
    await welcomed(carol, since)
    await world.settle()
    message = await told(carol, "could not file the channel of **Checkout down** under **Incidents**", since)
    assert "`edit_other_users`" in message, message
    assert await shown_under(world, "carol", run["channel_id"]) == ["Channels"]
