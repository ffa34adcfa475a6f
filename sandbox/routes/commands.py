"""Custom slash commands: registration, execution, delayed responses (api4/command.go, app/command.go,
web/webhook.go). The outgoing request copies DoCommandRequest field for field."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sandbox import ops
from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_body, invalid_url
from sandbox.hub import Hub
from sandbox.ids import is_valid_id, new_id, now_ms
from sandbox.keys import HUB, STATE
from sandbox.routes._command_response import command_response, handle_command_response, response_from_http_body
from sandbox.routes._helpers import json_response
from sandbox.routes._outgoing import OutgoingError, call_integration
from sandbox.state import Command, CommandWebhook, State, User

log = logging.getLogger(__name__)

WEBHOOK_MAX_USES = 5  # TryUse(id, 5)
# Built-in triggers (app/command_*.go providers); a custom command may not take these names.
BUILTIN_TRIGGERS = {
    "away", "code", "collapse", "dnd", "echo", "expand", "groupmsg", "header", "help", "invite",
    "invite_people", "join", "kick", "leave", "logout", "me", "msg", "mute", "offline", "online", "open",
    "purpose", "remove", "rename", "search", "settings", "shortcuts", "shrug", "status",
}
AT_MENTION_RE = re.compile(r"\B@[^\W_][\w.\-:]*")  # atMentionRegexp `\B@[[:alnum:]][[:alnum:]\.\-_:]*`
CHANNEL_MENTION_RE = re.compile(r"\B~([a-zA-Z0-9\-_]+)")  # model.ChannelMentions


# -- routes: registering -------------------------------------------------------------------------
def _enabled(state: State) -> None:
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
        body = json.loads(await request.read() or b"null")
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
    _enabled(state)
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
    _enabled(state)
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
    _enabled(state)
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


# -- routes: executing ---------------------------------------------------------------------------
def split_command(text: str) -> tuple[str, str]:
    """ExecuteCommand: the trigger ends at the first Unicode whitespace; the rest is verbatim."""
    for index, ch in enumerate(text):
        if ch.isspace() or unicodedata.category(ch) == "Zs":
            return text[:index].lower(), text[index + 1:]
    return text.lower(), ""


def _user_mentions(state: State, text: str, team_id: str) -> list[tuple[str, str]]:
    """MentionsToTeamMembers: @names of team members; trailing . - _ are trimmed while searching."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    for match in AT_MENTION_RE.findall(text):
        name = match[1:].lower()
        if name in seen:
            continue
        seen.add(name)
        candidate = name
        while True:
            user = state.user_by_username(candidate)
            if user is not None:
                if state.is_team_member(team_id, user.id):
                    found[candidate] = user.id
                break
            if candidate and candidate[-1] in ".-_":
                candidate = candidate[:-1]
                continue
            break
    return list(found.items())


def _channel_mentions(state: State, text: str, team_id: str) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for name in CHANNEL_MENTION_RE.findall(text):
        channel = state.channel_by_name(team_id, name)
        if channel is not None and channel.type == "O":
            found[name] = channel.id
    return list(found.items())


def site_url(request: web.Request) -> str:
    state: State = request.app[STATE]
    return state.site_url or f"{request.scheme}://{request.host}"


async def execute_command(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    hub: Hub = request.app[HUB]
    user = require_user(request)
    try:
        args = json.loads(await request.read() or b"null")
    except ValueError:
        raise AppError("api.context.invalid_param.app_error", 400, "Invalid command_args parameter.") from None
    if not isinstance(args, dict):
        raise AppError("api.context.invalid_param.app_error", 400, "Invalid command_args parameter.")
    command_text = args.get("command") if isinstance(args.get("command"), str) else ""
    channel_id = args.get("channel_id") if isinstance(args.get("channel_id"), str) else ""
    root_id = args.get("root_id") if isinstance(args.get("root_id"), str) else ""
    if len(command_text) <= 1 or not command_text.startswith("/") or not is_valid_id(channel_id):
        raise AppError("api.command.execute_command.start.app_error", 400,
                       "No command trigger found.")
    channel = state.channels.get(channel_id)
    if channel is None or not state.has_channel_permission(user, channel, "create_post"):
        raise forbidden("create_post", user.id)
    if channel.delete_at:
        raise AppError("api.command.execute_command.deleted.error", 400,
                       "Cannot execute command in archived channel.")
    team_id = args.get("team_id") if isinstance(args.get("team_id"), str) else ""
    if channel.type not in ("D", "G"):
        team_id = channel.team_id  # so commands of another team cannot run here
    elif not state.is_team_member(team_id, user.id) and not state.has_system_permission(user, "create_post"):
        raise forbidden("create_post", user.id)

    trigger, text = split_command(command_text)
    trigger = trigger[1:]
    client_trigger_id, trigger_id = hub.triggers.generate(user.id)
    cmd = next((c for c in state.commands.values()
                if c.team_id == team_id and not c.delete_at and c.trigger == trigger), None)
    if cmd is not None:
        _enabled(state)
        response = await _run_custom(request, state, cmd, user, channel, team_id, root_id, trigger, text,
                                     trigger_id)
        response["trigger_id"] = client_trigger_id
        handle_command_response(state, hub, cmd, user, channel.id, root_id, response, built_in=False)
        return json_response(response)
    builtin = _builtin(state, hub, trigger, text, user, channel.id, root_id)
    if builtin is not None:
        handle_command_response(state, hub, None, user, channel.id, root_id, builtin, built_in=True)
        return json_response(builtin)
    shown = trigger[:512] + ("..." if len(trigger) > 512 else "")
    raise AppError("api.command.execute_command.not_found.app_error", 404,
                   f"Command with a trigger of '{shown}' not found.")


async def _run_custom(request: web.Request, state: State, cmd: Command, user: User, channel, team_id: str,
                      root_id: str, trigger: str, text: str, trigger_id: str) -> dict[str, Any]:
    """tryExecuteCustomCommand + DoCommandRequest."""
    team = state.teams.get(cmd.team_id)
    hook = CommandWebhook(id=new_id(), command_id=cmd.id, user_id=user.id, channel_id=channel.id,
                          root_id=root_id, create_at=int(request.app[HUB].clock() * 1000))
    state.command_webhooks[hook.id] = hook
    fields: list[tuple[str, str]] = [
        ("token", cmd.token), ("team_id", cmd.team_id), ("team_domain", team.name if team else ""),
        ("channel_id", channel.id), ("channel_name", channel.name), ("user_id", user.id),
        ("user_name", user.username), ("command", "/" + trigger), ("text", text), ("trigger_id", trigger_id),
    ]
    user_mentions = _user_mentions(state, text, team_id)
    if user_mentions:
        fields += [("user_mentions", n) for n, _ in user_mentions]
        fields += [("user_mentions_ids", i) for _, i in user_mentions]
    channel_mentions = _channel_mentions(state, text, team_id)
    if channel_mentions:
        fields += [("channel_mentions", n) for n, _ in channel_mentions]
        fields += [("channel_mentions_ids", i) for _, i in channel_mentions]
    fields.append(("response_url", f"{site_url(request)}/hooks/commands/{hook.id}"))
    # url.Values.Encode sorts by key (stable within a key).
    encoded = urlencode(sorted(fields, key=lambda kv: kv[0]))
    headers = {"Accept": "application/json"}
    if cmd.token:
        headers["Authorization"] = "Token " + cmd.token
    url = cmd.url
    failed = AppError("api.command.execute_command.failed.app_error", 500,
                      f"Command with a trigger of '{trigger}' failed.")
    try:
        if cmd.method == "G":
            url = url + ("&" if urlsplit(url).query else ("" if url.endswith("?") else "?")) + encoded
            content_type, body = await call_integration(state, "GET", url, headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content_type, body = await call_integration(state, "POST", url, body=encoded.encode(),
                                                        headers=headers)
    except OutgoingError as err:
        if err.status is not None:
            raise AppError("api.command.execute_command.failed_resp.app_error", 500,
                           f"Command with a trigger of '{trigger}' returned response {err.status}.") from None
        raise failed from None
    try:
        return response_from_http_body(content_type, body)
    except ValueError:
        raise failed from None


def _builtin(state: State, hub: Hub, trigger: str, text: str, user: User, channel_id: str,
             root_id: str) -> dict[str, Any] | None:
    """The two built-ins the sandbox runs: /echo (command_echo.go) and /me (command_me.go)."""
    if trigger == "me":
        return command_response({"response_type": "in_channel", "type": "me", "text": "*" + text + "*"})
    if trigger == "echo":
        message = text.strip()
        if not message:
            return command_response({"response_type": "ephemeral",
                                     "text": "Use quotes to echo text with a delay, e.g. /echo \"hi\" 5"})
        delay = 0
        end = message.rfind('"')
        if message.startswith('"') and end > 1:
            tail = message[end:].strip(' "')
            delay = int(tail) if re.fullmatch(r"-?\d+", tail) else 0
            message = message[1:end]
        elif " " in message:
            idx = message.rfind(" ")
            tail = message[idx:].strip()
            if re.fullmatch(r"-?\d+", tail):
                delay = int(tail)
                message = message[:idx]
        if delay > 10000:
            return command_response({"response_type": "ephemeral", "text": "Delays must be under 10000 seconds"})
        post = {"channel_id": channel_id, "root_id": root_id, "message": message}

        async def later() -> None:
            await asyncio.sleep(delay)
            try:
                ops.create_post(state, hub, user, post)
            except AppError as err:
                log.debug("echo post failed: %s", err.id)

        if delay > 0:
            asyncio.get_running_loop().create_task(later())
        else:
            ops.create_post(state, hub, user, post)
        return command_response({})
    return None


async def command_webhook(request: web.Request) -> web.Response:
    """POST /hooks/commands/{id}: the response_url. No auth; 30 minutes; 5 uses; answers text/plain `ok`."""
    state: State = request.app[STATE]
    hub: Hub = request.app[HUB]
    hook_id = request.match_info["hook_id"]
    body = await request.read()
    try:
        response = response_from_http_body(request.headers.get("Content-Type", ""), body)
    except ValueError:
        raise AppError("web.command_webhook.parse.app_error", 400, "Unable to parse incoming data.") from None

    def general(status: int) -> AppError:
        # Newer servers wrap the inner error (app.command_webhook.get.missing / try_use.invalid).
        return AppError("web.command_webhook.general.app_error", status, "Unable to handle the command webhook.")

    hook = state.command_webhooks.get(hook_id)
    lifetime = int(state.config.get("CommandWebhookLifetimeMs", 30 * 60 * 1000))
    if hook is None or hook.create_at <= int(hub.clock() * 1000) - lifetime:
        raise general(404)
    cmd = state.commands.get(hook.command_id)
    user = state.users.get(hook.user_id)
    if cmd is None or user is None:
        raise general(400)
    if hook.use_count >= WEBHOOK_MAX_USES:
        raise general(400)
    hook.use_count += 1
    try:
        handle_command_response(state, hub, cmd, user, hook.channel_id, hook.root_id, response, built_in=False)
    except AppError as err:
        raise general(err.status_code) from None
    return web.Response(text="ok", content_type="text/plain")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/commands", create_command)
    r.add_get("/api/v4/commands", list_commands)
    r.add_post("/api/v4/commands/execute", execute_command)
    r.add_get("/api/v4/commands/{command_id}", get_command)
    r.add_put("/api/v4/commands/{command_id}", update_command)
    r.add_delete("/api/v4/commands/{command_id}", delete_command)
    r.add_put("/api/v4/commands/{command_id}/regen_token", regen_token)
    r.add_put("/api/v4/commands/{command_id}/move", move_command)
    r.add_get("/api/v4/teams/{team_id}/commands/autocomplete", autocomplete)
    r.add_post("/hooks/commands/{hook_id}", command_webhook)
