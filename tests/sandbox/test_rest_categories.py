"""Sidebar categories: lazy defaults, 200 on create, dropped channel ids, edit_other_users."""
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
