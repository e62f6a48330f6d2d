"""Baseline fraud model on a day's datasets: gradient boosting on feature set v2, on v1, and on the amount alone.

    python scripts/train_baseline.py --as-of 2026-01-29 --lake-root ./lake

Trains on <lake-root>/gold/training/as_of=YYYY-MM-DD/{train,validation} (spark_jobs/build_datasets.py)
the same learner with the same random state on the datasets' features (v2), on the v1 features and on the
amount alone; prints ROC AUC, average precision and card precision@k for each, overall (the datasets'
labels) and, on a generated lake, per fraud scenario (the generator's truth: each scenario's frauds against
all legitimate events; docs/evaluation.md); writes metrics.json, pr_curve.png and model.zip (the v2 model
with its feature set version and ordered input names, which `feature_store/serve_features.py http --model`
scores with) beside the datasets. Same data and --random-state give the same numbers. The library is
devtools/baseline.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.baseline import BaselineError, format_table, run_baseline
from spark_jobs import exit_codes
from spark_jobs.job_options import add_lake_options, parse_day


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train_baseline.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--as-of", type=parse_day, required=True, help="the datasets' as-of date YYYY-MM-DD (build_datasets.py --as-of)"
    )
    add_lake_options(parser)
    parser.add_argument("--top-k", type=int, default=100, help="cards per day for card precision@k (default: 100)")
    parser.add_argument("--random-state", type=int, default=0, help="seed of the gradient-boosting models (default: 0)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP threads for the models (default: 1; on cores shared with Spark more threads spin and run "
        "several times slower; the results do not depend on it)",
    )
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from feature_store.model_artifact import MODEL_FILE_NAME
    from spark_jobs.lake import training_file_uri
    from spark_jobs.storage import LakeNotFoundError, open_lake

    try:
        storage = open_lake(args.lake_root, endpoint_url=args.endpoint_url, create=args.create_lake)
    except LakeNotFoundError as error:
        print(f"train_baseline.py: error: {error}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    try:
        metrics = run_baseline(
            storage, args.as_of, top_k=args.top_k, random_state=args.random_state, threads=args.threads
        )
    except BaselineError as error:
        print(f"train_baseline.py: error: {error}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    print(format_table(metrics))
    written = [training_file_uri(storage, args.as_of, name) for name in ("metrics.json", "pr_curve.png")]
    print(f"wrote {written[0]}, {written[1]} and the model {training_file_uri(storage, args.as_of, MODEL_FILE_NAME)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
