"""/playbook run with bad input, and Mattermost failing halfway: clear messages, nothing orphaned."""
from __future__ import annotations

import json

import aiohttp
import pytest

from handlers.runs import JOB, MAX_ATTEMPTS
from storage import runs as runs_rows
from storage import starts
from tests.conftest import attachments_text
from tests.e2e.conftest import INCIDENT, ONBOARDING, World


async def retry_starts(world: World, times: int = 1) -> None:
    """Let each pending backoff of a run start run out (the clock moves; nothing sleeps), as many times."""
    service = world.bot.ctx.jobs[JOB]
    for _ in range(times):
        world.clock.advance(60)
        await service.run_due()  # type: ignore[attr-defined]
        await world.settle()


def failure_told(world: World) -> list[str]:
    return [t for t in world["alice"].ephemerals() if "could not be started" in t]


async def told_failure(world: World) -> str:
    event = await world["alice"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                            and "could not be started" in json.loads(e["data"]["post"])["message"])
    return str(json.loads(event["data"]["post"])["message"])


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


async def test_a_500_while_adding_members_is_retried_and_the_run_goes_on(world: World) -> None:
    # alice (starter and owner) goes in first; then bob's and carol's adds fail through all of the
    # gateway's tries (4 each), so the step is tried again after its backoff and both get in.
    world.sb.fail("POST", r"/api/v4/channels/[a-z0-9]+/members", status=500, times=8, after=1)
    status, body = await world["alice"].command(world.town_square, "/playbook run incident Initech")
    assert status == 200, body
    await world.settle()
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0  # still starting: in no list until it is complete
    await retry_starts(world)
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 1
    run = runs["items"][0]
    _, members, _ = await world.admin.get(f"/channels/{run['channel_id']}/members")
    assert {world[n].id for n in ("alice", "bob", "carol")} <= {m["user_id"] for m in members}
    assert set(run["participant_ids"]) >= {world[n].id for n in ("alice", "bob", "carol")}
    posts = await world.posts(run["channel_id"])
    assert not any("Mattermost answered 500" in p["message"] for p in posts)
    await world["alice"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                    and "has started" in json.loads(e["data"]["post"])["message"])


@pytest.mark.parametrize("world_options", [{"bot_roles": "system_user system_admin",
                                            "playbooks": {"incident": INCIDENT},
                                            "env": {"BOT_MATTERMOST_RETRIES": "0"}}])
async def test_a_member_mattermost_keeps_refusing_is_reported_and_the_run_goes_on(world: World) -> None:
    world.sb.fail("POST", r"/api/v4/channels/[a-z0-9]+/members", status=500, times=1000, after=1)
    status, body = await world["alice"].command(world.town_square, "/playbook run incident Initech")
    assert status == 200, body
    await world.settle()
    await retry_starts(world, times=MAX_ATTEMPTS - 1)
    world.sb.clear_faults()
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 1
    run = runs["items"][0]
    _, members, _ = await world.admin.get(f"/channels/{run['channel_id']}/members")
    ids = {m["user_id"] for m in members}
    assert world["alice"].id in ids and world["bob"].id not in ids
    posts = await world.posts(run["channel_id"])
    problems = [p["message"] for p in posts if "could not be added" in p["message"]]
    assert len(problems) == 1 and "@bob" in problems[0] and "@carol" in problems[0], problems
    assert "Mattermost answered 500" in problems[0]
    assert any("Kick-off" in p["message"] or "Triage" in p["message"] for p in posts)  # the checklists came


@pytest.mark.parametrize("world_options", [{"bot_roles": "system_user system_admin",
                                            "playbooks": {"onboarding": ONBOARDING},
                                            "env": {"BOT_MATTERMOST_RETRIES": "0"}}])
async def test_the_starter_left_out_by_500s_is_retried_then_the_start_rolled_back(world: World) -> None:
    """alice's own run must not exist without her: a 500 on adding her is retried with backoff, and when
    it never works the channel is archived again and she is told why."""
    world.sb.fail("POST", r"/api/v4/channels/[a-z0-9]+/members", status=500, times=1000)
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Initech")
    assert status == 200, body
    await world.settle()
    [start] = await world.bot.ctx.db.run(starts.unfinished)
    await retry_starts(world, times=MAX_ATTEMPTS - 2)
    assert not failure_told(world)  # still trying
    await retry_starts(world)
    text = await told_failure(world)
    assert "add you and the owner to the channel" in text and f"{MAX_ATTEMPTS} tries" in text
    assert "archived again" in text
    stored = await world.bot.ctx.db.run(starts.get_start, start.run_id)
    assert stored is not None and stored.state == "failed" and stored.channel_id
    assert world.sb.state.channels[stored.channel_id].delete_at > 0
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0
    status, _ = await world.run_json(start.run_id)
    assert status == 404


async def test_a_permanent_refusal_to_add_the_owner_rolls_the_start_back_at_once(world: World) -> None:
    world.sb.fail("POST", r"/api/v4/channels/[a-z0-9]+/members", status=403, times=1)
    before = set(world.sb.state.channels)
    status, body = await world["alice"].command(world.town_square, "/playbook run incident Payments")
    assert status == 200, body
    await world.settle()
    text = await told_failure(world)
    assert "I could not add @alice to the channel: Mattermost answered 403" in text
    [made] = [c for cid, c in world.sb.state.channels.items() if cid not in before]
    assert made.delete_at > 0 and f"~{made.name}" in text  # archived again, and she is told which
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0
    town = await world.posts(world.town_square)
    assert not any("Payments" in p["message"] for p in town if p["user_id"] == world.bot_user_id)  # no broadcast


@pytest.mark.parametrize("after", [1, 2])
@pytest.mark.parametrize("handled", [False, True], ids=["refused", "answer-lost"])
async def test_a_500_on_a_checklist_post_is_retried_and_the_run_completes_with_each_post_once(
        world: World, after: int, handled: bool) -> None:
    """The 2nd or 3rd post of the start fails (refused, or made with its answer lost); the start is tried
    again after the backoff, finds a post made but not recorded by its marker, and ends with one overview
    and one post per checklist, all recorded, the overview right."""
    world.sb.fail("POST", r"/api/v4/posts", status=500, times=1, after=after, handled=handled)
    status, body = await world["alice"].command(world.town_square, "/playbook run incident Checkout down")
    assert status == 200, body
    await world.settle()
    [start] = await world.bot.ctx.db.run(starts.unfinished)
    assert start.step == "posts" and start.attempts == 1
    if after == 2:  # the Triage post is out already: its buttons wait for the start to complete
        triage = next(p for p in await world.posts(start.channel_id) if "Triage" in p["message"])
        status, _ = await world["bob"].click(triage["id"], "check0")
        assert status == 200
        await world["bob"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                      and "still starting" in json.loads(e["data"]["post"])["message"])
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0
    await retry_starts(world)
    _, runs = await world.runs_json("alice")
    [run] = runs["items"]
    assert run["status"] == "in_progress"
    posts = [p for p in await world.posts(run["channel_id"]) if p["user_id"] == world.bot_user_id and not p["type"]]
    overview = [p for p in posts if "Checkout down" in p["message"]]
    triage = [p for p in posts if "Triage" in p["message"]]
    resolve = [p for p in posts if "Resolve" in p["message"]]
    assert (len(overview), len(triage), len(resolve)) == (1, 1, 1), [p["message"][:30] for p in posts]
    view = await world.bot.ctx.db.run(runs_rows.load_view, run["id"])
    assert view is not None
    assert [c.post_id for c, _ in view.checklists] == [triage[0]["id"], resolve[0]["id"]]
    assert view.run.overview_post_id == overview[0]["id"]
    assert "0/5" in attachments_text((await world.post(overview[0]["id"]))["props"])
    status, _ = await world["bob"].click(triage[0]["id"], "check0")
    assert status == 200
    await world.settle()
    shown = await world.wait_post(overview[0]["id"], lambda p: "1/5" in attachments_text(p["props"]))
    assert "1/5" in attachments_text(shown["props"])
    await world["alice"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                    and "has started" in json.loads(e["data"]["post"])["message"])


async def test_a_channel_made_but_its_answer_lost_is_adopted_not_made_twice(world: World) -> None:
    world.sb.fail("POST", r"/api/v4/channels", status=500, times=1, handled=True)
    status, body = await world["alice"].command(world.town_square, "/playbook run incident Lost answer")
    assert status == 200, body
    await world.settle()
    await retry_starts(world)
    made = [c for c in world.sb.state.channels.values() if c.display_name.endswith("Lost answer")]
    assert len(made) == 1 and not made[0].delete_at
    _, runs = await world.runs_json("alice")
    [run] = runs["items"]
    assert run["channel_id"] == made[0].id
    posts = await world.posts(run["channel_id"])
    assert sum(1 for p in posts if "Triage" in p["message"]) == 1


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
