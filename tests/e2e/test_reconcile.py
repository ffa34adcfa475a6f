"""The sweep (handlers/reconcile.py) through the sandbox: posts behind their rows are mended, deleted posts
come back once, a post made but never recorded is found again rather than posted twice, and a post whose
text Mattermost no longer lets the bot change is posted anew, the old one pointing at it."""
from __future__ import annotations

import json
from typing import Any

from handlers.reconcile import Reconciler
from storage import items as item_rows
from tests.conftest import attachments_text
from tests.e2e.conftest import World
from tests.e2e.test_commands import checklist_post
from tests.e2e.test_run_start import start_incident


def sweeper(world: World) -> Reconciler:
    job = world.bot.ctx.jobs["reconcile"]
    assert isinstance(job, Reconciler)
    return job


def part_posts(posts: list[dict[str, Any]], marker_end: str) -> list[dict[str, Any]]:
    return [p for p in posts if str(p.get("props", {}).get("playbooks_part", "")).endswith(marker_end)]


async def test_rows_changed_behind_the_posts_back_are_shown_after_a_sweep(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    await world.settle()
    item = run["checklists"][0]["items"][1]
    # Stored, never shown: what a crash between the write and the edit leaves.
    await world.bot.ctx.db.run(item_rows.apply_item_verb, run["id"], item["id"], "check", world["bob"].id,
                               world.clock.now_ms())
    before = await checklist_post(world, ch, "Triage")
    assert ":white_check_mark:" not in attachments_text(before["props"])
    assert await sweeper(world).sweep("test") == 2  # the checklist post and the overview's progress
    after = await world.post(before["id"])
    assert after["props"]["attachments"][1]["text"].startswith(":white_check_mark:")
    assert after["message"] == before["message"]  # only attachments changed
    assert await sweeper(world).sweep("test") == 0  # in step now: nothing more to do


async def test_a_resync_sweeps(world: World) -> None:
    run = await start_incident(world)
    await world.settle()
    item = run["checklists"][1]["items"][0]
    await world.bot.ctx.db.run(item_rows.apply_item_verb, run["id"], item["id"], "skip", world["bob"].id,
                               world.clock.now_ms())
    swept = sweeper(world).swept
    await world.bot.resync()  # what a WebSocket reconnect that could not resume runs
    await world.settle()
    assert sweeper(world).swept == swept + 1
    resolve = await checklist_post(world, run["channel_id"], "Resolve")
    assert resolve["props"]["attachments"][0]["text"].startswith(":fast_forward:")


async def test_a_deleted_checklist_post_comes_back_once_and_works(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    await world.settle()
    old = await checklist_post(world, ch, "Triage")
    since = len(world["alice"].events)
    status, body, _ = await world.admin.call("DELETE", f"/posts/{old['id']}")
    assert status == 200, body
    event = await world["alice"].wait_event(
        lambda e: e.get("event") == "posted" and "Triage" in json.loads(e["data"]["post"])["message"],
        since=since)
    await world.settle()
    new = json.loads(event["data"]["post"])
    assert len(part_posts(await world.posts(ch), new["props"]["playbooks_part"])) == 1
    status, body = await world["bob"].click(new["id"], "check1")
    assert status == 200, body
    shown = await world.wait_post(new["id"], lambda p: p["props"]["attachments"][1]["text"]
                                  .startswith(":white_check_mark:"))
    assert shown["id"] == new["id"]


async def test_a_post_made_but_never_recorded_is_found_not_posted_again(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    await world.settle()
    post = await checklist_post(world, ch, "Resolve")
    checklist_id = str(post["props"]["playbooks_part"]).rsplit(":", 1)[1]
    # A crash between creating the post and recording its id.
    await world.bot.ctx.db.run(item_rows.set_checklist_post, checklist_id, "")
    await sweeper(world).sweep("test")
    assert await world.bot.ctx.db.run(item_rows.checklist_post_id, checklist_id) == post["id"]
    assert len(part_posts(await world.posts(ch), f"checklist:{checklist_id}")) == 1


async def test_a_post_whose_text_can_no_longer_change_is_posted_anew(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    await world.settle()
    old = await checklist_post(world, ch, "Triage")
    # A post in an older layout (an earlier version of the bot wrote progress into the text) ...
    status, body, _ = await world.admin.put("/config/patch", {"ServiceSettings": {"PostEditTimeLimit": -1}})
    assert status == 200, body
    status, body, _ = await world.admin.put(f"/posts/{old['id']}/patch",
                                            {"message": "#### 1. Triage (0/3 done)", "props": {}})
    assert status == 200, body
    # ... on a server whose admin then set an edit time limit that the post is past.
    status, body, _ = await world.admin.put("/config/patch", {"ServiceSettings": {"PostEditTimeLimit": 0}})
    assert status == 200, body
    await world.settle()
    await sweeper(world).sweep("test")
    posts = await world.posts(ch)
    [new] = [p for p in part_posts(posts, str(old["props"]["playbooks_part"]))]
    assert new["id"] != old["id"] and new["message"] == old["message"]
    moved = await world.post(old["id"])
    assert moved["message"] == "#### 1. Triage (0/3 done)"  # it could not be changed
    assert "posted again" in attachments_text(moved["props"]) and f"/pl/{new['id']}" in attachments_text(
        moved["props"])
    assert "actions" not in json.dumps(moved["props"])  # no buttons left on the old one
    status, body = await world["bob"].click(new["id"], "check0")
    assert status == 200, body
    await world.wait_post(new["id"], lambda p: p["props"]["attachments"][0]["text"].startswith(":white_check_mark:"))
