"""Problems in playbook files: one `PlaybookError` per problem, `PlaybookInvalid` for a whole file."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


class PlaybookError(Exception):
    """One problem in one playbook file: str() is "<file>: <key path>: <what is wrong>"."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = Path(path)
        self.key = key
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.key}: {self.problem}" if self.key else f"{self.path}: {self.problem}"

    def __repr__(self) -> str:
        return f"PlaybookError({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlaybookError) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class PlaybookInvalid(Exception):
    """A playbook file with one or more problems; `errors` lists them all."""

    def __init__(self, errors: Iterable[PlaybookError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))
