"""A server with ServiceSettings.PostEditTimeLimit refuses an edit that changes an old post's `message`
(props may still change): the run's checklist and overview posts keep their message for life and show
every change in their attachments."""
from __future__ import annotations

import os
from typing import Any

from tests.conftest import EDIT_LIMIT_ENV, attachments_text
from tests.e2e.conftest import World
from tests.e2e.test_commands import checklist_post, type_
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_status_updates import open_dialog_for


async def test_checklist_and_overview_messages_never_change(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    triage = await checklist_post(world, ch, "Triage")
    overview_id = next(p["id"] for p in await world.posts(ch)
                       if p["user_id"] == world.bot_user_id and "Progress" in attachments_text(p.get("props")))
    # An admin set the limit to one second, and the posts are older than that now: an edit that changed
    # their message would be refused (api4/post.go). Time moves 3 s, within the bot's trigger-id skew.
    status, body, _ = await world.admin.put("/config/patch", {"ServiceSettings": {"PostEditTimeLimit": 1}})
    assert status == 200, body
    real = world.sb.hub.clock
    world.sb.set_clock(lambda: real() + 3)  # still moving: trigger ids made later stay fresh
    first = {pid: await world.post(pid) for pid in (triage["id"], overview_id)}
    seen = {pid: [post["props"]["attachments"]] for pid, post in first.items()}

    async def step(expect: dict[str, str]) -> None:
        """Every post keeps its message; each one named in `expect` has new attachments, showing that."""
        await world.settle()
        for pid, post in first.items():
            now: dict[str, Any] = await world.post(pid)
            assert now["message"] == post["message"]
            if pid in expect:
                assert expect[pid] in attachments_text(now["props"]), now["props"]
                assert now["props"]["attachments"] != seen[pid][-1]
            seen[pid].append(now["props"]["attachments"])

    alice = world["alice"]
    status, body = await world["bob"].click(triage["id"], "check0")
    assert status == 200, body
    await step({triage["id"]: "1/3 done", overview_id: "**1/5**"})

    assert "Checked **1.2**" in await type_(world, "bob", ch, "/playbook check 1.2")
    await step({triage["id"]: "2/3 done", overview_id: "**2/5**"})

    status, body = await alice.command(ch, "/playbook update")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "alice")
    status, body = await alice.submit_dialog(dialog, ch, world.team_id,
                                             {"message": "Failing over", "reminder": "1h", "finish": False})
    assert status == 200 and not (body or {}).get("errors") and not (body or {}).get("error"), body
    await step({overview_id: "Next status update due"})

    status, body = await alice.command(ch, "/playbook finish")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "alice", seen=1)
    assert dialog["dialog"]["callback_id"] == "finish_run"
    status, body = await alice.submit_dialog(dialog, ch, world.team_id, {})
    assert status == 200 and not (body or {}).get("error"), body
    await step({triage["id"]: "2/3 done", overview_id: "**Finished**"})
    finished = await world.post(triage["id"])
    assert all("actions" not in a for a in finished["props"]["attachments"])

    status, body = await alice.command(ch, "/playbook restore")
    assert status == 200, body
    await step({triage["id"]: "2/3 done", overview_id: "Next status update due"})
    assert all(a.get("actions") for a in seen[triage["id"]][-1])
    assert "Finished" not in attachments_text({"attachments": seen[overview_id][-1]})

    assert "@bob now owns the run" in await type_(world, "alice", ch, "/playbook owner @bob")
    await step({overview_id: "Owner: @bob"})


async def test_the_edit_limit_pass_reaches_the_sandbox(world: World) -> None:
    """`make test` runs this folder again with PLAYBOOKS_TEST_POST_EDIT_TIME_LIMIT=0: that pass means
    something only if the sandbox the bot talks to really has the limit (and the first pass, none)."""
    status, config, _ = await world.admin.get("/config")
    assert status == 200, config
    wanted = os.environ.get(EDIT_LIMIT_ENV, "").strip()
    assert config["ServiceSettings"]["PostEditTimeLimit"] == (int(wanted) if wanted else -1)
