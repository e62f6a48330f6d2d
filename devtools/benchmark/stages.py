"""The measured stages: full builds against the DuckDB reference, stream increments on H and 2H, the feature
store ingest and the online lookups."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from devtools.benchmark.lakes import (
    batch_lines,
    bronze_size,
    copy_lake,
    fresh_run_root,
    generated_lake,
    lake_tag,
    shift_ts,
    write_batch,
)
from devtools.benchmark.options import BenchmarkOptions
from devtools.benchmark.processes import (
    last_json_line,
    python_process,
    require_success,
    run_process,
    run_report,
    spark_job_timing,
    spark_submit,
)
from devtools.benchmark.stats import log, settle_load, summarize_runs
from devtools.repo import REPO_ROOT
from spark_jobs.lake import FEATURE_STORE_DEAD_LETTERS, FEATURE_STORE_WATERMARK

# A one-shot build of a whole lake: every bronze file in one ledger batch (the job's default, 2,000 files a
# batch, suits a backlog of stream runs; a second batch re-ranks against all of silver written by the first).
FULL_BUILD_ARGS = ["--mode", "full", "--max-batch-files", "100000", "--allow-development-token-key"]


FULL_BUILD_KEYS = (
    "wall_seconds",
    "wall_seconds_with_startup",
    "startup_seconds",
    "peak_rss_bytes",
    "peak_pss_bytes",
    "cpu_seconds",
)


def full_build_stage(options: BenchmarkOptions) -> dict:
    """For every size: Spark's full build and the DuckDB reference on the same lake, --repeat times each, then
    Spark's tables verified against the reference."""
    return {"sizes": [_full_build_size(options, events) for events in options.sizes]}


def _full_build_size(options: BenchmarkOptions, events: int) -> dict:
    cards = max(1, events // options.events_per_card)
    pristine, generation = generated_lake(options, events=events, cards=cards, days=options.days)
    tag = lake_tag(events, cards, options.days, options.seed)
    files, size = bronze_size(pristine)
    spark_runs, duckdb_runs = [], []
    run_root = options.work_dir / "runs" / f"full-{tag}"
    reference_dir = options.work_dir / "reference" / f"full-{tag}"
    report = None
    for attempt in range(1, options.repeat + 1):
        log(f"full build {events:,} events: Spark, run {attempt}/{options.repeat}")
        timing, report = _spark_full_build(options, pristine, run_root)
        spark_runs.append(timing)
        log(f"full build {events:,} events: DuckDB reference, run {attempt}/{options.repeat}")
        duckdb_runs.append(_reference_full_build(options, pristine, reference_dir))
    log(f"full build {events:,} events: verifying Spark's tables against the reference")
    verification = _verify_full_build(options, run_root, reference_dir, report, duckdb_runs[-1]["counts"])
    spark = {"runs": spark_runs, "median": summarize_runs(spark_runs, FULL_BUILD_KEYS)}
    duckdb = {"runs": duckdb_runs, "median": summarize_runs(duckdb_runs, FULL_BUILD_KEYS)}
    silver_events = report["counts"]["accepted"]
    for engine in (spark, duckdb):
        seconds = engine["median"]["wall_seconds"]
        engine["median"]["events_per_second"] = round(silver_events / seconds) if seconds else None
    spark_seconds, duckdb_seconds = spark["median"]["wall_seconds"], duckdb["median"]["wall_seconds"]
    return {
        "events": events,
        "cards": cards,
        "days": options.days,
        "lake": {"bronze_files": files, "bronze_bytes": size, **generation},
        "run_root": str(run_root),
        "spark": spark,
        "duckdb": duckdb,
        "ratio_spark_to_duckdb": round(spark_seconds / duckdb_seconds, 2) if spark_seconds else None,
        "ratio_spark_with_startup_to_duckdb": round(spark["median"]["wall_seconds_with_startup"] / duckdb_seconds, 2),
        "verification": verification,
    }


def _spark_full_build(options: BenchmarkOptions, pristine: Path, run_root: Path) -> tuple[dict, dict]:
    """`--mode full` on a fresh run folder: the timing (with the run report's steps) and the run report."""
    fresh_run_root(pristine, run_root)
    load = settle_load(options.quiet_load, options.quiet_wait)
    run = spark_submit(
        options.spark_run, "spark_jobs/silver_and_gold.py", [*FULL_BUILD_ARGS, "--lake-root", str(run_root)]
    )
    require_success(run, f"spark full build of {run_root}")
    report = run_report(run_root, run)
    timing = spark_job_timing(run, "silver_and_gold")
    timing["steps"] = report["duration_per_step_seconds"]
    timing["report_duration_seconds"] = report["duration_seconds"]
    timing.update(load)
    log(
        f"  spark {timing['wall_seconds']} s without start-up, {timing['wall_seconds_with_startup']} s with; "
        f"peak RSS {timing['peak_rss_bytes'] / 1e9:.2f} GB"
    )
    return timing, report


def build_reference(options: BenchmarkOptions, lake: Path, reference_dir: Path, *, what: str):
    """The DuckDB reference's tables for `lake`'s bronze, built afresh into `reference_dir`; its process run."""
    if reference_dir.exists():
        shutil.rmtree(reference_dir)
    run = python_process(
        options,
        "scripts/benchmark_reference.py",
        ["build", "--lake-root", str(lake), "--output-dir", str(reference_dir)],
    )
    require_success(run, what)
    return run


def _reference_full_build(options: BenchmarkOptions, pristine: Path, reference_dir: Path) -> dict:
    load = settle_load(options.quiet_load, options.quiet_wait)
    reference = build_reference(options, pristine, reference_dir, what="DuckDB reference build")
    document = last_json_line(reference)
    log(f"  duckdb {document['seconds']} s, peak RSS {reference.peak_rss_bytes / 1e9:.2f} GB")
    return {
        "wall_seconds": document["seconds"],
        "wall_seconds_with_startup": round(reference.wall_seconds, 3),
        "peak_rss_bytes": reference.peak_rss_bytes,
        "peak_pss_bytes": reference.peak_pss_bytes,
        "cpu_seconds": round(reference.cpu_seconds, 3),
        "phases": document["phases"],
        "counts": document["counts"],
        **load,
    }


def _verify_full_build(
    options: BenchmarkOptions, run_root: Path, reference_dir: Path, report: dict, reference_counts: dict
) -> dict:
    """Spark's tables against the reference's, and the run report's counts against the reference's."""
    verification_run = python_process(
        options,
        "scripts/benchmark_reference.py",
        ["verify", "--lake-root", str(run_root), "--output-dir", str(reference_dir)],
    )
    require_success(verification_run, "verification")
    verification = last_json_line(verification_run)
    verification["spark_counts"] = {
        key: value for key, value in report["counts"].items() if not key.startswith("gold_bytes")
    }
    verification["reference_counts"] = reference_counts
    verification["counts_equal"] = all(
        report["counts"].get(key) == reference_counts.get(key)
        for key in ("records_read", "blank_lines", "accepted", "duplicates", "quarantined", "quarantined_by_reason")
    )
    verification["equal"] = bool(verification["equal"] and verification["counts_equal"])
    log(f"  verification: {'equal' if verification['equal'] else 'DIFFERENT'}")
    return verification


STREAM_KEYS = (
    "wall_seconds",
    "wall_seconds_with_startup",
    "startup_seconds",
    "peak_rss_bytes",
    "peak_pss_bytes",
    "cpu_seconds",
    "files",
    "bytes_scanned",
    "gold_files_scanned",
    "gold_bytes_scanned",
    "dedupe_silver_files_read",
    "dedupe_silver_bytes_read",
)


def stream_stage(options: BenchmarkOptions, full_build: dict | None) -> dict:
    """Build (or reuse) H and 2H, then time the same batch on each, alternating H and 2H run by run so that
    other load on the machine falls on both alike."""
    history = options.stream_history
    cards = max(1, history // options.events_per_card)
    daily_rate = history / options.days
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    histories: dict[str, dict] = {}
    base_lines = None
    for label, factor in (("H", 1), ("2H", 2)):
        events, days = history * factor, options.days * factor
        pristine, generation = generated_lake(options, events=events, cards=cards, days=days)
        tag = lake_tag(events, cards, days, options.seed)
        history_end = start + dt.timedelta(days=days)
        run_root, history_timing = _history(
            options, pristine, tag, full_build, label=label, events=events, days=days, cards=cards
        )
        snapshot = run_root.with_name(run_root.name + ".history")
        copy_lake(run_root, snapshot)
        if base_lines is None:
            base_lines = batch_lines(options, cards=cards, history_end=history_end, daily_rate=daily_rate)
            lines = base_lines
        else:  # the same batch, relative to the later end of history
            shift = int((history_end - start).total_seconds()) - options.days * 86_400
            lines = [shift_ts(line, shift) for line in base_lines]
        histories[label] = {
            "events": events,
            "days": days,
            "cards": cards,
            "lake": {"bronze_files": bronze_size(pristine)[0], **generation},
            "run_root": str(run_root),
            "history_build": history_timing,
            "batch_events": len(lines),
            "runs": [],
            "_snapshot": snapshot,
            "_lines": lines,
            "_history_end": history_end,
        }
    repeat = options.stream_repeat or options.repeat
    _alternate_stream_runs(options, histories, repeat)
    for item in histories.values():
        for private in ("_snapshot", "_lines", "_history_end"):
            item.pop(private)
        item["median"] = summarize_runs(item["runs"], STREAM_KEYS)
    h, h2 = histories["H"]["median"], histories["2H"]["median"]
    log("stream: verifying H's gold after the increment against the reference")
    verification = verify_lake(options, Path(histories["H"]["run_root"]), "stream-H")
    return {
        "batch": {
            "events": options.stream_batch,
            "late_share": options.stream_late_share,
            "late_max_hours": options.stream_late_hours,
        },
        "repeat": repeat,
        "H": histories["H"],
        "2H": histories["2H"],
        "ratio_2h_over_h": round(h2["wall_seconds"] / h["wall_seconds"], 3) if h["wall_seconds"] else None,
        "ratio_2h_over_h_with_startup": round(h2["wall_seconds_with_startup"] / h["wall_seconds_with_startup"], 3),
        "ratio_2h_over_h_cpu": round(h2["cpu_seconds"] / h["cpu_seconds"], 3) if h["cpu_seconds"] else None,
        "verification_after_increment": verification,
    }


def _history(
    options: BenchmarkOptions,
    pristine: Path,
    tag: str,
    full_build: dict | None,
    *,
    label: str,
    events: int,
    days: int,
    cards: int,
) -> tuple[Path, dict]:
    """The run folder holding a history and the timing of its build: the full build of the same lake when the
    full stage ran one (in place: the ledger and silver hold absolute file URIs, so a run folder never moves),
    else a `--mode full` build of its own."""
    built = next(
        (size for size in (full_build or {}).get("sizes", []) if Path(size["run_root"]).name == f"full-{tag}"),
        None,
    )
    if built is not None:
        log(f"stream {label}: history = the full build of {events:,} events")
        return Path(built["run_root"]), built["spark"]["runs"][-1]
    log(f"stream {label}: history build ({events:,} events, {days} days, {cards:,} cards)")
    run_root = options.work_dir / "runs" / f"stream-{tag}"
    fresh_run_root(pristine, run_root)
    build = spark_submit(
        options.spark_run, "spark_jobs/silver_and_gold.py", [*FULL_BUILD_ARGS, "--lake-root", str(run_root)]
    )
    require_success(build, f"history build of {run_root}")
    return run_root, spark_job_timing(build, "silver_and_gold")


def _alternate_stream_runs(options: BenchmarkOptions, histories: dict[str, dict], repeat: int) -> None:
    """`repeat` stream runs of the batch on each history, H and 2H alternating; each from the history as it was."""
    for attempt in range(1, repeat + 1):
        order = ("H", "2H") if attempt % 2 else ("2H", "H")
        for label in order:
            item = histories[label]
            run_root = Path(item["run_root"])
            if item["runs"]:  # back to the history as it was before the batch
                copy_lake(item["_snapshot"], run_root)
            write_batch(run_root, item["_lines"], item["_history_end"])
            log(f"stream {label}: incremental run {attempt}/{repeat} ({len(item['_lines']):,} new events)")
            item["runs"].append(stream_run(options, run_root))


def stream_run(options: BenchmarkOptions, run_root: Path) -> dict:
    load = settle_load(options.quiet_load, options.quiet_wait)
    run = spark_submit(
        options.spark_run,
        "spark_jobs/silver_and_gold.py",
        ["--mode", "stream", "--allow-development-token-key", "--lake-root", str(run_root)],
    )
    require_success(run, f"stream run on {run_root}")
    report = run_report(run_root, run)
    timing = spark_job_timing(run, "silver_and_gold")
    counts = report["counts"]
    gold = report.get("gold", [{}])[0]
    timing.update(
        files=counts.get("files"),
        bytes_scanned=counts.get("bytes_scanned"),
        gold_files_scanned=counts.get("gold_files_scanned"),
        gold_bytes_scanned=counts.get("gold_bytes_scanned"),
        # the dedupe's silver read and its event-id index lookups: bounded by the batch, not the history
        dedupe_silver_files_read=counts.get("dedupe_silver_files_read"),
        dedupe_silver_bytes_read=counts.get("dedupe_silver_bytes_read"),
        event_id_index_lookups=counts.get("event_id_index_lookups"),
        event_id_index_hits=counts.get("event_id_index_hits"),
        event_id_index_writes=counts.get("event_id_index_writes"),
        accepted=counts.get("accepted"),
        gold_rows_recomputed=counts.get("gold_rows_recomputed"),
        gold_rows_inserted=counts.get("gold_rows_inserted"),
        gold_rows_updated=counts.get("gold_rows_updated"),
        affected_cards=gold.get("affected_cards"),
        report_duration_seconds=report["duration_seconds"],
        steps=report["duration_per_step_seconds"],
        **load,
    )
    log(
        f"  {timing['wall_seconds']} s without start-up, CPU {timing['cpu_seconds']} s; silver "
        f"{timing['bytes_scanned']:,} B in {timing['files']} files, gold {timing['gold_bytes_scanned']:,} B in "
        f"{timing['gold_files_scanned']} files"
    )
    return timing


def verify_lake(options: BenchmarkOptions, run_root: Path, name: str) -> dict:
    """The reference over a run root's bronze, then Spark's tables there against it."""
    reference_dir = options.work_dir / "reference" / name
    build_reference(options, run_root, reference_dir, what="reference build")
    check = python_process(
        options,
        "scripts/benchmark_reference.py",
        ["verify", "--lake-root", str(run_root), "--output-dir", str(reference_dir)],
    )
    require_success(check, "verification")
    result = last_json_line(check)
    log(f"  verification: {'equal' if result['equal'] else 'DIFFERENT'}")
    return result


def ingest_stage(options: BenchmarkOptions, lake: Path) -> dict:
    """A full (initial) ingest of every gold row of `lake` into a fresh local feature store."""
    # The watermark is a pointer plus its create-only commits (lake.state_commit_log): a reset removes both.
    watermark_commits = FEATURE_STORE_WATERMARK.removesuffix(".json") + ".commits"
    for leftover in ("feature_store", FEATURE_STORE_WATERMARK, watermark_commits, FEATURE_STORE_DEAD_LETTERS):
        path = lake / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    register = python_process(
        options, "feature_store/register_feature_groups.py", ["--backend", "local", "--lake-root", str(lake)]
    )
    require_success(register, "feature group registration")
    log(f"feature store: full ingest of {lake}")
    run = spark_submit(
        options.spark_run, "feature_store/ingest_features.py", ["--backend", "local", "--lake-root", str(lake)]
    )
    require_success(run, "feature store ingest")
    report = run_report(lake, run)
    timing = spark_job_timing(run, "ingest_features")
    writes = report["feature_store"]["writes"]
    per_call = {int(size): count for size, count in writes["entries_per_call"].items()}
    calls = sum(per_call.values())
    entries = sum(size * count for size, count in per_call.items())
    write_seconds = report["duration_per_step_seconds"].get("write")
    result = {
        "lake": str(lake),
        "mode": report["feature_store"]["mode"],
        "records": writes["records"],
        "online_records": writes["online_records"],
        "batch_write_calls": calls,
        "entries_per_call_histogram": writes["entries_per_call"],
        "records_per_batch_write": round(entries / calls, 3) if calls else None,
        "calls": writes["calls"],
        "write_step_seconds": write_seconds,
        "rows_per_second": round(writes["records"] / write_seconds) if write_seconds else None,
        "dead_letters": report["counts"].get("dead_letters", 0),
        **timing,
    }
    log(
        f"  {result['records']:,} records in {calls:,} BatchWriteRecord calls "
        f"({result['records_per_batch_write']} a call), {result['rows_per_second']} rows/s"
    )
    return result


LOOKUP_SCRIPT = r"""
import json, random, sqlite3, sys, time
from feature_store.definitions import feature_group_name
from feature_store.get_features import OnlineFeatures
from spark_jobs.lake import local_online_store_path

lake, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
path = local_online_store_path(lake)
with sqlite3.connect(path) as connection:  # the card group's records (the store holds the merchant group's too)
    cards = [row[0] for row in connection.execute(
        "SELECT record_id FROM online_records WHERE feature_group = ? ORDER BY record_id", (feature_group_name(),))]
rng = random.Random(seed)
keys = [rng.choice(cards) for _ in range(count)]
samples = []
with OnlineFeatures.local(lake) as reader:
    for card_id in keys[: min(200, count)]:  # warm-up: imports, SQLite page cache
        reader.get(card_id)
    for card_id in keys:
        began = time.perf_counter_ns()
        found = reader.get(card_id)
        samples.append(time.perf_counter_ns() - began)
        if found is None:
            raise SystemExit(f"card {card_id} not found")
samples.sort()
def pick(q):
    return samples[min(len(samples) - 1, int(q * len(samples)))] / 1e6
print(json.dumps({"lookups": count, "cards_online": len(cards), "p50_ms": round(pick(0.50), 4),
                  "p90_ms": round(pick(0.90), 4), "p99_ms": round(pick(0.99), 4), "max_ms": round(samples[-1] / 1e6, 4),
                  "mean_ms": round(sum(samples) / len(samples) / 1e6, 4)}))
"""


def lookup_stage(options: BenchmarkOptions, lake: Path) -> dict:
    log(f"online lookup: {options.lookups:,} GetRecord calls on {lake}/feature_store/online.db")
    runs = []
    for _ in range(options.repeat):
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
        run = run_process(
            [sys.executable, "-c", LOOKUP_SCRIPT, str(lake), str(options.lookups), str(options.seed)],
            env=environment,
            sample_seconds=options.sample_seconds,
        )
        require_success(run, "online lookups")
        runs.append(last_json_line(run))
    result = {"runs": runs, "median": summarize_runs(runs, ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"))}
    result["lookups"] = options.lookups
    result["cards_online"] = runs[-1]["cards_online"]
    log(f"  p50 {result['median']['p50_ms']} ms, p99 {result['median']['p99_ms']} ms")
    return result
