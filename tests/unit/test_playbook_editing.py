"""bot/playbooks/editing.py: the editor's form round-trips a playbook, problems land on their field, the
TOML text loads back to the same dict, the diff names what changed, and the proposals of "Improve the
playbook" come from the runs."""
from __future__ import annotations

import tomllib
from pathlib import Path

from bot.playbooks import editing as ed
from bot.playbooks.validation import parse_playbook

ROOT = Path(__file__).resolve().parents[2]


def test_every_example_playbook_round_trips_through_the_form_and_the_toml() -> None:
    for path in sorted((ROOT / "playbooks").glob("*.toml")):
        data = tomllib.loads(path.read_text())
        assert tomllib.loads(ed.dump_toml(data)) == data, path
        again, problems = ed.data_from_form(ed.form_from_data(data))
        assert not problems
        assert parse_playbook(again, playbook_id="x", path="x") == parse_playbook(data, playbook_id="x", path="x")


def test_problems_land_on_their_field() -> None:
    form = ed.form_from_data({"title": "T", "checklists": [{"title": "A", "items": [{"title": "a"}, {"title": "b"}]}]})
    names = form.field_names()
    assert ed.field_for("checklists[1].items[2].due", names) == "checklists[1].items[2].due"
    assert ed.field_for("checklists[1].items[2].when.property", names) == "checklists[1].items[2].extra"
    assert ed.field_for("checklists[1].items[2]", names) == "checklists[1].items[2].title"
    assert ed.field_for("members[2]", names) == "members"
    assert ed.field_for("properties[1].name", names) == "extra"
    assert ed.field_for("", names) == ""


def test_buttons_move_add_and_remove() -> None:
    form = ed.form_from_data({"title": "T", "checklists": [{"title": "A", "items": [{"title": "a"}, {"title": "b"}]}]})
    assert ed.apply_op(form, "down:checklists[1].items[1]")
    assert [i.title for i in form.checklists[0].items] == ["b", "a"]
    ed.apply_op(form, "add-checklist:")
    ed.apply_op(form, "remove:checklists[1].items[2]")
    assert len(form.checklists) == 2 and [i.title for i in form.checklists[0].items] == ["b"]
    assert not ed.apply_op(form, "explode:checklists[1]")


def test_the_diff_names_items_added_removed_moved_and_changed() -> None:
    old = {"title": "T", "checklists": [{"title": "A", "items": [{"title": "a"}, {"title": "b"}, {"title": "c"}]}]}
    new = {"title": "U", "checklists": [{"title": "A", "items": [{"title": "c"}, {"title": "a", "due": "1h"},
                                                                   {"title": "d"}]}]}
    d = ed.diff(old, new)
    assert [(s.key, s.old, s.new) for s in d.settings] == [("title", "T", "U")]
    kinds = {(i.kind, i.title) for i in d.checklists[0].items}
    assert kinds == {("moved", "c"), ("changed", "a"), ("added", "d"), ("removed", "b")}
    assert ed.diff(old, old).empty


def test_proposals_from_runs() -> None:
    data = {"title": "T", "checklists": [{"title": "A", "items": [{"title": "a", "due": "10m"}, {"title": "b"}]}]}
    outcomes = [ed.ItemOutcome("r1", "A", "a", "closed", 600, 1500),
                ed.ItemOutcome("r1", "A", "b", "skipped", None, None),
                ed.ItemOutcome("r2", "A", "b", "skipped", None, None),
                ed.ItemOutcome("r2", "A", "a", "closed", 600, 60)]
    proposals = ed.propose(data, [("A", "new one"), ("A", "a")], outcomes, "r1")
    assert [(p.kind, p.title, p.checked, p.due) for p in proposals] == [
        ("add", "new one", True, ""), ("due", "a", True, "25m"), ("remove", "b", False, "")]
    changed = ed.apply_proposals(data, [p for p in proposals if p.checked])
    assert [i.get("title") for i in changed["checklists"][0]["items"]] == ["a", "b", "new one"]
    assert changed["checklists"][0]["items"][0]["due"] == "25m"
    assert ed.decode_proposal(proposals[0].encode()) is not None and ed.decode_proposal("{}") is None
    assert ed.split_note(ed.improve_note("abc123", "learned")) == ("abc123", "learned")
