"""Playbook files (`playbooks/<id>.toml`) -> validated, frozen `Playbook` definitions.

The file format is a user contract (contracts.md, "Playbook files"). Every problem is reported as a
`PlaybookError` naming the file, the key path (`checklists[2].items[3].due`; list positions count
from 1, as people count the `[[checklists]]` blocks in the file) and what is wrong. One broken
file never stops the others from loading.

Usernames, teams and channels are only checked for their form here; whether they exist on the
server is for `python -m bot check` (see `Playbook.usernames`).
"""
from __future__ import annotations

from bot.playbooks.errors import PlaybookError, PlaybookInvalid
from bot.playbooks.loader import load_playbook, load_playbooks
from bot.playbooks.lookup import PlaybookNotFound, find_playbook
from bot.playbooks.model import (
    DEFAULT_CATEGORY,
    DEFAULT_CHANNEL_NAME,
    DEFAULT_RETROSPECTIVE_TEMPLATE,
    AlertRoute,
    Assignee,
    ChecklistSpec,
    ItemSpec,
    Keywords,
    Playbook,
    Retrospective,
    Schedule,
    StatusUpdates,
    Webhooks,
)
from bot.playbooks.validation import parse_playbook

__all__ = [
    "AlertRoute",
    "Assignee",
    "ItemSpec",
    "ChecklistSpec",
    "StatusUpdates",
    "Retrospective",
    "Schedule",
    "Webhooks",
    "Keywords",
    "Playbook",
    "PlaybookError",
    "PlaybookInvalid",
    "PlaybookNotFound",
    "parse_playbook",
    "load_playbook",
    "load_playbooks",
    "find_playbook",
    "DEFAULT_CATEGORY",
    "DEFAULT_CHANNEL_NAME",
    "DEFAULT_RETROSPECTIVE_TEMPLATE",
]
