"""Keyword triggers end to end: a post in a watched channel offers the run (to the poster, ephemerally,
where the bot may; as a thread reply where it may not), the button starts it for whoever clicks, once."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

import handlers.runs as runs_handlers
from storage import keywords as keyword_store
from storage.models import KeywordOffer
from tests.conftest import attachments_text
from tests.e2e.conftest import World

INCIDENT = r"""
title = "Incident response"
team = "eng"
private_channel = false
channel_name = "inc-{seq} {name}"

[keywords]
words = ["outage", "sev 1"]
patterns = ['error rate \d{1,3}%']
channels = ["ops"]

[[checklists]]
title = "Triage"
  [[checklists.items]]
  title = "Acknowledge"
"""

BREACH = """
title = "Security breach"
team = "eng"

[access]
public = false
members = ["alice"]

[keywords]
words = ["breach"]
channels = ["ops"]
"""

PLAYBOOKS = {"incident": INCIDENT, "breach": BREACH}


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": PLAYBOOKS}


async def _ops(world: World) -> str:
    status, channel, _ = await world.admin.post("/channels", {"team_id": world.team_id, "name": "ops",
                                                              "display_name": "Ops", "type": "O"})
    assert status == 201, channel
    for uid in [p.id for p in world.people.values()] + [world.bot_user_id]:
        status, body, _ = await world.admin.post(f"/channels/{channel['id']}/members", {"user_id": uid})
        assert status == 201, body
    return str(channel["id"])


async def _say(world: World, who: str, channel_id: str, message: str, root_id: str = "") -> str:
    body = {"channel_id": channel_id, "message": message, **({"root_id": root_id} if root_id else {})}
    status, post, _ = await world[who].api.post("/posts", body)
    assert status == 201, post
    await world.settle()
    return str(post["id"])


def _offers(world: World, who: str) -> list[dict[str, Any]]:
    """The ephemeral offers `who` was shown (each the post's client JSON)."""
    out = []
    for event in world[who].events:
        if event.get("event") == "ephemeral_message":
            post = json.loads(event["data"]["post"])
            if (post.get("props") or {}).get("attachments"):
                out.append(post)
    return out


def _is_offer(event: dict[str, Any]) -> bool:
    return event.get("event") == "ephemeral_message" and bool(
        (json.loads(event["data"]["post"]).get("props") or {}).get("attachments"))


async def _offered(world: World, who: str, channel_id: str, message: str, root_id: str = "") -> dict[str, Any]:
    """`who` posts `message` and is shown an offer for it (waited for)."""
    since = len(world[who].events)
    await _say(world, who, channel_id, message, root_id)
    event = await world[who].wait_event(_is_offer, since=since)
    return dict(json.loads(event["data"]["post"]))


async def _barrier(world: World, who: str, channel_id: str) -> None:
    """A post that is offered a run, in a thread of its own: the bot handles events in order, so once its
    offer is here, every earlier post was handled."""
    await _offered(world, who, channel_id, "barrier: outage")


def _action(post: dict[str, Any], action_id: str) -> dict[str, Any]:
    actions = post["props"]["attachments"][0]["actions"]
    return next(a for a in actions if a["id"] == action_id)


async def _click_ephemeral(world: World, who: str, post: dict[str, Any], action_id: str) -> str:
    """Click a button of an ephemeral offer (its cookie stands for the post, as in the web app); the bot's
    private answer."""
    since = len(world[who].events)
    cookie = _action(post, action_id)["cookie"]
    status, body, _ = await world[who].api.post(f"/posts/{post['id']}/actions/{action_id}", {"cookie": cookie})
    assert status == 200, body
    event = await world[who].wait_event(lambda e: e.get("event") == "ephemeral_message" and not _is_offer(e),
                                        since=since)
    await world.settle()
    return str(json.loads(event["data"]["post"])["message"])


async def test_a_keyword_offers_the_run_to_the_poster_and_the_button_starts_it_once(world: World) -> None:
    ops = await _ops(world)
    offer = await _offered(world, "bob", ops, "Checkout OUTAGE in eu-west\nDetails follow.")
    root = offer["root_id"]
    assert "Incident response" in offer["message"] and "Checkout OUTAGE in eu-west" in offer["message"]
    assert world.sb.state.posts[root].user_id == world["bob"].id and offer["channel_id"] == ops
    await _barrier(world, "dave", ops)
    assert not _offers(world, "alice") and not _offers(world, "carol")  # to the poster only
    assert [a["name"] for a in offer["props"]["attachments"][0]["actions"]] == ["Run it", "No thanks"]

    assert "Starting **Checkout OUTAGE in eu-west**" in await _click_ephemeral(world, "bob", offer, "kwstart")
    _, runs = await world.runs_json("bob")
    assert runs["total"] == 1, runs
    run = runs["items"][0]
    assert run["name"] == "Checkout OUTAGE in eu-west"
    assert run["owner_id"] == world["bob"].id and run["creator_id"] == world["bob"].id
    channel = world.sb.state.channels[run["channel_id"]]
    assert channel.name == "inc-001-checkout-outage-in-eu-west"
    assert world["bob"].id in world.sb.state.channel_member_ids(channel.id)
    assert "/pl/" + root in run["summary"]

    # The same thread again (another person, another keyword): nothing more is offered.
    await _say(world, "carol", ops, "still an outage, sev 1 now", root_id=root)
    await _barrier(world, "carol", ops)
    assert len(_offers(world, "bob")) == 1 and len(_offers(world, "carol")) == 1
    # A second click on the offer starts nothing.
    again = await _click_ephemeral(world, "bob", offer, "kwstart")
    assert "@bob already started a run from this offer: ~inc-001-checkout-outage-in-eu-west" in again
    _, runs = await world.runs_json("bob")
    assert runs["total"] == 1


async def test_unwatched_channels_and_bot_posts_offer_nothing(world: World) -> None:
    ops = await _ops(world)
    await _say(world, "bob", world.town_square, "big outage")  # town-square is not watched
    assert not _offers(world, "bob")
    assert world.bot.ctx is not None
    token = world.bot.settings.mattermost.token
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{world.sb.url}/api/v4/posts", headers={"Authorization": f"Bearer {token}"},
                                json={"channel_id": ops, "message": "outage reported"}) as resp:
            assert resp.status == 201
            bot_post = await resp.json()
    # Words inside other words do not match either.
    await _say(world, "bob", ops, "the outages page was updated")
    await _barrier(world, "bob", ops)
    assert len(_offers(world, "bob")) == 1 and not any(_offers(world, p) for p in ("alice", "carol", "dave"))
    replies = [p for p in await world.posts(ops) if p.get("root_id") == bot_post["id"]]
    assert replies == []


async def test_a_pattern_matches(world: World) -> None:
    ops = await _ops(world)
    offer = await _offered(world, "carol", ops, "API error rate 45% since 10:02")
    assert "error rate 45%" in offer["message"] and "Incident response" in offer["message"]


async def test_a_private_playbook_is_offered_only_to_its_members(world: World) -> None:
    ops = await _ops(world)
    await _say(world, "bob", ops, "possible breach on the vpn")
    await _barrier(world, "bob", ops)
    assert [o["message"] for o in _offers(world, "bob") if "Security breach" in o["message"]] == []
    offer = await _offered(world, "alice", ops, "confirmed breach")
    assert "Security breach" in offer["message"]


async def test_no_thanks_dismisses_the_offer_for_the_thread(world: World) -> None:
    ops = await _ops(world)
    offer = await _offered(world, "dave", ops, "outage?")
    root = offer["root_id"]
    assert "will not be offered again" in await _click_ephemeral(world, "dave", offer, "kwdismiss")
    await _say(world, "dave", ops, "yes, an outage", root_id=root)
    await _barrier(world, "carol", ops)
    assert len(_offers(world, "dave")) == 1
    assert "@dave already turned this offer down" in await _click_ephemeral(world, "dave", offer, "kwstart")
    _, runs = await world.runs_json("dave")
    assert runs["total"] == 0


PLAIN_BOT = {"bot_roles": "system_user", "team_admin": True, "playbooks": PLAYBOOKS}


@pytest.mark.parametrize("world_options", [PLAIN_BOT])
async def test_without_ephemerals_the_offer_is_a_thread_reply_anyone_may_use(world: World) -> None:
    ops = await _ops(world)
    since = len(world["bob"].events)
    root = await _say(world, "bob", ops, "payments outage")

    def bot_reply(event: dict[str, Any]) -> bool:
        if event.get("event") != "posted":
            return False
        post = json.loads(event["data"]["post"])
        return bool(post.get("root_id") == root and post["user_id"] == world.bot_user_id)

    await world["bob"].wait_event(bot_reply, since=since)
    await world.settle()
    assert not _offers(world, "bob")
    replies = [p for p in await world.posts(ops) if p.get("root_id") == root]
    assert len(replies) == 1 and replies[0]["user_id"] == world.bot_user_id
    reply = replies[0]
    assert "Incident response" in reply["message"]

    # A forged click (the real context with another offer id, or no signature) is refused.
    context = dict(world.sb.state.posts[reply["id"]].props["attachments"][0]["actions"][0]["integration"]["context"])
    async with aiohttp.ClientSession() as session:
        for forged in ({**context, "f": ["x" * 26]}, {**context, "s": "0" * 32}):
            async with session.post(f"{world.bot.url}/mattermost/action",
                                    json={"user_id": world["carol"].id, "context": forged}) as resp:
                assert resp.status == 403
    _, runs = await world.runs_json("carol")
    assert runs["total"] == 0

    # Carol, who may run the playbook too, takes it from the thread: she starts the run.
    status, body = await world["carol"].click(reply["id"], "kwstart")
    assert status == 200, body
    await world.settle()
    _, runs = await world.runs_json("carol")
    assert runs["total"] == 1
    run = runs["items"][0]
    assert run["creator_id"] == world["carol"].id and run["name"] == "payments outage"
    channel = world.sb.state.channels[run["channel_id"]]
    updated = await world.post(reply["id"])
    assert updated["message"] == reply["message"]  # unchanged: past the edit time limit it could not be
    shown = attachments_text(updated["props"])
    assert "@carol started" in shown and f"~{channel.name}" in shown
    assert not any(a.get("actions") for a in updated["props"]["attachments"])
    # A second click (an old client still showing the buttons) starts nothing.
    await world["bob"].click(reply["id"], "kwstart")
    await world.settle()
    _, runs = await world.runs_json("bob")
    assert runs["total"] == 1

    # A private playbook is not named in the channel: its offer comes as a direct message.
    since = len(world["alice"].events)
    await _say(world, "alice", ops, "breach detected")
    await world["alice"].wait_event(lambda e: e.get("event") == "posted" and "Security breach" in e["data"]["post"],
                                    since=since)
    await world.settle()
    posts = [p for p in await world.posts(ops) if p["user_id"] == world.bot_user_id and "breach" in p["message"]]
    assert posts == []
    status, dm, _ = await world["alice"].api.post("/channels/direct", [world["alice"].id, world.bot_user_id])
    assert status in (200, 201), dm
    direct = await world.posts(dm["id"])
    assert any("Security breach" in p["message"] for p in direct)


async def test_the_bot_joins_watched_public_channels_but_never_private_ones(world: World) -> None:
    """The bot sees only its channels' posts: it joins a watched public channel by itself (at start-up and
    when the playbooks change), never a private one (a person there must invite it)."""
    ids = {}
    for name, kind in (("ops", "O"), ("secops", "P")):
        status, channel, _ = await world.admin.post("/channels", {"team_id": world.team_id, "name": name,
                                                                  "display_name": name, "type": kind})
        assert status == 201, channel
        ids[name] = str(channel["id"])
        status, body, _ = await world.admin.post(f"/channels/{channel['id']}/members",
                                                 {"user_id": world["bob"].id})
        assert status == 201, body
    assert world.bot_user_id not in world.sb.state.channel_member_ids(ids["ops"])
    (world.playbooks_dir / "incident.toml").write_text(INCIDENT.replace('channels = ["ops"]',
                                                                        'channels = ["ops", "secops"]'))
    library = world.bot.ctx.library
    assert library is not None
    assert await library.check_now()
    await world.settle()
    assert world.bot_user_id in world.sb.state.channel_member_ids(ids["ops"])
    assert world.bot_user_id not in world.sb.state.channel_member_ids(ids["secops"])
    offer = await _offered(world, "bob", ids["ops"], "an outage in ops")
    assert "Incident response" in offer["message"]


async def test_a_watched_channel_made_after_start_up_is_joined_at_the_next_look(world: World) -> None:
    """~ops does not exist when the bot starts (nor when the playbooks last changed): Mattermost tells only
    its creator when it is made, so the bot looks for the channels still missing every RETRY_S."""
    from handlers.keywords import ChannelWatch

    assert world.bot.ctx is not None
    watch = world.bot.ctx.jobs["keywords-watch"]
    assert isinstance(watch, ChannelWatch) and watch.running
    await world.settle()
    assert (world.team_id, "ops") in watch.failed
    status, channel, _ = await world.admin.post("/channels", {"team_id": world.team_id, "name": "ops",
                                                              "display_name": "Ops", "type": "O"})
    assert status == 201, channel
    status, body, _ = await world.admin.post(f"/channels/{channel['id']}/members", {"user_id": world["bob"].id})
    assert status == 201, body
    assert world.bot_user_id not in world.sb.state.channel_member_ids(channel["id"])
    await watch._retry()  # the wake-up every RETRY_S
    await world.settle()
    assert world.bot_user_id in world.sb.state.channel_member_ids(channel["id"])
    assert not watch.failed and watch.wakeup.next_wake is not None
    offer = await _offered(world, "bob", channel["id"], "an outage in the new ops channel")
    assert "Incident response" in offer["message"]


async def _offer_row(world: World, root_id: str) -> KeywordOffer:
    assert world.bot.ctx is not None
    rows = await world.bot.ctx.db.run(
        lambda s: list(s.exec(select(KeywordOffer).where(KeywordOffer.root_post_id == root_id)).all()), readonly=True)
    assert len(rows) == 1, rows
    return rows[0]


async def test_a_start_cancelled_after_it_was_recorded_keeps_the_offer_started_and_runs_once(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The follow-up is cancelled (a shutdown) while the run is carried: the start is recorded, so the
    start service finishes that run, and the offer is not offered again (a second click would start a
    second run)."""
    ops = await _ops(world)
    offer = await _offered(world, "bob", ops, "Search outage")
    carry = runs_handlers.StartService.carry

    async def cancelled(self: runs_handlers.StartService, row: Any, fresh: bool = False) -> Any:
        self._active.discard(row.run_id)
        raise asyncio.CancelledError()

    monkeypatch.setattr(runs_handlers.StartService, "carry", cancelled)
    await _click_ephemeral(world, "bob", offer, "kwstart")
    monkeypatch.setattr(runs_handlers.StartService, "carry", carry)
    row = await _offer_row(world, offer["root_id"])
    assert row.state == "started" and row.run_id

    again = await _click_ephemeral(world, "bob", offer, "kwstart")
    assert "@bob already started a run from this offer" in again
    # The start service takes the recorded start up once its lease has run out, and finishes it.
    assert world.bot.ctx is not None
    service = world.bot.ctx.jobs[runs_handlers.JOB]
    assert isinstance(service, runs_handlers.StartService)
    world.clock.advance(runs_handlers.LEASE_MS / 1000 + 1)
    assert await service.run_due() == 1
    await world.settle()
    _, listed = await world.runs_json("bob")
    assert listed["total"] == 1 and listed["items"][0]["id"] == row.run_id, listed
    assert listed["items"][0]["name"] == "Search outage"


async def test_an_offer_left_starting_by_a_crash_is_offered_again_after_a_while(world: World) -> None:
    """A process that took the offer and stopped before recording the start leaves it "starting" with
    nothing started: after keywords.STALE_MS a click takes it again (before, it is refused as taken)."""
    ops = await _ops(world)
    offer = await _offered(world, "bob", ops, "Login outage")
    row = await _offer_row(world, offer["root_id"])
    assert world.bot.ctx is not None
    assert await world.bot.ctx.db.run(keyword_store.take, row.id, world["carol"].id, world.clock.now_ms())
    assert "is already starting a run from this offer" in await _click_ephemeral(world, "bob", offer, "kwstart")
    _, listed = await world.runs_json("bob")
    assert listed["total"] == 0

    world.clock.advance(keyword_store.STALE_MS / 1000 + 1)
    assert "Starting **Login outage**" in await _click_ephemeral(world, "bob", offer, "kwstart")
    _, listed = await world.runs_json("bob")
    assert listed["total"] == 1, listed
    row = await _offer_row(world, offer["root_id"])
    assert row.state == "started" and row.acted_by == world["bob"].id and row.run_id == listed["items"][0]["id"]


async def _caught_up(world: World, apps: list[Any]) -> None:
    """Every event the sandbox has written to each bot process's socket has been read and handled."""
    loop = asyncio.get_running_loop()
    for app in apps:
        deadline = loop.time() + 5
        while True:
            conn = world.sb.hub.conns.get(app.listener.connection_id or "")
            if conn is not None and (app.listener.next_seq or 0) >= conn.sequence:
                break
            assert loop.time() < deadline, "the bot's socket did not catch up"
            await asyncio.sleep(0.01)  # frames in flight on the loopback socket
        await app.listener.drain()
        await app.ctx.tasks.drain()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_two_bot_processes_seeing_the_same_post_offer_the_run_once(world: World, database: str,
                                                                        request: pytest.FixtureRequest) -> None:
    """Both processes read every post on their own socket; the offer's row (one per thread and playbook)
    lets one of them offer, and the click starts one run."""
    from dataclasses import replace

    from bot.app import BotApp

    settings = world.bot.settings
    if database == "postgresql":
        pg_url = request.getfixturevalue("pg_url")
        await world.bot.stop()
        settings = replace(settings, storage=replace(settings.storage, url=pg_url))
        world.bot = await BotApp(settings, clock=world.clock).start()
    second = await BotApp(settings, clock=world.clock).start()
    try:
        apps = [world.bot, second]
        ops = await _ops(world)
        await _caught_up(world, apps)
        for n in range(3):
            await _say(world, "bob", ops, f"payments outage {n}")
        await _caught_up(world, apps)
        offers = _offers(world, "bob")
        assert len(offers) == 3 and len({o["root_id"] for o in offers}) == 3, [o["message"] for o in offers]
        assert world.bot.ctx is not None
        rows = await world.bot.ctx.db.run(lambda s: list(s.exec(select(KeywordOffer)).all()), readonly=True)
        assert len(rows) == 3

        assert "Starting" in await _click_ephemeral(world, "bob", offers[0], "kwstart")
        await _caught_up(world, apps)
        again = await _click_ephemeral(world, "bob", offers[0], "kwstart")
        assert "already started a run from this offer" in again
        _, listed = await world.runs_json("bob")
        assert listed["total"] == 1, listed
    finally:
        await second.stop()
        if database == "postgresql":
            await world.bot.stop()
