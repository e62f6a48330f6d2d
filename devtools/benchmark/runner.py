"""Benchmark the pipeline against a DuckDB reference in the same run, and check the targets.

    .venv/bin/python scripts/benchmark.py                                   # 1M events (make bench)
    .venv/bin/python scripts/benchmark.py --events 5000000 --sizes 250000,1000000,2500000,5000000

On the same generated lakes, each engine in its own process (peak RSS of that process tree sampled with
psutil, the JVM and the Python workers included):

1. Full build, for every size in --sizes (and --events): `spark_jobs/silver_and_gold.py --mode full` via
   spark-submit, and `scripts/benchmark_reference.py build` (DuckDB: parse, validate, dedupe, FX, the
   same features, from the same bronze files). Then `benchmark_reference.py verify`: gold equal row for row
   (integers and decimals exactly, doubles to 1e-12 relative), silver, duplicates and quarantine equal.
   Spark's time is reported with and without start-up (JVM, SparkContext: everything before the job's
   first step).
2. Stream increment: one new batch (--stream-batch events, --stream-late-share of them late by up to
   --stream-late-hours) on top of history H (--stream-history events over --days days) and 2H (twice the
   days, same cards, same daily rate): batch time, files and bytes scanned (from the run report), ratio.
3. Feature store ingest: `feature_store/ingest_features.py` (local backend) of all gold rows of the H
   lake; records per BatchWriteRecord call as counted by the batch writer, rows/s.
4. Online lookup: p50/p99 of --lookups GetRecord calls on the local online store.
5. Serving latency (`devtools/serving_bench.py`): request-time computation, the full request and the local
   HTTP service; `--serving-only` measures just this and merges it into the existing results.json.

Writes `<output-dir>/results.json` (with the `targets` list), `<output-dir>/README.md` (the tables between
its results markers; text outside them is kept) and `<output-dir>/scaling.png`, and prints a summary.
Every figure is the median of --repeat runs.

`--baseline-tree PATH` measures only the cost of a change to the jobs: the full build at --events by this checkout
and by the one at PATH (e.g. a git worktree of the last feature set v1 commit), alternating, into
`<output-dir>/full_build_vs_baseline.json` (devtools/benchmark/compare.py).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from devtools.benchmark.options import BenchmarkOptions
from devtools.benchmark.report import print_summary, targets, write_docs
from devtools.benchmark.stages import full_build_stage, ingest_stage, lookup_stage, stream_stage
from devtools.benchmark.stats import git_commit, load_average, log, machine_info, spark_settings, versions

RESULTS_SCHEMA_VERSION = 1


def serving_only(options: BenchmarkOptions) -> int:
    """--serving-only: the serving latency section merged into the existing results.json and README.md."""
    from devtools import serving_bench

    path = options.output_dir / "results.json"
    results = json.loads(path.read_text())
    results["serving_latency"] = serving_bench.measure_serving(
        options.work_dir, requests=options.serving_requests, http_requests=options.serving_requests
    )
    results["serving_latency"]["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["serving_latency"]["git_commit"] = git_commit()
    results["targets"], results["target_notes"] = targets(results)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    if not options.no_docs:
        serving_bench.write_markdown(results["serving_latency"], options.output_dir / "README.md")
    print_summary(results)
    return 0


def run_benchmark(options: BenchmarkOptions) -> int:
    """Every stage not skipped; results.json, the docs (unless no_docs) and the printed summary."""
    options.work_dir.mkdir(parents=True, exist_ok=True)
    options.output_dir.mkdir(parents=True, exist_ok=True)
    if options.serving_only:
        return serving_only(options)
    if options.baseline_tree is not None:
        from devtools.benchmark.compare import run_comparison

        return run_comparison(options)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": options.command,
        "machine": machine_info(),
        "versions": versions(),
        "load_average": {"before": load_average()},
        "settings": {
            "events": options.events,
            "sizes": options.sizes,
            "repeat": options.repeat,
            "events_per_card": options.events_per_card,
            "days": options.days,
            "seed": options.seed,
            "spark_master": options.spark_master,
            "standalone_cluster": options.standalone_cluster,
            "stream_history": options.stream_history,
            "stream_batch": options.stream_batch,
            "lookups": options.lookups,
            "skipped": sorted(options.skip),
            "spark": spark_settings(options),
        },
    }
    log(f"load average {results['load_average']['before']} on {results['machine']['logical_cores']} cores")
    if "full" not in options.skip:
        results["full_build"] = full_build_stage(options)
    if options.standalone_cluster:
        from devtools.benchmark.cluster_stage import standalone_cluster_stage

        results["standalone_cluster"] = standalone_cluster_stage(options)
    if "stream" not in options.skip:
        results["stream_increment"] = stream_stage(options, results.get("full_build"))
    ingest_lake = None
    if results.get("stream_increment"):
        ingest_lake = Path(results["stream_increment"]["H"]["run_root"])
    elif results.get("full_build"):
        ingest_lake = Path(results["full_build"]["sizes"][-1]["run_root"])
    if "ingest" not in options.skip and ingest_lake is not None:
        results["feature_store_ingest"] = ingest_stage(options, ingest_lake)
    if "lookup" not in options.skip and results.get("feature_store_ingest"):
        results["online_lookup"] = lookup_stage(options, ingest_lake)
    if "serving" not in options.skip:
        from devtools import serving_bench

        results["serving_latency"] = serving_bench.measure_serving(
            options.work_dir, requests=options.serving_requests, http_requests=options.serving_requests
        )
    results["load_average"]["after"] = load_average()
    results["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    results["targets"], results["target_notes"] = targets(results)
    (options.output_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    if not options.no_docs:
        write_docs(results, options.output_dir)
    print_summary(results)
    print(f"results: {options.output_dir / 'results.json'}")
    return 0
