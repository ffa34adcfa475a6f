"""`[access] groups` end to end, against the sandbox's Mattermost custom groups (a Professional licence):
a private playbook open to the group `sre` is offered to, run by and (with `edit = "members"`) edited by a
member of that group — bob — and never shown to anyone else — dave — in the run dialog, `/playbook run`,
`/playbook playbooks`, the API or the web view. Without a licence the group grants nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox import Sandbox
from sandbox.server import license_for
from tests.conftest import Api, sandbox_config
from tests.e2e.conftest import INCIDENT, ONBOARDING, World
from tests.e2e.test_bot_cli import make_bot, run_cli
from tests.e2e.test_playbook_access import dialog_choices
from tests.e2e.test_web_runs import get, start

HANDOVER = """
title = "On-call handover"
team = "eng"
private_channel = false

[access]
groups = ["sre"]
public = false

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Hand over the pager"
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"incident": INCIDENT, "onboarding": ONBOARDING, "handover": HANDOVER}}


async def make_sre(world: World, *members: str) -> None:
    world.sb.state.license = license_for("professional")
    status, group, _ = await world.admin.post("/groups", {
        "name": "sre", "display_name": "SRE", "source": "custom", "allow_reference": True,
        "user_ids": [world[m].id for m in members]})
    assert status == 201, group


async def test_a_group_member_sees_and_runs_a_private_playbook_others_never_see(world: World) -> None:
    await make_sre(world, "bob")
    assert "handover" in await dialog_choices(world, "bob")
    assert "handover" not in await dialog_choices(world, "dave")

    status, body = await world["dave"].command(world.town_square, "/playbook run handover Night shift")
    assert status == 200 and "There is no playbook called" in body["text"], body
    status, body = await world["dave"].command(world.town_square, "/playbook playbooks")
    assert status == 200 and "On-call handover" not in body["text"], body
    status, body = await world["bob"].command(world.town_square, "/playbook playbooks")
    assert "On-call handover" in body["text"], body

    run = await start(world, "handover", "Night shift", who="bob")
    assert run["playbook"] == {"id": "handover", "title": "On-call handover"}

    status, listing, _ = await world.bot_api("bob").get("/api/v0/playbooks")
    assert status == 200 and "handover" in {p["id"] for p in listing["items"]}
    status, listing, _ = await world.bot_api("dave").get("/api/v0/playbooks")
    assert status == 200 and "handover" not in {p["id"] for p in listing["items"]}
    status, _, _ = await world.bot_api("dave").get("/api/v0/playbooks/handover")
    assert status == 404
    _, dave_runs = await world.runs_json("dave")
    assert "Night shift" not in [r["name"] for r in dave_runs["items"]]

    dave, bob = await world.browser("dave"), await world.browser("bob")
    status, html = await get(dave, world, "/playbooks")
    assert status == 200 and "On-call handover" not in html
    status, html = await get(bob, world, "/playbooks")
    assert status == 200 and "On-call handover" in html


async def test_a_group_member_edits_a_playbook_whose_members_may_edit(world: World) -> None:
    await make_sre(world, "bob")
    data = {"title": "Database failover", "team": "eng",
            "access": {"groups": ["sre"], "public": False, "edit": "members"},
            "checklists": [{"title": "Steps", "items": [{"title": "Promote the replica"}]}]}
    status, made, _ = await world.bot_api("admin").post("/api/v0/playbooks", json={"data": data})
    assert status in (200, 201), made
    pid = made["id"]

    changed = {**data, "title": "Database failover (v2)"}
    status, body, _ = await world.bot_api("dave").put(f"/api/v0/playbooks/{pid}", json={"data": changed})
    assert status == 404, body
    status, body, _ = await world.bot_api("bob").put(f"/api/v0/playbooks/{pid}", json={"data": changed})
    assert status == 200, body
    status, body, _ = await world.bot_api("bob").get(f"/api/v0/playbooks/{pid}")
    assert status == 200 and body["version"]["data"]["title"] == "Database failover (v2)"


async def test_without_a_licence_the_group_grants_nothing(world: World) -> None:
    # No licence: Mattermost answers 501 and the bot counts everyone as in no group.
    assert world.sb.state.license is None
    assert "handover" not in await dialog_choices(world, "bob")
    assert world.bot.ctx is not None and "501" in world.bot.ctx.groups.unavailable


async def test_bot_check_fails_a_group_that_is_not_there_or_a_server_without_groups(tmp_path: Path) -> None:
    pb_dir = tmp_path / "playbooks"
    pb_dir.mkdir()
    (pb_dir / "handover.toml").write_text(HANDOVER)
    (pb_dir / "ghostly.toml").write_text('title = "Ghostly"\n[access]\ngroups = ["ghosts"]\npublic = false\n')
    for licence in ("professional", None):
        async with Sandbox(admin_token="admintoken", config=sandbox_config(), license=licence) as sb, \
                aiohttp.ClientSession() as session:
            api = Api(session, sb.url, sb.admin_token)
            _, team, _ = await api.post("/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
            token = await make_bot(api, team["id"], "system_user system_admin")
            if licence:
                status, body, _ = await api.post("/groups", {"name": "sre", "display_name": "SRE", "source": "custom",
                                                             "allow_reference": True, "user_ids": []})
                assert status == 201, body
            code, out, err = await run_cli("check", cwd=tmp_path, env={
                "BOT_MATTERMOST_URL": sb.url, "BOT_PLAYBOOKS_DIR": str(pb_dir), "BOT_MATTERMOST_TOKEN": token,
                "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/check.db"})
        assert code == 1, out + err
        if licence:
            assert "[FAIL] playbook ghostly (ghostly.toml): access group ghosts: no such Mattermost group" in out
            assert "[ok] playbook handover (handover.toml)" in out
        else:
            assert ("[FAIL] playbook groups (ghosts, sre): Mattermost has no groups for the bot (501 "
                    "api.license_error") in out, out
