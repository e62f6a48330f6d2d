"""Run identity, step timing, the run report in `_runs/`, and CloudWatch embedded-metric-format lines.

Every run writes `<lake-root>/_runs/<run_id>.json`, failed or not, prints a one-line summary, and prints
its counts as EMF log lines (namespace CardFeatures, dimension Stage) so CloudWatch alarms can watch the
quarantine rate and silence without parsing anything.

The summary line (stdout when the run succeeded, stderr otherwise) is the one format tools parse, with
`parse_summary_line`/`find_summary` (the local runner and the benchmark find the run report through it):

    <job> <mode> <status>: run_id=<run_id> [<count>=<value> ...] duration=<seconds>s report=<report URI>

e.g. `silver_and_gold stream succeeded: run_id=stream-20260102T000500Z-1a2b3c4d files=3 accepted=120
duplicates=0 quarantined=2 duration=41.2s report=file:///lake/_runs/stream-20260102T000500Z-1a2b3c4d.json`.
`<status>` is succeeded, skipped, dead_lettered or failed; the counts are the report's scalar counts in the order
the job added them (nested counts such as quarantined_by_reason are only in the report); no field holds
a space.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spark_jobs.card_numbers import mask_card_numbers
from spark_jobs.job_log import log
from spark_jobs.lake import run_report_uri
from spark_jobs.run_trace import RunTrace
from spark_jobs.storage import LakeStorage

METRIC_NAMESPACE = "CardFeatures"
# The Spark local property naming the run step a job belongs to: the event log's SparkListenerJobStart carries
# it, so a run's jobs, SQL executions and Delta log reads are counted per step (devtools/benchmark/processes.py).
SPARK_STEP_PROPERTY = "cardfeat.step"
SPARK_JOB_GROUP_PROPERTY = "spark.jobGroup.id"  # SparkContext.setJobGroup's, without touching job descriptions
STDOUT_STATUSES = ("succeeded", "skipped")  # a run ending otherwise prints its summary on stderr
_SUMMARY_LINE = re.compile(
    r"^(?P<job>\S+) (?P<mode>\S+) (?P<status>[a-z_]+): run_id=(?P<run_id>\S+) (?P<counts>(?:\S+=\S+ )*?)"
    r"duration=(?P<duration>[0-9.]+)s report=(?P<report_uri>\S+)$"
)


@dataclass(frozen=True)
class RunSummary:
    """A parsed summary line (see the module docstring)."""

    job: str
    mode: str
    status: str
    run_id: str
    counts: dict[str, str]
    duration_seconds: float
    report_uri: str


def summary_line(job: str, mode: str, status: str, run_id: str, counts: dict[str, Any], duration: float, uri: str):
    """The one-line summary a run prints (the format `parse_summary_line` reads)."""
    shown = "".join(f"{key}={value} " for key, value in counts.items() if not isinstance(value, dict))
    return f"{job} {mode} {status}: run_id={run_id} {shown}duration={duration}s report={uri}"


def parse_summary_line(line: str) -> RunSummary | None:
    """The summary of one output line, None when the line is not a summary line."""
    found = _SUMMARY_LINE.match(line.rstrip("\r\n"))
    if found is None:
        return None
    counts = dict(item.split("=", 1) for item in found["counts"].split())
    return RunSummary(
        job=found["job"],
        mode=found["mode"],
        status=found["status"],
        run_id=found["run_id"],
        counts=counts,
        duration_seconds=float(found["duration"]),
        report_uri=found["report_uri"],
    )


def find_summary(output: str) -> RunSummary | None:
    """The last summary line in a job's output (a job prints one; a driver running several, one each)."""
    found = None
    for line in output.splitlines():
        found = parse_summary_line(line) or found
    return found


def new_run_id(mode: str, started_at: datetime) -> str:
    """`<mode>-<yyyymmddTHHMMSSZ>-<8 hex>`: sortable by start time, unique across concurrent starts."""
    return f"{mode}-{started_at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def emf_line(stage: str, metrics: dict[str, float | int], *, timestamp_ms: int | None = None) -> str:
    """One CloudWatch embedded-metric-format log line for `metrics` under dimension Stage=`stage`."""
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["Stage"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
                }
            ],
        },
        "Stage": stage,
    }
    document.update(metrics)
    return json.dumps(document, sort_keys=True)


@dataclass
class RunReport:
    """Collects what a run did; `finish()` persists it and prints the summary and metrics."""

    storage: LakeStorage
    job: str
    mode: str
    started_at: datetime = field(default_factory=utc_now)
    run_id: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    trace: RunTrace = field(default_factory=RunTrace)
    failed_step: str | None = None  # the innermost step an exception left

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = new_run_id(self.mode, self.started_at)

    @property
    def uri(self) -> str:
        return run_report_uri(self.storage, self.run_id)

    @contextmanager
    def step(self, name: str):
        """Time a step; durations accumulate when a step runs more than once (several batches). An
        exception leaving the step names it the failed step (the innermost one, for nested steps). The Spark
        jobs the step starts carry its name (`SPARK_STEP_PROPERTY`), in the event log and the Spark UI."""
        began = time.perf_counter()
        log.info("%s ...", name, extra={"fields": {"step": name}})
        restore = _label_spark_jobs(name)
        try:
            yield
        except BaseException:
            self.failed_step = self.failed_step or name
            raise
        finally:
            restore()
            self.steps[name] = round(self.steps.get(name, 0.0) + time.perf_counter() - began, 3)

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def as_dict(self) -> dict[str, Any]:
        finished = utc_now()
        return {
            "run_id": self.run_id,
            "job": self.job,
            "mode": self.mode,
            "status": self.status,
            "error": self.error,
            "failed_step": self.failed_step,
            **self.trace.as_dict(),
            "started_at": self.started_at.isoformat(),
            "finished_at": finished.isoformat(),
            "duration_seconds": round((finished - self.started_at).total_seconds(), 3),
            "arguments": self.arguments,
            "counts": self.counts,
            "duration_per_step_seconds": self.steps,
            **self.details,
        }

    def finish(self, status: str, *, error: BaseException | None = None, metrics: dict[str, dict] | None = None):
        """Write `_runs/<run_id>.json`, print EMF lines (one per stage) and the one-line summary."""
        self.status = status
        if error is not None:
            self.error = mask_card_numbers(f"{type(error).__name__}: {error}")
        document = self.as_dict()
        self.storage.write_json(self.uri, document)
        for stage, values in (metrics or {}).items():
            print(emf_line(stage, values), flush=True)
        print(
            summary_line(self.job, self.mode, status, self.run_id, self.counts, document["duration_seconds"], self.uri),
            file=sys.stdout if status in STDOUT_STATUSES else sys.stderr,
            flush=True,
        )
        return document


def _label_spark_jobs(step: str):
    """Name `step` on the Spark jobs this thread starts from now on: `SPARK_STEP_PROPERTY` (kept by the jobs Spark
    starts in its own threads too, e.g. broadcasts) and the job group (the Spark UI's Job Group column). Local
    properties: no effect on what the jobs compute. Returns the function that puts back the enclosing step's
    names. Without a running SparkContext (or without pyspark) it does nothing."""
    try:
        from pyspark import SparkContext
    except ImportError:
        return lambda: None
    context = SparkContext._active_spark_context
    if context is None:
        return lambda: None
    keys = (SPARK_STEP_PROPERTY, SPARK_JOB_GROUP_PROPERTY)
    previous = {key: context.getLocalProperty(key) for key in keys}
    for key in keys:
        context.setLocalProperty(key, step)

    def restore() -> None:
        if SparkContext._active_spark_context is context:  # not stopped inside the step
            for key, value in previous.items():
                context.setLocalProperty(key, value)

    return restore
