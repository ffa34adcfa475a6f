"""The playbooks' REST API (`/api/v0/playbooks`): list, read, create, save a version, versions, export,
import. Same caller rule as the runs' API (their own Mattermost token); who may see and change a
playbook is bot.domain.permissions (`may_view_playbook`, `may_edit_playbook`).

A playbook is sent and received as its data dict (the keys of a playbook file), or as TOML text
(`{"toml": "..."}`); validation problems answer 400 with `problems: [{path, message}]`. A file-managed
playbook takes versions only from its file: a PUT answers 409. A POST with `Idempotency-Key` answers a
repeat (same caller, same key and body, within a day, in any bot process) with the first answer instead of
making a second playbook (handlers/idempotency.py).
"""
from __future__ import annotations

import functools
import json
import tomllib
from typing import Any, Mapping

from bot.clock import iso
from bot.context import Context
from bot.domain.permissions import Viewer, may_create_playbook, may_edit_playbook, may_view_playbook
from bot.playbooks import PlaybookInvalid
from bot.playbooks.export import NotTomlable, to_plugin_json, to_toml
from bot.playbooks.importer import Problem, check_file_name_ok, prepare_import, save_import, validate_data
from bot.playbooks.plugin_import import slug
from bot.router import HttpReply, HttpRequest, HttpText, Router
from handlers.idempotency import idempotent
from handlers.playbook_access import playbook_facts
from storage import playbooks as store
from storage.models import PlaybookRecord, PlaybookVersion

router = Router("playbooks-api")

NOT_FOUND = (404, {"error": "No playbook with this id, or you may not see it."})


def version_json(version: PlaybookVersion, *, data: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": version.id, "number": version.number, "source": version.source,
        "source_path": version.source_path, "source_commit": version.source_commit,
        "author_id": version.author_id, "note": version.note, "created_at": iso(version.created_at),
    }
    if data:
        out["data"] = version.data
    return out


def playbook_json(record: PlaybookRecord, version: PlaybookVersion | None, *, data: bool = False
                  ) -> dict[str, Any]:
    return {
        "id": record.id, "title": str(version.data.get("title", "")) if version is not None else "",
        "archived": record.archived, "missing": record.missing, "file_managed": record.file_managed,
        "path": record.path, "error": record.error, "updated_at": iso(record.updated_at),
        "version": version_json(version, data=data) if version is not None else None,
    }


def _visible(ctx: Context, viewer: Viewer, version: PlaybookVersion | None) -> bool:
    return may_view_playbook(viewer, playbook_facts(ctx, version.data if version is not None else None))


async def _entry(ctx: Context, viewer: Viewer, playbook_id: str) -> store.Entry | None:
    entry = await ctx.db.run(store.get_entry, playbook_id, readonly=True)
    if entry is None or not _visible(ctx, viewer, entry.version):
        return None
    return entry


def _problems(problems: list[Problem], error: str = "The playbook is not valid.") -> tuple[int, dict[str, Any]]:
    return 400, {"error": error, "problems": [p.as_dict() for p in problems]}


def _body(request: HttpRequest) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The playbook data a POST or PUT sends: `{"data": {...}}`, `{"toml": "..."}` or the data itself."""
    if not request.body:
        return None, [Problem("", 'send a JSON body: {"data": {...}} or {"toml": "..."}')]
    try:
        raw = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [Problem("", f"the body is not JSON: {exc}")]
    if not isinstance(raw, dict):
        return None, [Problem("", f"expected a JSON object, got {type(raw).__name__}")]
    if "toml" in raw:
        if not isinstance(raw["toml"], str):
            return None, [Problem("toml", "expected the playbook file's text")]
        try:
            return tomllib.loads(raw["toml"]), []
        except tomllib.TOMLDecodeError as exc:
            return None, [Problem("toml", f"invalid TOML: {exc}")]
    data = raw.get("data", raw)
    if not isinstance(data, dict):
        return None, [Problem("data", f"expected a table of playbook keys, got {type(data).__name__}")]
    return data, []


def _option(request: HttpRequest, key: str) -> str:
    """A string option of a POST/PUT's JSON (`id`, `note`), "" when absent."""
    try:
        raw = json.loads(request.body) if request.body else {}
    except (ValueError, UnicodeDecodeError):
        return ""
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, str) else ""


async def _refresh(ctx: Context) -> None:
    if ctx.library is not None:
        await ctx.library.check_now()  # runnable at once in this process; the others follow within seconds


@router.http("GET", "/api/v0/playbooks")
async def list_playbooks(request: HttpRequest, ctx: Context) -> HttpReply:
    viewer = request.viewer()
    archived = request.query.get("archived", "false")
    if archived not in ("true", "false"):
        return 400, {"error": f"archived must be true or false, not {archived!r}."}
    entries = await ctx.db.run(functools.partial(store.list_playbooks, include_archived=archived == "true"),
                               readonly=True)
    items = [playbook_json(e.record, e.version) for e in entries if _visible(ctx, viewer, e.version)]
    return 200, {"items": items, "total": len(items)}


@router.http("GET", "/api/v0/playbooks/{playbook_id}")
async def get_playbook(request: HttpRequest, ctx: Context) -> HttpReply:
    entry = await _entry(ctx, request.viewer(), request.params["playbook_id"])
    if entry is None:
        return NOT_FOUND
    return 200, playbook_json(entry.record, entry.version, data=True)


@router.http("POST", "/api/v0/playbooks")
async def create_playbook(request: HttpRequest, ctx: Context) -> HttpReply:
    async def make() -> HttpReply:
        data, problems = _body(request)
        if data is None:
            return _problems(problems, "The request is not a playbook.")
        viewer = request.viewer()
        if not may_create_playbook(viewer):
            return 403, {"error": "Only system admins may create playbooks."}
        wanted = _option(request, "id")
        if wanted:
            try:
                check_file_name_ok(wanted)
            except PlaybookInvalid as exc:
                return _problems([Problem("id", exc.errors[0].problem)], "The id is not valid.")
        playbook, problems = validate_data(data, wanted or slug(str(data.get("title", ""))))
        if playbook is None:
            return _problems(problems)
        try:
            version = await ctx.db.run(functools.partial(
                store.create_playbook, source="editor", now=ctx.clock.now_ms(), author_id=viewer.user_id,
                note=_option(request, "note") or "created through the API", exact=bool(wanted)),
                wanted or slug(playbook.title), data)
        except store.PlaybookExists:
            return 409, {"error": f"A playbook with the id {wanted!r} exists; choose another id."}
        await _refresh(ctx)
        record = await ctx.db.run(store.get_playbook, version.playbook_id, readonly=True)
        assert record is not None
        return 201, playbook_json(record, version, data=True)

    return await idempotent(request, ctx, "POST /api/v0/playbooks", make)


@router.http("PUT", "/api/v0/playbooks/{playbook_id}")
async def save_playbook(request: HttpRequest, ctx: Context) -> HttpReply:
    viewer = request.viewer()
    playbook_id = request.params["playbook_id"]
    entry = await _entry(ctx, viewer, playbook_id)
    if entry is None:
        return NOT_FOUND
    data, problems = _body(request)
    if data is None:
        return _problems(problems, "The request is not a playbook.")
    current = entry.version.data if entry.version is not None else None
    # Both as it is and as it would be: nobody edits themselves into a playbook or out of its rules.
    if not (may_edit_playbook(viewer, playbook_facts(ctx, current))
            and may_edit_playbook(viewer, playbook_facts(ctx, data))):
        return 403, {"error": "You may not change this playbook (only its admins and system admins may)."}
    if entry.record.file_managed:
        return 409, {"error": f"Playbook {playbook_id} is managed by its file {entry.record.path}: change the "
                              "file (each change becomes a version), or copy the playbook to edit it here."}
    playbook, problems = validate_data(data, playbook_id)
    if playbook is None:
        return _problems(problems)
    try:
        saved = await ctx.db.run(functools.partial(
            store.save_version, source="editor", now=ctx.clock.now_ms(), author_id=viewer.user_id,
            note=_option(request, "note")), playbook_id, data)
    except store.FileManaged:
        return 409, {"error": f"Playbook {playbook_id} is managed by its file; change the file instead."}
    await _refresh(ctx)
    record = await ctx.db.run(store.get_playbook, playbook_id, readonly=True)
    assert record is not None
    return 200, {**playbook_json(record, saved.version, data=True), "created": saved.created}


@router.http("GET", "/api/v0/playbooks/{playbook_id}/versions")
async def list_versions(request: HttpRequest, ctx: Context) -> HttpReply:
    playbook_id = request.params["playbook_id"]
    if await _entry(ctx, request.viewer(), playbook_id) is None:
        return NOT_FOUND
    versions = await ctx.db.run(store.list_versions, playbook_id, readonly=True)
    return 200, {"items": [version_json(v) for v in versions], "total": len(versions)}


async def _version(request: HttpRequest, ctx: Context, number: str | None
                   ) -> tuple[PlaybookVersion | None, HttpReply | None]:
    playbook_id = request.params["playbook_id"]
    entry = await _entry(ctx, request.viewer(), playbook_id)
    if entry is None:
        return None, NOT_FOUND
    if number is None:
        if entry.version is None:
            return None, (404, {"error": f"Playbook {playbook_id} has no valid version yet."})
        return entry.version, None
    if not number.isascii() or not number.isdigit() or len(number) > 9:
        return None, (400, {"error": "A version is a whole number (1, 2, ...)."})
    found = await ctx.db.run(store.version_number, playbook_id, int(number), readonly=True)
    if found is None:
        return None, (404, {"error": f"Playbook {playbook_id} has no version {number}."})
    return found, None


@router.http("GET", "/api/v0/playbooks/{playbook_id}/versions/{number}")
async def get_version(request: HttpRequest, ctx: Context) -> HttpReply:
    version, refusal = await _version(request, ctx, request.params["number"])
    if refusal is not None:
        return refusal
    assert version is not None
    return 200, version_json(version, data=True)


@router.http("GET", "/api/v0/playbooks/{playbook_id}/export")
async def export_playbook(request: HttpRequest, ctx: Context) -> HttpReply:
    fmt = request.query.get("format", "toml")
    if fmt not in ("toml", "plugin-json"):
        return 400, {"error": f"format must be toml or plugin-json, not {fmt!r}."}
    version, refusal = await _version(request, ctx, request.query.get("version"))
    if refusal is not None:
        return refusal
    assert version is not None
    if fmt == "plugin-json":
        names = await _ids_for(ctx, version.data)
        return 200, to_plugin_json(version.data, user_id=lambda n: names[0].get(n.lower(), ""),
                                   channel_id=lambda n: names[1].get(n, ""))
    try:
        text = to_toml(version.data)
    except NotTomlable as exc:
        return 500, {"error": str(exc)}
    return HttpText(200, text, "application/toml", filename=f"{version.playbook_id}.toml")


async def _ids_for(ctx: Context, data: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Usernames and channel names the playbook names -> their ids on this server (those found)."""
    from bot.models import MattermostError

    names: set[str] = set()
    for key in ("owner",):
        if isinstance(data.get(key), str):
            names.add(data[key].lower())
    names.update(str(m).lower() for m in data.get("members", []) if isinstance(m, str))
    for checklist in data.get("checklists", []) if isinstance(data.get("checklists"), list) else []:
        for item in checklist.get("items", []) if isinstance(checklist, dict) else []:
            if isinstance(item, dict) and isinstance(item.get("assignee"), str):
                names.add(item["assignee"].lower())
            auto = item.get("auto_check") if isinstance(item, dict) else None
            if isinstance(auto, dict):
                names.update(str(u).lower() for u in auto.get("users", []))
    names -= {"owner", "creator"}
    users: dict[str, str] = {}
    if names:
        try:
            users = {u.username.lower(): u.id for u in await ctx.gateway.get_users_by_usernames(sorted(names))}
        except MattermostError:
            users = {}
    channels: dict[str, str] = {}
    wanted = [str(c) for c in data.get("broadcast_channels", []) if isinstance(c, str)]
    if isinstance(data.get("channel"), str) and data["channel"]:
        wanted.append(data["channel"])
    teams = playbook_facts(ctx, data).team_ids
    team_ids = sorted(teams) if teams is not None else list(ctx.teams)
    for name in wanted:
        for team_id in team_ids:
            try:
                channels[name] = (await ctx.gateway.get_channel_by_name(team_id, name)).id
                break
            except MattermostError:
                continue
    return users, channels


@router.http("POST", "/api/v0/playbooks/import")
async def import_playbook(request: HttpRequest, ctx: Context) -> HttpReply:
    async def make() -> HttpReply:
        viewer = request.viewer()
        if not may_create_playbook(viewer):
            return 403, {"error": "Only system admins may import playbooks."}
        wanted = request.query.get("id", "")
        if wanted:
            try:
                check_file_name_ok(wanted)
            except PlaybookInvalid as exc:
                return _problems([Problem("id", exc.errors[0].problem)], "The id is not valid.")
        prepared = await prepare_import(request.body, ctx.gateway)
        if prepared.problems:
            return 400, {"error": "The file cannot be imported.", **prepared.as_dict()}
        try:
            version = await save_import(ctx.db, prepared, ctx.clock.now_ms(), author_id=viewer.user_id,
                                        playbook_id=wanted)
        except store.PlaybookExists:
            return 409, {"error": f"A playbook with the id {wanted!r} exists; choose another id."}
        await _refresh(ctx)
        record = await ctx.db.run(store.get_playbook, version.playbook_id, readonly=True)
        assert record is not None
        return 201, {"playbook": playbook_json(record, version, data=True), "report": prepared.report.as_dict()}

    return await idempotent(request, ctx, "POST /api/v0/playbooks/import", make)
