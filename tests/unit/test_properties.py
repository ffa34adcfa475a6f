"""Run properties, item conditions and keyword checks: the playbook file's schema and the pure rules."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.domain.conditions import (
    PropertySpec,
    PropertyValueError,
    holds,
    matching_keyword,
    parse_value,
    shown,
    shown_properties,
    visible,
)
from bot.playbooks import PlaybookInvalid, load_playbook
from bot.playbooks.model import AutoCheck
from bot.playbooks.validation import parse_playbook

REPO = Path(__file__).resolve().parents[2]

GOOD = '''
title = "Incident"
[[properties]]
name = "severity"
title = "Severity"
type = "select"
options = ["sev1", "sev2", "sev3"]
required = true
default = "sev3"
[[properties]]
name = "services"
type = "multiselect"
options = ["api", "db", "web"]
default = ["db"]
[[properties]]
name = "customer"
title = "Customer"
type = "text"

[[checklists]]
title = "Triage"
  [[checklists.items]]
  title = "Always"
  [[checklists.items]]
  title = "Page the executive"
  when = { property = "severity", is = ["sev1", "sev2"] }
  [[checklists.items]]
  title = "Not for the database"
  when = { property = "services", is_not = "db" }
  [[checklists.items]]
  title = "Either"
  when = { or = [ { property = "severity", is = ["sev1"] }, { property = "customer", is = ["ACME"] } ] }
  [[checklists.items]]
  title = "Deploy the fix"
  [checklists.items.auto_check]
  keywords = ["deployed", "rolled back", "deployed"]
  users = ["@Alice", "bob"]
'''


def parse(text: str) -> object:
    return parse_playbook(tomllib.loads(text), playbook_id="pb", path="pb.toml")


def errors(text: str) -> list[str]:
    with pytest.raises(PlaybookInvalid) as info:
        parse(text)
    return [f"{e.key}: {e.problem}" for e in info.value.errors]


def test_properties_conditions_and_auto_check_load() -> None:
    pb = parse(GOOD)
    severity, services, customer = pb.properties  # type: ignore[attr-defined]
    assert severity == PropertySpec("severity", "Severity", "select", ("sev1", "sev2", "sev3"), True, "sev3")
    assert services == PropertySpec("services", "services", "multiselect", ("api", "db", "web"), False, ("db",))
    assert customer.type == "text" and customer.options == () and customer.default is None
    items = pb.checklists[0].items  # type: ignore[attr-defined]
    assert items[0].when is None and items[0].auto_check is None
    assert items[1].when == {"property": "severity", "is": ["sev1", "sev2"]}
    assert items[2].when == {"property": "services", "is_not": ["db"]}
    assert items[3].when == {"or": [{"property": "severity", "is": ["sev1"]},
                                    {"property": "customer", "is": ["ACME"]}]}
    assert items[4].auto_check == AutoCheck(keywords=("deployed", "rolled back"), users=("alice", "bob"))
    assert {"alice", "bob"} <= pb.usernames()  # type: ignore[attr-defined]
    assert PropertySpec.from_dict(severity.as_dict()) == severity
    assert PropertySpec.from_dict(services.as_dict()) == services


def test_the_example_incident_playbook_has_a_severity_and_a_conditional_item() -> None:
    pb = load_playbook(REPO / "playbooks" / "incident.toml")
    assert [p.name for p in pb.properties] == ["severity"]
    conditional = [i for c in pb.checklists for i in c.items if i.when]
    assert conditional and all(i.when == {"property": "severity", "is": ["SEV1", "SEV2"]} for i in conditional)
    assert not pb.properties[0].required  # `/playbook run incident <name>` still starts without it


@pytest.mark.parametrize(("text", "expected"), [
    ('[[properties]]\nname = "Severity"\ntype = "text"',
     'properties[1].name: expected a key like "severity" (lower-case letters, digits and "_", starting with a '
     'letter, at most 32), got "Severity"'),
    ('[[properties]]\nname = "seq"\ntype = "text"', 'properties[1].name: "seq" is a placeholder of channel_name'),
    ('[[properties]]\nname = "a"\ntype = "list"', 'properties[1].type: expected "select", "multiselect" or "text"'),
    ('[[properties]]\nname = "a"\ntype = "select"', 'properties[1].options: required for a "select" property'),
    ('[[properties]]\nname = "a"\ntype = "select"\noptions = []', "properties[1].options: must list at least one"),
    ('[[properties]]\nname = "a"\ntype = "select"\noptions = ["x", "X"]', 'properties[1].options[2]: "X" is listed'),
    ('[[properties]]\nname = "a"\ntype = "multiselect"\noptions = ["x,y"]', "properties[1].options[1]: \"x,y\" "
     "contains a comma"),
    ('[[properties]]\nname = "a"\ntype = "text"\noptions = ["x"]', 'properties[1].options: a "text" property'),
    ('[[properties]]\nname = "a"\ntype = "select"\noptions = ["x"]\ndefault = "y"',
     'properties[1].default: "y" is not one of the options (x)'),
    ('[[properties]]\nname = "a"\ntype = "select"\noptions = ["x"]\ncolour = "y"',
     "properties[1].colour: unknown key"),
    ('[[properties]]\nname = "a"\ntitle = "A title longer than twenty-four"\ntype = "text"',
     "properties[1].title: is 31 characters long; the limit is 24"),
    ('[[properties]]\nname = "a"\ntype = "text"\n[[properties]]\nname = "a"\ntype = "text"',
     'properties[2].name: "a" is the name of an earlier property'),
])
def test_property_errors_name_the_key_path(text: str, expected: str) -> None:
    found = errors('title = "t"\n' + text)
    assert any(e.startswith(expected) for e in found), found


ITEMS = '''
title = "t"
[[properties]]
name = "severity"
type = "select"
options = ["sev1", "sev2"]
[[checklists]]
title = "A"
  [[checklists.items]]
  title = "ok"
[[checklists]]
title = "B"
  [[checklists.items]]
  title = "ok"
  [[checklists.items]]
  title = "the one"
'''


@pytest.mark.parametrize(("item", "expected"), [
    ('when = { property = "x", is = ["a"] }',
     'checklists[2].items[2].when.property: unknown property "x" (known: severity)'),
    ('when = { property = "severity", is = ["sev9"] }',
     'checklists[2].items[2].when.is: "sev9" is not an option of "severity" (sev1, sev2)'),
    ('when = { property = "severity" }', "checklists[2].items[2].when: expected exactly one of is"),
    ('when = { property = "severity", is = ["sev1"], is_not = ["sev2"] }',
     "checklists[2].items[2].when: expected exactly one of is"),
    ('when = { property = "severity", is = [] }', "checklists[2].items[2].when.is: expected a list of values"),
    ('when = "severity"', "checklists[2].items[2].when: expected a table"),
    ('when = { and = [ { or = [ { property = "severity", is = "sev1" } ] } ] }',
     "checklists[2].items[2].when.and[1].or: conditions nest one level deep"),
    ('when = { and = [ { property = "severity", is = "sev1" } ], property = "severity" }',
     'checklists[2].items[2].when: "and" stands alone'),
    ('when = { property = "severity", equals = ["sev1"] }', "checklists[2].items[2].when.equals: unknown key"),
    ('auto_check = { users = ["alice"] }', "checklists[2].items[2].auto_check.keywords: required"),
    ('auto_check = { keywords = [] }', "checklists[2].items[2].auto_check.keywords: must list at least one"),
    ('auto_check = { keywords = "deployed" }', "checklists[2].items[2].auto_check.keywords: expected a list"),
    ('auto_check = { keywords = ["x"], users = ["@all"] }',
     'checklists[2].items[2].auto_check.users[1]: "@all" is a reserved word'),
    ('auto_check = { keywords = ["x"], when = 1 }', "checklists[2].items[2].auto_check.when: unknown key"),
])
def test_item_condition_and_auto_check_errors(item: str, expected: str) -> None:
    found = errors(ITEMS + "  " + item + "\n")
    assert any(e.startswith(expected) for e in found), found


SEVERITY = PropertySpec("severity", "Severity", "select", ("sev1", "sev2", "sev3"))
SERVICES = PropertySpec("services", "Services", "multiselect", ("api", "db"))
TEXT = PropertySpec("customer", "Customer", "text")


def test_values_are_parsed_as_the_playbook_spells_them() -> None:
    assert parse_value(SEVERITY, " SEV1 ") == "sev1"
    assert parse_value(SEVERITY, "") is None
    assert parse_value(SERVICES, "db, API") == ["api", "db"]
    assert parse_value(SERVICES, ["db"]) == ["db"]
    assert parse_value(TEXT, "  ACME   corp ") == "ACME corp"
    with pytest.raises(PropertyValueError, match='"sev9" is not one of: sev1, sev2, sev3'):
        parse_value(SEVERITY, "sev9")
    with pytest.raises(PropertyValueError, match="takes one of"):
        parse_value(SEVERITY, "sev1, sev2")
    assert shown(["api", "db"]) == "api, db" and shown(None) == ""


def test_conditions() -> None:
    values = {"severity": "sev1", "services": ["api", "db"], "customer": "ACME"}
    assert holds(None, {}) and holds({}, values)
    assert holds({"property": "severity", "is": ["SEV1", "sev2"]}, values)
    assert not holds({"property": "severity", "is": ["sev3"]}, values)
    assert holds({"property": "severity", "is_not": ["sev3"]}, values)
    assert holds({"property": "services", "is": ["db"]}, values)  # any of the chosen
    assert not holds({"property": "services", "is_not": ["db"]}, values)  # none of the chosen
    assert not holds({"property": "missing", "is": ["x"]}, values)  # unset: never `is`
    assert holds({"property": "missing", "is_not": ["x"]}, values)  # and always `is_not`
    assert holds({"property": "customer", "is": ["acme "]}, values)
    both = {"and": [{"property": "severity", "is": ["sev1"]}, {"property": "customer", "is": ["other"]}]}
    either = {"or": [{"property": "severity", "is": ["sev2"]}, {"property": "customer", "is": ["acme"]}]}
    assert not holds(both, values) and holds(either, values)
    # An item someone already worked stays in sight when its condition stops holding.
    assert not visible({"property": "severity", "is": ["sev2"]}, values, "open")
    assert visible({"property": "severity", "is": ["sev2"]}, values, "closed")


def test_shown_properties_in_declaration_order() -> None:
    defs = [SEVERITY.as_dict(), SERVICES.as_dict(), TEXT.as_dict()]
    assert [(p.title, p.value) for p in shown_properties(defs, {"services": ["db"], "severity": "sev2"})] == [
        ("Severity", "sev2"), ("Services", "db")]
    assert len(shown_properties(defs, {}, with_unset=True)) == 3


def test_keywords_match_whole_words_in_any_case_from_the_people_named() -> None:
    auto = {"keywords": ["deployed", "rolled back"], "users": ["alice"]}
    assert matching_keyword(auto, "Fix DEPLOYED to prod", "alice") == "DEPLOYED"
    assert matching_keyword(auto, "we rolled  back", "alice") is None  # the phrase as written
    assert matching_keyword(auto, "we Rolled back.", "Alice") == "Rolled back"
    assert matching_keyword(auto, "undeployed and redeployed", "alice") is None  # whole words only
    assert matching_keyword(auto, "deployed", "bob") is None  # not one of the people named
    assert matching_keyword({"keywords": ["deployed"]}, "deployed", "anyone") == "deployed"
    assert matching_keyword({}, "deployed", "alice") is None
    assert matching_keyword({"keywords": ["v1.2 (hotfix)"]}, "shipped v1.2 (hotfix)!", "x") == "v1.2 (hotfix)"
