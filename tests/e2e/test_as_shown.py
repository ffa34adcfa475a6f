"""Replies as Mattermost shows them, read back through the sandbox after the server's own rewriting
(app/command.go turns Slack-style `<a|b>` into links unless the answer sets `skip_slack_parsing`), not
as the templates wrote them."""
from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import World
from tests.e2e.test_run_start import start_incident
from tests.unit.test_golden import GOLDEN


def _ephemeral(event: dict[str, Any]) -> bool:
    return event.get("event") == "ephemeral_message"


async def shown(world: World, who: str, text: str, channel_id: str = "") -> str:
    """What `who` reads after typing `text` (in Town Square unless told): the ephemeral answer."""
    person = world[who]
    since = len(person.events)
    status, body = await person.command(channel_id or world.town_square, text)
    assert status == 200, body
    event = await person.wait_event(_ephemeral, since=since)
    return str(json.loads(event["data"]["post"])["message"])


async def test_help_reads_as_written(world: World) -> None:
    text = await shown(world, "alice", "/playbook help")
    assert text + "\n" == (GOLDEN / "help.txt").read_text()
    assert "`/playbook assign <item: 2.3 or title words> <@user | me | nobody> [--run <name>]`" in text


async def test_a_usage_answer_reads_as_written(world: World) -> None:
    run = await start_incident(world)
    text = await shown(world, "alice", "/playbook assign", run["channel_id"])
    assert "<@user | me | nobody>" in text, text
    assert "](" not in text, text  # no Markdown link made out of `<…|…>`


async def test_a_mistyped_command_gets_the_nearest_with_its_usage(world: World) -> None:
    text = await shown(world, "alice", "/playbook chek 1.1")
    assert text.startswith("There is no `/playbook chek` command.\nDid you mean `/playbook check`?\n"), text
    assert "- `/playbook check <item: 2.3 or title words> [--run <name>]`: Mark an item done." in text
    assert "/playbook help" not in text and len(text.splitlines()) == 3  # not the whole list
    text = await shown(world, "alice", "/playbook runn incident")
    assert "Did you mean `/playbook run`?" in text and "`/playbook run [playbook] [run name]`" in text
    text = await shown(world, "alice", "/playbook deploy")
    assert text == "There is no `/playbook deploy` command.\n`/playbook help` lists every command."


async def test_a_mistyped_playbook_gets_the_nearest(world: World) -> None:
    text = await shown(world, "alice", "/playbook run incidnet Checkout down")
    assert text.splitlines()[:2] == [
        "There is no playbook called **incidnet**. Did you mean **Incident response** (`incident`)?",
        "Choose one of:"], text
