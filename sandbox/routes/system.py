"""System routes: ping (api4/system.go getSystemPing), the old-format client config (api4/config.go
getClientConfig), and the admin config (api4/config.go getConfig, patchConfig) for the settings of
sandbox/config.py."""
from __future__ import annotations

from aiohttp import web

from sandbox import config as admin_config
from sandbox.auth import optional_user, require_user
from sandbox.errors import AppError, forbidden, invalid_body
from sandbox.routes._helpers import hub_of, json_response, read_object, state_of
from sandbox.state import SERVER_VERSION


async def ping(request: web.Request) -> web.Response:
    # APIHandler: no session needed. Same keys as the real server with default ClientRequirements.
    return json_response({
        "status": "OK", "AndroidLatestVersion": "", "AndroidMinVersion": "",
        "IosLatestVersion": "", "IosMinVersion": "", "ActiveSearchBackend": "database",
    })


async def client_config(request: web.Request) -> web.Response:
    """GET /config/client?format=old (api4/config.go getClientConfig): no format is 501
    api.config.client.old_format.app_error, another format 400 invalid param `format`. Signed out, the
    limited config (config/client.go GenerateLimitedClientConfig + NoAccounts); signed in, the full one
    (GenerateClientConfig, which starts from the limited one, + MaxPostSize). Every value is a string."""
    fmt = request.query.get("format", "")
    if fmt == "":
        # The real server has never served the new format here.
        raise AppError("api.config.client.old_format.app_error", 501,
                       "New format for the client configuration is not supported yet. Please specify "
                       "?format=old in the query string.")
    if fmt != "old":
        raise invalid_body("format")  # c.SetInvalidParam("format"): api.context.invalid_body_param.app_error
    state = state_of(request)
    config = state.config
    limited = {
        "Version": SERVER_VERSION, "BuildNumber": SERVER_VERSION, "BuildDate": "", "BuildHash": "sandbox",
        "BuildHashEnterprise": "none", "BuildEnterpriseReady": "false",
        "EnableBotAccountCreation": _b(config.get("EnableBotAccountCreation", True)),
        "SiteURL": state.site_url, "SiteName": "Mattermost", "DiagnosticsEnabled": "false",
        "EnableCustomEmoji": "true", "NoAccounts": "false",
        # The trigger-id key's public half, in the limited (signed-out) and the full config alike
        # (app/platform/config.go regenerateClientConfig: x509.MarshalPKIXPublicKey, StdEncoding).
        "AsymmetricSigningPublicKey": hub_of(request).triggers.public_key_b64,
    }
    if optional_user(request) is None:
        return json_response(limited)
    return json_response({
        **limited,
        "MaxPostSize": str(config.get("MaxPostSize", 16383)),
        "EnableCommands": _b(config.get("EnableCommands", True)),
        "EnableUserAccessTokens": _b(config.get("EnableUserAccessTokens", True)),
        "EnableOAuthServiceProvider": _b(config.get("EnableOAuthServiceProvider", True)),
        "EnablePostUsernameOverride": _b(config.get("EnablePostUsernameOverride", False)),
        "EnablePostIconOverride": _b(config.get("EnablePostIconOverride", False)),
        "EnableOnlyAdminIntegrations": "true", "EnableIncomingWebhooks": "true",
        "EnableOutgoingWebhooks": "true", "EnableCustomEmoji": "true",
        "PostEditTimeLimit": str(config.get("PostEditTimeLimit", -1)),
        "CollapsedThreads": "always_on", "TeammateNameDisplay": "username",
        "ExperimentalEnableDefaultChannelLeaveJoinMessages": "true",
        "MaxFileSize": "104857600", "EnableFileAttachments": "true",
    })


def _require_sysconsole(request: web.Request) -> None:
    """api4/config.go getConfig / patchConfig: SessionHasPermissionToAny(SysconsoleRead/WritePermissions),
    else 403 api.context.permissions.app_error. Only system admins hold those by default."""
    me = require_user(request)
    if not state_of(request).has_system_permission(me, "manage_system"):
        raise forbidden("sysconsole_read_*" if request.method == "GET" else "sysconsole_write_*", me.id)


async def get_config(request: web.Request) -> web.Response:
    """GET /config: the config with secrets replaced by FakeSetting (app GetSanitizedConfig ->
    Config.Sanitize)."""
    _require_sysconsole(request)
    return json_response(admin_config.nested(state_of(request)))


async def patch_config(request: web.Request) -> web.Response:
    """PUT /config/patch: only the fields given change; the answer is the new config, sanitized."""
    _require_sysconsole(request)
    body = await read_object(request, "config")
    state = state_of(request)
    flat = admin_config.parse(body, strict=False)
    # patchConfig: a SiteURL that is set cannot be cleared through the API.
    if state.site_url and flat.get("SiteURL") == "":
        raise AppError("api.config.update_config.clear_siteurl.app_error", 400,
                       "Site URL cannot be cleared.")
    admin_config.apply(state, flat)
    return json_response(admin_config.nested(state))


def _b(value: object) -> str:
    return "true" if value else "false"


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v4/system/ping", ping)
    app.router.add_get("/api/v4/config/client", client_config)
    app.router.add_get("/api/v4/config", get_config)
    app.router.add_put("/api/v4/config/patch", patch_config)
