"""Deliver a generated lake in N arrival batches, run stream mode after each, then prove it equals `--mode full`.

The check behind gold's promise that any sequence of stream runs ends where a full recompute does:

1. Generate a lake (`--events`, `--days`, `--cards`; bad records, re-deliveries and late events included)
   into `<work-dir>/staged`, once per arguments.
2. Split its bronze by arrival hour into `--batches` consecutive deliveries (the last one also takes the
   stragglers), copy each into `<work-dir>/lake` and run
   `spark-submit --master local[*] spark_jobs/silver_and_gold.py --mode stream` after it.
3. Run `--mode full` on the same lake: it recomputes all of gold from silver and MERGEs only changed
   values, so it must insert and update nothing.

Prints one line per run and writes `<output>` (JSON): per stream run the bronze files and bytes read, the
gold files and bytes its update scanned, rows recomputed, cards affected and seconds; then the full run's
inserted/updated counts and `equal: true|false`. Exit status 1 when the full run changed a row.

    .venv/bin/python scripts/stream_equivalence.py --events 1000000 --batches 10 \\
        --output docs/benchmarks/stream_equivalence.json
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.stream_equivalence import EquivalenceOptions, run_equivalence


def parse_options(argv: list[str] | None = None) -> EquivalenceOptions:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="distinct valid events (default: 1000000)")
    parser.add_argument("--cards", type=int, default=None, help="cards (default: events / 50)")
    parser.add_argument("--days", type=int, default=30, help="days of event time (default: 30)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first day (2026-01-01)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    parser.add_argument("--batches", type=int, default=10, help="arrival batches, a stream run after each (10)")
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
