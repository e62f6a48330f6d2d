"""The whole platform on this machine, no AWS account: `make demo`.

1. Generate a 45-day lake (200,000 events, fraud scenarios, bad records, re-deliveries, late events,
   chargebacks) into a staging area beside the lake.
2. Deliver it to the lake's bronze in a fixed number of arrivals (6), as Firehose would over time, and after
   each run the stream state machine (state_machines/stream.asl.json) through the local runner
   (scripts/run_pipeline.py): silver and gold, then the changed card features into the local Feature Store.
3. Run the daily state machine for the last day (dates come from the generated window, never the clock):
   daily recompute and maintenance, the training/validation/inference datasets, the feature store.
4. Read a few cards' online features (feature_store/get_features.py), train the baseline model
   (scripts/train_baseline.py).
5. Print a summary (rows per layer, quarantine by reason, feature store writes, model metrics, time per
   step) and write <lake-root>/_runs/report.html with the figures and plots.

    .venv/bin/python scripts/demo.py --lake-root lake/demo        (what `make demo` runs)

The lake root and the staging folder (<lake-root>_staging) are the demo's own: they are emptied first. A
step whose program is not in this checkout yet is skipped with a message saying so.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.demo import DemoOptions, run_demo


def parse_options(argv: list[str] | None = None) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="demo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lake-root", type=Path, default=Path("lake/demo"), help="the demo's lake (emptied first)")
    parser.add_argument("--events", type=int, default=200_000, help="distinct valid events (default: 200000)")
    parser.add_argument("--cards", type=int, default=4_000, help="cards (default: 4000)")
    parser.add_argument("--days", type=int, default=45, help="days of event time (default: 45)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first day (2026-01-01)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    parser.add_argument("--arrivals", type=int, default=6, help="deliveries, each followed by a stream run (6)")
    parser.add_argument("--spark-master", default="local[*]", help="spark-submit --master (default: local[*])")
    args = parser.parse_args(argv)
    if args.arrivals < 1 or args.days < 1:
        parser.error("--arrivals and --days must be >= 1")
    return DemoOptions(**vars(args))


def main(argv: list[str] | None = None) -> int:
    return run_demo(parse_options(argv))


if __name__ == "__main__":
    raise SystemExit(main())
