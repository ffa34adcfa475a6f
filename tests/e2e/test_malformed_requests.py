"""Malformed requests sent straight to the bot's HTTP endpoints, as an attacker (not Mattermost) would.

The contract (bot/server.py): a body the bot cannot read (not UTF-8, not JSON, nested past any payload
Mattermost sends, a field of the wrong JSON type) is a 4xx naming the problem; a request without proof
(no command token, no signed context or state) is 401/403. What Mattermost may legitimately send is
answered 200: a slash command's ephemeral text (help, or why the input was refused), a dialog's
`errors` under the field that was wrong. Never a 500, never the internal-error text, nothing stored.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.e2e.conftest import World
from tests.e2e.test_bad_input import _snapshot
from tests.e2e.test_run_dialog_and_registration import commands_of, open_start_dialog
from tests.e2e.test_run_start import start_incident

DEEP = 100_000
HUGE = "x" * 900_000  # under the 1 MiB body bound, far over every text limit
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# (description, body, content type) for the JSON endpoints, each refused before any handler runs.
JSON_CORPUS: list[tuple[str, bytes, str]] = [
    ("empty", b"", JSON),
    ("bad utf-8", b'{"user_id": "\xff\xfe"}', JSON),
    ("latin-1 bytes", '{"user_id": "é"}'.encode("latin-1"), JSON),
    ("not json", b"hello", JSON),
    ("truncated", b'{"context": {', JSON),
    ("form body", b"user_id=a&context=b", FORM),
    ("text/plain garbage", b"\x00\x01\x02", "text/plain"),
    ("top-level list", b"[]", JSON),
    ("top-level string", b'"context"', JSON),
    ("top-level number", b"42", JSON),
    ("top-level null", b"null", JSON),
    ("top-level true", b"true", JSON),
    ("deep lists", b"[" * DEEP + b"]" * DEEP, JSON),
    ("deep objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, JSON),
    ("deep unclosed", b"[" * DEEP, JSON),
    ("deep in a field", b'{"context": ' + b"[" * DEEP + b"]" * DEEP + b"}", JSON),
    ("moderately deep", json.dumps({"context": {"f": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}}).encode(), JSON),
    ("NaN", b'{"user_id": NaN}', JSON),
]


def _wrong_fields(signed: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Bodies whose top-level fields have the wrong JSON type (beside a context or state of the right shape)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for key in ("user_id", "user_name", "channel_id", "team_id", "post_id", "trigger_id", "callback_id"):
        for bad in (["a"], {"a": 1}, 1, 1.5, True):
            out.append((f"{key}={bad!r}", {**signed, key: bad}))
    for bad in (["a"], "context", 1, True, [{"k": "check"}]):
        out.append((f"context={bad!r}", {**signed, "context": bad}))
    for bad in ("a", ["a"], 1, False):
        out.append((f"submission={bad!r}", {**signed, "submission": bad}))
    for bad in ("yes", 1, {"a": 1}, ["true"]):
        out.append((f"cancelled={bad!r}", {**signed, "cancelled": bad}))
    for bad in ({"a": 1}, ["a"], 1):
        out.append((f"selected_option={bad!r}", {**signed, "context": {"selected_option": bad}}))
    return out


async def _post(world: World, path: str, body: bytes, content_type: str,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with world.admin.session.post(f"{world.bot.url}{path}", data=body,
                                        headers={"Content-Type": content_type, **(headers or {})}) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


async def test_every_malformed_body_is_a_4xx_and_changes_nothing(world: World) -> None:
    run = await start_incident(world)
    assert world.bot.ctx is not None
    db = world.bot.ctx.db
    internal = world.bot.ctx.render("errors/internal.md.j2")
    dialog = await open_start_dialog(world)
    state = dialog["dialog"]["state"]
    before = await db.run(_snapshot)

    sent = 0
    for path, signed in (("/mattermost/action", {"context": {"k": "check", "v": 1, "f": [run["id"], "x"],
                                                             "s": "0" * 64}}),
                         ("/mattermost/dialog", {"state": state, "callback_id": "start_run",
                                                 "submission": {"playbook": "onboarding", "name": "x"}})):
        corpus = list(JSON_CORPUS)
        corpus += [(what, json.dumps(body).encode(), JSON) for what, body in _wrong_fields(signed)]
        # A state nested past what json.loads can parse, and one far longer than any we sign.
        corpus += [("deep state", json.dumps({**signed, "state": "[" * DEEP}).encode(), JSON),
                   ("huge state", json.dumps({**signed, "state": HUGE}).encode(), JSON),
                   ("state as object", json.dumps({**signed, "state": {"k": "startrun"}}).encode(), JSON),
                   ("missing everything", b"{}", JSON),
                   ("huge strings", json.dumps({"user_id": HUGE, "context": {"k": HUGE}}).encode(), JSON),
                   ("over 1 MiB", json.dumps({"user_id": "x" * (1024 * 1024 + 1)}).encode(), JSON)]
        for what, body, content_type in corpus:
            status, answer = await _post(world, path, body, content_type)
            sent += 1
            assert 400 <= status < 500, (path, what, status, str(answer)[:200])
            assert internal not in str(answer), (path, what)
    assert sent >= 150, sent

    token = (await commands_of(world))[0]["token"]
    command_corpus: list[tuple[str, bytes, str, dict[str, str]]] = [
        ("bad utf-8", b"text=run incident \xff\xfe&user_id=" + world["alice"].id.encode(), FORM, {}),
        ("bad utf-8, token in form", b"token=" + token.encode() + b"&text=\xc3(", FORM, {}),
        ("file field", b"--b\r\nContent-Disposition: form-data; name=\"text\"; filename=\"a.txt\"\r\n\r\n"
         b"run incident x\r\n--b--\r\n", "multipart/form-data; boundary=b", {}),
        ("broken multipart", b"--b\r\nnot a part", "multipart/form-data; boundary=b", {}),
        ("over 1 MiB", b"text=" + b"x" * (1024 * 1024 + 1), FORM, {}),
    ]
    for what, body, content_type, extra in command_corpus:
        status, answer = await _post(world, "/mattermost/command", body, content_type,
                                     {"Authorization": f"Token {token}", **extra})
        assert 400 <= status < 500, (what, status, str(answer)[:200])
        assert internal not in str(answer), what
    # Without the token, whatever the body: 401 (or 400, 413, 415 when it cannot even be read).
    for what, body, content_type, _ in command_corpus:
        status, _answer = await _post(world, "/mattermost/command", body, content_type)
        assert status in (400, 401, 413, 415), (what, status)

    # Mattermost always names the team, the user and a trigger id it signed; without them, nothing is proven.
    for what, body, content_type in [("no fields", b"", FORM),
                                     ("json instead of a form", json.dumps({"text": "run incident x"}).encode(), JSON)]:
        status, answer = await _post(world, "/mattermost/command", body, content_type,
                                     {"Authorization": f"Token {token}"})
        assert status == 401, (what, status, str(answer)[:200])

    # What a Mattermost could send but that says nothing useful: 200 with an ephemeral explanation.
    alice = world["alice"].id

    def proven() -> str:  # fresh for each request: a trigger id counts once
        trigger = quote(world.sb.hub.triggers.make(alice), safe="")
        return f"&user_id={alice}&team_id={world.team_id}&channel_id={world.town_square}&trigger_id={trigger}"

    readable = [
        ("percent-encoded bad utf-8", lambda: b"text=info%20%ff%fe" + proven().encode(), FORM),
        ("huge run name", lambda: f"text=run incident {HUGE}{proven()}".encode(), FORM),
        ("huge subcommand", lambda: f"text={HUGE}{proven()}".encode(), FORM),
        ("empty text", lambda: f"text={proven()}".encode(), FORM),
    ]
    for what, make_body, content_type in readable:
        status, answer = await _post(world, "/mattermost/command", make_body(), content_type,
                                     {"Authorization": f"Token {token}"})
        assert status == 200, (what, status, str(answer)[:200])
        assert answer.get("response_type") == "ephemeral" and answer.get("text"), (what, answer)
        assert answer["text"] != internal and len(answer["text"]) < 4000, (what, answer["text"][:200])
    await world.settle()

    async with world.admin.session.get(f"{world.bot.url}/healthz") as resp:
        assert resp.status == 200, await resp.text()
    assert await db.run(_snapshot) == before
    assert world.bot.ctx.tasks.failures == 0


async def test_dialog_values_of_the_wrong_type_are_field_errors(world: World) -> None:
    """Through the bot's own endpoint with the real state of an opened dialog: 200 with the field's error."""
    dialog = await open_start_dialog(world)
    assert world.bot.ctx is not None
    before = await world.bot.ctx.db.run(_snapshot)
    base = {"state": dialog["dialog"]["state"], "callback_id": "start_run", "user_id": world["alice"].id,
            "channel_id": world.town_square, "team_id": world.team_id}
    cases = [
        ({"playbook": 5, "name": "x"}, "playbook"),
        ({"playbook": ["onboarding"], "name": "x"}, "playbook"),
        ({"playbook": "onboarding", "name": ["a"]}, "name"),
        ({"playbook": "onboarding", "name": {"a": 1}}, "name"),
        ({"playbook": "onboarding", "name": True}, "name"),
        ({"playbook": "onboarding", "summary": ["a"]}, "summary"),
        ({"playbook": "onboarding", "summary": HUGE[:3001]}, "summary"),
        ({"playbook": "onboarding", "summary": HUGE}, "summary"),
        ({"playbook": "onboarding", "name": HUGE}, "name"),
    ]
    for submission, field in cases:
        status, answer = await _post(world, "/mattermost/dialog",
                                     json.dumps({**base, "submission": submission}).encode(), JSON)
        assert status == 200, (submission.keys(), status, str(answer)[:200])
        assert list(answer.get("errors", {})) == [field], (field, str(answer)[:300])
    await world.settle()
    assert await world.bot.ctx.db.run(_snapshot) == before
    _, runs = await world.runs_json("alice")
    assert runs["total"] == 0


async def test_the_rest_api_refuses_bad_page_numbers(world: World) -> None:
    await start_incident(world)
    for key in ("page", "per_page"):
        for bad in ("²", "¹", "٣", "１", "-1", "+1", "1.5", "1e3", "", " 1", "0x10", "9" * 10, "9" * 5000, "NaN"):
            status, body = await world.runs_json("alice", f"?{key}={quote(bad)}")
            assert status == 400, (key, bad, status, body)
            assert "whole numbers" in body["error"], body
    status, body = await world.runs_json("alice", "?page=0&per_page=1000000")
    assert status == 200 and body["total"] == 1, body
    status, body = await world.runs_json("alice", "?status=%ff")
    assert status == 400, body
    for run_id in ("%00", "x" * 5000, "%ff%fe"):
        status, body = await world.run_json(run_id)
        assert status == 404, (run_id, status, body)
