"""Playbooks as code: a playbook file edited on disk changes the next run without a restart, while a run
already going keeps the version it started from; a broken edit keeps the last good version and says so;
two bot processes on one database agree on one current version.

The bot looks at the folder every 2 s; the tests ask it to look now (`library.check_now()`), never wait.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.app import BotApp
from storage import playbooks as store
from tests.conftest import attachments_text
from tests.e2e.conftest import INCIDENT, World
from tests.e2e.test_finish_retro import finish_with_confirmation
from tests.e2e.test_status_updates import open_dialog_for

pytest_plugins = ["tests.pg"]

EDITED = (INCIDENT.replace('title = "Find the cause"', 'title = "Find the root cause"')
          .replace('template = "## What happened"', 'template = "## Timeline"'))
BROKEN = INCIDENT.replace('title = "Resolve"', "title = 3")


def edit(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))  # as a later save would


async def start(world: World, name: str) -> dict[str, Any]:
    status, body = await world["alice"].command(world.town_square, f"/playbook run incident {name}")
    assert status == 200 and "Starting" in body["text"], body
    await world.settle()
    _, runs = await world.runs_json("alice")
    return next(r for r in runs["items"] if r["name"] == name)


async def checklist_text(world: World, run: dict[str, Any]) -> str:
    posts = await world.posts(run["channel_id"])
    return "\n".join(attachments_text(p.get("props")) for p in posts if p["user_id"] == world.bot_user_id)


async def test_an_edited_file_changes_the_next_run_and_the_running_one_keeps_its_version(world: World) -> None:
    library = world.bot.ctx.library
    assert library is not None
    before = await start(world, "Outage one")
    assert "Find the cause" in await checklist_text(world, before)

    edit(world.playbooks_dir / "incident.toml", EDITED)
    assert await library.check_now()
    assert world.bot.ctx.playbooks["incident"].version == 2

    after = await start(world, "Outage two")
    assert "Find the root cause" in await checklist_text(world, after)
    # The run started before the edit keeps its version everywhere.
    text = await checklist_text(world, before)
    assert "Find the cause" in text and "Find the root cause" not in text
    status, body = await world["alice"].command(before["channel_id"], "/playbook info")
    assert status == 200 and "(version 1)" in body["text"], body
    status, body = await world["alice"].command(after["channel_id"], "/playbook info")
    assert "(version 2)" in body["text"], body
    await finish_with_confirmation(world, before)
    status, body = await world["alice"].command(before["channel_id"], "/playbook retro")
    assert status == 200, body
    await world.settle()
    dialog = await open_dialog_for(world, "alice", seen=1)
    assert dialog["dialog"]["elements"][0]["default"] == "## What happened"

    # `/playbook playbooks` lists it with its version and a link.
    status, body = await world["alice"].command(world.town_square, "/playbook playbooks")
    assert status == 200, body
    assert "`incident`" in body["text"] and "version 2" in body["text"] and "from its file" in body["text"]
    assert f"{world.bot.ctx.public_url}/playbooks/incident" in body["text"]


async def test_a_broken_edit_keeps_the_last_good_version_and_is_reported(world: World) -> None:
    library = world.bot.ctx.library
    assert library is not None
    edit(world.playbooks_dir / "incident.toml", BROKEN)
    assert await library.check_now()
    assert world.bot.ctx.playbooks["incident"].version == 1
    assert any("checklists[2].title" in str(e) for e in world.bot.ctx.playbook_errors)
    run = await start(world, "Still works")
    assert "Deploy the fix" in await checklist_text(world, run)
    status, body = await world["alice"].command(world.town_square, "/playbook playbooks")
    assert "its file has problems" in body["text"], body
    record = await world.bot.ctx.db.run(store.get_playbook, "incident")
    assert record is not None and "checklists[2].title" in record.error

    edit(world.playbooks_dir / "incident.toml", EDITED)
    await library.check_now()
    assert world.bot.ctx.playbooks["incident"].version == 2 and not world.bot.ctx.playbook_errors


async def test_archiving_in_chat_stops_new_runs_and_restoring_brings_them_back(world: World) -> None:
    alice = world["alice"]
    # Only system admins archive from chat (nobody in this world is one): the others are told so.
    status, body = await world["bob"].command(world.town_square, "/playbook playbooks archive incident")
    assert "Only system admins" in body["text"], body
    await world.bot.ctx.db.run(store.archive, "incident", world.clock.now_ms())
    await world.bot.ctx.library.check_now()  # type: ignore[union-attr]
    status, body = await alice.command(world.town_square, "/playbook run incident Nope")
    assert "Starting" not in body["text"], body
    await world.bot.ctx.db.run(store.restore, "incident", world.clock.now_ms())
    await world.bot.ctx.library.check_now()  # type: ignore[union-attr]
    await start(world, "Back again")


async def test_two_bots_on_one_postgresql_agree_on_one_current_version(world: World, pg_url: str) -> None:
    settings = world.bot.settings
    await world.bot.stop()
    shared = replace(settings, storage=replace(settings.storage, url=pg_url))
    first = await BotApp(shared, clock=world.clock).start()
    second = await BotApp(shared, clock=world.clock).start()
    world.bot = second
    try:
        for n in range(3):
            edit(world.playbooks_dir / "incident.toml", EDITED if n % 2 == 0 else INCIDENT)
            await asyncio.gather(first.ctx.library.check_now(), second.ctx.library.check_now())  # type: ignore[union-attr]
            await asyncio.gather(first.ctx.library.check_now(), second.ctx.library.check_now())  # type: ignore[union-attr]
            one, two = first.ctx.playbooks["incident"], second.ctx.playbooks["incident"]
            assert one.version_id == two.version_id
        versions = await second.ctx.db.run(store.list_versions, "incident")
        assert [v.number for v in versions] == [4, 3, 2, 1]
        # One process archives; the other sees it at its next look.
        await first.ctx.db.run(store.archive, "onboarding", world.clock.now_ms())
        await second.ctx.library.check_now()  # type: ignore[union-attr]
        assert "onboarding" not in second.ctx.playbooks
    finally:
        await first.stop()


async def test_bot_check_reports_each_version_and_a_broken_file_and_writes_nothing(world: World,
                                                                                   tmp_path: Path) -> None:
    from tests.e2e.test_bot_cli import run_cli

    library = world.bot.ctx.library
    assert library is not None
    edit(world.playbooks_dir / "incident.toml", EDITED)
    await library.check_now()
    edit(world.playbooks_dir / "incident.toml", BROKEN)
    await library.check_now()
    s = world.bot.settings
    env = {"BOT_MATTERMOST_URL": world.sb.url, "BOT_MATTERMOST_TOKEN": s.mattermost.token,
           "BOT_PLAYBOOKS_DIR": str(world.playbooks_dir), "BOT_STORAGE_URL": s.storage.url}
    before = await world.bot.ctx.db.run(store.marker, readonly=True)
    code, out, err = await run_cli("check", cwd=tmp_path, env=env)
    assert code == 1, out + err
    assert f"[ok] playbook incident: version 2, from {world.playbooks_dir / 'incident.toml'}" in out, out
    assert "[FAIL] playbook incident: its file is broken; version 2 stays current until it is fixed" in out
    assert "[ok] playbook onboarding: version 1" in out

    edit(world.playbooks_dir / "incident.toml", INCIDENT)  # fixed
    await library.check_now()
    code, out, err = await run_cli("check", cwd=tmp_path, env=env)
    assert "playbook incident: version 3" in out and "broken" not in out, out
    assert await world.bot.ctx.db.run(store.marker, readonly=True) > before
    after = await world.bot.ctx.db.run(store.marker, readonly=True)
    await run_cli("check", cwd=tmp_path, env=env)
    assert await world.bot.ctx.db.run(store.marker, readonly=True) == after  # the check wrote nothing
