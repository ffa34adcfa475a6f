"""System routes: ping (api4/system.go getSystemPing) and the old-format client config."""
from __future__ import annotations

from aiohttp import web

from sandbox.keys import REQUEST_ID
from sandbox.routes._helpers import hub_of, json_response, state_of
from sandbox.state import SERVER_VERSION


async def ping(request: web.Request) -> web.Response:
    # APIHandler: no session needed. Same keys as the real server with default ClientRequirements.
    return json_response({
        "status": "OK", "AndroidLatestVersion": "", "AndroidMinVersion": "",
        "IosLatestVersion": "", "IosMinVersion": "", "ActiveSearchBackend": "database",
    })


async def client_config(request: web.Request) -> web.Response:
    """GET /config/client?format=old: a flat map of strings, as config.GenerateClientConfig builds it."""
    if request.query.get("format") != "old":
        # The real server has never served the new format here (api4/config.go getClientConfig).
        return json_response({
            "id": "api.config.client.old_format.app_error", "status_code": 501,
            "message": "New format for the client configuration is not supported yet. Please specify "
                       "?format=old in the query string.",
            "detailed_error": "", "request_id": request[REQUEST_ID]}, status=501)
    state = state_of(request)
    config = state.config
    # Every value is a string, booleans as "true"/"false" (model.Config -> map[string]string).
    return json_response({
        "Version": SERVER_VERSION, "BuildNumber": SERVER_VERSION, "BuildDate": "", "BuildHash": "sandbox",
        "BuildHashEnterprise": "none", "BuildEnterpriseReady": "false",
        "SiteURL": state.site_url, "SiteName": "Mattermost", "DiagnosticsEnabled": "false",
        "MaxPostSize": str(config.get("MaxPostSize", 16383)),
        "EnableCommands": _b(config.get("EnableCommands", True)),
        "EnableBotAccountCreation": _b(config.get("EnableBotAccountCreation", True)),
        "EnableUserAccessTokens": _b(config.get("EnableUserAccessTokens", True)),
        "EnablePostUsernameOverride": "false", "EnablePostIconOverride": "false",
        "EnableOnlyAdminIntegrations": "true", "EnableIncomingWebhooks": "true",
        "EnableOutgoingWebhooks": "true", "EnableCustomEmoji": "true",
        "PostEditTimeLimit": "-1", "CollapsedThreads": "always_on", "TeammateNameDisplay": "username",
        "ExperimentalEnableDefaultChannelLeaveJoinMessages": "true",
        "MaxFileSize": "104857600", "EnableFileAttachments": "true",
        # The trigger-id key's public half, in the limited (signed-out) and the full config alike
        # (app/platform/config.go regenerateClientConfig: x509.MarshalPKIXPublicKey, StdEncoding).
        "AsymmetricSigningPublicKey": hub_of(request).triggers.public_key_b64,
    })


def _b(value: object) -> str:
    return "true" if value else "false"


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v4/system/ping", ping)
    app.router.add_get("/api/v4/config/client", client_config)
