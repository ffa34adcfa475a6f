"""Read state of channels: the members list a client derives unread markers from, and "view channel".

- GET /api/v4/users/{user_id}/teams/{team_id}/channels/members (api4/channel.go
  getChannelMembersForTeamForUser): the user's ChannelMember rows in the team's channels and in their DMs
  and GMs (Channels.TeamId = team or ''), archived channels left out. A channel is unread when its
  `total_msg_count` is above the member's `msg_count`.
- POST /api/v4/channels/members/{user_id}/view (api4/channel.go viewChannel, app.ViewChannel): marks the
  channel (and the one being left, `prev_channel_id`) read: msg_count catches up with the channel,
  mention_count drops to 0, last_viewed_at is now. Answers {"status": "OK", "last_viewed_at_times": {...}}
  and tells the user's other sessions with `multiple_channels_viewed` {"channel_times": {...}}.
"""
from __future__ import annotations

from aiohttp import web

from sandbox.auth import require_user, token_from_request
from sandbox.errors import forbidden, invalid_body, invalid_url
from sandbox.ids import is_valid_id, now_ms
from sandbox.routes._helpers import (
    get_team,
    hub_of,
    json_response,
    read_json,
    state_of,
    url_id,
    user_id_param,
)


async def team_channel_members(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    user_id = user_id_param(request, me)
    team_id = url_id(request, "team_id")
    # SessionHasPermissionToUser, then view_team on the team.
    if not state.has_permission_to_user(me, user_id):  # SessionHasPermissionToUser
        raise forbidden("edit_other_users", me.id)
    get_team(state, team_id)
    if not state.has_team_permission(me, team_id, "view_team"):
        raise forbidden("view_team", me.id)
    members = []
    for (channel_id, uid), member in state.channel_members.items():
        channel = state.channels.get(channel_id)
        if uid == user_id and channel is not None and not channel.delete_at \
                and channel.team_id in (team_id, ""):
            members.append(member.to_json())
    return json_response(members)


async def view_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    user_id = user_id_param(request, me)
    body = await read_json(request, "channel_view")
    if not isinstance(body, dict):
        raise invalid_body("channel_view")
    channel_id = body.get("channel_id") or ""
    prev_id = body.get("prev_channel_id") or ""
    # Blank ids are allowed: "" means every channel lost focus (the window was blurred).
    if not isinstance(channel_id, str) or (channel_id and not is_valid_id(channel_id)):
        raise invalid_url("channel_view.channel_id")
    if not isinstance(prev_id, str) or (prev_id and not is_valid_id(prev_id)):
        raise invalid_url("channel_view.prev_channel_id")
    if not state.has_permission_to_user(me, user_id):  # SessionHasPermissionToUser
        raise forbidden("edit_other_users", me.id)
    times: dict[str, int] = {}
    now = now_ms()
    for cid in dict.fromkeys(c for c in (channel_id, prev_id) if c):
        member = state.channel_members.get((cid, user_id))
        channel = state.channels.get(cid)
        if member is None or channel is None:
            continue  # not a member: nothing to mark, and no error (UpdateLastViewedAt skips it)
        member.msg_count = channel.total_msg_count
        member.mention_count = 0
        member.last_viewed_at = now
        member.last_update_at = now
        times[cid] = now
    if times:
        hub_of(request).publish("multiple_channels_viewed", {"channel_times": times}, user_id=user_id)
    # viewChannel: `UpdateLastActivityAtIfNeeded(*c.AppContext.Session())` -> the WebSocket reaper's clock.
    hub_of(request).touch(me.id, token_from_request(request) or "")
    return json_response({"status": "OK", "last_viewed_at_times": times})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v4/users/{user_id}/teams/{team_id}/channels/members", team_channel_members)
    r.add_post("/api/v4/channels/members/{user_id}/view", view_channel)
