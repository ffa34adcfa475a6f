"""Finding the playbook a person means by an id, a title or the start of one."""
from __future__ import annotations

from typing import Iterable, Mapping

from bot.playbooks.model import Playbook


class PlaybookNotFound(LookupError):
    """No playbook, or several, match a query; `choices` are the candidates to offer."""

    def __init__(self, message: str, choices: Iterable[Playbook]) -> None:
        super().__init__(message)
        self.choices = tuple(choices)


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def find_playbook(playbooks: Mapping[str, Playbook], query: str) -> Playbook:
    """The playbook whose id or title matches query, ignoring case and extra spaces.

    An exact id wins, then an exact title, then a unique prefix of an id or title ("inc").
    Raises PlaybookNotFound (a LookupError) when nothing or several match; its message lists the
    choices and `.choices` holds them.
    """
    wanted = _fold(query)
    every = sorted(playbooks.values(), key=lambda p: p.id)
    if not wanted:
        raise PlaybookNotFound(f"Which playbook? Choose one of: {_choices(every)}.", every)
    for stage in (
        [p for p in every if p.id.casefold() == wanted],
        [p for p in every if _fold(p.title) == wanted],
        [p for p in every if p.id.casefold().startswith(wanted) or _fold(p.title).startswith(wanted)],
    ):
        if len(stage) == 1:
            return stage[0]
        if len(stage) > 1:
            raise PlaybookNotFound(
                f'"{query.strip()}" matches {len(stage)} playbooks: {_choices(stage)}. Use the id.', stage)
    if not every:
        raise PlaybookNotFound("There are no playbooks yet; add a file to the playbooks folder.", [])
    raise PlaybookNotFound(f'No playbook matches "{query.strip()}". Choose one of: {_choices(every)}.', every)


def _choices(playbooks: Iterable[Playbook]) -> str:
    return ", ".join(f"{p.id} ({p.title})" for p in playbooks)
