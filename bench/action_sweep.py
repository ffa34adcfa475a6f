"""The actions' sweep (handlers/actions.py `sweep`): its two reads over 10,000 stored runs, median and p99.

    .venv/bin/python bench/action_sweep.py [--runs 10000] [--rounds 50]

Every bot process reads, at start-up and every five minutes, the item checks, status updates and finishes
of the last day from the timeline (storage/actions.py runs_with_events, then unrecorded_events for the
runs whose playbook version has actions on them). The runs are bench/web_pages.py's (about 20 timeline
events each, over the last year), written straight into a SQLite file in a temporary folder, each given a
playbook version so none is left out. Printed: each read's time through a read-only session, median and p99,
and the ratio to the floor measured in the same run (`SELECT 1` through the same kind of session); then the
first read again without the timeline's (type, at) index (migration 0032), to show what it is for.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.web_pages import DAY_MS, pct, seed  # noqa: E402
from storage import actions as store  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402
from storage.ids import new_id  # noqa: E402

NOW = 1_790_000_000_000


def timed(engine: Engine, rounds: int, read: Callable[[Any], object]) -> list[float]:
    samples = []
    for _ in range(rounds + 3):
        started = time.perf_counter()
        with session_scope(engine, readonly=True) as session:
            read(session)
        samples.append((time.perf_counter() - started) * 1000)
    return samples[3:]  # after warming up


def line(what: str, samples: list[float], floor: list[float]) -> str:
    med, p99 = pct(samples, 50), pct(samples, 99)
    return (f"{what:<46} median {med:7.2f} ms  p99 {p99:7.2f} ms  "
            f"(x{med / pct(floor, 50):.1f} / x{p99 / pct(floor, 99):.1f} the floor)")


def main(runs: int, rounds: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'playbooks.db'}"
        people = [new_id() for _ in range(40)]
        counts = seed(url, runs, new_id(), people[0], people, new_id(), NOW)
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE runs SET playbook_version_id = substr(id, 1, 26)"))
            since, until = NOW - DAY_MS, NOW - 60_000
            with session_scope(engine, readonly=True) as session:
                ids = [run_id for run_id, _ in store.runs_with_events(session, since, until)]
            print(f"## actions' sweep: {runs} runs, {counts['timeline_events']} timeline events, "
                  f"{len(ids)} runs with events in the last day; {rounds} rounds, SQLite")
            floor = timed(engine, rounds, lambda s: s.execute(text("SELECT 1")).all())
            first = timed(engine, rounds, lambda s: store.runs_with_events(s, since, until))
            second = timed(engine, rounds, lambda s: store.unrecorded_events(s, ids, since, until))
            print(line("floor: SELECT 1", floor, floor))
            print(line("runs with events (runs_with_events)", first, floor))
            print(line("their unrecorded events (unrecorded_events)", second, floor))
            with engine.begin() as conn:
                conn.execute(text("DROP INDEX ix_timeline_type_at"))
            print(line("runs with events, without ix_timeline_type_at", timed(
                engine, max(5, rounds // 5), lambda s: store.runs_with_events(s, since, until)), floor))
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench/action_sweep.py")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    raise SystemExit(main(args.runs, args.rounds))
