"""Who may see and change what. The one place these rules live: commands, buttons, dialogs and the
HTTP API all ask here (docs/permissions.md says the same in words).

- System admins may do everything.
- The owner and participants work the run: check, skip, add, remove, assign, set due dates, run an
  item's command, post status updates.
- Anyone in the team may view a run whose channel is public, and join or follow it. A private run is
  visible to its participants and to the members of its channel (who read its posts anyway).
- Finishing, restoring and changing the owner belong to the owner (and admins), unless the playbook
  lets participants do it too.
- Anyone may leave a run they take part in, except its owner (hand the run over first).
- Guests (Mattermost's `system_guest`) see and work only the runs they take part in: never a run for
  being public or in a channel they read, and they cannot join one. Only a system admin may make a
  guest take part (commands/targets.py add_to_channel), since the bot adds people with its own rights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import assert_never


class Action(str, Enum):
    VIEW = "view"  # info, timeline, follow, the HTTP API
    WORK = "work"  # items, status updates
    JOIN = "join"
    LEAVE = "leave"
    FINISH = "finish"
    RESTORE = "restore"
    CHANGE_OWNER = "change_owner"


@dataclass(frozen=True)
class Viewer:
    user_id: str
    is_admin: bool = False
    team_ids: frozenset[str] = field(default_factory=frozenset)
    # Channels the viewer is known to be a member of (known only where it was asked, e.g. the channel a
    # command was typed in: Mattermost runs a command only for someone who may post there).
    member_of: frozenset[str] = field(default_factory=frozenset)
    is_guest: bool = False


@dataclass(frozen=True)
class RunFacts:
    team_id: str
    owner_id: str
    participant_ids: frozenset[str]
    private: bool
    participants_may_finish: bool = False
    channel_id: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # a template name under templates/permissions/ explaining the refusal


ALLOWED = Decision(True)
CANNOT_VIEW = Decision(False, "permissions/cannot_view.md.j2")
NOT_PARTICIPANT = Decision(False, "permissions/not_participant.md.j2")
OWNER_ONLY = Decision(False, "permissions/owner_only.md.j2")
OWNER_CANNOT_LEAVE = Decision(False, "permissions/owner_cannot_leave.md.j2")
NOTHING_TO_LEAVE = Decision(False, "permissions/nothing_to_leave.md.j2")
GUEST_CANNOT_JOIN = Decision(False, "permissions/guest_cannot_join.md.j2")


def can_view(viewer: Viewer, run: RunFacts) -> bool:
    if viewer.is_admin or viewer.user_id == run.owner_id or viewer.user_id in run.participant_ids:
        return True
    if viewer.is_guest:
        return False
    if run.channel_id and run.channel_id in viewer.member_of:
        return True  # a private run is visible to the members of its channel, who read its posts anyway
    return not run.private and run.team_id in viewer.team_ids


def decide(viewer: Viewer, run: RunFacts, action: Action) -> Decision:
    is_owner = viewer.user_id == run.owner_id
    is_participant = is_owner or viewer.user_id in run.participant_ids
    if action is Action.LEAVE:
        # Even an admin cannot leave a run they own: it would have nobody to answer for it.
        if is_owner:
            return OWNER_CANNOT_LEAVE
        return ALLOWED if is_participant else NOTHING_TO_LEAVE
    if viewer.is_admin:
        return ALLOWED
    if not can_view(viewer, run):
        return CANNOT_VIEW
    if action is Action.JOIN and viewer.is_guest and not is_participant:
        return GUEST_CANNOT_JOIN  # unreachable today (a guest sees only runs it is in); kept for clarity
    if action in (Action.VIEW, Action.JOIN):
        return ALLOWED
    if action is Action.WORK:
        return ALLOWED if is_participant else NOT_PARTICIPANT
    if action in (Action.FINISH, Action.RESTORE, Action.CHANGE_OWNER):
        ok = is_owner or (run.participants_may_finish and is_participant)
        return ALLOWED if ok else OWNER_ONLY
    assert_never(action)  # every Action is decided above; a new one must be given its rule here


# -- playbooks ------------------------------------------------------------------------------------
# Until per-playbook access (`[access]` members and admins) lands, a playbook is seen by everyone in its
# team (every team when it names none) and changed by system admins only. Guests see no playbooks.


@dataclass(frozen=True)
class PlaybookFacts:
    team_id: str | None  # None: the playbook may run in every team
    admin_ids: frozenset[str] = frozenset()  # playbook admins (per-playbook access), when known


def may_view_playbook(viewer: Viewer, playbook: PlaybookFacts) -> bool:
    if viewer.is_admin:
        return True
    if viewer.is_guest:
        return False
    return playbook.team_id is None or playbook.team_id in viewer.team_ids


def may_edit_playbook(viewer: Viewer, playbook: PlaybookFacts) -> bool:
    """Change a playbook (save a version, import, archive): system admins, and its admins where known."""
    return viewer.is_admin or (viewer.user_id in playbook.admin_ids and may_view_playbook(viewer, playbook))
