"""Custom user groups in the sandbox, as api4/group.go serves them: the licence gates first, then
permissions, then the group; every request and answer checked against the OpenAPI file."""
from __future__ import annotations

from typing import Any

from sandbox.server import license_for
from tests.conftest import Api
from tests.sandbox.conftest import make_world


def licensed(sandbox: Any, sku: str = "professional") -> None:
    sandbox.state.license = license_for(sku)


async def make_sre(api: Api, w: dict[str, Any], *members: str) -> dict[str, Any]:
    status, group, _ = await api.as_(w["alice_token"]).post("/groups", {
        "name": "sre", "display_name": "SRE", "source": "custom", "allow_reference": True,
        "user_ids": [w[m].id for m in members]})
    assert status == 201, group
    return group


async def test_without_a_licence_every_group_route_answers_501(sandbox: Any, api: Api) -> None:
    w = make_world(sandbox)
    alice = api.as_(w["alice_token"])
    status, body, _ = await alice.post("/groups", {"name": "sre", "display_name": "SRE", "source": "custom",
                                                   "allow_reference": True, "user_ids": []})
    assert status == 501 and body["id"] == "api.license_error", body
    status, body, _ = await alice.get(f"/groups?filter_has_member={w['alice'].id}")
    assert status == 501 and body["id"] == "api.license_error"
    status, body, _ = await alice.get(f"/users/{w['alice'].id}/groups")
    assert status == 501
    assert sandbox.state.groups == {}


async def test_custom_groups_need_a_professional_licence_and_the_setting(sandbox: Any, api: Api) -> None:
    w = make_world(sandbox)
    sandbox.state.license = {"SkuShortName": "starter", "LDAPGroups": False}
    body = {"name": "sre", "display_name": "SRE", "source": "custom", "allow_reference": True, "user_ids": []}
    status, err, _ = await api.as_(w["alice_token"]).post("/groups", body)
    assert status == 400 and err["id"] == "api.custom_groups.license_error", err
    licensed(sandbox)
    sandbox.state.config["EnableCustomGroups"] = False
    status, err, _ = await api.as_(w["alice_token"]).post("/groups", body)
    assert status == 400 and err["id"] == "api.custom_groups.feature_disabled", err
    assert sandbox.state.groups == {}


async def test_a_system_user_creates_a_group_and_lists_whose_it_is(sandbox: Any, api: Api) -> None:
    w = make_world(sandbox)
    licensed(sandbox)
    group = await make_sre(api, w, "alice", "bob")
    assert group["name"] == "sre" and group["source"] == "custom" and group["allow_reference"] is True
    assert group["remote_id"] is None and group["member_count"] == 2

    carol = api.as_(w["carol_token"])
    status, got, _ = await carol.get(f"/groups/{group['id']}")
    assert status == 200 and got["display_name"] == "SRE" and "member_count" not in got
    status, mine, _ = await carol.get(f"/groups?filter_has_member={w['bob'].id}")
    assert status == 200 and [g["name"] for g in mine] == ["sre"]
    status, none, _ = await carol.get(f"/groups?filter_has_member={w['carol'].id}")
    assert status == 200 and none == []
    status, found, _ = await carol.get("/groups?q=sr&include_member_count=true")
    assert status == 200 and found[0]["member_count"] == 2


async def test_members_are_added_and_removed(sandbox: Any, api: Api) -> None:
    w = make_world(sandbox)
    licensed(sandbox)
    group = await make_sre(api, w, "alice")
    bob = api.as_(w["bob_token"])
    status, added, _ = await bob.post(f"/groups/{group['id']}/members", {"user_ids": [w["carol"].id]})
    assert status == 200 and added[0]["user_id"] == w["carol"].id and added[0]["delete_at"] == 0
    assert sorted(sandbox.state.group_member_ids(group["id"])) == sorted([w["alice"].id, w["carol"].id])
    status, removed, _ = await bob.call("DELETE", f"/groups/{group['id']}/members", {"user_ids": [w["alice"].id]})
    assert status == 200 and removed[0]["user_id"] == w["alice"].id and removed[0]["delete_at"] > 0
    assert sandbox.state.group_member_ids(group["id"]) == [w["carol"].id]


async def test_bad_groups_are_refused_and_change_nothing(sandbox: Any, api: Api) -> None:
    w = make_world(sandbox)
    licensed(sandbox)
    alice = api.as_(w["alice_token"])
    base = {"name": "sre", "display_name": "SRE", "source": "custom", "allow_reference": True, "user_ids": []}
    for patch, error in (({"source": "ldap"}, "app.group.crud_permission"),
                         ({"allow_reference": False}, "api.custom_groups.must_be_referenceable"),
                         ({"name": "Has Space"}, "model.group.name.invalid_chars.app_error"),
                         ({"name": "all"}, "model.group.name.reserved_name.app_error"),
                         ({"name": "bob"}, "app.group.username_conflict"),
                         ({"display_name": ""}, "model.group.display_name.app_error")):
        status, err, _ = await alice.post("/groups", {**base, **patch})
        assert status == 400 and err["id"] == error, (patch, err)
    assert sandbox.state.groups == {}
    await make_sre(api, w)
    status, err, _ = await alice.post("/groups", base)
    assert status == 400 and err["id"] == "app.custom_group.unique_name"
    # Without create_custom_group (an admin took it from system_user): 403.
    sandbox.state.role_permissions["system_user"].discard("create_custom_group")
    status, err, _ = await alice.post("/groups", {**base, "name": "dba"})
    assert status == 403
    assert len(sandbox.state.groups) == 1


async def test_a_users_groups_need_ldap_groups_and_yourself_or_an_admin(sandbox: Any, api: Api) -> None:
    w = make_world(sandbox)
    licensed(sandbox)
    group = await make_sre(api, w, "bob")
    bob = api.as_(w["bob_token"])
    status, err, _ = await bob.get(f"/users/{w['bob'].id}/groups")
    assert status == 403 and err["id"] == "api.ldap_groups.license_error", err
    licensed(sandbox, "enterprise")
    status, mine, _ = await bob.get("/users/me/groups")
    assert status == 200 and [g["id"] for g in mine] == [group["id"]]
    status, err, _ = await api.as_(w["carol_token"]).get(f"/users/{w['bob'].id}/groups")
    assert status == 403
    status, theirs, _ = await api.get(f"/users/{w['bob'].id}/groups")
    assert status == 200 and [g["name"] for g in theirs] == ["sre"]
