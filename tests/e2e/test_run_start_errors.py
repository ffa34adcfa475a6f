"""/playbook run with bad input, and Mattermost failing halfway: clear messages, nothing orphaned."""
from __future__ import annotations

import json

import aiohttp
import pytest

from tests.e2e.conftest import INCIDENT, ONBOARDING, World


def last_ephemeral(world: World, name: str) -> str:
    texts = world[name].ephemerals()
    return texts[-1] if texts else ""


async def test_unknown_playbook_lists_the_choices(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run nosuch thing")
    assert status == 200
    assert "no playbook called **nosuch**" in body["text"]
    assert "`incident`" in body["text"] and "`onboarding`" in body["text"]
    status, runs = await world.runs_json("alice")
    assert runs["total"] == 0


async def test_playbook_found_by_title_case_insensitively(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run INCIDENT RESPONSE api slow")
    assert status == 200 and "Starting **api slow**" in body["text"], body
    await world.settle()
    status, runs = await world.runs_json("alice")
    assert [r["name"] for r in runs["items"]] == ["api slow"]


async def test_same_run_name_twice_gets_two_channels(world: World) -> None:
    for _ in range(2):
        status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Acme")
        assert status == 200, body
        await world.settle()
    status, runs = await world.runs_json("alice")
    channels = {r["channel_id"] for r in runs["items"]}
    assert len(channels) == 2
    names = set()
    for cid in channels:
        _, channel, _ = await world.admin.get(f"/channels/{cid}")
        names.add(channel["name"])
        assert channel["display_name"] == "onb Acme"
    assert len(names) == 2  # the second got a suffix: channel names are unique per team


async def test_archived_channel_name_is_not_reused(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Globex")
    await world.settle()
    _, runs = await world.runs_json("alice")
    first = runs["items"][0]["channel_id"]
    status, _, _ = await world.admin.delete(f"/channels/{first}")
    assert status == 200
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Globex")
    await world.settle()
    _, runs = await world.runs_json("alice")
    channels = {r["channel_id"] for r in runs["items"]}
    assert len(runs["items"]) == 2 and len(channels) == 2 and first in channels


async def test_a_2000_character_name_is_refused_with_the_limit(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding " + "x" * 2000)
    assert status == 200
    assert "2000 characters" in body["text"] and "1024" in body["text"]
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0


async def test_a_long_name_is_kept_whole_and_the_channel_name_shortened(world: World) -> None:
    name = "Checkout latency above the SLO for customers in the EU region since the deploy"
    status, body = await world["alice"].command(world.town_square, f"/playbook run onboarding {name}")
    await world.settle()
    _, runs = await world.runs_json("alice")
    run = runs["items"][0]
    assert run["name"] == name
    _, channel, _ = await world.admin.get(f"/channels/{run['channel_id']}")
    assert len(channel["display_name"]) <= 64 and channel["display_name"].startswith("onb Checkout")
    assert len(channel["name"]) <= 64


@pytest.mark.parametrize("name", ["🔥🔥🔥", "Ошибка в оплате", "障害対応"])
async def test_non_ascii_and_emoji_names_get_a_valid_channel(world: World, name: str) -> None:
    status, body = await world["alice"].command(world.town_square, f"/playbook run onboarding {name}")
    assert status == 200, body
    await world.settle()
    _, runs = await world.runs_json("alice")
    run = runs["items"][0]
    assert run["name"] == name
    _, channel, _ = await world.admin.get(f"/channels/{run['channel_id']}")
    assert channel["display_name"] == f"onb {name}"


MISSING_MEMBER = INCIDENT.replace('members = ["bob", "carol"]', 'members = ["bob", "ghost"]')


@pytest.mark.parametrize("world_options", [{"bot_roles": "system_user system_admin",
                                            "playbooks": {"incident": MISSING_MEMBER}}])
async def test_member_who_does_not_exist_is_reported_and_the_run_starts(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run incident Login broken")
    assert status == 200, body
    await world.settle()
    _, runs = await world.runs_json("alice")
    run = runs["items"][0]
    posts = await world.posts(run["channel_id"])
    assert any("@ghost" in p["message"] and "does not exist" in p["message"] for p in posts)
    _, members, _ = await world.admin.get(f"/channels/{run['channel_id']}/members")
    assert world["bob"].id in {m["user_id"] for m in members}


async def test_member_not_in_the_team_is_reported(world: World, tmp_path) -> None:
    status, user, _ = await world.admin.post("/users", {"username": "outsider", "email": "o@example.com",
                                                        "password": "Password1!"})
    assert status == 201
    (world.playbooks_dir / "incident.toml").write_text(INCIDENT.replace('"carol"]', '"carol", "outsider"]'))
    from bot.playbooks import load_playbooks

    world.bot.ctx.playbooks, _ = load_playbooks(world.playbooks_dir)
    await world["alice"].command(world.town_square, "/playbook run incident Payments down")
    await world.settle()
    _, runs = await world.runs_json("alice")
    posts = await world.posts(runs["items"][0]["channel_id"])
    assert any("@outsider is not a member of this team" in p["message"] for p in posts)


async def test_a_500_while_adding_a_member_is_reported_and_the_run_goes_on(world: World) -> None:
    # Every attempt to add bob fails (the gateway retries 5xx), the others succeed.
    world.sb.fail("POST", r"/api/v4/channels/[a-z0-9]+/members", status=500, times=1)
    world.sb.fail("POST", r"/api/v4/channels/[a-z0-9]+/members", status=500, times=10)
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Initech")
    assert status == 200, body
    await world.settle()
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 1
    run = runs["items"][0]
    posts = await world.posts(run["channel_id"])
    assert any("Mattermost answered 500" in p["message"] for p in posts), [p["message"] for p in posts]
    assert any("Kick-off" in p["message"] for p in posts)  # the checklist still came


async def test_channel_creation_failing_leaves_nothing_behind(world: World) -> None:
    world.sb.fail("POST", r"/api/v4/channels", status=403, times=1)
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Umbrella")
    assert status == 200
    await world.settle()
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0
    text = await world["alice"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                           and "could not be started" in json.loads(e["data"]["post"])["message"])
    assert "create the channel" in json.loads(text["data"]["post"])["message"]


BROKEN = 'title = "Broken"\n[[checklists]]\ntitle = 3\n'


@pytest.mark.parametrize("world_options", [{"bot_roles": "system_user system_admin",
                                            "playbooks": {"onboarding": ONBOARDING, "broken": BROKEN}}])
async def test_a_broken_playbook_file_does_not_stop_the_others(world: World) -> None:
    assert "onboarding" in world.bot.ctx.playbooks and "broken" not in world.bot.ctx.playbooks
    assert any("broken.toml" in str(e) for e in world.bot.ctx.playbook_errors)
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Hooli")
    assert "Starting" in body["text"]


@pytest.mark.parametrize("world_options", [{"bot_roles": "system_user", "team_admin": True,
                                            "playbooks": {"incident": INCIDENT}}])
async def test_without_edit_other_users_one_notice_explains_how_to_grant_it(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run incident Disk full")
    assert status == 200, body
    await world.settle()
    _, runs = await world.runs_json("alice")
    run = runs["items"][0]
    posts = await world.posts(run["channel_id"])
    notices = [p for p in posts if "edit_other_users" in p["message"]]
    assert len(notices) == 1
    assert "System Admin" in notices[0]["message"]
    # Without create_post_ephemeral the starter still hears about it, through the response_url.
    await world["alice"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                    and "has started" in json.loads(e["data"]["post"])["message"])


async def test_forged_and_unsigned_clicks_are_refused(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Forge")
    await world.settle()
    _, runs = await world.runs_json("alice")
    run = runs["items"][0]
    item_id = run["checklists"][0]["items"][0]["id"]
    async with aiohttp.ClientSession() as session:
        for context in ({}, {"k": "check", "v": 1, "f": [run["id"], item_id], "s": "0" * 32},
                        {"k": "check", "v": 1, "f": [run["id"], item_id]}):
            async with session.post(f"{world.bot.url}/mattermost/action",
                                    json={"user_id": world["alice"].id, "context": context}) as resp:
                assert resp.status == 403
        async with session.post(f"{world.bot.url}/mattermost/command",
                                data={"token": "wrong", "text": "run onboarding x",
                                      "user_id": world["alice"].id}) as resp:
            assert resp.status == 401
    _, data = await world.run_json(run["id"])
    assert data["checklists"][0]["items"][0]["state"] == "open"


async def test_api_shows_each_caller_only_their_runs(world: World) -> None:
    await world["alice"].command(world.town_square, "/playbook run incident Secret outage")
    await world["alice"].command(world.town_square, "/playbook run onboarding Public customer")
    await world.settle()
    _, alice = await world.runs_json("alice")
    assert alice["total"] == 2
    _, dave = await world.runs_json("dave")  # a team member who is in neither run
    assert [r["name"] for r in dave["items"]] == ["Public customer"]
    private = next(r for r in alice["items"] if r["name"] == "Secret outage")
    status, _ = await world.run_json(private["id"], "dave")
    assert status == 404
    status, _ = await world.run_json(private["id"], "bob")
    assert status == 200
    _, finished = await world.runs_json("alice", "?status=finished")
    assert finished["total"] == 0
    _, bad = await world.runs_json("alice", "?status=nope")
    assert "status must be one of" in bad["error"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{world.bot.url}/api/v0/runs", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
        async with session.get(f"{world.bot.url}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["checks"]["slash_command"] is True


async def test_team_at_its_channel_limit_gets_a_clear_answer_and_nothing_is_left(world: World) -> None:
    # An archived channel of the team, then the limit set to exactly what the team has, archived included
    # (app/channel.go CreateChannelWithUser counts GetTeamChannels, which keeps archived ones).
    status, old, _ = await world.admin.post("/channels", {"team_id": world.team_id, "name": "old-incident",
                                                          "display_name": "Old incident", "type": "O"})
    assert status == 201, old
    status, _, _ = await world.admin.delete(f"/channels/{old['id']}")
    assert status == 200
    count = sum(1 for c in world.sb.state.channels.values() if c.team_id == world.team_id)
    status, _, _ = await world.admin.put("/config/patch", {"TeamSettings": {"MaxChannelsPerTeam": count}})
    assert status == 200
    channels_before = set(world.sb.state.channels)
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Initech")
    assert status == 200
    await world.settle()
    event = await world["alice"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                            and "could not be started" in json.loads(e["data"]["post"])["message"])
    text = json.loads(event["data"]["post"])["message"]
    assert "TeamSettings.MaxChannelsPerTeam" in text and "Archived channels count" in text
    assert "api.channel.create_channel.max_channel_limit.app_error" in text
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0
    assert set(world.sb.state.channels) == channels_before
