"""Every request the bot makes over a whole journey, recorded: its token goes to Mattermost's origin only,
and clicks whose trigger ids are forged, altered, expired, for someone else or replayed change nothing."""
from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.actions import CheckItem
from tests.e2e.conftest import World
from tests.security.test_attacks import start_run


async def test_over_a_whole_journey_the_bot_token_goes_only_to_mattermost(world: World,
                                                                          outgoing: list[tuple[str, str, str]]
                                                                          ) -> None:
    run = await start_run(world)  # channel, members, categories, posts, broadcast, response_url notice
    channel = run["channel_id"]
    posts = await world.posts(channel)
    checklist = next(p for p in posts if p.get("props", {}).get("playbooks_state"))
    action = checklist["props"]["attachments"][0]["actions"][0]["id"]
    assert (await world["alice"].click(checklist["id"], action))[0] == 200
    for text in ("/playbook info", "/playbook check 1.2", "/playbook todo", "/playbook finish"):
        assert (await world["alice"].command(channel, text))[0] == 200
    await world.settle()
    bot_token = world.bot.settings.mattermost.token
    mattermost = urlsplit(world.sb.url)
    with_token = [(m, u) for m, u, auth in outgoing if bot_token in auth]
    assert len(with_token) > 20  # the journey did happen through the gateway
    assert {(urlsplit(u).scheme, urlsplit(u).netloc) for _, u in with_token} == {(mattermost.scheme,
                                                                                   mattermost.netloc)}
    # Command hooks (response_url) were answered without any Authorization header.
    hooks = [(m, u, auth) for m, u, auth in outgoing if "/hooks/commands/" in u]
    assert hooks and all(auth == "" for _, _, auth in hooks)
    assert world.bot.listener is not None and world.bot.listener.url.startswith(world.sb.url.replace("http", "ws"))


async def click_as(world: World, user_id: str, trigger_id: str, run_id: str, item_id: str, post_id: str
                   ) -> tuple[int, Any]:
    body = {"user_id": user_id, "user_name": "", "channel_id": "", "team_id": world.team_id, "post_id": post_id,
            "trigger_id": trigger_id, "type": "button",
            "context": world.bot.ctx.signer.pack(CheckItem(run_id, item_id))}
    async with aiohttp.ClientSession() as session, \
            session.post(f"{world.bot.url}/mattermost/action", json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_a_click_counts_only_with_a_fresh_trigger_id_of_its_user_used_once(world: World) -> None:
    run = await start_run(world)
    item = run["checklists"][0]["items"][1]
    post_id = next(p["id"] for p in await world.posts(run["channel_id"]) if p.get("props", {}).get("playbooks_state"))
    triggers = world.sb.hub.triggers
    alice, bob = world["alice"].id, world["bob"].id
    now = triggers.now_ms()
    altered = triggers.make(alice)
    raw = base64.b64decode(altered).decode().replace(alice, bob)
    refused = {
        "none": "",
        "bob's id for alice": triggers.make(bob),
        "expired": triggers.make(alice, millis=now - 120_000),
        "user swapped in the id": base64.b64encode(raw.encode()).decode(),
        "garbage": "bm90IGEgdHJpZ2dlcg==",
    }
    for name, trigger in refused.items():
        status, body = await click_as(world, alice, trigger, run["id"], item["id"], post_id)
        assert status == 403, (name, body)
    assert (await world.run_json(run["id"]))[1]["checklists"][0]["items"][1]["state"] == "open"
    good = triggers.make(alice)
    assert (await click_as(world, alice, good, run["id"], item["id"], post_id))[0] == 200
    await world.settle()
    assert (await world.run_json(run["id"]))[1]["checklists"][0]["items"][1]["state"] == "closed"
    # The same click replayed (to this bot process or any other on the database) is refused.
    status, body = await click_as(world, alice, good, run["id"], item["id"], post_id)
    assert status == 403, body
