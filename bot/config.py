"""bot.toml plus `BOT_<SECTION>_<KEY>` environment overrides -> one frozen `Settings`.

Every problem is a `ConfigError` whose str() is one line naming the file (or environment
variable), the key and what was expected; `python -m bot` prints it and exits with status 2.

Keys (see bot.toml for the commented example):

    [mattermost] url, token, timeout, retries, verify_tls
    [server]     listen, public_url
    [storage]    url
    [playbooks]  dir
    [logging]    level
    [security]   secret
    [digests]    hour          (UTC hour of the daily digest, 0-23; default 9)
    [web]        client_id, client_secret, register, session_hours   (sign-in with Mattermost)
    [metrics]    token         (operators' /metrics from beyond this machine: `Authorization: Bearer <token>`)
    [http_actions] secrets     (name = "value": header values the playbooks' http actions name in
                 secret_headers; in the environment BOT_HTTP_ACTIONS_SECRETS as JSON, {"name": "value"}),
                 secret_hosts (name = ["host", ...]: the only hosts each secret may be sent to;
                 BOT_HTTP_ACTIONS_SECRET_HOSTS as JSON), allow_internal (["status.internal",
                 "10.0.0.0/8"]: the internal hosts and networks http actions may reach; every other
                 non-public address is refused; BOT_HTTP_ACTIONS_ALLOW_INTERNAL, separated by commas)
    [alerts]     the credentials of each alert source (`POST /hooks/alerts/<source>`, docs/alerts.md):
                 alertmanager_token | alertmanager_username + alertmanager_password,
                 grafana_hmac_secret, grafana_hmac_header, grafana_timestamp_header, grafana_max_age,
                 grafana_token | grafana_username + grafana_password,
                 pagerduty_secrets (a list: several during a rotation), opsgenie_header, opsgenie_secret
    [testing]    clock_file, crash_at   (test-only; never set in production)
    [jira]       url, email, api_token | cloud_id, access_token          (docs/integrations.md)
    [zoom]       account_id, client_id, client_secret, host, api_url, oauth_url
    [pagerduty]  api_token, api_url, events_url, routing_keys (table name -> key), from_email
    [opsgenie]   api_key, api_url

A vendor section that is absent (or empty) means that service is not used; one that is partly filled in is
a ConfigError naming the key that is missing.

An empty or absent `[mattermost] url` means sandbox mode: `make run` starts the local stand-in and
the app fills in its url and token with `Settings.with_mattermost`.
Relative paths (`[playbooks] dir`, a relative `sqlite:///` file) are resolved against the folder of
the config file, so the bot behaves the same whatever directory it is started from.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

from bot.domain.durations import DurationError, parse_duration

__all__ = [
    "ConfigError",
    "Settings",
    "MattermostSettings",
    "ServerSettings",
    "StorageSettings",
    "PlaybooksSettings",
    "LoggingSettings",
    "SecuritySettings",
    "DigestsSettings",
    "WebSettings",
    "MetricsSettings",
    "AlertsSettings",
    "TestingSettings",
    "JiraSettings",
    "ZoomSettings",
    "PagerDutySettings",
    "OpsgenieSettings",
    "HttpActionsSettings",
    "load_settings",
    "derive_signing_key",
    "log_level_number",
    "ENV_PREFIX",
]

ENV_PREFIX = "BOT_"
DEFAULT_CONFIG = "bot.toml"
_SIGNING_LABEL = b"playbooks-for-mattermost/button-signing/v1"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """An unusable setting; str() is one line fit to print before exiting with status 2."""


@dataclass(frozen=True)
class MattermostSettings:
    url: str = ""  # "" = sandbox mode
    token: str = field(default="", repr=False)
    timeout: float = 30.0  # seconds per HTTP call to Mattermost
    retries: int = 3  # attempts after a 429 or 5xx before giving up
    verify_tls: bool = True  # false only for test servers with self-signed certificates
    # Tokens of /playbook commands an admin created by hand (when the bot may not register them).
    command_tokens: tuple[str, ...] = field(default=(), repr=False)

    @property
    def sandbox(self) -> bool:
        return not self.url


@dataclass(frozen=True)
class ServerSettings:
    listen: str = "127.0.0.1:8081"
    host: str = "127.0.0.1"
    port: int = 8081
    # How Mattermost reaches the bot, no trailing slash. Derived from listen when not set;
    # "" only with port 0, where the app derives it from the port it actually bound.
    public_url: str = "http://127.0.0.1:8081"


@dataclass(frozen=True)
class StorageSettings:
    url: str = "sqlite:///data/playbooks.db"  # absolute after loading


@dataclass(frozen=True)
class PlaybooksSettings:
    dir: Path = Path("playbooks")  # absolute after loading


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"


@dataclass(frozen=True)
class SecuritySettings:
    # Key for the HMAC on buttons. Empty: derived from the bot token (see derive_signing_key).
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class DigestsSettings:
    hour: int = 9  # UTC hour at which the daily (and, on Mondays, weekly) digest is sent


@dataclass(frozen=True)
class WebSettings:
    # An OAuth 2.0 app an admin registered in Mattermost (System Console > Integrations > OAuth 2.0
    # Applications, callback `<public_url>/oauth/callback`). Empty: the bot registers its own at start-up
    # where it may (`register`), else people sign in with one-time links from `/playbook dashboard`.
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    register: bool = True
    session_hours: int = 168  # a web session lasts this long at most (default one week)


@dataclass(frozen=True)
class MetricsSettings:
    # `GET /metrics` answers requests from this machine (loopback, not forwarded by a proxy) and, when set,
    # any request carrying `Authorization: Bearer <token>`. Empty: loopback only.
    token: str = field(default="", repr=False)


# Grafana's HMAC header when its contact point leaves the field empty: grafana/alerting http/hmac.go
# `defaultHeaderName`. Grafana's docs and UI placeholder say "X-Grafana-Alerting-Signature" instead
# (docs/alerts.md): set the same name explicitly on both sides.
GRAFANA_HMAC_HEADER = "X-Grafana-Alert-Signature"


@dataclass(frozen=True)
class AlertsSettings:
    """Credentials of the alert sources (`POST /hooks/alerts/<source>`, handlers/alerts.py). A source with
    none configured refuses every delivery: alerts are never taken unauthenticated."""
    alertmanager_token: str = field(default="", repr=False)  # `Authorization: Bearer <token>`
    alertmanager_username: str = ""  # or basic auth
    alertmanager_password: str = field(default="", repr=False)
    grafana_hmac_secret: str = field(default="", repr=False)  # hex HMAC-SHA256 of `[timestamp ":"] body`
    grafana_hmac_header: str = GRAFANA_HMAC_HEADER
    grafana_timestamp_header: str = ""  # set: the timestamp is signed too and must be recent
    grafana_max_age: float = 300.0  # seconds a signed timestamp may be off from now (either way)
    grafana_token: str = field(default="", repr=False)
    grafana_username: str = ""
    grafana_password: str = field(default="", repr=False)
    pagerduty_secrets: tuple[str, ...] = field(default=(), repr=False)  # webhook subscription secrets
    opsgenie_header: str = "X-Opsgenie-Secret"
    opsgenie_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class HttpActionsSettings:
    # Header values for the playbooks' http actions, by the name a playbook's secret_headers gives them:
    # credentials live here (or in BOT_HTTP_ACTIONS_SECRETS), never in a playbook file.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    # The hosts each secret may be sent to (name -> host names, lower case): a playbook editor cannot send
    # a secret to a URL of their choosing.
    secret_hosts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Internal hosts the http actions may reach (host names, addresses, networks like "10.0.0.0/8"); every
    # other loopback, private, link-local or non-global address is refused (bot/outbound.py AddressPolicy).
    allow_internal: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestingSettings:
    # Test-only: read "now" from this file (epoch milliseconds; bot.clock.FileClock), so a test can move
    # the time of a bot it runs as a separate process. None = the real clock.
    clock_file: Path | None = None
    # Test-only: the bot kills itself (SIGKILL) on reaching this point of a run start, e.g. "overview:sent"
    # (handlers/runs.py CRASH_POINTS), so a test can restart it from exactly there. "" = never.
    crash_at: str = ""


@dataclass(frozen=True)
class JiraSettings:
    url: str = ""  # the site, e.g. https://acme.atlassian.net ("" = Jira not used)
    email: str = ""  # basic auth: the account's email and an API token
    api_token: str = field(default="", repr=False)
    cloud_id: str = ""  # OAuth 2.0 (3LO) instead: the site's cloud id and an access token
    access_token: str = field(default="", repr=False)

    @property
    def configured(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class ZoomSettings:
    account_id: str = ""  # a Server-to-Server OAuth app ("" = Zoom not used)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    host: str = ""  # the default meeting host (an email of a user of the account)
    api_url: str = "https://api.zoom.us/v2"
    oauth_url: str = "https://zoom.us/oauth/token"

    @property
    def configured(self) -> bool:
        return bool(self.account_id)


@dataclass(frozen=True)
class PagerDutySettings:
    api_token: str = field(default="", repr=False)  # REST API key (on-call lookups)
    api_url: str = "https://api.pagerduty.com"
    events_url: str = "https://events.pagerduty.com/v2/enqueue"
    # name -> Events API v2 integration key; playbooks name the key, never hold it
    routing_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    from_email: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.api_token or self.routing_keys)


@dataclass(frozen=True)
class OpsgenieSettings:
    api_key: str = field(default="", repr=False)  # "" = Opsgenie not used
    api_url: str = "https://api.opsgenie.com"  # EU: https://api.eu.opsgenie.com

    @property
    def configured(self) -> bool:
        return bool(self.api_key)


@dataclass(frozen=True)
class Settings:
    mattermost: MattermostSettings = MattermostSettings()
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    playbooks: PlaybooksSettings = PlaybooksSettings()
    logging: LoggingSettings = LoggingSettings()
    security: SecuritySettings = SecuritySettings()
    digests: DigestsSettings = DigestsSettings()
    web: WebSettings = WebSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertsSettings = AlertsSettings()
    testing: TestingSettings = TestingSettings()
    jira: JiraSettings = JiraSettings()
    zoom: ZoomSettings = ZoomSettings()
    pagerduty: PagerDutySettings = PagerDutySettings()
    opsgenie: OpsgenieSettings = OpsgenieSettings()
    http_actions: HttpActionsSettings = HttpActionsSettings()
    source: Path | None = None  # the config file read, None when it came from the environment only

    @property
    def signing_key(self) -> bytes:
        """The key that signs button references; raises ConfigError if there is nothing to derive it from."""
        if self.security.secret:
            return self.security.secret.encode("utf-8")
        if not self.mattermost.token:
            raise ConfigError(
                "[security] secret: not set and there is no [mattermost] token to derive it from; "
                "set BOT_SECURITY_SECRET or BOT_MATTERMOST_TOKEN"
            )
        return derive_signing_key(self.mattermost.token)

    def with_mattermost(self, *, url: str, token: str) -> "Settings":
        """A copy pointing at another server (the app uses this for the sandbox in sandbox mode)."""
        return dataclasses.replace(
            self, mattermost=dataclasses.replace(self.mattermost, url=url.rstrip("/"), token=token)
        )


def derive_signing_key(token: str) -> bytes:
    """HMAC-SHA256 of a fixed label keyed by the bot token.

    Stable across restarts without storing anything, so buttons posted before a restart keep
    working; never the token itself, so a leaked button signature says nothing about the token.
    Rotating the token invalidates old buttons: set [security] secret to keep them across a rotation.
    """
    return hmac.new(token.encode("utf-8"), _SIGNING_LABEL, hashlib.sha256).digest()


# --- value parsers: (value, from_env) -> parsed; ValueError(text after "expected"/"got") --------

def _shown(value: object) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f'"{text}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def _bad(expected: str, value: object) -> ValueError:
    return ValueError(f"expected {expected}, got {_shown(value)}")


def _string(value: object, from_env: bool) -> str:
    if not isinstance(value, str):
        raise _bad("a string", value)
    return value.strip()


# "token" or "team-name:token" (team names: lower-case letters, digits, '-' and '_').
_TOKEN_ENTRY = re.compile(r"(?:[a-z0-9][a-z0-9_-]*:)?[A-Za-z0-9]+")


def _tokens(value: object, from_env: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        parts = value.replace(",", " ").split()
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = [v.strip() for v in value if v.strip()]
    else:
        raise _bad('a list of tokens like ["abc123..."] (in the environment: separated by commas)', value)
    if not all(_TOKEN_ENTRY.fullmatch(p) for p in parts):
        raise _bad('slash command tokens (letters and digits), each best bound to its team as "team-name:token"',
                   value)
    return tuple(parts)


_SECRET_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _secrets(value: object, from_env: bool) -> dict[str, str]:
    """A table of name = "value" (in the environment: a JSON object)."""
    if from_env and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _bad('a JSON object like {"pagerduty-hook": "s3cret"}', "(not shown)") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _bad('a table of name = "value" strings', "(not shown)")
    bad = [k for k in value if not _SECRET_NAME.fullmatch(k)]
    if bad:
        raise _bad('secret names of letters, digits, ".", "-" and "_"', bad[0])
    return {k: v for k, v in value.items()}


def _secret_hosts(value: object, from_env: bool) -> dict[str, tuple[str, ...]]:
    """A table of secret name = ["host", ...] (in the environment: a JSON object)."""
    if from_env and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _bad('a JSON object like {"statuspage": ["api.statuspage.io"]}', value) from None
    if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(h, str) and h.strip() for h in v) for v in value.values()):
        raise _bad('a table of secret name = ["host", ...]', value)
    bad = [k for k in value if not _SECRET_NAME.fullmatch(k)]
    if bad:
        raise _bad('secret names of letters, digits, ".", "-" and "_"', bad[0])
    return {k: tuple(h.strip().lower().rstrip(".") for h in v) for k, v in value.items()}


_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?")


def _internal_hosts(value: object, from_env: bool) -> tuple[str, ...]:
    """Host names, addresses and networks (in the environment: separated by commas or spaces)."""
    if isinstance(value, str):
        parts = value.replace(",", " ").split()
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = [v.strip() for v in value if v.strip()]
    else:
        raise _bad('a list of host names, addresses or networks like ["status.internal", "10.0.0.0/8"] '
                   "(in the environment: separated by commas)", value)
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            if "/" in part or not _HOST_NAME.fullmatch(part) or part.replace(".", "").isdigit():
                raise _bad('a host name, an address or a network like "10.0.0.0/8"', part) from None
    return tuple(p.lower() for p in parts)


def _bool(value: object, from_env: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_env and isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "1", "yes", "on"):
            return True
        if word in ("false", "0", "no", "off"):
            return False
        raise _bad("true or false (also 1/0, yes/no, on/off)", value)
    raise _bad("true or false", value)


def _count(value: object, from_env: bool) -> int:
    if from_env and isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _bad("a whole number from 0 to 100", value)
    return value


def _seconds(value: object, from_env: bool) -> float:
    """A timeout: a number of seconds (5, 2.5) or a duration string ("30s", "2m")."""
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            value = float(text)
        else:
            try:
                return parse_duration(text, maximum=_MAX_TIMEOUT).total_seconds()
            except DurationError as exc:
                raise ValueError(f'expected seconds (like 30) or a duration (like "30s"): {exc}') from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise _bad('a number of seconds above 0 and at most 3600, or a duration like "30s"', value)
    return float(value)


_MAX_TIMEOUT = parse_duration("1h")


def _http_url(value: object, *, allow_empty: bool, example: str) -> str:
    if not isinstance(value, str):
        raise _bad(f'an http(s) URL like "{example}"', value)
    url = value.strip().rstrip("/")
    if not url and allow_empty:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise _bad(f'an http(s) URL like "{example}"', value)
    try:
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise _bad(f'an http(s) URL with a valid port, like "{example}"', value) from None
    return url


def _mattermost_url(value: object, from_env: bool) -> str:
    return _http_url(value, allow_empty=True, example="https://chat.example.com")


def _public_url(value: object, from_env: bool) -> str:
    return _http_url(value, allow_empty=True, example="http://127.0.0.1:8081")


def _listen(value: object, from_env: bool) -> tuple[str, str, int]:
    expected = '"host:port" like "127.0.0.1:8081" (port 0 picks a free one)'
    if not isinstance(value, str):
        raise _bad(expected, value)
    text = value.strip()
    match = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]*)):(\d{1,5})", text)
    if match is None:
        raise _bad(expected, value)
    host = match.group(1) or match.group(2) or "0.0.0.0"
    port = int(match.group(3))
    if port > 65535:
        raise ValueError(f"expected a port from 0 to 65535, got {port}")
    if match.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad(expected, value) from None
    return text, host, port


def _hour(value: object, from_env: bool) -> int:
    if from_env and isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        raise _bad("a whole hour from 0 to 23 (UTC)", value)
    return value


def _session_hours(value: object, from_env: bool) -> int:
    if from_env and isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 90:
        raise _bad("a whole number of hours from 1 to 2160 (90 days)", value)
    return value


def _client_id(value: object, from_env: bool) -> str:
    # Mattermost's ids: 26 lower-case letters and digits (model.NewId).
    if not isinstance(value, str) or (value.strip() and not re.fullmatch(r"[a-z0-9]{26}", value.strip())):
        raise _bad("the OAuth app's client id from Mattermost (26 letters and digits)", value)
    return value.strip()


def _metrics_token(value: object, from_env: bool) -> str:
    # It goes in an HTTP header: printable ASCII without spaces; long enough not to be guessed.
    expected = "a token of at least 16 letters, digits or punctuation (no spaces), or \"\" for loopback only"
    if not isinstance(value, str):
        raise _bad(expected, value)
    token = value.strip()
    if token and (len(token) < 16 or not re.fullmatch(r"[!-~]+", token)):
        raise ValueError(f"expected {expected}, got a value of {len(token)} characters"
                         + ("" if re.fullmatch(r"[!-~]*", token) else " with spaces or non-ASCII characters"))
    return token


def _log_level(value: object, from_env: bool) -> str:
    if not isinstance(value, str) or value.strip().upper() not in _LOG_LEVELS:
        raise _bad("one of " + ", ".join(_LOG_LEVELS), value)
    return value.strip().upper()


def _storage_url(value: object, from_env: bool) -> str:
    expected = 'a database URL like "sqlite:///data/playbooks.db" or "postgresql+psycopg://user:pass@host/db"'
    if not isinstance(value, str):
        raise _bad(expected, value)
    url = value.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgres", "postgresql"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2, which is not installed; we ship psycopg 3.
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if scheme.split("+")[0] not in ("sqlite", "postgresql"):
        raise _bad(expected, value)
    return url


def _directory(value: object, from_env: bool) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _bad('a folder path like "playbooks"', value)
    return Path(value.strip()).expanduser()


def _file_path(value: object, from_env: bool) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _bad('a file path like "clock.txt"', value)
    return Path(value.strip()).expanduser()


def _vendor_url(example: str) -> Callable[[object, bool], str]:
    def parse(value: object, from_env: bool) -> str:
        return _http_url(value, allow_empty=True, example=example)
    return parse


def _email(value: object, from_env: bool) -> str:
    if not isinstance(value, str) or (value.strip() and not re.fullmatch(r"[^@\s]+@[^@\s]+", value.strip())):
        raise _bad("an email address", value)
    return value.strip()


def _secret(value: object, from_env: bool) -> str:
    # Goes into an HTTP header: printable ASCII without spaces. Never echoed back in the message.
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got a {type(value).__name__}")
    text = value.strip()
    if text and not re.fullmatch(r"[!-~]+", text):
        raise ValueError(f"expected a key without spaces or non-ASCII characters, got a value of {len(text)} "
                         "characters that has some")
    return text


_ROUTING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _routing_keys(value: object, from_env: bool) -> tuple[tuple[str, str], ...]:
    """A table name -> Events v2 integration key; in the environment "name=key,name2=key2"."""
    expected = 'a table like { default = "<integration key>" } (in the environment: "default=KEY,ops=KEY2")'
    pairs: list[tuple[object, object]]
    if from_env and isinstance(value, str):
        pairs = []
        for part in value.replace(";", ",").split(","):
            if not part.strip():
                continue
            name, sep, key = part.partition("=")
            if not sep:
                raise ValueError(f"expected {expected}, got an entry without \"=\"")
            pairs.append((name.strip(), key.strip()))
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise _bad(expected, value)
    out: list[tuple[str, str]] = []
    for raw_name, raw_key in pairs:
        if not isinstance(raw_name, str) or not _ROUTING_NAME.fullmatch(raw_name):
            raise ValueError(f"expected routing key names of letters, digits, '-', '_' or '.', got {_shown(raw_name)}")
        if not isinstance(raw_key, str) or not re.fullmatch(r"[!-~]+", raw_key.strip()):
            raise ValueError(f"routing key {raw_name}: expected the integration key (letters and digits, no spaces)")
        out.append((raw_name, raw_key.strip()))
    return tuple(out)


def _secret_list(value: object, from_env: bool) -> tuple[str, ...]:
    """A list of secrets (in the environment: separated by commas)."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = [v.strip() for v in value if v.strip()]
    else:
        raise _bad('a list of secrets like ["abc..."] (in the environment: separated by commas)', value)
    return tuple(parts)


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # an HTTP token (RFC 9110 field-name)


def _header_name(value: object, from_env: bool) -> str:
    if not isinstance(value, str) or (value.strip() and not _HEADER_NAME.fullmatch(value.strip())):
        raise _bad('an HTTP header name like "X-Signature"', value)
    return value.strip()


def _max_age(value: object, from_env: bool) -> float:
    if isinstance(value, str):
        try:
            return parse_duration(value.strip(), maximum=_MAX_TIMEOUT).total_seconds()
        except DurationError as exc:
            raise ValueError(f'expected a duration like "5m": {exc}') from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise _bad('a number of seconds above 0 and at most 3600, or a duration like "5m"', value)
    return float(value)


_Parser = Callable[[object, bool], Any]

# section -> key -> parser. The order is the order of the bot.toml example.
_SCHEMA: dict[str, dict[str, _Parser]] = {
    "mattermost": {"url": _mattermost_url, "token": _string, "timeout": _seconds,
                   "retries": _count, "verify_tls": _bool, "command_tokens": _tokens},
    "server": {"listen": _listen, "public_url": _public_url},
    "storage": {"url": _storage_url},
    "playbooks": {"dir": _directory},
    "logging": {"level": _log_level},
    "security": {"secret": _string},
    "digests": {"hour": _hour},
    "web": {"client_id": _client_id, "client_secret": _string, "register": _bool, "session_hours": _session_hours},
    "metrics": {"token": _metrics_token},
    "alerts": {"alertmanager_token": _string, "alertmanager_username": _string, "alertmanager_password": _string,
               "grafana_hmac_secret": _string, "grafana_hmac_header": _header_name,
               "grafana_timestamp_header": _header_name, "grafana_max_age": _max_age, "grafana_token": _string,
               "grafana_username": _string, "grafana_password": _string, "pagerduty_secrets": _secret_list,
               "opsgenie_header": _header_name, "opsgenie_secret": _string},
    "testing": {"clock_file": _file_path, "crash_at": _string},
    "jira": {"url": _vendor_url("https://acme.atlassian.net"), "email": _email, "api_token": _secret,
             "cloud_id": _string, "access_token": _secret},
    "zoom": {"account_id": _string, "client_id": _string, "client_secret": _secret, "host": _email,
             "api_url": _vendor_url("https://api.zoom.us/v2"), "oauth_url": _vendor_url("https://zoom.us/oauth/token")},
    "pagerduty": {"api_token": _secret, "api_url": _vendor_url("https://api.pagerduty.com"),
                  "events_url": _vendor_url("https://events.pagerduty.com/v2/enqueue"),
                  "routing_keys": _routing_keys, "from_email": _email},
    "opsgenie": {"api_key": _secret, "api_url": _vendor_url("https://api.opsgenie.com")},
    "http_actions": {"secrets": _secrets, "secret_hosts": _secret_hosts, "allow_internal": _internal_hosts},
}


def _did_you_mean(word: str, choices: list[str], fmt: str = '"{}"') -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.6)
    return f"; did you mean {fmt.format(close[0])}?" if close else ""


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
        if match:
            reason = text[: match.start()]
            raise ConfigError(
                f"{path}: line {match.group(1)}, column {match.group(2)}: invalid TOML: {reason}"
            ) from None
        raise ConfigError(f"{path}: invalid TOML: {text}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; expected a bot.toml file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _env_overrides(env: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(section, key) -> (variable name, raw value) for every BOT_<SECTION>_<KEY> variable.

    Variables for an unknown section are ignored (BOT_ is a common prefix) unless the section is
    a near miss of a real one, which is reported as the typo it probably is.
    """
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        # A section whose name holds "_" ([http_actions]): BOT_HTTP_ACTIONS_SECRETS.
        longer = [s for s in _SCHEMA if "_" in s and rest.startswith(s + "_")]
        if longer:
            section, key = longer[0], rest[len(longer[0]) + 1:]
        if section not in _SCHEMA:
            hint = difflib.get_close_matches(section, list(_SCHEMA), n=1, cutoff=0.75)
            if hint and key:
                raise ConfigError(
                    f"environment variable {name}: unknown section \"{section}\"; "
                    f"did you mean BOT_{hint[0].upper()}_{key.upper()}?"
                )
            continue
        if key not in _SCHEMA[section]:
            keys = list(_SCHEMA[section])
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
            suggestion = f"; did you mean BOT_{section.upper()}_{close[0].upper()}?" if close else ""
            raise ConfigError(
                f"environment variable {name}: [{section}] has no key \"{key}\"{suggestion}"
                f" (keys: {', '.join(keys)})"
            )
        found[(section, key)] = (name, env[name])
    return found


def _resolve_sqlite(url: str, base: Path) -> str:
    match = re.match(r"^(sqlite(?:\+\w+)?):///(.*)$", url, re.IGNORECASE)
    if not match:
        return url  # postgresql, or "sqlite://" (in memory)
    prefix, rest = match.groups()
    file_part, sep, query = rest.partition("?")
    if not file_part or file_part == ":memory:" or file_part.startswith("/") or file_part.startswith("file:"):
        return url
    return f"{prefix}:///{(base / file_part).resolve()}{sep}{query}"


def load_settings(path: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (default ./bot.toml), apply BOT_* overrides from env (default
    os.environ) and validate. A missing file is an error unless at least one BOT_* setting is
    given in the environment, in which case everything else takes its default."""
    env = os.environ if env is None else env
    config_path = Path(path if path is not None else DEFAULT_CONFIG)
    overrides = _env_overrides(env)

    data: dict[str, Any] = {}
    source: Path | None = None
    if config_path.exists():
        data = _read_file(config_path)
        source = config_path
    elif not overrides:
        raise ConfigError(
            f"{config_path}: file not found; create it from the example in the README or set "
            f"BOT_* environment variables (for example BOT_MATTERMOST_URL)"
        )
    base = config_path.resolve().parent

    values: dict[str, dict[str, Any]] = {section: {} for section in _SCHEMA}
    for section, table in data.items():
        if section not in _SCHEMA:
            raise ConfigError(
                f"{config_path}: [{section}]: unknown section"
                f"{_did_you_mean(section, list(_SCHEMA), fmt='[{}]')} "
                f"(sections: {', '.join(_SCHEMA)})"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{config_path}: {section}: expected a table [{section}], got {_shown(table)}")
        for key, raw in table.items():
            parser = _SCHEMA[section].get(key)
            if parser is None:
                keys = list(_SCHEMA[section])
                raise ConfigError(
                    f"{config_path}: [{section}] {key}: unknown key{_did_you_mean(key, keys)}"
                    f" (keys: {', '.join(keys)})"
                )
            try:
                values[section][key] = parser(raw, False)
            except ValueError as exc:
                raise ConfigError(f"{config_path}: [{section}] {key}: {exc}") from None

    for (section, key), (name, raw) in overrides.items():
        try:
            values[section][key] = _SCHEMA[section][key](raw, True)
        except ValueError as exc:
            raise ConfigError(f"environment variable {name} ([{section}] {key}): {exc}") from None

    return _build(values, base, source)


def _build(values: dict[str, dict[str, Any]], base: Path, source: Path | None) -> Settings:
    mm = values["mattermost"]
    mattermost = MattermostSettings(**mm)

    srv = values["server"]
    server = ServerSettings()
    if "listen" in srv:
        listen, host, port = srv["listen"]
        server = ServerSettings(listen=listen, host=host, port=port, public_url=_default_public_url(host, port))
    if srv.get("public_url"):
        server = dataclasses.replace(server, public_url=srv["public_url"])

    storage_url = values["storage"].get("url", StorageSettings.url)
    storage = StorageSettings(url=_resolve_sqlite(storage_url, base))

    directory = values["playbooks"].get("dir", PlaybooksSettings.dir)
    playbooks = PlaybooksSettings(dir=(base / directory).resolve())

    return Settings(
        mattermost=mattermost,
        server=server,
        storage=storage,
        playbooks=playbooks,
        logging=LoggingSettings(**values["logging"]),
        security=SecuritySettings(**values["security"]),
        digests=DigestsSettings(**values["digests"]),
        web=_web(values["web"]),
        metrics=MetricsSettings(**values["metrics"]),
        alerts=_alerts(values["alerts"]),
        testing=_testing(values["testing"], base),
        jira=_jira(values["jira"]),
        zoom=_vendor(ZoomSettings, "zoom", values["zoom"], required=("account_id", "client_id", "client_secret")),
        pagerduty=_pagerduty(values["pagerduty"]),
        opsgenie=_vendor(OpsgenieSettings, "opsgenie", values["opsgenie"], required=("api_key",)),
        http_actions=HttpActionsSettings(**values["http_actions"]),
        source=source.resolve() if source else None,
    )


def _web(values: dict[str, Any]) -> WebSettings:
    web = WebSettings(**values)
    if bool(web.client_id) != bool(web.client_secret):
        raise ConfigError("[web] client_id and client_secret: set both (an OAuth app of your Mattermost) or "
                          "neither (the bot registers its own where it may)")
    return web


_VendorT = TypeVar("_VendorT")


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The keys set to something (an empty string counts as not set)."""
    return {k: v for k, v in values.items() if v not in ("", ())}


def _missing(section: str, given: dict[str, Any], required: tuple[str, ...], why: str = "") -> None:
    for key in required:
        if key not in given:
            raise ConfigError(f"[{section}] {key}: missing; [{section}] sets {', '.join(sorted(given))} but "
                              f"also needs {', '.join(required)}{why} (or BOT_{section.upper()}_{key.upper()}); "
                              f"remove the section to turn {section} off")


def _vendor(cls: Callable[..., _VendorT], section: str, values: dict[str, Any], *,
            required: tuple[str, ...]) -> _VendorT:
    given = _given(values)
    if given:
        _missing(section, given, required)
    return cls(**given)


def _jira(values: dict[str, Any]) -> JiraSettings:
    given = _given(values)
    if not given:
        return JiraSettings()
    _missing("jira", given, ("url",), " (the site: browse links point there)")
    if "cloud_id" in given or "access_token" in given:
        _missing("jira", given, ("url", "cloud_id", "access_token"), " for OAuth 2.0")
    else:
        _missing("jira", given, ("url", "email", "api_token"))
    return JiraSettings(**given)


def _pagerduty(values: dict[str, Any]) -> PagerDutySettings:
    given = _given(values)
    if given and "api_token" not in given and "routing_keys" not in given:
        _missing("pagerduty", given, ("api_token",), " (and/or routing_keys for paging)")
    return PagerDutySettings(**given)


def _alerts(values: dict[str, Any]) -> AlertsSettings:
    alerts = AlertsSettings(**values)
    for source in ("alertmanager", "grafana"):
        user, password = values.get(f"{source}_username", ""), values.get(f"{source}_password", "")
        if bool(user) != bool(password):
            raise ConfigError(f"[alerts] {source}_username and {source}_password: set both (basic auth) or neither")
    if not alerts.grafana_hmac_header:
        raise ConfigError(f'[alerts] grafana_hmac_header: must not be empty (Grafana\'s own default is '
                          f'"{GRAFANA_HMAC_HEADER}")')
    if not alerts.opsgenie_header:
        raise ConfigError('[alerts] opsgenie_header: must not be empty (the custom header your Opsgenie webhook '
                          'integration sends, e.g. "X-Opsgenie-Secret")')
    return alerts


def _testing(values: dict[str, Any], base: Path) -> TestingSettings:
    clock_file = values.get("clock_file")
    return TestingSettings(clock_file=(base / clock_file).resolve() if clock_file is not None else None,
                           crash_at=values.get("crash_at", ""))


def _default_public_url(host: str, port: int) -> str:
    if port == 0:
        return ""  # a free port is picked at bind time; the app derives the URL from it
    # A wildcard bind address is not reachable as such; assume Mattermost runs on this machine.
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def log_level_number(settings: Settings) -> int:
    """The `logging` module's number for settings.logging.level."""
    return int(logging.getLevelName(settings.logging.level))
