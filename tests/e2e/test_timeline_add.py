"""People put existing posts on a run's timeline with `/playbook timeline add <post id or link>`."""
from __future__ import annotations

from storage import timeline
from tests.e2e.conftest import World
from tests.e2e.test_commands import type_
from tests.e2e.test_run_start import start_incident


async def say(world: World, who: str, channel_id: str, message: str) -> str:
    status, post, _ = await world[who].api.post("/posts", {"channel_id": channel_id, "message": message})
    assert status == 201, post
    return post["id"]


async def post_events(world: World, run_id: str) -> list[dict]:
    status, data = await world.run_json(run_id)
    assert status == 200, data
    return [e for e in data["timeline"] if e["type"] == "event_from_post"]


async def test_add_by_id_and_by_permalink_then_timeline_shows_them(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    first = await say(world, "bob", ch, "Error rate is back to normal after the failover to the replica")
    text = await type_(world, "bob", ch, f"/playbook timeline add {first}")
    assert text == "Added to the timeline of **Database down**: Error rate is back to normal after the f…"
    # From another channel, by the link Mattermost's "Copy Link" gives, with a summary of one's own.
    alert = await say(world, "carol", world.town_square, "PagerDuty: db-primary unreachable")
    text = await type_(world, "alice", world.town_square,
                       f'/playbook timeline add {world.sb.url}/eng/pl/{alert} First alert --run "Database down"')
    assert text == "Added to the timeline of **Database down**: First alert"

    events = await post_events(world, run["id"])
    assert [(e["summary"], e["actor_id"]) for e in events] == [
        ("Error rate is back to normal after the f…", world["bob"].id), ("First alert", world["alice"].id)]
    # The API's timeline shape (contracts.md) has no details; the rows keep the post and its author.
    rows = [e for e in await world.bot.ctx.db.run(timeline.timeline, run["id"]) if e.type == "event_from_post"]
    assert [(e.details["post_id"], e.details["author_id"]) for e in rows] == [
        (first, world["bob"].id), (alert, world["carol"].id)]
    shown = await type_(world, "carol", ch, "/playbook timeline")
    assert "| Post | @bob | Error rate is back to normal after the f… |" in shown
    assert "| Post | @alice | First alert |" in shown
    # The same post twice adds nothing.
    assert "already on the timeline" in await type_(world, "alice", ch, f"/playbook timeline add {first}")
    assert len(await post_events(world, run["id"])) == 2


async def test_refusals_say_why_and_store_nothing(world: World) -> None:
    run = await start_incident(world)
    ch = run["channel_id"]
    acme = await start_incident(world, "/playbook run onboarding Acme")  # a public run dave is not in
    assert "needs the post to add" in await type_(world, "bob", ch, "/playbook timeline add")
    assert "is not a post id or a post link" in await type_(world, "bob", ch, "/playbook timeline add 12345")
    assert "is not a post id or a post link" in await type_(
        world, "bob", ch, "/playbook timeline add https://chat.example.com/eng/channels/town-square")
    missing = "a" * 26
    assert f"I can't find a post `{missing}` that you can read" in await type_(
        world, "bob", ch, f"/playbook timeline add {missing}")
    own = await say(world, "bob", ch, "ok")
    assert "at most 64" in await type_(world, "bob", ch, f"/playbook timeline add {own} {'x' * 65}")

    # A post of another team's channel.
    status, ops, _ = await world.admin.post("/teams", {"name": "ops", "display_name": "Ops", "type": "O"})
    assert status == 201, ops
    status, ops_square, _ = await world.admin.get(f"/teams/{ops['id']}/channels/name/town-square")
    assert status == 200, ops_square
    status, foreign, _ = await world.admin.post("/posts", {"channel_id": ops_square["id"], "message": "hello"})
    assert status == 201, foreign
    assert "not in a channel of the team of **Database down**" in await type_(
        world, "bob", ch, f"/playbook timeline add {foreign['id']}")

    # Someone who does not take part in the run may not add to it.
    town = await say(world, "dave", world.town_square, "Acme signed")
    assert "Only participants can change this run" in await type_(
        world, "dave", world.town_square, f"/playbook timeline add {town} --run Acme")
    # Once he does: a post in a private channel he is not in reads as missing, so nothing leaks.
    assert "You take part in **Acme** now" in await type_(world, "dave", world.town_square, "/playbook join --run Acme")
    secret = await say(world, "alice", ch, "the root password is in the vault")
    assert "that you can read" in await type_(
        world, "dave", world.town_square, f"/playbook timeline add {secret} --run Acme")

    assert await post_events(world, run["id"]) == []
    assert await post_events(world, acme["id"]) == []
