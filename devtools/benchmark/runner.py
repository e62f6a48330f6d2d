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

Writes `<output-dir>/results.json` (with the `targets` list), `<output-dir>/README.md` (the tables between
its results markers; text outside them is kept) and `<output-dir>/scaling.png`, and prints a summary.
Every figure is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from devtools.repo import REPO_ROOT, SPARK_CONF_DIR

BRONZE_PREFIX = "bronze/streaming/card_authorization"
RESULTS_SCHEMA_VERSION = 1
STAGES = ("full", "stream", "ingest", "lookup")
README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000

TARGETS = (
    # name, limit, unit, comparison
    ("full_build_5m_vs_duckdb", 3.0, "x DuckDB", "<="),
    ("full_build_5m_peak_rss_gb", 6.0, "GB", "<="),
    ("stream_increment_2h_over_h", 1.3, "x", "<="),
    ("records_per_batch_write", 24.0, "records/call", ">="),
    ("online_lookup_p99_ms", 5.0, "ms", "<="),
)
HEADLINE_EVENTS = 5_000_000


# ------------------------------------------------------------------------------------------------ options
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmark.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
        "--output-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks", help="results.json, README.md, PNGs"
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
        "--event-log",
        action="store_true",
        help="write a Spark event log per Spark run (under --work-dir/event-logs) and record each run's longest "
        "SQL executions and its job/stage/task counts in results.json (hot spots)",
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=0.1, help="RSS sampling interval of the process trees (default 0.1)"
    )
    parser.add_argument(
        "--no-docs",
        action="store_true",
        help="write results.json only (no README.md, no PNG): for smoke tests",
    )
    args = parser.parse_args(argv)
    args.skip = {item.strip() for item in args.skip.split(",") if item.strip()}
    unknown = args.skip - set(STAGES)
    if unknown:
        parser.error(f"--skip: unknown stage(s) {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.stream_batch < 10:
        parser.error("--stream-batch must be >= 10")
    if not 0 <= args.stream_late_share <= 1:
        parser.error("--stream-late-share must be within [0, 1]")
    if args.stream_late_hours < 2:
        parser.error("--stream-late-hours must be >= 2 (late events arrive at least 2 h after their ts)")
    args.sizes = sorted(set((args.sizes or [min(250_000, args.events)]) + [args.events]))
    args.work_dir = args.work_dir.resolve()
    args.output_dir = args.output_dir.resolve()
    return args


# ------------------------------------------------------------------------------------------------ processes
@dataclass
class ProcessRun:
    """One engine process: wall time, peak RSS of its tree, CPU time, output lines with their arrival times."""

    command: list[str]
    returncode: int = 0
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_pss_bytes: int = 0
    cpu_seconds: float = 0.0
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, stdout line)
    stderr_tail: list[str] = field(default_factory=list)
    hot_spots: dict | None = None  # from the Spark event log (--event-log)

    def first_line_time(self, pattern: str) -> float | None:
        compiled = re.compile(pattern)
        return next((at for at, text in self.lines if compiled.search(text)), None)

    def stdout(self) -> str:
        return "\n".join(text for _, text in self.lines)


def tree_memory(process) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and all its descendants. RSS counts pages shared by forked Python
    workers once per process (an upper bound, the figure the targets use); PSS splits them."""
    import psutil

    rss = pss = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for member in members:
        try:
            info = member.memory_full_info()
        except psutil.AccessDenied:
            try:
                info = member.memory_info()
            except psutil.Error:
                continue
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def run_process(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT, sample_seconds: float = 0.1
) -> ProcessRun:
    """Run `command`, sampling the RSS of its process tree, timestamping each stdout line."""
    import psutil

    run = ProcessRun(command=command)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    watched = psutil.Process(process.pid)

    def read_stdout() -> None:
        for line in process.stdout:
            run.lines.append((time.perf_counter() - started, line.rstrip("\n")))

    def read_stderr() -> None:
        for line in process.stderr:
            run.stderr_tail.append(line.rstrip("\n"))
            del run.stderr_tail[:-60]

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    while process.poll() is None:
        rss, pss = tree_memory(watched)
        run.peak_rss_bytes = max(run.peak_rss_bytes, rss)
        run.peak_pss_bytes = max(run.peak_pss_bytes, pss)
        time.sleep(sample_seconds)
    run.wall_seconds = time.perf_counter() - started
    for reader in readers:
        reader.join(timeout=10)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run.returncode = process.returncode
    return run


def spark_environment() -> dict[str, str]:
    if not (SPARK_CONF_DIR / "spark-defaults.conf").exists():
        raise SystemExit(f"{SPARK_CONF_DIR / 'spark-defaults.conf'} is missing: run `make setup`")
    environment = dict(os.environ)
    python_path = [str(REPO_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    environment.update(
        SPARK_CONF_DIR=str(SPARK_CONF_DIR),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join(python_path),
    )
    return environment


def spark_submit(args: argparse.Namespace, script: str, arguments: list[str]) -> ProcessRun:
    launcher = Path(sys.executable).parent / "spark-submit"
    conf = [item for pair in args.spark_conf for item in ("--conf", pair)]
    event_log = None
    if args.event_log:
        event_log = args.work_dir / "event-logs" / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        event_log.mkdir(parents=True)
        conf += ["--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={event_log}"]
    command = [str(launcher), "--master", args.spark_master, *conf, str(REPO_ROOT / script), *arguments]
    run = run_process(command, env=spark_environment(), sample_seconds=args.sample_seconds)
    if event_log is not None:
        run.hot_spots = event_log_hot_spots(event_log)
    return run


def event_log_hot_spots(folder: Path, top: int = 12) -> dict | None:
    """The longest SQL executions of a Spark event log (description → seconds) and job/stage/task counts."""
    logs = [path for path in folder.iterdir() if path.is_file()]
    if not logs:
        return None
    executions: dict[int, dict] = {}
    jobs = stages = tasks = 0
    stage_seconds = 0.0
    with logs[0].open() as stream:
        for text in stream:
            event = json.loads(text)
            kind = event["Event"]
            if kind == "SparkListenerJobStart":
                jobs += 1
            elif kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                stages += 1
                tasks += info["Number of Tasks"]
                stage_seconds += (info.get("Completion Time", 0) - info.get("Submission Time", 0)) / 1000
            elif kind.endswith("SparkListenerSQLExecutionStart"):
                executions[event["executionId"]] = {"what": event["description"][:120], "start": event["time"]}
            elif kind.endswith("SparkListenerSQLExecutionEnd") and event["executionId"] in executions:
                executions[event["executionId"]]["end"] = event["time"]
    timed = [
        {"what": item["what"], "seconds": round((item["end"] - item["start"]) / 1000, 2)}
        for item in executions.values()
        if "end" in item
    ]
    timed.sort(key=lambda item: -item["seconds"])
    return {
        "event_log": str(logs[0]),
        "jobs": jobs,
        "stages": stages,
        "tasks": tasks,
        "stage_seconds": round(stage_seconds, 1),
        "sql_executions": len(timed),
        "sql_seconds": round(sum(item["seconds"] for item in timed), 1),
        "longest_sql_executions": timed[:top],
    }


def python_process(args: argparse.Namespace, script: str, arguments: list[str]) -> ProcessRun:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    command = [sys.executable, str(REPO_ROOT / script), *arguments]
    return run_process(command, env=environment, sample_seconds=args.sample_seconds)


def require_success(run: ProcessRun, what: str) -> None:
    if run.returncode != 0:
        tail = "\n".join([text for _, text in run.lines[-20:]] + run.stderr_tail[-30:])
        raise RuntimeError(f"{what} failed with exit code {run.returncode}:\n{tail}")


def last_json_line(run: ProcessRun) -> dict:
    for _, text in reversed(run.lines):
        if text.startswith("{") and not text.startswith('{"_aws"'):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                continue
    raise RuntimeError(f"no JSON result in the output of {' '.join(run.command)}")


def run_report(lake: Path, run: ProcessRun) -> dict:
    """The job's `_runs/<run_id>.json`, found through the summary line's `report=` URI."""
    from spark_jobs.run_report import find_summary

    summary = find_summary(run.stdout())
    if summary is None:
        raise RuntimeError(f"no run report named in the output of {' '.join(run.command)}")
    path = Path(summary.report_uri.removeprefix("file://"))
    return json.loads(path.read_text())


def spark_job_timing(run: ProcessRun, job: str) -> dict:
    """Wall time with start-up, and without: from the job's first step line to its summary line."""
    first_step = run.first_line_time(r"^\[[a-z]+-\d{8}T\d{6}Z-[0-9a-f]{8}\] \w+ \.\.\.$")
    finished = run.first_line_time(rf"^{job} \w+ (succeeded|dead_lettered|failed): ")
    timing = {
        "wall_seconds_with_startup": round(run.wall_seconds, 3),
        "startup_seconds": round(first_step, 3) if first_step is not None else None,
        "wall_seconds": round(finished - first_step, 3) if None not in (first_step, finished) else None,
        "peak_rss_bytes": run.peak_rss_bytes,
        "peak_pss_bytes": run.peak_pss_bytes,
        "cpu_seconds": round(run.cpu_seconds, 3),
    }
    if run.hot_spots is not None:
        timing["hot_spots"] = run.hot_spots
    return timing


# ------------------------------------------------------------------------------------------------ lakes
def lake_tag(events: int, cards: int, days: int, seed: int) -> str:
    return f"e{events}-c{cards}-d{days}-s{seed}"


def generated_lake(args: argparse.Namespace, *, events: int, cards: int, days: int) -> tuple[Path, dict]:
    """A pristine generated lake (bronze only), generated once per arguments and reused."""
    from devtools.generator import GeneratorConfig, generate_lake, load_manifest

    root = args.work_dir / "lakes" / lake_tag(events, cards, days, args.seed)
    config = GeneratorConfig(events=events, cards=cards, days=days, seed=args.seed, lake_root=root, overwrite=True)
    manifest_path = root / "_generator" / "manifest.json"
    if manifest_path.exists():
        manifest = load_manifest(root)
        if manifest["arguments"] == config.arguments() and (root / "_generator" / "complete").exists():
            return root, {"generated_seconds": None, "reused": True, "counts": _lake_counts(manifest)}
    started = time.perf_counter()
    summary = generate_lake(config)
    (root / "_generator" / "complete").write_text("ok\n")
    return root, {
        "generated_seconds": round(time.perf_counter() - started, 3),
        "reused": False,
        "counts": _lake_counts(load_manifest(root)) | {"generator_seconds": summary.seconds},
    }


def _lake_counts(manifest: dict) -> dict:
    counts = manifest["counts"]
    return {
        name: counts[name]
        for name in ("events", "cards_with_events", "bronze_files", "bronze_bytes", "lines", "records", "late_events")
        if name in counts
    }


def fresh_run_root(pristine: Path, run_root: Path) -> Path:
    """An empty run folder whose bronze is hard-linked from the pristine lake (no copy, same bytes)."""
    if run_root.exists():
        shutil.rmtree(run_root)
    run_root.mkdir(parents=True)
    shutil.copytree(pristine / "bronze", run_root / "bronze", copy_function=os.link)
    return run_root


def copy_lake(source: Path, target: Path) -> None:
    """A copy of a run folder at another path: bronze hard-linked (never written), the rest copied."""
    if target.exists():
        shutil.rmtree(target)
    bronze = (source / "bronze").resolve()

    def copy(src: str, dst: str) -> None:
        if Path(src).resolve().is_relative_to(bronze):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=copy)


def bronze_size(root: Path) -> tuple[int, int]:
    files = [path for path in (root / BRONZE_PREFIX).rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


# ------------------------------------------------------------------------------------------------ stats
def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


def summarize_runs(runs: list[dict], keys: tuple[str, ...]) -> dict:
    return {key: median([run.get(key) for run in runs]) for key in keys}


def machine_info() -> dict:
    import psutil

    info: dict[str, Any] = {
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def versions() -> dict:
    from importlib import metadata

    found = {}
    for package in ("pyspark", "delta-spark", "duckdb", "pyarrow", "deltalake", "psutil", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
        found["java"] = (java.stderr or java.stdout).splitlines()[0] if (java.stderr or java.stdout) else None
    except (OSError, subprocess.SubprocessError):
        found["java"] = None
    return found


def spark_settings(args: argparse.Namespace) -> dict:
    from spark_jobs.session import LOCAL_DEFAULTS, RUNTIME_DEFAULTS

    defaults_file = SPARK_CONF_DIR / "spark-defaults.conf"
    jvm = {}
    if defaults_file.exists():
        for line in defaults_file.read_text().splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0].startswith("spark.") and parts[0] != "spark.jars":
                jvm[parts[0]] = parts[1].strip()
    return {
        "master": args.spark_master,
        "spark_defaults_conf": jvm,
        "runtime_defaults": RUNTIME_DEFAULTS,
        "local_defaults": LOCAL_DEFAULTS,
        "extra_conf": args.spark_conf,
    }


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------ full build
# A one-shot build of a whole lake: every bronze file in one ledger batch (the job's default, 2,000 files a
# batch, suits a backlog of stream runs; a second batch re-ranks against all of silver written by the first).
FULL_BUILD_ARGS = ["--mode", "full", "--max-batch-files", "100000"]


def full_build_stage(args: argparse.Namespace) -> dict:
    sizes = []
    for events in args.sizes:
        cards = max(1, events // args.events_per_card)
        pristine, generation = generated_lake(args, events=events, cards=cards, days=args.days)
        tag = lake_tag(events, cards, args.days, args.seed)
        files, size = bronze_size(pristine)
        spark_runs, duckdb_runs = [], []
        run_root = args.work_dir / "runs" / f"full-{tag}"
        reference_dir = args.work_dir / "reference" / f"full-{tag}"
        report = None
        for attempt in range(1, args.repeat + 1):
            log(f"full build {events:,} events: Spark, run {attempt}/{args.repeat}")
            fresh_run_root(pristine, run_root)
            run = spark_submit(args, "spark_jobs/silver_and_gold.py", [*FULL_BUILD_ARGS, "--lake-root", str(run_root)])
            require_success(run, f"spark full build of {run_root}")
            report = run_report(run_root, run)
            timing = spark_job_timing(run, "silver_and_gold")
            timing["steps"] = report["duration_per_step_seconds"]
            timing["report_duration_seconds"] = report["duration_seconds"]
            spark_runs.append(timing)
            log(
                f"  spark {timing['wall_seconds']} s without start-up, {timing['wall_seconds_with_startup']} s with; "
                f"peak RSS {timing['peak_rss_bytes'] / 1e9:.2f} GB"
            )
            log(f"full build {events:,} events: DuckDB reference, run {attempt}/{args.repeat}")
            if reference_dir.exists():
                shutil.rmtree(reference_dir)
            reference = python_process(
                args,
                "scripts/benchmark_reference.py",
                ["build", "--lake-root", str(pristine), "--output-dir", str(reference_dir)],
            )
            require_success(reference, "DuckDB reference build")
            document = last_json_line(reference)
            duckdb_runs.append(
                {
                    "wall_seconds": document["seconds"],
                    "wall_seconds_with_startup": round(reference.wall_seconds, 3),
                    "peak_rss_bytes": reference.peak_rss_bytes,
                    "peak_pss_bytes": reference.peak_pss_bytes,
                    "cpu_seconds": round(reference.cpu_seconds, 3),
                    "phases": document["phases"],
                    "counts": document["counts"],
                }
            )
            log(f"  duckdb {document['seconds']} s, peak RSS {reference.peak_rss_bytes / 1e9:.2f} GB")
        log(f"full build {events:,} events: verifying Spark's tables against the reference")
        verification_run = python_process(
            args,
            "scripts/benchmark_reference.py",
            ["verify", "--lake-root", str(run_root), "--output-dir", str(reference_dir)],
        )
        require_success(verification_run, "verification")
        verification = last_json_line(verification_run)
        verification["spark_counts"] = {
            key: value for key, value in report["counts"].items() if not key.startswith("gold_bytes")
        }
        verification["reference_counts"] = duckdb_runs[-1]["counts"]
        verification["counts_equal"] = all(
            report["counts"].get(key) == duckdb_runs[-1]["counts"].get(key)
            for key in ("records_read", "blank_lines", "accepted", "duplicates", "quarantined", "quarantined_by_reason")
        )
        verification["equal"] = bool(verification["equal"] and verification["counts_equal"])
        log(f"  verification: {'equal' if verification['equal'] else 'DIFFERENT'}")
        keys = (
            "wall_seconds",
            "wall_seconds_with_startup",
            "startup_seconds",
            "peak_rss_bytes",
            "peak_pss_bytes",
            "cpu_seconds",
        )
        spark = {"runs": spark_runs, "median": summarize_runs(spark_runs, keys)}
        duckdb = {"runs": duckdb_runs, "median": summarize_runs(duckdb_runs, keys)}
        silver_events = report["counts"]["accepted"]
        for engine in (spark, duckdb):
            seconds = engine["median"]["wall_seconds"]
            engine["median"]["events_per_second"] = round(silver_events / seconds) if seconds else None
        spark_seconds, duckdb_seconds = spark["median"]["wall_seconds"], duckdb["median"]["wall_seconds"]
        sizes.append(
            {
                "events": events,
                "cards": cards,
                "days": args.days,
                "lake": {"bronze_files": files, "bronze_bytes": size, **generation},
                "run_root": str(run_root),
                "spark": spark,
                "duckdb": duckdb,
                "ratio_spark_to_duckdb": round(spark_seconds / duckdb_seconds, 2) if spark_seconds else None,
                "ratio_spark_with_startup_to_duckdb": round(
                    spark["median"]["wall_seconds_with_startup"] / duckdb_seconds, 2
                ),
                "verification": verification,
            }
        )
    return {"sizes": sizes}


# ------------------------------------------------------------------------------------------------ stream
def batch_lines(args: argparse.Namespace, *, cards: int, history_end: dt.datetime, daily_rate: float) -> list[str]:
    """The new batch's bronze lines: events of the history's cards (the same world: same seed and cards),
    (1 - late share) of them the newest events before `history_end`, the rest late (2 h to
    --stream-late-hours before it); fresh event ids, so nothing collides with the history."""
    import numpy as np

    from devtools.generator import GeneratorConfig, generate_lake

    late_days = max(1, int(np.ceil(args.stream_late_hours / 24)))
    events = max(args.stream_batch * 2, int(daily_rate * late_days))
    start = (history_end - dt.timedelta(days=late_days)).date()
    root = args.work_dir / "lakes" / f"batch-{lake_tag(events, cards, late_days, args.seed)}-{start.isoformat()}"
    config = GeneratorConfig(
        events=events,
        cards=cards,
        days=late_days,
        start=start,
        seed=args.seed,
        lake_root=root,
        bad_rate=0.0,
        dup_rate=0.0,
        conflict_rate=0.0,
        late_rate=0.0,
        overwrite=True,
    )
    generate_lake(config)
    records = []
    for path in sorted((root / BRONZE_PREFIX).rglob("*")):
        if path.is_file() and not path.name.startswith((".", "_")):
            for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
                if line.strip():
                    ts = Decimal(json.loads(line, parse_float=Decimal)["ts"])
                    records.append((ts, line))
    records.sort(key=lambda item: item[0])
    end_s = Decimal(int(history_end.timestamp()))
    late_count = round(args.stream_batch * args.stream_late_share)
    on_time = records[-(args.stream_batch - late_count) :]
    late_low, late_high = end_s - Decimal(args.stream_late_hours * 3600), end_s - 2 * 3600
    rng = np.random.default_rng([args.seed, 1000])
    late_pool = [item for item in records[: -len(on_time)] if late_low <= item[0] <= late_high]
    late = [late_pool[index] for index in sorted(rng.choice(len(late_pool), size=late_count, replace=False))]
    chosen = late + on_time
    ids = rng.bytes(16 * len(chosen))
    lines = []
    for index, (_, line) in enumerate(chosen):
        new_id = ids[16 * index : 16 * (index + 1)].hex()
        lines.append(re.sub(r'"event_id": "[0-9a-f]{32}"', f'"event_id": "{new_id}"', line, count=1))
    shutil.rmtree(root)
    return lines


def shift_ts(line: str, seconds: int) -> str:
    """The line with its `ts` moved by whole seconds, written with the same decimal places."""
    match = re.search(r'"ts": ([0-9.]+)', line)
    shifted = Decimal(match.group(1)) + seconds
    return line[: match.start(1)] + str(shifted) + line[match.end(1) :]


def write_batch(run_root: Path, lines: list[str], arrival: dt.datetime) -> list[Path]:
    """The batch as two gzipped Firehose-like files in the arrival hour's folder."""
    folder = run_root / BRONZE_PREFIX / arrival.strftime("ingest_dt=%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    half = (len(lines) + 1) // 2
    written = []
    for index, part in enumerate((lines[:half], lines[half:])):
        moment = arrival + dt.timedelta(minutes=5 * index)
        name = f"card-authorization-stream-1-{moment.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}.gz"
        path = folder / name
        path.write_bytes(gzip.compress(("\n".join(part) + "\n").encode("utf-8"), mtime=0))
        written.append(path)
    return written


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
)


def stream_stage(args: argparse.Namespace, full_build: dict | None) -> dict:
    """Build (or reuse) H and 2H, then time the same batch on each, alternating H and 2H run by run so that
    other load on the machine falls on both alike."""
    history = args.stream_history
    cards = max(1, history // args.events_per_card)
    daily_rate = history / args.days
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    histories: dict[str, dict] = {}
    base_lines = None
    for label, factor in (("H", 1), ("2H", 2)):
        events, days = history * factor, args.days * factor
        pristine, generation = generated_lake(args, events=events, cards=cards, days=days)
        tag = lake_tag(events, cards, days, args.seed)
        run_root = args.work_dir / "runs" / f"stream-{tag}"
        history_end = start + dt.timedelta(days=days)
        built = next(
            (size for size in (full_build or {}).get("sizes", []) if Path(size["run_root"]).name == f"full-{tag}"),
            None,
        )
        if built is not None:  # the full build of the same lake is this history (in place: the ledger
            # and silver hold absolute file URIs, so a run folder never moves)
            log(f"stream {label}: history = the full build of {events:,} events")
            run_root = Path(built["run_root"])
            history_timing = built["spark"]["runs"][-1]
        else:
            log(f"stream {label}: history build ({events:,} events, {days} days, {cards:,} cards)")
            fresh_run_root(pristine, run_root)
            build = spark_submit(
                args, "spark_jobs/silver_and_gold.py", [*FULL_BUILD_ARGS, "--lake-root", str(run_root)]
            )
            require_success(build, f"history build of {run_root}")
            history_timing = spark_job_timing(build, "silver_and_gold")
        snapshot = run_root.with_name(run_root.name + ".history")
        copy_lake(run_root, snapshot)
        if base_lines is None:
            base_lines = batch_lines(args, cards=cards, history_end=history_end, daily_rate=daily_rate)
            lines = base_lines
        else:  # the same batch, relative to the later end of history
            shift = int((history_end - start).total_seconds()) - args.days * 86_400
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
    repeat = args.stream_repeat or args.repeat
    for attempt in range(1, repeat + 1):
        order = ("H", "2H") if attempt % 2 else ("2H", "H")
        for label in order:
            item = histories[label]
            run_root = Path(item["run_root"])
            if item["runs"]:  # back to the history as it was before the batch
                copy_lake(item["_snapshot"], run_root)
            write_batch(run_root, item["_lines"], item["_history_end"])
            log(f"stream {label}: incremental run {attempt}/{repeat} ({len(item['_lines']):,} new events)")
            item["runs"].append(stream_run(args, run_root))
    for item in histories.values():
        for private in ("_snapshot", "_lines", "_history_end"):
            item.pop(private)
        item["median"] = summarize_runs(item["runs"], STREAM_KEYS)
    h, h2 = histories["H"]["median"], histories["2H"]["median"]
    log("stream: verifying H's gold after the increment against the reference")
    verification = verify_lake(args, Path(histories["H"]["run_root"]), "stream-H")
    return {
        "batch": {
            "events": args.stream_batch,
            "late_share": args.stream_late_share,
            "late_max_hours": args.stream_late_hours,
        },
        "repeat": repeat,
        "H": histories["H"],
        "2H": histories["2H"],
        "ratio_2h_over_h": round(h2["wall_seconds"] / h["wall_seconds"], 3) if h["wall_seconds"] else None,
        "ratio_2h_over_h_with_startup": round(h2["wall_seconds_with_startup"] / h["wall_seconds_with_startup"], 3),
        "ratio_2h_over_h_cpu": round(h2["cpu_seconds"] / h["cpu_seconds"], 3) if h["cpu_seconds"] else None,
        "verification_after_increment": verification,
    }


def stream_run(args: argparse.Namespace, run_root: Path) -> dict:
    run = spark_submit(args, "spark_jobs/silver_and_gold.py", ["--mode", "stream", "--lake-root", str(run_root)])
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
        accepted=counts.get("accepted"),
        gold_rows_recomputed=counts.get("gold_rows_recomputed"),
        gold_rows_inserted=counts.get("gold_rows_inserted"),
        gold_rows_updated=counts.get("gold_rows_updated"),
        affected_cards=gold.get("affected_cards"),
        report_duration_seconds=report["duration_seconds"],
        steps=report["duration_per_step_seconds"],
    )
    log(
        f"  {timing['wall_seconds']} s without start-up, CPU {timing['cpu_seconds']} s; silver "
        f"{timing['bytes_scanned']:,} B in {timing['files']} files, gold {timing['gold_bytes_scanned']:,} B in "
        f"{timing['gold_files_scanned']} files"
    )
    return timing


def verify_lake(args: argparse.Namespace, run_root: Path, name: str) -> dict:
    """The reference over a run root's bronze, then Spark's tables there against it."""
    reference_dir = args.work_dir / "reference" / name
    if reference_dir.exists():
        shutil.rmtree(reference_dir)
    build = python_process(
        args,
        "scripts/benchmark_reference.py",
        ["build", "--lake-root", str(run_root), "--output-dir", str(reference_dir)],
    )
    require_success(build, "reference build")
    check = python_process(
        args,
        "scripts/benchmark_reference.py",
        ["verify", "--lake-root", str(run_root), "--output-dir", str(reference_dir)],
    )
    require_success(check, "verification")
    result = last_json_line(check)
    log(f"  verification: {'equal' if result['equal'] else 'DIFFERENT'}")
    return result


# ------------------------------------------------------------------------------------------------ feature store
def ingest_stage(args: argparse.Namespace, lake: Path) -> dict:
    """A full (initial) ingest of every gold row of `lake` into a fresh local feature store."""
    for leftover in ("feature_store", "_state/feature_store_ingest.json", "_dead_letter"):
        path = lake / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    register = python_process(
        args, "feature_store/register_feature_groups.py", ["--backend", "local", "--lake-root", str(lake)]
    )
    require_success(register, "feature group registration")
    log(f"feature store: full ingest of {lake}")
    run = spark_submit(args, "feature_store/ingest_features.py", ["--backend", "local", "--lake-root", str(lake)])
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
from feature_store.get_features import OnlineFeatures
from feature_store.register_feature_groups import default_online_store_path

lake, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
path = default_online_store_path(lake)
with sqlite3.connect(path) as connection:
    cards = [row[0] for row in connection.execute("SELECT record_id FROM online_records ORDER BY record_id")]
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


def lookup_stage(args: argparse.Namespace, lake: Path) -> dict:
    log(f"online lookup: {args.lookups:,} GetRecord calls on {lake}/feature_store/online.db")
    runs = []
    for _ in range(args.repeat):
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
        run = run_process(
            [sys.executable, "-c", LOOKUP_SCRIPT, str(lake), str(args.lookups), str(args.seed)],
            env=environment,
            sample_seconds=args.sample_seconds,
        )
        require_success(run, "online lookups")
        runs.append(last_json_line(run))
    result = {"runs": runs, "median": summarize_runs(runs, ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"))}
    result["lookups"] = args.lookups
    result["cards_online"] = runs[-1]["cards_online"]
    log(f"  p50 {result['median']['p50_ms']} ms, p99 {result['median']['p99_ms']} ms")
    return result


# ------------------------------------------------------------------------------------------------ targets
def targets(results: dict) -> tuple[list[dict], dict]:
    full = results.get("full_build") or {}
    headline = next((size for size in full.get("sizes", []) if size["events"] == results["settings"]["events"]), None)
    stream = results.get("stream_increment") or {}
    ingest = results.get("feature_store_ingest") or {}
    lookup = results.get("online_lookup") or {}
    values = {
        "full_build_5m_vs_duckdb": headline["ratio_spark_to_duckdb"] if headline else None,
        "full_build_5m_peak_rss_gb": (
            round(headline["spark"]["median"]["peak_rss_bytes"] / 1e9, 2) if headline else None
        ),
        "stream_increment_2h_over_h": stream.get("ratio_2h_over_h"),
        "records_per_batch_write": ingest.get("records_per_batch_write"),
        "online_lookup_p99_ms": (lookup.get("median") or {}).get("p99_ms"),
    }
    listed, notes = [], {}
    for name, limit, unit, comparison in TARGETS:
        value = values[name]
        met = value is not None and (value <= limit if comparison == "<=" else value >= limit)
        listed.append({"name": name, "value": value, "limit": limit, "unit": unit, "met": bool(met)})
        if value is None:
            notes[name] = "not measured in this run (stage skipped)"
    if headline:
        where = "" if headline["events"] == HEADLINE_EVENTS else f"measured at {headline['events']:,} events; "
        notes["full_build_5m_vs_duckdb"] = (
            f"{where}Spark without start-up / DuckDB, same run; with start-up "
            f"{headline['ratio_spark_with_startup_to_duckdb']}x"
        )
        if where:
            notes["full_build_5m_peak_rss_gb"] = where.rstrip("; ")
        if not headline["verification"]["equal"]:
            notes["full_build_5m_vs_duckdb"] += "; WARNING: Spark's tables differ from the reference"
    return listed, notes


# ------------------------------------------------------------------------------------------------ docs
def gb(value: float | None) -> str:
    return "–" if value is None else f"{value / 1e9:.2f}"


def seconds_text(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def results_markdown(results: dict) -> str:
    machine, settings = results["machine"], results["settings"]
    lines = [
        f"Run of {results['generated_at']} (commit `{results.get('git_commit')}`), "
        f"`{results['command']}`; machine: {machine['logical_cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine.get('cpu', '')}; load average before {results['load_average']['before']}, after "
        f"{results['load_average']['after']}. Spark {results['versions'].get('pyspark')} / Delta "
        f"{results['versions'].get('delta-spark')} (`--master {settings['spark_master']}`), DuckDB "
        f"{results['versions'].get('duckdb')}. Full builds: medians of {settings['repeat']} run(s). Raw numbers: "
        "[results.json](results.json).",
        "",
        "### Targets",
        "",
        "| target | value | limit | met |",
        "|---|---|---|---|",
    ]
    notes = results.get("target_notes", {})
    for target in results["targets"]:
        comparison = next(item[3] for item in TARGETS if item[0] == target["name"])
        value = "–" if target["value"] is None else f"{target['value']:g}"
        note = f" ({notes[target['name']]})" if target["name"] in notes else ""
        lines.append(
            f"| `{target['name']}` | {value} {target['unit']}{note} | {comparison} {target['limit']:g} | "
            f"{'yes' if target['met'] else '**no**'} |"
        )
    full = results.get("full_build")
    if full:
        lines += [
            "",
            "### Full build: bronze → silver → gold (`--mode full`) vs the DuckDB reference",
            "",
            "| events | cards | bronze | Spark s (no start-up) | Spark s (with) | start-up s | Spark events/s | "
            "Spark peak RSS (PSS) GB | Spark CPU s | DuckDB s | DuckDB events/s | DuckDB peak RSS GB | ratio | "
            "gold == reference |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for size in full["sizes"]:
            spark, duck = size["spark"]["median"], size["duckdb"]["median"]
            verification = size["verification"]
            equal = "yes" if verification["equal"] else "**no**"
            lines.append(
                f"| {size['events']:,} | {size['cards']:,} | {size['lake']['bronze_files']:,} files, "
                f"{size['lake']['bronze_bytes'] / 1e6:.0f} MB | {seconds_text(spark['wall_seconds'])} | "
                f"{seconds_text(spark['wall_seconds_with_startup'])} | {seconds_text(spark['startup_seconds'])} | "
                f"{spark['events_per_second'] or 0:,} | {gb(spark['peak_rss_bytes'])} "
                f"({gb(spark['peak_pss_bytes'])}) | "
                f"{seconds_text(spark['cpu_seconds'])} | {seconds_text(duck['wall_seconds'])} | "
                f"{duck['events_per_second'] or 0:,} | {gb(duck['peak_rss_bytes'])} | "
                f"{size['ratio_spark_to_duckdb']}x | {equal} ({verification['spark_gold_rows']:,} rows) |"
            )
        headline = full["sizes"][-1]
        steps = headline["spark"]["runs"][-1]["steps"]
        phases = headline["duckdb"]["runs"][-1]["phases"]
        lines += [
            "",
            f"Where the time goes at {headline['events']:,} events (last run; seconds):",
            "",
            "| Spark step | s |",
            "|---|---|",
            *[f"| {name} | {value:,.1f} |" for name, value in sorted(steps.items(), key=lambda item: -item[1])],
            "",
            "| DuckDB phase | s |",
            "|---|---|",
            *[f"| {name} | {value:,.1f} |" for name, value in sorted(phases.items(), key=lambda item: -item[1])],
            "",
            f"Reference lines judged by the contract's Python (corners SQL does not express): "
            f"{headline['duckdb']['runs'][-1]['counts']['judged_by_contract']:,} of "
            f"{headline['duckdb']['runs'][-1]['counts']['lines']:,}.",
            "",
            "![scaling](scaling.png)",
        ]
    stream = results.get("stream_increment")
    if stream:
        batch = stream["batch"]
        lines += [
            "",
            f"### Stream increment: one batch of {batch['events']:,} events ({batch['late_share']:.0%} late by up to "
            f"{batch['late_max_hours']:g} h)",
            "",
            f"Medians of {stream['repeat']} run(s) on each history, H and 2H alternating.",
            "",
            "| history | events | days | batch s (no start-up) | with start-up | CPU s | peak RSS GB | "
            "silver files / bytes read | gold files / bytes scanned | gold rows recomputed | cards affected |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for label in ("H", "2H"):
            item = stream[label]
            med = item["median"]
            last = item["runs"][-1]
            lines.append(
                f"| {label} | {item['events']:,} | {item['days']} | {seconds_text(med['wall_seconds'])} | "
                f"{seconds_text(med['wall_seconds_with_startup'])} | {seconds_text(med['cpu_seconds'])} | "
                f"{gb(med['peak_rss_bytes'])} | {med['files']} / {med['bytes_scanned']:,} | "
                f"{med['gold_files_scanned']} / {med['gold_bytes_scanned']:,} | {last['gold_rows_recomputed']:,} | "
                f"{last['affected_cards']:,} |"
            )
        verification = stream.get("verification_after_increment") or {}
        lines += [
            "",
            f"Ratio 2H / H: **{stream['ratio_2h_over_h']}** (with start-up {stream['ratio_2h_over_h_with_startup']}, "
            f"CPU time {stream['ratio_2h_over_h_cpu']}). Gold of H after the increment equals the reference built "
            f"from all its bronze: {'yes' if verification.get('equal') else '**no**'}.",
        ]
    ingest = results.get("feature_store_ingest")
    if ingest:
        lines += [
            "",
            "### Feature store ingest (local backend, full ingest of the H lake)",
            "",
            f"{ingest['records']:,} records ({ingest['online_records']:,} online) in {ingest['batch_write_calls']:,} "
            f"BatchWriteRecord calls: **{ingest['records_per_batch_write']} records a call** (histogram "
            f"`{json.dumps(ingest['entries_per_call_histogram'])}`); the write step (Spark read, writer, SQLite, "
            f"offline Delta append) took {seconds_text(ingest['write_step_seconds'])} s: "
            f"{ingest['rows_per_second'] or 0:,} rows/s; the job {seconds_text(ingest['wall_seconds_with_startup'])} "
            f"s with start-up, peak RSS {gb(ingest['peak_rss_bytes'])} GB.",
        ]
    lookup = results.get("online_lookup")
    if lookup:
        med = lookup["median"]
        lines += [
            "",
            f"### Online lookup ({lookup['lookups']:,} GetRecord calls on the local online store, "
            f"{lookup['cards_online']:,} cards)",
            "",
            "| p50 ms | p90 ms | p99 ms | max ms | mean ms |",
            "|---|---|---|---|---|",
            f"| {med['p50_ms']} | {med['p90_ms']} | {med['p99_ms']} | {med['max_ms']} | {med['mean_ms']} |",
        ]
    return "\n".join(lines) + "\n"


README_TEMPLATE = f"""# Benchmarks

`make bench` (`scripts/benchmark.py`) measures the pipeline against a DuckDB reference
(`scripts/benchmark_reference.py`) on the same generated lakes and checks the targets of issue 11.

{README_START}
{README_END}
"""


def write_docs(results: dict, output_dir: Path) -> None:
    readme = output_dir / "README.md"
    text = readme.read_text() if readme.exists() else README_TEMPLATE
    if README_START not in text or README_END not in text:
        text = text.rstrip("\n") + f"\n\n{README_START}\n{README_END}\n"
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{results_markdown(results)}{README_END}{tail}")
    full = results.get("full_build")
    if full:
        plot_scaling(full["sizes"], output_dir / "scaling.png", results)


def plot_scaling(sizes: list[dict], path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [size["events"] / 1e6 for size in sizes]
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = (
        ("Spark, with start-up", [size["spark"]["median"]["wall_seconds_with_startup"] for size in sizes], "C0", "--"),
        ("Spark, without start-up", [size["spark"]["median"]["wall_seconds"] for size in sizes], "C0", "-"),
        ("DuckDB reference", [size["duckdb"]["median"]["wall_seconds"] for size in sizes], "C1", "-"),
    )
    for label, values, color, style in series:
        time_axis.plot(events, values, marker="o", color=color, linestyle=style, label=label)
    time_axis.set_xlabel("events (millions)")
    time_axis.set_ylabel("wall time (s)")
    time_axis.set_title("Full build: bronze → silver → gold")
    time_axis.grid(alpha=0.3)
    time_axis.legend()
    memory_axis.plot(
        events, [size["spark"]["median"]["peak_rss_bytes"] / 1e9 for size in sizes], marker="o", label="Spark"
    )
    memory_axis.plot(
        events, [size["duckdb"]["median"]["peak_rss_bytes"] / 1e9 for size in sizes], marker="o", label="DuckDB"
    )
    memory_axis.axhline(6.0, color="grey", linestyle=":", label="target (Spark at 5M)")
    memory_axis.set_xlabel("events (millions)")
    memory_axis.set_ylabel("peak RSS of the process tree (GB)")
    memory_axis.set_title("Memory")
    memory_axis.grid(alpha=0.3)
    memory_axis.legend()
    machine = results["machine"]
    figure.suptitle(
        f"{machine['logical_cores']} cores, {machine['memory_gib']} GiB; medians of {results['settings']['repeat']} "
        f"run(s); {results['generated_at'][:10]}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_summary(results: dict) -> None:
    print("\n=== benchmark summary ===")
    for size in (results.get("full_build") or {}).get("sizes", []):
        spark, duck = size["spark"]["median"], size["duckdb"]["median"]
        print(
            f"full build {size['events']:>10,} events: Spark {spark['wall_seconds']} s "
            f"({spark['wall_seconds_with_startup']} s with start-up), peak {gb(spark['peak_rss_bytes'])} GB; "
            f"DuckDB {duck['wall_seconds']} s, peak {gb(duck['peak_rss_bytes'])} GB; "
            f"ratio {size['ratio_spark_to_duckdb']}x; gold == reference: {size['verification']['equal']}"
        )
    stream = results.get("stream_increment")
    if stream:
        print(
            f"stream increment: H {stream['H']['median']['wall_seconds']} s, "
            f"2H {stream['2H']['median']['wall_seconds']} s, ratio {stream['ratio_2h_over_h']}"
        )
    for target in results["targets"]:
        print(
            f"target {target['name']}: {target['value']} {target['unit']} (limit {target['limit']}) "
            f"{'met' if target['met'] else 'NOT met'}"
        )


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": "scripts/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "versions": versions(),
        "load_average": {"before": load_average()},
        "settings": {
            "events": args.events,
            "sizes": args.sizes,
            "repeat": args.repeat,
            "events_per_card": args.events_per_card,
            "days": args.days,
            "seed": args.seed,
            "spark_master": args.spark_master,
            "stream_history": args.stream_history,
            "stream_batch": args.stream_batch,
            "lookups": args.lookups,
            "skipped": sorted(args.skip),
            "spark": spark_settings(args),
        },
    }
    log(f"load average {results['load_average']['before']} on {results['machine']['logical_cores']} cores")
    if "full" not in args.skip:
        results["full_build"] = full_build_stage(args)
    if "stream" not in args.skip:
        results["stream_increment"] = stream_stage(args, results.get("full_build"))
    ingest_lake = None
    if results.get("stream_increment"):
        ingest_lake = Path(results["stream_increment"]["H"]["run_root"])
    elif results.get("full_build"):
        ingest_lake = Path(results["full_build"]["sizes"][-1]["run_root"])
    if "ingest" not in args.skip and ingest_lake is not None:
        results["feature_store_ingest"] = ingest_stage(args, ingest_lake)
    if "lookup" not in args.skip and results.get("feature_store_ingest"):
        results["online_lookup"] = lookup_stage(args, ingest_lake)
    results["load_average"]["after"] = load_average()
    results["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    results["targets"], results["target_notes"] = targets(results)
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    if not args.no_docs:
        write_docs(results, args.output_dir)
    print_summary(results)
    print(f"results: {args.output_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
