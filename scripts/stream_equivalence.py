"""Prove that stream runs in batches end where `--mode full` does (the command line of
devtools/stream_equivalence.py, whose docstring is this program's --help).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.stream_equivalence import EquivalenceOptions, run_equivalence
from devtools.stream_equivalence import __doc__ as DESCRIPTION


def parse_options(argv: list[str] | None = None) -> EquivalenceOptions:
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="distinct valid events (default: 1000000)")
    parser.add_argument("--cards", type=int, default=None, help="cards (default: events / 50)")
    parser.add_argument("--days", type=int, default=30, help="days of event time (default: 30)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first day (2026-01-01)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    parser.add_argument("--batches", type=int, default=10, help="arrival batches, a stream run after each (10)")
    parser.add_argument(
        "--label-delay-batches",
        type=int,
        default=1,
        help="deliver each batch's chargeback feed files this many batches later (default: 1: late chargebacks)",
    )
    parser.add_argument(
        "--work-dir", type=Path, default=Path("/tmp/card-fraud-stream-equivalence"), help="generated and run lakes"
    )
    parser.add_argument("--output", type=Path, default=None, help="write the JSON summary here")
    parser.add_argument("--spark-master", default="local[*]", help="spark-submit --master (default: local[*])")
    try:
        return EquivalenceOptions(**vars(parser.parse_args(argv)))
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    return run_equivalence(parse_options(argv))


if __name__ == "__main__":
    raise SystemExit(main())
