"""Executing a slash command: POST /api/v4/commands/execute, built-ins and custom commands (api4/command.go,
app/command.go). The outgoing request copies DoCommandRequest field for field."""
from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sandbox import gojson, ops
from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden
from sandbox.hub import Hub
from sandbox.ids import is_valid_id, new_id
from sandbox.keys import HUB, STATE
from sandbox.routes._command_response import command_response, handle_command_response, response_from_http_body
from sandbox.routes._helpers import json_response
from sandbox.routes._outgoing import OutgoingError, call_integration
from sandbox.routes.commands import require_enabled
from sandbox.state import Command, CommandWebhook, State, User

log = logging.getLogger(__name__)

AT_MENTION_RE = re.compile(r"\B@[^\W_][\w.\-:]*")  # atMentionRegexp `\B@[[:alnum:]][[:alnum:]\.\-_:]*`
CHANNEL_MENTION_RE = re.compile(r"\B~([a-zA-Z0-9\-_]+)")  # model.ChannelMentions


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


async def execute_command(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    hub: Hub = request.app[HUB]
    user = require_user(request)
    try:
        args = gojson.loads(await request.read() or b"null")
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
    # api4/command.go executeCommand: "Checks that user is a member of the specified channel, and that they
    # have permission to create a post in it" (PermissionCreatePost; older servers PermissionUseSlashCommands).
    # The caller may be a person's own token (the bot runs an item's command as them): the same check.
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
        require_enabled(state)
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
    """tryExecuteCustomCommand + DoCommandRequest (app/command.go)."""
    team = state.teams.get(cmd.team_id)
    # Current code sends root_id always (`p.Set("root_id", args.RootId)`, "" outside a thread).
    fields: list[tuple[str, str]] = [
        ("token", cmd.token), ("team_id", cmd.team_id), ("team_domain", team.name if team else ""),
        ("channel_id", channel.id), ("channel_name", channel.name), ("user_id", user.id),
        ("user_name", user.username), ("command", "/" + trigger), ("text", text), ("trigger_id", trigger_id),
        ("root_id", root_id),
    ]
    user_mentions = _user_mentions(state, text, team_id)
    if user_mentions:
        fields += [("user_mentions", n) for n, _ in user_mentions]
        fields += [("user_mentions_ids", i) for _, i in user_mentions]
    channel_mentions = _channel_mentions(state, text, team_id)
    if channel_mentions:
        fields += [("channel_mentions", n) for n, _ in channel_mentions]
        fields += [("channel_mentions_ids", i) for _, i in channel_mentions]
    # response_url comes from the configured SiteURL only, never the request's Host ("to prevent SSRF via
    # Host header spoofing (MM-67142)"); without a SiteURL a custom command is refused, before its hook is
    # made.
    if not state.site_url:
        raise AppError("api.command.execute_command.site_url_required.app_error", 400,
                       "SiteURL must be configured to execute custom slash commands.")
    hook = CommandWebhook(id=new_id(), command_id=cmd.id, user_id=user.id, channel_id=channel.id,
                          root_id=root_id, create_at=int(request.app[HUB].clock() * 1000))
    state.command_webhooks[hook.id] = hook
    fields.append(("response_url", f"{state.site_url}/hooks/commands/{hook.id}"))
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


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v4/commands/execute", execute_command)
