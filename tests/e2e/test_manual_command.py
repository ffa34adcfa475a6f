"""A bot that may not manage slash commands: it says what an admin must do, and a /playbook command the
admin created by hand works once the bot is given that command's token."""
from __future__ import annotations

import textwrap
from pathlib import Path

import aiohttp

from bot.app import BotApp
from bot.config import load_settings
from sandbox import Sandbox
from tests.conftest import LOOPBACK, Api, sandbox_config
from tests.e2e.conftest import ONBOARDING, make_user


async def test_a_hand_made_command_works_with_its_token(tmp_path: Path) -> None:
    async with Sandbox(admin_token="admintoken", config=sandbox_config(),
                       validate=True, allow_internal=LOOPBACK) as sb, \
            aiohttp.ClientSession() as session:
        admin = Api(session, sb.url, sb.admin_token)
        _, team, _ = await admin.post("/teams", {"name": "eng", "display_name": "Eng", "type": "O"})
        alice_id, alice_token = await make_user(admin, team["id"], "alice")
        _, bot, _ = await admin.post("/bots", {"username": "playbooks"})
        await admin.post(f"/teams/{team['id']}/members", {"team_id": team["id"], "user_id": bot["user_id"]})
        _, tok, _ = await admin.post(f"/users/{bot['user_id']}/tokens", {"description": "bot"})
        # The admin creates /playbook by hand, as the bot's start-up message tells them to.
        status, command, _ = await admin.post("/commands", {"team_id": team["id"], "trigger": "playbook",
                                                            "url": "http://127.0.0.1:9/later", "method": "P"})
        assert status == 201, command
        pb_dir = tmp_path / "playbooks"
        pb_dir.mkdir()
        (pb_dir / "onboarding.toml").write_text(textwrap.dedent(ONBOARDING))
        env = {"BOT_MATTERMOST_URL": sb.url, "BOT_MATTERMOST_TOKEN": tok["token"],
               "BOT_SERVER_LISTEN": "127.0.0.1:0", "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/bot.db",
               "BOT_PLAYBOOKS_DIR": str(pb_dir)}
        plain = BotApp(load_settings(tmp_path / "absent.toml", env=env))
        await plain.start()
        try:
            [problem] = plain.command_status.problems
            assert "may not manage slash commands" in problem and "BOT_MATTERMOST_COMMAND_TOKENS" in problem
            assert plain.health()["slash_command"] is False
        finally:
            await plain.stop()

        app = BotApp(load_settings(tmp_path / "absent.toml",
                                   env={**env, "BOT_MATTERMOST_COMMAND_TOKENS": command["token"]}))
        await app.start()
        try:
            status, body, _ = await admin.put(f"/commands/{command['id']}", {
                **command, "url": f"{app.ctx.public_url}/mattermost/command"})
            assert status == 200, body
            _, town, _ = await admin.get(f"/teams/{team['id']}/channels/name/town-square")
            status, body, _ = await admin.as_(alice_token).post(
                "/commands/execute", {"channel_id": town["id"], "command": "/playbook help"})
            assert status == 200 and "/playbook run" in body["text"], body
            assert app.health()["slash_command"] is True
        finally:
            await app.stop()
