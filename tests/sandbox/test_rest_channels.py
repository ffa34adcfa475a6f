"""Channel rules a bot trips on: names, archived names, team membership first, DMs, private reads."""
from __future__ import annotations

import pytest

from tests.sandbox.test_rest_scenario import Events, setup_world


@pytest.fixture
def events(sandbox) -> Events:
    return Events(sandbox)


async def create(bot, team_id: str, name: str, kind: str = "O"):
    return await bot.post("/channels", {"team_id": team_id, "name": name, "display_name": "Some channel",
                                        "type": kind})


@pytest.mark.parametrize("name,error", [
    ("Incident", "model.channel.is_valid.2_or_more.app_error"),      # uppercase is refused, not folded
    ("inc 1", "model.channel.is_valid.2_or_more.app_error"),
    ("-inc", "model.channel.is_valid.2_or_more.app_error"),
    ("x" * 65, "model.channel.is_valid.2_or_more.app_error"),        # varchar(64)
    ("a" * 26 + "__" + "b" * 26, "model.channel.is_valid.name.app_error"),  # looks like a DM
    ("0123456789abcdef0123456789abcdef01234567", "model.channel.is_valid.name.app_error"),  # GM hash
])
async def test_channel_name_rules(api, name: str, error: str) -> None:
    world = await setup_world(api)
    status, body, _ = await create(world["bot"], world["team"]["id"], name)
    assert (status, body["id"]) == (400, error)


async def test_name_of_archived_channel_stays_taken(api, events) -> None:
    world = await setup_world(api)
    bot, team_id = world["bot"], world["team"]["id"]
    status, channel, _ = await create(bot, team_id, "x" * 64)
    assert status == 201
    status, dup, _ = await create(bot, team_id, "x" * 64, "P")
    assert (status, dup["id"]) == (400, "store.sql_channel.save_channel.exists.app_error")

    status, body, _ = await bot.delete(f"/channels/{channel['id']}")
    assert (status, body) == (200, {"status": "OK"})
    assert events.named("channel_deleted")[-1][0]["channel_id"] == channel["id"]
    status, dup, _ = await create(bot, team_id, "x" * 64)
    assert (status, dup["id"]) == (400, "store.sql_channel.save_channel.exists.app_error")
    # Name lookups skip archived channels unless include_deleted=true.
    status, body, _ = await bot.get(f"/teams/{team_id}/channels/name/{'x' * 64}")
    assert (status, body["id"]) == (404, "app.channel.get_by_name.missing.app_error")
    status, body, _ = await bot.get(f"/teams/name/eng/channels/name/{'x' * 64}?include_deleted=true")
    assert status == 200 and body["delete_at"] > 0
    status, body, _ = await bot.post("/posts", {"channel_id": channel["id"], "message": "late"})
    assert (status, body["id"]) == (400, "api.post.create_post.can_not_post_to_deleted.error")
    status, body, _ = await api.post(f"/channels/{channel['id']}/restore")
    assert status == 200 and body["delete_at"] == 0


async def test_user_must_join_team_before_channel(api) -> None:
    world = await setup_world(api)
    status, outsider, _ = await api.post("/users", {"username": "olga", "email": "olga@example.com",
                                                    "password": "Secret-pass1"})
    status, channel, _ = await create(world["bot"], world["team"]["id"], "ops")
    status, body, _ = await world["bot"].post(f"/channels/{channel['id']}/members", {"user_id": outsider["id"]})
    assert (status, body["id"]) == (404, "app.team.get_member.missing.app_error")


async def test_bot_outside_team_cannot_create_channels(api) -> None:
    world = await setup_world(api)
    status, other, _ = await api.post("/teams", {"name": "other", "display_name": "Other", "type": "O"})
    status, body, _ = await create(world["bot"], other["id"], "ops")
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")


async def test_private_channel_is_404_for_non_members(api) -> None:
    world = await setup_world(api)
    status, channel, _ = await create(world["bot"], world["team"]["id"], "secret", "P")
    status, login, headers = await api.as_(None).post("/users/login", {"login_id": "alice",
                                                                       "password": "Secret-pass1"})
    alice = api.as_(headers["Token"])
    status, body, _ = await alice.get(f"/channels/{channel['id']}")
    assert (status, body["id"]) == (404, "app.channel.get.existing.app_error")
    status, body, _ = await alice.get(f"/teams/{world['team']['id']}/channels/name/secret")
    assert (status, body["id"]) == (404, "app.channel.get_by_name.missing.app_error")
    status, body, _ = await alice.post("/posts", {"channel_id": channel["id"], "message": "hi"})
    assert status == 403


async def test_public_channel_needs_membership_to_post(api) -> None:
    world = await setup_world(api)
    status, channel, _ = await api.post("/channels", {"team_id": world["team"]["id"], "name": "news",
                                                      "display_name": "News", "type": "O"})
    status, body, _ = await world["bot"].post("/posts", {"channel_id": channel["id"], "message": "hi"})
    assert (status, body["id"]) == (403, "api.context.permissions.app_error")
    status, body, _ = await world["bot"].get(f"/channels/{channel['id']}/posts")
    assert status == 200  # but reading a public channel of its team is allowed


async def test_direct_channel_is_idempotent(api, events) -> None:
    world = await setup_world(api)
    bot_id, alice_id = world["bot_id"], world["alice"]["id"]
    status, first, _ = await world["bot"].post("/channels/direct", [bot_id, alice_id])
    assert status == 201 and first["type"] == "D" and first["team_id"] == ""
    assert first["name"] == "__".join(sorted([bot_id, alice_id]))
    status, second, _ = await world["bot"].post("/channels/direct", [alice_id, bot_id])
    assert status == 201 and second["id"] == first["id"]
    assert len(events.named("direct_added")) == 1


async def test_remove_member_and_make_channel_admin(api, events) -> None:
    world = await setup_world(api)
    bot, alice_id = world["bot"], world["alice"]["id"]
    status, channel, _ = await create(bot, world["team"]["id"], "ops")
    await bot.post(f"/channels/{channel['id']}/members", {"user_id": alice_id})
    status, body, _ = await bot.put(f"/channels/{channel['id']}/members/{alice_id}/schemeRoles",
                                    {"scheme_admin": True, "scheme_user": True})
    assert (status, body) == (200, {"status": "OK"})
    status, member, _ = await bot.get(f"/channels/{channel['id']}/members/{alice_id}")
    assert member["scheme_admin"] is True and member["roles"] == "channel_user channel_admin"
    status, body, _ = await bot.delete(f"/channels/{channel['id']}/members/{alice_id}")
    assert status == 200
    removed = events.named("user_removed")
    assert ({"channel_id": channel["id"], "remover_id": world["bot_id"]}, {"user_id": alice_id}) in removed


async def test_patch_channel(api, events) -> None:
    world = await setup_world(api)
    status, channel, _ = await create(world["bot"], world["team"]["id"], "ops")
    status, body, _ = await world["bot"].put(f"/channels/{channel['id']}/patch", {"header": "On call: @alice"})
    assert status == 200 and body["header"] == "On call: @alice" and body["name"] == "ops"
    status, body, _ = await world["bot"].put(f"/channels/{channel['id']}/patch", {"name": "Bad Name"})
    assert (status, body["id"]) == (400, "model.channel.is_valid.2_or_more.app_error")
    assert events.named("channel_updated")
