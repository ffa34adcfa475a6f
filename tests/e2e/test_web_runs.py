"""The web view's runs list and run page, as stakeholders use them: each person sees exactly the runs the
permissions let them see (the same rule as chat and the API), filters and sorts live in the URL, the CSV
is the view on screen, a run page shows the run and answers an invisible run as a missing one, the page's
forms change the run through the same code as the buttons (the channel's checklist post shows it), a
forged or unauthorised form changes nothing, and a click in chat reaches an open page's event stream."""
from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from handlers import web_runs
from sandbox import ops
from storage import reminders as reminder_rows
from storage import runs as run_rows
from storage.ids import new_id
from storage.models import Run, StatusUpdate
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


# --- filters, order, pages, CSV ---------------------------------------------------------------------

MIN = 60_000


async def seed(world: World, name: str, *, playbook: str = "incident", owner: str = "alice",
               participants: tuple[str, ...] = (), status: str = "in_progress", started_ago: int = 0,
               finished_ago: int | None = None, summary: str = "", update_ago: int | None = None,
               due_in: int | None = None) -> str:
    """A stored run (public, in eng) with the given facts, written as the bot writes them."""
    assert world.bot.ctx is not None
    now = world.clock.now_ms()
    run = Run(id=new_id(), name=name, summary=summary, playbook_id=playbook,
              playbook_title={"incident": "Incident response", "onboarding": "Customer onboarding"}[playbook],
              team_id=world.team_id, private=False, owner_id=world[owner].id, creator_id=world[owner].id,
              status=status, created_at=now - started_ago,
              finished_at=now - finished_ago if finished_ago is not None else None)

    def write(session: Any) -> None:
        run_rows.insert_run(session, run, [], [world[p].id for p in (owner, *participants)], run.created_at)
        if due_in is not None:
            reminder_rows.arm(session, run.id, reminder_rows.STATUS, now + due_in, 1800)
        if update_ago is not None:
            session.add(StatusUpdate(id=new_id(), run_id=run.id, at=now - update_ago, author_id=world[owner].id,
                                     message="All good"))

    await world.bot.ctx.db.run(write)
    return run.id


def ordered(html: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r'<a href="/runs/([A-Za-z0-9]{26})">', html)))


async def test_filters_sorts_pages_and_the_csv_of_the_view(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    a = await seed(world, "Alpha outage", owner="alice", participants=("bob",), started_ago=180 * MIN,
                   update_ago=10 * MIN, due_in=20 * MIN)
    b = await seed(world, "beta rollout", playbook="onboarding", owner="bob", participants=("carol",),
                   started_ago=120 * MIN, summary="For customer Zeta", due_in=-5 * MIN)
    c = await seed(world, "Gamma cleanup", owner="carol", status="finished", started_ago=60 * MIN,
                   finished_ago=30 * MIN, update_ago=40 * MIN)
    alice = await world.browser("alice")

    async def shown(query: str, browser: aiohttp.ClientSession = alice) -> list[str]:
        status, html = await get(browser, world, f"/runs?{query}")
        assert status == 200, html
        return ordered(html)

    assert await shown("") == [b, a]  # in progress by default, newest first
    assert await shown("status=finished") == [c]
    assert await shown("status=all") == [c, b, a]
    assert await shown(f"status=all&team={world.team_id}") == [c, b, a]
    assert await shown("status=all&team=otherteam") == []
    assert await shown("playbook=onboarding") == [b]
    assert await shown(f"status=all&owner={world['carol'].id}") == [c]
    carol = await world.browser("carol")
    assert await shown("mine=1", carol) == [b]  # she takes part in b
    assert await shown("mine=1&status=all", carol) == [c, b]  # and owns c
    assert await shown("overdue=1") == [b]
    status, html = await get(alice, world, "/runs")
    row_b = html[html.index(f'href="/runs/{b}"'):html.index(f'href="/runs/{a}"')]
    assert 'class="overdue"' in row_b and "overdue" in row_b.lower()
    assert 'class="overdue"' not in html[html.index(f'href="/runs/{a}"'):]
    assert "@bob" in row_b and "@carol" in row_b and "2 hours" in row_b  # owner, participant, duration
    assert await shown("q=zeta") == [b]  # in the summary
    assert await shown("q=ALPHA") == [a]
    assert await shown("q=%25") == []  # a % is a character here, not a wildcard
    # Order by name (case does not matter), start, last update; either way round.
    assert await shown("status=all&sort=name") == [a, b, c]
    assert await shown("status=all&sort=name&dir=desc") == [c, b, a]
    assert await shown("status=all&sort=start&dir=asc") == [a, b, c]
    assert await shown("status=all&sort=update") == [a, c, b]  # b has no update yet
    assert await shown("status=all&sort=update&dir=asc") == [b, c, a]
    # Sort links keep the filters and turn the order round.
    status, html = await get(alice, world, "/runs?status=all&sort=name")
    assert 'href="?status=all&amp;sort=name&amp;dir=desc"' in html
    # A value no form sends is refused, naming it.
    status, html = await get(alice, world, "/runs?status=bogus")
    assert status == 400 and "status" in html and "bogus" in html
    status, html = await get(alice, world, "/runs?page=0")
    assert status == 400
    # Pages.
    monkeypatch.setattr(web_runs, "PER_PAGE", 2)
    status, html = await get(alice, world, "/runs?status=all")
    assert ordered(html) == [c, b] and "Page 1 of 2" in html and 'href="?status=all&amp;page=2"' in html
    assert await shown("status=all&page=2") == [a]
    # The CSV: the view on screen, every page of it.
    async with alice.get(f"{world.bot.url}/runs.csv?status=all&sort=name") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/csv")
        assert re.fullmatch(r'attachment; filename="runs-[0-9T]+\.csv"', r.headers["Content-Disposition"])
        rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert [row["id"] for row in rows] == [a, b, c]
    beta = rows[1]
    assert (beta["name"], beta["playbook"], beta["owner"], beta["participants"], beta["status"]) == (
        "beta rollout", "Customer onboarding", "bob", "carol", "in_progress")
    assert (beta["update_overdue"], beta["items_done"], beta["items_total"], beta["duration_s"]) == (
        "yes", "0", "0", "7200")
    assert rows[2]["duration_s"] == "1800" and rows[2]["finished_at"].endswith("Z")
    async with alice.get(f"{world.bot.url}/runs.csv?playbook=onboarding") as r:
        assert [row["id"] for row in csv.DictReader(io.StringIO(await r.text()))] == [b]
    # A name a spreadsheet would run as a formula is written as text.
    await seed(world, "=HYPERLINK(\"http://evil\")", started_ago=MIN)
    async with alice.get(f"{world.bot.url}/runs.csv?q=HYPERLINK") as r:
        assert next(csv.DictReader(io.StringIO(await r.text())))["name"].startswith("'=")


async def test_follow_from_the_list_is_the_follow_command(world: World) -> None:
    acme = await start(world, "onboarding", "Acme")
    dave = await world.browser("dave")
    token = await csrf_of(dave, world)
    status, location, _ = await post(dave, world, f"/runs/{acme['id']}/follow",
                                     {"csrf": token, "follow": "1", "next": "/runs?status=all"})
    assert (status, location) == (303, "/runs?status=all")
    assert world.bot.ctx is not None
    view = await world.bot.ctx.db.run(run_rows.load_view, acme["id"])
    assert view is not None and world["dave"].id in view.follower_ids
    status, html = await get(dave, world, "/runs")
    assert 'aria-label="Unfollow Acme"' in html
    status, location, _ = await post(dave, world, f"/runs/{acme['id']}/follow", {"csrf": token, "follow": "0"})
    assert (status, location) == (303, f"/runs/{acme['id']}")
    view = await world.bot.ctx.db.run(run_rows.load_view, acme["id"])
    assert view is not None and world["dave"].id not in view.follower_ids


# --- a run's page -------------------------------------------------------------------------------------

async def test_the_run_page_shows_the_run(world: World) -> None:
    run = await start(world, "incident", "Checkout down")
    status, body = await world["alice"].command(run["channel_id"], "/playbook summary Payments fail at checkout")
    assert status == 200, body
    await world.settle()
    world.clock.advance(16 * 60)  # 1.1 was due in 15 minutes
    alice = await world.browser("alice")
    status, html = await get(alice, world, f"/runs/{run['id']}")
    assert status == 200, html
    assert "<h1>Checkout down</h1>" in html and "Payments fail at checkout" in html
    assert "@alice" in html and "@bob" in html and "@carol" in html
    for title in ("Acknowledge the page", "Open a bridge call", "Tell @channel about it", "Find the cause",
                  "Deploy the fix"):
        assert title in html
    assert "SEV1: customers cannot check out." in html  # an item's description
    assert "(overdue)" in html and 'class="overdue"' in html  # 1.1's due time passed
    assert "/echo deploying $service" in html
    status, channel, _ = await world.admin.get(f"/channels/{run['channel_id']}")
    assert f'href="{world.sb.url}/eng/channels/{channel["name"]}"' in html
    assert "run started" in html and "summary changed" in html  # the timeline
    assert "Not published yet." in html  # the retrospective
    assert 'src="/static/live.js"' in html and "<script>" not in html
    # The timeline, filtered by type (the query string says which).
    status, html = await get(alice, world, f"/runs/{run['id']}?type=summary_changed")
    timeline = html[html.index('id="h-timeline"'):]
    assert "summary changed" in timeline and 'class="event-run_started"' not in timeline
    assert 'value="summary_changed" checked' in timeline
    # Just the main content, for the live page.
    status, part = await get(alice, world, f"/runs/{run['id']}?part=body")
    assert status == 200 and "<html" not in part and "Acknowledge the page" in part
    # The list shows its progress and the page's link.
    status, html = await get(alice, world, "/runs")
    assert f'href="/runs/{run["id"]}"' in html and "0 / 5" in html


async def test_a_run_one_may_not_see_is_not_found_like_a_missing_one(world: World) -> None:
    quiet = await start(world, "secret", "Leaked key")
    carol = await world.browser("carol")
    status, hidden = await get(carol, world, f"/runs/{quiet['id']}")
    assert status == 404 and "Leaked key" not in hidden and "Rotate the keys" not in hidden
    status, missing = await get(carol, world, "/runs/" + "x" * 26)
    assert status == 404 and hidden == missing
    status, _ = await get(carol, world, f"/runs/{quiet['id']}/events")
    assert status == 404
    token = await csrf_of(carol, world)
    item = (await world.run_json(quiet["id"]))[1]["checklists"][0]["items"][0]
    status, _, _ = await post(carol, world, f"/runs/{quiet['id']}/items/{item['id']}", {"csrf": token, "verb": "check"})
    assert status == 404
    status, _, _ = await post(carol, world, f"/runs/{quiet['id']}/follow", {"csrf": token, "follow": "1"})
    assert status == 404
    assert await item_state(world, quiet["id"], "Rotate the keys") == "open"


async def test_the_page_forms_change_the_run_as_the_buttons_do(world: World) -> None:
    run = await start(world, "incident", "Checkout down")
    run_id = run["id"]
    alice = await world.browser("alice")
    token = await csrf_of(alice, world, f"/runs/{run_id}")
    items = {i["title"]: i["id"] for c in (await world.run_json(run_id))[1]["checklists"] for i in c["items"]}
    post_id = await checklist_post_id(world, run_id)

    async def verb(title: str, name: str) -> None:
        status, location, body = await post(alice, world, f"/runs/{run_id}/items/{items[title]}",
                                            {"csrf": token, "verb": name})
        assert (status, location) == (303, f"/runs/{run_id}#item-{items[title]}"), body
        await world.settle()

    def shows(index: int, icon: str) -> Callable[[dict[str, Any]], bool]:
        return lambda p: item_line(p, index).startswith(icon)

    await verb("Open a bridge call", "check")
    assert await item_state(world, run_id, "Open a bridge call") == "closed"
    await world.wait_post(post_id, shows(1, ":white_check_mark:"))
    await verb("Tell @channel about it", "skip")
    assert await item_state(world, run_id, "Tell @channel about it") == "skipped"
    await world.wait_post(post_id, shows(2, ":fast_forward:"))
    await verb("Open a bridge call", "uncheck")
    await world.wait_post(post_id, shows(1, ":white_large_square:"))
    await verb("Tell @channel about it", "restore")
    await world.wait_post(post_id, shows(2, ":white_large_square:"))
    status, body = await world.run_json(run_id)
    assert [e["type"] for e in body["timeline"]].count("item_state_changed") == 4
    # A verb the page never sends changes nothing.
    status, _, html = await post(alice, world, f"/runs/{run_id}/items/{items['Find the cause']}",
                                 {"csrf": token, "verb": "delete"})
    assert status == 400 and "verb" in html
    assert await item_state(world, run_id, "Find the cause") == "open"

    # A status update from the page: stored, posted in the channel, the reminder re-armed.
    status, _, html = await post(alice, world, f"/runs/{run_id}/update", {"csrf": token, "message": " ",
                                                                          "reminder": "1h"})
    assert status == 400 and "cannot be empty" in html
    status, _, html = await post(alice, world, f"/runs/{run_id}/update", {"csrf": token, "message": "Impact: none",
                                                                          "reminder": "soon"})
    assert status == 400
    status, location, _ = await post(alice, world, f"/runs/{run_id}/update",
                                     {"csrf": token, "message": "Impact: none yet", "reminder": "1h"})
    assert (status, location) == (303, f"/runs/{run_id}#updates")
    await world.settle()
    status, body = await world.run_json(run_id)
    assert [u["message"] for u in body["status_updates"]] == ["Impact: none yet"]
    assert body["reminder"]["interval_s"] == 3600
    assert any("Impact: none yet" in p["message"] for p in await world.posts(run["channel_id"]))
    status, html = await get(alice, world, f"/runs/{run_id}")
    assert "Impact: none yet" in html

    # Finishing with items open asks first, and changes nothing until confirmed.
    status, _, html = await post(alice, world, f"/runs/{run_id}/finish", {"csrf": token})
    assert status == 200 and "Finish the run?" in html and "5 open checklist items" in html
    assert (await world.run_json(run_id))[1]["status"] == "in_progress"
    status, location, _ = await post(alice, world, f"/runs/{run_id}/finish", {"csrf": token, "confirm": "1"})
    assert (status, location) == (303, f"/runs/{run_id}")
    await world.settle()
    assert (await world.run_json(run_id))[1]["status"] == "finished"
    assert any("finished" in p["message"].lower() for p in await world.posts(run["channel_id"]))
    # The checklist post lost its buttons, as after the Finish button.
    post_after = await world.post(post_id)
    assert not any(a.get("actions") for a in post_after["props"]["attachments"])
    status, html = await get(alice, world, f"/runs/{run_id}")
    assert f'action="/runs/{run_id}/items/' not in html and "Finish the run</button>" not in html
    # A finished run's item cannot be changed from a stale page.
    status, _, html = await post(alice, world, f"/runs/{run_id}/items/{items['Find the cause']}",
                                 {"csrf": token, "verb": "check"})
    assert status == 403 and "not in progress" in html
    assert await item_state(world, run_id, "Find the cause") == "open"


async def test_forged_forms_change_nothing(world: World) -> None:
    run = await start(world, "incident", "Checkout down")
    alice = await world.browser("alice")
    token = await csrf_of(alice, world, f"/runs/{run['id']}")
    item = (await world.run_json(run["id"]))[1]["checklists"][0]["items"][0]
    path = f"/runs/{run['id']}/items/{item['id']}"
    status, _, html = await post(alice, world, path, {"verb": "check"})  # no token
    assert status == 403 and "Nothing was changed" in html
    status, _, html = await post(alice, world, path, {"csrf": "guess", "verb": "check"})
    assert status == 403
    status, _, html = await post(alice, world, path, {"csrf": token, "verb": "check"},
                                 origin="http://evil.example")  # the right token, from another site
    assert status == 403
    status, _, html = await post(alice, world, f"/runs/{run['id']}/finish", {"csrf": token, "confirm": "1"},
                                 origin="http://evil.example")
    assert status == 403
    await world.settle()
    assert await item_state(world, run["id"], "Acknowledge the page") == "open"
    assert (await world.run_json(run["id"]))[1]["status"] == "in_progress"


async def test_who_may_not_work_the_run_sees_no_forms_and_is_refused(world: World) -> None:
    acme = await start(world, "onboarding", "Acme")  # public: dave may see it, not work it
    dave = await world.browser("dave")
    status, html = await get(dave, world, f"/runs/{acme['id']}")
    assert status == 200 and "Send the welcome pack" in html
    assert "/items/" not in html and "/update" not in html and "/finish" not in html
    token = await csrf_of(dave, world, f"/runs/{acme['id']}")
    item = (await world.run_json(acme["id"]))[1]["checklists"][0]["items"][0]
    status, _, html = await post(dave, world, f"/runs/{acme['id']}/items/{item['id']}",
                                 {"csrf": token, "verb": "check"})
    assert status == 403 and "Only participants" in html and "Nothing was changed" in html
    status, _, html = await post(dave, world, f"/runs/{acme['id']}/update", {"csrf": token, "message": "Hi"})
    assert status == 403
    status, _, html = await post(dave, world, f"/runs/{acme['id']}/finish", {"csrf": token, "confirm": "1"})
    assert status == 403
    await world.settle()
    status, body = await world.run_json(acme["id"])
    assert body["status"] == "in_progress" and body["status_updates"] == []
    assert body["checklists"][0]["items"][0]["state"] == "open"
    # Carol takes part in the incident: she works it, but finishing is the owner's.
    outage = await start(world, "incident", "Checkout down")
    carol = await world.browser("carol")
    status, html = await get(carol, world, f"/runs/{outage['id']}")
    assert f'action="/runs/{outage["id"]}/items/' in html and f'action="/runs/{outage["id"]}/finish"' not in html
    token = await csrf_of(carol, world, f"/runs/{outage['id']}")
    status, _, html = await post(carol, world, f"/runs/{outage['id']}/finish", {"csrf": token, "confirm": "1"})
    assert status == 403 and "owner" in html
    await world.settle()
    assert (await world.run_json(outage["id"]))[1]["status"] == "in_progress"


# --- live ---------------------------------------------------------------------------------------------

async def next_event(response: aiohttp.ClientResponse, kind: str) -> dict[str, str]:
    """The next Server-Sent Event of `kind` on the stream (others are skipped)."""
    fields: dict[str, str] = {}
    while True:
        raw = await response.content.readline()
        assert raw, "the stream ended"
        line = raw.decode().rstrip("\r\n")
        if not line:
            if fields.get("event", "message") == kind:
                return fields
            fields = {}
            continue
        name, _, value = line.partition(": ")
        fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value


async def test_a_click_in_chat_reaches_an_open_run_page(world: World) -> None:
    run = await start(world, "incident", "Checkout down")
    alice = await world.browser("alice")
    status, html = await get(alice, world, f"/runs/{run['id']}")
    version = re.search(r'data-version="([0-9a-f]+)"', html)
    assert version, html
    post_id = await checklist_post_id(world, run["id"])
    async with alice.get(f"{world.bot.url}/runs/{run['id']}/events?since={version.group(1)}") as stream:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        status, body = await world["bob"].click(post_id, "check0")  # bob, in chat
        assert status == 200, body
        event = await asyncio.wait_for(next_event(stream, "change"), 5)
        assert event["id"] and event["id"] != version.group(1)
    # The page's body now shows it.
    status, part = await get(alice, world, f"/runs/{run['id']}?part=body")
    assert 'id="item-' in part and "Done" in part
    # A browser coming back with the old version as Last-Event-ID hears of the change at once.
    async with alice.get(f"{world.bot.url}/runs/{run['id']}/events",
                         headers={"Last-Event-ID": version.group(1)}) as stream:
        again = await asyncio.wait_for(next_event(stream, "change"), 5)
        assert again["id"] == event["id"]
    await world.settle()
