"""Channel routes (api4/channel.go): create, read, members, roles, DMs, archive, patch, lists."""
from __future__ import annotations

import json

from aiohttp import web

from sandbox import ops
from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.ids import is_valid_id
from sandbox.routes._helpers import (
    created,
    get_channel,
    get_team,
    get_user,
    hub_of,
    json_response,
    page_slice,
    query_bool,
    read_json,
    read_object,
    state_of,
    url_id,
)
from sandbox.state import Channel, State, User


def _kind(channel: Channel) -> str:
    return "public" if channel.type == "O" else "private"


def visible_channel(state: State, me: User, channel: Channel) -> Channel:
    """Read access, or the same 404 as a missing channel for private ones (no existence leak)."""
    if state.can_read_channel(me, channel):
        return channel
    if channel.type == "O":
        raise forbidden("read_channel", me.id)
    raise AppError("app.channel.get.existing.app_error", 404, "Unable to find the existing channel.")


async def create_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_object(request, "channel")
    for key in ("team_id", "name", "display_name", "type", "purpose", "header"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise invalid_body("channel")
    kind = body.get("type") or ""
    if kind in ("D", "G"):
        raise AppError("api.channel.create_channel.direct_channel.app_error", 400,
                       "Must use createDirectChannel API service for direct message channel creation.")
    team_id = body.get("team_id") or ""
    if not team_id:
        raise invalid_body("team_id")
    permission = "create_private_channel" if kind == "P" else "create_public_channel"
    if not state.has_team_permission(me, team_id, permission):
        raise forbidden(permission, me.id)
    team = get_team(state, team_id)
    channel = ops.create_channel(state, hub_of(request), team=team, creator=me, name=body.get("name") or "",
                                 display_name=body.get("display_name") or "", type=kind or "O",
                                 purpose=body.get("purpose") or "", header=body.get("header") or "")
    return created(channel.to_json())


async def get_channel_route(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    return json_response(visible_channel(state, me, channel).to_json())


def _by_name(state: State, me: User, team_id: str, name: str, include_deleted: bool) -> Channel:
    missing = AppError("app.channel.get_by_name.missing.app_error", 404, "Channel does not exist.")
    channel = state.channel_by_name(team_id, name, include_deleted=include_deleted)
    if channel is None:
        raise missing
    if state.can_read_channel(me, channel):
        return channel
    if channel.type == "O":
        raise forbidden("read_public_channel", me.id)
    raise missing


async def get_by_name(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team_id = url_id(request, "team_id")
    channel = _by_name(state, me, team_id, request.match_info["channel_name"],
                       query_bool(request, "include_deleted"))
    return json_response(channel.to_json())


async def get_by_team_and_channel_name(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team = state.team_by_name(request.match_info["team_name"])
    if team is None:
        raise AppError("app.team.get_by_name.missing.app_error", 404, "Unable to find the existing team.")
    channel = _by_name(state, me, team.id, request.match_info["channel_name"],
                       query_bool(request, "include_deleted"))
    return json_response(channel.to_json())


async def team_public_channels(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team_id = url_id(request, "team_id")
    if not state.has_team_permission(me, team_id, "list_team_channels"):
        raise forbidden("list_team_channels", me.id)
    channels = [c for c in state.channels.values() if c.team_id == team_id and c.type == "O"
                and not c.delete_at]
    channels.sort(key=lambda c: c.display_name.lower())
    return json_response([c.to_json() for c in page_slice(channels, request)])


async def add_member(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    body = await read_object(request, "user_id")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not is_valid_id(user_id):
        raise invalid_body("user_id")
    if channel.type in ("D", "G"):
        raise AppError("api.channel.add_user_to_channel.type.app_error", 400,
                       "Can not add user to this channel type.")
    if channel.type == "O" and user_id == me.id:
        permission = "join_public_channels"
        allowed = state.has_team_permission(me, channel.team_id, permission)
    else:
        permission = f"manage_{_kind(channel)}_channel_members"
        allowed = state.has_channel_permission(me, channel, permission)
    if not allowed:
        raise forbidden(permission, me.id)
    user = get_user(state, user_id)
    ops.add_channel_member(state, hub_of(request), channel, user, me)
    return created(state.channel_members[(channel.id, user.id)].to_json())


async def list_members(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = visible_channel(state, me, get_channel(state, url_id(request, "channel_id")))
    members = [m for (cid, _), m in state.channel_members.items() if cid == channel.id]
    return json_response([m.to_json() for m in page_slice(members, request)])


async def get_member(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = visible_channel(state, me, get_channel(state, url_id(request, "channel_id")))
    member = state.channel_members.get((channel.id, request.match_info["user_id"]))
    if member is None:
        raise AppError("app.channel.get_member.missing.app_error", 404,
                       "No channel member found for that user ID and channel ID.")
    return json_response(member.to_json())


async def remove_member(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    user = get_user(state, url_id(request, "user_id"))
    if user.id != me.id:
        permission = f"manage_{_kind(channel)}_channel_members"
        if not state.has_channel_permission(me, channel, permission):
            raise forbidden(permission, me.id)
    ops.remove_channel_member(state, hub_of(request), channel, user, me)
    return json_response({"status": "OK"})


def _set_member_roles(request: web.Request, roles: str) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    user_id = url_id(request, "user_id")
    if not state.has_channel_permission(me, channel, "manage_channel_roles"):
        raise forbidden("manage_channel_roles", me.id)
    member = state.channel_members.get((channel.id, user_id))
    if member is None:
        raise AppError("app.channel.get_member.missing.app_error", 404,
                       "No channel member found for that user ID and channel ID.")
    member.roles = roles
    member.last_update_at = ops.now_ms()
    hub_of(request).publish("channel_member_updated",
                            {"channelMember": json.dumps(member.to_json(), separators=(",", ":"))},
                            user_id=user_id)
    return json_response({"status": "OK"})


async def update_member_roles(request: web.Request) -> web.Response:
    body = await read_object(request, "roles")
    roles = body.get("roles")
    if not isinstance(roles, str):
        raise invalid_body("roles")
    names = roles.split()
    # Only channel-scoped roles are accepted (UpdateChannelMemberRoles).
    if "channel_user" not in names or any(r not in ("channel_user", "channel_admin") for r in names):
        raise AppError("api.channel.update_channel_member_roles.scheme_role.app_error", 400,
                       "The provided role is managed by a Scheme and therefore cannot be applied directly "
                       "to a Channel Member.")
    return _set_member_roles(request, " ".join(dict.fromkeys(names)))


async def update_member_scheme_roles(request: web.Request) -> web.Response:
    body = await read_object(request, "scheme_roles")
    if not isinstance(body.get("scheme_user"), bool) or not isinstance(body.get("scheme_admin"), bool):
        raise invalid_body("scheme_roles")
    if not body["scheme_user"] and body["scheme_admin"]:
        raise AppError("api.channel.update_channel_member_roles.unset_user_scheme.app_error", 400,
                       "Cannot set scheme_admin without scheme_user.")
    roles = "channel_user channel_admin" if body["scheme_admin"] else "channel_user"
    return _set_member_roles(request, roles)


async def create_direct(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_json(request, "user_ids")
    if not isinstance(body, list) or len(body) != 2 or not all(isinstance(x, str) for x in body):
        raise invalid_body("user_ids")
    if not all(is_valid_id(x) for x in body):
        raise invalid_body("user_id")
    if not state.has_system_permission(me, "create_direct_channel"):
        raise forbidden("create_direct_channel", me.id)
    if me.id not in body and not state.has_system_permission(me, "manage_system"):
        raise forbidden("manage_system", me.id)
    first, second = (get_user(state, uid) for uid in body)
    creator, other = (first, second) if first.id == me.id else (second, first)
    # api4/channel.go createDirectChannel: UserCanSeeOtherUser, else SetPermissionError(view_members).
    if not state.can_see_user(me, other.id):
        raise forbidden("view_members", me.id)
    channel, _created = ops.direct_channel(state, hub_of(request), creator, other)
    return created(channel.to_json())  # 201 also when it already existed


async def archive_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    if channel.type in ("D", "G"):
        raise AppError("api.channel.delete_channel.type.invalid", 400,
                       "Unable to delete direct or group message channels.")
    permission = f"delete_{_kind(channel)}_channel"
    if not state.has_channel_permission(me, channel, permission):
        raise forbidden(permission, me.id)
    ops.archive_channel(state, hub_of(request), channel, me)
    return json_response({"status": "OK"})


async def restore_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    # restoreChannel needs manage_team on the channel's team.
    if not state.has_team_permission(me, channel.team_id, "manage_team"):
        raise forbidden("manage_team", me.id)
    ops.restore_channel(state, hub_of(request), channel, me)
    return json_response(channel.to_json())


async def patch_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    channel = get_channel(state, url_id(request, "channel_id"))
    body = await read_object(request, "channel")
    if channel.delete_at:
        raise AppError("api.channel.patch_update_channel.forbidden.app_error", 400,
                       "Failed to patch the channel.")
    if channel.type in ("D", "G"):
        allowed = state.is_channel_member(channel.id, me.id)
        permission = "read_channel"
    else:
        permission = f"manage_{_kind(channel)}_channel_properties"
        allowed = state.has_channel_permission(me, channel, permission)
    if not allowed:
        raise forbidden(permission, me.id)
    ops.patch_channel(state, hub_of(request), channel, body, me)
    return json_response(channel.to_json())


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/channels", create_channel)
    r.add_post("/api/v4/channels/direct", create_direct)
    r.add_get("/api/v4/channels/{channel_id}", get_channel_route)
    r.add_delete("/api/v4/channels/{channel_id}", archive_channel)
    r.add_post("/api/v4/channels/{channel_id}/restore", restore_channel)
    r.add_put("/api/v4/channels/{channel_id}/patch", patch_channel)
    r.add_post("/api/v4/channels/{channel_id}/members", add_member)
    r.add_get("/api/v4/channels/{channel_id}/members", list_members)
    r.add_get("/api/v4/channels/{channel_id}/members/{user_id}", get_member)
    r.add_delete("/api/v4/channels/{channel_id}/members/{user_id}", remove_member)
    r.add_put("/api/v4/channels/{channel_id}/members/{user_id}/roles", update_member_roles)
    r.add_put("/api/v4/channels/{channel_id}/members/{user_id}/schemeRoles", update_member_scheme_roles)
    r.add_get("/api/v4/teams/{team_id}/channels", team_public_channels)
    r.add_get("/api/v4/teams/{team_id}/channels/name/{channel_name}", get_by_name)
    r.add_get("/api/v4/teams/name/{team_name}/channels/name/{channel_name}", get_by_team_and_channel_name)
