"""Measure online/offline consistency of request-time features on a generated lake (issue 16).

Builds the first days with the batch pipeline, serves the following days through `FeatureServer.serve` in
event-time order (a seeded ~10 % held out, reaching the platform only through bronze), delivers everything
and runs the stream pipeline, then checks per served event: (a) served == an independent DuckDB reference
over exactly the state the request saw and the merchant snapshot the online store held (all 22 features and
the merchant_snapshot_stale flag), (b) served == gold for every event no late or held-out event could affect
(card and event features), and the merchant features vs gold/merchant_features, counting the responses
flagged merchant_snapshot_stale and the mismatches they (or a later change of the day's snapshot) explain
apart from unexplained ones; and reports what the last batch's online features would have served instead.
See `devtools/serving_consistency/`.

    .venv/bin/python scripts/serving_consistency.py --events 200000 --cards 4000 --days 45 --history-days 31 \\
        --output docs/benchmarks/serving_consistency.json

Exit status 1 when (a) is below 100 %, (b) is below 100 % on unaffected events, or a merchant feature mismatch
is unexplained.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(REPO_ROOT))

from devtools.serving_consistency import (  # noqa: E402
    ConsistencyOptions,
    SparkSubmitPipeline,
    analyze_existing,
    run_consistency,
)
from devtools.serving_consistency.summary import markdown_table, summary_lines  # noqa: E402


def parse_args(argv: list[str] | None = None) -> tuple[ConsistencyOptions, argparse.Namespace]:
    defaults = ConsistencyOptions()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=defaults.events, help=f"generated events ({defaults.events})")
    parser.add_argument("--cards", type=int, default=defaults.cards, help=f"cards ({defaults.cards})")
    parser.add_argument("--days", type=int, default=defaults.days, help=f"days of event time ({defaults.days})")
    parser.add_argument("--start", type=date.fromisoformat, default=defaults.start, help="first day (2026-01-01)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="generator and hold-out seed (7)")
    parser.add_argument(
        "--history-days", type=int, default=defaults.history_days, help="days built by the batch first (7)"
    )
    parser.add_argument(
        "--holdout-share", type=float, default=defaults.holdout_share, help="served days' events held out (0.1)"
    )
    parser.add_argument("--work-dir", type=Path, default=defaults.work_dir, help="generated lake, lake, replay log")
    parser.add_argument("--output", type=Path, default=None, help="write the results JSON here")
    parser.add_argument("--spark-master", default="local[*]", help="spark-submit --master (local[*])")
    parser.add_argument(
        "--analyze-only", action="store_true", help="only compare again over a finished run in --work-dir"
    )
    args = parser.parse_args(argv)
    options = ConsistencyOptions(
        events=args.events,
        cards=args.cards,
        days=args.days,
        start=args.start,
        seed=args.seed,
        history_days=args.history_days,
        holdout_share=args.holdout_share,
        work_dir=args.work_dir,
    )
    try:
        options.validate()
    except ValueError as error:
        parser.error(str(error))
    return options, args


def main(argv: list[str] | None = None) -> int:
    options, args = parse_args(argv)

    def echo(message: str) -> None:
        print(f"[serving-consistency {time.strftime('%H:%M:%S')}] {message}", flush=True)

    if args.analyze_only:
        results = analyze_existing(options.work_dir)
    else:
        pipeline = SparkSubmitPipeline(master=args.spark_master, log_dir=options.work_dir / "logs")
        results = run_consistency(options, pipeline, echo)
    results["command"] = " ".join(["scripts/serving_consistency.py", *(sys.argv[1:] if argv is None else argv)])
    for line in summary_lines(results):
        print(line)
    print(markdown_table(results))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"results: {args.output}")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
