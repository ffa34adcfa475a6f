""""Did you mean …?" for a mistyped word: the closest candidates by edit distance. Pure, no I/O."""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["distance", "closest"]

# Longer than this, a typed word is not a typo of a command but something else entirely.
MAX_WORD = 64


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
    neighbouring characters each cost 1 (`chek` -> `check` is 1, `cehck` -> `check` is 1)."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def allowed(word: str) -> int:
    """How many edits still count as a typo of a word this long: 1 up to 4 characters, then 2."""
    return 1 if len(word) <= 4 else 2


def closest(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates within a typo's reach of `word` (case-insensitive), nearest first, at most
    `limit`; a candidate that starts with what was typed counts too (`fin` -> `finish`)."""
    typed = word.strip().lower()
    if not typed or len(typed) > MAX_WORD:
        return []
    scored: list[tuple[int, str]] = []
    for candidate in dict.fromkeys(candidates):
        low = candidate.lower()
        if low == typed:
            return [candidate]
        d = distance(typed, low)
        if d <= allowed(low):
            scored.append((d, candidate))
        elif len(typed) >= 3 and low.startswith(typed):
            scored.append((len(low) - len(typed), candidate))
    return [c for _, c in sorted(scored)[:limit]]
