"""Keyword triggers: which words and patterns of a playbook's `[keywords]` a post says (pure, no I/O).

Words and phrases match whole, in any case: "db down" matches "DB  Down!" (a phrase's words may be
separated by any run of whitespace) but not "dbdown" or "db downtime". Patterns are Python regular
expressions, searched case-insensitively.

A pattern is checked when the playbook is read, so that no post can make the bot spend long matching it.
Python's `re` backtracks and has no time limit, so instead of a timeout the pattern's shape is bounded
(`pattern_problem`): no back-references, look-arounds or conditionals; no repetition inside a repetition
and no alternation inside a repetition (the shapes whose backtracking explodes, like `(a+)+` or `(a|a)*`);
and the product of every repetition's range (an unbounded one counts as the whole scanned text) times the
text's length (`pattern_cost`) stays under BUDGET, which allows one unbounded repetition (`error \\d+`) or a
few short bounded ones but not two unbounded ones (`\\d+ .* down`, cubic in the worst case) nor two long
bounded ones (`a{0,99}a{0,99}b`). Patterns are searched in the first MAX_SCANNED characters of a post only,
and a playbook's patterns together stay under PLAYBOOK_BUDGET (the validation checks it), so the worst case
is a few million steps per post and playbook: tens of milliseconds.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Sequence

# re's own parser and its opcodes (what re.compile uses; no public API gives a pattern's structure, and
# typeshed has no stubs for these private modules, hence Any).
sre_parse: Any = importlib.import_module("re._parser")
sre_constants: Any = importlib.import_module("re._constants")

PATTERN_MAX = 200  # characters of one pattern
MAX_SCANNED = 1000  # characters of a post a pattern is searched in (words: the whole post)
# Worst-case steps (as pattern_cost counts them) of one pattern, and of all of a playbook's patterns, on
# MAX_SCANNED characters. One step is about 5-15 ns of re's matching: an unbounded repetition at the
# start (`.*x`, 1M steps) takes ~6 ms on MAX_SCANNED characters of the worst text.
BUDGET = 2_000_000
PLAYBOOK_BUDGET = 4_000_000
WORDS_MAX = 50  # words and phrases per playbook
PATTERNS_MAX = 10  # patterns per playbook
WORD_MAX = 64  # characters of one word or phrase

_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)
_FORBIDDEN = {
    sre_constants.GROUPREF: "a back-reference (\\1, (?P=name))",
    sre_constants.GROUPREF_EXISTS: "a conditional group ((?(1)...))",
    sre_constants.ASSERT: "a look-ahead or look-behind ((?=...), (?<=...))",
    sre_constants.ASSERT_NOT: "a look-ahead or look-behind ((?!...), (?<!...))",
}


def _walk(items: Any, inside_repeat: bool) -> tuple[float, str]:
    """(worst-case factor, problem) of a parsed (sub)pattern."""
    cost = 1.0
    for op, av in items:
        if op in _FORBIDDEN:
            return cost, f"{_FORBIDDEN[op]} is not allowed"
        if op in _REPEATS:
            low, high, body = av
            if inside_repeat:
                return cost, "a repetition inside a repetition (like (a+)+) is not allowed: it can take " \
                             "exponential time"
            if _has_branch(body):
                return cost, "an alternation inside a repetition (like (a|ab)*) is not allowed; use a " \
                             "character class ([ab]*) or repeat outside the group"
            inner, problem = _walk(body, True)
            if problem:
                return cost, problem
            span = MAX_SCANNED if high == sre_constants.MAXREPEAT else min(int(high) - int(low) + 1, MAX_SCANNED)
            cost *= max(span, 1) * inner
        elif op == sre_constants.SUBPATTERN:
            inner, problem = _walk(av[-1], inside_repeat)
            if problem:
                return cost, problem
            cost *= inner
        elif op == sre_constants.BRANCH:
            worst = 1.0
            for branch in av[1]:
                inner, problem = _walk(branch, inside_repeat)
                if problem:
                    return cost, problem
                worst = max(worst, inner)
            cost *= worst * len(av[1])
        elif op == sre_constants.ATOMIC_GROUP:
            inner, problem = _walk(av, inside_repeat)
            if problem:
                return cost, problem
            cost *= inner
    return cost, ""


def _has_branch(items: Any) -> bool:
    for op, av in items:
        if op == sre_constants.BRANCH:
            return True
        if op == sre_constants.SUBPATTERN and _has_branch(av[-1]):
            return True
        if op == sre_constants.ATOMIC_GROUP and _has_branch(av):
            return True
    return False


def pattern_cost(pattern: str) -> float:
    """Worst-case steps of searching MAX_SCANNED characters with a pattern `pattern_problem` accepts."""
    cost, _ = _walk(sre_parse.parse(pattern, re.IGNORECASE), False)
    return cost * MAX_SCANNED


def patterns_problem(patterns: Sequence[str]) -> str:
    """Why accepted patterns cannot be a playbook's together ("" when they can): their worst cases add up
    to more than PLAYBOOK_BUDGET steps on each post."""
    total = sum(pattern_cost(p) for p in patterns)
    if total <= PLAYBOOK_BUDGET:
        return ""
    return (f"together could take too long to search a long post (about {total / 1e6:.1f} million steps "
            f"in the worst case; the limit is {PLAYBOOK_BUDGET / 1e6:.0f} million, one unbounded repetition "
            "like \\d+ costs 1 million): drop some patterns, or bound their repetitions, like \\d{1,5}")


def pattern_problem(pattern: str) -> str:
    """Why `pattern` cannot be a keyword pattern ("" when it can): too long, not a regular expression, a
    shape that can backtrack for long, or one that matches an empty text (it would match every post)."""
    if not pattern.strip():
        return "must not be empty"
    if len(pattern) > PATTERN_MAX:
        return f"is {len(pattern)} characters long; the limit is {PATTERN_MAX}"
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"is not a regular expression: {exc}"
    cost, problem = _walk(parsed, False)
    if problem:
        return problem
    if cost * MAX_SCANNED > BUDGET:
        return (f"could take too long to search a long post: its repetitions multiply to {cost:.0f} and the "
                f"limit is {BUDGET // MAX_SCANNED} (an unbounded *, + or {{n,}} counts {MAX_SCANNED}, "
                "\\d{1,5} counts 5, two alternatives count 2); repeat without bound at most once and keep "
                "the other repetitions short, like \\d{1,2}")
    if compiled.search("") is not None:
        return "matches an empty text, so it would match every post; make it need at least one character"
    return ""


@dataclass(frozen=True)
class Matcher:
    """A playbook's words and patterns, compiled once."""
    words: re.Pattern[str] | None
    patterns: tuple[re.Pattern[str], ...]

    def search(self, message: str) -> str:
        """What in `message` matched ("" when nothing): the word as written in the post, or the pattern's match."""
        if self.words is not None:
            found = self.words.search(message)
            if found:
                return found.group(0)
        head = message[:MAX_SCANNED]
        for pattern in self.patterns:
            found = pattern.search(head)
            if found and found.group(0):
                return found.group(0)
        return ""


def _phrase(word: str) -> str:
    return r"\s+".join(re.escape(part) for part in word.split())


def matcher(words: Sequence[str], patterns: Sequence[str]) -> Matcher:
    """Words as whole words or phrases (any case), patterns as given (any case); patterns must have passed
    `pattern_problem` (the playbook's validation does that)."""
    alternatives = "|".join(_phrase(w) for w in sorted(words, key=len, reverse=True) if w.strip())
    compiled = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if alternatives else None
    return Matcher(compiled, tuple(re.compile(p, re.IGNORECASE) for p in patterns))


def run_name_from(message: str, limit: int = 200) -> str:
    """A run's name from the post that offered it: its first non-blank line, trimmed (Markdown heading and
    quote marks dropped), cut at a word boundary to `limit` characters."""
    for line in message.splitlines():
        line = line.strip().lstrip("#>").strip()
        if line:
            if len(line) > limit:
                cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
                return cut.rstrip() + "…"
            return line
    return ""
