from __future__ import annotations

import dataclasses
import hashlib
import hmac
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, derive_signing_key, load_settings

REPO = Path(__file__).resolve().parents[2]

FULL = """
[mattermost]
url = "https://chat.example.com/"
token = "file-token"
timeout = "10s"
retries = 5
verify_tls = false

[server]
listen = "0.0.0.0:9000"
public_url = "https://bot.example.com/"

[storage]
url = "sqlite:///data/playbooks.db"

[playbooks]
dir = "books"

[logging]
level = "debug"

[security]
secret = "s3cret"
"""


def write(tmp_path: Path, text: str, name: str = "bot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env or {})
    message = str(info.value)
    assert "\n" not in message, "ConfigError must be one line"
    return message


def test_the_shipped_bot_toml_loads_in_sandbox_mode() -> None:
    settings = load_settings(REPO / "bot.toml", env={})
    assert settings.mattermost.url == "" and settings.mattermost.sandbox
    assert settings.server.listen == "127.0.0.1:8081"
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8081)
    assert settings.server.public_url == "http://127.0.0.1:8081"
    assert settings.storage.url == f"sqlite:///{REPO / 'data' / 'playbooks.db'}"
    assert settings.playbooks.dir == REPO / "playbooks"
    assert settings.logging.level == "INFO"
    assert settings.source == REPO / "bot.toml"


def test_full_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, FULL), env={})
    assert s.mattermost.url == "https://chat.example.com"  # trailing slash dropped
    assert s.mattermost.token == "file-token"
    assert s.mattermost.timeout == 10.0 and s.mattermost.retries == 5 and s.mattermost.verify_tls is False
    assert not s.mattermost.sandbox
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9000)
    assert s.server.public_url == "https://bot.example.com"
    assert s.storage.url == f"sqlite:///{tmp_path.resolve() / 'data' / 'playbooks.db'}"
    assert s.playbooks.dir == tmp_path.resolve() / "books"
    assert s.logging.level == "DEBUG"
    assert s.signing_key == b"s3cret"


def test_settings_are_frozen_and_keep_secrets_out_of_repr(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, FULL), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mattermost.url = "x"  # type: ignore[misc]
    assert "file-token" not in repr(s) and "s3cret" not in repr(s)


def test_defaults_for_an_empty_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ""), env={})
    assert s.mattermost.url == "" and s.mattermost.token == ""
    assert s.mattermost.timeout == 30.0 and s.mattermost.retries == 3 and s.mattermost.verify_tls
    assert s.server.listen == "127.0.0.1:8081" and s.server.public_url == "http://127.0.0.1:8081"
    assert s.storage.url.endswith("/data/playbooks.db")
    assert s.playbooks.dir == tmp_path.resolve() / "playbooks"


@pytest.mark.parametrize("listen, host, port, public", [
    ("127.0.0.1:8081", "127.0.0.1", 8081, "http://127.0.0.1:8081"),
    ("0.0.0.0:80", "0.0.0.0", 80, "http://127.0.0.1:80"),
    (":8081", "0.0.0.0", 8081, "http://127.0.0.1:8081"),
    ("localhost:8081", "localhost", 8081, "http://localhost:8081"),
    ("[::1]:8081", "::1", 8081, "http://[::1]:8081"),
    ("127.0.0.1:0", "127.0.0.1", 0, ""),
])
def test_listen_forms(tmp_path: Path, listen: str, host: str, port: int, public: str) -> None:
    s = load_settings(write(tmp_path, f'[server]\nlisten = "{listen}"\n'), env={})
    assert (s.server.host, s.server.port, s.server.public_url) == (host, port, public)


@pytest.mark.parametrize("url, expected", [
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("sqlite:////var/lib/bot.db", "sqlite:////var/lib/bot.db"),
    ("postgresql+psycopg://u:p@db/pb", "postgresql+psycopg://u:p@db/pb"),
    ("postgresql://u:p@db/pb", "postgresql+psycopg://u:p@db/pb"),
    ("postgres://u:p@db/pb", "postgresql+psycopg://u:p@db/pb"),
])
def test_storage_urls(tmp_path: Path, url: str, expected: str) -> None:
    s = load_settings(write(tmp_path, f'[storage]\nurl = "{url}"\n'), env={})
    assert s.storage.url == expected


def test_relative_sqlite_path_keeps_its_query(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[storage]\nurl = "sqlite:///x.db?timeout=5"\n'), env={})
    assert s.storage.url == f"sqlite:///{tmp_path.resolve() / 'x.db'}?timeout=5"


# --- environment ----------------------------------------------------------------------------

def test_environment_overrides_every_kind_of_value(tmp_path: Path) -> None:
    env = {
        "BOT_MATTERMOST_URL": "https://other.example.com",
        "BOT_MATTERMOST_TOKEN": " env-token\n",
        "BOT_MATTERMOST_TIMEOUT": "2.5",
        "BOT_MATTERMOST_RETRIES": "0",
        "BOT_MATTERMOST_VERIFY_TLS": "yes",
        "BOT_SERVER_LISTEN": "127.0.0.1:7000",
        "BOT_STORAGE_URL": "postgresql+psycopg://u@h/db",
        "BOT_PLAYBOOKS_DIR": "/srv/playbooks",
        "BOT_LOGGING_LEVEL": "warning",
        "BOT_SECURITY_SECRET": "from-env",
        "BOTANY": "ignored", "BOT_OTHER_THING": "ignored (unknown section)", "PATH": "/bin",
    }
    s = load_settings(write(tmp_path, FULL), env=env)
    assert s.mattermost.url == "https://other.example.com"
    assert s.mattermost.token == "env-token"
    assert s.mattermost.timeout == 2.5 and s.mattermost.retries == 0 and s.mattermost.verify_tls is True
    assert (s.server.host, s.server.port) == ("127.0.0.1", 7000)
    # public_url was set in the file, so it wins over the one derived from listen
    assert s.server.public_url == "https://bot.example.com"
    assert s.storage.url == "postgresql+psycopg://u@h/db"
    assert s.playbooks.dir == Path("/srv/playbooks")
    assert s.logging.level == "WARNING"
    assert s.signing_key == b"from-env"


def test_environment_can_empty_the_url_for_sandbox_mode(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, FULL), env={"BOT_MATTERMOST_URL": ""})
    assert s.mattermost.url == "" and s.mattermost.sandbox


def test_environment_public_url_overrides_the_derived_one(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ""), env={"BOT_SERVER_PUBLIC_URL": "http://bot:8081"})
    assert s.server.public_url == "http://bot:8081"


@pytest.mark.parametrize("word, value", [("true", True), ("1", True), ("on", True), ("FALSE", False),
                                         ("0", False), ("no", False), ("off", False)])
def test_environment_booleans(tmp_path: Path, word: str, value: bool) -> None:
    s = load_settings(write(tmp_path, ""), env={"BOT_MATTERMOST_VERIFY_TLS": word})
    assert s.mattermost.verify_tls is value


def test_missing_file_is_fine_when_the_environment_configures_the_bot(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "absent.toml", env={"BOT_MATTERMOST_URL": "https://chat.example.com",
                                                     "BOT_MATTERMOST_TOKEN": "t"})
    assert s.mattermost.url == "https://chat.example.com" and s.source is None
    assert s.playbooks.dir == tmp_path.resolve() / "playbooks"


def test_missing_file_without_environment_is_an_error(tmp_path: Path) -> None:
    message = error_of(tmp_path / "absent.toml")
    assert message.startswith(f"{tmp_path / 'absent.toml'}: file not found")
    assert "BOT_" in message


@pytest.mark.parametrize("env, fragments", [
    ({"BOT_MATTERMOST_TOKN": "x"},
     ["environment variable BOT_MATTERMOST_TOKN", 'no key "tokn"', "did you mean BOT_MATTERMOST_TOKEN?"]),
    ({"BOT_MATERMOST_TOKEN": "x"},
     ["environment variable BOT_MATERMOST_TOKEN", 'unknown section "matermost"', "BOT_MATTERMOST_TOKEN"]),
    ({"BOT_SERVER_LISTEN": "8081"},
     ["environment variable BOT_SERVER_LISTEN ([server] listen)", 'expected "host:port"', 'got "8081"']),
    ({"BOT_SERVER_LISTEN": "127.0.0.1:70000"}, ["BOT_SERVER_LISTEN", "port from 0 to 65535"]),
    ({"BOT_MATTERMOST_RETRIES": "many"}, ["BOT_MATTERMOST_RETRIES", "whole number", 'got "many"']),
    ({"BOT_MATTERMOST_VERIFY_TLS": "maybe"}, ["BOT_MATTERMOST_VERIFY_TLS", "true or false"]),
    ({"BOT_MATTERMOST_TIMEOUT": "soon"}, ["BOT_MATTERMOST_TIMEOUT", "seconds (like 30)"]),
    ({"BOT_MATTERMOST_URL": "chat.example.com"}, ["BOT_MATTERMOST_URL", "http(s) URL"]),
    ({"BOT_LOGGING_LEVEL": "loud"}, ["BOT_LOGGING_LEVEL", "one of DEBUG, INFO"]),
])
def test_bad_environment_values(tmp_path: Path, env: dict[str, str], fragments: list[str]) -> None:
    message = error_of(write(tmp_path, ""), env)
    for fragment in fragments:
        assert fragment in message


# --- file errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, fragments", [
    ('[mattermost]\ntokn = "x"\n', ["[mattermost] tokn: unknown key", 'did you mean "token"?']),
    ('[matermost]\nurl = ""\n', ["[matermost]: unknown section", "did you mean [mattermost]?"]),
    ('mattermost = "x"\n', ["mattermost: expected a table [mattermost]"]),
    ('[mattermost]\nurl = "ftp://chat"\n', ["[mattermost] url: expected an http(s) URL", 'got "ftp://chat"']),
    ('[mattermost]\nurl = "https://chat:99999"\n', ["[mattermost] url", "valid port"]),
    ('[mattermost]\nurl = 5\n', ["[mattermost] url: expected an http(s) URL", "got 5"]),
    ('[mattermost]\ntoken = 123\n', ["[mattermost] token: expected a string, got 123"]),
    ('[mattermost]\nverify_tls = "false"\n', ["[mattermost] verify_tls: expected true or false", 'got "false"']),
    ('[mattermost]\nretries = -1\n', ["[mattermost] retries: expected a whole number", "got -1"]),
    ('[mattermost]\nretries = true\n', ["[mattermost] retries: expected a whole number", "got true"]),
    ('[mattermost]\ntimeout = 0\n', ["[mattermost] timeout: expected a number of seconds above 0"]),
    ('[mattermost]\ntimeout = "2h"\n', ["[mattermost] timeout", "maximum of 1 hour"]),
    ('[server]\nlisten = "localhost"\n', ["[server] listen: expected \"host:port\"", 'got "localhost"']),
    ('[server]\nlisten = 8081\n', ["[server] listen: expected \"host:port\"", "got 8081"]),
    ('[server]\npublic_url = "http://bot:8081/?x=1"\n', ["[server] public_url: expected an http(s) URL"]),
    ('[storage]\nurl = "mysql://db"\n', ["[storage] url: expected a database URL", 'got "mysql://db"']),
    ('[storage]\nurl = "data.db"\n', ["[storage] url: expected a database URL"]),
    ('[playbooks]\ndir = ""\n', ["[playbooks] dir: expected a folder path"]),
    ('[logging]\nlevel = "verbose"\n', ["[logging] level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL"]),
    ('[security]\nsecret = ["a"]\n', ["[security] secret: expected a string, got a list"]),
])
def test_bad_file_values_name_the_file_and_key(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, message


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[mattermost]\nurl = "https://chat.example.com"\ntoken "x"\n')
    message = error_of(path)
    assert message.startswith(f"{path}: line 3, column 7: invalid TOML: ")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_bytes(b'[mattermost]\ntoken = "\xff"\n')
    assert error_of(path) == f"{path}: not UTF-8 text; save the file as UTF-8"


def test_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    assert "is a folder" in error_of(tmp_path)


# --- signing key and sandbox mode -----------------------------------------------------------

def test_signing_key_is_derived_from_the_token_when_no_secret(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[mattermost]\ntoken = "tok"\n'), env={})
    expected = hmac.new(b"tok", b"playbooks-for-mattermost/button-signing/v1", hashlib.sha256).digest()
    assert s.signing_key == expected == derive_signing_key("tok")
    assert s.signing_key != b"tok"
    # stable across loads (restarts), different for another token
    assert load_settings(write(tmp_path, '[mattermost]\ntoken = "tok"\n'), env={}).signing_key == expected
    assert derive_signing_key("other") != expected


def test_signing_key_needs_a_secret_or_a_token() -> None:
    with pytest.raises(ConfigError, match="BOT_SECURITY_SECRET or BOT_MATTERMOST_TOKEN"):
        _ = Settings().signing_key


def test_with_mattermost_points_at_the_sandbox(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ""), env={})
    live = s.with_mattermost(url="http://127.0.0.1:8065/", token="sandbox-token")
    assert live.mattermost.url == "http://127.0.0.1:8065" and live.mattermost.token == "sandbox-token"
    assert live.signing_key == derive_signing_key("sandbox-token")
    assert s.mattermost.url == ""  # the original is unchanged


def test_command_tokens_come_from_the_file_or_the_environment(tmp_path) -> None:
    from bot.config import ConfigError, load_settings

    config = tmp_path / "bot.toml"
    config.write_text('[mattermost]\ncommand_tokens = ["abc123", "def456"]\n')
    assert load_settings(config, env={}).mattermost.command_tokens == ("abc123", "def456")
    env = {"BOT_MATTERMOST_COMMAND_TOKENS": "x1y2, z3"}
    assert load_settings(config, env=env).mattermost.command_tokens == ("x1y2", "z3")
    config.write_text('[mattermost]\ncommand_tokens = "not a token!"\n')
    try:
        load_settings(config, env={})
    except ConfigError as err:
        assert "[mattermost] command_tokens" in str(err) and "\n" not in str(err)
    else:
        raise AssertionError("a bad token was accepted")
