"""Button/menu clicks and interactive dialogs (app/integration_action.go, api4/integration_action.go,
api4/post.go doPostActionWithCookie)."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox import gojson, ops
from sandbox.auth import require_user
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.hub import Hub
from sandbox.ids import is_valid_id
from sandbox.keys import HUB, STATE
from sandbox.routes._helpers import json_response
from sandbox.routes._outgoing import OutgoingError, call_integration, timeout_s
from sandbox.routes._slack import parse_slack_links
from sandbox.state import State, User

RETAIN_PROP_KEYS = ("from_webhook", "override_username", "override_icon_url")  # PostActionRetainPropKeys


def _integration_error(detail: str = "") -> AppError:
    return AppError("api.post.do_action.action_integration.app_error", 400, "Action integration error.",
                    detail)


async def _post_json(state: State, url: str, payload: dict[str, Any]) -> bytes:
    """DoActionRequest: JSON POST, Accept JSON, no auth header for external URLs; 200 or 400."""
    try:
        _, body = await call_integration(state, "POST", url, body=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json"})
    except OutgoingError as err:
        raise _integration_error(str(err)) from None
    return body


def _find_action(props: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    """Post.GetAction: the first action with that id, across attachments."""
    for attachment in props.get("attachments") or []:
        if isinstance(attachment, dict):
            for action in attachment.get("actions") or []:
                if isinstance(action, dict) and action.get("id") == action_id:
                    return action
    return None


async def do_post_action(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    hub: Hub = request.app[HUB]
    user = require_user(request)
    post_id = request.match_info["post_id"]
    action_id = request.match_info["action_id"]
    raw = await request.read()
    try:
        body = gojson.loads(raw) if raw else {}
    except ValueError:
        raise invalid_body("post_action") from None
    if not isinstance(body, dict):
        raise invalid_body("post_action")
    selected = body.get("selected_option") if isinstance(body.get("selected_option"), str) else ""
    cookie_str = body.get("cookie") if isinstance(body.get("cookie"), str) else ""

    cookie: dict[str, Any] | None = None
    if cookie_str:
        cookie = ops.decode_action_cookie(cookie_str)
        if cookie is None:
            raise _integration_error("invalid cookie")
        channel = state.channels.get(str(cookie.get("channel_id", "")))
        if channel is None or not state.can_read_channel(user, channel):
            raise forbidden("read_channel_content", user.id)
    else:
        post = state.posts.get(post_id)
        channel = state.channels.get(post.channel_id) if post is not None and not post.delete_at else None
        if channel is None or not state.can_read_channel(user, channel):
            # SessionHasPermissionToChannelByPost: an unknown post is a permission error too.
            raise forbidden("read_channel_content", user.id)

    post = state.posts.get(post_id)
    if post is not None and post.delete_at:
        post = None
    retain: dict[str, Any] = {}
    remove: list[str] = []
    if post is None:
        # Not in the database: only an ephemeral post's cookie can describe the action.
        if cookie is None:
            raise AppError("app.post.get.app_error", 404, "Unable to get the post.")
        if not cookie.get("integration"):
            raise _integration_error("no Integration in action cookie")
        if cookie.get("post_id") != post_id:
            raise _integration_error("postId doesn't match")
        channel = state.channels.get(str(cookie.get("channel_id", "")))
        if channel is None:
            raise AppError("app.channel.get.existing.app_error", 404, "Unable to find the existing channel.")
        action_type = str(cookie.get("type") or "")
        integration = cookie["integration"]
        data_source = str(cookie.get("data_source") or "")
        retain = dict(cookie.get("retain_props") or {})
        remove = list(cookie.get("remove_props") or [])
        root_id = str(cookie.get("root_post_id") or cookie.get("root_id") or post_id)
    else:
        channel = state.channels[post.channel_id]
        action = _find_action(post.props, action_id)
        if action is None or not action.get("integration"):
            raise AppError("api.post.do_action.action_id.app_error", 404, "Unable to find the action.")
        action_type = str(action.get("type") or "")
        integration = action["integration"]
        data_source = str(action.get("data_source") or "")
        for key in RETAIN_PROP_KEYS:
            if key in post.props:
                retain[key] = post.props[key]
            else:
                remove.append(key)
        root_id = post.root_id or post.id

    team = state.teams.get(channel.team_id) if channel.team_id else None
    client_trigger_id, trigger_id = hub.triggers.generate(user.id)
    context = integration.get("context") if isinstance(integration, dict) else None
    context = dict(context) if isinstance(context, dict) else None
    payload: dict[str, Any] = {
        "user_id": user.id, "user_name": user.username, "channel_id": channel.id,
        "channel_name": channel.name, "team_id": channel.team_id, "team_domain": team.name if team else "",
        "post_id": post_id, "trigger_id": trigger_id, "type": action_type, "data_source": "",
    }
    # v9-v11: selected_option only for type select (master: whenever one was sent).
    if action_type == "select" and selected:
        context = context if context is not None else {}
        payload["data_source"] = data_source
        context["selected_option"] = selected
    if context:
        payload["context"] = context  # omitempty
    url = integration.get("url", "") if isinstance(integration, dict) else ""
    resp_body = await _post_json(state, str(url), payload)
    response: dict[str, Any] = {}
    if resp_body:
        try:
            response = gojson.loads(resp_body)
        except ValueError:
            raise _integration_error("invalid JSON") from None
        if not isinstance(response, dict):
            raise _integration_error("invalid JSON")

    update = response.get("update")
    if isinstance(update, dict):
        if post is None:
            # UpdatePost of an id with no row fails; the real server answers with its error.
            raise AppError("app.post.get.app_error", 404, "Unable to get the post.")
        props = update.get("props")
        if props is not None and not isinstance(props, dict):
            raise _integration_error("invalid update")
        message = update.get("message") if isinstance(update.get("message"), str) else ""
        # The update replaces the post: message as given (omitted = blank), props null = keep,
        # from_webhook/override_* keep the original's; id forced; emits post_edited.
        ops.update_post(state, hub, post, message=message,
                        props=None if props is None else props, keep_webhook_props=True)
    text = response.get("ephemeral_text")
    if isinstance(text, str) and text:
        if not response.get("skip_slack_parsing"):
            text = parse_slack_links(text)
        ops.send_ephemeral(state, hub, user.id, channel.id, text, dict(retain), root_id=root_id)
    return json_response({"status": "OK", "trigger_id": client_trigger_id})


# -- dialogs -------------------------------------------------------------------------------------
def _dialog_json(dialog: Any) -> dict[str, Any]:
    """The Dialog as Go re-encodes it (model.Dialog / DialogElement): known fields, all present."""
    d = dialog if isinstance(dialog, dict) else {}

    def s(obj: dict[str, Any], key: str) -> str:
        return obj.get(key) if isinstance(obj.get(key), str) else ""

    def i(obj: dict[str, Any], key: str) -> int:
        value = obj.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    elements = None
    if isinstance(d.get("elements"), list):
        elements = []
        for e in d["elements"]:
            e = e if isinstance(e, dict) else {}
            options = None
            if isinstance(e.get("options"), list):
                options = [{"text": s(o, "text"), "value": s(o, "value")} for o in e["options"]
                           if isinstance(o, dict)]
            elements.append({
                "display_name": s(e, "display_name"), "name": s(e, "name"), "type": s(e, "type"),
                "subtype": s(e, "subtype"), "default": s(e, "default"), "placeholder": s(e, "placeholder"),
                "help_text": s(e, "help_text"), "optional": e.get("optional") is True,
                "min_length": i(e, "min_length"), "max_length": i(e, "max_length"),
                "data_source": s(e, "data_source"), "options": options,
            })
    return {"callback_id": s(d, "callback_id"), "title": s(d, "title"),
            "introduction_text": s(d, "introduction_text"), "elements": elements,
            "icon_url": s(d, "icon_url"), "submit_label": s(d, "submit_label"),
            "notify_on_cancel": d.get("notify_on_cancel") is True, "state": s(d, "state")}


async def open_dialog(request: web.Request) -> web.Response:
    """POST /actions/dialogs/open: no session; the trigger id is the credential."""
    state: State = request.app[STATE]
    hub: Hub = request.app[HUB]
    try:
        body = gojson.loads(await request.read() or b"null")
    except ValueError:
        raise invalid_body("dialog") from None
    if not isinstance(body, dict):
        raise invalid_body("dialog")
    if not isinstance(body.get("url"), str) or not body["url"]:
        raise invalid_body("url")
    client_id, user_id = hub.triggers.decode(body.get("trigger_id", ""), timeout_s(state))
    dialog = _dialog_json(body.get("dialog"))
    # v9-v11 only log an invalid dialog (Dialog.IsValid) and still send it to the client.
    request_json = {"trigger_id": client_id, "url": body["url"], "dialog": dialog}
    hub.publish("open_dialog", {"dialog": json.dumps(request_json, separators=(",", ":"))}, user_id=user_id)
    return json_response({"status": "OK"})


async def submit_dialog(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    user = require_user(request)
    try:
        body = gojson.loads(await request.read() or b"null")
    except ValueError:
        raise invalid_body("dialog") from None
    if not isinstance(body, dict):
        raise invalid_body("dialog")
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise AppError("api.context.invalid_param.app_error", 400, "Invalid url parameter.")
    channel_id = body.get("channel_id") if isinstance(body.get("channel_id"), str) else ""
    team_id = body.get("team_id") if isinstance(body.get("team_id"), str) else ""
    channel = state.channels.get(channel_id)
    if channel is None:
        raise AppError("app.channel.get.existing.app_error", 404, "Unable to find the existing channel.")
    if not state.can_read_channel(user, channel):
        raise forbidden("read_channel", user.id)
    if not _can_view_team(state, user, team_id):
        raise forbidden("view_team", user.id)
    submission = body.get("submission")
    payload = {
        "type": "dialog_submission",  # set by SubmitInteractiveDialog; url removed (omitempty)
        "callback_id": body.get("callback_id") if isinstance(body.get("callback_id"), str) else "",
        "state": body.get("state") if isinstance(body.get("state"), str) else "",
        "user_id": user.id, "channel_id": channel_id, "team_id": team_id,
        "submission": submission if isinstance(submission, dict) else None,
        "cancelled": body.get("cancelled") is True,
    }
    resp_body = await _post_json(state, url, payload)
    out: dict[str, Any] = {}
    if resp_body.strip():
        try:
            parsed = gojson.loads(resp_body)
        except ValueError:
            raise AppError("app.submit_interactive_dialog.decode_json_error", 500,
                           "Error decoding JSON for the interactive dialog response.") from None
        if isinstance(parsed, dict):
            # SubmitDialogResponse on v9-v11: error and errors, both omitempty.
            if isinstance(parsed.get("error"), str) and parsed["error"]:
                out["error"] = parsed["error"]
            if isinstance(parsed.get("errors"), dict) and parsed["errors"]:
                out["errors"] = {k: v for k, v in parsed["errors"].items() if isinstance(v, str)}
    return json_response(out)


def _can_view_team(state: State, user: User, team_id: str) -> bool:
    # SessionHasPermissionToTeam("") is false for everyone but system admins.
    if not is_valid_id(team_id):
        return user.is_admin()
    return state.has_team_permission(user, team_id, "view_team")


def setup(app: web.Application) -> None:
    r = app.router
    # v9-v11 route: /posts/{post_id:[A-Za-z0-9]+}/actions/{action_id:[A-Za-z0-9]+}; others are 404.
    r.add_post(r"/api/v4/posts/{post_id:[A-Za-z0-9]+}/actions/{action_id:[A-Za-z0-9]+}", do_post_action)
    r.add_post("/api/v4/actions/dialogs/open", open_dialog)
    r.add_post("/api/v4/actions/dialogs/submit", submit_dialog)
