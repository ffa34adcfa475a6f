"""Custom user groups (api4/group.go, app/group.go, model/group.go in mattermost/mattermost).

The sandbox has only `custom` groups (no LDAP). The real server's gates are kept, in its order:

- every route first needs *a* licence: api4/api.go requireLicense -> 501 `api.license_error`;
- custom groups then need a professional or enterprise licence (400 `api.custom_groups.license_error`) and
  ServiceSettings.EnableCustomGroups (400 `api.custom_groups.feature_disabled`): api4/group.go
  licensedAndConfiguredForGroupBySource;
- `GET /users/{user_id}/groups` (getGroupsByUserId) needs yourself or manage_system, and the licence's
  LDAPGroups feature (403 `api.ldap_groups.license_error`) even for custom groups, so with a professional
  licence a non-admin learns someone's groups through `GET /groups?filter_has_member=` (getGroups).

A licence is set with `Sandbox(license=...)` / `python -m sandbox --license professional` (sandbox/server.py);
without one the sandbox is a Team Edition server and every route here answers 501, as the real one does.
"""
from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_body, invalid_url
from sandbox.ids import is_valid_id, new_id
from sandbox.routes._helpers import (
    created,
    json_response,
    page_slice,
    query_bool,
    read_json,
    state_of,
    url_id,
    user_id_param,
)
from sandbox.state import Group, State, User

# model/group.go: GroupNameMaxLength, GroupDisplayNameMaxLength, GroupDescriptionMaxLength, validGroupnameChars.
NAME_MAX, DISPLAY_NAME_MAX, DESCRIPTION_MAX = 64, 128, 1024
VALID_NAME = re.compile(r"^[a-z0-9.\-_]+$")
RESERVED_NAMES = {"all", "channel", "here"}  # model.UserNotifyAll, ChannelMentionsNotifyProp, UserNotifyHere


def require_license(state: State) -> None:
    """api4/api.go requireLicense: no licence at all -> 501."""
    if state.license is None:
        raise AppError("api.license_error", 501, "Your license does not support this feature.")


def licensed_for_custom(state: State) -> None:
    """api4/group.go licensedAndConfiguredForGroupBySource(app, model.GroupSourceCustom)."""
    lic = state.license
    if lic is None:
        raise AppError("api.license_error", 403, "Your license does not support this feature.")
    if lic.get("SkuShortName") not in ("professional", "enterprise"):
        raise AppError("api.custom_groups.license_error", 400, "Your license does not support custom groups.")
    if not state.config.get("EnableCustomGroups", True):
        raise AppError("api.custom_groups.feature_disabled", 400, "The custom groups feature is disabled.")


def get_group(state: State, group_id: str) -> Group:
    """app/group.go GetGroup: 404 app.group.no_rows when there is no such group."""
    group = state.groups.get(group_id)
    if group is None:
        raise AppError("app.group.no_rows", 404, "No matching group found.")
    return group


def group_json(state: State, group: Group, with_count: bool = False) -> dict[str, Any]:
    return group.to_json(len(state.group_member_ids(group.id)) if with_count else None)


def _can_read_all_groups(state: State, me: User) -> bool:
    # sysconsole_read_user_management_groups: system admins (and the system roles that hold it).
    return state.has_system_permission(me, "sysconsole_read_user_management_groups")


async def create_group(request: web.Request) -> web.Response:
    """POST /groups (createGroup): the body is a model.GroupWithUserIds, i.e. the Group's fields and
    `user_ids` side by side (Group is embedded), then app.CreateGroupWithUserIds."""
    state = state_of(request)
    me = require_user(request)
    require_license(state)
    body = await read_json(request, "group")
    if not isinstance(body, dict):
        raise invalid_body("group")
    name, display_name = body.get("name"), body.get("display_name", "")
    description, source = body.get("description", ""), body.get("source", "")
    allow_reference, user_ids = body.get("allow_reference", False), body.get("user_ids") or []
    if (not isinstance(name, (str, type(None))) or not all(isinstance(v, str) for v in (display_name, description,
                                                                                         source))
            or not isinstance(allow_reference, bool) or not isinstance(user_ids, list)
            or not all(isinstance(u, str) for u in user_ids)):
        raise invalid_body("group")
    if source != "custom":
        raise AppError("app.group.crud_permission", 400, "Unable to create the group: source must be custom.")
    licensed_for_custom(state)
    if not state.has_system_permission(me, "create_custom_group"):
        raise forbidden("create_custom_group", me.id)
    if not allow_reference:
        raise AppError("api.custom_groups.must_be_referenceable", 400, "Custom groups must be referenceable.")
    if body.get("remote_id"):
        raise AppError("api.custom_groups.no_remote_id", 400, "Custom groups cannot have a remote id.")
    # model/group.go Group.IsValidForCreate / IsValidName.
    if name is None or not 0 < len(name) <= NAME_MAX:
        raise AppError("model.group.name.invalid_length.app_error", 400,
                       f"Name must be 1 to {NAME_MAX} lowercase alphanumeric characters.")
    if name in RESERVED_NAMES:
        raise AppError("model.group.name.reserved_name.app_error", 400, "The group name is already taken.")
    if not VALID_NAME.match(name):
        raise AppError("model.group.name.invalid_chars.app_error", 400,
                       "Invalid characters in the name property for group.")
    if not 0 < len(display_name) <= DISPLAY_NAME_MAX:
        raise AppError("model.group.display_name.app_error", 400,
                       f"Display name must be 1 to {DISPLAY_NAME_MAX} characters.")
    if len(description) > DESCRIPTION_MAX:
        raise AppError("model.group.description.app_error", 400,
                       f"Description must be at most {DESCRIPTION_MAX} characters.")
    # app/group.go CreateGroupWithUserIds: isUniqueToUsernames, then the store's unique name.
    if state.user_by_username(name) is not None:
        raise AppError("app.group.username_conflict", 400, f"A user with the username \"{name}\" already exists.")
    if any(g.name == name for g in state.groups.values()):
        raise AppError("app.custom_group.unique_name", 400, "The group name is not unique.")
    for uid in user_ids:
        if not is_valid_id(uid) or uid not in state.users:
            raise AppError("app.group.id.app_error", 400, "Invalid id property for group.")
    group = Group(id=new_id(), name=name, display_name=display_name, description=description,
                  create_at=state.now_ms(), update_at=state.now_ms())
    state.groups[group.id] = group
    for uid in dict.fromkeys(user_ids):
        state.group_members[(group.id, uid)] = state.now_ms()
    return created(group_json(state, group, with_count=True))


async def get_group_route(request: web.Request) -> web.Response:
    """GET /groups/{group_id} (getGroup)."""
    state = state_of(request)
    me = require_user(request)
    require_license(state)
    group = get_group(state, url_id(request, "group_id"))
    if not group.allow_reference and not _can_read_all_groups(state, me):
        raise forbidden("sysconsole_read_user_management_groups", me.id)
    licensed_for_custom(state)
    return json_response(group_json(state, group, with_count=query_bool(request, "include_member_count")))


def _listed(state: State, me: User, request: web.Request, member_id: str = "",
            filter_allow_reference: bool = False) -> list[dict[str, Any]]:
    q = request.query.get("q", "").lower()
    groups = [g for g in state.groups.values()
              if (g.delete_at == 0 or query_bool(request, "include_archived"))
              and (not query_bool(request, "filter_archived") or g.delete_at != 0)
              and (not filter_allow_reference or g.allow_reference)
              and (not q or q in g.name.lower() or q in g.display_name.lower())
              and (not member_id or (g.id, member_id) in state.group_members)]
    groups.sort(key=lambda g: (g.display_name.lower(), g.id))
    with_count = query_bool(request, "include_member_count")
    return [group_json(state, g, with_count) for g in groups]


async def list_groups(request: web.Request) -> web.Response:
    """GET /groups (getGroups): ?q, ?filter_has_member, ?group_source, ?include_member_count, paging.
    Without EnableCustomGroups only LDAP groups are listed (none here)."""
    state = state_of(request)
    me = require_user(request)
    require_license(state)
    source = request.query.get("group_source", "")
    if source == "custom":
        licensed_for_custom(state)
    if source not in ("", "custom") or not state.config.get("EnableCustomGroups", True):
        return json_response([])  # source ldap: the sandbox has no LDAP groups
    member = request.query.get("filter_has_member", "")
    if member and not is_valid_id(member):
        raise invalid_url("filter_has_member")
    filter_ref = query_bool(request, "filter_allow_reference") or not _can_read_all_groups(state, me)
    if member and not state.can_see_user(me, member):
        return json_response([])
    return json_response(page_slice(_listed(state, me, request, member, filter_ref), request))


async def groups_of_user(request: web.Request) -> web.Response:
    """GET /users/{user_id}/groups (getGroupsByUserId): yourself or manage_system, and LDAPGroups."""
    state = state_of(request)
    me = require_user(request)
    require_license(state)
    user_id = user_id_param(request, me)
    if me.id != user_id and not state.has_system_permission(me, "manage_system"):
        raise forbidden("manage_system", me.id)
    if not (state.license or {}).get("LDAPGroups"):
        raise AppError("api.ldap_groups.license_error", 403, "Your license does not support LDAP groups.")
    filter_ref = not _can_read_all_groups(state, me)
    groups = [g for g in state.groups.values()
              if g.delete_at == 0 and (g.id, user_id) in state.group_members
              and (not filter_ref or g.allow_reference)]
    groups.sort(key=lambda g: (g.display_name.lower(), g.id))
    return json_response([group_json(state, g) for g in groups])


async def _modify_members(request: web.Request, add: bool) -> web.Response:
    """POST/DELETE /groups/{group_id}/members (addGroupMembers / deleteGroupMembers): a custom group,
    manage_custom_group_members, body model.GroupModifyMembers; answers the []*model.GroupMember changed."""
    state = state_of(request)
    me = require_user(request)
    require_license(state)
    group = get_group(state, url_id(request, "group_id"))
    if group.source != "custom":
        raise AppError("app.group.crud_permission", 400, "Unable to change the group.")
    licensed_for_custom(state)
    if not state.has_system_permission(me, "manage_custom_group_members"):
        raise forbidden("manage_custom_group_members", me.id)
    name = "addGroupMembers" if add else "deleteGroupMembers"
    body = await read_json(request, name)
    if not isinstance(body, dict):
        raise invalid_body(name)
    user_ids = body.get("user_ids") or []
    if not isinstance(user_ids, list) or not all(isinstance(u, str) for u in user_ids):
        raise invalid_body(name)
    for uid in user_ids:
        if uid not in state.users:
            raise AppError("app.group.id.app_error", 400, "Invalid id property for group.")
    now = state.now_ms()
    changed = []
    for uid in dict.fromkeys(user_ids):
        key = (group.id, uid)
        if add:
            state.group_members.setdefault(key, now)
            changed.append({"group_id": group.id, "user_id": uid, "create_at": state.group_members[key],
                            "delete_at": 0})
        elif key in state.group_members:
            created_at = state.group_members.pop(key)
            changed.append({"group_id": group.id, "user_id": uid, "create_at": created_at, "delete_at": now})
    group.update_at = now
    return json_response(changed)


async def add_members(request: web.Request) -> web.Response:
    return await _modify_members(request, add=True)


async def delete_members(request: web.Request) -> web.Response:
    return await _modify_members(request, add=False)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/groups", create_group)
    r.add_get("/api/v4/groups", list_groups)
    r.add_get("/api/v4/groups/{group_id}", get_group_route)
    r.add_post("/api/v4/groups/{group_id}/members", add_members)
    r.add_delete("/api/v4/groups/{group_id}/members", delete_members)
    r.add_get("/api/v4/users/{user_id}/groups", groups_of_user)
