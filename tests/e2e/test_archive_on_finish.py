"""`archive_channel_on_finish = true`: the run's channel is archived once the run is finished and its
retrospective settled (never while people still write it there), and reopened by `/playbook restore`."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import INCIDENT, World
from tests.e2e.test_finish_retro import finish_with_confirmation
from tests.e2e.test_run_start import start_incident


@pytest.fixture
def world_options() -> dict[str, Any]:
    archiving = INCIDENT.replace('welcome = "Read the runbook first."',
                                 'welcome = "Read the runbook first."\narchive_channel_on_finish = true')
    assert archiving != INCIDENT
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": archiving}}


async def channel_archived(world: World, channel_id: str) -> bool:
    status, channel, _ = await world.admin.get(f"/channels/{channel_id}")
    assert status == 200, channel
    return bool(channel["delete_at"])


async def test_the_channel_is_archived_once_the_retrospective_is_settled_and_restore_reopens_it(
        world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    await finish_with_confirmation(world, run)
    assert not await channel_archived(world, ch)  # the retrospective is still to be written there

    status, body = await world["alice"].command(ch, "/playbook retro cancel")
    assert status == 200, body
    await world.settle()
    assert await channel_archived(world, ch)
    posts = await world.posts(ch)
    # The bot says why first; Mattermost's own system message follows.
    assert "this channel is archived now" in posts[-2]["message"], [p["message"] for p in posts[-3:]]
    status, data = await world.run_json(run["id"])
    assert ("channel_archived", "Channel archived") in [(e["type"], e["summary"]) for e in data["timeline"]]

    status, body = await world["alice"].command(world.town_square, '/playbook restore --run "Database down"')
    assert status == 200, body
    await world.settle()
    assert not await channel_archived(world, ch)
    status, data = await world.run_json(run["id"])
    assert data["status"] == "in_progress"
    assert "channel_unarchived" in [e["type"] for e in data["timeline"]]
