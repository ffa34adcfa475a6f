"""Importing the Playbooks plugin's JSON export from the web view: the form on /playbooks for those who may
make playbooks, the upload (a multipart form, CSRF checked), the same importer and report as the API, a
link to the new playbook; a bad file shows its problems and saves nothing; nobody else may import; only
this page takes a file, and only up to its limit."""
from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest

from bot import web as bot_web
from storage import playbooks as store
from tests.e2e.conftest import INCIDENT, World
from tests.e2e.test_playbook_import_export import _export_with_real_ids
from tests.e2e.test_web_playbooks import make_admin
from tests.e2e.test_web_runs import csrf_of, get


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT}}


async def upload(browser: aiohttp.ClientSession, world: World, body: bytes, *, csrf: str, wanted: str = "",
                 filename: str = "export.json", origin: str | None = "") -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("id", wanted)
    form.add_field("file", body, filename=filename, content_type="application/json")
    headers = {"Origin": world.bot.url if origin == "" else origin} if origin is not None else {}
    async with browser.post(f"{world.bot.url}/playbooks/import", data=form, headers=headers,
                            allow_redirects=False) as r:
        return r.status, await r.text()


async def _ids(world: World) -> set[str]:
    assert world.bot.ctx is not None
    return {e.record.id for e in await world.bot.ctx.db.run(store.list_playbooks, readonly=True)}


async def test_import_from_the_web_view_shows_the_report_and_links_the_playbook(world: World) -> None:
    alice = await make_admin(world, "alice")
    status, html = await get(alice, world, "/playbooks")
    assert status == 200 and 'href="/playbooks/import"' in html
    status, html = await get(alice, world, "/playbooks/import")
    assert status == 200 and 'enctype="multipart/form-data"' in html and 'type="file"' in html
    csrf = await csrf_of(alice, world, "/playbooks/import")
    export = await _export_with_real_ids(world)
    status, html = await upload(alice, world, json.dumps(export).encode(), csrf=csrf, filename="sev1.json")
    assert status == 201, html
    pid = "incident-resolution-sev-1-2"
    assert f'href="/playbooks/{pid}"' in html and "sev1.json" in html
    assert "Mapped fields" in html and "Fields not imported" in html
    assert "<code>signal_any_keywords</code>" in html and "<code>run_number_prefix</code>" in html
    assert "keywords.words" in html  # the plugin's keywords are mapped, switched off
    assert pid in await _ids(world)
    assert world.bot.ctx is not None and pid in world.bot.ctx.playbooks  # runs at once
    status, page = await get(alice, world, f"/playbooks/{pid}")
    assert status == 200 and "Incident Resolution" in page

    # The same file with an id asked for, then that id again: taken, nothing saved.
    status, html = await upload(alice, world, json.dumps(export).encode(), csrf=csrf, wanted="sev-one")
    assert status == 201 and 'href="/playbooks/sev-one"' in html
    status, html = await upload(alice, world, json.dumps(export).encode(), csrf=csrf, wanted="sev-one")
    assert status == 409 and "sev-one" in html and "exists already" in html
    status, html = await upload(alice, world, json.dumps(export).encode(), csrf=csrf, wanted="bad id!")
    assert status == 400 and "cannot be a playbook id" in html
    assert await _ids(world) == {"incident", pid, "sev-one"}


async def test_a_bad_file_shows_its_problems_and_saves_nothing(world: World) -> None:
    alice = await make_admin(world, "alice")
    csrf = await csrf_of(alice, world, "/playbooks/import")
    before = await _ids(world)
    status, html = await upload(alice, world, b"{not json", csrf=csrf)
    assert status == 400 and 'id="import-problems"' in html and "nothing was saved" in html
    export = await _export_with_real_ids(world)
    export["checklists"][0]["items"][0]["title"] = ""
    export["title"] = ""
    status, html = await upload(alice, world, json.dumps(export).encode(), csrf=csrf)
    assert status == 400 and 'id="import-problems"' in html, html
    assert re.search(r"<li>[^<]*title", html), html
    status, html = await upload(alice, world, b"", csrf=csrf)
    assert status == 400 and "Choose the JSON file" in html
    assert await _ids(world) == before


async def test_only_those_who_may_create_playbooks_import_and_forms_stay_strict(world: World) -> None:
    bob = await world.browser("bob")
    status, html = await get(bob, world, "/playbooks")
    assert 'href="/playbooks/import"' not in html
    status, _ = await get(bob, world, "/playbooks/import")
    assert status == 403
    csrf = await csrf_of(bob, world, "/runs")
    export = await _export_with_real_ids(world)
    status, _ = await upload(bob, world, json.dumps(export).encode(), csrf=csrf)
    assert status == 403
    alice = await make_admin(world, "alice")
    # No CSRF token, or another site: refused before the importer runs.
    status, _ = await upload(alice, world, json.dumps(export).encode(), csrf="forged")
    assert status == 403
    csrf = await csrf_of(alice, world, "/playbooks/import")
    status, _ = await upload(alice, world, json.dumps(export).encode(), csrf=csrf, origin="https://evil.example")
    assert status == 403
    # Too large a file: refused as a bad form.
    status, _ = await upload(alice, world, b" " * (bot_web.MAX_UPLOAD + 1) + b"{}", csrf=csrf)
    assert status == 400
    assert await _ids(world) == {"incident"}
    # Every other form still takes no file.
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", b"{}", filename="x.json", content_type="application/json")
    async with alice.post(f"{world.bot.url}/playbooks/new", data=form, headers={"Origin": world.bot.url},
                          allow_redirects=False) as r:
        assert r.status == 400
