"""A slash command's reply, a CommandResponse (app/command.go): decoded the way Go decodes it, then
posted with its extra_responses, in channel or as an ephemeral post. Used by command execution and
by the response_url."""
from __future__ import annotations

import json
import logging
from typing import Any

from sandbox import gojson, ops
from sandbox.errors import AppError
from sandbox.hub import Hub
from sandbox.routes._slack import parse_slack_links, process_slack_text
from sandbox.state import Command, State, User

log = logging.getLogger(__name__)


def _stringify_fields(attachments: Any) -> Any:
    """StringifySlackFieldValue: field values arrive as strings whatever JSON type they had."""
    if not isinstance(attachments, list):
        return attachments
    for attachment in attachments:
        if isinstance(attachment, dict):
            for fld in attachment.get("fields") or []:
                if isinstance(fld, dict) and "value" in fld and not isinstance(fld["value"], str):
                    value = fld["value"]
                    fld["value"] = json.dumps(value) if not isinstance(value, (int, float)) else (
                        str(int(value)) if isinstance(value, float) and value.is_integer() else str(value))
    return attachments


def command_response(raw: dict[str, Any]) -> dict[str, Any]:
    """A CommandResponse the way Go decodes and re-encodes it: every field present, unknown ones dropped."""
    def s(key: str) -> str:
        value = raw.get(key)
        return value if isinstance(value, str) else ""

    extra = raw.get("extra_responses")
    return {
        "response_type": s("response_type"), "text": s("text"), "username": s("username"),
        "channel_id": s("channel_id"), "icon_url": s("icon_url"), "type": s("type"),
        "props": raw.get("props") if isinstance(raw.get("props"), dict) else None,
        "goto_location": s("goto_location"), "trigger_id": s("trigger_id"),
        "skip_slack_parsing": raw.get("skip_slack_parsing") is True,
        "attachments": _stringify_fields(raw.get("attachments")) if isinstance(raw.get("attachments"), list)
        else None,
        "extra_responses": [command_response(r) for r in extra if isinstance(r, dict)]
        if isinstance(extra, list) else None,
    }


def response_from_http_body(content_type: str, body: bytes) -> dict[str, Any]:
    """CommandResponseFromHTTPBody: JSON only when the media type is exactly application/json."""
    if content_type.split(";")[0].strip() == "application/json":
        try:
            raw = gojson.loads(body)
        except ValueError:
            raise ValueError("invalid JSON") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        return command_response(raw)
    return command_response({"text": body.decode("utf-8", "replace")})


def handle_command_response(state: State, hub: Hub, command: Command | None, user: User, channel_id: str,
                            root_id: str, response: dict[str, Any], built_in: bool) -> None:
    """HandleCommandResponse: the main response and every extra one; any failure -> 500 at the end."""
    failed = False
    for resp in [response] + list(response.get("extra_responses") or []):
        try:
            _post_response(state, hub, command, user, channel_id, root_id, resp, built_in)
        except AppError as err:
            log.debug("command response post failed: %s", err.id)
            failed = True
    if failed:
        raise AppError("api.command.execute_command.create_post_failed.app_error", 500,
                       "Command has failed to post response. Please contact your System Administrator.")


def _post_response(state: State, hub: Hub, command: Command | None, user: User, channel_id: str,
                   root_id: str, resp: dict[str, Any], built_in: bool) -> None:
    """HandleCommandResponsePost + CreateCommandPost."""
    props = dict(resp.get("props") or {})
    if resp.get("channel_id"):
        if not state.is_channel_member(resp["channel_id"], user.id):
            raise AppError("api.command.command_post.forbidden.app_error", 403,
                           "Specified user is not a member of specified channel.")
        channel_id = resp["channel_id"]
    from_webhook = not built_in
    if state.config.get("EnablePostUsernameOverride"):
        name = (command.username if command else "") or resp.get("username", "")
        if name:
            props["override_username"] = name
            from_webhook = True
    if state.config.get("EnablePostIconOverride"):
        icon = (command.icon_url if command else "") or resp.get("icon_url", "")
        props["override_icon_url"] = icon
        from_webhook = from_webhook or bool(icon)
    text = resp.get("text", "")
    attachments = resp.get("attachments")
    if not resp.get("skip_slack_parsing"):
        text = parse_slack_links(process_slack_text(text))
    post_type = resp.get("type", "")
    if post_type.startswith("system_"):
        raise AppError("api.context.invalid_param.app_error", 400, "Invalid post.type parameter.")
    if attachments is not None:
        # ParseSlackAttachment: type defaults to slack_attachment, links in texts are converted.
        post_type = post_type or "slack_attachment"
        for attachment in attachments:
            if isinstance(attachment, dict):
                for key in ("text", "pretext"):
                    if isinstance(attachment.get(key), str):
                        attachment[key] = parse_slack_links(attachment[key])
        props["attachments"] = attachments
    response_type = resp.get("response_type", "")
    if response_type == "in_channel":
        if from_webhook:
            props["from_webhook"] = "true"
        ops.create_post(state, hub, user, {"channel_id": channel_id, "root_id": root_id, "message": text,
                                           "type": post_type, "props": props}, from_webhook=from_webhook)
    elif response_type in ("", "ephemeral") and (text or attachments is not None):
        if from_webhook:
            props["from_webhook"] = "true"
        # SendEphemeralPost: not stored, type system_ephemeral, only to the invoking user.
        ops.send_ephemeral(state, hub, user.id, channel_id, text, props, root_id=root_id)
