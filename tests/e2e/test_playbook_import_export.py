"""A team moving off the Playbooks plugin: its JSON export imported (through the API and the command line)
with a report of every field, a run started from it in chat, and the playbook exported back as TOML that
loads to the same playbook. The write API's refusals. Every API exchange is checked against
bot/openapi.json (tests/bot_api.py)."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from bot.playbooks.plugin_import import _HANDLED, _METADATA
from bot.playbooks.validation import parse_playbook
from storage import playbooks as store
from tests.e2e.conftest import World
from tests.e2e.test_bot_cli import run_cli

EXPORT = Path(__file__).resolve().parents[1] / "data" / "plugin_playbook_export.json"


async def _export_with_real_ids(world: World) -> dict[str, Any]:
    """The realistic export, its ids those of this server (as an export from a server with these people
    would hold); webhooks off (nothing listens at hooks.example.com)."""
    text = EXPORT.read_text()
    for name in ("alice", "bob", "carol", "dave"):
        text = text.replace(f"USER_{name.upper()}", world[name].id)
    text = text.replace("TEAM_ENG", world.team_id).replace("CHANNEL_TOWN_SQUARE", world.town_square)
    export: dict[str, Any] = json.loads(text)
    export["webhook_on_creation_enabled"] = False
    export["webhook_on_status_update_enabled"] = False
    return export


async def test_import_report_run_and_export_back_as_toml(world: World) -> None:
    admin = world.bot_api("admin")
    export = await _export_with_real_ids(world)
    status, body, _ = await admin.post("/api/v0/playbooks/import", json=export)
    assert status == 201, body
    playbook = body["playbook"]
    pid = playbook["id"]
    assert pid == "incident-resolution-sev-1-2" and playbook["version"]["source"] == "import"
    report = body["report"]
    reported = {r["field"].split(".")[0].split("[")[0] for r in report["mapped"] + report["unmapped"]}
    assert set(export) <= reported and set(export) == set(_HANDLED) | set(_METADATA)
    unmapped = {r["field"]: r["reason"] for r in report["unmapped"]}
    assert {r["field"]: r["to"] for r in report["mapped"]}["signal_any_keywords"] == "keywords.words"
    for field in ("invited_group_ids", "run_number_prefix", "autofollows",
                  "webhook_on_creation_urls", "checklists[].items[].state"):
        assert unmapped.get(field), field
    data = playbook["version"]["data"]
    assert data["owner"] == "alice" and data["members"] == ["bob", "carol"] and data["team"] == "eng"
    assert data["broadcast_channels"] == ["town-square"]

    # The imported playbook runs in chat at once.
    assert world.bot.ctx is not None and pid in world.bot.ctx.playbooks
    status, reply = await world["alice"].command(world.town_square, f"/playbook run {pid} Database down")
    assert status == 200, reply
    await world.settle()
    status, runs = await world.runs_json("alice")
    assert status == 200 and runs["total"] == 1, runs
    run = runs["items"][0]
    assert run["playbook"]["id"] == pid and run["owner_id"] == world["alice"].id
    assert [c["title"] for c in run["checklists"]] == ["Triage", "Follow-up"]
    assert run["summary"].startswith("**Service:**")
    channel_posts = await world.posts(run["channel_id"])
    assert any("Acknowledge the page" in json.dumps(p) for p in channel_posts)

    # Exported back as TOML: the same data, the same playbook.
    status, _, toml_text = await admin.get(f"/api/v0/playbooks/{pid}/export", query={"format": "toml"})
    assert status == 200
    again = tomllib.loads(toml_text)
    assert again == data
    assert parse_playbook(again, playbook_id=pid, path=pid) == parse_playbook(data, playbook_id=pid, path=pid)
    # ... and as the plugin's JSON, which imports again.
    status, plugin_json, _ = await admin.get(f"/api/v0/playbooks/{pid}/export", query={"format": "plugin-json"})
    assert status == 200 and plugin_json["title"] == data["title"]
    assert plugin_json["default_owner_id"] == world["alice"].id
    status, body, _ = await admin.post("/api/v0/playbooks/import", json=plugin_json)
    assert status == 201 and body["playbook"]["id"] == f"{pid}-2", body


async def test_the_write_api_refuses_what_it_must(world: World) -> None:
    admin, bob = world.bot_api("admin"), world.bot_api("bob")
    status, body, _ = await world.bot_api(None).get("/api/v0/playbooks")
    assert status == 401
    status, listing, _ = await bob.get("/api/v0/playbooks")
    assert status == 200 and {p["id"] for p in listing["items"]} == {"incident", "onboarding"}
    # A non-admin may read but not write.
    status, incident, _ = await bob.get("/api/v0/playbooks/incident")
    assert status == 200 and incident["file_managed"] and incident["version"]["data"]["title"]
    status, body, _ = await bob.put("/api/v0/playbooks/incident", json={"data": incident["version"]["data"]})
    assert status == 403, body
    status, body, _ = await bob.post("/api/v0/playbooks", json={"data": {"title": "Mine"}})
    assert status == 403, body
    # A file-managed playbook takes versions from its file only.
    status, body, _ = await admin.put("/api/v0/playbooks/incident", json={"data": {"title": "Changed"}})
    assert status == 409 and "incident.toml" in body["error"], body
    # Validation problems name the key.
    bad = {"title": "Bad", "checklists": [{"title": "A", "items": [{"title": "x", "due": "soon"}]}]}
    status, body, _ = await admin.post("/api/v0/playbooks", json={"data": bad})
    assert status == 400 and body["problems"][0]["path"] == "checklists[1].items[1].due", body
    status, body, _ = await admin.post("/api/v0/playbooks", json={"toml": "title = "})
    assert status == 400 and body["problems"][0]["path"] == "toml", body
    status, body, _ = await admin.post("/api/v0/playbooks/import", data=b"[1]")
    assert status == 400 and body["problems"] == ["expected a JSON object (a playbook), got list"], body
    # Created from TOML text, saved again (a version), with Idempotency-Key honoured.
    key = {"Idempotency-Key": "create-1"}
    status, made, _ = await admin.post("/api/v0/playbooks", json={"toml": 'title = "Release"\n', "id": "release"},
                                       headers=key)
    assert status == 201 and made["id"] == "release" and made["version"]["number"] == 1, made
    status, again, _ = await admin.post("/api/v0/playbooks", json={"toml": 'title = "Release"\n', "id": "release"},
                                        headers=key)
    assert status == 201 and again == made
    status, saved, _ = await admin.put("/api/v0/playbooks/release",
                                       json={"data": {"title": "Release", "welcome": "Ship it."}, "note": "welcome"})
    assert status == 200 and saved["created"] and saved["version"]["number"] == 2, saved
    status, versions, _ = await bob.get("/api/v0/playbooks/release/versions")
    assert status == 200 and [v["number"] for v in versions["items"]] == [2, 1]
    status, first, _ = await bob.get("/api/v0/playbooks/release/versions/1")
    assert status == 200 and first["data"] == {"title": "Release"}
    status, _, _ = await bob.get("/api/v0/playbooks/release/versions/9")
    assert status == 404
    status, _, _ = await bob.get("/api/v0/playbooks/nope")
    assert status == 404
    status, doc, _ = await world.bot_api(None).get("/api/v0/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")


async def test_import_playbook_on_the_command_line(world: World, tmp_path: Path) -> None:
    export = await _export_with_real_ids(world)
    source = tmp_path / "export.json"
    source.write_text(json.dumps(export))
    settings = world.bot.settings
    env = {"BOT_MATTERMOST_URL": world.sb.url, "BOT_MATTERMOST_TOKEN": settings.mattermost.token,
           "BOT_STORAGE_URL": settings.storage.url, "BOT_PLAYBOOKS_DIR": str(world.playbooks_dir)}
    code, out, err = await run_cli("import-playbook", str(source), "--id", "from-plugin", env=env, cwd=tmp_path)
    assert code == 0, err
    assert "as playbook from-plugin (version 1)" in out
    assert "mapped    signal_any_keywords -> keywords.words" in out and "mapped    default_owner_id -> owner" in out
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    assert "from-plugin" in world.bot.ctx.playbooks
    code, out, err = await run_cli("export-playbook", "from-plugin", env=env, cwd=tmp_path)
    assert code == 0, err
    stored = await world.bot.ctx.db.run(store.current_version, "from-plugin", readonly=True)
    assert stored is not None and tomllib.loads(out) == stored.data

    # A bad file: one line per problem, exit 2, nothing written.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 3, "checklists": []}))
    code, out, err = await run_cli("import-playbook", str(bad), env=env, cwd=tmp_path)
    assert code == 2 and out == "", out
    assert err.strip().splitlines() == [
        f"{bad}: version: expected the plugin's export version 1, got 3",
        f"{bad}: title: required (a non-empty string); this does not look like a playbook export"]
    entries = await world.bot.ctx.db.run(store.list_playbooks, readonly=True)
    assert sorted(e.record.id for e in entries) == ["from-plugin", "incident", "onboarding"]
