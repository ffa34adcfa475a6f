"""`make bench`: every benchmark, one after the other, each printing its own figures.

    .venv/bin/python bench/run.py [--quick] [--only run_start,commands,...,web_pages]

Each benchmark starts the sandbox in its own process and the bot in this machine's Python; figures
are medians and ratios from one run, to compare against the aims in bench/README.md. The machine is
shared and noisy: run it twice before believing a change of less than 20%.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCHES = {
    "run_start": (["bench/run_start.py"], ["--runs", "5", "--rounds", "6"]),
    "commands": (["bench/commands.py"], ["--quick"]),
    "reminders": (["bench/reminders.py"], ["--runs", "1000", "--spread", "10"]),
    "proofs": (["bench/proofs.py"], ["--n", "300"]),
    "crash_start": (["bench/crash_start.py"], ["--runs", "5"]),
    "crash_clicks": (["bench/crash_clicks.py"], ["--runs", "3"]),
    "web_pages": (["bench/web_pages.py"], ["--runs", "1000", "--requests", "20", "--budget", "5"]),
    "alerts": (["bench/alerts.py", "--alerts", "100"], ["--alerts", "5"]),
    "action_sweep": (["bench/action_sweep.py"], ["--runs", "500", "--rounds", "5"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, to check the benches still run")
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(BENCHES))
    args = parser.parse_args()
    chosen = [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = [n for n in chosen if n not in BENCHES]
    if unknown:
        print(f"bench/run.py: unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}",
              file=sys.stderr)
        return 2
    print(f"# Benchmarks: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    failed = []
    for name in chosen:
        script, quick_args = BENCHES[name]
        if not (ROOT / script[0]).exists():
            print(f"\n## {name}: {script[0]} is missing", flush=True)
            failed.append(name)
            continue
        print(flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, *script, *(quick_args if args.quick else [])], cwd=ROOT)
        print(f"({name}: {time.perf_counter() - started:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
