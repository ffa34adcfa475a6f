"""Dialog values of the wrong type and texts over their limits: a field error (or a usage text for a
command), rendered from templates, and nothing stored. The real bot over the fake gateway."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.actions import RetroDialog, StartRunDialog, UpdateDialog
from bot.domain.args import MAX_TITLE
from bot.playbooks.model import TITLE_MAX
from bot.router import DialogErrors, DialogSubmission, NoReply, Reply
from handlers.fields import DIALOG_TEXTAREA_MAX, POST_MESSAGE_MAX_RUNES
from handlers.runs import MAX_RUN_NAME, MAX_SUMMARY
from handlers.views import render_overview
from storage import reminders
from tests.e2e.test_bad_input import _snapshot
from tests.handlers.commands_world import Env, make_env

WRONG = [["a"], {"a": 1}, 1, 1.5, True]


async def submit(env: Env, ref: Any, values: dict[str, Any], who: str = "alice") -> Reply:
    user = env.users[who]
    reply = await env.dispatcher.dialog(DialogSubmission(user.id, env.town.id, env.team_id, "", ref, values),
                                        env.ctx)
    await env.ctx.tasks.drain()
    return reply


def field_errors(reply: Reply) -> dict[str, str]:
    assert isinstance(reply, DialogErrors), reply
    assert not reply.error, reply
    return reply.errors


async def test_start_dialog_refuses_wrong_types_and_long_texts_per_field(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    ref = StartRunDialog(env.team_id, env.town.id)
    before = await env.ctx.db.run(_snapshot)
    wrong_type = env.ctx.render("fields/wrong_type.md.j2", expected="text")
    for bad in WRONG:
        assert field_errors(await submit(env, ref, {"playbook": "onboarding", "name": bad})) == {"name": wrong_type}
        assert list(field_errors(await submit(env, ref, {"playbook": "onboarding", "summary": bad}))) == ["summary"]
        if not isinstance(bad, str):
            assert list(field_errors(await submit(env, ref, {"playbook": bad}))) == ["playbook"]
    long_summary = field_errors(await submit(env, ref, {"playbook": "onboarding", "summary": "s" * (MAX_SUMMARY + 1)}))
    assert long_summary == {"summary": env.ctx.render("run/summary_too_long.md.j2", length=MAX_SUMMARY + 1,
                                                      limit=MAX_SUMMARY)}
    assert list(field_errors(await submit(env, ref, {"playbook": "onboarding", "summary": "s" * 900_000}))) \
        == ["summary"]
    long_name = field_errors(await submit(env, ref, {"playbook": "onboarding", "name": "n" * (MAX_RUN_NAME + 1)}))
    assert str(MAX_RUN_NAME) in long_name["name"]
    assert await env.ctx.db.run(_snapshot) == before

    # Exactly at the limits it starts, and `null` values count as left empty.
    assert isinstance(await submit(env, ref, {"playbook": "onboarding", "name": None, "summary": None}), NoReply)
    assert MAX_SUMMARY == DIALOG_TEXTAREA_MAX


async def test_the_overview_and_broadcast_fit_a_post_at_the_worst_case(tmp_path: Path) -> None:
    """A name and a summary at their limits, made of characters that grow the most when escaped."""
    env = await make_env(tmp_path)
    name = "*" * MAX_RUN_NAME
    summary = ("@all " * (MAX_SUMMARY // 5))[:MAX_SUMMARY]
    view = await env.start("incident", name=name, summary=summary)
    assert (view.run.name, view.run.summary) == (name, summary.strip())
    message, _ = render_overview(env.ctx, view, {view.run.owner_id: "u" * 64})
    assert len(message) <= POST_MESSAGE_MAX_RUNES, len(message)
    broadcast = env.ctx.render("run/broadcast_started.md.j2", name=name, creator="u" * 64, playbook="*" * TITLE_MAX,
                               owner="u" * 64, channel_name="c" * 64, summary="*" * MAX_SUMMARY)
    assert len(broadcast) <= POST_MESSAGE_MAX_RUNES, len(broadcast)


async def test_run_command_refuses_a_long_name_and_stores_nothing(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    before = await env.ctx.db.run(_snapshot)
    text = await env.type("alice", f"/playbook run onboarding {'n' * (MAX_RUN_NAME + 1)}")
    assert text == env.ctx.render("commands/name_too_long.md.j2", length=MAX_RUN_NAME + 1, limit=MAX_RUN_NAME)
    text = await env.type("alice", f"/playbook run onboarding {'n ' * 300_000}")
    assert str(MAX_RUN_NAME) in text
    assert await env.ctx.db.run(_snapshot) == before


async def test_status_update_fields_are_typed_and_bounded(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    view = await env.start()
    ref = UpdateDialog(view.run.id)
    before = await env.ctx.db.run(_snapshot)
    good = {"message": "All fine", "reminder": "30m", "finish": False}
    for bad in WRONG:
        assert list(field_errors(await submit(env, ref, {**good, "message": bad}))) == ["message"]
        assert list(field_errors(await submit(env, ref, {**good, "reminder": bad}))) == ["reminder"]
        if not isinstance(bad, bool):
            assert field_errors(await submit(env, ref, {**good, "finish": bad})) == {
                "finish": env.ctx.render("fields/wrong_type.md.j2", expected="true or false")}
    assert list(field_errors(await submit(env, ref, {**good, "finish": "maybe"}))) == ["finish"]
    too_long = field_errors(await submit(env, ref, {**good, "message": "m" * (DIALOG_TEXTAREA_MAX + 1)}))
    assert too_long == {"message": env.ctx.render("fields/too_long.md.j2", length=DIALOG_TEXTAREA_MAX + 1,
                                                  limit=DIALOG_TEXTAREA_MAX)}
    assert list(field_errors(await submit(env, ref, {**good, "reminder": "1" * 41}))) == ["reminder"]
    # Several wrong fields: each has its own error.
    assert set(field_errors(await submit(env, ref, {"message": ["a"], "reminder": 5, "finish": {}}))) \
        == {"message", "reminder", "finish"}
    assert await env.ctx.db.run(_snapshot) == before
    assert await env.ctx.db.run(reminders.last_update, view.run.id) is None

    assert isinstance(await submit(env, ref, {**good, "message": "m" * DIALOG_TEXTAREA_MAX, "finish": "false"}),
                      NoReply)
    last = await env.ctx.db.run(reminders.last_update, view.run.id)
    assert last is not None and last.message == "m" * DIALOG_TEXTAREA_MAX


async def test_retrospective_text_is_typed_and_bounded(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    view = await env.start()
    ref = RetroDialog(view.run.id)
    before = await env.ctx.db.run(_snapshot)
    for bad in WRONG:
        assert list(field_errors(await submit(env, ref, {"text": bad}))) == ["text"]
    assert list(field_errors(await submit(env, ref, {"text": "r" * (DIALOG_TEXTAREA_MAX + 1)}))) == ["text"]
    assert field_errors(await submit(env, ref, {"text": "  "})) == {"text": env.ctx.render("retro/error_empty.md.j2")}
    assert await env.ctx.db.run(_snapshot) == before
    assert (await env.view(view.run.id)).run.retrospective_text in ("", None)


async def test_item_titles_added_by_command_are_bounded(tmp_path: Path) -> None:
    env = await make_env(tmp_path)
    view = await env.start()
    before = await env.ctx.db.run(_snapshot)
    text = await env.type("alice", f"/playbook add 1 {'t' * (MAX_TITLE + 1)}", view.run.channel_id)
    assert str(MAX_TITLE) in text and "Usage:" in text
    assert await env.ctx.db.run(_snapshot) == before
