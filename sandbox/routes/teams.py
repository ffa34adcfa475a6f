"""Team routes (api4/team.go): create, read, list, members."""
from __future__ import annotations

from aiohttp import web

from sandbox import ops
from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.routes._helpers import (
    created,
    get_team,
    get_user,
    hub_of,
    json_response,
    page_slice,
    read_object,
    state_of,
    url_id,
)
from sandbox.state import State, Team, User


def can_view_team(state: State, me: User, team: Team) -> bool:
    # getTeam: view_team, or an open team and list_public_teams.
    return state.has_team_permission(me, team.id, "view_team") or (
        team.type == "O" and state.has_system_permission(me, "list_public_teams"))


async def create_team(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    body = await read_object(request, "team")
    name, display_name, kind = body.get("name"), body.get("display_name"), body.get("type", "")
    if not all(isinstance(v, str) for v in (name, display_name, kind)):
        raise invalid_body("team")
    if not state.has_system_permission(me, "create_team"):
        raise AppError("api.team.is_team_creation_allowed.disabled.app_error", 403,
                       "Team creation has been disabled. Please ask your System Administrator for details.")
    team = ops.create_team(state, hub_of(request), name=name, display_name=display_name, type=kind,
                           creator=me)
    return created(team.to_json())


async def get_team_route(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team = get_team(state, url_id(request, "team_id"))
    if not can_view_team(state, me, team):
        raise forbidden("view_team", me.id)
    return json_response(team.to_json())


async def get_team_by_name(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team = state.team_by_name(request.match_info["name"])
    if team is None:
        raise AppError("app.team.get_by_name.missing.app_error", 404, "Unable to find the existing team.")
    if not can_view_team(state, me, team):
        raise forbidden("view_team", me.id)
    return json_response(team.to_json())


async def list_teams(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    teams = [t for t in state.teams.values() if not t.delete_at]
    if not state.has_system_permission(me, "manage_system"):
        # Without sysconsole rights: open teams only, if list_public_teams.
        if not state.has_system_permission(me, "list_public_teams"):
            teams = []
        teams = [t for t in teams if t.type == "O"]
    teams.sort(key=lambda t: t.display_name.lower())
    return json_response([t.to_json() for t in page_slice(teams, request)])


async def add_member(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team = get_team(state, url_id(request, "team_id"))
    body = await read_object(request, "team_member")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise invalid_body("user_id")
    if body.get("team_id") not in (None, "", team.id):
        raise invalid_body("team_id")
    if user_id == me.id and team.type == "O" and state.has_system_permission(me, "join_public_teams"):
        pass
    elif not state.has_team_permission(me, team.id, "add_user_to_team"):
        raise forbidden("add_user_to_team", me.id)
    user = get_user(state, user_id)
    # Adding an existing member answers 201 with the existing membership.
    member = ops.add_team_member(state, hub_of(request), team, user)
    return created(member.to_json())


async def list_members(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team = get_team(state, url_id(request, "team_id"))
    if not state.has_team_permission(me, team.id, "view_team"):
        raise forbidden("view_team", me.id)
    members = [m for (tid, _), m in state.team_members.items() if tid == team.id and not m.delete_at]
    return json_response([m.to_json() for m in page_slice(members, request)])


async def get_member(request: web.Request) -> web.Response:
    state = state_of(request)
    me = require_user(request)
    team = get_team(state, url_id(request, "team_id"))
    if not state.has_team_permission(me, team.id, "view_team"):
        raise forbidden("view_team", me.id)
    member = state.team_members.get((team.id, request.match_info["user_id"]))
    if member is None:
        raise AppError("app.team.get_member.missing.app_error", 404,
                       "No team member found for that user ID and team ID.")
    return json_response(member.to_json())


async def update_member_scheme_roles(request: web.Request) -> web.Response:
    """PUT /teams/{team_id}/members/{user_id}/schemeRoles (api4/team.go updateTeamMemberSchemeRoles).

    Needs manage_team_roles in the team; answers {"status": "OK"} like the real route.
    """
    state = state_of(request)
    me = require_user(request)
    team = get_team(state, url_id(request, "team_id"))
    body = await read_object(request, "scheme_roles")
    if not isinstance(body.get("scheme_user"), bool) or not isinstance(body.get("scheme_admin"), bool):
        raise invalid_body("scheme_roles")
    if not state.has_team_permission(me, team.id, "manage_team_roles"):
        raise forbidden("manage_team_roles", me.id)
    member = state.team_members.get((team.id, url_id(request, "user_id")))
    if member is None or member.delete_at:
        raise AppError("app.team.get_member.missing.app_error", 404,
                       "No team member found for that user ID and team ID.")
    member.roles = "team_user team_admin" if body["scheme_admin"] else "team_user"
    return json_response({"status": "OK"})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/teams", create_team)
    r.add_get("/api/v4/teams", list_teams)
    r.add_get("/api/v4/teams/name/{name}", get_team_by_name)
    r.add_get("/api/v4/teams/{team_id}", get_team_route)
    r.add_post("/api/v4/teams/{team_id}/members", add_member)
    r.add_get("/api/v4/teams/{team_id}/members", list_members)
    r.add_get("/api/v4/teams/{team_id}/members/{user_id}", get_member)
    r.add_put("/api/v4/teams/{team_id}/members/{user_id}/schemeRoles", update_member_scheme_roles)
