"""Importing the Playbooks plugin's JSON and validating playbook data from outside (the API, the CLI):
names looked up in Mattermost, the result checked by `parse_playbook`, saved as a new playbook.

`prepare_import(export, gateway)` -> `Prepared` (data, report, problems); `save_import(db, prepared, now)`
writes it as a new playbook (version 1, source "import") with an id from its title. Nothing is written
when there is any problem.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

from bot.models import Gateway, MattermostError
from bot.playbooks.errors import PlaybookInvalid
from bot.playbooks.loader import check_file_name
from bot.playbooks.model import Playbook
from bot.playbooks.plugin_import import Names, Report, map_export, parse_export, slug, wanted_ids
from bot.playbooks.validation import parse_playbook
from storage import playbooks as store
from storage.db import Database
from storage.models import PlaybookVersion


@dataclass(frozen=True)
class Problem:
    path: str  # the key path in our data ("checklists[1].items[2].due"), "" for the whole thing
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def validate_data(data: object, playbook_id: str = "playbook") -> tuple[Playbook | None, list[Problem]]:
    """`parse_playbook` on data from outside: the Playbook, or every problem with its key path."""
    if not isinstance(data, Mapping):
        return None, [Problem("", f"expected a playbook (a table of keys), got {type(data).__name__}")]
    try:
        return parse_playbook(data, playbook_id=playbook_id, path=playbook_id), []
    except PlaybookInvalid as exc:
        return None, [Problem(e.key, e.problem) for e in exc.errors]


@dataclass
class Prepared:
    data: dict[str, Any]
    report: Report
    problems: list[str]
    playbook: Playbook | None = None

    def as_dict(self) -> dict[str, Any]:
        out = self.report.as_dict()
        out["problems"] = list(self.problems)
        return out


async def resolve_names(gateway: Gateway, export: Mapping[str, Any]) -> Names:
    """The export's user, channel and team ids, as names on this server (those not found are left out)."""
    wanted = wanted_ids(export)
    users: dict[str, str] = {}
    if wanted.users:
        try:
            users = {u.id: u.username for u in await gateway.get_users_by_ids(sorted(wanted.users))
                     if not u.delete_at}
        except MattermostError:
            users = {}
    channels: dict[str, str] = {}
    for channel_id in sorted(wanted.channels):
        try:
            channel = await gateway.get_channel(channel_id)
        except MattermostError:
            continue
        if not channel.delete_at:
            channels[channel_id] = channel.name
    teams: dict[str, str] = {}
    for team_id in sorted(wanted.teams):
        try:
            teams[team_id] = (await gateway.get_team(team_id)).name
        except MattermostError:
            continue
    return Names(users=users, channels=channels, teams=teams)


async def prepare_import(raw: str | bytes | Mapping[str, Any], gateway: Gateway) -> Prepared:
    """Map the plugin's JSON to our data and validate it; `problems` non-empty means nothing may be saved."""
    if isinstance(raw, Mapping):
        export: dict[str, Any] | None = dict(raw)
        problems: list[str] = []
    else:
        export, problems = parse_export(raw)
    if export is None:
        return Prepared({}, Report(), problems)
    names = await resolve_names(gateway, export)
    return finish_import(export, names)


def finish_import(export: Mapping[str, Any], names: Names) -> Prepared:
    """The pure half of `prepare_import`: map, then validate."""
    imported = map_export(export, names)
    data, report = imported.data, imported.report
    if report.problems:
        return Prepared(data, report, list(report.problems))
    playbook, found = validate_data(data, slug(str(data.get("title", ""))))
    return Prepared(data, report, [str(p) for p in found], playbook)


def playbook_id_for(title: str, wanted: str = "") -> str:
    """The id an imported playbook gets: `wanted` if given (checked), else one made from the title."""
    base = wanted or slug(title)
    check_file_name_ok(base)
    return base


def check_file_name_ok(playbook_id: str) -> None:
    """Raises PlaybookInvalid when `playbook_id` is not a valid id (the rule for file names)."""
    from pathlib import Path

    check_file_name(Path(f"{playbook_id}.toml"))


async def save_import(db: Database, prepared: Prepared, now: int, *, author_id: str = "", playbook_id: str = "",
                      source: str = "import", note: str = "imported from the Playbooks plugin"
                      ) -> PlaybookVersion:
    """Save the prepared data as a new playbook (version 1); raises PlaybookExists when `playbook_id` was
    asked for and is taken."""
    assert not prepared.problems
    base = playbook_id_for(str(prepared.data.get("title", "")), playbook_id)
    return await db.run(functools.partial(store.create_playbook, source=source, now=now, author_id=author_id,
                                          note=note, exact=bool(playbook_id)), base, prepared.data)
