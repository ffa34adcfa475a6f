"""handlers/sidebar.py over the fake gateway: what a filing writes, what it leaves alone, and what the
starter hears when a filing keeps being undone."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.models import MMCategory
from handlers.sidebar import MAX_WRITES, Placement, file_channel, placement
from tests.handlers.commands_world import Env, make_env


def cat(kind: str, name: str, *channels: str, cid: str = "") -> MMCategory:
    return MMCategory(id=cid or f"{kind}-{name}", user_id="u", team_id="t", type=kind, display_name=name,
                      channel_ids=channels)


FAV, DMS = cat("favorites", "Favorites"), cat("direct_messages", "Direct Messages", "dm1")


def test_a_channel_under_channels_is_taken_out_of_it_in_the_same_write() -> None:
    channels, runs = cat("channels", "Channels", "town", "run"), cat("custom", "Incidents", "old")
    change = placement([FAV, runs, channels, DMS], "run", "Incidents")
    assert change == Placement(updates=(replace(runs, channel_ids=("run", "old")),
                                        replace(channels, channel_ids=("town",))))


def test_every_other_category_holding_it_gives_it_up_but_favorites_keep_it() -> None:
    mine = cat("custom", "Mine", "run")
    twin = cat("custom", "Incidents", "run", cid="second-incidents")  # an older duplicate of the category
    runs = cat("custom", "Incidents", cid="first-incidents")
    change = placement([FAV, runs, mine, twin, cat("channels", "Channels"), DMS], "run", "Incidents")
    assert change is not None and [c.id for c in change.updates] == ["first-incidents", "custom-Mine",
                                                                      "second-incidents"]
    starred = replace(FAV, channel_ids=("run",))
    assert placement([starred, runs, cat("channels", "Channels"), DMS], "run", "Incidents") is None


def test_filed_means_in_the_category_and_nowhere_else() -> None:
    runs, channels = cat("custom", "Incidents", "run"), cat("channels", "Channels", "town")
    assert placement([FAV, runs, channels, DMS], "run", "Incidents") is None
    # Already there but also under Channels (an update of Incidents alone, somewhere): only Channels changes.
    both = replace(channels, channel_ids=("town", "run"))
    assert placement([FAV, runs, both, DMS], "run", "Incidents") == Placement(updates=(channels,))
    # No category of that name (names are exact, as Mattermost keeps them): it is created with the channel.
    assert placement([FAV, cat("custom", "incidents"), channels, DMS], "run", "Incidents") == Placement(create=True)


@pytest.fixture
async def env(tmp_path: Path) -> Env:
    return await make_env(tmp_path)


async def test_a_filing_undone_every_time_is_reported_to_the_starter(env: Env) -> None:
    gw = env.gw
    bob = env.users["bob"]
    writes = 0
    create = gw.create_category

    async def undone_create(user_id: str, team_id: str, name: str, channel_ids: list[str]) -> Any:
        nonlocal writes
        made = await create(user_id, team_id, name, channel_ids)
        if user_id == bob.id:
            writes += 1
            gw.world.categories[(user_id, team_id)] = [c for c in gw.world.categories[(user_id, team_id)]
                                                       if c.id != made.id]
        return made

    async def undone_update(user_id: str, team_id: str, categories: list[MMCategory]) -> Any:
        raise AssertionError("never reached: the category is removed again each time")

    gw.create_category = undone_create  # type: ignore[method-assign]
    gw.update_categories = undone_update  # type: ignore[method-assign]
    view = await env.start()
    assert writes == MAX_WRITES
    notices = [p.message for p in gw.posts_in(view.run.channel_id) if "could not file" in p.message]
    assert notices and "for @bob: something else kept changing the sidebar at the same moment." in notices[0]
    assert "@alice" not in notices[0] and "@carol" not in notices[0]


async def test_a_starred_run_channel_stays_in_favorites(env: Env) -> None:
    view = await env.start()
    carol = env.users["carol"]
    key = (carol.id, env.team_id)
    categories = env.gw.world.categories[key]
    env.gw.world.categories[key] = [replace(c, channel_ids=(view.run.channel_id,)) if c.type == "favorites"
                                    else replace(c, channel_ids=tuple(x for x in c.channel_ids
                                                                      if x != view.run.channel_id))
                                    for c in categories]
    before = len(env.gw.call_log)
    await file_channel(env.ctx, env.team_id, view.run.channel_id, "Incidents", carol.id)
    assert [c.method for c in env.gw.call_log[before:]] == ["get_categories"]  # read, found filed, left alone
