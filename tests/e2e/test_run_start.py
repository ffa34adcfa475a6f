"""A person starts a run with /playbook run and works its checklist with the buttons."""
from __future__ import annotations

import asyncio
import json

from tests.conftest import attachments_text
from tests.e2e.conftest import World


async def start_incident(world: World, text: str = "/playbook run incident Database down") -> dict:
    alice = world["alice"]
    status, body = await alice.command(world.town_square, text)
    assert status == 200, body
    assert "Starting" in body["text"]
    await world.settle()
    status, runs = await world.runs_json("alice")
    assert status == 200, runs
    return runs["items"][0]


async def test_run_opens_channel_with_members_categories_and_posts(world: World) -> None:
    run = await start_incident(world)
    assert run["name"] == "Database down"
    assert run["playbook"] == {"id": "incident", "title": "Incident response"}
    assert run["status"] == "in_progress"

    # The channel: private, display name from the template, members from the playbook.
    status, channel, _ = await world.admin.get(f"/channels/{run['channel_id']}")
    assert status == 200
    assert channel["type"] == "P"
    assert channel["display_name"] == "inc-001 Database down"
    status, members, _ = await world.admin.get(f"/channels/{run['channel_id']}/members")
    member_ids = {m["user_id"] for m in members}
    for name in ("alice", "bob", "carol"):
        assert world[name].id in member_ids
    assert world["dave"].id not in member_ids
    owner = next(m for m in members if m["user_id"] == world["alice"].id)
    assert "channel_admin" in owner["roles"].split()

    # Every human member finds it under the playbook's sidebar category.
    for name in ("alice", "bob", "carol"):
        person = world[name]
        status, cats, _ = await person.api.get(f"/users/{person.id}/teams/{world.team_id}/channels/categories")
        assert status == 200
        incidents = [c for c in cats["categories"] if c["display_name"] == "Incidents"]
        assert len(incidents) == 1, (name, [c["display_name"] for c in cats["categories"]])
        assert run["channel_id"] in incidents[0]["channel_ids"]

    # Posts: overview, one interactive post per checklist, the welcome.
    posts = await world.posts(run["channel_id"])
    bot_posts = [p for p in posts if p["user_id"] == world.bot_user_id and not p["type"]]
    assert "Database down" in bot_posts[0]["message"] and "0/5" in attachments_text(bot_posts[0]["props"])
    triage = bot_posts[1]
    assert "Triage" in triage["message"]
    attachments = triage["props"]["attachments"]
    assert len(attachments) == 3
    assert "@alice" in attachments[0]["text"] and "due" in attachments[0]["text"]
    assert [a["name"] for a in attachments[0]["actions"]] == ["Check", "Skip", "Assign to me"]
    # Clients never see the integration (url and signed context) of a button.
    assert all("integration" not in a for a in attachments[0]["actions"])
    # A title that says @channel does not ping the channel.
    assert "@channel" not in attachments[2]["text"]
    assert any("Read the runbook first." in p["message"] for p in bot_posts)

    # The broadcast channel announces it; the starter is told where it is.
    town = await world.posts(world.town_square)
    assert any("Database down" in p["message"] and p["user_id"] == world.bot_user_id for p in town)
    await world["alice"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                    and "has started" in json.loads(e["data"]["post"])["message"])


async def test_clicking_check_updates_the_post_and_the_run(world: World) -> None:
    run = await start_incident(world)
    posts = await world.posts(run["channel_id"])
    triage = [p for p in posts if p["user_id"] == world.bot_user_id and "Triage" in p["message"]][0]

    status, body = await world["bob"].click(triage["id"], "check1")
    assert status == 200, body
    await world.settle()
    after = await world.post(triage["id"])
    assert "1/3 done" in attachments_text(after["props"])
    assert [a["name"] for a in after["props"]["attachments"][1]["actions"]] == ["Uncheck"]
    assert "integration" not in after["props"]["attachments"][1]["actions"][0]

    status, data = await world.run_json(run["id"])
    assert data["checklists"][0]["items"][1]["state"] == "closed"
    assert any(e["type"] == "item_state_changed" and e["actor_id"] == world["bob"].id for e in data["timeline"])
    overview_id = next(p["id"] for p in posts if p["user_id"] == world.bot_user_id and not p["type"])
    overview = await world.post(overview_id)
    assert "1/5" in attachments_text(overview["props"])

    # A double click acts once: the second "check" finds the item closed and records nothing.
    status, body = await world["bob"].click(triage["id"], "check1")
    # The button is gone after the first click's update, as in the web app.
    assert status == 404
    status, data = await world.run_json(run["id"])
    assert sum(1 for e in data["timeline"] if e["type"] == "item_state_changed") == 1


async def test_concurrent_clicks_on_one_checklist_both_stick(world: World) -> None:
    run = await start_incident(world)
    posts = await world.posts(run["channel_id"])
    triage = [p for p in posts if p["user_id"] == world.bot_user_id and "Triage" in p["message"]][0]
    results = await asyncio.gather(world["bob"].click(triage["id"], "check0"),
                                   world["carol"].click(triage["id"], "skip2"))
    assert [r[0] for r in results] == [200, 200]
    await world.settle()

    def first_buttons(post: dict) -> list[str]:
        return [a["actions"][0]["name"] for a in post["props"]["attachments"]]

    after = await world.wait_post(triage["id"], lambda p: first_buttons(p) == ["Uncheck", "Check", "Restore"])
    assert "2/3 done" in attachments_text(after["props"])
    status, data = await world.run_json(run["id"])
    assert [i["state"] for i in data["checklists"][0]["items"]] == ["closed", "open", "skipped"]


async def test_non_participant_click_is_explained_and_changes_nothing(world: World) -> None:
    run = await start_incident(world, "/playbook run onboarding Acme")
    posts = await world.posts(run["channel_id"])
    kickoff = [p for p in posts if p["user_id"] == world.bot_user_id and "Kick-off" in p["message"]][0]
    status, body = await world["dave"].click(kickoff["id"], "check0")
    assert status == 200, body
    text = await world["dave"].wait_event(
        lambda e: e.get("event") == "ephemeral_message" and "participants" in json.loads(e["data"]["post"])["message"])
    assert "/playbook join" in json.loads(text["data"]["post"])["message"]
    status, data = await world.run_json(run["id"])
    assert data["checklists"][0]["items"][0]["state"] == "open"


async def test_a_stale_checklist_post_is_mended_from_the_rows(world: World) -> None:
    """If Mattermost ends up showing an older picture (updates applied out of order, someone's edit),
    the bot notices the `post_edited` and renders the post again from its rows."""
    run = await start_incident(world)
    posts = await world.posts(run["channel_id"])
    triage = [p for p in posts if p["user_id"] == world.bot_user_id and "Triage" in p["message"]][0]
    status, _ = await world["bob"].click(triage["id"], "check0")
    assert status == 200
    # An admin puts the old picture back, as a late, stale update would. Only the props: the message is
    # the post's fixed title, and a patch naming `message` is refused past PostEditTimeLimit.
    status, body, _ = await world.admin.put(f"/posts/{triage['id']}/patch", {"props": triage["props"]})
    assert status == 200, body
    mended = await world.wait_post(triage["id"], lambda p: "1/3 done" in attachments_text(p["props"]))
    assert mended["props"]["attachments"][0]["actions"][0]["name"] == "Uncheck"
    # The buttons work again after the mend (their integrations came back with the rendering).
    status, _ = await world["bob"].click(triage["id"], "uncheck0")
    assert status == 200


async def test_a_click_whose_picture_cannot_be_drawn_is_still_kept_and_explained(world: World, monkeypatch) -> None:
    run = await start_incident(world)
    posts = await world.posts(run["channel_id"])
    triage = [p for p in posts if p["user_id"] == world.bot_user_id and "Triage" in p["message"]][0]
    import handlers.items

    async def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(handlers.items, "render_latest", broken)
    status, body = await world["bob"].click(triage["id"], "check0")
    assert status == 200, body
    await world["bob"].wait_event(lambda e: e.get("event") == "ephemeral_message"
                                  and "could not redraw" in json.loads(e["data"]["post"])["message"])
    _, data = await world.run_json(run["id"])
    assert data["checklists"][0]["items"][0]["state"] == "closed"


async def test_the_overview_names_who_is_in_the_run_and_when_the_first_update_is_due(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    posts = await world.posts(ch)
    [overview] = [p for p in posts if p["props"].get("playbooks_part") == "overview"]
    # From its first rendering, before anyone touched the run.
    assert overview["edit_at"] == 0
    text = attachments_text(overview["props"])
    assert "In this run: @alice, @bob, @carol" in text
    assert "Next status update due " in text
    # Someone who joins later is named too.
    status, body = await world["alice"].command(ch, "/playbook assign 2.1 @dave")
    assert status == 200, body
    await world.settle()
    shown = await world.wait_post(overview["id"], lambda p: "@dave" in attachments_text(p["props"]))
    assert "In this run: @alice, @bob, @carol, @dave" in attachments_text(shown["props"])
