"""The insights page over a seeded history (500+ runs written as rows) and real runs: its numbers against an
independent computation, its charts and their tables, what the viewer may not see left out, bar links
carrying the filters, and retrospective metrics asked in the retro dialog and shown there."""
from __future__ import annotations

import html
import math
import random
import re
import statistics
from typing import Any

import pytest
from sqlmodel import Session

from bot.rendering import duration_ms
from storage.ids import new_id
from storage.models import Checklist, ChecklistItem, Participant, Run, TimelineEvent
from tests.e2e.conftest import INCIDENT, ONBOARDING, World
from tests.e2e.test_finish_retro import finish_with_confirmation
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_status_updates import open_dialog_for

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR

METRICS = """
[[metrics]]
title = "Time to detect"
type = "duration"
description = "From the first alert to the page."
target = "2h"

[[metrics]]
title = "Cost"
type = "currency"
target = 1000

[[metrics]]
title = "Customers affected"
type = "integer"
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"incident": INCIDENT + METRICS, "onboarding": ONBOARDING}}


def seed(session: Session, now: int, team_id: str, owners: list[str], outsider: str, other_team: str,
         n: int = 540) -> list[dict[str, Any]]:
    """Write `n` runs with their timelines; returns what was written, to compute the expectations apart."""
    rnd = random.Random(13)
    written = []
    for i in range(n):
        created = now - rnd.randrange(0, 100 * DAY)
        playbook = ("incident", "Incident response") if i % 3 else ("deploy", "Deploy")
        hidden = i % 10 == 0  # a private run of someone else's: alice may not see it
        owner = outsider if hidden else owners[i % len(owners)]
        private = hidden or i % 4 == 0
        team = other_team if i % 17 == 0 and not private else team_id
        finished = created + rnd.randrange(10 * MIN, 5 * DAY) if i % 5 else None
        if finished is not None and finished >= now:
            finished = None
        run = Run(id=new_id(), name=f"Seeded {i}", playbook_id=playbook[0], playbook_title=playbook[1],
                  team_id=team, private=private, owner_id=owner, creator_id=owner,
                  status="finished" if finished else "in_progress", created_at=created, finished_at=finished,
                  status_updates_enabled=True, reminder_interval_s=3600, retrospective_enabled=True)
        session.add(run)
        session.flush()
        session.add(Participant(run_id=run.id, user_id=owner, joined_at=created))
        events = [("run_started", created, owner)]
        first_update = created + rnd.randrange(MIN, 3 * HOUR) if i % 7 else None
        if first_update is not None and (finished is None or first_update < finished) and first_update < now:
            events.append(("status_updated", first_update, owner))
        else:
            first_update = None
        if finished:
            events.append(("run_finished", finished, owner))
        for kind, at, actor in events:
            session.add(TimelineEvent(id=new_id(), run_id=run.id, type=kind, at=at, actor_id=actor))
        checklist = Checklist(id=new_id(), run_id=run.id, position=0, title="Steps")
        session.add(checklist)
        session.flush()
        skipped = i % 6 == 0
        session.add(ChecklistItem(id=new_id(), run_id=run.id, checklist_id=checklist.id, position=0,
                                  title="Page the vendor", state="skipped" if skipped else "open"))
        written.append({"id": run.id, "created": created, "finished": finished, "first_update": first_update,
                        "private": private, "playbook": playbook[0], "team": team, "owner": owner,
                        "skipped": skipped})
    return written


def cell(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}".*?class="value">(.*?)</div>', page, re.S)
    assert match, element_id
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


async def test_insights_numbers_charts_links_and_visibility(world: World) -> None:
    assert world.bot.ctx is not None
    ctx = world.bot.ctx
    now = world.clock.now_ms()
    alice = world["alice"].id
    owners = [alice, world["bob"].id, world["carol"].id]
    written = await ctx.db.run(seed, now, world.team_id, owners, world["dave"].id, new_id())
    # A real run too, through chat.
    await start_incident(world)
    browser = await world.browser("alice")
    now = world.clock.now_ms()  # the page's "now" (starting the run moved the clock)
    async with browser.get(f"{world.bot.url}/insights?period=all") as r:
        assert r.status == 200
        page = await r.text()
    assert world.clock.now_ms() == now

    # Alice sees the public runs of her team and her own runs; not others' private ones (dave's among
    # them) nor another team's public ones (she is not in it).
    seen = [w for w in written if w["owner"] == alice or (not w["private"] and w["team"] == world.team_id)]
    assert len(seen) < len(written)
    in_progress = sum(1 for w in seen if w["finished"] is None) + 1  # + the real run
    assert cell(page, "card-in-progress") == str(in_progress)
    cur = sum(1 for w in seen if w["finished"] and now - 30 * DAY <= w["finished"] < now)
    prev = sum(1 for w in seen if w["finished"] and now - 60 * DAY <= w["finished"] < now - 30 * DAY)
    assert cell(page, "card-finished") == str(cur)
    change = (cur - prev) / prev * 100
    shown = f"{round(change):+d}%" if round(change, 1) == round(change) else f"{round(change, 1):+.1f}%"
    assert shown in page

    # Time to finish: median of the seen runs, as the page words it.
    durations = sorted(w["finished"] - w["created"] for w in seen if w["finished"])
    median_ms = statistics.median(durations)
    p90_ms = durations[math.ceil(0.9 * len(durations)) - 1]
    row = re.search(r"Time to finish.*?</tr>", page, re.S)
    assert row
    cells = re.findall(r"<td>(.*?)</td>", row.group(0))
    assert cells[3] == str(len(durations))
    assert cells[0] == duration_ms(median_ms) and cells[1] == duration_ms(p90_ms)
    without = sum(1 for w in seen if w["first_update"] is None) + 1  # the real run has no update yet
    row = re.search(r"Time to first update.*?</tr>", page, re.S)
    assert row and re.findall(r"<td>(.*?)</td>", row.group(0))[4] == str(without)

    # The weekly chart: an accessible SVG with 12 bars, and its data table.
    chart = re.search(r'<figure class="chart" id="chart-weeks">.*?</figure>', page, re.S)
    assert chart
    svg = chart.group(0)
    assert 'role="group"' in svg or 'role="img"' in svg
    assert '<title id="chart-weeks-title">Runs started per week</title>' in svg
    assert svg.count('<rect class="bar"') == 12
    assert "style=" not in page
    table = re.search(r'<details class="data" id="chart-weeks-data">.*?</details>', page, re.S)
    assert table
    counts = [int(n) for n in re.findall(r"<tr><td>\d{4}-\d\d-\d\d</td><td>(\d+)</td></tr>", table.group(0))]
    assert len(counts) == 12
    assert counts[-1] + counts[-2] >= 1

    # Skipped items counted over visible runs only.
    skipped = sum(1 for w in seen if w["skipped"])
    assert re.search(rf"<td>Page the vendor</td><td>{skipped}</td>", page)

    # The default period, 90 days: runs started or finished in it, and every run in progress.
    async with browser.get(f"{world.bot.url}/insights") as r:
        assert r.status == 200
        recent = await r.text()
    assert cell(recent, "card-in-progress") == str(in_progress)
    assert cell(recent, "card-finished") == str(cur)
    since = now - 90 * DAY
    in_period = sorted(w["finished"] - w["created"] for w in seen
                       if w["finished"] and (w["created"] >= since or w["finished"] >= since))
    assert len(in_period) < len(durations)
    row = re.search(r"Time to finish.*?</tr>", recent, re.S)
    assert row and re.findall(r"<td>(.*?)</td>", row.group(0))[3] == str(len(in_period))
    async with browser.get(f"{world.bot.url}/insights?period=forever") as r:
        assert r.status == 400 and "no period &#34;forever&#34;" in await r.text()

    # Bars link to the runs list with the filters.
    async with browser.get(f"{world.bot.url}/insights?playbook=deploy&team={world.team_id}") as r:
        filtered = await r.text()
    links = {html.unescape(h) for h in re.findall(r'<a href="(/runs\?[^"]+)"', filtered)}
    assert f"/runs?team={world.team_id}&playbook=deploy&status=in_progress" in links
    assert any("owner=" in h and "playbook=deploy" in h for h in links)
    deploy_seen = [w for w in seen if w["playbook"] == "deploy" and w["team"] == world.team_id]
    assert cell(filtered, "card-in-progress") == str(sum(1 for w in deploy_seen if w["finished"] is None))


async def test_retro_metrics_are_validated_saved_and_shown(world: World) -> None:
    run = await start_incident(world)
    await finish_with_confirmation(world, run)
    alice = world["alice"]
    await alice.command(run["channel_id"], "/playbook retro")
    await world.settle()
    dialog = await open_dialog_for(world, "alice", seen=1)
    elements = dialog["dialog"]["elements"]
    assert [e["name"] for e in elements] == ["text", "metric0", "metric1", "metric2"]
    assert "dd:hh:mm" in elements[1]["help_text"] and "Target: 00:02:00" in elements[1]["help_text"]

    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id,
                                             {"text": "A full disk.", "metric0": "soon", "metric1": "12.345",
                                              "metric2": "3.5"})
    assert set(body["errors"]) == {"metric0", "metric1", "metric2"}, body
    status, run_body = await world.run_json(run["id"])
    assert "retrospective_published" not in [e["type"] for e in run_body["timeline"]]

    status, body = await alice.submit_dialog(dialog, run["channel_id"], world.team_id,
                                             {"text": "A full disk.", "metric0": "1h30m", "metric1": "1250.50",
                                              "metric2": "42"})
    assert status == 200 and not (body or {}).get("errors"), body
    await world.settle()
    browser = await world.browser("alice")
    async with browser.get(f"{world.bot.url}/insights?playbook=incident") as r:
        page = await r.text()
    table = re.search(r'<table class="metrics" id="metrics-incident">.*?</table>', page, re.S)
    assert table, page
    rows = {m.group(1): re.findall(r"<td>(.*?)</td>", m.group(2))
            for m in re.finditer(r'<th scope="row">(.*?)</th>(.*?)</tr>', table.group(0), re.S)}
    assert rows["Time to detect"][0] == "1h 30m"  # average
    assert rows["Time to detect"][5] == "-30 minutes"  # average - target (2h)
    assert rows["Cost"][0] == "1,250.50" and rows["Cost"][5] == "250.50"
    assert rows["Customers affected"][0] == "42" and rows["Customers affected"][4] == "N/A"
    assert rows["Customers affected"][2] == "N/A"  # no previous ten to compare with
