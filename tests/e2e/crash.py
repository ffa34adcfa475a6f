"""A run worked by twenty people at once against a real `python -m bot run`, and the check that its posts
show its rows: shared by tests/e2e/test_crash_convergence.py and bench/crash_clicks.py.

"Posts equal rows" is read as a person sees it: each checklist post's item lines (their state icons,
in order) and the overview's progress, against the run's JSON from the bot's API.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from tests.conftest import Api
from tests.e2e.conftest import Person, make_user
from tests.e2e.test_process_restart import BotProcess, Site

ITEMS = 20
ICONS = {"open": ":white_large_square:", "in_progress": ":hourglass_flowing_sand:",
         "closed": ":white_check_mark:", "skipped": ":fast_forward:"}
PROGRESS = re.compile(r"Progress: \*\*(\d+)/(\d+)\*\*")


def burst_playbook() -> str:
    items = "\n".join(f'  [[checklists.items]]\n  title = "Step {n:02d}"' for n in range(1, ITEMS + 1))
    return ('title = "Drill"\nteam = "eng"\nprivate_channel = false\nchannel_name = "drill-{seq} {name}"\n'
            'owner = "alice"\n\n[[checklists]]\ntitle = "Work"\n' + items + "\n")


@dataclass
class Burst:
    site: Site
    people: list[Person]
    channel_id: str
    run_id: str
    checklist_post_id: str
    overview_post_id: str


async def clickers(site: Site, count: int = ITEMS) -> list[Person]:
    """alice and count-1 more people of the team, each with a WebSocket (made once per site)."""
    admin = Api(site.alice.api.session, site.sb.url, site.sb.admin_token)
    people = [site.alice]
    for n in range(1, count):
        uid, token = await make_user(admin, site.team_id, f"clicker{n:02d}")
        people.append(Person(f"clicker{n:02d}", uid, token, Api(site.alice.api.session, site.sb.url, token)))
    return people


async def start_burst(site: Site, bot: BotProcess, people: list[Person], name: str) -> Burst:
    """alice starts a Drill run; everyone else joins its (public) channel."""
    seen = len(site.alice.ephemerals())
    status, body = await site.alice.command(site.town_square, f"/playbook run drill {name}")
    assert status == 200, body
    await site.alice.wait_event(lambda e: any(f"**{name}** has started" in t
                                              for t in site.alice.ephemerals()[seen:]), timeout=20)
    status, channels, _ = await site.alice.api.get(f"/users/me/teams/{site.team_id}/channels")
    assert status == 200, channels
    [channel] = [c for c in channels if c["display_name"].endswith(f" {name}")]
    for person in people[1:]:
        status, body, _ = await site.alice.api.post(f"/channels/{channel['id']}/members", {"user_id": person.id})
        assert status == 201, body
    run = await run_json_by_channel(site, bot, channel["id"])
    # Each is a participant once the bot has heard of their channel membership (user_added), which
    # the overview shows: wait for that, by its edits, before anyone clicks.
    while True:
        since = len(site.alice.events)
        run = await run_json(site, bot, run["id"])
        if set(run["participant_ids"]) >= {p.id for p in people}:
            break
        await site.alice.wait_event(lambda e: e.get("event") == "post_edited"
                                    and json.loads(e["data"]["post"])["channel_id"] == channel["id"],
                                    timeout=20, since=since)
    posts = await bot_posts(site, channel["id"])
    checklist = next(p for p in posts if str(p["props"].get("playbooks_part", "")).startswith("checklist:"))
    overview = next(p for p in posts if p["props"].get("playbooks_part") == "overview")
    return Burst(site, people, channel["id"], run["id"], checklist["id"], overview["id"])


async def run_json_by_channel(site: Site, bot: BotProcess, channel_id: str) -> dict[str, Any]:
    async with site.alice.api.session.get(f"{bot.url}/api/v0/runs",
                                          headers={"Authorization": f"Bearer {site.alice.token}"}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    [run] = [r for r in body["items"] if r["channel_id"] == channel_id]
    return dict(run)


async def run_json(site: Site, bot: BotProcess, run_id: str) -> dict[str, Any]:
    async with site.alice.api.session.get(f"{bot.url}/api/v0/runs/{run_id}",
                                          headers={"Authorization": f"Bearer {site.alice.token}"}) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def bot_posts(site: Site, channel_id: str) -> list[dict[str, Any]]:
    status, body, _ = await site.alice.api.get(f"/channels/{channel_id}/posts?per_page=200")
    assert status == 200, body
    return [body["posts"][pid] for pid in body["order"] if body["posts"][pid]["user_id"] == site.bot_id]


async def check_buttons(burst: Burst) -> list[str]:
    """The Check button of every item, in order, as the checklist post shows them now."""
    status, post, _ = await burst.site.alice.api.get(f"/posts/{burst.checklist_post_id}")
    assert status == 200, post
    return [next(a["id"] for a in att["actions"] if a["id"].startswith("check"))
            for att in post["props"]["attachments"]]


async def mismatch(burst: Burst, bot: BotProcess) -> str:
    """What the posts show that the rows do not ("" when they agree)."""
    run = await run_json(burst.site, bot, burst.run_id)
    states = [i["state"] for c in run["checklists"] for i in c["items"]]
    api = burst.site.alice.api
    status, checklist, _ = await api.get(f"/posts/{burst.checklist_post_id}")
    assert status == 200, checklist
    shown = [next((s for s, icon in ICONS.items() if att.get("text", "").startswith(icon)), "?")
             for att in checklist["props"].get("attachments", [])]
    if shown != states:
        return f"checklist shows {shown}, rows say {states}"
    status, overview, _ = await api.get(f"/posts/{burst.overview_post_id}")
    assert status == 200, overview
    text = " ".join(a.get("text", "") for a in overview["props"].get("attachments", []))
    found = PROGRESS.search(text)
    done = sum(s in ("closed", "skipped") for s in states)
    if found is None or (int(found[1]), int(found[2])) != (done, len(states)):
        return f"overview shows {found[0] if found else text!r}, rows say {done}/{len(states)}"
    return ""


async def converge(burst: Burst, bot: BotProcess, deadline_s: float) -> float:
    """Seconds until the posts show the rows, waiting on alice's WebSocket between looks (no sleeping);
    AssertionError with what differs when `deadline_s` passes first."""
    started = time.monotonic()
    while True:
        since = len(burst.site.alice.events)
        wrong = await mismatch(burst, bot)
        if not wrong:
            return time.monotonic() - started
        left = deadline_s - (time.monotonic() - started)
        if left <= 0:
            raise AssertionError(f"posts still differ from the rows after {deadline_s} s: {wrong}")
        try:
            await burst.site.alice.wait_event(
                lambda e: e.get("event") in ("post_edited", "posted")
                and json.loads(e["data"]["post"])["channel_id"] == burst.channel_id, timeout=left, since=since)
        except asyncio.TimeoutError:
            pass
