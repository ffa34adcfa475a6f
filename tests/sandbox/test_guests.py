"""Guest accounts as the real server models them: roles system_guest / team_guest / channel_guest
(model/role.go MakeDefaultRoles), membership scheme flags (app/team.go JoinUserToTeam, app/channel.go
addUserToChannel) and user visibility (app/user.go UserCanSeeOtherUser)."""
from __future__ import annotations

from typing import Any

import pytest

from sandbox import ops
from tests.sandbox.conftest import make_world

FORBIDDEN = (403, "api.context.permissions.app_error")


@pytest.fixture
def world(sandbox) -> dict[str, Any]:
    """eng (alice, bob, carol) plus `gus`, a guest in the team and in alice's channel #incidents."""
    w = make_world(sandbox)
    st, hub = sandbox.state, sandbox.hub
    w["gus"] = ops.create_guest(st, hub, username="gus", email="gus@partner.example")
    w["gus_token"] = ops.create_token(st, w["gus"].id)
    ops.add_team_member(st, hub, w["team"], w["gus"])
    ops.add_channel_member(st, hub, w["channel"], w["gus"], w["alice"])
    return w


def err(status: int, body: Any) -> tuple[int, str]:
    return status, body["id"]


async def test_a_guest_has_only_guest_roles_everywhere(api, world) -> None:
    gus = api.as_(world["gus_token"])
    status, me, _ = await gus.get("/users/me")
    assert (status, me["roles"]) == (200, "system_guest")
    status, member, _ = await gus.get(f"/teams/{world['team'].id}/members/{world['gus'].id}")
    assert status == 200
    assert (member["roles"], member["scheme_guest"], member["scheme_user"]) == ("team_guest", True, False)
    status, member, _ = await gus.get(f"/channels/{world['channel'].id}/members/{world['gus'].id}")
    assert status == 200
    assert (member["roles"], member["scheme_guest"], member["scheme_user"]) == ("channel_guest", True, False)
    # A guest is a team member (team_guest has view_team) and may post in its channel (channel_guest).
    status, _, _ = await gus.get(f"/teams/{world['team'].id}")
    assert status == 200
    status, post, _ = await gus.post("/posts", {"channel_id": world["channel"].id, "message": "hi"})
    assert status == 201


async def test_a_guest_cannot_list_join_or_create_channels(api, world, sandbox) -> None:
    gus = api.as_(world["gus_token"])
    team_id = world["team"].id
    # team_guest lacks list_team_channels (GET /teams/{id}/channels: api4/channel.go getPublicChannelsForTeam).
    assert err(*(await gus.get(f"/teams/{team_id}/channels"))[:2]) == FORBIDDEN
    lobby = ops.create_channel(sandbox.state, sandbox.hub, team=world["team"], creator=world["alice"],
                               name="lobby", display_name="Lobby", type="O")
    # Self-add to a public channel needs join_public_channels (api4/channel.go addChannelMember).
    assert err(*(await gus.post(f"/channels/{lobby.id}/members", {"user_id": world["gus"].id}))[:2]) == FORBIDDEN
    # Nor can it read a public channel it is not in (read_public_channel is team_user's).
    assert err(*(await gus.get(f"/channels/{lobby.id}"))[:2]) == FORBIDDEN
    for kind in ("O", "P"):  # create_public_channel / create_private_channel
        status, body, _ = await gus.post("/channels", {"team_id": team_id, "name": f"g-{kind.lower()}",
                                                       "display_name": "G", "type": kind})
        assert err(status, body) == FORBIDDEN


async def test_a_guest_cannot_add_people(api, world, sandbox) -> None:
    gus = api.as_(world["gus_token"])
    # To its own channel: manage_public_channel_members is channel_user's, not channel_guest's.
    status, body, _ = await gus.post(f"/channels/{world['channel'].id}/members", {"user_id": world["carol"].id})
    assert err(status, body) == FORBIDDEN
    # To the team: add_user_to_team is team_user's.
    outsider = ops.create_user(sandbox.state, sandbox.hub, username="olga", email="olga@example.com")
    status, body, _ = await gus.post(f"/teams/{world['team'].id}/members",
                                     {"team_id": world["team"].id, "user_id": outsider.id})
    assert err(status, body) == FORBIDDEN


async def test_anyone_who_manages_the_channels_members_adds_a_guest_who_is_in_the_team(api, world, sandbox) -> None:
    st, hub = sandbox.state, sandbox.hub
    private = ops.create_channel(st, hub, team=world["team"], creator=world["alice"], name="war-room",
                                 display_name="War room", type="P")
    # No guest-specific check in addChannelMember: alice (channel_user: manage_private_channel_members) may.
    status, member, _ = await api.as_(world["alice_token"]).post(f"/channels/{private.id}/members",
                                                                 {"user_id": world["gus"].id})
    assert (status, member["roles"], member["scheme_guest"]) == (201, "channel_guest", True)
    # bob is not in that private channel, so he may not.
    other = ops.create_guest(st, hub, username="gwen", email="gwen@partner.example")
    ops.add_team_member(st, hub, world["team"], other)
    status, body, _ = await api.as_(world["bob_token"]).post(f"/channels/{private.id}/members",
                                                             {"user_id": other.id})
    assert err(status, body) == FORBIDDEN
    # A guest outside the team cannot be added at all (app/channel.go AddUserToChannel: GetTeamMember).
    stranger = ops.create_guest(st, hub, username="stan", email="stan@partner.example")
    status, body, _ = await api.as_(world["alice_token"]).post(f"/channels/{private.id}/members",
                                                               {"user_id": stranger.id})
    assert err(status, body) == (404, "app.team.get_member.missing.app_error")


async def test_a_guest_joins_no_default_channels(api, world, sandbox) -> None:
    # app/team.go JoinUserToTeam calls JoinDefaultChannels only `if !user.IsGuest()`.
    town = sandbox.state.channel_by_name(world["team"].id, "town-square")
    assert town is not None and sandbox.state.is_channel_member(town.id, world["alice"].id)
    assert not sandbox.state.is_channel_member(town.id, world["gus"].id)


async def test_a_guest_sees_only_people_it_shares_a_channel_with(api, world) -> None:
    gus = api.as_(world["gus_token"])
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    # #incidents has alice, bob and gus; carol shares only the team with gus (no view_members for guests).
    status, body, _ = await gus.get(f"/users/{alice.id}")
    assert (status, body["id"]) == (200, alice.id)
    assert err(*(await gus.get(f"/users/{carol.id}"))[:2]) == FORBIDDEN          # api4/user.go getUser
    assert err(*(await gus.get("/users/username/carol"))[:2]) == FORBIDDEN       # getUserByUsername
    status, users, _ = await gus.post("/users/ids", [alice.id, carol.id])          # silently filtered
    assert (status, [u["id"] for u in users]) == (200, [alice.id])
    status, users, _ = await gus.post("/users/usernames", ["bob", "carol"])
    assert (status, [u["username"] for u in users]) == (200, ["bob"])
    status, users, _ = await gus.get(f"/users?in_team={world['team'].id}")
    assert status == 200
    assert sorted(u["username"] for u in users) == sorted(["alice", "bob", "gus"])
    # A DM needs to see the other person (api4/channel.go createDirectChannel).
    status, _, _ = await gus.post("/channels/direct", [world["gus"].id, bob.id])
    assert status == 201
    assert err(*(await gus.post("/channels/direct", [world["gus"].id, carol.id]))[:2]) == FORBIDDEN
    # Members see the guest as usual (system_user has view_members).
    status, body, _ = await api.as_(world["carol_token"]).get(f"/users/{world['gus'].id}")
    assert (status, body["roles"]) == (200, "system_guest")


async def test_demoting_a_user_makes_every_membership_a_guest_one(api, world, sandbox) -> None:
    st, hub = sandbox.state, sandbox.hub
    bob = world["bob"]
    ops.demote_to_guest(st, hub, bob)
    assert bob.roles == "system_guest" and bob.is_guest()
    assert st.team_members[(world["team"].id, bob.id)].roles == "team_guest"
    assert st.channel_members[(world["channel"].id, bob.id)].roles == "channel_guest"
    status, body, _ = await api.as_(world["bob_token"]).get(f"/teams/{world['team'].id}/channels")
    assert err(status, body) == FORBIDDEN


async def test_deactivating_an_account(sandbox, api) -> None:
    """PUT /users/{id}/active (api4/user.go updateUserActive): admins only for others; the account's
    tokens stop working; lookups still return it, with delete_at set."""
    status, user, _ = await api.post("/users", {"username": "leaver", "email": "leaver@example.com",
                                                "password": "Password-123!"})
    assert status == 201, user
    status, tok, _ = await api.post(f"/users/{user['id']}/tokens", {"description": "t"})
    assert status == 200, tok
    status, other, _ = await api.post("/users", {"username": "other", "email": "other@example.com",
                                                 "password": "Password-123!"})
    status, other_tok, _ = await api.post(f"/users/{other['id']}/tokens", {"description": "t"})
    status, body, _ = await api.as_(other_tok["token"]).put(f"/users/{user['id']}/active", {"active": False})
    assert status == 403 and body["id"] == "api.user.update_active.permissions.app_error"
    status, body, _ = await api.as_(tok["token"]).put(f"/users/{user['id']}/active", {"active": False})
    assert status == 401 and body["id"] == "api.user.update_active.not_enable.app_error"
    status, body, _ = await api.put(f"/users/{user['id']}/active", {"active": "no"})
    assert status == 400
    status, body, _ = await api.put(f"/users/{user['id']}/active", {"active": False})
    assert status == 200 and body == {"status": "OK"}
    status, found, _ = await api.post("/users/usernames", ["leaver"])
    assert status == 200 and found[0]["delete_at"] > 0
    status, body, _ = await api.as_(tok["token"]).get("/users/me")
    assert status == 401


async def test_patching_a_profile(sandbox, api) -> None:
    """PUT /users/{id}/patch (api4/user.go patchUser): yourself or edit_other_users; a system admin's
    profile needs manage_system; the timezone is a map of strings."""
    ids = {}
    for name in ("pat", "sam"):
        status, user, _ = await api.post("/users", {"username": name, "email": f"{name}@example.com",
                                                    "password": "Password-123!"})
        status, tok, _ = await api.post(f"/users/{user['id']}/tokens", {"description": "t"})
        ids[name] = (user["id"], tok["token"])
    pat, sam = ids["pat"], ids["sam"]
    zone = {"useAutomaticTimezone": "true", "automaticTimezone": "Asia/Tokyo", "manualTimezone": ""}
    status, body, _ = await api.as_(pat[1]).put(f"/users/{pat[0]}/patch", {"timezone": zone, "nickname": "P"})
    assert status == 200 and body["timezone"] == zone and body["nickname"] == "P", body
    status, body, _ = await api.as_(sam[1]).put(f"/users/{pat[0]}/patch", {"nickname": "x"})
    assert status == 403
    status, body, _ = await api.as_(pat[1]).put(f"/users/{pat[0]}/patch", {"timezone": {"useAutomaticTimezone": True}})
    assert status == 400
    status, me, _ = await api.get("/users/me")
    status, body, _ = await api.as_(pat[1]).put(f"/users/{me['id']}/patch", {"nickname": "x"})
    assert status == 403
