"""A /playbook token proves its team and nothing more (bot/server.py CommandTokens, bot/config.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.server import CommandTokens


def test_a_registered_token_is_good_only_in_its_own_team() -> None:
    tokens = CommandTokens()
    tokens.set("team-a", "tokena")
    tokens.set("team-b", "tokenb")
    known = {"team-a", "team-b", "team-c"}
    assert tokens.valid("tokena", "team-a", known) and tokens.valid("tokenb", "team-b", known)
    assert not tokens.valid("tokena", "team-b", known)
    assert not tokens.valid("tokena", "team-c", known)
    assert not tokens.valid("", "team-a", known) and not tokens.valid("tokena", "", known)


def test_a_bare_configured_token_counts_only_in_known_teams_without_their_own() -> None:
    tokens = CommandTokens()
    tokens.set("team-a", "tokena")
    tokens.add_unbound("handmade")
    known = {"team-a", "team-c"}
    assert tokens.valid("handmade", "team-c", known)
    assert not tokens.valid("handmade", "team-a", known)  # team-a has a token of its own
    assert not tokens.valid("handmade", "team-x", known)  # a team the bot is not in
    assert tokens.unbound == 1 and len(tokens) == 2


def test_command_tokens_may_name_their_team(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "none.toml", env={"BOT_MATTERMOST_COMMAND_TOKENS": "eng:abc123, def456"})
    assert settings.mattermost.command_tokens == ("eng:abc123", "def456")
    with pytest.raises(ConfigError, match="team-name:token"):
        load_settings(tmp_path / "none.toml", env={"BOT_MATTERMOST_COMMAND_TOKENS": "Eng Team:abc"})
