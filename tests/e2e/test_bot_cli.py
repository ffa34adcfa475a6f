"""`python -m bot check|run` as an operator types it: one clear line and exit 2 for bad config,
and `check` reporting what the bot may and may not do on a live (sandbox) server."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

from sandbox import Sandbox
from tests.conftest import Api, sandbox_config
from tests.e2e.conftest import ONBOARDING

ROOT = Path(__file__).resolve().parents[2]


async def run_cli(*args: str, env: dict[str, str], cwd: Path = ROOT) -> tuple[int, str, str]:
    """`python -m bot ARGS` in `cwd` (the project's folder unless told: it has a bot.toml), with no BOT_*
    variables but those in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=str(cwd),
                                                env={**clean, **env, "PYTHONPATH": str(ROOT)},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_a_bad_config_value_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[server]\nlisten = "8081"\n')
    code, out, err = await run_cli("check", "--config", str(config), env={})
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "[server] listen" in lines[0] and "host:port" in lines[0], err


async def test_an_unknown_subcommand_is_one_line(tmp_path: Path) -> None:
    code, out, err = await run_cli("start", env={})
    assert code == 2 and len(err.strip().splitlines()) == 1 and "run|check" in err


async def test_a_config_file_named_but_missing_is_an_error_even_with_the_environment(tmp_path: Path) -> None:
    code, out, err = await run_cli("check", "--config", "nope.toml", cwd=tmp_path,
                                   env={"BOT_MATTERMOST_URL": "http://127.0.0.1:9", "BOT_MATTERMOST_TOKEN": "x"})
    assert code == 2 and out == "", out
    assert err.strip() == "config error: nope.toml: file not found (--config names a file that is not there)"


async def make_bot(api: Api, team_id: str, roles: str) -> str:
    status, bot, _ = await api.post("/bots", {"username": f"pb{roles.count(' ')}", "display_name": "Playbooks"})
    assert status == 201, bot
    await api.post(f"/teams/{team_id}/members", {"team_id": team_id, "user_id": bot["user_id"]})
    await api.put(f"/users/{bot['user_id']}/roles", {"roles": roles})
    status, tok, _ = await api.post(f"/users/{bot['user_id']}/tokens", {"description": "cli"})
    return tok["token"]


async def test_check_reports_what_is_granted_and_what_is_missing(tmp_path: Path) -> None:
    pb_dir = tmp_path / "playbooks"
    pb_dir.mkdir()
    (pb_dir / "onboarding.toml").write_text(ONBOARDING)
    async with Sandbox(admin_token="admintoken", config=sandbox_config()) as sb, aiohttp.ClientSession() as session:
        api = Api(session, sb.url, sb.admin_token)
        _, team, _ = await api.post("/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
        admin_token = await make_bot(api, team["id"], "system_user system_admin")
        plain_token = await make_bot(api, team["id"], "system_user")
        env = {"BOT_MATTERMOST_URL": sb.url, "BOT_PLAYBOOKS_DIR": str(pb_dir),
               "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/check.db"}

        code, out, err = await run_cli("check", cwd=tmp_path, env={**env, "BOT_MATTERMOST_TOKEN": admin_token})
        assert code == 0, out + err
        assert "[ok] config (environment only: no bot.toml)" in out
        assert "[ok] playbooks: 1 loaded" in out and "[ok] team eng: may register /playbook" in out
        assert "edit_other_users" in out and "FAIL" not in out
        assert "[ok] request proof: Mattermost publishes its signing key" in out

        code, out, err = await run_cli("check", cwd=tmp_path, env={**env, "BOT_MATTERMOST_TOKEN": plain_token})
        assert code == 1
        assert "[FAIL] team eng: may not manage slash commands" in out
        assert "[FAIL] edit_other_users" in out and "without sidebar categories" in out

        (pb_dir / "broken.toml").write_text('title = "B"\n[[checklists]]\ntitle = 3\n')
        code, out, err = await run_cli("check", cwd=tmp_path, env={**env, "BOT_MATTERMOST_TOKEN": admin_token})
        assert code == 1 and "broken.toml" in out and "checklists[1].title" in out
        assert "[FAIL] playbooks: 1 loaded from" in out and ", 1 broken (" in out

        code, out, err = await run_cli("check", cwd=tmp_path, env={**env, "BOT_MATTERMOST_TOKEN": "wrongtoken"})
        assert code == 1 and "401" in out

        (pb_dir / "broken.toml").unlink()
        code, out, err = await run_cli("check", cwd=tmp_path, env={**env, "BOT_MATTERMOST_TOKEN": admin_token,
                                            "BOT_MATTERMOST_COMMAND_TOKENS": "abc123,eng:def456"})
        assert code == 0 and '1 command token(s) without a team: write each as "team-name:token"' in out
        # Nothing was written: the database the check was pointed at does not exist yet, and stays so.
        assert not (tmp_path / "check.db").exists()
        assert " INFO " not in err, err


async def test_check_fails_a_playbook_naming_people_or_channels_that_are_not_there(tmp_path: Path) -> None:
    pb_dir = tmp_path / "playbooks"
    pb_dir.mkdir()
    (pb_dir / "onboarding.toml").write_text(ONBOARDING)
    (pb_dir / "ghostly.toml").write_text(
        'title = "Ghostly"\nowner = "@ghost"\nmembers = ["carol"]\nbroadcast_channels = ["no-such-channel", '
        '"town-square"]\n[[checklists]]\ntitle = "A"\n'
        '[[checklists.items]]\ntitle = "Page"\nassignee = "@gone"\n')
    (pb_dir / "roomless.toml").write_text('title = "Roomless"\nchannel_mode = "existing"\nchannel = "no-room"\n')
    async with Sandbox(admin_token="admintoken", config=sandbox_config()) as sb, aiohttp.ClientSession() as session:
        api = Api(session, sb.url, sb.admin_token)
        _, team, _ = await api.post("/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
        token = await make_bot(api, team["id"], "system_user system_admin")
        for name in ("carol", "gone"):
            status, user, _ = await api.post("/users", {"username": name, "email": f"{name}@example.com",
                                                        "password": "Password-123!"})
            assert status == 201, user
        status, gone, _ = await api.get("/users/username/gone")
        status, body, _ = await api.put(f"/users/{gone['id']}/active", {"active": False})
        assert status == 200, body
        code, out, err = await run_cli("check", cwd=tmp_path, env={
            "BOT_MATTERMOST_URL": sb.url, "BOT_PLAYBOOKS_DIR": str(pb_dir), "BOT_MATTERMOST_TOKEN": token,
            "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/check.db"})
    assert code == 1, out + err
    assert "[ok] playbooks: 3 loaded" in out
    assert ("[FAIL] playbook roomless (roomless.toml): run channel no-room in team eng: not found, "
            "or private without the bot in it") in out
    assert "[FAIL] playbook ghostly (ghostly.toml): owner @ghost: no such user" in out
    assert '[FAIL] playbook ghostly (ghostly.toml): assignee of "Page" @gone: deactivated' in out
    assert ("[FAIL] playbook ghostly (ghostly.toml): broadcast channel no-such-channel in team eng: not found, "
            "or private without the bot in it") in out
    assert "carol" not in out and "town-square" not in out
    assert "[ok] playbook onboarding (onboarding.toml): every user and channel it names is there" in out


async def test_check_says_how_people_will_sign_in_to_the_web_view(tmp_path: Path) -> None:
    pb_dir = tmp_path / "playbooks"
    pb_dir.mkdir()
    async with Sandbox(admin_token="admintoken", config=sandbox_config()) as sb, aiohttp.ClientSession() as session:
        api = Api(session, sb.url, sb.admin_token)
        _, team, _ = await api.post("/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
        admin_token = await make_bot(api, team["id"], "system_user system_admin")
        plain_token = await make_bot(api, team["id"], "system_user")
        env = {"BOT_MATTERMOST_URL": sb.url, "BOT_PLAYBOOKS_DIR": str(pb_dir),
               "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/check.db", "BOT_SERVER_PUBLIC_URL": "http://bot.example"}

        async def sign_in_line(extra: dict[str, str]) -> str:
            _code, out, err = await run_cli("check", cwd=tmp_path, env={**env, **extra})
            return next(line for line in out.splitlines() if "web view sign-in" in line)

        line = await sign_in_line({"BOT_MATTERMOST_TOKEN": admin_token})
        assert "the bot registers its OAuth app at start-up (callback http://bot.example/oauth/callback)" in line
        line = await sign_in_line({"BOT_MATTERMOST_TOKEN": plain_token})
        assert "one-time links from /playbook dashboard: the bot may not register an OAuth app" in line
        # An app an admin registered, named in [web]: known to Mattermost, or not.
        status, app, _ = await api.post("/oauth/apps", {"name": "Playbooks", "homepage": "http://bot.example/runs",
                                                        "callback_urls": ["http://bot.example/oauth/callback"],
                                                        "is_trusted": True})
        assert status == 201, app
        line = await sign_in_line({"BOT_MATTERMOST_TOKEN": admin_token})
        assert f"the OAuth app {app['id']} the bot registered" in line  # found by its callback
        configured = {"BOT_WEB_CLIENT_ID": app["id"], "BOT_WEB_CLIENT_SECRET": app["client_secret"]}
        line = await sign_in_line({"BOT_MATTERMOST_TOKEN": admin_token, **configured})
        assert f"with Mattermost, the configured OAuth app {app['id']}" in line
        status, _, _ = await api.delete(f"/oauth/apps/{app['id']}")
        assert status == 200
        line = await sign_in_line({"BOT_MATTERMOST_TOKEN": admin_token, **configured})
        assert "is unknown to Mattermost: fix [web] client_id" in line
        status, body, _ = await api.put("/config/patch", {"ServiceSettings": {"EnableOAuthServiceProvider": False}})
        assert status == 200, body
        line = await sign_in_line({"BOT_MATTERMOST_TOKEN": admin_token})
        assert "Mattermost's OAuth 2.0 service provider is off" in line
        assert not (tmp_path / "check.db").exists()


HTTP_ACTIONS = """
title = "Notify"

[[checklists]]
title = "Do"
  [[checklists.items]]
  title = "Tell"

[[actions]]
on = "run_started"
kind = "http"
url = "http://10.1.2.3/hook"

[[actions]]
on = "run_finished"
kind = "http"
url = "http://localhost:9/hook"
"""


async def test_check_fails_http_actions_that_go_to_internal_addresses_not_allowed(tmp_path: Path) -> None:
    pb_dir = tmp_path / "playbooks"
    pb_dir.mkdir()
    (pb_dir / "notify.toml").write_text(HTTP_ACTIONS)
    async with Sandbox(admin_token="admintoken", config=sandbox_config()) as sb, aiohttp.ClientSession() as session:
        api = Api(session, sb.url, sb.admin_token)
        _, team, _ = await api.post("/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
        token = await make_bot(api, team["id"], "system_user system_admin")
        env = {"BOT_MATTERMOST_URL": sb.url, "BOT_PLAYBOOKS_DIR": str(pb_dir), "BOT_MATTERMOST_TOKEN": token,
               "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/check.db"}
        code, out, err = await run_cli("check", cwd=tmp_path, env=env)
        assert code == 1, out + err
        assert "[FAIL] playbook notify: actions[1] (http) goes to 10.1.2.3 is an internal address" in out, out
        assert "[FAIL] playbook notify: actions[2] (http) goes to localhost (" in out, out
        assert 'add "localhost" or its network to [http_actions] allow_internal' in out

        code, out, err = await run_cli("check", cwd=tmp_path, env={
            **env, "BOT_HTTP_ACTIONS_ALLOW_INTERNAL": "10.0.0.0/8,localhost"})
        assert code == 0 and "internal address" not in out, out + err
