"""Sidebar categories: lazy defaults, 200 on create, dropped channel ids, edit_other_users, and what an
update touches: only the rows of the categories it names (sqlstore/channel_store_categories.go
UpdateSidebarCategories), so a channel can show in two categories and a move takes both in one PUT."""
from __future__ import annotations

import json

import pytest

from tests.sandbox.test_rest_scenario import Events, setup_world


@pytest.fixture
def events(sandbox) -> Events:
    return Events(sandbox)


async def test_categories_lifecycle(api, events) -> None:
    world = await setup_world(api)
    bot, team_id, uid = world["bot"], world["team"]["id"], world["bot_id"]
    base = f"/users/{uid}/teams/{team_id}/channels/categories"
    status, channel, _ = await bot.post("/channels", {"team_id": team_id, "name": "inc-7",
                                                      "display_name": "Incident 7", "type": "P"})
    status, foreign, _ = await api.post("/channels", {"team_id": team_id, "name": "admins",
                                                      "display_name": "Admins", "type": "P"})
    new = {"user_id": uid, "team_id": team_id, "display_name": "Incidents",
           "channel_ids": [channel["id"], foreign["id"]]}
    # Before the first GET there are no categories to place a new one among.
    status, body, _ = await bot.post(base, new)
    assert (status, body["id"]) == (404, "app.channel.sidebar_categories.app_error")

    status, listing, _ = await bot.get(base)
    assert status == 200
    assert [c["type"] for c in listing["categories"]] == ["favorites", "channels", "direct_messages"]
    assert listing["order"][1] == f"channels_{uid}_{team_id}"
    assert channel["id"] in listing["categories"][1]["channel_ids"]  # implicit member of Channels

    status, category, _ = await bot.post(base, new)
    assert status == 200  # not 201
    assert category["type"] == "custom" and category["channel_ids"] == [channel["id"]]  # foreign dropped
    assert events.named("sidebar_category_created")[-1] == (
        {"category_id": category["id"]}, {"user_id": uid, "team_id": team_id})
    status, order, _ = await bot.get(base + "/order")
    assert order[:2] == [f"favorites_{uid}_{team_id}", category["id"]]  # right after Favorites
    status, listing, _ = await bot.get(base)
    assert channel["id"] not in listing["categories"][2]["channel_ids"]  # moved, not copied

    category["display_name"] = "Runs"
    category["channel_ids"] = []
    status, updated, _ = await bot.put(f"{base}/{category['id']}", category)
    assert status == 200 and updated["display_name"] == "Runs" and updated["channel_ids"] == []
    payload = json.loads(events.named("sidebar_category_updated")[-1][0]["updatedCategories"])
    assert payload[0]["id"] == category["id"]

    status, body, _ = await bot.put(base + "/order", list(reversed(order)))
    assert status == 200
    status, body, _ = await bot.put(base + "/order", order[:-1])
    assert (status, body["id"]) == (400, "app.channel.sidebar_categories.app_error")

    status, body, _ = await bot.delete(f"{base}/favorites_{uid}_{team_id}")
    assert (status, body["id"]) == (400, "app.channel.sidebar_categories.app_error")
    status, body, _ = await bot.delete(f"{base}/{category['id']}")
    assert (status, body) == (200, {"status": "OK"})
    assert events.named("sidebar_category_deleted")[-1][0] == {"category_id": category["id"]}


async def test_other_users_categories_need_edit_other_users(api) -> None:
    world = await setup_world(api)
    team_id, alice_id = world["team"]["id"], world["alice"]["id"]
    base = f"/users/{alice_id}/teams/{team_id}/channels/categories"
    status, body, _ = await world["bot"].get(base)
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    status, body, _ = await world["bot"].post(base, {"user_id": alice_id, "team_id": team_id,
                                                     "display_name": "x"})
    assert status == 403
    # A system admin (the sandbox's sysadmin, or a bot promoted to it) may.
    status, listing, _ = await api.get(base)
    assert status == 200 and len(listing["categories"]) == 3
    status, body, _ = await api.post(base, {"user_id": world["bot_id"], "team_id": team_id,
                                            "display_name": "x"})
    assert (status, body["id"]) == (400, "api.context.invalid_body_param.app_error")
    # A bulk update naming a category of someone else is refused with 400, not 403.
    status, own, _ = await world["bot"].get(f"/users/me/teams/{team_id}/channels/categories")
    status, body, _ = await world["bot"].put(f"/users/{world['bot_id']}/teams/{team_id}/channels/categories",
                                             [listing["categories"][0]])
    assert (status, body["id"]) == (400, "api.context.invalid_body_param.app_error")


async def test_edit_other_users_does_not_reach_a_system_admins_categories(api, sandbox) -> None:
    """app/authorization.go SessionHasPermissionToUser (current code): edit_other_users acts on anyone but
    a system admin; only manage_system does. SessionHasPermissionToCategory: a category by id must be the
    caller's own unless they hold edit_other_users (403 for one, 400 in a bulk update or order)."""
    world = await setup_world(api)
    team_id, alice_id = world["team"]["id"], world["alice"]["id"]
    # An admin lets user managers edit other users (System Console > Permissions), and makes the bot one.
    sandbox.state.role_permissions.setdefault("system_user_manager", set()).add("edit_other_users")
    status, _, _ = await api.put(f"/users/{world['bot_id']}/roles", {"roles": "system_user system_user_manager"})
    assert status == 200
    bot = world["bot"]
    status, admin_me, _ = await api.get("/users/me")
    status, alices, _ = await bot.get(f"/users/{alice_id}/teams/{team_id}/channels/categories")
    assert status == 200 and len(alices["categories"]) == 3
    favorites = alices["categories"][0]
    status, updated, _ = await bot.put(f"/users/{alice_id}/teams/{team_id}/channels/categories/{favorites['id']}",
                                       favorites)
    assert status == 200 and updated["id"] == favorites["id"]
    status, _, _ = await api.post(f"/teams/{team_id}/members", {"team_id": team_id, "user_id": admin_me["id"]})
    admin_base = f"/users/{admin_me['id']}/teams/{team_id}/channels/categories"
    status, admins, _ = await api.get(admin_base)
    assert status == 200
    denied = (403, "api.context.permissions.app_error")
    status, body, _ = await bot.get(admin_base)
    assert (status, body["id"]) == denied
    status, body, _ = await bot.put(admin_base, [admins["categories"][1]])
    assert (status, body["id"]) == denied
    status, body, _ = await bot.get(f"{admin_base}/{admins['categories'][1]['id']}")
    assert (status, body["id"]) == denied
    status, body, _ = await bot.post(admin_base, {"user_id": admin_me["id"], "team_id": team_id,
                                                  "display_name": "Mine"})
    assert (status, body["id"]) == denied

    # Without edit_other_users, a category id is usable only when it is one's own: alice asking for one
    # of the bot's through her own URL gets 403 (not 404), and 400 inside a bulk update or an order.
    status, alice_login, _ = await api.post(f"/users/{alice_id}/tokens", {"description": "t"})
    alice = api.as_(alice_login["token"])
    status, bots, _ = await bot.get(f"/users/me/teams/{team_id}/channels/categories")
    alice_base = f"/users/{alice_id}/teams/{team_id}/channels/categories"
    status, body, _ = await alice.get(f"{alice_base}/{bots['categories'][0]['id']}")
    assert (status, body["id"]) == denied
    status, body, _ = await alice.put(f"{alice_base}/order", [c["id"] for c in bots["categories"]])
    assert (status, body["id"]) == (400, "api.context.invalid_body_param.app_error")
    status, own, _ = await alice.get(f"{alice_base}/{alices['categories'][0]['id']}")
    assert status == 200 and own["id"] == alices["categories"][0]["id"]


async def _channels(bot, team_id: str, *names: str) -> list[str]:
    ids = []
    for name in names:
        status, channel, _ = await bot.post("/channels", {"team_id": team_id, "name": name,
                                                          "display_name": name.title(), "type": "O"})
        assert status == 201, channel
        ids.append(channel["id"])
    return ids


def _listed(listing: dict, channel_id: str) -> list[str]:
    """The display names of every category that shows `channel_id`, in sidebar order."""
    return [c["display_name"] for c in listing["categories"] if channel_id in c["channel_ids"]]


async def test_an_update_rewrites_only_the_categories_it_names(api) -> None:
    world = await setup_world(api)
    bot, team_id, uid = world["bot"], world["team"]["id"], world["bot_id"]
    base = f"/users/{uid}/teams/{team_id}/channels/categories"
    run_a, run_b = await _channels(bot, team_id, "run-a", "run-b")
    status, listing, _ = await bot.get(base)
    status, one, _ = await bot.post(base, {"user_id": uid, "team_id": team_id, "display_name": "One",
                                           "channel_ids": [run_a]})
    assert status == 200
    status, two, _ = await bot.post(base, {"user_id": uid, "team_id": team_id, "display_name": "Two"})
    assert status == 200

    # Giving run-a to Two alone leaves its row in One: the store deletes and rewrites the rows of Two only
    # ("moving channels between categories requires updating both the source and destination categories").
    status, updated, _ = await bot.put(f"{base}/{two['id']}", {**two, "channel_ids": [run_a]})
    assert status == 200 and updated["channel_ids"] == [run_a]
    status, listing, _ = await bot.get(base)
    assert _listed(listing, run_a) == ["Two", "One"]  # shown twice, as on a real server

    # A move is one bulk PUT of the source and the destination.
    status, body, _ = await bot.put(base, [{**one, "channel_ids": []}, {**two, "channel_ids": [run_a]}])
    assert status == 200 and [c["id"] for c in body] == [one["id"], two["id"]]
    status, listing, _ = await bot.get(base)
    assert _listed(listing, run_a) == ["Two"]
    assert _listed(listing, run_b) == ["Channels"]  # never placed: shown under Channels implicitly


async def test_the_channels_category_shows_its_own_rows_after_the_implicit_ones(api) -> None:
    world = await setup_world(api)
    bot, team_id, uid = world["bot"], world["team"]["id"], world["bot_id"]
    base = f"/users/{uid}/teams/{team_id}/channels/categories"
    zulu, = await _channels(bot, team_id, "zulu")
    status, listing, _ = await bot.get(base)
    channels = next(c for c in listing["categories"] if c["type"] == "channels")
    # As the web app does after a drag inside Channels: the category with its list becomes rows.
    status, body, _ = await bot.put(base, [{**channels, "channel_ids": [zulu]}])
    assert status == 200
    alpha, = await _channels(bot, team_id, "alpha")  # joined later: no row, shown implicitly and first
    status, listing, _ = await bot.get(base)
    shown = next(c for c in listing["categories"] if c["type"] == "channels")["channel_ids"]
    assert shown[-1] == zulu and shown.index(alpha) < shown.index(zulu)  # rows after every implicit one

    # Filing zulu in a custom category without touching Channels leaves its row there: shown twice.
    status, runs, _ = await bot.post(base, {"user_id": uid, "team_id": team_id, "display_name": "Runs"})
    status, body, _ = await bot.put(f"{base}/{runs['id']}", {**runs, "channel_ids": [zulu]})
    status, listing, _ = await bot.get(base)
    assert _listed(listing, zulu) == ["Runs", "Channels"]
    # Taking it out of Channels in the same PUT files it once.
    channels = next(c for c in listing["categories"] if c["type"] == "channels")
    status, body, _ = await bot.put(base, [{**channels, "channel_ids": [c for c in channels["channel_ids"]
                                                                         if c != zulu]},
                                           {**runs, "channel_ids": [zulu]}])
    assert status == 200
    status, listing, _ = await bot.get(base)
    assert _listed(listing, zulu) == ["Runs"] and _listed(listing, alpha) == ["Channels"]


async def test_an_update_is_the_whole_category(api) -> None:
    world = await setup_world(api)
    bot, team_id, uid = world["bot"], world["team"]["id"], world["bot_id"]
    base = f"/users/{uid}/teams/{team_id}/channels/categories"
    run_a, = await _channels(bot, team_id, "run-a")
    await bot.get(base)
    status, runs, _ = await bot.post(base, {"user_id": uid, "team_id": team_id, "display_name": "Runs",
                                            "channel_ids": [run_a]})
    runs["collapsed"] = True
    status, body, _ = await bot.put(f"{base}/{runs['id']}", runs)
    assert body["collapsed"] is True
    # Fields left out are their zero values: the channels go, the category opens.
    partial = {k: v for k, v in runs.items() if k not in ("channel_ids", "collapsed")}
    status, body, _ = await bot.put(f"{base}/{runs['id']}", partial)
    assert status == 200 and body["channel_ids"] == [] and body["collapsed"] is False
    status, listing, _ = await bot.get(base)
    assert _listed(listing, run_a) == ["Channels"]


async def test_leaving_a_channel_drops_its_rows(api) -> None:
    world = await setup_world(api)
    team_id, alice = world["team"]["id"], world["alice"]
    run_a, = await _channels(api, team_id, "run-a")
    status, token, _ = await api.post(f"/users/{alice['id']}/tokens", {"description": "alice"})
    me = api.as_(token["token"])
    base = f"/users/{alice['id']}/teams/{team_id}/channels/categories"
    status, body, _ = await api.post(f"/channels/{run_a}/members", {"user_id": alice["id"]})
    assert status == 201
    await me.get(base)
    status, runs, _ = await me.post(base, {"user_id": alice["id"], "team_id": team_id, "display_name": "Runs",
                                           "channel_ids": [run_a]})
    assert runs["channel_ids"] == [run_a]
    status, body, _ = await me.delete(f"/channels/{run_a}/members/{alice['id']}")
    assert status == 200
    status, body, _ = await me.post(f"/channels/{run_a}/members", {"user_id": alice["id"]})
    assert status == 201
    # Back in the channel, it shows under Channels: RemoveMembers deleted alice's SidebarChannels rows.
    status, listing, _ = await me.get(base)
    assert _listed(listing, run_a) == ["Channels"]
