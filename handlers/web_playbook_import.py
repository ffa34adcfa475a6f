"""Importing a playbook from the Playbooks plugin in the web view (`/playbooks/import`): a form with one
JSON file (the plugin's export) and an optional id, the same importer as `POST /api/v0/playbooks/import`
and `python -m bot import-playbook` (bot.playbooks.importer), and its report: what each plugin field
became, what was left out and why, and any problem. A file with a problem saves nothing.

Only those who may create playbooks (bot/domain/permissions.py may_create_playbook) see the form.
"""
from __future__ import annotations

import logging
from typing import Any

from bot.context import Context
from bot.domain.permissions import may_create_playbook
from bot.playbooks import PlaybookInvalid
from bot.playbooks.importer import Prepared, check_file_name_ok, prepare_import, save_import
from bot.playbooks.plugin_import import Report
from bot.router import Page, Router, WebReply, WebRequest
from storage import playbooks as store

log = logging.getLogger(__name__)

router = Router("web-playbook-import")

ID_MAX = 128


def _page(ctx: Context, request: WebRequest, status: int = 200, **values: Any) -> Page:
    values.setdefault("wanted", "")
    values.setdefault("prepared", None)
    values.setdefault("problems", [])
    values.setdefault("saved", None)
    values.setdefault("filename", "")
    return Page(ctx.render_html("web/playbooks/import.html.j2", user=request.user, csrf=request.csrf,
                                nav="playbooks", title="Import a playbook", **values), status)


def _refused(ctx: Context, request: WebRequest) -> Page:
    log.warning("web: refused a playbook import path=%s user=%s", request.path, request.user.id)
    return Page(ctx.render_html("web/errors/refused.html.j2", status=403, user=request.user, csrf=request.csrf,
                                nav="playbooks", text=ctx.render("web/playbooks/create_refused.txt.j2")), 403)


@router.page("GET", "/playbooks/import")
async def import_page(request: WebRequest, ctx: Context) -> WebReply:
    if not may_create_playbook(request.viewer()):
        return _refused(ctx, request)
    return _page(ctx, request)


@router.page("POST", "/playbooks/import", upload=True)
async def import_form(request: WebRequest, ctx: Context) -> WebReply:
    viewer = request.viewer()
    if not may_create_playbook(viewer):
        return _refused(ctx, request)
    wanted = request.form.get("id", "").strip()[:ID_MAX + 1]
    upload = request.files.get("file")
    problems: list[str] = []
    if wanted:
        try:
            check_file_name_ok(wanted)
        except PlaybookInvalid as exc:
            problems.append(ctx.render("web/playbooks/bad_id.txt.j2", id=wanted[:80],
                                       problem=exc.errors[0].problem))
    if upload is None or not upload.body:
        problems.append(ctx.render("web/playbooks/import_no_file.txt.j2"))
    if problems or upload is None:
        return _page(ctx, request, 400, wanted=wanted, problems=problems)
    prepared = await prepare_import(upload.body, ctx.gateway)
    if prepared.problems:
        return _page(ctx, request, 400, wanted=wanted, prepared=prepared, problems=prepared.problems,
                     filename=upload.filename)
    try:
        version = await save_import(ctx.db, prepared, ctx.clock.now_ms(), author_id=viewer.user_id,
                                    playbook_id=wanted)
    except store.PlaybookExists:
        return _page(ctx, request, 409, wanted=wanted, prepared=_unsaved(prepared), filename=upload.filename,
                     problems=[ctx.render("web/playbooks/id_taken.txt.j2", id=wanted)])
    if ctx.library is not None:
        await ctx.library.check_now()  # this process sees it at once; the others within seconds
    log.info("web: imported a playbook id=%s user=%s", version.playbook_id, viewer.user_id)
    return _page(ctx, request, 201, prepared=prepared, saved=version, filename=upload.filename)


def _unsaved(prepared: Prepared) -> Prepared:
    return Prepared(prepared.data, Report(list(prepared.report.mapped), list(prepared.report.unmapped)),
                    prepared.problems, prepared.playbook)
