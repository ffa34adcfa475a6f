"""`python -m bot check`: one line per configured vendor, from its check(); a failure fails the check."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import _check, _integration_lines
from bot.config import load_settings
from sandbox import Sandbox
from standins.__main__ import bot_env, seeded


async def test_one_line_per_configured_service(tmp_path: Path, sandbox: Sandbox,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    jira, zoom, pagerduty, opsgenie = seeded()
    async with jira.serve() as j, zoom.serve() as z, pagerduty.serve() as p, opsgenie.serve() as o:
        env = bot_env({"jira": j, "zoom": z, "pagerduty": p, "opsgenie": o})
        settings = load_settings(tmp_path / "absent.toml", env=env)
        lines = await _integration_lines(settings)
        assert [good for good, _ in lines] == [True] * 4
        jira_line, zoom_line, pd_line, og_line = (text for _, text in lines)
        assert jira_line == f"Jira: {j}: signed in as playbooks@example.com"
        assert zoom_line.startswith("Zoom: account demo-account: signed in; meetings are hosted by "
                                    "meetings@example.com")
        assert pd_line.startswith("PagerDuty: signed in as ops-bot@example.com; routing keys: default")
        assert og_line.startswith("Opsgenie: signed in to account acme") and "2027-04-05" in og_line

        settings = load_settings(tmp_path / "absent.toml", env={
            **env, "BOT_ZOOM_CLIENT_SECRET": "wrong", "BOT_MATTERMOST_URL": sandbox.url,
            "BOT_MATTERMOST_TOKEN": sandbox.admin_token, "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/bot.db",
            "BOT_PLAYBOOKS_DIR": str(tmp_path)})
        assert await _check(settings) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"[ok] Jira: {j}: signed in as playbooks@example.com" in out
    [zoom_fail] = [x for x in out if x.startswith("[FAIL] Zoom: ")]
    assert "Invalid client_id or client_secret" in zoom_fail and "check account_id, client_id and client_secret" \
        in zoom_fail


async def test_nothing_configured_prints_nothing(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", env={"BOT_LOGGING_LEVEL": "INFO"})
    assert await _integration_lines(settings) == []
