"""Custom slash commands: registration, listing, updating, moving, deleting, autocomplete (api4/command.go,
app/command.go). Executing one is in commands_execute.py, its response_url in commands_webhook.py."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from sandbox import gojson
from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_body, invalid_url
from sandbox.ids import is_valid_id, new_id, now_ms
from sandbox.keys import STATE
from sandbox.routes._helpers import json_response
from sandbox.state import Command, State, User

# Built-in triggers (app/command_*.go providers); a custom command may not take these names.
BUILTIN_TRIGGERS = {
    "away", "code", "collapse", "dnd", "echo", "expand", "groupmsg", "header", "help", "invite",
    "invite_people", "join", "kick", "leave", "logout", "me", "msg", "mute", "offline", "online", "open",
    "purpose", "remove", "rename", "search", "settings", "shortcuts", "shrug", "status",
}


def require_enabled(state: State) -> None:
    if not state.config.get("EnableCommands", True):
        raise AppError("api.command.disabled.app_error", 501, "Commands have been disabled by the system admin.")


def _not_found() -> AppError:
    # Context.SetCommandNotFoundError: also used when the caller lacks permission, so ids do not leak.
    return AppError("store.sql_command.save.get.app_error", 404, "Unable to get the command.")


def _validate(cmd: Command) -> None:
    """model.Command.IsValid, then the trigger rules of createCommand."""
    def bad(field: str, param: str = "") -> AppError:
        return AppError(f"model.command.is_valid.{field}.app_error", 400, f"Invalid {param or field}.")

    if not is_valid_id(cmd.team_id):
        raise bad("team_id")
    if not cmd.trigger or len(cmd.trigger.encode()) > 128 or cmd.trigger.startswith("/") or " " in cmd.trigger:
        raise bad("trigger")
    if not cmd.url or len(cmd.url) > 1024:
        raise bad("url")
    parts = urlsplit(cmd.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad("url_http", "url")
    if cmd.method not in ("P", "G"):
        raise bad("method")
    if len(cmd.display_name) > 64:
        raise bad("display_name")
    if len(cmd.description) > 128:
        raise bad("description")


def _can_manage(state: State, user: User, team_id: str, creator_id: str) -> bool:
    if not state.has_team_permission(user, team_id, "manage_own_slash_commands") and \
            not state.has_team_permission(user, team_id, "manage_slash_commands"):
        return False
    return user.id == creator_id or state.has_team_permission(user, team_id, "manage_others_slash_commands")


def _check_trigger_free(state: State, cmd: Command) -> None:
    for other in state.commands.values():
        if other.team_id == cmd.team_id and not other.delete_at and other.id != cmd.id \
                and other.trigger == cmd.trigger:
            raise AppError("api.command.duplicate_trigger.app_error", 400, "This trigger word is already in use.")
    if cmd.trigger in BUILTIN_TRIGGERS:
        raise AppError("api.command.duplicate_trigger.app_error", 400, "This trigger word is already in use.")


def _command_from_body(body: dict[str, Any]) -> dict[str, Any]:
    fields = {"team_id": str, "trigger": str, "url": str, "method": str, "display_name": str,
              "description": str, "username": str, "icon_url": str, "auto_complete": bool,
              "auto_complete_desc": str, "auto_complete_hint": str, "creator_id": str, "id": str}
    out: dict[str, Any] = {}
    for key, kind in fields.items():
        if key in body and body[key] is not None:
            if not isinstance(body[key], kind):
                raise invalid_body("command")
            out[key] = body[key]
    return out


async def _body(request: web.Request, name: str) -> dict[str, Any]:
    try:
        body = gojson.loads(await request.read() or b"null")
    except ValueError:
        raise invalid_body(name) from None
    if not isinstance(body, dict):
        raise invalid_body(name)
    return body


async def create_command(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    user = require_user(request)
    fields = _command_from_body(await _body(request, "command"))
    team_id = fields.get("team_id", "")
    if not state.has_team_permission(user, team_id, "manage_own_slash_commands") and \
            not state.has_team_permission(user, team_id, "manage_slash_commands"):
        raise forbidden("manage_own_slash_commands", user.id)
    creator_id = user.id
    if fields.get("creator_id") and fields["creator_id"] != user.id:
        if not state.has_team_permission(user, team_id, "manage_others_slash_commands"):
            raise forbidden("manage_others_slash_commands", user.id)
        if fields["creator_id"] not in state.users:
            raise AppError("app.user.missing_account.const", 404, "Unable to find the user.")
        creator_id = fields["creator_id"]
    require_enabled(state)
    fields.pop("id", None)
    fields.pop("creator_id", None)
    cmd = Command(id=new_id(), token=new_id(), creator_id=creator_id,
                  **{k: v for k, v in fields.items()})
    cmd.trigger = cmd.trigger.lower()  # createCommand lowercases before anything else
    _check_trigger_free(state, cmd)
    _validate(cmd)
    state.commands[cmd.id] = cmd
    return json_response(cmd.to_json(), status=201)


def _visible_commands(state: State, team_id: str) -> list[Command]:
    return [c for c in state.commands.values() if c.team_id == team_id and not c.delete_at]


async def list_commands(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    user = require_user(request)
    team_id = request.query.get("team_id", "")
    if not is_valid_id(team_id):
        raise AppError("api.context.invalid_param.app_error", 400, "Invalid team_id parameter.")
    custom_only = request.query.get("custom_only", "false").lower() in ("true", "1", "t")
    if not state.has_team_permission(user, team_id, "view_team"):
        raise forbidden("view_team", user.id)
    require_enabled(state)
    may_manage = state.has_team_permission(user, team_id, "manage_own_slash_commands") or \
        state.has_team_permission(user, team_id, "manage_slash_commands")
    may_others = state.has_team_permission(user, team_id, "manage_others_slash_commands")
    mine = [c for c in _visible_commands(state, team_id) if may_others or c.creator_id == user.id]
    if custom_only:
        if not may_manage:
            raise forbidden("manage_own_slash_commands", user.id)
        return json_response([c.to_json() for c in mine])
    if not may_manage:
        # ListAutocompleteCommands: only auto_complete commands, sanitized.
        return json_response([c.to_json(sanitize=True) for c in _visible_commands(state, team_id)
                                  if c.auto_complete])
    return json_response([c.to_json(sanitize=True) for c in mine])


def _get_managed(request: web.Request, user: User, check_others_404: bool = True) -> Command:
    state: State = request.app[STATE]
    command_id = request.match_info["command_id"]
    if not is_valid_id(command_id):
        raise invalid_url("command_id")
    require_enabled(state)
    cmd = state.commands.get(command_id)
    if cmd is None or cmd.delete_at:
        raise _not_found()
    if not state.has_team_permission(user, cmd.team_id, "view_team") or not (
            state.has_team_permission(user, cmd.team_id, "manage_own_slash_commands")
            or state.has_team_permission(user, cmd.team_id, "manage_slash_commands")):
        raise _not_found()
    if user.id != cmd.creator_id and not state.has_team_permission(user, cmd.team_id,
                                                                   "manage_others_slash_commands"):
        if check_others_404:
            raise _not_found()
        raise forbidden("manage_others_slash_commands", user.id)
    return cmd


async def get_command(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response(_get_managed(request, user).to_json())


async def update_command(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    user = require_user(request)
    command_id = request.match_info["command_id"]
    if not is_valid_id(command_id):
        raise invalid_url("command_id")
    body = await _body(request, "command")
    fields = _command_from_body(body)
    if fields.get("id") != command_id:
        raise AppError("api.context.invalid_param.app_error", 400, "Invalid command parameter.")
    old = state.commands.get(command_id)
    if old is None or old.delete_at:
        raise _not_found()
    if fields.get("team_id", "") != old.team_id:
        raise AppError("api.command.team_mismatch.app_error", 400, "Unable to update commands across teams.")
    cmd = _get_managed(request, user, check_others_404=False)
    # UpdateCommand: the body is the whole command; id, token, creator, team and create_at are kept.
    updated = Command(id=cmd.id, token=cmd.token, team_id=cmd.team_id, creator_id=cmd.creator_id,
                      create_at=cmd.create_at, update_at=now_ms(), delete_at=cmd.delete_at,
                      trigger=str(fields.get("trigger", "")).lower(), url=fields.get("url", ""),
                      method=fields.get("method", ""),
                      **{k: fields[k] for k in ("display_name", "description", "username", "icon_url",
                                                "auto_complete", "auto_complete_desc", "auto_complete_hint")
                         if k in fields})
    _validate(updated)
    state.commands[cmd.id] = updated
    return json_response(updated.to_json())


async def delete_command(request: web.Request) -> web.Response:
    user = require_user(request)
    cmd = _get_managed(request, user, check_others_404=False)
    cmd.delete_at = now_ms()
    return json_response({"status": "OK"})


async def regen_token(request: web.Request) -> web.Response:
    user = require_user(request)
    cmd = _get_managed(request, user, check_others_404=False)
    cmd.token = new_id()
    cmd.update_at = now_ms()
    return json_response({"token": cmd.token})


async def move_command(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    user = require_user(request)
    body = await _body(request, "team_id")
    team = state.teams.get(str(body.get("team_id", "")))
    if team is None:
        raise AppError("app.team.get.find.app_error", 404, "Unable to find the existing team.")
    if not state.has_team_permission(user, team.id, "manage_own_slash_commands") and \
            not state.has_team_permission(user, team.id, "manage_slash_commands"):
        raise forbidden("manage_own_slash_commands", user.id)
    cmd = _get_managed(request, user, check_others_404=False)
    cmd.team_id = team.id
    cmd.update_at = now_ms()
    return json_response({"status": "OK"})


async def autocomplete(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    user = require_user(request)
    team_id = request.match_info["team_id"]
    if not is_valid_id(team_id):
        raise invalid_url("team_id")
    if not state.has_team_permission(user, team_id, "view_team"):
        raise forbidden("view_team", user.id)
    return json_response([c.to_json(sanitize=True) for c in _visible_commands(state, team_id)
                              if c.auto_complete])


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/commands", create_command)
    r.add_get("/api/v4/commands", list_commands)
    r.add_get("/api/v4/commands/{command_id}", get_command)
    r.add_put("/api/v4/commands/{command_id}", update_command)
    r.add_delete("/api/v4/commands/{command_id}", delete_command)
    r.add_put("/api/v4/commands/{command_id}/regen_token", regen_token)
    r.add_put("/api/v4/commands/{command_id}/move", move_command)
    r.add_get("/api/v4/teams/{team_id}/commands/autocomplete", autocomplete)
