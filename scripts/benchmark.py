"""Benchmark the pipeline against a DuckDB reference in the same run, and check the targets (make bench).
The library is devtools/benchmark/; `--help` shows what each stage measures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.benchmark import runner
from devtools.benchmark.options import STAGES, BenchmarkOptions
from devtools.benchmark.runner import run_benchmark


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for raw in text.split(","):
        number = raw.strip().lower().replace("_", "")
        if not number:
            continue
        scale = {"m": 1_000_000, "k": 1_000}.get(number[-1], 1)
        if scale > 1:
            number = number[:-1]
        sizes.append(int(float(number) * scale))
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def parse_options(argv: list[str] | None = None) -> BenchmarkOptions:
    parser = argparse.ArgumentParser(
        prog="benchmark.py", description=runner.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="headline size: events of the largest full build (default 1M)"
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        help="comma-separated sizes for the scaling curve (250k, 1m, 2.5M or plain numbers); --events is always "
        "included (default: 250k and --events)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; figures are medians (default 1)")
    parser.add_argument(
        "--output-dir", type=Path, default=BenchmarkOptions.output_dir, help="results.json, README.md, PNGs"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/card-fraud-benchmark"),
        help="generated lakes and run folders (reused across runs: a lake with the same arguments is not "
        "generated again) (default: /tmp/card-fraud-benchmark)",
    )
    parser.add_argument(
        "--skip", default="", help=f"comma-separated stages to skip: {', '.join(STAGES)} (ingest needs stream's H lake)"
    )
    parser.add_argument(
        "--events-per-card",
        type=int,
        default=50,
        help="cards = events / this, so each card's daily rate is the same at every size (default 50: 1M events, "
        "20,000 cards)",
    )
    parser.add_argument("--days", type=int, default=30, help="days of event time of every lake (default 30)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--stream-history", type=int, default=1_000_000, help="H: events of the history (default 1M)")
    parser.add_argument("--stream-batch", type=int, default=10_000, help="events in the new batch (default 10k)")
    parser.add_argument(
        "--stream-late-share", type=float, default=0.1, help="share of the batch that is late (default 0.1)"
    )
    parser.add_argument(
        "--stream-late-hours", type=float, default=72.0, help="late events are up to this many hours old (default 72)"
    )
    parser.add_argument(
        "--stream-repeat",
        type=int,
        default=None,
        help="stream runs on each of H and 2H, alternating (default: --repeat)",
    )
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=None,
        metavar="LOAD",
        help="before each timed Spark or DuckDB run, wait until the 1-minute load average is at most LOAD (at most "
        "--quiet-wait seconds); every run records its load average at the start either way (default: no wait)",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=600.0, help="longest wait for --quiet-load, seconds (default 600)"
    )
    parser.add_argument("--lookups", type=int, default=10_000, help="online-store lookups (default 10k)")
    parser.add_argument(
        "--spark-master", default="local[*]", help="spark-submit --master for every Spark job (default local[*])"
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --conf for every spark-submit (for tuning experiments; spark_jobs/session.py defaults win "
        "over it for the keys they set)",
    )
    parser.add_argument(
        "--standalone-cluster",
        action="store_true",
        help="also run the full build at --events on a Spark standalone master and two workers started on loopback "
        "(devtools/standalone_cluster.py), verify it, and record it in results.json under standalone_cluster",
    )
    parser.add_argument(
        "--event-log",
        action="store_true",
        help="write a Spark event log per Spark run (under --work-dir/event-logs) and record each run's longest "
        "SQL executions and its job/stage/task counts in results.json (hot spots)",
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=0.1, help="RSS sampling interval of the process trees (default 0.1)"
    )
    parser.add_argument(
        "--serving-requests",
        type=int,
        default=2000,
        help="serving latency: requests per window size and to the HTTP service (default 2000)",
    )
    parser.add_argument(
        "--serving-only",
        action="store_true",
        help="measure only the serving latency (devtools/serving_bench.py) and merge it into the existing "
        "results.json and README.md",
    )
    parser.add_argument(
        "--no-docs",
        action="store_true",
        help="write results.json only (no README.md, no PNG): for smoke tests",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="only compare the --mode full build at --events with the same build by another checkout at this path "
        "(e.g. `git worktree add /tmp/v1tree 55ad47c`, the last v1 commit), alternating, --repeat runs each; "
        "writes <output-dir>/full_build_vs_baseline.json (devtools/benchmark/compare.py)",
    )
    parser.add_argument("--baseline-label", default="v1", help="name of the --baseline-tree side (default v1)")
    parser.add_argument("--label", default="v2", help="name of this checkout's side (default v2)")
    parser.add_argument(
        "--baseline-limit",
        type=float,
        default=1.3,
        help="largest accepted ratio of this checkout's full build to the baseline's (default 1.3)",
    )
    args = parser.parse_args(argv)
    values = vars(args)
    values["skip"] = frozenset(item.strip() for item in args.skip.split(",") if item.strip())
    values["sizes"] = tuple(args.sizes or ())
    values["spark_conf"] = tuple(args.spark_conf)
    values["command"] = "scripts/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        return BenchmarkOptions(**values)
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_options(argv))


if __name__ == "__main__":
    raise SystemExit(main())
