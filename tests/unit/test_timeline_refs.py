"""Post references and default summaries of `/playbook timeline add`, and the digest hour setting."""
from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings
from commands.timeline import default_summary, parse_post_ref

PID = "abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("text", [PID, f"https://chat.example.com/eng/pl/{PID}", f"<http://127.0.0.1:8065/eng/pl/{PID}/>",
                                  f"https://chat.example.com/sub/path/eng/pl/{PID}?x=1"])
def test_post_ids_and_permalinks(text: str) -> None:
    assert parse_post_ref(text) == PID


@pytest.mark.parametrize("text", ["", "12345", PID.upper(), PID + "a", f"https://x/eng/channels/{PID}",
                                  f"https://x/pl/{PID}", f"see https://x/eng/pl/{PID}"])
def test_not_post_refs(text: str) -> None:
    assert parse_post_ref(text) is None


def test_default_summary_is_forty_characters_of_one_line() -> None:
    assert default_summary("short\n\nmessage") == "short message"
    assert default_summary("x" * 40) == "x" * 40
    assert default_summary("y" * 41) == "y" * 40 + "…"


def test_digest_hour_from_file_and_environment(tmp_path) -> None:
    (tmp_path / "bot.toml").write_text("[digests]\nhour = 17\n")
    assert load_settings(tmp_path / "bot.toml", env={}).digests.hour == 17
    assert load_settings(tmp_path / "none.toml", env={"BOT_DIGESTS_HOUR": "0"}).digests.hour == 0
    assert load_settings(tmp_path / "none.toml", env={"BOT_STORAGE_URL": "sqlite://"}).digests.hour == 9
    with pytest.raises(ConfigError, match=r"BOT_DIGESTS_HOUR \(\[digests\] hour\): expected a whole hour"):
        load_settings(tmp_path / "none.toml", env={"BOT_DIGESTS_HOUR": "24"})
