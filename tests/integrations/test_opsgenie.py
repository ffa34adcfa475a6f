"""The Opsgenie client against the Opsgenie stand-in: who is on call, alerts by alias, errors."""
from __future__ import annotations

from typing import AsyncIterator

import pytest

from bot.integrations import IntegrationError
from bot.integrations.opsgenie import OpsgenieClient
from standins.opsgenie import OpsgenieStandIn


@pytest.fixture
async def og() -> AsyncIterator[tuple[OpsgenieStandIn, OpsgenieClient]]:
    standin = OpsgenieStandIn(api_keys={"og-key": True, "integration-key": False}, teams=["ops"])
    async with standin.serve() as url:
        client = OpsgenieClient(api_key="og-key", api_url=url, now=lambda: 1_000_000.0)
        yield standin, client
        await client.close()


async def test_oncall_by_id_and_by_name(og: tuple[OpsgenieStandIn, OpsgenieClient]) -> None:
    standin, client = og
    schedule = standin.add_schedule("ops-oncall", ["bob@example.com", "carol@example.com"])
    assert await client.oncall_emails(schedule=schedule.id) == ["bob@example.com", "carol@example.com"]
    assert await client.oncall_emails(schedule="ops-oncall") == ["bob@example.com", "carol@example.com"]
    by_id, by_name = standin.sent("GET", "/v2/schedules")
    assert by_id.query == {"flat": ["true"]}
    assert by_name.query == {"flat": ["true"], "scheduleIdentifierType": ["name"]}
    assert by_id.headers["Authorization"] == "GenieKey og-key"
    with pytest.raises(IntegrationError) as caught:
        await client.oncall_emails(schedule="nope")
    assert caught.value.status == 404 and "No schedule exists with name [nope]" in caught.value.message
    assert "schedule" in caught.value.hint and "(request " in caught.value.message


async def test_alert_created_once_per_alias_and_closed(og: tuple[OpsgenieStandIn, OpsgenieClient]) -> None:
    standin, client = og
    for _ in range(2):
        await client.create_alert(message="Outage", alias="playbooks-run-r1", description="d", priority="P2",
                                  responders=["ops"])
    (alert,) = standin.alerts.values()
    assert alert.count == 2 and alert.body["responders"] == [{"type": "team", "name": "ops"}]
    assert alert.body["priority"] == "P2"
    await client.close_alert(alias="playbooks-run-r1")
    assert alert.status == "closed"
    close = standin.sent("POST", "/v2/alerts/playbooks-run-r1/close")[0]
    assert close.query == {"identifierType": ["alias"]}


async def test_errors_with_took_and_request_id(og: tuple[OpsgenieStandIn, OpsgenieClient]) -> None:
    standin, client = og
    with pytest.raises(IntegrationError) as caught:
        await client.create_alert(message="", alias="a", description="", priority="P9", responders=[])
    assert caught.value.status == 400 and "P1..P5" in caught.value.message and not caught.value.retryable
    assert not standin.sent("POST", "/v2/alerts")  # refused before sending
    standin.faults.add("/v2/alerts", 429, retry_after="")
    with pytest.raises(IntegrationError) as caught:
        await client.create_alert(message="x", alias="a", description="", priority="P1", responders=[])
    assert caught.value.status == 429 and caught.value.retry_after_s == 60.0  # X-RateLimit-Period-In-Sec
    standin.faults.add("/v2/alerts", 500)
    with pytest.raises(IntegrationError) as caught:
        await client.close_alert(alias="a")
    assert caught.value.retryable
    standin.faults.add("/v2/alerts", 202, body="oops")
    with pytest.raises(IntegrationError) as caught:
        await client.close_alert(alias="a")
    assert "not JSON" in caught.value.message
    bad = OpsgenieClient(api_key="wrong", api_url=standin.url)
    try:
        with pytest.raises(IntegrationError) as caught:
            await bad.create_alert(message="x", alias="a", description="", priority="", responders=[])
        assert caught.value.status == 401 and "Could not authenticate" in caught.value.message
        assert "api_key in [opsgenie]" in caught.value.hint
    finally:
        await bad.close()
    assert not standin.alerts


async def test_check_and_a_key_without_configuration_access(og: tuple[OpsgenieStandIn, OpsgenieClient]) -> None:
    standin, client = og
    result = await client.check()
    assert result.ok and "account acme" in result.detail and "2027-04-05" in result.detail
    limited = OpsgenieClient(api_key="integration-key", api_url=standin.url)
    try:
        result = await limited.check()
        # An API integration key (the only kind that may create alerts): paging works, so `bot check` is ok,
        # with a note that on-call lookups will not.
        assert result.ok and "configuration access" in result.detail and "on-call lookups will not" in result.detail
        with pytest.raises(IntegrationError) as caught:
            await limited.oncall_emails(schedule="x")
        assert caught.value.status == 403 and "configuration access" in caught.value.hint
    finally:
        await limited.close()
