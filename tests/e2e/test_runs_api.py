"""The runs' write API end to end, as each caller with their own Mattermost token: starting a run (owner,
members, properties, an existing channel), status updates, items, finishing, adding and removing people;
each error (400, 403, 404, 409, 422) and the permission rules chat follows; Idempotency-Key replays,
mismatches, keys in flight and their purge. Every exchange is checked against bot/openapi.json
(tests/bot_api.py), and the channel's posts and the timeline follow as after a click."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest

from handlers.idempotency import KEEP_MS, Purger
from handlers.runs import JOB
from storage import idempotency as key_rows
from tests.conftest import attachments_text
from tests.e2e.conftest import INCIDENT, World

# Public channels, so people outside the run see it (and may join), with a property and an [access] that
# lets participants finish.
OPEN = """
title = "Open incident"
team = "eng"
private_channel = false
channel_name = "open {seq} {name}"
category = ""
owner = "alice"
members = ["bob"]

[[properties]]
name = "severity"
title = "Severity"
type = "select"
options = ["sev1", "sev2"]

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Page the team"
  [[checklists.items]]
  title = "Write it up"
"""

# Only alice may see or run it.
HIDDEN = """
title = "Hidden drill"
team = "eng"
category = ""

[access]
members = ["alice"]
public = false

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Do it"
"""

# Runs in the channel the caller names.
HERE = """
title = "Quick triage"
team = "eng"
channel_mode = "existing"

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Say what broke"
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"incident": INCIDENT, "open": OPEN, "hidden": HIDDEN, "here": HERE}}


async def start(world: World, who: str = "alice", **fields: Any) -> dict[str, Any]:
    status, run, _ = await world.bot_api(who).post("/api/v0/runs", json={"playbook": "open", **fields})
    assert status == 201, run
    await world.settle()
    return run


def item_ids(run: dict[str, Any]) -> list[str]:
    return [i["id"] for c in run["checklists"] for i in c["items"]]


async def test_a_start_names_its_owner_members_and_properties_and_posts_as_chat_does(world: World) -> None:
    api = world.bot_api("alice")
    status, run, _ = await api.post("/api/v0/runs", json={
        "playbook": "incident", "name": "Checkout down", "summary": "Customers cannot pay.", "owner": "bob",
        "members": [world["dave"].id], "channel": {"private": True}})
    assert status == 201, run
    await world.settle()
    assert run["name"] == "Checkout down" and run["summary"] == "Customers cannot pay."
    assert run["owner_id"] == world["bob"].id and run["creator_id"] == world["alice"].id
    assert {world["alice"].id, world["bob"].id, world["carol"].id, world["dave"].id} <= set(run["participant_ids"])
    assert run["status"] == "in_progress" and run["team_id"] == world.team_id
    started = next(e for e in run["timeline"] if e["type"] == "run_started")
    assert "by the API" in started["summary"], started
    # The run's channel has its overview and checklists, as a run started in chat.
    posts = await world.posts(run["channel_id"], who="bob")
    assert any("Acknowledge the page" in attachments_text(p.get("props")) for p in posts)
    # dave sees it (a participant), and it is in the list.
    status, found = await world.run_json(run["id"], who="dave")
    assert status == 200 and found["owner_id"] == world["bob"].id
    # Properties are checked against the playbook.
    status, run2, _ = await api.post("/api/v0/runs", json={"playbook": "open", "properties": {"severity": "SEV1"}})
    assert status == 201 and run2["properties"] == {"severity": "sev1"}, run2


async def test_bad_starts_are_refused_with_the_right_status_and_change_nothing(world: World) -> None:
    api = world.bot_api("alice")
    status, body, _ = await api.post("/api/v0/runs", data=b"{not json")
    assert status == 400 and body["problems"][0]["path"] == "", body
    status, body, _ = await api.post("/api/v0/runs", json={"name": "x", "colour": "red", "members": "bob"})
    assert status == 400, body
    assert {p["path"] for p in body["problems"]} == {"playbook", "colour", "members"}, body
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "nope"})
    assert status == 404, body
    # A private playbook is missing for those outside it, never "forbidden".
    status, body, _ = await world.bot_api("dave").post("/api/v0/runs", json={"playbook": "hidden"})
    assert status == 404, body
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "owner": "nobody-here"})
    assert status == 422 and body["problems"][0]["path"] == "owner", body
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "members": ["bob", "ghost"]})
    assert status == 422 and body["problems"][0]["path"] == "members[1]", body
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "channel": {"private": True}})
    assert status == 422 and body["problems"][0]["path"] == "channel.private", body
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "properties": {"severity": "sev9"}})
    assert status == 422 and body["problems"][0]["path"] == "properties.severity", body
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "n" * 2000})
    assert status == 422 and body["problems"][0]["path"] == "name", body
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "team": "t" * 26})
    assert status == 422 and body["problems"][0]["path"] == "team", body
    # Someone outside the team cannot own a run there.
    status, outsider, _ = await world.admin.post("/users", {"username": "olga", "email": "olga@example.com",
                                                            "password": "Password1!"})
    assert status == 201, outsider
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "owner": outsider["id"]})
    assert status == 422 and "not a member of the run's team" in body["error"], body
    await world.settle()
    status, listing = await world.runs_json("alice")
    assert status == 200 and listing["total"] == 0, listing


async def test_a_run_in_an_existing_channel_needs_the_caller_in_it(world: World) -> None:
    status, channel, _ = await world["alice"].api.post("/channels", {
        "team_id": world.team_id, "name": "ops-room", "display_name": "Ops room", "type": "O"})
    assert status == 201, channel
    status, body, _ = await world.bot_api("carol").post("/api/v0/runs", json={"playbook": "here",
                                                                               "channel": {"id": channel["id"]}})
    assert status == 403, body
    status, body, _ = await world.bot_api("alice").post("/api/v0/runs", json={"playbook": "here"})
    assert status == 422 and body["problems"][0]["path"] == "channel.id", body
    status, run, _ = await world.bot_api("alice").post("/api/v0/runs", json={"playbook": "here",
                                                                              "channel": {"id": channel["id"]}})
    assert status == 201 and run["channel_id"] == channel["id"], run


async def test_status_updates_items_and_finish_follow_the_rules_of_chat(world: World) -> None:
    run = await start(world, name="Slow API")
    run_id, (first, second) = run["id"], item_ids(run)
    alice, bob, dave = world.bot_api("alice"), world.bot_api("bob"), world.bot_api("dave")
    # dave sees the public run but does not work it.
    status, body, _ = await dave.post(f"/api/v0/runs/{run_id}/status_updates", json={"message": "hi"})
    assert status == 403, body
    status, body, _ = await dave.patch(f"/api/v0/runs/{run_id}/items/{first}", json={"state": "checked"})
    assert status == 403, body
    status, body, _ = await world.bot_api("carol").post(f"/api/v0/runs/{'x' * 26}/finish")
    assert status == 404, body
    # bob works it: an update (with the next reminder), an item checked, skipped, assigned, given a due time.
    status, body, _ = await bob.post(f"/api/v0/runs/{run_id}/status_updates",
                                     json={"message": "Rolling back.", "reminder": "2h"})
    assert status == 201 and body["status_updates"][-1]["message"] == "Rolling back.", body
    assert body["reminder"]["interval_s"] is not None
    status, body, _ = await bob.post(f"/api/v0/runs/{run_id}/status_updates", json={"message": "x", "reminder": "soon"})
    assert status == 422 and body["problems"][0]["path"] == "reminder", body
    status, body, _ = await bob.post(f"/api/v0/runs/{run_id}/status_updates", json={"message": 5})
    assert status == 400, body
    status, item, _ = await bob.patch(f"/api/v0/runs/{run_id}/items/{first}", json={"state": "checked"})
    assert status == 200 and item["state"] == "closed", item
    status, item, _ = await bob.patch(f"/api/v0/runs/{run_id}/items/{first}", json={"state": "skipped"})
    assert status == 200 and item["state"] == "skipped", item
    status, item, _ = await bob.patch(f"/api/v0/runs/{run_id}/items/{second}", json={
        "assignee": "dave", "due": "2030-01-02T03:04:05Z"})
    assert status == 200 and item["assignee_id"] == world["dave"].id, item
    assert item["due_at"].startswith("2030-01-02T03:04"), item
    status, body, _ = await bob.patch(f"/api/v0/runs/{run_id}/items/{second}", json={"state": "done"})
    assert status == 400, body
    status, body, _ = await bob.patch(f"/api/v0/runs/{run_id}/items/{second}", json={"due": "tomorrow"})
    assert status == 422, body
    # Dates Python parses but UTC cannot hold (or nobody means) are refused, and the run still reads.
    for far in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z", "9000-01-01"):
        status, body, _ = await bob.patch(f"/api/v0/runs/{run_id}/items/{second}", json={"due": far})
        assert status == 422 and body["problems"][0]["path"] == "due", (far, body)
        assert "between the years 1970 and 8999" in body["problems"][0]["message"], body
    status, body, _ = await bob.get(f"/api/v0/runs/{run_id}")
    assert status == 200 and body["checklists"][0]["items"][1]["due_at"].startswith("2030-01-02"), body
    status, body, _ = await bob.patch(f"/api/v0/runs/{run_id}/items/{'i' * 26}", json={"state": "open"})
    assert status == 404, body
    await world.settle()
    status, now = await world.run_json(run_id)
    assert world["dave"].id in now["participant_ids"]  # assigned: he joined the run
    mine = [(e["type"], e["actor_id"]) for e in now["timeline"] if e["actor_id"] == world["bob"].id]
    # check, then restore and skip (a checked item is skipped by way of open), the assignment, the due time
    assert sorted(t for t, _ in mine if t.startswith("item_") or t == "assignee_changed") == [
        "assignee_changed", "item_due_changed", "item_state_changed", "item_state_changed", "item_state_changed"], mine
    # The checklist post shows the change, as after a click.
    posts = await world.posts(run["channel_id"])
    assert any("dave" in attachments_text(p.get("props")) for p in posts)
    # Only the owner finishes (the playbook does not let participants).
    status, body, _ = await bob.post(f"/api/v0/runs/{run_id}/finish")
    assert status == 403, body
    status, body, _ = await alice.post(f"/api/v0/runs/{run_id}/finish", json={})
    assert status == 200 and body["status"] == "finished", body
    status, body, _ = await alice.post(f"/api/v0/runs/{run_id}/finish")
    assert status == 409, body
    status, body, _ = await bob.post(f"/api/v0/runs/{run_id}/status_updates", json={"message": "late"})
    assert status == 409, body
    await world.settle()


async def test_a_status_update_may_finish_the_run_for_those_who_may_finish_it(world: World) -> None:
    run = await start(world, name="Quick one")
    status, body, _ = await world.bot_api("bob").post(f"/api/v0/runs/{run['id']}/status_updates",
                                                      json={"message": "Done.", "finish": True})
    assert status == 403, body
    status, body, _ = await world.bot_api("alice").post(f"/api/v0/runs/{run['id']}/status_updates",
                                                        json={"message": "Done.", "finish": True, "reminder": "off"})
    assert status == 201, body
    await world.settle()
    status, now = await world.run_json(run["id"])
    assert now["status"] == "finished", now


async def test_people_join_are_added_and_leave_as_in_chat(world: World) -> None:
    run = await start(world, name="People")
    run_id = run["id"]
    dave, carol = world.bot_api("dave"), world.bot_api("carol")
    # Adding someone else needs taking part; adding yourself needs only seeing the run.
    status, body, _ = await dave.post(f"/api/v0/runs/{run_id}/participants", json={"users": ["carol"]})
    assert status == 403, body
    status, body, _ = await dave.post(f"/api/v0/runs/{run_id}/participants", json={"users": ["dave"]})
    assert status == 200 and world["dave"].id in body["participant_ids"], body
    status, body, _ = await dave.post(f"/api/v0/runs/{run_id}/participants", json={"users": [world["carol"].id]})
    assert status == 200 and world["carol"].id in body["participant_ids"], body
    status, body, _ = await dave.post(f"/api/v0/runs/{run_id}/participants", json={"users": []})
    assert status == 400, body
    status, body, _ = await dave.post(f"/api/v0/runs/{run_id}/participants", json={"users": ["ghost"]})
    assert status == 422, body
    # Leaving: yourself, never the owner; nobody but a system admin takes someone else out.
    status, body, _ = await carol.delete(f"/api/v0/runs/{run_id}/participants/{world['dave'].id}")
    assert status == 403, body
    status, body, _ = await dave.delete(f"/api/v0/runs/{run_id}/participants/me")
    assert status == 200 and world["dave"].id not in body["participant_ids"], body
    status, body, _ = await world.bot_api("alice").delete(f"/api/v0/runs/{run_id}/participants/me")
    assert status == 409, body
    status, body, _ = await world.bot_api("admin").delete(f"/api/v0/runs/{run_id}/participants/{world['carol'].id}")
    assert status == 200 and world["carol"].id not in body["participant_ids"], body
    await world.settle()
    status, now = await world.run_json(run_id)
    assert [e["type"] for e in now["timeline"]].count("participant_left") == 2


async def test_an_idempotency_key_replays_refuses_another_body_and_is_purged_after_a_day(world: World) -> None:
    api = world.bot_api("alice")
    key = {"Idempotency-Key": "start-1"}
    status, first, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "Once"}, headers=key)
    assert status == 201 and "Idempotent-Replayed" not in api.headers, first
    # The same body (keys in another order) is the same request: the first answer, marked.
    status, again, _ = await api.post("/api/v0/runs", json={"name": "Once", "playbook": "open"}, headers=key)
    assert status == 201 and again["id"] == first["id"] and api.headers.get("Idempotent-Replayed") == "true"
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "Twice"}, headers=key)
    assert status == 422, body
    # Another caller's key of the same name is theirs.
    status, bobs, _ = await world.bot_api("bob").post("/api/v0/runs", json={"playbook": "open", "name": "Once"},
                                                      headers=key)
    assert status == 201 and bobs["id"] != first["id"], bobs
    await world.settle()
    status, listing = await world.runs_json("alice")
    assert listing["total"] == 2, listing
    # Refusals are kept too (a retry gets the same refusal); a finish is done once.
    fin = {"Idempotency-Key": "finish-1"}
    status, done, _ = await api.post(f"/api/v0/runs/{first['id']}/finish", headers=fin)
    assert status == 200, done
    status, replay, _ = await api.post(f"/api/v0/runs/{first['id']}/finish", headers=fin)
    assert status == 200 and replay == done and api.headers.get("Idempotent-Replayed") == "true"
    # A request with a key still being answered (by this or another process) is told to wait.
    ctx = world.bot.ctx
    assert ctx is not None
    now = ctx.clock.now_ms()
    claim = await ctx.db.run(key_rows.claim, world["alice"].id, f"POST /api/v0/runs/{bobs['id']}/finish", "busy",
                             hashlib.sha256(b"\n[]").hexdigest(), now, now - KEEP_MS, now - 60_000)
    assert claim.outcome == "new"
    status, body, _ = await api.post(f"/api/v0/runs/{bobs['id']}/finish", headers={"Idempotency-Key": "busy"})
    assert status == 409 and api.headers.get("Retry-After") == "1", body
    # A day on, the housekeeping job forgets them: the key starts a new run.
    world.clock.advance((KEEP_MS + 1) / 1000)
    assert await Purger(ctx).purge() >= 3
    status, fresh, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "Twice"}, headers=key)
    assert status == 201 and fresh["id"] != first["id"] and "Idempotent-Replayed" not in api.headers, fresh
    await world.settle()


async def test_the_playbooks_api_keys_are_rows_too(world: World) -> None:
    admin = world.bot_api("admin")
    key = {"Idempotency-Key": "pb-1"}
    status, made, _ = await admin.post("/api/v0/playbooks", json={"toml": 'title = "Release"\n', "id": "release"},
                                       headers=key)
    assert status == 201, made
    status, again, _ = await admin.post("/api/v0/playbooks", json={"toml": 'title = "Release"\n', "id": "release"},
                                        headers=key)
    assert status == 201 and again == made and admin.headers.get("Idempotent-Replayed") == "true"
    status, body, _ = await admin.post("/api/v0/playbooks", json={"toml": 'title = "Other"\n'}, headers=key)
    assert status == 422, body
    ctx = world.bot.ctx
    assert ctx is not None
    assert await ctx.db.run(key_rows.count, readonly=True) == 1


async def test_a_start_still_retrying_answers_202_and_one_that_failed_for_good_502(world: World) -> None:
    api = world.bot_api("alice")
    # Mattermost answers 500 once: the start waits for its backoff, the caller hears "starting".
    world.sb.fail("POST", r"/api/v4/channels", status=500, times=1)
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "Later"})
    assert status == 202 and body["status"] == "starting", body
    status, _ = await world.run_json(body["id"])
    assert status == 404  # not visible until the start completes
    service = world.bot.ctx.jobs[JOB]  # type: ignore[union-attr]
    world.clock.advance(60)
    await service.run_due()  # type: ignore[attr-defined]
    await world.settle()
    status, run = await world.run_json(body["id"])
    assert status == 200 and run["name"] == "Later", run
    # Mattermost refuses for good: nothing is left behind and the answer says why.
    world.sb.fail("POST", r"/api/v4/channels", status=403, times=1)
    status, body, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "Never"})
    assert status == 502 and body["status"] == "failed" and "create the channel" in body["error"], body
    await world.settle()
    status, listing = await world.runs_json("alice")
    assert [r["name"] for r in listing["items"]] == ["Later"], listing


async def test_a_start_whose_run_cannot_be_read_back_is_not_started_again_on_retry(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the start is recorded, a failing read of the run answers 202 with its id (kept under the key),
    not a 5xx that frees the key: the client's retry gets the same run, never a second one."""
    import handlers.runs_api as runs_api
    from storage.db import StorageError

    real = runs_api.runs.get_run
    failing = {"left": 1}

    def get_run(session: Any, run_id: str) -> Any:
        if failing["left"]:
            failing["left"] -= 1
            raise StorageError("the database went away for a moment")
        return real(session, run_id)

    monkeypatch.setattr(runs_api.runs, "get_run", get_run)
    api = world.bot_api("alice")
    key = {"Idempotency-Key": "start-unread"}
    status, first, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "Read me"}, headers=key)
    assert status == 202 and first["status"] == "starting", first
    status, again, _ = await api.post("/api/v0/runs", json={"playbook": "open", "name": "Read me"}, headers=key)
    assert status == 202 and again["id"] == first["id"], again
    await world.settle()
    status, listing = await world.runs_json("alice")
    assert [r["id"] for r in listing["items"]] == [first["id"]], listing
