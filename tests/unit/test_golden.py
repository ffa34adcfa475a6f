"""Golden files pin what people read: the checklist and overview posts, help, and the notices the bot
posts when something goes wrong. A deliberate wording change: run with UPDATE_GOLDEN=1 and review the
diff of tests/golden/ like any other change."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

from bot.actions import Signer
from bot.app import build_router
from bot.rendering import TEMPLATES, Renderer
from commands.help import help_reply
from handlers.views import render_checklist, render_overview
from storage.models import Checklist, ChecklistItem, Reminder, Run
from storage.runs import RunView

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Ctx:
    renderer = Renderer()
    signer = Signer(b"golden-test-secret-0123456789")
    action_url = "https://bot.example/mattermost/action"
    bot_user = SimpleNamespace(id="b" * 26)

    def render(self, template: str, /, **values: object) -> str:
        return self.renderer.render(template, **values)


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text + "\n")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 once and review it"
    assert text + "\n" == path.read_text()


def sample_run() -> RunView:
    run = Run(id="r" * 26, seq=7, name="Checkout *down* for @all", summary="service: checkout\nsince 09:12",
              playbook_id="incident", playbook_title="Incident response", team_id="t" * 26, channel_id="c" * 26,
              owner_id="o" * 26, creator_id="o" * 26, created_at=NOW, overview_post_id="p" * 26)
    checklist = Checklist(id="k" * 26, run_id=run.id, position=0, title="Triage [first]")
    states = ["open", "closed", "skipped", "in_progress"]
    items = [ChecklistItem(id=f"{n:026d}", run_id=run.id, checklist_id=checklist.id, position=n,
                           title=title, state=states[n], assignee_id="o" * 26 if n == 0 else "",
                           due_at=NOW - 60_000 if n == 0 else (NOW + 3_600_000 if n == 3 else None))
             for n, title in enumerate(["Acknowledge the page", "Open a bridge", "Tell @channel", "Roll back"])]
    reminder = Reminder(id="m" * 26, run_id=run.id, kind="status_update", due_at=NOW + 1_800_000, interval_s=1800)
    return RunView(run=run, checklists=[(checklist, items)], participant_ids=["o" * 26, "q" * 26, "b" * 26],
                   reminder=reminder)


def test_checklist_post() -> None:
    view = sample_run()
    checklist, items = view.checklists[0]
    message, props = render_checklist(Ctx(), view.run.id, 1, checklist, items, {"o" * 26: "alice"}, NOW)
    lines = [message]
    for a in props["attachments"]:
        if a.get("pretext"):
            lines.append(f"pretext: {a['pretext']}")
        lines.append(f"{a['color']} {a['text']} | " + ", ".join(f"{b['id']}:{b['name']}" for b in a["actions"]))
    check("checklist_post.txt", "\n".join(lines))


def test_overview_post() -> None:
    view = sample_run()
    message, props = render_overview(Ctx(), view, {"o" * 26: "alice", "q" * 26: "bob"})
    [status] = props["attachments"]
    buttons = [b["name"] for b in status["actions"]]
    check("overview_post.txt", message + "\n--\n" + f"{status['color']} {status['text']}" + "\n--\n"
          + json.dumps(buttons))


def test_overview_post_finished() -> None:
    view = sample_run()
    view.run.status, view.run.finished_at = "finished", NOW + 7_200_000
    message, props = render_overview(Ctx(), view, {"o" * 26: "alice"})
    [status] = props["attachments"]
    assert "actions" not in status
    check("overview_post_finished.txt", message + "\n--\n" + f"{status['color']} {status['text']}")


def test_help() -> None:
    router = build_router()
    cmd = SimpleNamespace(subcommand="", user_id="u")
    check("help.txt", help_reply(cmd, Ctx(), router).text)


@pytest.mark.parametrize("template,values", [
    ("run/category_denied.md.j2", {"category": "Incidents", "bot_name": "playbooks"}),
    ("run/started.md.j2", {"name": "DB down", "channel_name": "inc-007-db-down", "problems": ["x"]}),
    ("run/start_failed.md.j2", {"name": "DB down", "reason": "Mattermost answered 403."}),
    ("commands/unknown_playbook.md.j2", {"query": "incdent", "choices": [
        SimpleNamespace(id="incident", title="Incident response")],
        "guess": SimpleNamespace(id="incident", title="Incident response")}),
    ("permissions/not_participant.md.j2", {}),
    ("errors/internal.md.j2", {}),
    ("sidebar/not_filed.md.j2", {"run": "DB *down*", "category": "Incidents", "reason": Renderer().render(
        "sidebar/reason.md.j2", kind="denied", bot_name="playbooks")}),
    ("sidebar/problem.md.j2", {"username": "bob", "category": "Incidents", "reason": Renderer().render(
        "sidebar/reason.md.j2", kind="mattermost", err=SimpleNamespace(status=500, error_id="app.x.app_error"))}),
])
def test_notices(template: str, values: dict) -> None:
    check("notice_" + template.replace("/", "_").replace(".md.j2", ".txt"), Renderer().render(template, **values))


def test_every_template_compiles() -> None:
    renderer = Renderer()
    names = [str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.j2")]
    assert len(names) > 50
    for name in names:
        # Pages are compiled by the HTML environment, which has filters of its own (duration_ms).
        env = renderer.html if name.endswith(".html.j2") else renderer.env
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{name}: {exc}")
