"""The PagerDuty client against the PagerDuty stand-in: on-calls paged with users included, Events v2."""
from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp import web

from bot.integrations import IntegrationError
from bot.integrations.pagerduty import PagerDutyClient
from standins.pagerduty import PagerDutyStandIn, send_webhook, sign_webhook, webhook_payload
from tests.conftest import serve

KEY = "R" * 32


@pytest.fixture
async def pd() -> AsyncIterator[tuple[PagerDutyStandIn, PagerDutyClient]]:
    standin = PagerDutyStandIn(api_tokens={"pd-token": "PUSER01", "account-key": None}, routing_keys=[KEY])
    async with standin.serve() as url:
        client = PagerDutyClient(api_token="pd-token", api_url=url, events_url=f"{url}/v2/enqueue",
                                 routing_keys={"default": KEY, "db": KEY}, now=lambda: 1_000_000.0)
        yield standin, client
        await client.close()


async def test_oncall_emails_page_through_and_put_level_one_first(pd: tuple[PagerDutyStandIn, PagerDutyClient]
                                                                   ) -> None:
    standin, client = pd
    for n in range(130):  # two pages of 100
        standin.put_on_call(f"person{n}@example.com", escalation_policy="PEP1", level=2 if n else 1)
    standin.put_on_call("person0@example.com", escalation_policy="PEP1", schedule="PSCHED", level=1)
    standin.put_on_call("elsewhere@example.com", escalation_policy="POTHER")
    emails = await client.oncall_emails(escalation_policy_ids=["PEP1"], schedule_ids=[])
    assert emails[0] == "person0@example.com" and len(emails) == 130 and "elsewhere@example.com" not in emails
    pages = standin.sent("GET", "/oncalls")
    assert [r.query["offset"] for r in pages] == [["0"], ["100"]]
    assert pages[0].query["include[]"] == ["users"] and pages[0].query["escalation_policy_ids[]"] == ["PEP1"]
    assert pages[0].headers["Authorization"] == "Token token=pd-token"
    assert pages[0].headers["Accept"] == "application/vnd.pagerduty+json;version=2"
    assert await client.oncall_emails(escalation_policy_ids=[], schedule_ids=["PSCHED"]) == ["person0@example.com"]


async def test_trigger_and_resolve_share_the_dedup_key(pd: tuple[PagerDutyStandIn, PagerDutyClient]) -> None:
    standin, client = pd
    for _ in range(2):  # a repeat trigger is the same incident
        await client.trigger(routing="default", dedup_key="playbooks-run-r1", summary="Outage", source="bot",
                             severity="critical", link="http://chat/x")
    assert len(standin.alerts) == 1
    alert = standin.alerts[(KEY, "playbooks-run-r1")]
    assert alert.status == "triggered" and len(alert.events) == 2
    assert alert.events[0]["links"] == [{"href": "http://chat/x", "text": "Playbook run"}]
    await client.resolve(routing="db", dedup_key="playbooks-run-r1")
    assert alert.status == "resolved"


async def test_unknown_routing_name_and_bad_severity(pd: tuple[PagerDutyStandIn, PagerDutyClient]) -> None:
    standin, client = pd
    with pytest.raises(IntegrationError) as caught:
        await client.trigger(routing="payments", dedup_key="k", summary="s", source="b", severity="critical", link="")
    assert 'no routing key named "payments" (known: db, default)' in caught.value.message
    assert "[pagerduty.routing_keys] payments" in caught.value.hint and not caught.value.retryable
    with pytest.raises(IntegrationError) as caught:
        await client.trigger(routing="default", dedup_key="k", summary="s", source="b", severity="sev1", link="")
    assert "severity" in caught.value.hint
    assert not standin.sent("POST", "/v2/enqueue")


async def test_the_events_400_shape_reaches_the_message(pd: tuple[PagerDutyStandIn, PagerDutyClient]) -> None:
    standin, client = pd
    client.routing_keys["stale"] = "S" * 32  # removed from PagerDuty since
    with pytest.raises(IntegrationError) as caught:
        await client.trigger(routing="stale", dedup_key="k", summary="s", source="b", severity="info", link="")
    assert caught.value.status == 400 and "Event object is invalid: Invalid routing key" in caught.value.message
    assert "routing_keys" in caught.value.hint


async def test_rest_errors_and_rate_limits(pd: tuple[PagerDutyStandIn, PagerDutyClient]) -> None:
    standin, client = pd
    standin.faults.add("/oncalls", 429, retry_after="12")
    with pytest.raises(IntegrationError) as caught:
        await client.oncall_emails(escalation_policy_ids=["PEP1"], schedule_ids=[])
    assert caught.value.status == 429 and caught.value.retry_after_s == 12.0  # from ratelimit-reset
    assert "Rate Limit Exceeded (code 2020)" in caught.value.message
    standin.faults.add("/v2/enqueue", 429, retry_after="5")
    with pytest.raises(IntegrationError) as caught:
        await client.trigger(routing="default", dedup_key="k", summary="s", source="b", severity="info", link="")
    assert caught.value.retry_after_s == 5.0
    standin.faults.add("/oncalls", 403)
    with pytest.raises(IntegrationError) as caught:
        await client.oncall_emails(escalation_policy_ids=["PEP1"], schedule_ids=[])
    assert caught.value.status == 403 and "Access Denied" in caught.value.message and "read access" in \
        caught.value.hint
    standin.faults.add("/oncalls", 500)
    with pytest.raises(IntegrationError) as caught:
        await client.oncall_emails(escalation_policy_ids=["PEP1"], schedule_ids=[])
    assert caught.value.retryable
    standin.faults.add("/oncalls", 200, body="<html>")
    with pytest.raises(IntegrationError) as caught:
        await client.oncall_emails(escalation_policy_ids=["PEP1"], schedule_ids=[])
    assert "not JSON" in caught.value.message
    client.api_token = "wrong"
    with pytest.raises(IntegrationError) as caught:
        await client.oncall_emails(escalation_policy_ids=["PEP1"], schedule_ids=[])
    assert caught.value.status == 401 and "Authentication failed (code 2006)" in caught.value.message
    assert "api_token in [pagerduty]" in caught.value.hint


async def test_check_with_user_and_account_keys(pd: tuple[PagerDutyStandIn, PagerDutyClient]) -> None:
    _, client = pd
    result = await client.check()
    assert result.ok and "signed in as ops-bot@example.com" in result.detail and "db, default" in result.detail
    client.api_token = "account-key"
    result = await client.check()
    assert result.ok and "account-level API key" in result.detail
    client.api_token = "wrong"
    result = await client.check()
    assert not result.ok and "401" in result.detail


async def test_webhook_sender_signs_the_raw_body() -> None:
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with serve(app) as url:
        status, _ = await send_webhook(f"{url}/hook", webhook_payload(), ["old", "new"], webhook_id="w-1")
    assert status == 202
    headers, body = got[0]
    assert headers["X-Webhook-Id"] == "w-1"
    assert headers["X-PagerDuty-Signature"] == sign_webhook(body, ["old", "new"])
    assert headers["X-PagerDuty-Signature"].count("v1=") == 2
