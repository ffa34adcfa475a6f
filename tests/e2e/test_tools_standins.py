"""Actions against the vendors' stand-ins (standins/), through the real clients (bot/integrations): what a
run start does in Jira, Zoom and PagerDuty as the bot is configured in production (BOT_JIRA_*, BOT_ZOOM_*,
BOT_PAGERDUTY_* pointing at the stand-ins), and how each vendor failure is met: a 401 is final and says how
to fix it, a 429 waits its Retry-After, a 500 is tried again, and the run goes on throughout."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from handlers.actions import ActionService
from standins.__main__ import bot_env
from standins.jira import JiraStandIn
from standins.opsgenie import OpsgenieStandIn
from standins.pagerduty import PagerDutyStandIn
from standins.zoom import ZoomStandIn
from tests.e2e.conftest import INCIDENT, World
from tests.e2e.test_run_start import start_incident

ACTIONS = """
[[actions]]
on = "run_started"
kind = "jira.create_issue"
project = "OPS"
issue_type = "Incident"
summary = "{{ run.name }}"
description = "Owner: {{ run.owner }}. Channel: {{ run.channel_url }}"

[[actions]]
on = "run_started"
kind = "zoom.create_meeting"
topic = "Bridge: {{ run.name }}"

[[actions]]
on = "run_started"
kind = "pagerduty.invite_oncall"
escalation_policy = "PDEMOEP"

[[actions]]
on = "status_updated"
kind = "jira.comment"

[[actions]]
on = "run_finished"
kind = "jira.transition"
to = "Done"
"""


class Tools:
    def __init__(self) -> None:
        self.jira = JiraStandIn(email="playbooks@example.com", api_token="demo-jira-token",
                                projects={"OPS": ["Task", "Incident"]})
        self.zoom = ZoomStandIn(account_id="demo-account", client_id="demo-client", client_secret="demo-secret",
                                users=["meetings@example.com"])
        self.pagerduty = PagerDutyStandIn(api_tokens={"demo-pd-token": "PUSER01"}, routing_keys=["d3m0" * 8])
        self.pagerduty.put_on_call("dave@example.com", escalation_policy="PDEMOEP", schedule="PDEMOSC")
        self.opsgenie = OpsgenieStandIn(api_keys={"demo-og-key": True}, teams=["ops"])
        self.env: dict[str, str] = {}


@pytest.fixture
async def tools() -> AsyncIterator[Tools]:
    t = Tools()
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(getattr(t, name).serve())
                for name in ("jira", "zoom", "pagerduty", "opsgenie")}
        t.env = bot_env(urls)
        yield t


@pytest.fixture
def world_options(tools: Tools) -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT + ACTIONS},
            "env": tools.env}


def service(world: World) -> ActionService:
    assert world.bot.ctx is not None
    found = world.bot.ctx.jobs["actions"]
    assert isinstance(found, ActionService)
    return found


async def bot_texts(world: World, channel_id: str) -> list[str]:
    return [p["message"] for p in await world.posts(channel_id) if p["user_id"] == world.bot_user_id]


async def test_a_run_start_opens_one_issue_one_meeting_and_invites_the_on_call_person(
        world: World, tools: Tools) -> None:
    run = await start_incident(world)
    [issue] = tools.jira.issues.values()
    assert issue.summary == "Database down" and issue.issue_type == "Incident"
    assert f"playbooks-run-{run['id']}" in issue.labels
    assert len(tools.jira.sent("POST", "/rest/api/3/issue")) == 1
    assert issue.description["type"] == "doc"  # the description went as ADF
    [meeting] = tools.zoom.meetings.values()
    assert meeting["topic"] == "Bridge: Database down"

    issue_url = f"{tools.env['BOT_JIRA_URL']}/browse/{issue.key}"
    posts = [p for p in await world.posts(run["channel_id"]) if p["user_id"] == world.bot_user_id]
    assert any(issue_url in p["message"] for p in posts)
    [zoom_post] = [p for p in posts if meeting["join_url"] in p["message"]]
    assert zoom_post["is_pinned"]
    assert any("@dave" in p["message"] and "PagerDuty" in p["message"] for p in posts)

    status, body = await world.run_json(run["id"])
    assert status == 200 and world["dave"].id in body["participant_ids"]
    assert sorted((link["kind"], link["url"]) for link in body["links"]) == [
        ("jira", issue_url), ("zoom", meeting["join_url"])]

    # The run's status update comments on the issue and its finish moves it to Done, each once (through
    # the write API: every exchange checked against bot/openapi.json).
    api = world.bot_api("alice")
    status, body, _ = await api.post(f"/api/v0/runs/{run['id']}/status_updates", json={"message": "DB failed over"})
    assert status == 201, body
    await world.settle()
    assert len(issue.comments) == 1
    status, body, _ = await api.post(f"/api/v0/runs/{run['id']}/finish", json={})
    assert status == 200, body
    await world.settle()
    assert issue.status == "Done"
    assert len(tools.jira.issues) == 1 and len(tools.zoom.meetings) == 1


async def test_a_401_is_final_with_its_fix_a_429_waits_and_a_500_is_tried_again(
        world: World, tools: Tools) -> None:
    tools.jira.faults.add("/rest/api/3/issue", 401, method="POST")
    tools.zoom.faults.add("/v2/users/", 429, method="POST", retry_after="20")
    tools.pagerduty.faults.add("/oncalls", 500)
    run = await start_incident(world)
    texts = await bot_texts(world, run["channel_id"])
    jira_text = next(t for t in texts if "jira.create_issue" in t)
    assert "will not be tried again" in jira_text and "[jira]" in jira_text  # what to fix, where
    zoom_text = next(t for t in texts if "zoom.create_meeting" in t)
    assert "tried again in 20 seconds" in zoom_text, zoom_text
    assert any("pagerduty.invite_oncall" in t and "tried again" in t for t in texts)
    assert not tools.jira.issues and not tools.zoom.meetings

    # The run goes on meanwhile.
    status, body = await world["alice"].command(run["channel_id"], "/playbook check 1.1")
    assert status == 200, body

    jobs = service(world)
    world.clock.advance(2)
    await jobs.run_due()
    await world.settle()
    status, body = await world.run_json(run["id"])
    assert world["dave"].id in body["participant_ids"]  # the 500 was tried again after its backoff
    assert not tools.zoom.meetings  # Zoom asked for 20 s
    world.clock.advance(20)
    await jobs.run_due()
    await world.settle()
    assert len(tools.zoom.meetings) == 1
    world.clock.advance(600)
    await jobs.run_due()
    await world.settle()
    assert not tools.jira.issues  # a 401 is never retried
    assert len(tools.jira.sent("POST", "/rest/api/3/issue")) == 1
    status, body = await world.run_json(run["id"])
    kinds = sorted(e["type"] for e in body["timeline"] if e["type"].startswith("action_"))
    assert kinds == ["action_failed", "action_succeeded", "action_succeeded"], kinds
    assert body["status"] == "in_progress" and body["checklists"][0]["items"][0]["state"] == "closed"
