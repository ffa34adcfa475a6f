"""Run properties in the web view: a run's overview shows them with links to the runs sharing a value,
the runs list filters by one (and offers the playbook's select properties), and insights break runs down
by each select property with bars linking to the filtered list."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.conftest import ONBOARDING, World
from tests.e2e.test_properties import PROPS
from tests.e2e.test_web_runs import get, run_links


@pytest.fixture
def world_options() -> dict[str, Any]:
    return {"bot_roles": "system_user system_admin", "playbooks": {"incident": PROPS, "onboarding": ONBOARDING}}


async def _run(world: World, text: str) -> dict[str, Any]:
    status, body = await world["alice"].command(world.town_square, f"/playbook run incident {text}")
    assert status == 200, body
    await world.settle()
    status, runs = await world.runs_json("alice")
    assert status == 200, runs
    name = text.split(" --")[0]
    return next(r for r in runs["items"] if r["name"] == name)


async def test_properties_on_the_run_page_in_the_list_filter_and_in_insights(world: World) -> None:
    down = await _run(world, "Checkout down --property severity=sev1 --property services=db,api")
    slow = await _run(world, "Slow search --property severity=sev3 --property services=api")
    plain = await _run(world, "Quiet one")
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Acme")
    assert status == 200, body
    await world.settle()
    alice = await world.browser("alice")

    status, html = await get(alice, world, f"/runs/{down['id']}")
    assert status == 200
    assert "Severity" in html and "Services" in html
    assert 'href="/runs?status=all&amp;property=severity%3Asev1">sev1</a>' in html
    assert 'property=services%3Adb">db</a>' in html and 'property=services%3Aapi">api</a>' in html
    status, html = await get(alice, world, f"/runs/{plain['id']}")
    assert 'id="property-severity"><span class="muted">not set</span>' in html

    status, html = await get(alice, world, "/runs?status=all")
    assert 'id="property-filter"' in html and 'value="severity:sev2"' in html and 'value="services:db"' in html
    status, html = await get(alice, world, "/runs?status=all&property=" + quote("severity:sev1"))
    assert status == 200 and run_links(html) == {down["id"]}
    assert 'value="severity:sev1" selected' in html
    status, html = await get(alice, world, "/runs?status=all&property=" + quote("services:api"))
    assert run_links(html) == {down["id"], slow["id"]}  # a multiselect: its members
    status, html = await get(alice, world, "/runs?status=all&property=" + quote("services:ap"))
    assert run_links(html) == set()
    # A filter no form sends is refused with a message, and the CSV follows the filter.
    status, html = await get(alice, world, "/runs?property=severity")
    assert status == 400 and "property" in html
    async with alice.get(f"{world.bot.url}/runs.csv?status=all&property=" + quote("severity:sev3")) as r:
        text = await r.text()
    assert "Slow search" in text and "Checkout down" not in text

    status, html = await get(alice, world, "/insights")
    assert status == 200
    assert 'id="h-property-severity">Runs by Severity' in html and "Runs by Services" in html
    assert 'href="/runs?property=severity%3Asev1&amp;status=all"' in html
    assert 'href="/runs?property=services%3Aapi&amp;status=all"' in html
    assert 'id="unset-severity">1 run without a Severity' in html
    assert "Runs by Note" not in html


async def test_no_property_filter_without_properties(world: World) -> None:
    status, body = await world["alice"].command(world.town_square, "/playbook run onboarding Acme")
    assert status == 200, body
    await world.settle()
    alice = await world.browser("alice")
    status, html = await get(alice, world, "/runs")
    assert status == 200 and 'id="property-filter"' not in html
    status, html = await get(alice, world, "/insights")
    assert status == 200 and "h-property-" not in html
