"""storage.runs.visible_runs (the SQL every list of runs uses) agrees with bot.domain.permissions.can_view
(the rule buttons, dialogs and the API decide one run by), for every kind of viewer and run."""
from __future__ import annotations

import itertools
from pathlib import Path

from sqlmodel import Session

from bot.domain.permissions import RunFacts, Viewer, can_view
from storage.db import make_engine, migrate
from storage.ids import new_id
from storage.models import Participant, Run
from storage.runs import visible_runs

USERS = ("u-owner", "u-part", "u-other")
TEAMS = ("t-1", "t-2")
CHANNELS = ("c-1", "c-2")


def test_visible_runs_is_can_view_in_sql(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/v.db")
    migrate(engine)
    facts: dict[str, RunFacts] = {}
    with Session(engine) as session:
        for n, (team, channel, private, pb) in enumerate(itertools.product(TEAMS, CHANNELS, (False, True),
                                                                            ("p", "secret"))):
            run = Run(id=new_id(), seq=n, name=f"run {n}", playbook_id=pb, playbook_title="P", team_id=team,
                      channel_id=f"{team}-{channel}", private=private, owner_id="u-owner", creator_id="u-owner",
                      created_at=1000 + n)
            session.add(run)
            session.flush()
            session.add(Participant(run_id=run.id, user_id="u-part", joined_at=1000))
            facts[run.id] = RunFacts(team, "u-owner", frozenset({"u-owner", "u-part"}), private,
                                     channel_id=run.channel_id, playbook_id=pb)
        session.commit()
        checked = 0
        # hidden: the private playbooks the viewer is not in (their runs show only to those in them).
        for user, admin, teams, channels, guest, hidden in itertools.product(
                USERS, (False, True), ((), ("t-1",), TEAMS), ((), ("t-1-c-1",), ("t-2-c-2", "t-1-c-2")),
                (False, True), ((), ("secret",))):
            viewer = Viewer(user, admin, frozenset(teams), member_of=frozenset(channels), is_guest=guest,
                            hidden_playbooks=frozenset(hidden))
            runs, total = visible_runs(session, viewer, limit=1000)
            expected = {rid for rid, f in facts.items() if can_view(viewer, f)}
            assert {r.id for r in runs} == expected, viewer
            assert total == len(expected)
            # `mine`: what the viewer owns or takes part in, whatever else they could see.
            mine, _ = visible_runs(session, viewer, mine=True, limit=1000)
            assert {r.id for r in mine} == ({*facts} if user != "u-other" else set())
            checked += 1
    assert checked == len(USERS) * 2 * 3 * 3 * 2 * 2
    engine.dispose()
