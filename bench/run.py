"""Run every benchmark of bench/ and print one table.

    .venv/bin/python bench/run.py [--quick] [--only 1,3]

Each benchmark also runs alone (`bench/<name>.py`). A benchmark that fails is reported in the
table and the others still run. Number 7 (scaleout.py: several relays on PostgreSQL) runs only
when asked for (`--only 7`): it needs PostgreSQL's server binaries and takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback
from pathlib import Path

import create
import download
import parallel
import polling
import scaleout
import startup
import status
from _common import Section, machine, render

BENCHMARKS = (download, parallel, status, create, polling, startup, scaleout)
DEFAULT = range(1, 7)  # scaleout only with --only 7


def main() -> None:
    parser = argparse.ArgumentParser(description="run every relay benchmark")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter windows")
    parser.add_argument(
        "--only", help="comma-separated benchmark numbers, e.g. 1,3 (7: several relays)"
    )
    parser.add_argument("--profile", metavar="DIR", help="record the relay with py-spy into DIR")
    args = parser.parse_args()
    if args.profile:
        os.environ["BENCH_PROFILE_DIR"] = str(Path(args.profile).resolve())
    chosen = {int(n) for n in args.only.split(",")} if args.only else set(DEFAULT)
    print(f"machine: {machine()}", flush=True)
    sections: list[Section] = []
    t0 = time.perf_counter()
    for number, module in enumerate(BENCHMARKS, 1):
        if number not in chosen:
            continue
        started = time.perf_counter()
        print(f"running {number}. {module.__name__} ...", flush=True)
        try:
            result = module.run(args.quick)
            sections += result if isinstance(result, list) else [result]
        except Exception as exc:
            traceback.print_exc()
            failed = Section(number, module.__name__)
            failed.add("error", f"{type(exc).__name__}: {exc}"[:120], "", False)
            sections.append(failed)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    print()
    print(render(sections))
    print(f"\ntotal time {time.perf_counter() - t0:.0f} s{' (--quick)' if args.quick else ''}")


if __name__ == "__main__":
    main()
