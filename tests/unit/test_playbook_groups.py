"""`[access] groups`: Mattermost groups as playbook members (bot/domain/permissions.py), their names in the
playbook file (bot/playbooks/validation.py), and the bot's short cache of who is in which group
(bot/context.py GroupDirectory), which says once when the server has no groups."""
from __future__ import annotations

import logging

import pytest

from bot.context import GroupDirectory
from bot.domain.permissions import PlaybookAccess, Viewer, may_edit_playbook, may_run_playbook, may_see_playbook
from bot.playbooks import Playbook
from bot.playbooks.validation import parse_playbook
from tests.fakes import FakeGateway

SRE_ONLY = PlaybookAccess(groups=("sre",), admins=("ada",), public=False)
SRE_EDIT = PlaybookAccess(groups=("sre",), public=False, edit="members")


def pb(access: PlaybookAccess) -> Playbook:
    return Playbook(id="t", title="T", access=access)


@pytest.mark.parametrize(("viewer", "access", "see", "edit"), [
    (Viewer("u-sam", username="sam", groups=frozenset({"sre"})), SRE_ONLY, True, False),
    (Viewer("u-sam", username="sam", groups=frozenset({"sre"})), SRE_EDIT, True, True),
    (Viewer("u-dev", username="dev", groups=frozenset({"dba"})), SRE_ONLY, False, False),
    (Viewer("u-dev", username="dev", groups=frozenset({"dba"})), SRE_EDIT, False, False),
    (Viewer("u-nog", username="nog"), SRE_EDIT, False, False),  # groups not known: not a member
    (Viewer("u-ada", username="ada"), SRE_ONLY, True, True),
    (Viewer("u-root", is_admin=True), SRE_ONLY, True, True),
])
def test_a_group_member_is_a_playbook_member(viewer: Viewer, access: PlaybookAccess, see: bool, edit: bool) -> None:
    playbook = pb(access)
    assert may_see_playbook(viewer, playbook) is see
    assert may_run_playbook(viewer, playbook) is see
    assert may_edit_playbook(viewer, playbook) is edit


def test_group_names_are_parsed_lower_case_and_a_group_alone_keeps_a_playbook_private() -> None:
    got = parse_playbook({"title": "T", "access": {"groups": ["@SRE", "on-call", "sre"], "public": False}},
                         playbook_id="t", path="t.toml").access
    assert got.groups == ("sre", "on-call") and got.public is False


async def test_group_directory_asks_once_and_caches() -> None:
    gateway = FakeGateway()
    gateway.world.groups = {"sre": {"u-sam"}, "DBA": {"u-sam"}, "web": {"u-dev"}}
    groups = GroupDirectory(gateway)
    assert await groups.of("u-sam") == frozenset({"sre", "dba"})
    assert await groups.of("u-sam") == frozenset({"sre", "dba"})
    assert [c.method for c in gateway.call_log].count("user_group_names") == 1
    assert groups.unavailable == ""


async def test_without_groups_on_the_server_everyone_is_in_none_said_once(caplog: pytest.LogCaptureFixture) -> None:
    gateway = FakeGateway()
    gateway.world.groups = None  # an unlicensed server: 501 api.license_error
    groups = GroupDirectory(gateway)
    with caplog.at_level(logging.WARNING, logger="bot.context"):
        assert await groups.of("u-sam") == frozenset()
        assert await groups.of("u-dev") == frozenset()
    assert "501 api.license_error" in groups.unavailable
    assert sum("groups are unavailable" in r.getMessage() for r in caplog.records) == 1
    assert [c.method for c in gateway.call_log].count("user_group_names") == 1  # not asked again for a while
