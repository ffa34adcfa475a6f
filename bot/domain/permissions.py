"""Who may see and change what. The one place these rules live: commands, buttons, dialogs and the
HTTP API all ask here.

- System admins may do everything.
- The owner and participants work the run (check items, post updates, add items, assign).
- Anyone in the team may view a run whose channel is public (and join or follow it); a private run is
  visible to its participants only.
- Finishing, restoring and changing the owner belong to the owner (and admins), unless the playbook
  lets participants do it too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Action(str, Enum):
    VIEW = "view"
    WORK = "work"
    JOIN = "join"
    FINISH = "finish"
    CHANGE_OWNER = "change_owner"


@dataclass(frozen=True)
class Viewer:
    user_id: str
    is_admin: bool = False
    team_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class RunFacts:
    team_id: str
    owner_id: str
    participant_ids: frozenset[str]
    private: bool
    participants_may_finish: bool = False


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # a template name under templates/permissions/ explaining the refusal


def decide(viewer: Viewer, run: RunFacts, action: Action) -> Decision:
    if viewer.is_admin:
        return Decision(True)
    is_owner = viewer.user_id == run.owner_id
    is_participant = is_owner or viewer.user_id in run.participant_ids
    can_view = is_participant or (not run.private and run.team_id in viewer.team_ids)
    if action is Action.VIEW:
        return Decision(can_view, "" if can_view else "permissions/cannot_view.md.j2")
    if not can_view:
        return Decision(False, "permissions/cannot_view.md.j2")
    if action is Action.JOIN:
        return Decision(True)
    if action is Action.WORK:
        return Decision(is_participant, "" if is_participant else "permissions/not_participant.md.j2")
    if action in (Action.FINISH, Action.CHANGE_OWNER):
        ok = is_owner or (run.participants_may_finish and is_participant)
        return Decision(ok, "" if ok else "permissions/owner_only.md.j2")
    return Decision(False, "permissions/cannot_view.md.j2")
