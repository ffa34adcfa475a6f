"""The per-playbook rules of bot/domain/permissions.py (who sees, runs and edits a playbook; who finishes
its runs), as a table of viewer x playbook x action, and the `[access]` table's validation."""
from __future__ import annotations

from typing import Any

import pytest

from bot.domain.permissions import (
    Action,
    PlaybookAccess,
    RunFacts,
    Viewer,
    can_view,
    decide,
    may_edit_playbook,
    may_run_playbook,
    may_see_playbook,
    participants_may_finish,
)
from bot.playbooks import Playbook, PlaybookInvalid
from bot.playbooks.validation import parse_playbook

PUBLIC = PlaybookAccess()
PRIVATE = PlaybookAccess(members=("mia",), admins=("ada",), public=False)
PRIVATE_MEMBERS_EDIT = PlaybookAccess(members=("mia",), admins=("ada",), public=False, edit="members")
PUBLIC_WITH_ADMIN = PlaybookAccess(members=("mia",), admins=("ada",))

ADA = Viewer("u-ada", username="ada")  # a playbook admin
MIA = Viewer("u-mia", username="mia")  # a playbook member
OTTO = Viewer("u-otto", username="otto")  # in the team, not in the playbook
ROOT = Viewer("u-root", is_admin=True, username="root")  # a system admin
GUEST = Viewer("u-gus", is_guest=True, username="gus")
NAMELESS = Viewer("u-mia")  # someone whose username was not looked up: never a member by name


def pb(access: PlaybookAccess) -> Playbook:
    return Playbook(id="t", title="T", access=access)


# (viewer, access, see, run, edit)
TABLE = [
    (ADA, PUBLIC, True, True, False),  # nobody is named in PUBLIC's lists
    (MIA, PUBLIC, True, True, False),
    (OTTO, PUBLIC, True, True, False),
    (ROOT, PUBLIC, True, True, True),
    (GUEST, PUBLIC, True, True, False),
    (ADA, PRIVATE, True, True, True),
    (MIA, PRIVATE, True, True, False),
    (OTTO, PRIVATE, False, False, False),
    (ROOT, PRIVATE, True, True, True),
    (GUEST, PRIVATE, False, False, False),
    (NAMELESS, PRIVATE, False, False, False),
    (ADA, PRIVATE_MEMBERS_EDIT, True, True, True),
    (MIA, PRIVATE_MEMBERS_EDIT, True, True, True),
    (OTTO, PRIVATE_MEMBERS_EDIT, False, False, False),
    (ADA, PUBLIC_WITH_ADMIN, True, True, True),
    (MIA, PUBLIC_WITH_ADMIN, True, True, False),
    (OTTO, PUBLIC_WITH_ADMIN, True, True, False),
]


@pytest.mark.parametrize(("viewer", "access", "see", "run", "edit"), TABLE)
def test_who_sees_runs_and_edits_a_playbook(viewer: Viewer, access: PlaybookAccess, see: bool, run: bool,
                                             edit: bool) -> None:
    playbook = pb(access)
    assert may_see_playbook(viewer, playbook) is see
    assert may_run_playbook(viewer, playbook) is run
    assert may_edit_playbook(viewer, playbook) is edit


def test_usernames_match_whatever_their_case() -> None:
    assert may_see_playbook(Viewer("u-mia", username="Mia"), pb(PRIVATE))


@pytest.mark.parametrize(("finish", "participant_may"), [("owner", False), ("participants", True)])
def test_finish_rule_decides_who_finishes_restores_and_hands_over(finish: Any, participant_may: bool) -> None:
    access = PlaybookAccess(finish=finish)
    run = RunFacts("t-1", "u-owner", frozenset({"u-owner", "u-part"}), private=False,
                   participants_may_finish=participants_may_finish(access))
    part, owner, admin = Viewer("u-part", team_ids=frozenset({"t-1"})), Viewer("u-owner"), Viewer("x", True)
    for action in (Action.FINISH, Action.RESTORE, Action.CHANGE_OWNER):
        assert decide(part, run, action).allowed is participant_may
        assert decide(owner, run, action).allowed
        assert decide(admin, run, action).allowed
    assert decide(part, run, Action.WORK).allowed


def test_a_private_playbooks_runs_show_only_to_those_in_them_or_in_the_channel() -> None:
    run = RunFacts("t-1", "u-owner", frozenset({"u-owner", "u-part"}), private=False, channel_id="c-1",
                   playbook_id="secret")
    outsider = Viewer("u-otto", team_ids=frozenset({"t-1"}), hidden_playbooks=frozenset({"secret"}))
    assert not can_view(outsider, run)
    assert can_view(Viewer("u-otto", team_ids=frozenset({"t-1"})), run)  # not hidden from them: public run
    assert can_view(Viewer("u-part", team_ids=frozenset({"t-1"}), hidden_playbooks=frozenset({"secret"})), run)
    assert can_view(Viewer("u-otto", member_of=frozenset({"c-1"}), hidden_playbooks=frozenset({"secret"})), run)


def parse(access: dict[str, Any]) -> Any:
    return parse_playbook({"title": "T", "access": access}, playbook_id="t", path="t.toml")


def test_access_table_is_parsed_and_defaults_to_todays_behaviour() -> None:
    assert parse_playbook({"title": "T"}, playbook_id="t", path="t.toml").access == PlaybookAccess()
    got = parse({"members": ["@Mia", "bo"], "admins": ["ada"], "public": False, "edit": "members",
                 "finish": "participants"}).access
    assert got == PlaybookAccess(members=("mia", "bo"), admins=("ada",), public=False, edit="members",
                                 finish="participants")
    assert {"mia", "bo", "ada"} <= parse({"members": ["mia", "bo"], "admins": ["ada"]}).usernames()


@pytest.mark.parametrize(("access", "key", "words"), [
    ({"members": "mia"}, "access.members", 'write members = ["mia"]'),
    ({"members": ["not a name"]}, "access.members[1]", "not a valid username"),
    ({"admins": [3]}, "access.admins[1]", "expected a string"),
    ({"public": "no"}, "access.public", "expected true or false"),
    ({"public": False}, "access.public", "needs someone in access.members, access.admins or"),
    ({"edit": "everyone"}, "access.edit", '"admins"'),
    ({"finish": "anyone"}, "access.finish", '"participants"'),
    ({"groups": ["not a group"]}, "access.groups[1]", "not a valid group name"),
    ({"groups": ["here"]}, "access.groups[1]", "reserved word"),
    ({"owners": ["ada"]}, "access.owners", "unknown key"),
])
def test_access_mistakes_name_their_key(access: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        parse(access)
    problems = {e.key: e.problem for e in caught.value.errors}
    assert key in problems and words in problems[key], problems


def test_access_must_be_a_table() -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook({"title": "T", "access": ["mia"]}, playbook_id="t", path="t.toml")
    assert caught.value.errors[0].key == "access"
