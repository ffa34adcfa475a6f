"""tests/bot_api.py holds every API exchange of the tests to bot/openapi.json: a route the document does not
describe, a status it does not declare, an answer that does not match its schema, a declared header with a
wrong value, or an accepted request whose body the document refuses, each fails the test that made it."""
from __future__ import annotations

import json

import pytest

from tests.bot_api import check_exchange

BASE = "http://bot.test"
JSON = {"Content-Type": "application/json", "Authorization": "Bearer t0ken"}
STARTING = json.dumps({"id": "r" * 26, "status": "starting"}).encode()


def exchange(method: str, path: str, body: object | None, status: int, answer: object,
             response_headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode() if body is not None else None
    check_exchange(BASE, method, path, {}, dict(JSON), raw, status, "application/json", json.dumps(answer).encode(),
                   response_headers)


def test_a_described_exchange_passes() -> None:
    exchange("POST", "/api/v0/runs", {"playbook": "incident"}, 202, {"id": "r" * 26, "status": "starting"},
             {"Idempotent-Replayed": "true"})
    exchange("POST", "/api/v0/runs", {"playbook": "incident"}, 422,
             {"error": "Some properties cannot be used.", "problems": [{"path": "properties.x", "message": "no"}]})


def test_an_unknown_route_fails() -> None:
    with pytest.raises(AssertionError, match="does not match bot/openapi.json"):
        exchange("POST", "/api/v0/runs/abc/explode", {}, 200, {})


def test_an_undeclared_status_fails() -> None:
    with pytest.raises(AssertionError, match="response does not match"):
        exchange("POST", "/api/v0/runs/abc/finish", None, 418, {"error": "teapot"})


def test_an_answer_off_its_schema_fails() -> None:
    with pytest.raises(AssertionError, match="response does not match"):
        exchange("POST", "/api/v0/runs", {"playbook": "incident"}, 202, {"id": "r", "status": "running"})


def test_a_declared_header_with_a_wrong_value_fails() -> None:
    with pytest.raises(AssertionError, match="response does not match"):
        exchange("POST", "/api/v0/runs", {"playbook": "incident"}, 202, {"id": "r", "status": "starting"},
                 {"Idempotent-Replayed": "yes"})


def test_an_accepted_request_off_its_schema_fails() -> None:
    with pytest.raises(AssertionError, match="request does not match"):
        exchange("PATCH", "/api/v0/runs/abc/items/def", {"state": "done"}, 200,
                 {"id": "i", "title": "t", "state": "closed"})
