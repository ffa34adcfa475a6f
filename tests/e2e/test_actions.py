"""Actions on run events (`[[actions]]`), end to end: the real bot against the sandbox, with in-process fakes
of the vendor clients (bot/integrations protocols) on the bot's `ctx.integrations`, and a local aiohttp
server for the http action. The clock is injected; retries happen when the test moves it and asks the
action service to run what is due."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from bot.app import BotApp
from bot.integrations import IntegrationError, Integrations, JiraIssue, ZoomMeeting
from handlers.actions import ActionService
from storage import actions as store
from tests.conftest import serve
from tests.e2e.conftest import INCIDENT, ONBOARDING, World
from tests.e2e.test_run_start import start_incident

ACTIONS = """
[[actions]]
on = "run_started"
kind = "jira.create_issue"
project = "OPS"
summary = "Incident: {{ run.name }}"
description = "Owner: {{ run.owner }}. {{ run.channel_url }}"
labels = ["incident"]

[[actions]]
on = "run_started"
kind = "zoom.create_meeting"
topic = "Bridge: {{ run.name }}"

[[actions]]
on = "run_started"
kind = "pagerduty.invite_oncall"
escalation_policy = "PESC1"
make_owner = false

[[actions]]
on = "status_updated"
kind = "jira.comment"
text = "Update from {{ event.by }}: {{ event.update }}"

[[actions]]
on = "run_finished"
kind = "jira.transition"
to = "Done"
"""

HTTP = """
title = "Notify"
channel_name = "ntf {name}"
category = ""

[[checklists]]
title = "Do"
  [[checklists.items]]
  title = "Tell the status page"

[[actions]]
on = "item_checked"
item = "Tell the status page"
kind = "http"
method = "PUT"
url = "URL"
headers = { X-Source = "playbooks" }
secret_headers = { X-Api-Key = "statuspage" }
body = '{"run": {{ run.name | tojson }}, "by": {{ event.by | tojson }}, "item": {{ event.item | tojson }}}'
"""


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin",
            "playbooks": {"incident": INCIDENT + ACTIONS, "onboarding": ONBOARDING},
            "env": {"BOT_HTTP_ACTIONS_SECRETS": json.dumps({"statuspage": "sp-key-123", "other": "o-key"}),
                    "BOT_HTTP_ACTIONS_ALLOW_INTERNAL": "127.0.0.1",  # the test receiver's address only
                    "BOT_HTTP_ACTIONS_SECRET_HOSTS": json.dumps({"statuspage": ["127.0.0.1"],
                                                                 "other": ["hooks.example.com"]}),
                    "BOT_SECURITY_SECRET": "webhook-secret-0123456789"}}


class FakeJira:
    def __init__(self) -> None:
        self.issues: list[dict[str, Any]] = []
        self.comments: list[tuple[str, str]] = []
        self.transitions: list[tuple[str, str]] = []
        self.fail: list[IntegrationError] = []  # raised by the next create_issue calls, in order
        self.create_then_time_out = False
        self.create_then_raise: IntegrationError | None = None  # created, then this answer (a 502 from an edge)
        self.hidden_from_search = 0  # the next find_by_label calls find nothing (Jira's index lags)
        self.finds: list[str] = []
        self.raise_unexpected = False

    async def create_issue(self, *, project: str, issue_type: str, summary: str, description: str,
                           labels: list[str]) -> JiraIssue:
        if self.raise_unexpected:
            raise RuntimeError("a bug in the bot")
        if self.fail:
            raise self.fail.pop(0)
        key = f"{project}-{len(self.issues) + 1}"
        self.issues.append({"key": key, "summary": summary, "description": description, "labels": labels,
                            "issue_type": issue_type})
        if self.create_then_time_out:  # created, but the answer never came back
            self.create_then_time_out = False
            raise IntegrationError("Jira", "no answer within 10 s")
        if self.create_then_raise is not None:
            err, self.create_then_raise = self.create_then_raise, None
            raise err
        return self._issue(key)

    def _issue(self, key: str) -> JiraIssue:
        return JiraIssue(id=str(10000 + int(key.split("-")[1])), key=key, url=f"https://acme.atlassian.net/browse/{key}")

    async def find_by_label(self, label: str) -> JiraIssue | None:
        self.finds.append(label)
        if self.hidden_from_search:
            self.hidden_from_search -= 1
            return None
        found = [i for i in self.issues if label in i["labels"]]
        return self._issue(found[0]["key"]) if found else None

    async def comment(self, issue_key: str, text: str) -> None:
        self.comments.append((issue_key, text))

    async def transition(self, issue_key: str, to: str) -> None:
        self.transitions.append((issue_key, to))

    async def check(self) -> Any:
        raise NotImplementedError


class FakeZoom:
    def __init__(self) -> None:
        self.meetings: list[dict[str, str]] = []
        self.fail: list[IntegrationError] = []

    async def create_meeting(self, *, topic: str, agenda: str, host: str) -> ZoomMeeting:
        if self.fail:
            raise self.fail.pop(0)
        self.meetings.append({"topic": topic, "agenda": agenda, "host": host})
        n = len(self.meetings)
        return ZoomMeeting(id=str(8000 + n), join_url=f"https://zoom.us/j/{8000 + n}")

    async def check(self) -> Any:
        raise NotImplementedError


class FakePagerDuty:
    def __init__(self, emails: list[str]) -> None:
        self.emails = emails
        self.asked: list[tuple[list[str], list[str]]] = []

    async def oncall_emails(self, *, escalation_policy_ids: list[str], schedule_ids: list[str]) -> list[str]:
        self.asked.append((escalation_policy_ids, schedule_ids))
        return list(self.emails)

    async def trigger(self, **kwargs: Any) -> None:
        raise NotImplementedError

    async def resolve(self, **kwargs: Any) -> None:
        raise NotImplementedError

    async def check(self) -> Any:
        raise NotImplementedError


def wire(world: World, jira: FakeJira | None = None, zoom: FakeZoom | None = None,
         pagerduty: FakePagerDuty | None = None) -> ActionService:
    assert world.bot.ctx is not None
    world.bot.ctx.integrations = Integrations(jira=jira, zoom=zoom, pagerduty=pagerduty)
    service = world.bot.ctx.jobs["actions"]
    assert isinstance(service, ActionService)
    return service


async def bot_texts(world: World, channel_id: str) -> list[str]:
    return [p["message"] for p in await world.posts(channel_id) if p["user_id"] == world.bot_user_id]


async def timeline(world: World, run_id: str) -> list[dict[str, Any]]:
    status, body = await world.run_json(run_id)
    assert status == 200, body
    return [e for e in body["timeline"] if e["type"].startswith("action_")]


async def retry_due(world: World, service: ActionService, seconds: float) -> None:
    world.clock.advance(seconds)
    await service.run_due()
    await world.settle()


async def test_a_run_start_opens_one_issue_one_meeting_and_invites_who_is_on_call(world: World) -> None:
    jira, zoom = FakeJira(), FakeZoom()
    pd = FakePagerDuty(["DAVE@example.com", "nobody@example.com"])
    wire(world, jira, zoom, pd)
    run = await start_incident(world)
    assert len(jira.issues) == 1 and len(zoom.meetings) == 1
    issue = jira.issues[0]
    assert issue["summary"] == "Incident: Database down"
    assert issue["labels"] == ["incident", f"playbooks-run-{run['id']}"]
    assert "Owner: alice." in issue["description"]
    assert zoom.meetings[0]["topic"] == "Bridge: Database down"
    assert pd.asked == [(["PESC1"], [])]

    texts = await bot_texts(world, run["channel_id"])
    assert any("https://acme.atlassian.net/browse/OPS-1" in t and "Jira issue" in t for t in texts)
    zoom_posts = [p for p in await world.posts(run["channel_id"]) if "https://zoom.us/j/8001" in p["message"]]
    assert len(zoom_posts) == 1 and zoom_posts[0]["is_pinned"]
    invited = next(t for t in texts if "On call from PagerDuty" in t)
    assert "@dave" in invited and "nobody@example.com" in invited

    status, body = await world.run_json(run["id"])
    assert world["dave"].id in body["participant_ids"]
    assert sorted((link["kind"], link["label"], link["url"]) for link in body["links"]) == [
        ("jira", "OPS-1", "https://acme.atlassian.net/browse/OPS-1"),
        ("zoom", "Zoom meeting", "https://zoom.us/j/8001")]
    assert [e["type"] for e in await timeline(world, run["id"])] == ["action_succeeded"] * 3

    # /playbook info shows the links.
    status, info = await world["alice"].command(run["channel_id"], "/playbook info")
    assert "https://acme.atlassian.net/browse/OPS-1" in info["text"] and "https://zoom.us/j/8001" in info["text"]

    # The web run page and the report show them too.
    browser = await world.browser("alice")
    async with browser.get(f"{world.bot.url}/runs/{run['id']}") as resp:
        page = await resp.text()
        assert resp.status == 200 and 'href="https://acme.atlassian.net/browse/OPS-1"' in page
    async with browser.get(f"{world.bot.url}/runs/{run['id']}/report.md") as resp:
        report = await resp.text()
        assert resp.status == 200 and "[OPS-1](https://acme.atlassian.net/browse/OPS-1)" in report, report
    # The playbook's page lists what its runs do in the tools.
    async with browser.get(f"{world.bot.url}/playbooks/incident") as resp:
        page = await resp.text()
        assert resp.status == 200
    assert "on run started: <code>jira.create_issue</code>" in page
    assert "on run finished: <code>jira.transition</code>" in page

    # A status update comments on the issue; the finish moves it to Done. Each once.
    bot = world.bot.ctx
    assert bot is not None
    from handlers.status import post_update
    from storage import runs as run_rows
    row = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
    assert row is not None
    assert await post_update(bot, row.run, world["alice"].id, "DB failed over", 0, True)
    await world.settle()
    assert jira.comments == [("OPS-1", "Update from alice: DB failed over")]
    assert jira.transitions == [("OPS-1", "Done")]
    # The same start noticed again (a repeated emit) acts no more.
    await bot.emit("run_started", run["id"])
    await world.settle()
    assert len(jira.issues) == 1 and len(zoom.meetings) == 1


async def test_retryable_failures_are_retried_then_succeed(world: World) -> None:
    jira, zoom = FakeJira(), FakeZoom()
    jira.fail = [IntegrationError("Jira", "rate limited", status=429, retry_after_s=30)]
    # 503: not taken in (a 500, 502 or 504 may come after the meeting was made: uncertain, not retried)
    zoom.fail = [IntegrationError("Zoom", "Service Unavailable", status=503)]
    service = wire(world, jira, zoom, FakePagerDuty([]))
    run = await start_incident(world)
    assert jira.issues == [] and zoom.meetings == []
    texts = await bot_texts(world, run["channel_id"])
    assert any("jira.create_issue" in t and "rate limited" in t and "tried again in 30 seconds" in t
               for t in texts), texts
    assert any("zoom.create_meeting" in t and "tried again" in t for t in texts)

    await retry_due(world, service, 1.5)  # Zoom's backoff (1 s) is over; Jira asked for 30 s
    assert len(zoom.meetings) == 1 and jira.issues == []
    await retry_due(world, service, 30)
    assert len(jira.issues) == 1
    await retry_due(world, service, 120)
    assert len(jira.issues) == 1 and len(zoom.meetings) == 1
    events = await timeline(world, run["id"])
    assert [e["type"] for e in events] == ["action_succeeded"] * 3


async def test_a_final_failure_is_reported_with_its_hint_and_the_run_goes_on(world: World) -> None:
    jira = FakeJira()
    jira.fail = [IntegrationError("Jira", "Client must be authenticated to access this resource.", status=401,
                                  hint="check [jira] email and api_token in bot.toml")]
    service = wire(world, jira, None, FakePagerDuty([]))  # Zoom is not configured at all
    run = await start_incident(world)
    texts = await bot_texts(world, run["channel_id"])
    jira_fail = next(t for t in texts if "jira.create_issue" in t)
    assert "must be authenticated" in jira_fail and "check [jira] email and api_token" in jira_fail
    assert "will not be tried again" in jira_fail
    zoom_fail = next(t for t in texts if "zoom.create_meeting" in t)
    assert "not configured: add [zoom]" in zoom_fail
    events = await timeline(world, run["id"])
    assert sorted(e["type"] for e in events) == ["action_failed", "action_failed", "action_succeeded"]
    await retry_due(world, service, 600)
    assert jira.issues == []  # never retried
    # The run goes on: its items still check.
    status, body = await world["alice"].command(run["channel_id"], "/playbook check 1.1")
    assert status == 200, body
    status, body = await world.run_json(run["id"])
    assert body["status"] == "in_progress" and body["checklists"][0]["items"][0]["state"] == "closed"
    # A comment with no issue says so.
    bot = world.bot.ctx
    assert bot is not None
    from handlers.status import post_update
    from storage import runs as run_rows
    view = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
    assert view is not None and await post_update(bot, view.run, world["alice"].id, "still down", 0, False)
    await world.settle()
    assert any("no Jira issue was created for this run" in t for t in await bot_texts(world, run["channel_id"]))


async def test_an_uncertain_jira_create_is_found_by_its_label_not_made_twice(world: World) -> None:
    jira = FakeJira()
    jira.create_then_time_out = True
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    assert len(jira.issues) == 1  # created, though the bot heard nothing back
    # Jira's search is eventually consistent: the look for the label waits half a minute, not a second.
    assert any("jira.create_issue" in t and "tried again in 30 seconds" in t
               for t in await bot_texts(world, run["channel_id"]))
    await retry_due(world, service, 2)
    await retry_due(world, service, 600)
    assert len(jira.issues) == 1
    status, body = await world.run_json(run["id"])
    assert [link["label"] for link in body["links"] if link["kind"] == "jira"] == ["OPS-1"]
    assert any("OPS-1" in t for t in await bot_texts(world, run["channel_id"]))


async def test_a_zoom_meeting_with_no_answer_is_reported_not_retried(world: World) -> None:
    zoom = FakeZoom()
    zoom.fail = [IntegrationError("Zoom", "no answer within 10 s")]
    service = wire(world, FakeJira(), zoom, FakePagerDuty([]))
    run = await start_incident(world)
    await retry_due(world, service, 600)
    assert zoom.meetings == []
    text = next(t for t in await bot_texts(world, run["channel_id"]) if "zoom.create_meeting" in t)
    assert "may exist" in text and "never two" in text


async def test_a_pending_action_survives_a_restart(world: World) -> None:
    jira = FakeJira()
    jira.fail = [IntegrationError("Jira", "Service Unavailable", status=503)]
    wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    assert jira.issues == []
    first = world.bot
    await first.stop()
    second = await BotApp(replace(first.settings), clock=world.clock).start()
    world.bot = second
    jira_after = FakeJira()
    service = wire(world, jira_after)
    assert second.ctx is not None
    rows = await second.ctx.db.run(store.run_actions, run["id"], readonly=True)
    assert [(r.kind, r.state) for r in rows if r.kind == "jira.create_issue"] == [("jira.create_issue", "pending")]
    await retry_due(world, service, 5)
    assert len(jira_after.issues) == 1 and jira.issues == []
    rows = await second.ctx.db.run(store.run_actions, run["id"], readonly=True)
    assert next(r for r in rows if r.kind == "jira.create_issue").state == "done"


@pytest.fixture
async def receiver() -> Any:
    got: list[tuple[str, dict[str, str], bytes]] = []
    answers: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        got.append((request.method, dict(request.headers), await request.read()))
        status = answers.pop(0) if answers else 204
        return web.Response(status=status, headers={"Retry-After": "2"} if status == 429 else {})

    app = web.Application()
    app.router.add_route("*", "/hook", handle)
    async with serve(app) as url:
        yield f"{url}/hook", got, answers


async def test_an_http_action_is_signed_retried_and_carries_the_secret(world: World, receiver: Any) -> None:
    url, got, answers = receiver
    (world.playbooks_dir / "notify.toml").write_text(HTTP.replace("URL", url))
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    service = wire(world)
    answers.append(429)
    status, body = await world["alice"].command(world.town_square, "/playbook run notify Status")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    run = next(r for r in runs["items"] if r["name"] == "Status")
    status, body = await world["alice"].command(run["channel_id"], "/playbook check 1.1")
    assert status == 200, body
    await world.settle()
    assert len(got) == 1  # 429: tried again after Retry-After
    await retry_due(world, service, 3)
    assert len(got) == 2
    method, headers, raw = got[1]
    assert method == "PUT"
    assert json.loads(raw) == {"run": "Status", "by": "alice", "item": "Tell the status page"}
    assert headers["X-Api-Key"] == "sp-key-123" and headers["X-Source"] == "playbooks"
    assert headers["X-Playbooks-Event"] == "item_checked"
    assert headers["X-Playbooks-Delivery"] == got[0][1]["X-Playbooks-Delivery"]  # the same on every attempt
    signed = headers["X-Playbooks-Timestamp"].encode() + b"." + raw
    key = hmac.new(b"webhook-secret-0123456789", b"http-actions/v1", hashlib.sha256).digest()  # docs/actions.md
    expected = "sha256=" + hmac.new(key, signed, hashlib.sha256).hexdigest()
    assert headers["X-Playbooks-Signature"] == expected
    events = await timeline(world, run["id"])
    assert [e["type"] for e in events] == ["action_succeeded"]


PAGING = """
title = "Paging"
channel_name = "pg {name}"
category = ""
owner = "alice"

[[actions]]
on = "run_started"
kind = "opsgenie.invite_oncall"
schedule = "ops"
make_owner = true

[[actions]]
on = "run_started"
kind = "pagerduty.page"
routing = "db-team"
severity = "error"
summary = "{{ run.name }} ({{ run.playbook }})"

[[actions]]
on = "run_started"
kind = "opsgenie.page"
responders = ["ops"]
priority = "P2"
message = "Run {{ run.name }}"

[[actions]]
on = "run_finished"
kind = "pagerduty.resolve"
routing = "db-team"

[[actions]]
on = "run_finished"
kind = "opsgenie.close"
"""


class FakeOpsgenie:
    def __init__(self, emails: list[str]) -> None:
        self.emails = emails
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def oncall_emails(self, *, schedule: str) -> list[str]:
        self.calls.append(("oncall", {"schedule": schedule}))
        return list(self.emails)

    async def create_alert(self, **kwargs: Any) -> None:
        self.calls.append(("create", kwargs))

    async def close_alert(self, *, alias: str) -> None:
        self.calls.append(("close", {"alias": alias}))

    async def check(self) -> Any:
        raise NotImplementedError


class FakePages(FakePagerDuty):
    def __init__(self) -> None:
        super().__init__([])
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def trigger(self, **kwargs: Any) -> None:
        self.events.append(("trigger", kwargs))

    async def resolve(self, **kwargs: Any) -> None:
        self.events.append(("resolve", kwargs))


async def test_pages_are_keyed_per_run_and_the_on_call_person_owns_it(world: World) -> None:
    (world.playbooks_dir / "paging.toml").write_text(PAGING)
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    og, pd = FakeOpsgenie(["carol@example.com"]), FakePages()
    assert world.bot.ctx is not None
    world.bot.ctx.integrations = Integrations(pagerduty=pd, opsgenie=og)
    status, body = await world["alice"].command(world.town_square, "/playbook run paging Disk full")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    run = next(r for r in runs["items"] if r["name"] == "Disk full")
    key = f"playbooks-run-{run['id']}"
    assert run["owner_id"] == world["carol"].id and world["carol"].id in run["participant_ids"]
    assert pd.events[0][0] == "trigger" and pd.events[0][1]["dedup_key"] == key
    assert pd.events[0][1]["routing"] == "db-team" and pd.events[0][1]["severity"] == "error"
    assert pd.events[0][1]["summary"] == "Disk full (Paging)"
    create = next(kw for name, kw in og.calls if name == "create")
    assert create["alias"] == key and create["priority"] == "P2" and create["responders"] == ["ops"]
    texts = await bot_texts(world, run["channel_id"])
    assert any("@carol owns the run now" in t for t in texts)
    status, body = await world["carol"].command(run["channel_id"], "/playbook finish")
    assert status == 200, body
    await world.settle()
    assert ("resolve", {"routing": "db-team", "dedup_key": key}) in pd.events
    assert ("close", {"alias": key}) in og.calls


async def test_an_action_failing_unexpectedly_every_time_is_failed_once_its_attempts_are_spent(world: World) -> None:
    jira = FakeJira()
    jira.raise_unexpected = True
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    for _ in range(6):  # each attempt holds the lease until it runs out (LEASE_MS)
        await retry_due(world, service, 121)
    assert world.bot.ctx is not None
    rows = await world.bot.ctx.db.run(store.run_actions, run["id"], readonly=True)
    row = next(r for r in rows if r.kind == "jira.create_issue")
    assert row.state == "failed" and row.attempts == 5 and "RuntimeError" in row.error
    assert "action_failed" in [e["type"] for e in await timeline(world, run["id"])]
    assert any("jira.create_issue" in t and "unexpectedly" in t for t in await bot_texts(world, run["channel_id"]))
    await retry_due(world, service, 600)
    rows = await world.bot.ctx.db.run(store.run_actions, run["id"], readonly=True)
    assert next(r for r in rows if r.kind == "jira.create_issue").attempts == 5  # not claimed again


async def test_a_later_clear_failure_does_not_forget_an_earlier_uncertain_create(world: World) -> None:
    jira = FakeJira()
    jira.create_then_time_out = True  # made, no answer
    jira.hidden_from_search = 1  # and the first look by its label does not see it yet
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    assert len(jira.issues) == 1
    jira.fail = [IntegrationError("Jira", "rate limited", status=429)]
    await retry_due(world, service, 31)  # looks (nothing yet), tries to create: 429
    assert len(jira.finds) == 1 and len(jira.issues) == 1
    await retry_due(world, service, 600)  # still uncertain: looks again, finds OPS-1
    await retry_due(world, service, 600)
    assert len(jira.issues) == 1 and len(jira.finds) == 2
    status, body = await world.run_json(run["id"])
    assert [link["label"] for link in body["links"] if link["kind"] == "jira"] == ["OPS-1"]


async def test_a_5xx_after_a_create_is_uncertain(world: World) -> None:
    jira, zoom = FakeJira(), FakeZoom()
    jira.create_then_raise = IntegrationError("Jira", "Bad Gateway", status=502)
    zoom.fail = [IntegrationError("Zoom", "Gateway Timeout", status=504)]
    service = wire(world, jira, zoom, FakePagerDuty([]))
    run = await start_incident(world)
    await retry_due(world, service, 31)
    await retry_due(world, service, 600)
    assert len(jira.issues) == 1 and jira.finds  # found by its label, not made twice
    status, body = await world.run_json(run["id"])
    assert [link["label"] for link in body["links"] if link["kind"] == "jira"] == ["OPS-1"]
    assert zoom.meetings == []  # no key to find it by: reported, not tried again
    text = next(t for t in await bot_texts(world, run["channel_id"]) if "zoom.create_meeting" in t)
    assert "may exist" in text


async def test_after_a_crash_mid_create_the_label_is_looked_for_only_once_search_caught_up(world: World) -> None:
    from sqlmodel import Session

    from storage.models import RunAction
    jira = FakeJira()
    jira.fail = [IntegrationError("Jira", "Service Unavailable", status=503)]
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    assert world.bot.ctx is not None
    rows = await world.bot.ctx.db.run(store.run_actions, run["id"], readonly=True)
    action_id = next(r.id for r in rows if r.kind == "jira.create_issue")
    now = world.clock.now_ms()

    def crashed_mid_call(session: Session) -> None:  # as a process that died after begin_call leaves it
        row = session.get(RunAction, action_id)
        assert row is not None
        row.in_flight, row.updated_at, row.next_attempt_at = True, now, 0
        session.add(row)

    await world.bot.ctx.db.run(crashed_mid_call)
    jira.issues.append({"key": "OPS-1", "summary": "", "description": "", "issue_type": "Task",
                        "labels": [f"playbooks-run-{run['id']}"]})  # the dead process's create worked
    await retry_due(world, service, 2)  # the dead holder freed its lease at once; Jira's search may lag
    assert jira.finds == [] and len(jira.issues) == 1  # not looked for yet, not created again
    await retry_due(world, service, 30)
    assert len(jira.finds) == 1 and len(jira.issues) == 1
    status, body = await world.run_json(run["id"])
    assert [link["label"] for link in body["links"] if link["kind"] == "jira"] == ["OPS-1"]


async def test_a_comment_waits_for_the_issue_still_being_created(world: World) -> None:
    jira = FakeJira()
    jira.fail = [IntegrationError("Jira", "Service Unavailable", status=503)]
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    assert jira.issues == []
    bot = world.bot.ctx
    assert bot is not None
    from handlers.status import post_update
    from storage import runs as run_rows
    view = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
    assert view is not None and await post_update(bot, view.run, world["alice"].id, "still down", 0, False)
    await world.settle()
    await retry_due(world, service, 2)
    await retry_due(world, service, 10)
    assert len(jira.issues) == 1
    assert jira.comments == [("OPS-1", "Update from alice: still down")]
    texts = await bot_texts(world, run["channel_id"])
    assert not any("no Jira issue was created" in t for t in texts)
    assert not any("jira.comment" in t for t in texts if ":warning:" in t)  # waiting is not a failure


async def test_a_secret_is_sent_only_to_the_hosts_listed_for_it(world: World, receiver: Any) -> None:
    url, got, answers = receiver
    (world.playbooks_dir / "notify.toml").write_text(
        HTTP.replace("URL", url).replace('X-Api-Key = "statuspage"', 'X-Api-Key = "other"'))
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    service = wire(world)
    status, body = await world["alice"].command(world.town_square, "/playbook run notify Status")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    run = next(r for r in runs["items"] if r["name"] == "Status")
    status, body = await world["alice"].command(run["channel_id"], "/playbook check 1.1")
    assert status == 200, body
    await world.settle()
    await retry_due(world, service, 600)
    assert got == []  # never sent
    text = next(t for t in await bot_texts(world, run["channel_id"]) if "http" in t and "may not be sent" in t)
    assert "127.0.0.1" in text and "secret_hosts" in text
    assert [e["type"] for e in await timeline(world, run["id"])] == ["action_failed"]


async def test_a_starts_action_rows_are_written_before_the_start_is_marked_done(world: World) -> None:
    """The start is marked done after its run_started emit returns (handlers/runs.py _told): the action rows
    are written by then, so a crash right after the start is recorded cannot lose the start's actions."""
    wire(world, FakeJira(), FakeZoom(), FakePagerDuty([]))
    assert world.bot.ctx is not None
    ctx = world.bot.ctx
    seen: list[int] = []

    class After:
        async def emit(self, event: str, run_id: str, *, actor_id: str = "",
                       payload: dict[str, Any] | None = None) -> None:
            if event == "run_started":  # listeners are told in order: the action service came first
                seen.append(len(await ctx.db.run(store.run_actions, run_id, readonly=True)))

    ctx.run_events.append(After())
    await start_incident(world)
    assert seen == [3]  # jira.create_issue, zoom.create_meeting, pagerduty.invite_oncall


async def test_a_zoom_create_that_never_left_the_bot_is_tried_again(world: World) -> None:
    """No connection opened (refused, name not resolved, no token): no meeting can exist, so unlike a call
    that got no answer, it is retried with the backoff."""
    zoom = FakeZoom()
    zoom.fail = [IntegrationError("Zoom", "cannot reach api.zoom.us: connection refused", sent=False)]
    service = wire(world, FakeJira(), zoom, FakePagerDuty([]))
    run = await start_incident(world)
    assert zoom.meetings == []
    await retry_due(world, service, 2)
    assert len(zoom.meetings) == 1
    events = await timeline(world, run["id"])
    assert sorted(e["type"] for e in events) == ["action_succeeded"] * 3


TWO_CREATES = """
title = "Two creates"
channel_name = "two {name}"
category = ""

[[checklists]]
title = "Do"
  [[checklists.items]]
  title = "Escalate"
  [[checklists.items]]
  title = "Page the vendor"

[[actions]]
on = "run_started"
kind = "jira.create_issue"
project = "OPS"

[[actions]]
on = "run_started"
kind = "jira.create_issue"
project = "SEC"

[[actions]]
on = "item_checked"
kind = "jira.create_issue"
project = "OPS"
"""


async def test_several_create_rows_of_one_run_make_one_issue(world: World) -> None:
    """Two create actions on the start, carried at the same moment, and one on item_checked for two items
    checked together: the first row creates (here after a 503 and a retry), the others wait for it and adopt
    its issue; never a second issue for the run."""
    (world.playbooks_dir / "twice.toml").write_text(TWO_CREATES)
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    jira = FakeJira()
    jira.fail = [IntegrationError("Jira", "Service Unavailable", status=503)]
    service = wire(world, jira)
    status, body = await world["alice"].command(world.town_square, "/playbook run twice Payments")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    run = next(r for r in runs["items"] if r["name"] == "Payments")
    assert jira.issues == []  # the first create got the 503; the second waits for it
    for item in ("1.1", "1.2"):
        status, body = await world["alice"].command(run["channel_id"], f"/playbook check {item}")
        assert status == 200, body
    await world.settle()
    for _ in range(6):
        await retry_due(world, service, 120)
    assert [i["key"] for i in jira.issues] == ["OPS-1"]
    rows = await world.bot.ctx.db.run(store.run_actions, run["id"], readonly=True)
    assert [(r.kind, r.state) for r in rows] == [("jira.create_issue", "done")] * 4
    assert sum(1 for r in rows if (r.result or {}).get("key") == "OPS-1") == 4
    status, body = await world.run_json(run["id"])
    assert [link["label"] for link in body["links"] if link["kind"] == "jira"] == ["OPS-1"]
    warnings = [t for t in await bot_texts(world, run["channel_id"]) if t.startswith(":warning:")]
    assert len(warnings) == 1 and "Service Unavailable" in warnings[0]  # the 503; the waits are not failures


async def test_events_whose_action_rows_were_lost_are_swept_from_the_timeline(world: World) -> None:
    """A status update, an item check and a finish committed by a process that died before writing their
    action rows (here: the action service not told): the sweep finds them on the timeline once they are a
    minute old and writes the rows then, so the Jira comment and transition happen, once each. Events older
    than a day are left alone."""
    jira = FakeJira()
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    await retry_due(world, service, 0)
    assert [i["key"] for i in jira.issues] == ["OPS-1"]
    bot = world.bot.ctx
    assert bot is not None
    from handlers.status import post_update
    from storage import runs as run_rows

    bot.run_events.remove(service)  # the process "dies" after each event's commit, before its rows
    view = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
    assert view is not None and await post_update(bot, view.run, world["alice"].id, "still down", 0, False)
    await world.settle()
    world.clock.advance(10)
    view = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
    assert view is not None and await post_update(bot, view.run, world["alice"].id, "failed over", 0, True)
    await world.settle()
    bot.run_events.append(service)
    assert jira.comments == [] and jira.transitions == []

    world.clock.advance(30)
    assert await service.sweep() == 0  # too young yet: their own process may still be writing them
    await retry_due(world, service, 300)  # the next sweep is due
    assert sorted(jira.comments) == [("OPS-1", "Update from alice: failed over"),
                                     ("OPS-1", "Update from alice: still down")]
    assert jira.transitions == [("OPS-1", "Done")]
    rows = await bot.db.run(store.run_actions, run["id"], readonly=True)
    assert sorted(r.kind for r in rows if r.event != "run_started") == ["jira.comment", "jira.comment",
                                                                         "jira.transition"]
    assert {r.actor_id for r in rows if r.kind == "jira.comment"} == {world["alice"].id}
    # Swept again (another process, a restart): nothing new.
    assert await service.sweep() == 0
    await retry_due(world, service, 600)
    assert len(jira.comments) == 2 and len(jira.transitions) == 1


async def test_the_sweep_leaves_events_older_than_a_day(world: World) -> None:
    jira = FakeJira()
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    bot = world.bot.ctx
    assert bot is not None
    from handlers.status import post_update
    from storage import runs as run_rows

    bot.run_events.remove(service)
    view = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
    assert view is not None and await post_update(bot, view.run, world["alice"].id, "still down", 0, False)
    await world.settle()
    bot.run_events.append(service)
    world.clock.advance(25 * 3600)  # the bot was away for more than a day
    assert await service.sweep() == 0
    await retry_due(world, service, 0)
    assert jira.comments == []


async def test_an_item_check_whose_action_rows_were_lost_is_swept(world: World, receiver: Any) -> None:
    url, got, answers = receiver
    (world.playbooks_dir / "notify.toml").write_text(HTTP.replace("URL", url))
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    service = wire(world)
    status, body = await world["alice"].command(world.town_square, "/playbook run notify Status")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    run = next(r for r in runs["items"] if r["name"] == "Status")
    world.bot.ctx.run_events.remove(service)  # the check commits; its process dies before the rows
    status, body = await world["alice"].command(run["channel_id"], "/playbook check 1.1")
    assert status == 200, body
    await world.settle()
    world.bot.ctx.run_events.append(service)
    world.clock.advance(30)
    assert await service.sweep() == 0 and got == []  # not a minute old yet
    await retry_due(world, service, 300)
    assert len(got) == 1
    sent = json.loads(got[0][2])
    assert sent == {"run": "Status", "by": "alice", "item": "Tell the status page"}


async def test_an_http_action_to_an_internal_address_not_allowed_is_refused(world: World, receiver: Any) -> None:
    """Only 127.0.0.1 is allowed here ([http_actions] allow_internal): 127.0.0.2 is loopback too, so an http
    action to it fails for good before any connection, saying how to allow it."""
    url, got, answers = receiver
    port = url.split(":")[2].split("/")[0]
    no_secret = HTTP.replace('secret_headers = { X-Api-Key = "statuspage" }\n', "")
    (world.playbooks_dir / "notify.toml").write_text(no_secret.replace("URL", f"http://127.0.0.2:{port}/hook"))
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    service = wire(world)
    status, body = await world["alice"].command(world.town_square, "/playbook run notify Status")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    run = next(r for r in runs["items"] if r["name"] == "Status")
    status, body = await world["alice"].command(run["channel_id"], "/playbook check 1.1")
    assert status == 200, body
    await world.settle()
    await retry_due(world, service, 600)
    assert got == []
    text = next(t for t in await bot_texts(world, run["channel_id"]) if "internal address" in t)
    assert "127.0.0.2" in text and "allow_internal" in text and "will not be tried again" in text
    assert [e["type"] for e in await timeline(world, run["id"])] == ["action_failed"]


async def test_the_sweep_reads_runs_in_chunks(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import handlers.actions as actions_module
    from handlers.status import post_update
    from storage import runs as run_rows

    monkeypatch.setattr(actions_module, "SWEEP_CHUNK", 1)
    jira = FakeJira()
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    await start_incident(world)
    await start_incident(world, "/playbook run incident Cache down")
    _, listed = await world.runs_json("alice")
    first, second = (next(r for r in listed["items"] if r["name"] == name) for name in ("Database down", "Cache down"))
    bot = world.bot.ctx
    assert bot is not None
    bot.run_events.remove(service)
    for run in (first, second):
        view = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
        assert view is not None and await post_update(bot, view.run, world["alice"].id, f"lost {run['id']}", 0, False)
    await world.settle()
    bot.run_events.append(service)
    world.clock.advance(61)
    assert await service.sweep() == 2
    await retry_due(world, service, 0)
    assert sorted(text for _, text in jira.comments) == sorted(
        f"Update from alice: lost {run['id']}" for run in (first, second))


async def test_a_comment_waits_as_long_as_the_create_is_retried(world: World) -> None:
    """Jira answers the create 429 with Retry-After 120 s three times: the comment waits all along (its waits
    spend no attempts, so it does not give up after its own backoff of about 85 s) and lands once the issue is
    made; the channel hears of the 429 only."""
    jira = FakeJira()
    jira.fail = [IntegrationError("Jira", "Too Many Requests", status=429, retry_after_s=120)] * 3
    service = wire(world, jira, FakeZoom(), FakePagerDuty([]))
    run = await start_incident(world)
    bot = world.bot.ctx
    assert bot is not None
    from handlers.status import post_update
    from storage import runs as run_rows
    view = await bot.db.run(run_rows.load_view, run["id"], readonly=True)
    assert view is not None and await post_update(bot, view.run, world["alice"].id, "still down", 0, False)
    await world.settle()
    for _ in range(20):
        await retry_due(world, service, 30)
    assert [i["key"] for i in jira.issues] == ["OPS-1"]
    assert jira.comments == [("OPS-1", "Update from alice: still down")]
    warnings = [t for t in await bot_texts(world, run["channel_id"]) if t.startswith(":warning:")]
    assert len(warnings) == 1 and "Too Many Requests" in warnings[0] and "jira.create_issue" in warnings[0]
