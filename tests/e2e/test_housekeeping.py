"""Run housekeeping through the sandbox: rename the run, change its summary (by command and by the overview's
"Edit run" button and dialog), add, rename and move checklists. Each is on the timeline and the posts
show it: edited in place, or, on a server that refuses to change an old post's text (the edit-limit
pass of `make test`), posted anew with the old post pointing at the new one."""
from __future__ import annotations

from typing import Any

from tests.conftest import attachments_text
from tests.e2e.conftest import World
from tests.e2e.test_commands import type_
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_status_updates import open_dialog_for


async def current(world: World, channel_id: str, marker_end: str) -> dict[str, Any]:
    """The post that shows a part of the run now: the newest bot post carrying its marker."""
    posts = await world.posts(channel_id)
    mine = [p for p in posts if p["user_id"] == world.bot_user_id
            and str(p.get("props", {}).get("playbooks_part", "")).endswith(marker_end)]
    assert mine, f"no post for {marker_end}"
    return mine[-1]


async def headers(world: World, channel_id: str) -> list[str]:
    """The checklist posts' texts, in checklist order (by their number)."""
    posts = await world.posts(channel_id)
    latest: dict[str, dict[str, Any]] = {}
    for p in posts:
        part = str(p.get("props", {}).get("playbooks_part", ""))
        if p["user_id"] == world.bot_user_id and part.startswith("checklist:"):
            latest[part] = p
    return sorted(p["message"] for p in latest.values())


async def timeline(world: World, run_id: str) -> list[tuple[str, str]]:
    status, data = await world.run_json(run_id)
    assert status == 200, data
    return [(e["type"], e.get("summary", "")) for e in data["timeline"]]


async def test_rename_and_summary_by_command(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    assert await type_(world, "bob", ch, "/playbook rename Checkout returns 500") == (
        "Renamed the run to **Checkout returns 500**.")
    overview = await current(world, ch, "overview")
    assert overview["message"].startswith("### Checkout returns 500")
    assert await type_(world, "bob", ch, "/playbook summary Payments fail for EU customers") == (
        "Updated the summary of **Checkout returns 500**.")
    overview = await current(world, ch, "overview")
    assert "Payments fail for EU customers" in overview["message"]
    assert "In this run:" in attachments_text(overview["props"])  # the attachments came along
    events = await timeline(world, run["id"])
    assert ("run_renamed", "Database down to Checkout returns 500") in events
    assert ("summary_changed", "Payments fail for EU customers") in events
    status, data = await world.run_json(run["id"])
    assert data["name"] == "Checkout returns 500"
    # Bad input changes nothing.
    assert "Tell me the run's new name." in await type_(world, "bob", ch, "/playbook rename")
    assert "already called" in await type_(world, "bob", ch, "/playbook rename Checkout returns 500")
    assert "letter or digit" in await type_(world, "bob", ch, "/playbook rename ---")
    refused = await type_(world, "dave", world.town_square, '/playbook rename Hijacked --run "Checkout returns 500"')
    assert "No run you can see" in refused, refused  # a private run dave is not in
    status, data = await world.run_json(run["id"])
    assert data["name"] == "Checkout returns 500"


async def test_the_edit_run_button_opens_a_form_that_renames_and_resummarizes(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    overview = await current(world, ch, "overview")
    edit = next(a["id"] for a in overview["props"]["attachments"][0]["actions"] if a["name"] == "Edit run")
    status, body = await world["alice"].click(overview["id"], edit)
    assert status == 200, body
    dialog = await open_dialog_for(world, "alice")
    assert [e["name"] for e in dialog["dialog"]["elements"]] == ["name", "summary"]
    assert dialog["dialog"]["elements"][0]["default"] == "Database down"
    status, body = await world["alice"].submit_dialog(dialog, ch, world.team_id, {"name": "   ", "summary": ""})
    assert status == 200 and "letter or digit" in body["errors"]["name"], body
    status, body = await world["alice"].submit_dialog(dialog, ch, world.team_id,
                                                      {"name": "DB primary down", "summary": "Failover ran"})
    assert status == 200, body
    await world.settle()
    overview = await current(world, ch, "overview")
    assert overview["message"].startswith("### DB primary down") and "Failover ran" in overview["message"]
    assert any(t == "Renamed the run to **DB primary down** and updated its summary."
               for t in world["alice"].ephemerals())


async def test_checklists_are_added_renamed_and_moved(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    assert await headers(world, ch) == ["#### 1. Triage", "#### 2. Resolve"]
    text = await type_(world, "bob", ch, "/playbook checklist add Communication")
    assert text.startswith("Added checklist **3. Communication**")
    assert await headers(world, ch) == ["#### 1. Triage", "#### 2. Resolve", "#### 3. Communication"]
    assert "Added **3.1**" in await type_(world, "bob", ch, "/playbook add 3 Tell support")
    text = await type_(world, "carol", ch, "/playbook checklist rename 1 First response")
    assert text == "Renamed checklist **1** from **Triage** to **First response**."
    text = await type_(world, "carol", ch, "/playbook checklist move Communication 1")
    assert text.startswith("Moved **Communication** from position 3 to 1.")
    assert await headers(world, ch) == ["#### 1. Communication", "#### 2. First response", "#### 3. Resolve"]
    # Items keep working where they now are: 1.1 is the new checklist's item.
    assert "Checked **1.1** Tell support." == await type_(world, "bob", ch, "/playbook check 1.1")
    status, data = await world.run_json(run["id"])
    assert [c["title"] for c in data["checklists"]] == ["Communication", "First response", "Resolve"]
    assert data["checklists"][0]["items"][0]["state"] == "closed"
    events = await timeline(world, run["id"])
    assert ("checklist_added", "Communication") in events
    assert ("checklist_renamed", "Triage to First response") in events
    assert ("checklist_moved", "Communication: 3 to 1") in events
    # Bad input.
    assert "`add`, `rename` or `move`, not `frobnicate`" in await type_(world, "bob", ch,
                                                                      "/playbook checklist frobnicate")
    assert "not one of 1 to 3" in await type_(world, "bob", ch, "/playbook checklist move 1 9")
    assert "Tell me" in await type_(world, "bob", ch, "/playbook checklist add")
