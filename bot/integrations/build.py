"""`build_integrations(settings)`: the configured vendor clients, None for each service not configured."""
from __future__ import annotations

import time

from bot.config import Settings
from bot.integrations import CheckResult, Integrations
from bot.integrations.http import Now
from bot.integrations.jira import JiraClient
from bot.integrations.opsgenie import OpsgenieClient
from bot.integrations.pagerduty import PagerDutyClient
from bot.integrations.zoom import ZoomClient


def build_integrations(settings: Settings, *, now: Now = time.time) -> Integrations:
    out = Integrations()
    j, z, p, o = settings.jira, settings.zoom, settings.pagerduty, settings.opsgenie
    if j.configured:
        jira = JiraClient(url=j.url, email=j.email, api_token=j.api_token, cloud_id=j.cloud_id,
                          access_token=j.access_token, now=now)
        out.jira = jira
        out.closers.append(jira)
    if z.configured:
        zoom = ZoomClient(account_id=z.account_id, client_id=z.client_id, client_secret=z.client_secret, host=z.host,
                          api_url=z.api_url, oauth_url=z.oauth_url, now=now)
        out.zoom = zoom
        out.closers.append(zoom)
    if p.configured:
        pagerduty = PagerDutyClient(api_token=p.api_token, api_url=p.api_url, events_url=p.events_url,
                                    routing_keys=dict(p.routing_keys), from_email=p.from_email, now=now)
        out.pagerduty = pagerduty
        out.closers.append(pagerduty)
    if o.configured:
        opsgenie = OpsgenieClient(api_key=o.api_key, api_url=o.api_url, now=now)
        out.opsgenie = opsgenie
        out.closers.append(opsgenie)
    return out


async def close_integrations(integrations: Integrations) -> None:
    for closer in integrations.closers:
        close = getattr(closer, "close", None)
        if close is not None:
            await close()


async def check_integrations(integrations: Integrations) -> list[CheckResult]:
    """One CheckResult per configured service, in a fixed order (`python -m bot check`)."""
    results: list[CheckResult] = []
    if integrations.jira is not None:
        results.append(await integrations.jira.check())
    if integrations.zoom is not None:
        results.append(await integrations.zoom.check())
    if integrations.pagerduty is not None:
        results.append(await integrations.pagerduty.check())
    if integrations.opsgenie is not None:
        results.append(await integrations.opsgenie.check())
    return results
