"""Who the bot's slash command replies are shown as. Mattermost shows a command's reply as from the person
who typed the command (with a BOT tag) unless the command names a username and icon and the server allows
overrides (app/command.go HandleCommandResponsePost): the bot registers /playbook with its own."""
from __future__ import annotations

import json

from tests.e2e.conftest import World


async def test_command_replies_carry_the_bots_name_and_picture_where_the_server_allows(world: World) -> None:
    alice = world["alice"]
    status, commands, _ = await world.admin.get(f"/commands?team_id={world.team_id}&custom_only=true")
    assert status == 200, commands
    (command,) = [c for c in commands if c["trigger"] == "playbook"]
    status, bot, _ = await world.admin.get(f"/users/{world.bot_user_id}")
    assert status == 200, bot
    assert command["username"] == bot["username"]
    assert command["icon_url"].endswith(f"/api/v4/users/{world.bot_user_id}/image")

    def reply_to(text: str):
        def match(event: dict) -> bool:
            return event.get("event") == "ephemeral_message" and text in json.loads(event["data"]["post"])["message"]
        return match

    # Overrides off (Mattermost's default): the reply is alice's, marked as from an integration.
    since = len(alice.events)
    status, body = await alice.command(world.town_square, "/playbook help")
    assert status == 200, body
    event = await alice.wait_event(reply_to("/playbook"), since=since)
    post = json.loads(event["data"]["post"])
    assert post["user_id"] == alice.id and post["props"]["from_webhook"] == "true"
    assert "override_username" not in post["props"]

    status, body, _ = await world.admin.put("/config/patch", {"ServiceSettings": {
        "EnablePostUsernameOverride": True, "EnablePostIconOverride": True}})
    assert status == 200, body
    since = len(alice.events)
    status, body = await alice.command(world.town_square, "/playbook help")
    assert status == 200, body
    post = json.loads((await alice.wait_event(reply_to("/playbook"), since=since))["data"]["post"])
    assert post["props"]["override_username"] == bot["username"]
    assert post["props"]["override_icon_url"] == command["icon_url"]
    status, config, _ = await alice.api.get("/config/client?format=old")
    assert config["EnablePostUsernameOverride"] == "true" and config["EnablePostIconOverride"] == "true"
