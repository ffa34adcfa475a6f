"""Checklist item states and the transitions buttons and commands apply. Pure rules, no I/O."""
from __future__ import annotations

from dataclasses import dataclass

STATES = ("open", "in_progress", "closed", "skipped")

# verb -> (states it applies to, resulting state). Anything else is a no-op, which is what makes a
# double click act once: the second "check" finds the item already closed and changes nothing.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "check": (frozenset({"open", "in_progress"}), "closed"),
    "uncheck": (frozenset({"closed"}), "open"),
    "skip": (frozenset({"open", "in_progress"}), "skipped"),
    "restore": (frozenset({"skipped", "closed"}), "open"),
}


def target_state(verb: str, state: str) -> str | None:
    """The state `verb` moves an item in `state` to, or None when it does not apply."""
    sources, target = TRANSITIONS[verb]
    return target if state in sources else None


@dataclass(frozen=True)
class Progress:
    done: int
    total: int

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else round(100 * self.done / self.total)


def progress(states: list[str]) -> Progress:
    """Closed and skipped items count as done; the total leaves out nothing."""
    return Progress(sum(1 for s in states if s in ("closed", "skipped")), len(states))


def parse_item_number(text: str) -> tuple[int, int] | None:
    """`2.3` -> (1, 2): checklist and item as shown (1-based) to 0-based indexes, or None."""
    head, dot, tail = text.partition(".")
    if not dot or not head.isdigit() or not tail.isdigit() or len(head) > 4 or len(tail) > 4:
        return None
    c, i = int(head), int(tail)
    if c < 1 or i < 1:
        return None
    return c - 1, i - 1
