"""Alerts start runs, end to end: vendors' deliveries (as scripts/send_alert.py makes them, with their real
authentication) to the real bot against the sandbox; the runs, channels and posts read back through
Mattermost's API and the bot's.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp
from scripts import send_alert
from storage import alerts as alert_rows
from storage.models import AlertDelivery
from tests.e2e.conftest import INCIDENT, World

ROUTES = """
[[alerts]]
source = "alertmanager"
match = { labels = { severity = "critical" }, labels_regex = { service = "check.*|pay.*" } }
name = "{{ alert.labels.alertname }} on {{ alert.labels.service }}"
members = ["dave"]
finish_on_resolve = true

[[alerts]]
source = "grafana"

[[alerts]]
source = "pagerduty"
match = { urgency = "high" }
owner = "bob"

[[alerts]]
source = "opsgenie"
match = { tags = ["prod"], priority = ["P1", "P2"] }
"""

AM_TOKEN = "am-token-0123456789"
GRAFANA_SECRET = "grafana-hmac-secret"
TS_HEADER = "X-Grafana-Alert-Timestamp"
PD_SECRETS = ["pd-secret-new", "pd-secret-newer"]
OG_SECRET = "og-shared-secret"


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": INCIDENT + ROUTES},
            "env": {"BOT_ALERTS_ALERTMANAGER_TOKEN": AM_TOKEN, "BOT_ALERTS_GRAFANA_HMAC_SECRET": GRAFANA_SECRET,
                    "BOT_ALERTS_GRAFANA_TIMESTAMP_HEADER": TS_HEADER,
                    "BOT_ALERTS_PAGERDUTY_SECRETS": ",".join(PD_SECRETS), "BOT_ALERTS_OPSGENIE_SECRET": OG_SECRET}}


async def deliver(world: World, source: str, payload: dict[str, Any] | bytes, url: str = "", **auth: Any
                  ) -> tuple[int, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = send_alert.auth_headers(source, body, **auth)
    async with world.admin.session.post(f"{url or world.bot.url}/hooks/alerts/{source}", data=body,
                                        headers=headers) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def runs(world: World, who: str = "alice") -> list[dict[str, Any]]:
    await world.settle()
    status, body = await world.runs_json(who)
    assert status == 200, body
    return list(body["items"])


def alert_posts(posts: list[dict[str, Any]]) -> list[str]:
    return [p["message"] for p in posts if "playbooks_alert" in (p.get("props") or {})]


async def deliveries(world: World) -> list[AlertDelivery]:
    assert world.bot.ctx is not None
    return await world.bot.ctx.db.run(alert_rows.all_deliveries, readonly=True)


async def test_an_alertmanager_alert_delivered_three_times_starts_one_run_and_its_resolution_finishes_it(
        world: World) -> None:
    firing = send_alert.alertmanager("HighLatency", labels={"service": "checkout"})
    answers = [await deliver(world, "alertmanager", firing, token=AM_TOKEN) for _ in range(3)]
    assert [a[0] for a in answers] == [202, 200, 200], answers
    assert [a[1]["result"] for a in answers] == ["started", "duplicate", "duplicate"]
    started = await runs(world)
    assert [r["name"] for r in started] == ["HighLatency on checkout"]
    run = started[0]
    assert answers[0][1]["run_id"] == run["id"]
    assert run["owner_id"] == world["alice"].id  # the playbook's owner: the route names none
    assert world["dave"].id in run["participant_ids"]  # the route's members join the playbook's
    assert any(e["type"] == "run_started" and "alert from Alertmanager: HighLatency" in e["summary"]
               for e in run["timeline"])
    posts = alert_posts(await world.posts(run["channel_id"]))
    assert len(posts) == 1 and "HighLatency" in posts[0] and "checkout" in posts[0] and "started this run" in posts[0]

    # A second firing delivery of the same group (a new alert joined it) goes to the open run.
    again = send_alert.alertmanager("HighLatency", labels={"service": "checkout"}, starts_at="2026-12-01T10:05:00Z")
    status, body = await deliver(world, "alertmanager", again, token=AM_TOKEN)
    assert (status, body) == (202, {"result": "posted", "run_id": run["id"]})
    assert len(await runs(world)) == 1
    assert len(alert_posts(await world.posts(run["channel_id"]))) == 2

    resolved = send_alert.alertmanager("HighLatency", "resolved", labels={"service": "checkout"})
    for expected in (202, 200):  # and its retry changes nothing
        status, body = await deliver(world, "alertmanager", resolved, token=AM_TOKEN)
        assert status == expected, body
    await world.settle()
    status, after = await world.run_json(run["id"])
    assert after["status"] == "finished"
    posts = alert_posts(await world.posts(run["channel_id"]))
    assert len(posts) == 3 and "resolved" in posts[2]

    # The run is over: the group's next firing starts a new one.
    status, body = await deliver(world, "alertmanager", again | {"alerts": [
        a | {"startsAt": "2026-12-01T11:00:00Z"} for a in again["alerts"]]}, token=AM_TOKEN)
    assert (status, body["result"]) == (202, "started"), body
    assert body["run_id"] != run["id"]


async def test_grafana_with_a_signed_timestamp_starts_a_run_and_a_stale_one_is_refused(world: World) -> None:
    now_s = world.clock.now_ms() // 1000
    payload = send_alert.grafana("DiskFull")
    stale = await deliver(world, "grafana", payload, hmac_secret=GRAFANA_SECRET, timestamp_header=TS_HEADER,
                          timestamp=now_s - 3600)
    assert stale[0] == 401 and "away from now" in stale[1]["error"]
    wrong = await deliver(world, "grafana", payload, hmac_secret="not-it", timestamp_header=TS_HEADER,
                          timestamp=now_s)
    assert wrong[0] == 401 and "does not match" in wrong[1]["error"]
    unsigned_ts = await deliver(world, "grafana", payload, hmac_secret=GRAFANA_SECRET, timestamp=now_s)
    assert unsigned_ts[0] == 401 and TS_HEADER in unsigned_ts[1]["error"]
    assert await runs(world) == [] and await deliveries(world) == []
    status, body = await deliver(world, "grafana", payload, hmac_secret=GRAFANA_SECRET, timestamp_header=TS_HEADER,
                                 timestamp=now_s)
    assert (status, body["result"]) == (202, "started"), body
    assert [r["name"] for r in await runs(world)] == ["DiskFull"]


async def test_pagerduty_with_two_signatures_during_a_rotation_starts_a_run(world: World) -> None:
    payload = send_alert.pagerduty("Checkout is down", incident="Q1TESTINCIDENT")
    # One signature from a secret the bot no longer knows, one from a current one: accepted.
    status, body = await deliver(world, "pagerduty", payload, secrets=["pd-secret-retired", PD_SECRETS[1]],
                                 webhook_id="wh-1")
    assert (status, body["result"]) == (202, "started"), body
    status, body = await deliver(world, "pagerduty", payload, secrets=[PD_SECRETS[0]], webhook_id="wh-1")
    assert (status, body["result"]) == (200, "duplicate")  # PagerDuty's retry: same X-Webhook-Id
    started = await runs(world, "bob")
    assert [r["name"] for r in started] == ["Checkout is down"]
    assert started[0]["owner_id"] == world["bob"].id  # the route's owner
    status, body = await deliver(world, "pagerduty", payload, secrets=["pd-secret-retired"], webhook_id="wh-2")
    assert status == 401 and "pagerduty_secrets" in body["error"]
    low = send_alert.pagerduty("Slow page", urgency="low")
    status, body = await deliver(world, "pagerduty", low, secrets=PD_SECRETS[:1])
    assert (status, body) == (200, {"result": "no route"})
    assert len(await runs(world, "bob")) == 1


async def test_opsgenie_with_its_shared_header_starts_a_run(world: World) -> None:
    payload = send_alert.opsgenie("DB replica lag", alert_id="og-alert-1")
    status, body = await deliver(world, "opsgenie", payload, header="X-Opsgenie-Secret", secrets=["wrong"])
    assert status == 401, body
    status, body = await deliver(world, "opsgenie", payload, header="X-Opsgenie-Secret", secrets=[OG_SECRET])
    assert (status, body["result"]) == (202, "started"), body
    closed = send_alert.opsgenie("DB replica lag", "resolved", alert_id="og-alert-1")
    status, body = await deliver(world, "opsgenie", closed, header="X-Opsgenie-Secret", secrets=[OG_SECRET])
    assert (status, body["result"]) == (202, "posted"), body
    started = await runs(world)
    assert [(r["name"], r["status"]) for r in started] == [("DB replica lag", "in_progress")]  # no finish_on_resolve
    assert len(alert_posts(await world.posts(started[0]["channel_id"]))) == 2


async def test_bad_auth_and_bad_bodies_are_refused_and_change_nothing(world: World) -> None:
    firing = send_alert.alertmanager("HighLatency", labels={"service": "checkout"})
    assert (await deliver(world, "alertmanager", firing))[0] == 401  # no Authorization
    assert (await deliver(world, "alertmanager", firing, token="wrong-token"))[0] == 401
    assert (await deliver(world, "alertmanager", firing, user="am", password="pw"))[0] == 401
    status, body = await deliver(world, "alertmanager", b"{not json", token=AM_TOKEN)
    assert (status, body["error"]) == (400, "The body is not JSON.")
    status, body = await deliver(world, "alertmanager", firing | {"status": "burning"}, token=AM_TOKEN)
    assert status == 400 and "`status`" in body["error"]
    status, body = await deliver(world, "alertmanager", firing | {"alerts": []}, token=AM_TOKEN)
    assert status == 400 and "`alerts`" in body["error"]
    status, body = await deliver(world, "pagerduty", {"event": "x"}, secrets=PD_SECRETS)
    assert status == 400 and "`event`" in body["error"]
    status, body = await deliver(world, "alertmanager", b"{" + b" " * (1024 * 1024) + b"}", token=AM_TOKEN)
    assert status == 413, body
    status, body = await deliver(world, "nagios", firing)
    assert status == 404, body
    assert await runs(world) == [] and await deliveries(world) == []


async def test_a_source_without_credentials_refuses_every_delivery(world: World) -> None:
    assert world.bot.ctx is not None
    ctx = world.bot.ctx
    ctx.settings = replace(ctx.settings, alerts=replace(ctx.settings.alerts, alertmanager_token=""))
    status, body = await deliver(world, "alertmanager", send_alert.alertmanager("X"), token=AM_TOKEN)
    assert status == 403 and "not set up" in body["error"]
    assert await deliveries(world) == []


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_two_bot_processes_receiving_the_same_delivery_start_one_run(world: World, database: str,
                                                                         request: pytest.FixtureRequest) -> None:
    settings = world.bot.settings
    if database == "postgresql":  # a real PostgreSQL (tests/pg.py), each process with its own engine
        pg_url = request.getfixturevalue("pg_url")
        await world.bot.stop()
        settings = replace(settings, storage=replace(settings.storage, url=pg_url))
        world.bot = await BotApp(settings, clock=world.clock).start()
    second = await BotApp(settings, clock=world.clock).start()  # the same database
    try:
        firing = send_alert.alertmanager("PaymentsDown", labels={"service": "payments"})
        answers = await asyncio.gather(*(deliver(world, "alertmanager", firing, url=url, token=AM_TOKEN)
                                         for url in (world.bot.url, second.url) * 3))
        assert sorted(a[1]["result"] for a in answers) == ["duplicate"] * 5 + ["started"], answers
        # Two different deliveries of one group at once: one starts the run, the other goes to it.
        later = send_alert.alertmanager("PaymentsDown", labels={"service": "payments"},
                                        starts_at="2026-12-01T10:09:00Z")
        more = send_alert.alertmanager("PaymentsDown", labels={"service": "payments", "pod": "b"},
                                       starts_at="2026-12-01T10:10:00Z")
        assert second.ctx is not None
        await second.ctx.tasks.drain()
        started = await runs(world)
        assert [r["name"] for r in started] == ["PaymentsDown on payments"]
        answers = await asyncio.gather(deliver(world, "alertmanager", later, url=world.bot.url, token=AM_TOKEN),
                                       deliver(world, "alertmanager", more, url=second.url, token=AM_TOKEN))
        assert [a[1] for a in answers] == [{"result": "posted", "run_id": started[0]["id"]}] * 2, answers
        await second.ctx.tasks.drain()
        assert len(await runs(world)) == 1
        assert len(alert_posts(await world.posts(started[0]["channel_id"]))) == 3

        # A new group's two different deliveries at once, one to each process: one run, both posted in it.
        first_alert = send_alert.alertmanager("CartDown", labels={"service": "checkout"})
        second_alert = send_alert.alertmanager("CartDown", labels={"service": "checkout", "pod": "b"},
                                               starts_at="2026-12-01T10:01:00Z")
        answers = await asyncio.gather(deliver(world, "alertmanager", first_alert, url=world.bot.url, token=AM_TOKEN),
                                       deliver(world, "alertmanager", second_alert, url=second.url, token=AM_TOKEN))
        assert sorted(a[1]["result"] for a in answers) == ["posted", "started"], answers
        await second.ctx.tasks.drain()
        cart = [r for r in await runs(world) if r["name"] == "CartDown on checkout"]
        assert len(cart) == 1
        assert len(alert_posts(await world.posts(cart[0]["channel_id"]))) == 2
    finally:
        await second.stop()
        if database == "postgresql":
            await world.bot.stop()


async def test_bot_check_lists_the_sources_and_a_delivery_no_route_matched(world: World, tmp_path: Path) -> None:
    from tests.e2e.test_bot_cli import run_cli

    low = send_alert.pagerduty("Slow page on staging", urgency="low")
    assert await deliver(world, "pagerduty", low, secrets=PD_SECRETS[:1]) == (200, {"result": "no route"})
    s = world.bot.settings
    env = {"BOT_MATTERMOST_URL": world.sb.url, "BOT_MATTERMOST_TOKEN": s.mattermost.token,
           "BOT_PLAYBOOKS_DIR": str(world.playbooks_dir), "BOT_STORAGE_URL": s.storage.url,
           "BOT_ALERTS_PAGERDUTY_SECRETS": "x"}
    code, out, err = await run_cli("check", cwd=tmp_path, env=env)
    assert "[note] alerts from pagerduty: credentials set; 1 route in playbooks" in out, out + err
    assert "[note] alerts from alertmanager: NO credentials in [alerts]: every delivery is refused; 1 route" in out
    assert "alert from pagerduty at " in out and "matched no [[alerts]] route: 'Slow page on staging'" in out


async def test_a_crash_after_the_answer_is_resumed_by_another_process(world: World,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import alerts as alert_handlers
    from handlers.runs import LEASE_MS

    async def crashed(*_args: Any) -> None:  # the process answered, then died before starting anything
        return None

    monkeypatch.setattr(alert_handlers, "_carry", crashed)
    firing = send_alert.alertmanager("CrashyAlert", labels={"service": "checkout"})
    status, body = await deliver(world, "alertmanager", firing, token=AM_TOKEN)
    assert (status, body["result"]) == (202, "started")
    assert await runs(world) == []  # recorded, not started
    monkeypatch.undo()
    second = await BotApp(world.bot.settings, clock=world.clock).start()
    try:
        assert second.ctx is not None
        world.clock.advance(LEASE_MS + 1)  # the first process's lease runs out
        assert await second.ctx.jobs["run-starts"].run_due() == 1  # type: ignore[attr-defined]
        await second.ctx.tasks.drain()
        # Its start-up look found the run still starting; the post waits for the next look.
        world.clock.advance(alert_handlers.RETRY_MS + 1)
        assert await second.ctx.jobs["alert-posts"].run_due() == 1  # type: ignore[attr-defined]
        started = await runs(world)
        assert [(r["id"], r["status"]) for r in started] == [(body["run_id"], "in_progress")]
        assert len(alert_posts(await world.posts(started[0]["channel_id"]))) == 1
        # The vendor's retry still finds it.
        assert (await deliver(world, "alertmanager", firing, token=AM_TOKEN))[1] == {"result": "duplicate"}
    finally:
        await second.stop()


# Routes that cannot all be used: an owner outside the team, a bot as owner; the playbook's runs go into an
# existing channel.
ROOM = """
title = "Ops room"
team = "eng"
owner = "alice"
channel_mode = "existing"
channel = "ops-room"

[[alerts]]
source = "alertmanager"
match = { labels = { route = "outsider" } }
owner = "outsider"

[[alerts]]
source = "alertmanager"
match = { labels = { route = "bot" } }
owner = "playbooks"

[[alerts]]
source = "alertmanager"
match = { labels = { route = "room" } }
members = ["outsider", "bob"]

[[checklists]]
title = "Steps"
  [[checklists.items]]
  title = "Look"
"""


async def room_playbook(world: World) -> str:
    """The "Ops room" playbook loaded, its channel made (alice in it), someone outside the team: the room's id."""
    status, channel, _ = await world["alice"].api.post("/channels", {
        "team_id": world.team_id, "name": "ops-room", "display_name": "Ops room", "type": "O"})
    assert status == 201, channel
    status, user, _ = await world.admin.post("/users", {"username": "outsider", "email": "outsider@example.com",
                                                        "password": "Password1!"})
    assert status == 201, user
    (world.playbooks_dir / "room.toml").write_text(ROOM)
    assert world.bot.ctx is not None and world.bot.ctx.library is not None
    await world.bot.ctx.library.check_now()
    assert "room" in world.bot.ctx.playbooks
    return str(channel["id"])


async def test_an_alert_route_into_an_existing_channel_starts_the_run_there(world: World) -> None:
    room = await room_playbook(world)
    firing = send_alert.alertmanager("QueueBacklog", labels={"route": "room"})
    status, body = await deliver(world, "alertmanager", firing, token=AM_TOKEN)
    assert (status, body["result"]) == (202, "started"), body
    started = await runs(world)
    assert [(r["name"], r["channel_id"]) for r in started] == [("QueueBacklog", room)], started
    # Its members: bob joins; the one outside the team is left out (he could not be added).
    assert world["bob"].id in started[0]["participant_ids"]
    assert len(alert_posts(await world.posts(room))) == 1


async def test_an_unusable_route_is_recorded_answered_200_and_listed_by_check(world: World) -> None:
    from bot.__main__ import _alerts_report

    await room_playbook(world)
    outsider = send_alert.alertmanager("NodeDown", labels={"route": "outsider"})
    status, body = await deliver(world, "alertmanager", outsider, token=AM_TOKEN)
    assert status == 200 and body["result"] == "unusable", body
    assert 'owner "@outsider" is not a member of the team "eng"' in body["error"], body
    bot_owned = send_alert.alertmanager("DiskSlow", labels={"route": "bot"})
    status, body = await deliver(world, "alertmanager", bot_owned, token=AM_TOKEN)
    assert status == 200 and body["result"] == "unusable", body
    assert 'owner "@playbooks" is a bot account' in body["error"], body
    assert await runs(world) == []
    # The vendor's repeat is not a "duplicate": once the route is mended, it starts the run.
    status, body = await deliver(world, "alertmanager", outsider, token=AM_TOKEN)
    assert (status, body["result"]) == (200, "unusable"), body
    rows = sorted((d.outcome, d.title, d.playbook_id) for d in await deliveries(world))
    assert rows == [("unusable", "DiskSlow", "room"), ("unusable", "NodeDown", "room"),
                    ("unusable", "NodeDown", "room")], rows
    report = _alerts_report(world.bot.settings, list(world.bot.ctx.playbooks.values()))  # type: ignore[union-attr]
    listed = [line for line in report if "started no run" in line]
    assert len(listed) == 3, report
    assert any("'NodeDown'" in line and "is not a member of the team" in line for line in listed), report
