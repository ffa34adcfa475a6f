"""`/playbook run` with no arguments opens the "Run a playbook" dialog; and /playbook is registered,
with autocomplete, on each team, and re-pointed (not duplicated) when the bot comes back elsewhere."""
from __future__ import annotations

import json

from bot.app import BotApp
from tests.e2e.conftest import World


async def open_start_dialog(world: World) -> dict:
    alice = world["alice"]
    since = len(alice.events)
    status, body = await alice.command(world.town_square, "/playbook run")
    assert status == 200, body
    await world.settle()
    event = await alice.wait_event(lambda e: e.get("event") == "open_dialog", since=since)
    return json.loads(event["data"]["dialog"])


async def test_the_dialog_starts_a_run_and_explains_bad_fields(world: World) -> None:
    dialog = await open_start_dialog(world)
    assert dialog["dialog"]["title"] == "Run a playbook"
    names = [e["name"] for e in dialog["dialog"]["elements"]]
    assert names == ["playbook", "name", "summary"]
    options = dialog["dialog"]["elements"][0]["options"]
    assert {o["value"] for o in options} == {"incident", "onboarding"}

    alice = world["alice"]
    status, body = await alice.submit_dialog(dialog, world.town_square, world.team_id,
                                             {"playbook": "nosuch", "name": "x"})
    assert status == 200 and "playbook" in body["errors"], body
    status, body = await alice.submit_dialog(dialog, world.town_square, world.team_id,
                                             {"playbook": "onboarding", "name": "y" * 1500})
    assert status == 200 and "1024" in body["errors"]["name"], body
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0

    status, body = await alice.submit_dialog(dialog, world.town_square, world.team_id,
                                             {"playbook": "onboarding", "name": "Initech",
                                              "summary": "customer: initech"})
    assert status == 200 and not body.get("errors"), body
    await world.settle()
    _, runs = await world.runs_json("alice")
    assert [(r["name"], r["summary"]) for r in runs["items"]] == [("Initech", "customer: initech")]
    # Outside a slash command there is no response_url: the bot, a system admin here, tells alice
    # privately where the run is.
    await alice.wait_event(lambda e: e.get("event") == "ephemeral_message"
                           and "has started" in json.loads(e["data"]["post"])["message"])


async def test_a_cancelled_dialog_changes_nothing(world: World) -> None:
    dialog = await open_start_dialog(world)
    status, body = await world["alice"].submit_dialog(dialog, world.town_square, world.team_id, {},
                                                      cancelled=True)
    assert status == 200
    await world.settle()
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0


async def test_a_forged_dialog_state_is_refused(world: World) -> None:
    dialog = await open_start_dialog(world)
    dialog["dialog"]["state"] = dialog["dialog"]["state"].replace('"s":"', '"s":"0')
    status, body = await world["alice"].submit_dialog(dialog, world.town_square, world.team_id,
                                                      {"playbook": "onboarding", "name": "Forged"})
    # The bot answers 403; Mattermost turns an integration's non-200 into this 400 for the client.
    assert (status, body["id"]) == (400, "api.post.do_action.action_integration.app_error")
    await world.settle()
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0


async def commands_of(world: World) -> list[dict]:
    status, body, _ = await world.admin.get(f"/commands?team_id={world.team_id}&custom_only=true")
    assert status == 200, body
    return [c for c in body if c["trigger"] == "playbook"]


async def test_playbook_is_registered_with_autocomplete_and_re_pointed_on_restart(world: World) -> None:
    [command] = await commands_of(world)
    assert command["url"] == f"{world.bot.ctx.public_url}/mattermost/command"
    assert command["auto_complete"] is True and command["auto_complete_hint"]
    assert command["auto_complete_desc"]

    # The bot comes back on another address (a new port): the same command now points there.
    await world.bot.stop()
    moved = BotApp(world.bot.settings, clock=world.clock)
    await moved.start()
    try:
        world.bot = moved
        [after] = await commands_of(world)
        assert after["id"] == command["id"]
        assert after["url"] == f"{moved.ctx.public_url}/mattermost/command" != command["url"]
        status, body = await world["alice"].command(world.town_square, "/playbook help")
        assert status == 200 and "/playbook run" in body["text"]
    finally:
        await moved.stop()


async def test_added_to_a_new_team_the_bot_registers_playbook_there(world: World) -> None:
    import asyncio

    resynced = asyncio.Event()
    original = world.bot.resync

    async def watched() -> None:
        await original()
        resynced.set()

    world.bot.resync = watched  # type: ignore[method-assign]
    status, team, _ = await world.admin.post("/teams", {"name": "ops", "display_name": "Ops", "type": "O"})
    assert status == 201, team
    status, body, _ = await world.admin.post(f"/teams/{team['id']}/members",
                                             {"team_id": team["id"], "user_id": world.bot_user_id})
    assert status == 201, body
    # The bot learns it from its WebSocket (added_to_team) and registers /playbook in the new team.
    await asyncio.wait_for(resynced.wait(), 5)
    status, commands, _ = await world.admin.get(f"/commands?team_id={team['id']}&custom_only=true")
    assert [c["trigger"] for c in commands] == ["playbook"]
    assert commands[0]["url"] == f"{world.bot.ctx.public_url}/mattermost/command"
