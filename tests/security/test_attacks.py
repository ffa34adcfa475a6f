"""Each attack found against the bot (issue 10), as the attacker ran it, now failing with nothing changed."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from sandbox import ops
from tests.e2e.conftest import World
from tests.security.conftest import Recorder


async def own_team_with_the_bot(world: World, who: str) -> tuple[dict[str, Any], str]:
    """An ordinary user makes a team (anyone may), adds the bot, and reads the bot's /playbook token there
    as its team admin may: (team, token)."""
    person = world[who]
    resynced = asyncio.Event()
    original = world.bot.resync

    async def watched() -> None:
        await original()
        resynced.set()

    world.bot.resync = watched  # type: ignore[method-assign]
    status, team, _ = await person.api.post("/teams", {"name": f"{who}s", "display_name": "Mine", "type": "I"})
    assert status == 201, team
    status, body, _ = await person.api.post(f"/teams/{team['id']}/members",
                                            {"team_id": team["id"], "user_id": world.bot_user_id})
    assert status == 201, body
    # The bot registers /playbook when its WebSocket says it joined the team (added_to_team).
    await asyncio.wait_for(resynced.wait(), 5)
    status, commands, _ = await person.api.get(f"/commands?team_id={team['id']}&custom_only=true")
    assert status == 200 and commands, commands
    return team, commands[0]["token"]


async def genuine_trigger(world: World, who: str, team_id: str, channel_id: str, rec: Recorder) -> dict[str, str]:
    """What the attacker can get legitimately: a Mattermost-signed form for himself, by running a slash
    command of his own that points at his own server."""
    person = world[who]
    status, cmd, _ = await person.api.post("/commands", {"team_id": team_id, "trigger": "grab", "method": "P",
                                                         "url": f"{rec.url}/grab"})
    assert status == 201, cmd
    before = len(rec.requests)
    status, body = await person.command(channel_id, "/grab")
    assert status == 200, body
    assert len(rec.requests) == before + 1
    return rec.requests[-1]["form"]


async def post_command(world: World, form: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, \
            session.post(f"{world.bot.url}/mattermost/command", data=form) as resp:
        return resp.status, await resp.json(content_type=None)


async def town_square_of(world: World, who: str, team_id: str) -> str:
    status, channel, _ = await world[who].api.get(f"/teams/{team_id}/channels/name/town-square")
    assert status == 200, channel
    return str(channel["id"])


async def test_1_a_forged_response_url_never_gets_the_bot_token(world: World, attacker_server: Recorder) -> None:
    team, token = await own_team_with_the_bot(world, "dave")
    town = await town_square_of(world, "dave", team["id"])
    grabbed = await genuine_trigger(world, "dave", team["id"], town, attacker_server)
    recorded = len(attacker_server.requests)
    form = {"token": token, "team_id": team["id"], "team_domain": team["name"], "channel_id": town,
            "channel_name": "town-square", "user_id": world["dave"].id, "user_name": "dave",
            "command": "/playbook", "text": "run onboarding stolen", "trigger_id": grabbed["trigger_id"],
            "response_url": f"{attacker_server.url}/steal"}
    status, body = await post_command(world, form)
    assert status == 200, body  # a valid request from dave in his own team: it is answered...
    await world.settle()
    # ...but nothing the bot sent reached the attacker's server: not the token, not a word.
    assert len(attacker_server.requests) == recorded
    assert not any(world.bot.settings.mattermost.token in a for a in attacker_server.authorizations())
    # dave still cannot make himself a system admin with anything he got.
    status, _, _ = await world["dave"].api.put(f"/users/{world['dave'].id}/roles",
                                               {"roles": "system_user system_admin"})
    assert status == 403


async def test_2_a_token_is_good_for_its_team_and_a_trigger_id_for_its_user(world: World,
                                                                           attacker_server: Recorder) -> None:
    team, token = await own_team_with_the_bot(world, "dave")
    town = await town_square_of(world, "dave", team["id"])
    grabbed = await genuine_trigger(world, "dave", team["id"], town, attacker_server)
    base = {"token": token, "channel_id": world.town_square, "command": "/playbook", "text": "list",
            "trigger_id": grabbed["trigger_id"], "response_url": ""}
    status, users, _ = await world.admin.get("/users?per_page=200")
    sysadmin = next(u["id"] for u in users if u["username"] == "sysadmin")
    forged = [
        {**base, "team_id": world.team_id, "user_id": world["dave"].id},  # dave's team's token, another team
        {**base, "team_id": team["id"], "user_id": world["alice"].id},  # dave's trigger id, as alice
        {**base, "team_id": team["id"], "user_id": sysadmin},  # ... as the system admin
        {**base, "team_id": team["id"], "user_id": "madeupuser000000000000000a"},  # ... as nobody at all
    ]
    for form in forged:
        status, body = await post_command(world, form)
        assert status == 401, (form, body)
    # The genuine trigger id was never spent by those refusals; used once for dave, a replay is refused.
    ok = {**base, "team_id": team["id"], "user_id": world["dave"].id, "channel_id": town}
    assert (await post_command(world, ok))[0] == 200
    assert (await post_command(world, ok))[0] == 401


async def start_run(world: World, playbook: str = "incident", name: str = "Checkout down") -> dict[str, Any]:
    status, body = await world["alice"].command(world.town_square, f"/playbook run {playbook} {name}")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    assert status == 200, runs
    return next(r for r in runs["items"] if r["name"] == name)


async def opened_dialog(world: World, who: str, since: int) -> dict[str, Any]:
    event = await world[who].wait_event(lambda e: e.get("event") == "open_dialog", since=since)
    return json.loads(event["data"]["dialog"])


async def post_dialog(world: World, dialog: dict[str, Any], user_id: str, submission: dict[str, Any],
                      channel_id: str = "", team_id: str = "") -> tuple[int, Any]:
    body = {"type": "dialog_submission", "callback_id": dialog["dialog"].get("callback_id", ""),
            "state": dialog["dialog"]["state"], "user_id": user_id, "channel_id": channel_id,
            "team_id": team_id, "submission": submission, "cancelled": False}
    async with aiohttp.ClientSession() as session, session.post(dialog["url"], json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_3_a_form_opened_for_bob_cannot_be_sent_as_alice(world: World) -> None:
    run = await start_run(world)
    since = len(world["bob"].events)
    status, body = await world["bob"].command(run["channel_id"], "/playbook update")
    assert status == 200, body
    dialog = await opened_dialog(world, "bob", since)
    status, body = await post_dialog(world, dialog, world["alice"].id, {
        "message": "All fine, see [details](http://phish.example)", "reminder": "30m", "finish": True},
        run["channel_id"], world.team_id)
    assert status == 403, body
    await world.settle()
    status, after = await world.run_json(run["id"])
    assert after["status"] == "in_progress" and after["status_updates"] == []
    # The start form too: opened for bob, sent as alice, it starts nothing.
    since = len(world["bob"].events)
    await world["bob"].command(world.town_square, "/playbook run")
    start = await opened_dialog(world, "bob", since)
    status, body = await post_dialog(world, start, world["alice"].id, {"playbook": "onboarding", "name": "As alice"},
                                     world.town_square, world.team_id)
    assert status == 403, body
    await world.settle()
    assert all(r["name"] != "As alice" for r in (await world.runs_json("alice"))[1]["items"])


async def test_4_one_form_sent_three_times_starts_one_run(world: World) -> None:
    since = len(world["bob"].events)
    await world["bob"].command(world.town_square, "/playbook run")
    start = await opened_dialog(world, "bob", since)
    answers = [await post_dialog(world, start, world["bob"].id, {"playbook": "onboarding", "name": "Once"},
                                 world.town_square, world.team_id) for _ in range(3)]
    await world.settle()
    assert [status for status, _ in answers] == [200, 200, 200]
    assert answers[0][1] == {} and all("already sent" in body.get("error", "") for _, body in answers[1:])
    runs = [r for r in (await world.runs_json("bob"))[1]["items"] if r["name"] == "Once"]
    assert len(runs) == 1
    # Through Mattermost itself (the web client's submit), a second send is refused the same way.
    since = len(world["bob"].events)
    await world["bob"].command(world.town_square, "/playbook run")
    again = await opened_dialog(world, "bob", since)
    first = await world["bob"].submit_dialog(again, world.town_square, world.team_id,
                                             {"playbook": "onboarding", "name": "Twice"})
    second = await world["bob"].submit_dialog(again, world.town_square, world.team_id,
                                              {"playbook": "onboarding", "name": "Twice"})
    await world.settle()
    assert first[0] == 200 and "already sent" in json.dumps(second[1])
    assert len([r for r in (await world.runs_json("bob"))[1]["items"] if r["name"] == "Twice"]) == 1


async def test_5_a_guest_sees_and_joins_no_run_it_was_not_let_into(world: World) -> None:
    run = await start_run(world, "onboarding", "Acme")  # a public channel: any team member may see it
    guest = ops.create_guest(world.sb.state, world.sb.hub, username="gina", password="Password1!",
                             email="gina@example.com")
    status, body, _ = await world.admin.post(f"/teams/{world.team_id}/members",
                                             {"team_id": world.team_id, "user_id": guest.id})
    assert status == 201, body
    status, body, _ = await world.admin.post(f"/channels/{world.town_square}/members", {"user_id": guest.id})
    assert status == 201, body
    status, tok, _ = await world.admin.post(f"/users/{guest.id}/tokens", {"description": "guest"})
    assert status == 200, tok
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {tok['token']}"}
        async with session.get(f"{world.bot.url}/api/v0/runs", headers=headers) as resp:
            assert resp.status == 200 and (await resp.json())["items"] == []
        async with session.get(f"{world.bot.url}/api/v0/runs/{run['id']}", headers=headers) as resp:
            assert resp.status == 404
        status, body, _ = await world.admin.as_(tok["token"]).post(
            "/commands/execute", {"channel_id": world.town_square, "command": '/playbook join --run "Acme"'})
    assert status == 200, body
    await world.settle()
    status, after = await world.run_json(run["id"])
    assert guest.id not in after["participant_ids"]
    status, members, _ = await world.admin.get(f"/channels/{run['channel_id']}/members")
    assert guest.id not in [m["user_id"] for m in members]
    # Alice may not bring the guest in with the bot's rights either; a system admin may.
    status, body = await world["alice"].command(run["channel_id"], "/playbook assign 1.1 @gina")
    assert status == 200, body
    await world.settle()
    assert guest.id not in (await world.run_json(run["id"]))[1]["participant_ids"]
    assert any("guest account" in text for text in world["alice"].ephemerals())
