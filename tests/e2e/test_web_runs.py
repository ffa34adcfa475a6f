"""The web view's runs list and run page, as stakeholders use them: each person sees exactly the runs the
permissions let them see (the same rule as chat and the API), filters and sorts live in the URL, the CSV
is the view on screen, a run page shows the run and answers an invisible run as a missing one, the page's
forms change the run through the same code as the buttons (the channel's checklist post shows it), a
forged or unauthorised form changes nothing, and a click in chat reaches an open page's event stream."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from handlers import web_runs
from sandbox import ops
from storage import reminders as reminder_rows
from storage import runs as run_rows
from storage.models import Participant, Reminder, Run, StatusUpdate
from tests.e2e.conftest import INCIDENT, ONBOARDING, World

# A private run carol is not in: alice owns it, only bob takes part.
SECRET = """
title = "Quiet incident"
team = "eng"
private_channel = true
channel_name = "quiet {name}"
category = ""
owner = "alice"
members = ["bob"]

[[checklists]]
title = "Contain"
  [[checklists.items]]
  title = "Rotate the keys"
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"incident": INCIDENT, "onboarding": ONBOARDING, "secret": SECRET}}


@pytest.fixture(autouse=True)
def fast_live(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run page's stream polls every 20 ms here (0.5 s in production)."""
    monkeypatch.setattr(web_runs, "LIVE", web_runs.Live(poll_s=0.02, ping_s=60.0))


async def start(world: World, playbook: str, name: str, who: str = "alice") -> dict[str, Any]:
    status, body = await world[who].command(world.town_square, f"/playbook run {playbook} {name}")
    assert status == 200, body
    await world.settle()
    status, found = await world.runs_json(who)
    assert status == 200, found
    return next(r for r in found["items"] if r["name"] == name)


async def get(browser: aiohttp.ClientSession, world: World, path: str) -> tuple[int, str]:
    async with browser.get(f"{world.bot.url}{path}", allow_redirects=False) as r:
        return r.status, await r.text()


async def csrf_of(browser: aiohttp.ClientSession, world: World, path: str = "/runs") -> str:
    status, html = await get(browser, world, path)
    assert status == 200, html
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def post(browser: aiohttp.ClientSession, world: World, path: str, data: dict[str, str],
               origin: str | None = "") -> tuple[int, str, str]:
    headers = {"Origin": world.bot.url if origin == "" else origin} if origin is not None else {}
    async with browser.post(f"{world.bot.url}{path}", data=data, headers=headers, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


def run_links(html: str) -> set[str]:
    return set(re.findall(r'<a href="/runs/([A-Za-z0-9]{26})">', html))


async def item_state(world: World, run_id: str, title: str) -> str:
    status, run = await world.run_json(run_id)
    assert status == 200, run
    return next(i["state"] for c in run["checklists"] for i in c["items"] if i["title"] == title)


async def checklist_post_id(world: World, run_id: str, index: int = 0) -> str:
    assert world.bot.ctx is not None
    view = await world.bot.ctx.db.run(run_rows.load_view, run_id)
    assert view is not None
    return view.checklists[index][0].post_id


def item_line(post: dict[str, Any], index: int) -> str:
    return str(post["props"]["attachments"][index]["text"])


# --- who sees which runs ------------------------------------------------------------------------------

async def test_each_person_sees_exactly_the_runs_they_may_see(world: World) -> None:
    outage = await start(world, "incident", "Checkout down")  # private: alice, bob, carol
    quiet = await start(world, "secret", "Leaked key")  # private: alice, bob
    acme = await start(world, "onboarding", "Acme")  # public channel in eng
    everything = {outage["id"], quiet["id"], acme["id"]}

    alice = await world.browser("alice")
    status, html = await get(alice, world, "/runs")
    assert status == 200 and run_links(html) == everything
    carol = await world.browser("carol")
    status, html = await get(carol, world, "/runs?status=all")
    assert run_links(html) == {outage["id"], acme["id"]}  # never the private run she is not in
    assert "Leaked key" not in html
    # The CSV of the same view holds the same runs, and nothing else.
    async with carol.get(f"{world.bot.url}/runs.csv?status=all") as r:
        assert {row["id"] for row in csv.DictReader(io.StringIO(await r.text()))} == {outage["id"], acme["id"]}
    dave = await world.browser("dave")
    status, html = await get(dave, world, "/runs")
    assert run_links(html) == {acme["id"]}  # in the team, in no run: the public one
    # A guest sees only the runs they take part in: bob, made a guest, sees his two and not the public one.
    ops.demote_to_guest(world.sb.state, world.sb.hub, world.sb.state.users[world["bob"].id])
    guest = await world.browser("bob")
    status, html = await get(guest, world, "/runs")
    assert status == 200 and run_links(html) == {outage["id"], quiet["id"]}
    status, html = await get(guest, world, f"/runs/{acme['id']}")
    assert status == 404


async def test_an_admin_sees_every_run(world: World) -> None:
    quiet = await start(world, "secret", "Leaked key")
    status, body, _ = await world.admin.put(f"/users/{world['dave'].id}/roles",
                                            {"roles": "system_user system_admin"})
    assert status == 200, body
    dave = await world.browser("dave")
    status, html = await get(dave, world, "/runs")
    assert run_links(html) == {quiet["id"]}
    status, html = await get(dave, world, f"/runs/{quiet['id']}")
    assert status == 200 and "Rotate the keys" in html
