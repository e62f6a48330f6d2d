"""The benchmark's processes: each engine run in its own process tree, its peak RSS sampled, its output timed."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from devtools.benchmark.options import BenchmarkOptions, SparkRunSettings
from devtools.repo import REPO_ROOT
from devtools.spark_submit import SparkSetupMissing, spark_submit_command, spark_submit_environment
from spark_jobs.run_report import SPARK_STEP_PROPERTY


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


def spark_submit(
    settings: SparkRunSettings, script: str, arguments: list[str], *, tree: Path | None = None
) -> ProcessRun:
    """One Spark job of the repository through the shared local spark-submit (devtools/spark_submit.py), with an
    event log of its own when the settings ask for one. `tree`: run the job's code of another checkout (e.g. a git
    worktree of an older commit) instead: its script, its packages first on PYTHONPATH (driver and Python
    workers), this repository's Spark conf and interpreter."""
    conf = list(settings.conf)
    event_log = None
    if settings.event_logs is not None:
        event_log = settings.event_logs / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        event_log.mkdir(parents=True)
        conf += ["spark.eventLog.enabled=true", f"spark.eventLog.dir={event_log}"]
    try:
        command = spark_submit_command(
            script if tree is None else tree.resolve() / script, arguments, master=settings.master, conf=conf
        )
        environment = spark_submit_environment()
        if tree is not None:  # only the other checkout is importable: never a module of this one
            environment["PYTHONPATH"] = str(tree.resolve())
    except SparkSetupMissing as error:
        raise SystemExit(str(error)) from None
    run = run_process(command, env=environment, sample_seconds=settings.sample_seconds)
    if event_log is not None:
        run.hot_spots = event_log_hot_spots(event_log)
    return run


def event_log_hot_spots(folder: Path, top: int = 12) -> dict | None:
    """The longest SQL executions of a Spark event log (description → seconds), job/stage/task counts, and per
    run step (`by_step`, from the step name the run report puts on each job) its jobs, SQL executions and Delta
    log reads: snapshot state computations and file filterings (Delta names those executions)."""
    logs = [path for path in folder.iterdir() if path.is_file()]
    if not logs:
        return None
    with logs[0].open() as stream:  # read a line at a time: a full build's log is tens of MB
        return {"event_log": str(logs[0]), **hot_spots_of((json.loads(text) for text in stream), top=top)}


def hot_spots_of(events: Iterable[dict], top: int = 12) -> dict:
    """`event_log_hot_spots` of the parsed events of one event log, read once in order."""
    executions: dict[int, dict] = {}
    jobs: dict[int, dict] = {}
    stages = tasks = 0
    stage_seconds = 0.0
    for event in events:
        kind = event["Event"]
        if kind == "SparkListenerJobStart":
            properties = event.get("Properties") or {}
            execution = properties.get("spark.sql.execution.id")
            jobs[event["Job ID"]] = {
                "step": properties.get(SPARK_STEP_PROPERTY) or "(no step)",
                "execution": None if execution is None else int(execution),
                "start": event["Submission Time"],
            }
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
            jobs[event["Job ID"]]["end"] = event["Completion Time"]
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
        "jobs": len(jobs),
        "stages": stages,
        "tasks": tasks,
        "stage_seconds": round(stage_seconds, 1),
        "sql_executions": len(timed),
        "sql_seconds": round(sum(item["seconds"] for item in timed), 1),
        "longest_sql_executions": timed[:top],
        "by_step": _by_step(jobs, executions),
    }


_STEP_COUNTS = ("jobs", "job_seconds", "sql_executions", "delta_snapshot_states", "delta_file_filterings")


def _by_step(jobs: dict[int, dict], executions: dict[int, dict]) -> dict:
    """Per step: its jobs, their summed seconds, and the SQL executions they ran for (each counted in the step of
    its first job; an execution that ran no job is not counted): all of them, Delta's snapshot state computations
    and its file filterings."""
    steps: dict[str, dict] = {}
    counted: set[int] = set()
    for job in sorted(jobs.values(), key=lambda item: item["start"]):
        step = steps.setdefault(job["step"], dict.fromkeys(_STEP_COUNTS, 0))
        step["jobs"] += 1
        step["job_seconds"] = round(step["job_seconds"] + (job.get("end", job["start"]) - job["start"]) / 1000, 2)
        execution = job["execution"]
        if execution is None or execution in counted:
            continue
        counted.add(execution)
        what = executions.get(execution, {}).get("what", "")
        step["sql_executions"] += 1
        step["delta_snapshot_states"] += "Compute snapshot for version" in what
        step["delta_file_filterings"] += "Filtering files for query" in what
    return steps


def python_process(options: BenchmarkOptions, script: str, arguments: list[str]) -> ProcessRun:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    command = [sys.executable, str(REPO_ROOT / script), *arguments]
    return run_process(command, env=environment, sample_seconds=options.sample_seconds)


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
