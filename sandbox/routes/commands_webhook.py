"""A slash command's response_url: POST /hooks/commands/{id}, for the integration's later replies (web/webhook.go,
app/command.go). The URL is handed out by commands_execute.py."""
from __future__ import annotations

from aiohttp import web

from sandbox.errors import AppError
from sandbox.hub import Hub
from sandbox.keys import HUB, STATE
from sandbox.routes._command_response import handle_command_response, response_from_http_body
from sandbox.state import State

WEBHOOK_MAX_USES = 5  # TryUse(id, 5)


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
    app.router.add_post("/hooks/commands/{hook_id}", command_webhook)
