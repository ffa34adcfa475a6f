from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.playbooks import (
    DEFAULT_CATEGORY,
    DEFAULT_CHANNEL_NAME,
    DEFAULT_RETROSPECTIVE_TEMPLATE,
    Assignee,
    Playbook,
    PlaybookError,
    PlaybookInvalid,
    PlaybookNotFound,
    find_playbook,
    load_playbook,
    load_playbooks,
)

REPO = Path(__file__).resolve().parents[2]

# The example from contracts.md, verbatim: it must always load.
CONTRACT_EXAMPLE = '''
title = "Incident response"              # required
description = "For production incidents."
team = "eng"                             # team name; absent: every team the bot belongs to
private_channel = true                   # default true
channel_name = "inc-{seq} {name}"        # display-name template: {seq} {name} {date} {owner} {playbook}
category = "Incidents"                   # members' sidebar category; "" = none; default "Playbook runs"
owner = "alice"                          # default owner; absent: whoever starts the run
members = ["bob", "carol"]               # invited at start
broadcast_channels = ["town-square"]     # announcements of start, updates, finish (threaded)
welcome = "Read the runbook first."      # posted in the run channel at start

[status_updates]
enabled = true
interval = "30m"                         # first reminder this long after start, then after each update
template = "**Impact:**\\n**Next steps:**"

[retrospective]
enabled = true
template = "## What happened\\n## What we learned"
reminder = "24h"                         # repeats until published or cancelled; absent: once

[[checklists]]
title = "Triage"
  [[checklists.items]]
  title = "Acknowledge the page"
  description = "Within 5 minutes."
  assignee = "owner"                     # "owner", "creator" or a username
  due = "15m"                            # after the run starts
  command = "/echo $service is down"     # slash command the item can run; $vars from the run summary
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str, name: str = "pb.toml") -> list[str]:
    path = write(tmp_path, name, text)
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook(path)
    messages = [str(e) for e in info.value.errors]
    for message in messages:
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message
    return messages


def only_error(tmp_path: Path, text: str) -> str:
    messages = errors_of(tmp_path, text)
    assert len(messages) == 1, messages
    return messages[0].split(": ", 1)[1]  # without the file name


def test_the_contract_example_loads(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "incident.toml", CONTRACT_EXAMPLE))
    assert pb.id == "incident" and pb.title == "Incident response"
    assert pb.description == "For production incidents."
    assert pb.team == "eng" and pb.private_channel and pb.channel_type == "P"
    assert pb.channel_name == "inc-{seq} {name}" and pb.category == "Incidents"
    assert pb.owner == "alice" and pb.members == ("bob", "carol")
    assert pb.broadcast_channels == ("town-square",)
    assert pb.welcome == "Read the runbook first."
    assert pb.status_updates.enabled and pb.status_updates.interval == timedelta(minutes=30)
    assert pb.status_updates.template == "**Impact:**\n**Next steps:**"
    retro = pb.retrospective
    assert retro.enabled and retro.remind and retro.reminder_interval == timedelta(hours=24)
    assert retro.template == "## What happened\n## What we learned"
    (triage,) = pb.checklists
    assert triage.title == "Triage"
    (item,) = triage.items
    assert item.title == "Acknowledge the page" and item.description == "Within 5 minutes."
    assert item.assignee == Assignee(kind="owner")
    assert item.due == timedelta(minutes=15)
    assert item.command == "/echo $service is down"
    assert pb.usernames() == {"alice", "bob", "carol"}


def test_defaults(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "minimal.toml", 'title = "Minimal"\n'))
    assert pb == Playbook(id="minimal", title="Minimal")
    assert pb.private_channel is True
    assert pb.channel_name == DEFAULT_CHANNEL_NAME == "{name}"
    assert pb.category == DEFAULT_CATEGORY == "Playbook runs"
    assert pb.team is None and pb.owner is None and pb.members == ()
    assert not pb.status_updates.enabled and not pb.retrospective.enabled
    assert pb.webhooks.on_start == () and pb.checklists == ()


def test_a_table_turns_its_feature_on_with_defaults(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "x.toml", 'title = "X"\n[status_updates]\n[retrospective]\n'))
    assert pb.status_updates.enabled and pb.status_updates.interval == timedelta(days=1)
    assert pb.retrospective.enabled and pb.retrospective.template == DEFAULT_RETROSPECTIVE_TEMPLATE
    # reminder absent: remind once
    assert pb.retrospective.remind and pb.retrospective.reminder_interval is None


def test_retrospective_reminder_off(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "x.toml", 'title = "X"\n[retrospective]\nreminder = "off"\n'))
    assert pb.retrospective.enabled and not pb.retrospective.remind
    assert pb.retrospective.reminder_interval is None


def test_public_channel_and_empty_category(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "x.toml", 'title = "X"\nprivate_channel = false\ncategory = ""\n'))
    assert pb.channel_type == "O" and pb.category == ""


def test_archive_channel_on_finish(tmp_path: Path) -> None:
    assert not load_playbook(write(tmp_path, "a.toml", 'title = "X"\n')).archive_channel_on_finish
    pb = load_playbook(write(tmp_path, "b.toml", 'title = "X"\narchive_channel_on_finish = true\n'))
    assert pb.archive_channel_on_finish
    with pytest.raises(PlaybookInvalid, match=r"archive_channel_on_finish: expected true or false \(without quotes\)"):
        load_playbook(write(tmp_path, "c.toml", 'title = "X"\narchive_channel_on_finish = "true"\n'))


def test_channel_mode_defaults_to_a_new_channel_per_run(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "a.toml", 'title = "X"\n'))
    assert pb.channel_mode == "create" and pb.channel == "" and not pb.existing_channel


def test_channel_mode_existing_with_a_named_channel_or_the_one_started_from(tmp_path: Path) -> None:
    pb = load_playbook(write(tmp_path, "a.toml", 'title = "X"\nchannel_mode = "existing"\nchannel = "~ops-room"\n'))
    assert pb.existing_channel and pb.channel == "ops-room"
    pb = load_playbook(write(tmp_path, "b.toml", 'title = "X"\nchannel_mode = "existing"\n'))
    assert pb.existing_channel and pb.channel == ""
    pb = load_playbook(write(tmp_path, "c.toml", 'title = "X"\nchannel_mode = "existing"\nchannel = ""\n'))
    assert pb.existing_channel and pb.channel == ""


@pytest.mark.parametrize(("text", "error"), [
    ('channel_mode = "link"', r'channel_mode: expected "create" \(a new channel for each run\) or "existing"'),
    ('channel_mode = ""', r"channel_mode: must not be empty"),
    ("channel_mode = true", r"channel_mode: expected a string, got true"),
    ('channel = "ops-room"', r'channel: is only used with channel_mode = "existing"'),
    ('channel_mode = "create"\nchannel = "ops-room"', r'channel: is only used with channel_mode = "existing"'),
    ('channel_mode = "existing"\nchannel = "Ops Room"', r'channel: "Ops Room" is not a channel URL name'),
    ('channel_mode = "existing"\narchive_channel_on_finish = true',
     r'archive_channel_on_finish: cannot be true with channel_mode = "existing"'),
])
def test_channel_mode_mistakes_are_named(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(PlaybookInvalid, match=error):
        load_playbook(write(tmp_path, "x.toml", f'title = "X"\n{text}\n'))


def test_usernames_are_normalised_and_deduplicated(tmp_path: Path) -> None:
    text = '''title = "X"
owner = "@Alice"
members = ["bob", "@bob", "Carol"]
broadcast_channels = ["~town-square", "town-square", "off_topic"]
[[checklists]]
title = "A"
  [[checklists.items]]
  title = "one"
  assignee = "@owner"
  [[checklists.items]]
  title = "two"
  assignee = "Creator"
  [[checklists.items]]
  title = "three"
  assignee = "dave.smith"
'''
    pb = load_playbook(write(tmp_path, "x.toml", text))
    assert pb.owner == "alice" and pb.members == ("bob", "carol")
    assert pb.broadcast_channels == ("town-square", "off_topic")
    items = pb.checklists[0].items
    assert items[0].assignee == Assignee(kind="user", username="owner")  # "@owner" is a person
    assert items[1].assignee == Assignee(kind="creator")
    assert items[2].assignee == Assignee(kind="user", username="dave.smith")
    assert pb.usernames() == {"alice", "bob", "carol", "owner", "dave.smith"}


def test_webhooks(tmp_path: Path) -> None:
    text = '''title = "X"
[webhooks]
on_start = ["https://hooks.example.com/start", "http://10.0.0.1:8080/x"]
on_finish = ["https://hooks.example.com/finish"]
'''
    pb = load_playbook(write(tmp_path, "x.toml", text))
    assert pb.webhooks.on_start == ("https://hooks.example.com/start", "http://10.0.0.1:8080/x")
    assert pb.webhooks.on_status_update == ()
    assert pb.webhooks.on_finish == ("https://hooks.example.com/finish",)


# --- errors: each names the file, the key path and the problem ------------------------------

@pytest.mark.parametrize("text, expected", [
    ('description = "x"\n', 'title: required; add title = "..."'),
    ('title = "  "\n', "title: must not be empty"),
    ("title = 5\n", "title: expected a string, got the number 5"),
    ('title = "X"\ntitel = "Y"\n', 'titel: unknown key; did you mean "title"?'),
    ('title = "X"\nzzz = 1\n', "zzz: unknown key (allowed: title, description,"),
    ('title = "X"\nprivate_channel = "yes"\n', 'private_channel: expected true or false, got the string "yes"'),
    ('title = "X"\nprivate_channel = "true"\n',
     'private_channel: expected true or false (without quotes), got the string "true"'),
    ('title = "X"\nteam = "Engineering Team"\n', "team: expected a team's URL name such as \"eng\""),
    ('title = "X"\nchannel_name = "{seq} {nmae}"\n',
     'channel_name: unknown placeholder {nmae}; use {seq}, {name}, {date}, {owner}, {playbook}; '
     'did you mean "{name}"?'),
    ('title = "X"\nchannel_name = ""\n', "channel_name: the template is empty"),
    ('title = "X"\ncategory = "A category that is too long"\n',
     'category: "A category that is too long" is 27 bytes long; Mattermost allows 22 bytes'),
    ('title = "X"\ncategory = "Инциденты прод"\n', "category: \"Инциденты прод\" is 27 bytes long"),
    ('title = "X"\nowner = "Alice Smith"\n', 'owner: "Alice Smith" is not a valid username'),
    ('title = "X"\nowner = "all"\n', 'owner: "all" is a reserved word in Mattermost, not a username'),
    ('title = "X"\nmembers = "bob"\n', 'members: expected a list, got the string "bob"; write members = ["bob"]'),
    ('title = "X"\nmembers = ["bob", 7]\n', "members[2]: expected a string, got the number 7"),
    ('title = "X"\nmembers = ["bob", "1bob"]\n', 'members[2]: "1bob" is not a valid username'),
    ('title = "X"\nbroadcast_channels = ["Town Square"]\n',
     'broadcast_channels[1]: "Town Square" is not a channel URL name'),
    ('title = "X"\nstatus_updates = true\n', "status_updates: expected a table [status_updates], got true"),
    ('title = "X"\n[status_update]\n', 'status_update: unknown key; did you mean "status_updates"?'),
    ('title = "X"\n[status_updates]\ninterval = "30 minutez"\n',
     'status_updates.interval: "30 minutez" is not a duration'),
    ('title = "X"\n[status_updates]\ninterval = 30\n',
     'status_updates.interval: expected a duration string like "30m" or "1h30m", got the number 30'),
    ('title = "X"\n[status_updates]\ninterval = "off"\n',
     'status_updates.interval: "off" is not allowed here; set enabled = false'),
    ('title = "X"\n[status_updates]\ninterval = "10s"\n',
     'status_updates.interval: "10s" is shorter than the minimum of 1 minute'),
    ('title = "X"\n[status_updates]\nenabled = 1\n',
     "status_updates.enabled: expected true or false, got the number 1"),
    ('title = "X"\n[status_updates]\nintervall = "1h"\n',
     'status_updates.intervall: unknown key; did you mean "interval"?'),
    ('title = "X"\n[retrospective]\nreminder = "0h"\n',
     'retrospective.reminder: a duration must be longer than zero, got "0h" (or "off" for none)'),
    ('title = "X"\n[retrospective]\ntemplate = ["a"]\n', "retrospective.template: expected a string, got a list"),
    ('title = "X"\n[webhooks]\non_start = ["ftp://x"]\n',
     'webhooks.on_start[1]: "ftp://x" is not an http(s) URL'),
    ('title = "X"\n[webhooks]\non_start = ["https://"]\n', 'webhooks.on_start[1]: "https://" is not an http(s) URL'),
    ('title = "X"\n[webhooks]\non_create = []\n', 'webhooks.on_create: unknown key; did you mean "on_start"?'),
    ('title = "X"\n[webhooks]\non_finish = "https://x.example.com"\n',
     'webhooks.on_finish: expected a list, got the string "https://x.example.com"'),
    ('title = "X"\n[[checklists]]\ntitle = "A"\n[[checklists.tasks]]\n',
     'checklists[1].tasks: unknown key; did you mean "items"?'),
    ('title = "X"\nprivate = true\n', 'private: unknown key; did you mean "private_channel"?'),
    ('title = "X"\n[checklists]\ntitle = "A"\n',
     "checklists: expected [[checklists]] blocks (double brackets: a list of tables), got [checklists]"),
    ('title = "X"\nchecklists = ["A"]\n', 'checklists[1]: expected a [[checklists]] table, got the string "A"'),
    ('title = "X"\n[[checklists]]\n', 'checklists[1].title: required; add title = "..."'),
    ('title = "X"\n[[checklists]]\ntitle = "A"\nitem = []\n', 'checklists[1].item: unknown key; did you mean "items"?'),
    ('title = "X"\n[[checklists]]\ntitle = "A"\n[checklists.items]\ntitle = "B"\n',
     "checklists[1].items: expected [[checklists.items]] blocks (double brackets), got a single table"),
])
def test_single_errors(tmp_path: Path, text: str, expected: str) -> None:
    message = only_error(tmp_path, text)
    assert message.startswith(expected), message


ITEM_HEADER = 'title = "X"\n[[checklists]]\ntitle = "A"\n[[checklists.items]]\ntitle = "ok"\n[[checklists.items]]\n'


@pytest.mark.parametrize("item, expected", [
    ('title = ""\n', "checklists[1].items[2].title: must not be empty"),
    ('description = "no title"\n', 'checklists[1].items[2].title: required'),
    ('title = "B"\ndue = "15 minutez"\n', 'checklists[1].items[2].due: "15 minutez" is not a duration'),
    ('title = "B"\ndue = "off"\n', 'checklists[1].items[2].due: a duration is required here'),
    ('title = "B"\ndue = "-15m"\n', "checklists[1].items[2].due: a duration must be positive"),
    ('title = "B"\ndue = "2y"\n', 'checklists[1].items[2].due: "2y" is not a duration'),
    ('title = "B"\nassignee = "the owner"\n',
     'checklists[1].items[2].assignee: expected "owner", "creator" or a username, got "the owner"'),
    ('title = "B"\nassignee = ""\n', "checklists[1].items[2].assignee: must not be empty"),
    ('title = "B"\ncommand = "echo hi"\n',
     'checklists[1].items[2].command: expected a slash command starting with "/", like "/echo hello", got "echo hi"'),
    ('title = "B"\ncommand = "/ echo"\n', "checklists[1].items[2].command: expected a slash command"),
    ('title = "B"\nasignee = "owner"\n', 'checklists[1].items[2].asignee: unknown key; did you mean "assignee"?'),
    ('title = "B"\ndescription = "' + "x" * 4001 + '"\n',
     "checklists[1].items[2].description: is 4001 characters long; the limit is 4000"),
])
def test_item_errors_name_the_key_path(tmp_path: Path, item: str, expected: str) -> None:
    message = only_error(tmp_path, ITEM_HEADER + item)
    assert message.startswith(expected), message


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    text = '''titel = "X"
private_channel = "no"
[[checklists]]
title = "A"
  [[checklists.items]]
  title = "B"
  due = "soon"
[[checklists]]
title = "C"
  [[checklists.items]]
  title = "D"
  [[checklists.items]]
  title = "E"
  [[checklists.items]]
  title = "F"
  command = "rm -rf"
'''
    keys = [m.split(": ")[1] for m in errors_of(tmp_path, text)]
    assert keys == ["titel", "title", "private_channel", "checklists[1].items[1].due",
                    "checklists[2].items[3].command"]


def test_too_many_webhooks(tmp_path: Path) -> None:
    urls = ", ".join(f'"https://h.example.com/{n}"' for n in range(65))
    message = only_error(tmp_path, f'title = "X"\n[webhooks]\non_status_update = [{urls}]\n')
    assert message == "webhooks.on_status_update: has 65 URLs; the limit is 64"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, 'title = "X"\n\n[[checklists]\n')
    assert len(messages) == 1
    assert ": line 3, column " in messages[0] and "invalid TOML" in messages[0]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(b'title = "\xff"\n')
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook(path)
    assert str(info.value) == f"{path}: not UTF-8 text; save the file as UTF-8"


@pytest.mark.parametrize("name, hint", [
    ("Incident.toml", 'rename it to "incident.toml"'),
    ("my playbook.toml", 'rename it to "my-playbook.toml"'),
    ("_draft.toml", 'rename it to "draft.toml"'),
])
def test_bad_file_names(tmp_path: Path, name: str, hint: str) -> None:
    (message,) = errors_of(tmp_path, 'title = "X"\n', name=name)
    assert "the file name is the playbook id" in message and hint in message


# --- folders --------------------------------------------------------------------------------

def test_good_playbooks_load_when_another_is_broken(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", 'title = "Good"\n')
    write(tmp_path, "broken.toml", 'title = "Broken"\n[status_updates]\ninterval = "often"\n')
    write(tmp_path, "syntax.toml", "title = \n")
    write(tmp_path, "notes.md", "not a playbook")
    write(tmp_path, ".hidden.toml", "garbage = = =")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "nested.toml", "garbage = = =")
    playbooks, errors = load_playbooks(tmp_path)
    assert list(playbooks) == ["good"]
    assert [e.path.name for e in errors] == ["broken.toml", "syntax.toml"]
    assert errors[0].key == "status_updates.interval"
    assert errors[1].key.startswith("line 1, column")
    assert all(isinstance(e, PlaybookError) for e in errors)


def test_missing_folder(tmp_path: Path) -> None:
    playbooks, errors = load_playbooks(tmp_path / "nope")
    assert playbooks == {}
    assert [str(e) for e in errors] == [f"{tmp_path / 'nope'}: folder not found; set [playbooks] dir in bot.toml"]


def test_the_shipped_examples_load() -> None:
    playbooks, errors = load_playbooks(REPO / "playbooks")
    assert errors == []
    assert {"incident", "onboarding"} <= set(playbooks)
    incident = playbooks["incident"]
    assert [c.title for c in incident.checklists] == ["Triage", "Mitigate", "Communicate", "Resolve"]
    assert incident.status_updates.enabled and incident.status_updates.interval == timedelta(minutes=30)
    assert incident.retrospective.enabled and incident.private_channel
    onboarding = playbooks["onboarding"]
    assert not onboarding.private_channel
    assert onboarding.status_updates.interval == timedelta(days=1)


# --- finding --------------------------------------------------------------------------------

@pytest.fixture
def library() -> dict[str, Playbook]:
    books = [
        Playbook(id="incident", title="Incident response"),
        Playbook(id="incident-security", title="Security incident"),
        Playbook(id="onboarding", title="Customer onboarding"),
        Playbook(id="release", title="Product release"),
    ]
    return {b.id: b for b in books}


@pytest.mark.parametrize("query, expected", [
    ("incident", "incident"),  # an exact id wins over the prefix of incident-security
    ("INCIDENT", "incident"),
    ("Security Incident", "incident-security"),
    ("  customer   onboarding ", "onboarding"),
    ("onb", "onboarding"),
    ("product", "release"),
    ("rel", "release"),
])
def test_find_playbook(library: dict[str, Playbook], query: str, expected: str) -> None:
    assert find_playbook(library, query).id == expected


def test_find_playbook_ambiguous(library: dict[str, Playbook]) -> None:
    library["incident-2"] = Playbook(id="incident-2", title="Incident response")
    with pytest.raises(PlaybookNotFound) as info:
        find_playbook(library, "incident response")
    assert str(info.value) == ('"incident response" matches 2 playbooks: incident (Incident response), '
                               "incident-2 (Incident response). Use the id.")
    assert [p.id for p in info.value.choices] == ["incident", "incident-2"]


def test_find_playbook_ambiguous_prefix(library: dict[str, Playbook]) -> None:
    with pytest.raises(LookupError, match="matches 2 playbooks: incident \\(Incident response\\), "
                                          "incident-security \\(Security incident\\)"):
        find_playbook(library, "inc")


def test_find_playbook_unknown_lists_the_choices(library: dict[str, Playbook]) -> None:
    with pytest.raises(PlaybookNotFound) as info:
        find_playbook(library, "deploy")
    assert str(info.value).startswith('No playbook matches "deploy". Choose one of: incident (Incident response),')
    assert len(info.value.choices) == 4


def test_find_playbook_empty_query_and_no_playbooks(library: dict[str, Playbook]) -> None:
    with pytest.raises(PlaybookNotFound, match="Which playbook"):
        find_playbook(library, " ")
    with pytest.raises(PlaybookNotFound, match="There are no playbooks yet"):
        find_playbook({}, "x")
