"""The web view's playbooks: the list (`/playbooks`), a playbook's page with its versions, what each
changed and the runs since (`/playbooks/{id}`), a diff between any two versions, the editor (a form
with every field, or the TOML text of the same playbook), live validation, export as TOML, copy to
edit, archive and restore, and "Improve the playbook" from a finished run.

A playbook is its data dict (bot.playbooks.validation); bot.playbooks.editing turns it into the form and
back, and every save is a new version (storage.playbooks.save_version) after the file loader's own
validation (parse_playbook). Saving starts no run; the library is told at once (check_now), so the next
run of this process uses the new version, and other processes see it within seconds.

Who may do what is bot/domain/permissions.py (may_view_playbook, may_edit_playbook and their [access],
may_create_playbook); a playbook the person may not see is answered as a missing one. A file-managed
playbook is read-only here: it changes through its file.
"""
from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from bot.context import Context
from bot.domain.durations import format_duration_compact
from bot.domain.permissions import (
    PlaybookFacts,
    Viewer,
    may_create_playbook,
    may_edit_playbook,
    may_view_playbook,
)
from bot.playbooks import PlaybookInvalid, parse_playbook
from bot.playbooks import editing as ed
from bot.playbooks.loader import check_file_name
from bot.playbooks.model import TITLE_MAX, Playbook
from bot.router import Download, Page, Redirect, Router, UserError, WebReply, WebRequest
from handlers.playbook_access import playbook_facts as facts_of
from handlers.schedules import next_run_at
from storage import playbooks as store
from storage import web_playbooks as rows
from storage.models import PlaybookRecord, PlaybookVersion

log = logging.getLogger(__name__)

router = Router("web-playbooks")

RUNS_IN_LIST = 3  # latest runs shown per playbook in the list
CHANGES_SHOWN = 20  # versions whose changes the playbook's page shows
NOTE_MAX = 1000
PROPOSALS_MAX = 200
_NUMBER = re.compile(r"[0-9]{1,9}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


# --- who may do what -----------------------------------------------------------------------------

async def playbook_facts(ctx: Context, data: Mapping[str, Any]) -> PlaybookFacts:
    return facts_of(ctx, data)


async def may_improve(ctx: Context, viewer: Viewer, playbook_id: str) -> bool:
    """Whether the viewer may edit the playbook a run followed (the run page's "Improve the playbook")."""
    version = await ctx.db.run(store.current_version, playbook_id, readonly=True)
    return version is not None and may_edit_playbook(viewer, await playbook_facts(ctx, version.data))


@dataclass(frozen=True)
class Loaded:
    record: PlaybookRecord
    version: PlaybookVersion | None
    facts: PlaybookFacts
    may_edit: bool


async def _load(ctx: Context, request: WebRequest, playbook_id: str) -> Loaded | None:
    """The playbook when the person may see it (None: answer as missing)."""
    if not _ID.fullmatch(playbook_id):
        return None
    record = await ctx.db.run(store.get_playbook, playbook_id, readonly=True)
    if record is None:
        return None
    version = await ctx.db.run(store.current_version, playbook_id, readonly=True)
    facts = await playbook_facts(ctx, version.data if version is not None else {})
    viewer = request.viewer()
    if not may_view_playbook(viewer, facts):
        return None
    return Loaded(record, version, facts, may_edit_playbook(viewer, facts))


def _page(ctx: Context, request: WebRequest, template: str, status: int = 200, **values: Any) -> Page:
    return Page(ctx.render_html(template, user=request.user, csrf=request.csrf, nav="playbooks", **values), status)


def _not_found(ctx: Context, request: WebRequest) -> Page:
    return _page(ctx, request, "web/playbooks/not_found.html.j2", 404, title="Not found")


def _refused(ctx: Context, request: WebRequest, text: str) -> Page:
    log.warning("web: refused a playbook page path=%s user=%s", request.path, request.user.id)
    return Page(ctx.render_html("web/errors/refused.html.j2", status=403, text=text, user=request.user,
                                csrf=request.csrf, nav="playbooks"), 403)


def _edit_refusal(ctx: Context, request: WebRequest) -> Page:
    return _refused(ctx, request, ctx.render("web/playbooks/edit_refused.txt.j2"))


async def _names(ctx: Context, user_ids: list[str]) -> dict[str, str]:
    wanted = [u for u in dict.fromkeys(user_ids) if u]
    return await ctx.users.names(wanted) if wanted else {}


async def _refresh(ctx: Context) -> None:
    if ctx.library is not None:
        await ctx.library.check_now()  # this process sees it at once; the others within seconds


# --- the list --------------------------------------------------------------------------------------

@router.page("GET", "/playbooks")
async def playbooks_list(request: WebRequest, ctx: Context) -> WebReply:
    viewer = request.viewer()
    entries = await ctx.db.run(store.list_playbooks, readonly=True)
    shown = []
    for entry in entries:
        facts = await playbook_facts(ctx, entry.version.data if entry.version is not None else {})
        if may_view_playbook(viewer, facts):
            shown.append(entry)
    runs = await ctx.db.run(rows.runs_of, viewer, [e.record.id for e in shown], 500, readonly=True)
    shown.sort(key=lambda e: (e.record.archived, str((e.version.data if e.version else {}).get("title", e.record.id))
                              .lower()))
    return _page(ctx, request, "web/playbooks/list.html.j2", title="Playbooks", entries=shown,
                 runs={pid: found[:RUNS_IN_LIST] for pid, found in runs.items()},
                 tz=request.user.timezone, may_create=may_create_playbook(viewer))


# --- a playbook's page -------------------------------------------------------------------------------

def _parsed(version: PlaybookVersion) -> tuple[Playbook | None, list[str]]:
    try:
        return parse_playbook(version.data, playbook_id=version.playbook_id,
                              path=f"{version.playbook_id} version {version.number}"), []
    except PlaybookInvalid as exc:
        return None, [f"{e.key}: {e.problem}" if e.key else e.problem for e in exc.errors]


@router.page("GET", "/playbooks/{playbook_id}")
async def playbook_page(request: WebRequest, ctx: Context) -> WebReply:
    loaded = await _load(ctx, request, request.params["playbook_id"])
    if loaded is None:
        return _not_found(ctx, request)
    record = loaded.record
    versions = await ctx.db.run(store.list_versions, record.id, readonly=True)  # newest first
    runs = (await ctx.db.run(rows.runs_of, request.viewer(), [record.id], readonly=True)).get(record.id, [])
    by_version: dict[str, list[rows.RunBrief]] = {}
    for run in runs:
        by_version.setdefault(run.playbook_version_id or "", []).append(run)
    changes = []
    for n, version in enumerate(versions[:CHANGES_SHOWN]):
        before = versions[n + 1] if n + 1 < len(versions) else None
        changes.append((version, ed.diff(before.data if before else {}, version.data) if before else None))
    names = await _names(ctx, [v.author_id for v in versions])
    playbook, problems = _parsed(loaded.version) if loaded.version is not None else (None, [])
    return _page(ctx, request, "web/playbooks/playbook.html.j2", title=(playbook.title if playbook else record.id),
                 record=record, current=loaded.version, playbook=playbook, problems=problems, versions=versions,
                 changes=changes, by_version=by_version, runs=runs, names=names, split_note=ed.split_note,
                 tz=request.user.timezone, may_edit=loaded.may_edit,
                 may_copy=may_create_playbook(request.viewer()), saved=request.query.get("saved", ""),
                 toml=ed.dump_toml(loaded.version.data) if loaded.version is not None else "",
                 compact=format_duration_compact,
                 next_run=next_run_at(playbook, ctx.clock.now_ms()) if playbook is not None else None)


@router.page("GET", "/playbooks/{playbook_id}/diff")
async def playbook_diff(request: WebRequest, ctx: Context) -> WebReply:
    loaded = await _load(ctx, request, request.params["playbook_id"])
    if loaded is None:
        return _not_found(ctx, request)
    versions = {v.number: v for v in await ctx.db.run(store.list_versions, loaded.record.id, readonly=True)}
    wanted = []
    for name in ("from", "to"):
        raw = request.query.get(name, "")
        if not _NUMBER.fullmatch(raw) or int(raw) not in versions:
            known = ", ".join(str(n) for n in sorted(versions))
            raise UserError(ctx.render("web/playbooks/bad_version.txt.j2", name=name, value=raw[:20], known=known))
        wanted.append(versions[int(raw)])
    old, new = wanted
    return _page(ctx, request, "web/playbooks/diff.html.j2", title=f"{loaded.record.id}: version {old.number} to "
                 f"{new.number}", record=loaded.record, old=old, new=new, diff=ed.diff(old.data, new.data),
                 numbers=sorted(versions))


@router.page("GET", "/playbooks/{playbook_id}/export.toml")
async def export_toml(request: WebRequest, ctx: Context) -> WebReply:
    """The current version as a playbook file (tomllib.loads gives its data dict back exactly)."""
    loaded = await _load(ctx, request, request.params["playbook_id"])
    if loaded is None or loaded.version is None:
        return _not_found(ctx, request)
    return Download(ed.dump_toml(loaded.version.data).encode("utf-8"), "application/toml",
                    f"{loaded.record.id}.toml")


# --- archive, restore, copy ------------------------------------------------------------------------------

async def _archive(request: WebRequest, ctx: Context, archived: bool) -> WebReply:
    loaded = await _load(ctx, request, request.params["playbook_id"])
    if loaded is None:
        return _not_found(ctx, request)
    if not loaded.may_edit:
        return _edit_refusal(ctx, request)
    now = ctx.clock.now_ms()
    if archived:
        await ctx.db.run(store.archive, loaded.record.id, now)
    else:
        await ctx.db.run(store.restore, loaded.record.id, now)
    await _refresh(ctx)
    return Redirect(f"/playbooks/{loaded.record.id}")


@router.page("POST", "/playbooks/{playbook_id}/archive")
async def archive_form(request: WebRequest, ctx: Context) -> WebReply:
    return await _archive(request, ctx, True)


@router.page("POST", "/playbooks/{playbook_id}/restore")
async def restore_form(request: WebRequest, ctx: Context) -> WebReply:
    return await _archive(request, ctx, False)


def _id_problem(raw: str) -> str:
    """Why `raw` cannot be a new playbook's id ("" when it can)."""
    if not raw:
        return "required: lower-case letters, digits, \"-\" and \"_\""
    try:
        check_file_name(Path(f"{raw}.toml"))
    except PlaybookInvalid as exc:
        return exc.errors[0].problem.replace("the file name is the playbook id and", "the id")
    return ""


@router.page("POST", "/playbooks/{playbook_id}/copy")
async def copy_form(request: WebRequest, ctx: Context) -> WebReply:
    """Copy to edit: a new playbook (not file-managed) from the current version, then its editor."""
    loaded = await _load(ctx, request, request.params["playbook_id"])
    if loaded is None or loaded.version is None:
        return _not_found(ctx, request)
    if not may_create_playbook(request.viewer()):
        return _refused(ctx, request, ctx.render("web/playbooks/create_refused.txt.j2"))
    new_id = request.form.get("new_id", "").strip().lower() or f"{loaded.record.id}-copy"
    problem = _id_problem(new_id)
    if problem:
        raise UserError(ctx.render("web/playbooks/bad_id.txt.j2", id=new_id[:80], problem=problem))
    title = f"Copy of {loaded.version.data.get('title', loaded.record.id)}"[:TITLE_MAX]
    try:
        await ctx.db.run(functools.partial(store.duplicate, title=title, author_id=request.user.id),
                         loaded.record.id, new_id, ctx.clock.now_ms())
    except store.PlaybookExists:
        raise UserError(ctx.render("web/playbooks/id_taken.txt.j2", id=new_id)) from None
    await _refresh(ctx)
    return Redirect(f"/playbooks/{new_id}/edit")


# --- the editor ------------------------------------------------------------------------------------------

@dataclass
class Editing:
    """One editor page's state: the form, its problems, and what the page is for."""

    form: ed.EditorForm
    problems: list[ed.FieldProblem]
    mode: str = "form"  # form | toml
    toml: str = ""
    note: str = ""
    new_id: str = ""
    run: rows.RunBrief | None = None
    retro: str = ""
    proposals: list[ed.Proposal] | None = None
    chosen: set[str] | None = None  # encoded proposals ticked (None: each one's default)


def _problems_by_field(problems: list[ed.FieldProblem]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in problems:
        text = f"{p.key}: {p.message}" if p.key and not p.field else p.message
        out.setdefault(p.field, []).append(text)
    return out


def _editor(ctx: Context, request: WebRequest, record: PlaybookRecord | None, state: Editing,
            status: int = 200) -> Page:
    action = f"/playbooks/{record.id}/edit" if record is not None else "/playbooks/new"
    teams = sorted(t.name for t in ctx.teams.values())
    return _page(ctx, request, "web/playbooks/edit.html.j2", status,
                 title=f"Edit {record.id}" if record is not None else "New playbook", record=record, s=state,
                 f=state.form, errors=_problems_by_field(state.problems), action=action, teams=teams,
                 problem_count=len(state.problems))


async def _editable(ctx: Context, request: WebRequest) -> Loaded | WebReply:
    """The path's playbook when the person may edit it here; else the page that says why not."""
    loaded = await _load(ctx, request, request.params["playbook_id"])
    if loaded is None:
        return _not_found(ctx, request)
    if not loaded.may_edit:
        return _edit_refusal(ctx, request)
    return loaded


def _file_page(ctx: Context, request: WebRequest, loaded: Loaded) -> Page:
    """A file-managed playbook's editor: read-only, with its path and commit, copy to edit and export."""
    return _page(ctx, request, "web/playbooks/file_managed.html.j2", title=f"{loaded.record.id} is a file",
                 record=loaded.record, current=loaded.version, may_copy=may_create_playbook(request.viewer()),
                 toml_text=ed.dump_toml(loaded.version.data) if loaded.version is not None else "")


@router.page("GET", "/playbooks/{playbook_id}/edit")
async def edit_page(request: WebRequest, ctx: Context) -> WebReply:
    loaded = await _editable(ctx, request)
    if not isinstance(loaded, Loaded):
        return loaded
    if loaded.record.file_managed:
        return _file_page(ctx, request, loaded)
    data = loaded.version.data if loaded.version is not None else {}
    state = Editing(ed.form_from_data(data), [], mode="toml" if request.query.get("view") == "toml" else "form",
                    toml=ed.dump_toml(data))
    return _editor(ctx, request, loaded.record, state)


@router.page("GET", "/playbooks/new")
async def new_page(request: WebRequest, ctx: Context) -> WebReply:
    if not may_create_playbook(request.viewer()):
        return _refused(ctx, request, ctx.render("web/playbooks/create_refused.txt.j2"))
    form = ed.EditorForm(flags={"private_channel": True}, checklists=[ed.ChecklistForm(items=[ed.ItemForm()])])
    mode = "toml" if request.query.get("view") == "toml" else "form"
    return _editor(ctx, request, None, Editing(form, [], mode=mode, toml='title = ""\n'))


def _read_posted(request: WebRequest) -> tuple[Editing, dict[str, Any] | None]:
    """The editor's state as posted, and the data it gives (None when its TOML view does not parse)."""
    posted = request.form
    mode = "toml" if posted.get("mode") == "toml" else "form"
    note = posted.get("note", "").strip()[:NOTE_MAX]
    new_id = posted.get("id", "").strip().lower()
    if mode == "toml":
        text = posted.get("toml", "")
        data, problem = ed.parse_toml_text(text)
        state = Editing(ed.form_from_data(data or {}), [], mode="toml", toml=text, note=note, new_id=new_id)
        if data is None:
            state.problems.append(ed.FieldProblem("toml", "", problem))
        return state, data
    form = ed.form_from_post(posted)
    data, problems = ed.data_from_form(form)
    return Editing(form, problems, note=note, new_id=new_id, toml=ed.dump_toml(data)), data


def _chosen_proposals(posted: Mapping[str, str], name: str = "proposal") -> list[ed.Proposal]:
    """The proposals posted as `<name>.1`, `<name>.2`...: the ticked ones, or (`proposal-all`) every one
    the page showed."""
    chosen = []
    for n in range(1, PROPOSALS_MAX + 1):
        raw = posted.get(f"{name}.{n}")
        if raw is None:
            continue
        proposal = ed.decode_proposal(raw)
        if proposal is not None:
            chosen.append(proposal)
    return chosen


def _validate(state: Editing, data: dict[str, Any] | None, playbook_id: str, new: bool) -> None:
    """Add the file loader's problems with `data` (and a new id's) to the state's problems."""
    if new:
        problem = _id_problem(state.new_id)
        if problem:
            state.problems.append(ed.FieldProblem("id", "id", problem))
    if data is None:
        return
    try:
        parse_playbook(data, playbook_id=playbook_id or "new", path=f"{playbook_id or 'new'}.toml")
    except PlaybookInvalid as exc:
        placed = ed.place_problems(exc.errors, state.form)
        if state.mode == "toml":
            placed = [ed.FieldProblem("toml", p.key, p.message) for p in placed]
        state.problems.extend(placed)


async def _taken(ctx: Context, state: Editing, playbook_id: str, new: bool) -> None:
    """A new playbook's id must be free."""
    if new and playbook_id and not any(p.field == "id" for p in state.problems) and \
            await ctx.db.run(store.get_playbook, playbook_id, readonly=True) is not None:
        state.problems.append(ed.FieldProblem("id", "id", ctx.render("web/playbooks/id_taken.txt.j2", id=playbook_id)))


async def _save(request: WebRequest, ctx: Context, record: PlaybookRecord | None) -> WebReply:
    state, data = _read_posted(request)
    op = request.form.get("op", "save")
    new = record is None
    run_id = request.form.get("run", "")
    if run_id:
        run = await ctx.db.run(rows.get_run, request.viewer(), run_id, readonly=True)
        if run is None or record is None or run.playbook_id != record.id:
            raise UserError(ctx.render("web/playbooks/bad_run.txt.j2"))
        state.run = run
        state.chosen = {p.encode() for p in _chosen_proposals(request.form)}
        state.retro = await ctx.db.run(rows.retrospective_text, run.id, readonly=True)
        state.proposals = _chosen_proposals(request.form, "proposal-all")
    if op != "save" and state.mode == "form":
        if not ed.apply_op(state.form, op):
            raise UserError(ctx.render("web/runs/bad_form.txt.j2", field="op"))
        state.problems = []
        return _editor(ctx, request, record, state)
    if data is not None and state.run is not None:
        data = ed.apply_proposals(data, _chosen_proposals(request.form))
    playbook_id = state.new_id if new else record.id if record is not None else ""
    _validate(state, data, playbook_id, new)
    await _taken(ctx, state, playbook_id, new)
    if state.problems or data is None:
        return _editor(ctx, request, record, state, 400)
    source = "improve" if state.run is not None else "editor"
    note = ed.improve_note(state.run.id, state.note) if state.run is not None else state.note
    try:
        saved = await ctx.db.run(functools.partial(store.save_version, source=source, now=ctx.clock.now_ms(),
                                                   author_id=request.user.id, note=note), playbook_id, data)
    except store.FileManaged:
        return _refused(ctx, request, ctx.render("web/playbooks/file_managed.txt.j2"))
    except store.PlaybookExists:
        state.problems.append(ed.FieldProblem("id", "id", ctx.render("web/playbooks/id_taken.txt.j2", id=playbook_id)))
        return _editor(ctx, request, record, state, 400)
    if new and saved.version.number != 1:
        # Someone made this id at the same moment (a save of equal content writes nothing new).
        state.problems.append(ed.FieldProblem("id", "id", ctx.render("web/playbooks/id_taken.txt.j2", id=playbook_id)))
        return _editor(ctx, request, record, state, 400)
    await _refresh(ctx)
    log.info("playbook %s: version %d saved from the web view by %s (%s)", playbook_id, saved.version.number,
             request.user.id, source)
    return Redirect(f"/playbooks/{playbook_id}?saved={saved.version.number if saved.created else 0}")


@router.page("POST", "/playbooks/{playbook_id}/edit")
async def edit_form(request: WebRequest, ctx: Context) -> WebReply:
    loaded = await _editable(ctx, request)
    if not isinstance(loaded, Loaded):
        return loaded
    if loaded.record.file_managed:
        return _refused(ctx, request, ctx.render("web/playbooks/file_managed.txt.j2"))
    return await _save(request, ctx, loaded.record)


@router.page("POST", "/playbooks/new")
async def new_form(request: WebRequest, ctx: Context) -> WebReply:
    if not may_create_playbook(request.viewer()):
        return _refused(ctx, request, ctx.render("web/playbooks/create_refused.txt.j2"))
    return await _save(request, ctx, None)


@router.page("POST", "/playbooks/validate")
async def validate(request: WebRequest, ctx: Context) -> WebReply:
    """The editor's problems as it is now, without saving (bot/static/playbook-editor.js asks as the
    person types): JSON {"ok": bool, "problems": [{"field", "key", "message"}]}."""
    state, data = _read_posted(request)
    playbook_id = request.form.get("playbook", "")
    new = not playbook_id
    if new:
        playbook_id = state.new_id
    elif not _ID.fullmatch(playbook_id):
        raise UserError(ctx.render("web/runs/bad_form.txt.j2", field="playbook"))
    _validate(state, data, playbook_id, new)
    await _taken(ctx, state, playbook_id, new)
    body = {"ok": not state.problems,
            "problems": [{"field": p.field, "key": p.key, "message": p.message} for p in state.problems]}
    return Download(json.dumps(body).encode("utf-8"), "application/json")


# --- "Improve the playbook" -------------------------------------------------------------------------------

@router.page("GET", "/playbooks/{playbook_id}/improve")
async def improve_page(request: WebRequest, ctx: Context) -> WebReply:
    loaded = await _editable(ctx, request)
    if not isinstance(loaded, Loaded):
        return loaded
    run_id = request.query.get("run", "")
    run = await ctx.db.run(rows.get_run, request.viewer(), run_id, readonly=True) if _ID.fullmatch(run_id) else None
    if run is None or run.playbook_id != loaded.record.id:
        raise UserError(ctx.render("web/playbooks/bad_run.txt.j2"))
    if loaded.record.file_managed:
        return _file_page(ctx, request, loaded)
    data = loaded.version.data if loaded.version is not None else {}
    added, outcomes, retro = await ctx.db.run(rows.improve_facts, loaded.record.id, run.id, readonly=True)
    proposals = ed.propose(data, added, [ed.ItemOutcome(o.run_id, o.checklist, o.title, o.state, o.due_s, o.done_s)
                                         for o in outcomes], run.id)
    state = Editing(ed.form_from_data(data), [], toml=ed.dump_toml(data), run=run, retro=retro,
                    proposals=proposals, note=ctx.render("web/playbooks/improve_note.txt.j2", run=run.name))
    return _editor(ctx, request, loaded.record, state)

