"""`/playbook settings` and the daily/weekly digest DM: once a day per person, however often the job runs."""
from __future__ import annotations

from datetime import datetime, timezone

from handlers.digests import DigestService
from tests.e2e.conftest import World
from tests.e2e.test_commands import type_
from tests.e2e.test_run_start import start_incident
from tests.e2e.test_status_updates import dm_texts


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


async def digests_of(world: World, name: str) -> list[str]:
    return [t for t in await dm_texts(world, name) if "Playbooks digest" in t]


async def round_(world: World, service: DigestService | None = None) -> int:
    sent = await (service or world.bot.digests).run_due()
    await world.settle()
    return sent


async def test_settings_show_change_and_refuse_bad_input(world: World) -> None:
    text = await type_(world, "bob", world.town_square, "/playbook settings")
    assert "Daily digest: **on**" in text and "Weekly digest: **on**" in text and "09:00 UTC" in text
    text = await type_(world, "bob", world.town_square, "/playbook settings digest off")
    assert "Daily digest turned **off**" in text and "Daily digest: **off**" in text
    text = await type_(world, "bob", world.town_square, "/playbook settings weekly-digest OFF")
    assert "Weekly digest: **off**" in text
    assert "Daily digest: **off**" in await type_(world, "bob", world.town_square, "/playbook settings")
    # Each person's own: alice's are untouched.
    assert "Daily digest: **on**" in await type_(world, "alice", world.town_square, "/playbook settings")
    text = await type_(world, "bob", world.town_square, "/playbook settings digest maybe")
    assert "I did not understand `digest maybe`" in text and "Usage: `/playbook settings" in text


async def test_one_digest_a_day_only_for_those_who_want_it(world: World) -> None:
    world.clock.set(at("2026-03-03T08:00"))  # a Tuesday, before the digest hour (9 by default)
    await start_incident(world)  # alice owns item 1.1; the first status update is due at 08:30
    await type_(world, "bob", world.town_square, "/playbook settings digest off")
    assert await round_(world) == 0  # not yet 09:00

    world.clock.set(at("2026-03-03T09:30"))  # the update is overdue: alice, bob and carol have news
    assert await round_(world) == 2
    # The job again, and a second bot process on the same database: nobody hears twice.
    assert await round_(world) == 0
    assert await round_(world, DigestService(world.bot.ctx)) == 0
    [alice] = await digests_of(world, "alice")
    assert "daily Playbooks digest" in alice and "Acknowledge the page" in alice
    assert "Overdue status updates" in alice and "Database down" in alice
    assert len(await digests_of(world, "carol")) == 1
    assert await digests_of(world, "bob") == []  # he turned it off
    assert await digests_of(world, "dave") == []  # nothing to report

    world.clock.set(at("2026-03-04T09:05"))  # Wednesday: one more each
    assert await round_(world) == 2
    assert await round_(world) == 0
    assert len(await digests_of(world, "alice")) == 2

    # Monday: the weekly digest, which bob kept on, instead of the daily one: still one message each.
    await type_(world, "carol", world.town_square, "/playbook settings weekly-digest off")
    world.clock.set(at("2026-03-09T09:00"))
    assert await round_(world) == 3
    assert await round_(world) == 0
    [bob] = await digests_of(world, "bob")
    assert "weekly Playbooks digest" in bob and "Overdue status updates" in bob
    assert "weekly Playbooks digest" in (await digests_of(world, "alice"))[-1]
    carol = await digests_of(world, "carol")
    assert len(carol) == 3 and "daily Playbooks digest" in carol[-1]  # her daily one stands in

    # Both off: not even on Monday.
    await type_(world, "carol", world.town_square, "/playbook settings digest off")
    world.clock.set(at("2026-03-16T09:00"))
    assert await round_(world) == 2
    assert len(await digests_of(world, "carol")) == 3


def test_the_next_wake_up_is_the_digest_hour() -> None:
    from types import SimpleNamespace

    from bot.clock import FakeClock

    ctx = SimpleNamespace(settings=SimpleNamespace(digests=SimpleNamespace(hour=9)), clock=FakeClock())
    service = DigestService(ctx)  # type: ignore[arg-type]
    assert service.next_due(at("2026-03-03T08:59")) == at("2026-03-03T09:00")
    assert service.next_due(at("2026-03-03T09:00")) == at("2026-03-04T09:00")
    assert DigestService(ctx, hour=0).next_due(at("2026-03-03T23:59")) == at("2026-03-04T00:00")  # type: ignore[arg-type]
