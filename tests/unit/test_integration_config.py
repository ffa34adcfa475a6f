"""[jira], [zoom], [pagerduty], [opsgenie] in bot.toml and BOT_*: parsed, secrets hidden, partial sections refused,
and built into ctx.integrations (None for a service that is not configured)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.integrations.build import build_integrations, close_integrations
from bot.integrations.jira import JiraClient
from bot.integrations.pagerduty import PagerDutyClient

FILE = """
[jira]
url = "https://acme.atlassian.net/"
email = "ops-bot@acme.com"
api_token = "jira-secret-token"

[zoom]
account_id = "acct"
client_id = "cid"
client_secret = "zoom-secret-value"
host = "meetings@acme.com"

[pagerduty]
api_token = "pd-secret-token"
routing_keys = { default = "R0000000000000000000000000000000", db = "D0000000000000000000000000000000" }

[opsgenie]
api_key = "og-secret-key"
api_url = "https://api.eu.opsgenie.com"
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env=env or {})


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    assert "\n" not in str(info.value)
    return str(info.value)


async def test_all_four_sections_load_and_build(tmp_path: Path) -> None:
    settings = load(tmp_path, FILE)
    assert settings.jira.url == "https://acme.atlassian.net" and settings.jira.email == "ops-bot@acme.com"
    assert settings.zoom.api_url == "https://api.zoom.us/v2" and settings.zoom.host == "meetings@acme.com"
    assert dict(settings.pagerduty.routing_keys)["db"].startswith("D")
    assert settings.opsgenie.api_url == "https://api.eu.opsgenie.com"
    shown = repr(settings)
    for secret in ("jira-secret-token", "zoom-secret-value", "pd-secret-token", "og-secret-key", "R000000"):
        assert secret not in shown
    integrations = build_integrations(settings)
    try:
        assert isinstance(integrations.jira, JiraClient) and integrations.zoom is not None
        assert isinstance(integrations.pagerduty, PagerDutyClient) and integrations.opsgenie is not None
        assert integrations.pagerduty.routing_keys["default"].startswith("R")
        assert len(integrations.closers) == 4
    finally:
        await close_integrations(integrations)


def test_nothing_configured_means_none(tmp_path: Path) -> None:
    integrations = build_integrations(load(tmp_path, "[mattermost]\n"))
    assert (integrations.jira, integrations.zoom, integrations.pagerduty, integrations.opsgenie) == (None,) * 4


def test_environment_variables(tmp_path: Path) -> None:
    settings = load(tmp_path, "", {"BOT_JIRA_URL": "https://x.atlassian.net", "BOT_JIRA_EMAIL": "a@x.com",
                                   "BOT_JIRA_API_TOKEN": "t", "BOT_PAGERDUTY_ROUTING_KEYS": "default=K1, ops=K2",
                                   "BOT_OPSGENIE_API_KEY": "k"})
    assert settings.jira.configured and settings.opsgenie.configured
    assert settings.pagerduty.routing_keys == (("default", "K1"), ("ops", "K2"))
    assert not settings.pagerduty.api_token and settings.pagerduty.configured  # paging only


@pytest.mark.parametrize(("text", "wanted"), [
    ('[jira]\nurl = "https://acme.atlassian.net"\nemail = "a@b.co"\n', "[jira] api_token: missing"),
    ('[jira]\nemail = "a@b.co"\napi_token = "t"\n', "[jira] url: missing"),
    ('[jira]\nurl = "https://acme.atlassian.net"\naccess_token = "t"\n', "[jira] cloud_id: missing"),
    ('[zoom]\naccount_id = "a"\nclient_id = "c"\n', "[zoom] client_secret: missing"),
    ('[zoom]\napi_url = "http://127.0.0.1:9/v2"\n', "[zoom] account_id: missing"),
    ('[pagerduty]\nfrom_email = "a@b.co"\n', "[pagerduty] api_token: missing"),
    ('[opsgenie]\napi_url = "https://api.eu.opsgenie.com"\n', "[opsgenie] api_key: missing"),
    ('[jira]\nurl = "acme.atlassian.net"\n', '[jira] url: expected an http(s) URL like "https://acme.atlassian.net"'),
    ('[zoom]\nhost = "not an email"\n', "[zoom] host: expected an email address"),
    ('[pagerduty]\nrouting_keys = "abc"\n', "[pagerduty] routing_keys: expected a table"),
    ('[pagerduty]\nrouting_keys = { "bad name" = "k" }\n', "routing key names"),
    ('[opsgenie]\napi_key = "has space"\n', "without spaces"),
])
def test_bad_or_partial_sections_name_the_key(tmp_path: Path, text: str, wanted: str) -> None:
    assert wanted in error_of(tmp_path, text)


def test_a_bad_secret_is_never_echoed(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[opsgenie]\napi_key = "secret value"\n')
    assert "secret value" not in message
