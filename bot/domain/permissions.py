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

Playbooks (a playbook file's `[access]` table, `PlaybookAccess`; absent = public, edited by admins only):
- A public playbook is seen and run by everyone in its team (its `team` key; none = every team). A
  private one (`public = false`) only by its members, its admins, the members of its groups and system
  admins: it is missing from every list, dialog, insight and API answer for anyone else
  (`may_see_playbook`, `may_run_playbook`).
- Editing belongs to the playbook's admins and system admins; `edit = "members"` lets its members edit
  too (`may_edit_playbook`).
- `finish = "participants"` lets a run's participants finish it, restore it and change its owner;
  `finish = "owner"` (the default) keeps that to the run's owner and system admins. The run copies it
  from the version it started from (`participants_may_finish`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol, assert_never


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
    # For the playbooks' [access] lists, which name people by username and groups by name: known where
    # a playbook is listed or chosen (handlers/playbook_access.py viewer_for), "" / empty elsewhere.
    username: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    # Private playbooks the viewer is not in (Context.playbooks_hidden_from): their runs are seen only by
    # those taking part and the members of the run's channel, as in the plugin.
    hidden_playbooks: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class PlaybookAccess:
    """A playbook's `[access]` table (usernames and group names lower-case, without "@")."""
    members: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    public: bool = True
    edit: Literal["admins", "members"] = "admins"
    finish: Literal["owner", "participants"] = "owner"


class HasAccess(Protocol):
    @property
    def access(self) -> PlaybookAccess: ...


def _named(viewer: Viewer, names: tuple[str, ...]) -> bool:
    return bool(viewer.username) and viewer.username.lower() in names


def is_playbook_admin(viewer: Viewer, playbook: HasAccess) -> bool:
    return viewer.is_admin or _named(viewer, playbook.access.admins)


def is_playbook_member(viewer: Viewer, playbook: HasAccess) -> bool:
    """Named in members or admins, or in one of its groups (system admins count too)."""
    access = playbook.access
    return (is_playbook_admin(viewer, playbook) or _named(viewer, access.members)
            or any(g in viewer.groups for g in access.groups))


def may_see_playbook(viewer: Viewer, playbook: HasAccess) -> bool:
    """Whether the playbook may appear to `viewer` at all (its team scope is checked by the caller, which
    lists the playbooks of one team). Guests see public playbooks as before: they may run them."""
    return playbook.access.public or is_playbook_member(viewer, playbook)


def may_run_playbook(viewer: Viewer, playbook: HasAccess) -> bool:
    """Whether `viewer` may start a run of it: whoever may see it (members of a private one)."""
    return may_see_playbook(viewer, playbook)


def may_edit_playbook(viewer: Viewer, playbook: HasAccess) -> bool:
    """Whether `viewer` may change the playbook (the editor, imports over it, archive): its admins and
    system admins; its members too with `edit = "members"`."""
    if is_playbook_admin(viewer, playbook):
        return True
    access = playbook.access
    return access.edit == "members" and is_playbook_member(viewer, playbook)


def participants_may_finish(access: PlaybookAccess) -> bool:
    """What a run started from a playbook with this access copies into Run.participants_may_finish."""
    return access.finish == "participants"


@dataclass(frozen=True)
class RunFacts:
    team_id: str
    owner_id: str
    participant_ids: frozenset[str]
    private: bool
    participants_may_finish: bool = False
    channel_id: str = ""
    playbook_id: str = ""


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
    if run.playbook_id and run.playbook_id in viewer.hidden_playbooks:
        return False  # a private playbook's runs: not for those outside it
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


# --- a playbook in its teams: the web view's list, page and editor ---------------------------------------

@dataclass(frozen=True)
class PlaybookFacts:
    """What the playbook rules need of one playbook: the teams it belongs to (None: every team, a
    playbook without `team`) and its `[access]`."""

    team_ids: frozenset[str] | None
    access: PlaybookAccess = PlaybookAccess()


def may_view_playbook(viewer: Viewer, playbook: PlaybookFacts) -> bool:
    """System admins see every playbook; others one of their teams that they may see (may_see_playbook)."""
    if viewer.is_admin:
        return True
    in_team = bool(viewer.team_ids) if playbook.team_ids is None else bool(playbook.team_ids & viewer.team_ids)
    return in_team and may_see_playbook(viewer, playbook)


def may_create_playbook(viewer: Viewer) -> bool:
    """Who may make a new playbook in the web view (system admins, until per-playbook access)."""
    return viewer.is_admin
