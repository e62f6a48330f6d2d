"""The cost of a change to the jobs: the same `--mode full` build, on the same generated lake, by this checkout
and by another one (`--baseline-tree`, e.g. a git worktree of the last feature set v1 commit), alternating.

    git worktree add /tmp/v1tree 55ad47c          # the last v1 commit, outside this checkout
    .venv/bin/python scripts/benchmark.py --baseline-tree /tmp/v1tree --events 1000000 --repeat 3

Each run starts from a fresh run folder whose bronze is hard-linked from the pristine lake (the lake comes from
this checkout's generator: the older jobs read the same bronze and ignore what they do not know, e.g. the
chargeback feed); the order alternates run by run (baseline first, then this tree first, …) so that other load on
the machine falls on both alike; the load average is recorded before every run and `uptime` before the first.
The figures are the medians of the runs per side: the job's wall time without start-up (first step to
summary line), with start-up, CPU seconds and peak RSS; the ratio this/baseline is checked against
--baseline-limit (the issue's 1.3×). Each run keeps the run report's seconds per step, and with --event-log its
longest Spark SQL executions, so a ratio over the limit comes with where the time went. This
checkout's first build is verified against the DuckDB reference (scripts/benchmark_reference.py).

Writes `<output-dir>/full_build_vs_baseline.json` after every pair of runs (`repeat`: the pairs completed, so a
comparison cut short keeps what it measured; nothing else is written) and prints a summary.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from devtools.benchmark.lakes import bronze_size, fresh_run_root, generated_lake, lake_tag
from devtools.benchmark.options import BenchmarkOptions
from devtools.benchmark.processes import require_success, run_report, spark_job_timing, spark_submit
from devtools.benchmark.stages import FULL_BUILD_ARGS, FULL_BUILD_KEYS, verify_lake
from devtools.benchmark.stats import git_commit, load_average, log, machine_info, summarize_runs, versions
from devtools.repo import REPO_ROOT

COMPARISON_FILE = "full_build_vs_baseline.json"
# The load calibration: bronze → silver steps whose code feature set v2 did not change (silver_ingest.py,
# bronze_contract.py, event_id_index.py). On a shared machine the two sides' runs meet different load; the ratio
# of these steps' seconds measures it, and the normalized ratio divides it out.
CALIBRATION_STEPS = (
    "bronze_listing",
    "parse_bronze",
    "deduplicate",
    "silver_prepare",
    "write_silver",
    "write_duplicates",
    "write_quarantine",
    "event_id_index_prepare",
    "write_event_id_index",
    "ledger_commit",
)


def tree_commit(tree: Path) -> str | None:
    """The checked-out commit of `tree` (short), or None when it is not a git checkout."""
    found = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or None


def jobs_changed(tree: Path) -> bool:
    """Whether the jobs' code of `tree` (spark_jobs/) differs from its commit: the figures are then not that
    commit's alone."""
    found = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--", "spark_jobs"],
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(found.stdout.strip())


def uptime_text() -> str:
    found = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return found.stdout.strip()


def _full_build(options: BenchmarkOptions, pristine: Path, run_root: Path, tree: Path | None) -> dict:
    fresh_run_root(pristine, run_root)
    before = load_average()
    run = spark_submit(
        options.spark_run,
        "spark_jobs/silver_and_gold.py",
        [*FULL_BUILD_ARGS, "--lake-root", str(run_root)],
        tree=tree,
    )
    require_success(run, f"full build of {run_root} ({tree or 'this checkout'})")
    report = run_report(run_root, run)
    timing = spark_job_timing(run, "silver_and_gold")
    timing.update(
        load_average_before=before,
        steps=report["duration_per_step_seconds"],
        accepted=report["counts"].get("accepted"),
    )
    return timing


def compare_full_builds(options: BenchmarkOptions, write: Callable[[dict], None]) -> dict:
    """--repeat full builds of the --events lake by each side, alternating; medians and the ratio. The result so far
    is handed to `write` after every pair of runs (a long comparison cut short keeps its completed pairs); the
    first pair's v2 build is verified against the reference."""
    baseline = options.baseline_tree
    if not (baseline / "spark_jobs" / "silver_and_gold.py").is_file():
        raise SystemExit(
            f"--baseline-tree {baseline}: not a checkout of this repository (no spark_jobs/silver_and_gold.py)"
        )
    cards = max(1, options.events // options.events_per_card)
    pristine, generation = generated_lake(options, events=options.events, cards=cards, days=options.days)
    tag = lake_tag(options.events, cards, options.days, options.seed)
    sides = {options.baseline_label: baseline, options.label: None}
    files, size = bronze_size(pristine)
    started_uptime = uptime_text()
    log(f"{started_uptime}; comparing {options.label} (this checkout) with {options.baseline_label} ({baseline})")
    result = {
        "generated_at": None,
        "command": options.command,
        "machine": machine_info(),
        "versions": versions(),
        "uptime_before": started_uptime,
        "load_average": {"before": load_average(), "after": None},
        "lake": {
            "events": options.events,
            "cards": cards,
            "days": options.days,
            "seed": options.seed,
            "bronze_files": files,
            "bronze_bytes": size,
            **generation,
        },
        "spark_master": options.spark_master,
        "event_log": options.event_log,
        "repeat": 0,  # pairs of runs completed
        "repeat_asked": options.repeat,
        "sides": {
            options.label: {
                "tree": "this checkout",
                "git_commit": git_commit(),
                "jobs_changed": jobs_changed(REPO_ROOT),
            },
            options.baseline_label: {
                "tree": str(baseline),
                "git_commit": tree_commit(baseline),
                "jobs_changed": jobs_changed(baseline),
            },
        },
        "runs": {label: [] for label in sides},
        "limit": options.baseline_limit,
    }
    for attempt in range(1, options.repeat + 1):
        order = list(sides) if attempt % 2 else list(reversed(sides))
        for label in order:
            log(f"full build {options.events:,} events: {label}, run {attempt}/{options.repeat}")
            run_root = options.work_dir / "runs" / f"compare-{label}-{tag}"
            timing = _full_build(options, pristine, run_root, sides[label])
            timing["attempt"], timing["position_in_pair"] = attempt, order.index(label) + 1
            result["runs"][label].append(timing)
            log(f"  {timing['wall_seconds']} s without start-up, CPU {timing['cpu_seconds']} s")
        if attempt == 1:
            log(f"verifying the {options.label} build against the DuckDB reference")
            verification = verify_lake(options, options.work_dir / "runs" / f"compare-{options.label}-{tag}", "compare")
            result["verification"] = {
                key: value for key, value in verification.items() if key != "quarantine_by_reason"
            }
        result["repeat"] = attempt
        _summarize(result, options)
        write(result)
    return result


def _summarize(result: dict, options: BenchmarkOptions) -> None:
    """The medians, ratios, verdict and per-step medians of the runs so far, into `result`."""
    runs = result["runs"]
    medians = {label: summarize_runs(items, FULL_BUILD_KEYS) for label, items in runs.items()}
    this, base = medians[options.label], medians[options.baseline_label]

    def ratio(key: str) -> float | None:
        return round(this[key] / base[key], 3) if this[key] and base[key] else None

    result["generated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["load_average"]["after"] = load_average()
    result["median"] = medians
    result["ratio"] = {
        key: ratio(key) for key in ("wall_seconds", "wall_seconds_with_startup", "cpu_seconds", "peak_rss_bytes")
    }
    result["step_seconds_median"] = steps = _step_medians(runs)
    shared = {
        label: round(sum(steps[label].get(name) or 0.0 for name in CALIBRATION_STEPS), 3)
        for label in (options.label, options.baseline_label)
    }
    load_factor = shared[options.baseline_label] / shared[options.label] if shared[options.label] else None
    normalized = ratio("wall_seconds") * load_factor if ratio("wall_seconds") and load_factor else None
    result["load_calibration"] = {
        "steps": list(CALIBRATION_STEPS),
        "seconds": shared,
        "baseline_over_this": round(load_factor, 3) if load_factor else None,
    }
    result["ratio"]["wall_seconds_load_normalized"] = round(normalized, 3) if normalized else None
    # The verdict on the load-normalized ratio: the raw one compares runs that met different load.
    result["met"] = bool(normalized is not None and normalized <= result["limit"])


def _step_medians(runs: dict[str, list[dict]]) -> dict[str, dict[str, float | None]]:
    """Per side, each run-report step's median seconds: where the difference between the sides is."""
    result = {}
    for label, items in runs.items():
        names = sorted({name for item in items for name in item["steps"]})
        result[label] = summarize_runs([item["steps"] for item in items], tuple(names))
    return result


def run_comparison(options: BenchmarkOptions) -> int:
    """--baseline-tree: the comparison alone, into <output-dir>/full_build_vs_baseline.json."""
    path = options.output_dir / COMPARISON_FILE

    def write(document: dict) -> None:
        path.write_text(json.dumps(document, indent=2) + "\n")
        log(f"  {path}: {document['repeat']} pair(s), ratio {document['ratio']['wall_seconds']}")

    result = compare_full_builds(options, write)
    this, base = result["median"][options.label], result["median"][options.baseline_label]
    print(
        f"full build of {options.events:,} events, median of {options.repeat}: {options.label} "
        f"{this['wall_seconds']} s, {options.baseline_label} {base['wall_seconds']} s without start-up: "
        f"{result['ratio']['wall_seconds']}x, load-normalized {result['ratio']['wall_seconds_load_normalized']}x "
        f"(limit {options.baseline_limit}x: "
        f"{'met' if result['met'] else 'MISSED'}); verification {result['verification']['equal']}"
    )
    print(f"results: {path}")
    return 0
