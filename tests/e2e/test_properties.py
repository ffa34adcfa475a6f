"""Run properties and the items they show, and items a post in the run's channel checks: through the start
dialog and the command, `/playbook set` later, and the `posted` WebSocket event, against the sandbox."""
from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from storage import runs as run_rows
from tests.conftest import attachments_text
from tests.e2e.conftest import INCIDENT, ONBOARDING, World
from tests.e2e.test_commands import checklist_post, type_

PROPS = INCIDENT.replace('[status_updates]', '''
[[properties]]
name = "severity"
title = "Severity"
type = "select"
options = ["sev1", "sev2", "sev3"]

[[properties]]
name = "services"
title = "Services"
type = "multiselect"
options = ["api", "db"]

[status_updates]''') + '''
  [[checklists.items]]
  title = "Page the executive"
  when = { property = "severity", is = ["sev1", "sev2"] }
  [[checklists.items]]
  title = "Watch the rollout"
  [checklists.items.auto_check]
  keywords = ["deployed", "rolled back"]
  users = ["bob"]
  [[checklists.items]]
  title = "Anyone may say it"
  [checklists.items.auto_check]
  keywords = ["all clear"]
'''


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": PROPS, "onboarding": ONBOARDING}}


def resolve_titles(post: dict[str, Any]) -> list[str]:
    return [a["text"] for a in post["props"]["attachments"]]


async def started(world: World, name: str) -> dict[str, Any]:
    await world.settle()
    status, runs = await world.runs_json("alice")
    assert status == 200, runs
    return next(r for r in runs["items"] if r["name"] == name)


async def test_a_conditional_item_shows_only_for_a_matching_severity_from_the_command(world: World) -> None:
    alice = world["alice"]
    status, body = await alice.command(world.town_square,
                                       "/playbook run incident Checkout down --property severity=SEV1 "
                                       "--property services=db,api")
    assert status == 200 and "Starting" in body["text"], body
    sev1 = await started(world, "Checkout down")
    assert sev1["properties"] == {"severity": "sev1", "services": ["api", "db"]}
    items = [i["title"] for i in sev1["checklists"][1]["items"]]
    assert "Page the executive" in items

    status, body = await alice.command(world.town_square, "/playbook run incident Slow search --property severity=sev3")
    low = await started(world, "Slow search")
    assert low["properties"] == {"severity": "sev3"}
    assert "Page the executive" not in [i["title"] for i in low["checklists"][1]["items"]]
    # Hidden items are in no count: the overview's progress counts what the checklists show.
    post = await checklist_post(world, low["channel_id"], "Resolve")
    assert "0/4 done" in attachments_text(post["props"])
    assert not any("Page the executive" in t for t in resolve_titles(post))
    overview = next(p for p in await world.posts(low["channel_id"])
                    if p["user_id"] == world.bot_user_id and p["props"].get("playbooks_part") == "overview")
    fields = overview["props"]["attachments"][0]["fields"]
    assert fields == [{"title": "Severity", "value": "sev3", "short": True}]

    # Wrong values are refused, naming what is allowed, and start nothing.
    status, body = await alice.command(world.town_square, "/playbook run incident X --property severity=sev9")
    assert '"sev9" is not one of: sev1, sev2, sev3' in body["text"], body
    status, body = await alice.command(world.town_square, "/playbook run incident X --property colour=red")
    assert "does not name a property" in body["text"] and "`severity`" in body["text"], body
    status, body = await alice.command(world.town_square, "/playbook run incident X --property")
    assert "needs a `name=value`" in body["text"], body
    await world.settle()
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 2


async def test_the_start_dialog_asks_for_properties(world: World) -> None:
    alice = world["alice"]
    since = len(alice.events)
    status, body = await alice.command(world.town_square, "/playbook run")
    assert status == 200, body
    event = await alice.wait_event(lambda e: e.get("event") == "open_dialog", since=since)
    dialog = json.loads(event["data"]["dialog"])
    elements = {e["name"]: e for e in dialog["dialog"]["elements"]}
    severity = elements["property:incident:severity"]
    assert severity["type"] == "select" and [o["value"] for o in severity["options"]] == ["sev1", "sev2", "sev3"]
    assert severity["optional"] is True  # two playbooks offered: checked on submit for the chosen one
    services = elements["property:incident:services"]
    assert services["type"] == "text" and "api, db" in services["help_text"]

    status, body = await alice.submit_dialog(dialog, world.town_square, world.team_id, {
        "playbook": "incident", "name": "Bad", "property:incident:services": "db, cache"})
    assert status == 200 and '"cache" is not one of' in body["errors"]["property:incident:services"], body
    status, body = await alice.submit_dialog(dialog, world.town_square, world.team_id, {
        "playbook": "incident", "name": "Via dialog", "property:incident:severity": "sev2",
        "property:incident:services": "API"})
    assert status == 200 and not body.get("errors"), body
    run = await started(world, "Via dialog")
    assert run["properties"] == {"severity": "sev2", "services": ["api"]}
    assert "Page the executive" in [i["title"] for i in run["checklists"][1]["items"]]


async def test_changing_a_property_shows_and_hides_its_items_in_the_channel(world: World) -> None:
    alice = world["alice"]
    await alice.command(world.town_square, "/playbook run incident Outage")
    run = await started(world, "Outage")
    ch = run["channel_id"]
    assert run["properties"] == {}
    post = await checklist_post(world, ch, "Resolve")
    assert len(post["props"]["attachments"]) == 4

    text = await type_(world, "bob", ch, "/playbook set severity sev1")
    assert "Set **Severity** of **Outage** to sev1" in text and "Now shown: **Page the executive**" in text
    post = await world.wait_post(post["id"], lambda p: len(p["props"]["attachments"]) == 5)
    assert "Page the executive" in post["props"]["attachments"][2]["text"]
    assert "**2.3**" in post["props"]["attachments"][2]["text"]

    # The item shown is worked like any other, by its number as shown.
    assert "Checked **2.3**" in await type_(world, "bob", ch, "/playbook check 2.3")
    # Once worked, it stays in sight when the severity drops (as in the plugin).
    assert "Now hidden" not in await type_(world, "bob", ch, "/playbook set severity sev3")
    assert "Unchecked" in await type_(world, "bob", ch, "/playbook uncheck 2.3")
    text = await type_(world, "bob", ch, "/playbook set severity sev2")
    assert "Now shown" not in text and "Now hidden" not in text
    text = await type_(world, "bob", ch, "/playbook set severity")
    assert "Cleared **Severity**" in text and "Now hidden: **Page the executive**" in text
    post = await world.wait_post(post["id"], lambda p: len(p["props"]["attachments"]) == 4)
    assert not any("Page the executive" in t for t in resolve_titles(post))

    listing = await type_(world, "carol", ch, "/playbook set")
    assert "`severity` **Severity**: _not set_" in listing
    assert "unchanged" not in await type_(world, "bob", ch, "/playbook set services db")
    assert '"x" is not one of' in await type_(world, "bob", ch, "/playbook set severity x")
    assert "is not a property of this run" in await type_(world, "bob", ch, "/playbook set colour red")
    assert "already sev2" not in await type_(world, "bob", ch, "/playbook set severity sev2")
    assert "already sev2" in await type_(world, "bob", ch, "/playbook set severity SEV2")

    _, data = await world.run_json(run["id"])
    assert data["properties"] == {"severity": "sev2", "services": ["db"]}
    changes = [e for e in data["timeline"] if e["type"] == "property_changed"]
    assert [(e["details"]["from"], e["details"]["to"]) for e in changes][:2] == [(None, "sev1"), ("sev1", "sev3")]
    assert changes[0]["actor_id"] == world["bob"].id and changes[0]["details"]["shown"] == ["Page the executive"]
    timeline = await type_(world, "alice", ch, "/playbook timeline")
    assert "Property changed" in timeline and "sev1" in timeline


async def say(world: World, who: str, channel_id: str, message: str) -> str:
    world.clock.advance(1)
    status, post, _ = await world[who].api.post("/posts", {"channel_id": channel_id, "message": message})
    assert status == 201, post
    await world.settle()
    return str(post["id"])


def states_of(data: dict[str, Any]) -> dict[str, str]:
    return {i["title"]: i["state"] for c in data["checklists"] for i in c["items"]}


async def until_checked(world: World, run: dict[str, Any], title: str) -> dict[str, Any]:
    """The run once the bot has heard the post that checks `title` (a WebSocket event, handled in order:
    every post before it has been handled too), seen by its checklist post's edit."""
    alice = world["alice"]
    for _ in range(20):
        since = len(alice.events)
        await world.settle()
        _, data = await world.run_json(run["id"])
        if states_of(data)[title] == "closed":
            return dict(data)
        await alice.wait_event(lambda e: e.get("event") == "post_edited"
                               and json.loads(e["data"]["post"])["channel_id"] == run["channel_id"],
                               since=since, timeout=5)
    raise AssertionError(f"{title} was not checked")


async def test_a_keyword_post_checks_its_item_once_and_the_timeline_names_who_and_which_post(world: World) -> None:
    alice = world["alice"]
    await alice.command(world.town_square, "/playbook run incident Rollout")
    run = await started(world, "Rollout")
    ch = run["channel_id"]

    # Someone the item does not name, a word that only contains the keyword, another channel, the bot's own
    # post: nothing. (Events are handled in order, so once bob's post below has checked the item, these
    # were handled before it.)
    await say(world, "carol", ch, "The fix is deployed to staging")
    await say(world, "bob", ch, "undeployed for now")
    await say(world, "bob", world.town_square, "deployed everywhere")
    assert world.bot.ctx is not None
    await world.bot.ctx.gateway.create_post(ch, "deployed, and all clear (said the bot)")
    post_id = await say(world, "bob", ch, "Fix DEPLOYED to production.")
    data = await until_checked(world, run, "Watch the rollout")
    assert states_of(data)["Anyone may say it"] == "open"  # not by the bot's post
    events = [e for e in data["timeline"] if e["type"] == "item_auto_checked"]
    assert len(events) == 1 and events[0]["actor_id"] == world["bob"].id
    assert events[0]["details"]["post_id"] == post_id and events[0]["details"]["keyword"] == "DEPLOYED"
    assert events[0]["details"]["permalink"].endswith(f"/pl/{post_id}")
    checked = [e for e in data["timeline"] if e["type"] == "item_state_changed"]
    assert checked[-1]["actor_id"] == world["bob"].id  # the same change as the Check button's
    resolve = await checklist_post(world, ch, "Resolve")
    await world.wait_post(resolve["id"], lambda p: "1/4 done" in attachments_text(p["props"]))
    timeline = await type_(world, "alice", ch, "/playbook timeline")
    assert "Checked by a post" in timeline and f"/pl/{post_id}" in timeline and "@bob" in timeline

    # Once per item: unchecked by hand, a second keyword post leaves it open.
    assert "Unchecked" in await type_(world, "bob", ch, "/playbook uncheck watch the rollout")
    await say(world, "bob", ch, "rolled back, then deployed again")
    # An item without `users` takes anyone's word (but the bot's).
    await say(world, "carol", ch, "All clear!")
    data = await until_checked(world, run, "Anyone may say it")
    assert states_of(data)["Watch the rollout"] == "open"


async def test_a_finished_run_is_not_checked_by_posts(world: World) -> None:
    alice = world["alice"]
    await alice.command(world.town_square, "/playbook run incident Done already")
    done = await started(world, "Done already")
    await alice.command(world.town_square, "/playbook run incident Still going")
    going = await started(world, "Still going")
    assert world.bot.ctx is not None
    await world.bot.ctx.db.run(functools.partial(run_rows.set_run_fields, status="finished"), done["id"])
    await say(world, "carol", done["channel_id"], "all clear")
    await say(world, "carol", going["channel_id"], "all clear")
    await until_checked(world, going, "Anyone may say it")
    _, data = await world.run_json(done["id"])
    assert states_of(data)["Anyone may say it"] == "open"
