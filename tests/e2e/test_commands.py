"""People work a run by typing /playbook commands in Mattermost (the sandbox), and read the result back."""
from __future__ import annotations

import json

from tests.conftest import attachments_text
from tests.e2e.conftest import World
from tests.e2e.test_run_start import start_incident


async def type_(world: World, who: str, channel_id: str, text: str) -> str:
    world.clock.advance(1)  # successive events keep their order on the timeline
    status, body = await world[who].command(channel_id, text)
    assert status == 200, body
    await world.settle()
    assert body.get("response_type", "ephemeral") == "ephemeral", body
    return body["text"]


async def checklist_post(world: World, channel_id: str, title: str) -> dict:
    posts = await world.posts(channel_id)
    return [p for p in posts if p["user_id"] == world.bot_user_id and title in p["message"]][0]


async def test_items_by_number_and_title_update_posts_and_timeline(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    assert await type_(world, "bob", ch, "/playbook check 1.2") == "Checked **1.2** Open a bridge call."
    assert "Skipped **1.3**" in await type_(world, "carol", ch, "/playbook skip tell channel")
    text = await type_(world, "bob", ch, "/playbook check the")
    assert "matches several items" in text and "`2.2` Deploy the fix" in text

    triage = await checklist_post(world, ch, "Triage")
    assert "2/3 done" in attachments_text(triage["props"])
    actions = [[a["name"] for a in att["actions"]] for att in triage["props"]["attachments"]]
    assert actions == [["Check", "Skip", "Assign to me"], ["Uncheck"], ["Restore"]]
    # The button the command changed is the same button a click would have changed.
    world.clock.advance(1)
    status, body = await world["bob"].click(triage["id"], "uncheck1")
    assert status == 200, body
    await world.settle()

    status, data = await world.run_json(run["id"])
    assert [i["state"] for i in data["checklists"][0]["items"]] == ["open", "open", "skipped"]
    changes = [e for e in data["timeline"] if e["type"] == "item_state_changed"]
    assert [e["actor_id"] for e in changes] == [world["bob"].id, world["carol"].id, world["bob"].id]


async def test_add_remove_assign_due(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    assert "Added **2.3** Roll back @​all" in await type_(world, "alice", ch, "/playbook add resolve Roll back @all")
    assert "Removed **1.1**" in await type_(world, "alice", ch, "/playbook remove 1.1")
    assert "now a participant" in await type_(world, "alice", ch, "/playbook assign 2.3 @dave")
    assert "is now due" in await type_(world, "alice", ch, "/playbook due 2.3 1h30m")
    resolve = await checklist_post(world, ch, "Resolve")
    last = resolve["props"]["attachments"][-1]["text"]
    assert "**2.3**" in last and "@dave" in last and "due" in last and "@all" not in last
    status, data = await world.run_json(run["id"])
    assert [len(c["items"]) for c in data["checklists"]] == [2, 3]
    assert data["checklists"][1]["items"][2]["assignee_id"] == world["dave"].id
    assert data["checklists"][1]["items"][2]["due_at"] is not None
    assert world["dave"].id in data["participant_ids"]
    types = [e["type"] for e in data["timeline"]]
    for kind in ("item_added", "item_removed", "assignee_changed", "participant_joined"):
        assert kind in types, kind
    # Joining through assign put dave in the private channel.
    status, members, _ = await world.admin.get(f"/channels/{ch}/members")
    assert world["dave"].id in {m["user_id"] for m in members}


async def test_list_info_owner_todo_from_anywhere(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    await type_(world, "alice", ch, "/playbook assign 2.1 @carol")
    text = await type_(world, "alice", world.town_square, "/playbook list")
    assert "Database down" in text
    text = await type_(world, "carol", world.town_square, '/playbook info --run "Database down"')
    assert "### Database down" in text and "Owner @alice" in text and "**0/5**" in text
    assert "Next status update due" in text
    text = await type_(world, "carol", world.town_square, "/playbook todo")
    assert "`2.1` Find the cause" in text
    assert "@bob now owns the run" in await type_(world, "alice", ch, "/playbook owner @bob")
    status, data = await world.run_json(run["id"])
    assert data["owner_id"] == world["bob"].id
    assert any(e["type"] == "owner_changed" and e["summary"] == "@alice to @bob" for e in data["timeline"])
    # Dave is outside the private run: he cannot see or change it.
    assert "No run you can see" in await type_(world, "dave", world.town_square, '/playbook info --run "Database down"')


async def test_join_leave_follow_on_a_public_run(world: World) -> None:
    run = await start_incident(world, "/playbook run onboarding Acme")
    ch = run["channel_id"]
    dave = world["dave"]
    text = await type_(world, "dave", world.town_square, "/playbook join --run Acme")
    assert "You take part in **Acme** now" in text
    status, members, _ = await world.admin.get(f"/channels/{ch}/members")
    assert dave.id in {m["user_id"] for m in members}
    assert "Checked **1.1**" in await type_(world, "dave", ch, "/playbook check 1.1")
    assert "no longer take part" in await type_(world, "dave", ch, "/playbook leave")
    assert "/playbook join" in await type_(world, "dave", ch, "/playbook uncheck 1.1")
    assert "can't leave" in await type_(world, "alice", ch, "/playbook leave")
    assert "no longer follow" in await type_(world, "dave", ch, "/playbook unfollow")
    status, data = await world.run_json(run["id"], who="dave")
    assert status == 200 and dave.id not in data["participant_ids"]
    assert [e["type"] for e in data["timeline"] if e["type"].startswith("participant")] == [
        "participant_joined", "participant_left"]


async def test_run_command_hands_over_the_expanded_command(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    text = await type_(world, "alice", ch, "/playbook run-command deploy")
    assert "`$service`" in text and "run summary" in text
    status, data = await world.run_json(run["id"])
    assert not any(e["type"] == "command_ran" for e in data["timeline"])


async def test_help_and_the_registered_autocomplete(world: World) -> None:
    text = await type_(world, "alice", world.town_square, "/playbook")
    assert "`/playbook check <item: 2.3 or title words>" in text
    status, commands, _ = await world.admin.get(f"/commands?team_id={world.team_id}&custom_only=true")
    assert status == 200
    [cmd] = [c for c in commands if c["trigger"] == "playbook"]
    assert cmd["auto_complete"] and cmd["auto_complete_hint"] and cmd["auto_complete_desc"]
    assert json.dumps(cmd)  # registered as a whole
