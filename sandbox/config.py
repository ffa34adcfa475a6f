"""The admin configuration (model.Config), as much of it as the sandbox enforces.

`State.config` stays the flat map the routes read (`state.config["PostEditTimeLimit"]`); this module is the
nested view an admin sees and patches (`GET /api/v4/config`, `PUT /api/v4/config/patch`, `Sandbox(config=)`,
`python -m sandbox --config FILE.json`). Only the fields listed in FIELDS exist here; others are refused
on start and ignored in a patch, as the real server ignores unknown JSON keys.
"""
from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import AppError

# model/config.go: FakeSetting, what Config.Sanitize writes over secrets before the config leaves the server.
FAKE_SETTING = "********************************"

# (section, field) -> (flat key in State.config, type, default). Defaults are model/config.go SetDefaults.
FIELDS: dict[tuple[str, str], tuple[str, type, Any]] = {
    ("ServiceSettings", "SiteURL"): ("SiteURL", str, ""),
    # -1 = no limit (ServiceSettings.SetDefaults: PostEditTimeLimit = -1).
    ("ServiceSettings", "PostEditTimeLimit"): ("PostEditTimeLimit", int, -1),
    ("ServiceSettings", "OutgoingIntegrationRequestsTimeout"): ("OutgoingIntegrationRequestsTimeout", int, 30),
    ("ServiceSettings", "EnableCommands"): ("EnableCommands", bool, True),
    ("ServiceSettings", "EnableBotAccountCreation"): ("EnableBotAccountCreation", bool, True),
    ("ServiceSettings", "EnableUserAccessTokens"): ("EnableUserAccessTokens", bool, True),
    # ServiceSettings.SetDefaults: EnableOAuthServiceProvider = NewPointer(true) in current code (false in
    # older versions). Off: every OAuth route answers 501 (sandbox/routes/oauth.py).
    ("ServiceSettings", "EnableOAuthServiceProvider"): ("EnableOAuthServiceProvider", bool, True),
    # SessionLengthSSOInHours = 720 (30 days): how long an OAuth access token's session lives
    # (app/oauth.go newSession: SetSessionExpireInHours(session, SessionLengthSSOInHours)).
    ("ServiceSettings", "SessionLengthSSOInHours"): ("SessionLengthSSOInHours", int, 720),
    # Integrations may set the name and picture their posts show (false by default, as in Mattermost).
    ("ServiceSettings", "EnablePostUsernameOverride"): ("EnablePostUsernameOverride", bool, False),
    ("ServiceSettings", "EnablePostIconOverride"): ("EnablePostIconOverride", bool, False),
    ("ServiceSettings", "AllowedUntrustedInternalConnections"): ("AllowedUntrustedInternalConnections", str, ""),
    # ServiceSettings.SetDefaults: EnableCustomGroups = true (custom user groups; sandbox/routes/groups.py).
    ("ServiceSettings", "EnableCustomGroups"): ("EnableCustomGroups", bool, True),
    # FileSettings.SetDefaults: EnableFileAttachments = true, MaxFileSize = 100 MB (sandbox/routes/files.py).
    ("FileSettings", "EnableFileAttachments"): ("EnableFileAttachments", bool, True),
    ("FileSettings", "MaxFileSize"): ("MaxFileSize", int, 100 * 1024 * 1024),
    # TeamSettings.SetDefaults: MaxChannelsPerTeam = 2000.
    ("TeamSettings", "MaxChannelsPerTeam"): ("MaxChannelsPerTeam", int, 2000),
    # A secret, so that masking has something to mask: Config.Sanitize always overwrites
    # SqlSettings.DataSource with FakeSetting.
    ("SqlSettings", "DataSource"): ("SqlDataSource", str, "sandbox://in-memory"),
}
SECRETS = {("SqlSettings", "DataSource")}


def defaults() -> dict[str, Any]:
    """The flat defaults of every field above (State.config starts from these)."""
    return {flat: default for flat, _, default in FIELDS.values()}


def nested(state: Any, sanitize: bool = True) -> dict[str, Any]:
    """The nested config an admin reads; secrets masked as Config.Sanitize does."""
    out: dict[str, dict[str, Any]] = {}
    for (section, name), (flat, _, default) in FIELDS.items():
        value = state.site_url if flat == "SiteURL" else state.config.get(flat, default)
        if sanitize and (section, name) in SECRETS:
            value = FAKE_SETTING
        out.setdefault(section, {})[name] = copy.deepcopy(value)
    return out


def _invalid(field: str, message: str) -> AppError:
    # model/config.go Config.IsValid answers 400 model.config.is_valid.<field>.app_error.
    return AppError(f"model.config.is_valid.{field}.app_error", 400, message)


def parse(patch: Any, strict: bool) -> dict[str, Any]:
    """Flat key -> value for the known fields in a nested patch. `strict` (start-up) refuses unknown
    sections and fields instead of ignoring them, so a typo in a test or a config file is loud."""
    if not isinstance(patch, dict):
        raise AppError("api.context.invalid_body_param.app_error", 400, "Invalid or missing config in request body.")
    out: dict[str, Any] = {}
    for section, fields in patch.items():
        if not isinstance(fields, dict):
            if strict:
                raise ValueError(f"config: {section} must be an object")
            continue
        for name, value in fields.items():
            spec = FIELDS.get((section, name))
            if spec is None:
                if strict:
                    raise ValueError(f"config: the sandbox has no setting {section}.{name}")
                continue
            flat, kind, _ = spec
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            if not ok:
                if strict:
                    raise ValueError(f"config: {section}.{name} must be {kind.__name__}")
                raise AppError("api.context.invalid_body_param.app_error", 400,
                               "Invalid or missing config in request body.")
            out[flat] = value
    if "MaxChannelsPerTeam" in out and out["MaxChannelsPerTeam"] <= 0:
        # TeamSettings.isValid: MaxChannelsPerTeam <= 0 -> model.config.is_valid.max_channels.app_error.
        if strict:
            raise ValueError("config: TeamSettings.MaxChannelsPerTeam must be > 0")
        raise _invalid("max_channels", "Invalid maximum channels per team for team settings. "
                                       "Must be a positive number.")
    return out


def apply(state: Any, flat: dict[str, Any]) -> None:
    for key, value in flat.items():
        if key == "SiteURL":
            state.site_url = value.rstrip("/")
        else:
            state.config[key] = value
