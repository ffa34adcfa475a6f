"""The Zoom client against the Zoom stand-in: S2S token cached for its lifetime, meetings, errors."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import AsyncIterator

import pytest

from bot.integrations import IntegrationError
from bot.integrations.zoom import ZoomClient
from standins.zoom import ZoomStandIn


class Time:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def zoom() -> AsyncIterator[tuple[ZoomStandIn, ZoomClient, Time]]:
    clock = Time()
    standin = ZoomStandIn(users=["host@example.com"], now=clock)
    async with standin.serve() as url:
        client = ZoomClient(account_id=standin.account_id, client_id=standin.client_id,
                            client_secret=standin.client_secret, host="host@example.com", api_url=f"{url}/v2",
                            oauth_url=f"{url}/oauth/token", now=clock)
        yield standin, client, clock
        await client.close()


async def test_one_token_for_two_meetings_and_a_new_one_after_expiry(zoom: tuple[ZoomStandIn, ZoomClient, Time]
                                                                      ) -> None:
    standin, client, clock = zoom
    first, second = await asyncio.gather(client.create_meeting(topic="Outage", agenda="a", host=""),
                                         client.create_meeting(topic="Outage 2", agenda="", host="host@example.com"))
    assert standin.tokens_issued == 1 and first.id != second.id
    assert first.join_url == standin.meetings[int(first.id)]["join_url"]
    token_request = standin.sent("POST", "/oauth/token")[0]
    assert token_request.body == {"grant_type": "account_credentials", "account_id": standin.account_id}
    assert token_request.headers["Authorization"].startswith("Basic ")
    meeting = standin.meetings[int(first.id)]
    assert meeting["topic"] == "Outage" and meeting["settings"]["join_before_host"] is True
    clock.now += 3599 - 30  # within the last minute of its hour: fetched anew before it runs out
    await client.create_meeting(topic="Later", agenda="", host="")
    assert standin.tokens_issued == 2


async def test_a_revoked_token_is_replaced_once(zoom: tuple[ZoomStandIn, ZoomClient, Time]) -> None:
    standin, client, _ = zoom
    await client.create_meeting(topic="x", agenda="", host="")
    standin.tokens.clear()  # revoked (or the app's secret rotated): 401 code 124
    await client.create_meeting(topic="y", agenda="", host="")
    assert standin.tokens_issued == 2 and len(standin.meetings) == 2
    standin.faults.add("/v2/users", 401, times=2)
    with pytest.raises(IntegrationError) as caught:
        await client.create_meeting(topic="z", agenda="", host="")
    assert caught.value.status == 401 and "Invalid access token. (code 124)" in caught.value.message
    assert standin.tokens_issued == 3 and len(standin.meetings) == 2


async def test_bad_credentials_and_unknown_host(zoom: tuple[ZoomStandIn, ZoomClient, Time]) -> None:
    standin, client, clock = zoom
    with pytest.raises(IntegrationError) as caught:
        await client.create_meeting(topic="x", agenda="", host="nobody@example.com")
    assert caught.value.status == 404 and "User does not exist" in caught.value.message and \
        "code 1001" in caught.value.message and "[zoom] host" in caught.value.hint
    bad = ZoomClient(account_id=standin.account_id, client_id=standin.client_id, client_secret="wrong",
                     api_url=f"{standin.url}/v2", oauth_url=f"{standin.url}/oauth/token", now=clock)
    try:
        result = await bad.check()
        assert not result.ok and "Invalid client_id or client_secret" in result.detail and "client_secret" in \
            result.detail
    finally:
        await bad.close()
    standin.faults.add("/v2/users", 403)
    with pytest.raises(IntegrationError) as caught:
        await client.create_meeting(topic="x", agenda="", host="")
    assert caught.value.status == 403 and "scope" in caught.value.hint


async def test_429_500_and_garbled(zoom: tuple[ZoomStandIn, ZoomClient, Time]) -> None:
    standin, client, _ = zoom
    standin.faults.add("/v2/users", 429, retry_after="3")
    with pytest.raises(IntegrationError) as caught:
        await client.create_meeting(topic="x", agenda="", host="")
    assert caught.value.status == 429 and caught.value.retry_after_s == 3.0 and "per-second" in caught.value.message
    standin.faults.add("/v2/users", 500)
    with pytest.raises(IntegrationError) as caught:
        await client.create_meeting(topic="x", agenda="", host="")
    assert caught.value.retryable and caught.value.status == 500
    standin.faults.add("/v2/users", 201, body="{not json")
    with pytest.raises(IntegrationError) as caught:
        await client.create_meeting(topic="x", agenda="", host="")
    assert "not JSON" in caught.value.message
    assert not standin.meetings


async def test_the_daily_cap_gives_an_iso_retry_after(zoom: tuple[ZoomStandIn, ZoomClient, Time]) -> None:
    standin, client, clock = zoom
    clock.now = 1_800_000_000.0 - (1_800_000_000.0 % 86400) + 86400 - 3600  # 23:00 UTC
    day = datetime.fromtimestamp(clock.now, tz=timezone.utc).strftime("%Y-%m-%d")
    standin._creates[("host@example.com", day)] = 100
    with pytest.raises(IntegrationError) as caught:
        await client.create_meeting(topic="x", agenda="", host="")
    assert caught.value.status == 429 and caught.value.retry_after_s == 3600.0


async def test_check_names_the_host(zoom: tuple[ZoomStandIn, ZoomClient, Time]) -> None:
    _, client, _ = zoom
    result = await client.check()
    assert result.ok and "host@example.com" in result.detail
