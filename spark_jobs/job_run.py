"""The entry boilerplate of every job, once: open the lake, start the run report, record the arguments, run the
job's body, finish the report (succeeded or failed, with metrics) and turn the outcome into an exit code.

    def main(argv=None) -> int:
        args = parse_args(argv)
        job = JobSpec(job="silver_and_gold", mode=args.mode, lake_root=args.lake_root,
                      endpoint_url=args.endpoint_url, arguments=vars(args))
        return run_job(job, lambda storage, report: run(storage, report, options))

The body returns a `JobResult` (status, metrics, exit code). Any exception finishes the report as failed
(with `JobSpec.failure_metrics`) and is re-raised, except the `JobSpec.input_errors`: the lake cannot give what
was asked (say, no gold table, or too little history for an as-of date asked by hand), so they are printed as
`<prog>: error: …` and exit 5, a failed precondition (spark_jobs/exit_codes.py; usage errors alone exit 2).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_jobs import exit_codes
from spark_jobs.run_report import RunReport
from spark_jobs.storage import LakeStorage, open_lake

INPUT_ERROR_EXIT_CODE = exit_codes.PRECONDITION_FAILED

Metrics = Mapping[str, Mapping[str, int | float]]


@dataclass(frozen=True)
class JobSpec:
    """Who runs, on which lake, with which arguments (recorded in the run report)."""

    job: str
    mode: str
    lake_root: str
    endpoint_url: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    failure_metrics: Metrics | None = None  # EMF metrics printed when the run fails
    input_errors: tuple[type[Exception], ...] = ()  # refused: a message and exit 5 instead of a traceback


@dataclass(frozen=True)
class JobResult:
    """How a body ended: the report's status and metrics, the exit code, and a note for stderr."""

    status: str = "succeeded"
    metrics: Metrics | None = None
    exit_code: int = exit_codes.OK
    note: str | None = None  # printed to stderr after the summary line (e.g. where dead letters went)


def recorded_arguments(arguments: Mapping[str, Any]) -> dict[str, str]:
    """The arguments as the report keeps them: every value that was set, as text."""
    return {key: str(value) for key, value in arguments.items() if value is not None}


def run_job(spec: JobSpec, body: Callable[[LakeStorage, RunReport], JobResult]) -> int:
    """Run `body` inside a run report; returns the process exit code."""
    storage = open_lake(spec.lake_root, endpoint_url=spec.endpoint_url)
    report = RunReport(storage, job=spec.job, mode=spec.mode)
    report.arguments = recorded_arguments(spec.arguments)
    try:
        result = body(storage, report)
    except spec.input_errors as error:
        report.finish("failed", error=error, metrics=_plain(spec.failure_metrics))
        print(f"{spec.job}.py: error: {error}", file=sys.stderr, flush=True)
        return INPUT_ERROR_EXIT_CODE
    except Exception as error:
        report.finish("failed", error=error, metrics=_plain(spec.failure_metrics))
        raise
    report.finish(result.status, metrics=_plain(result.metrics))
    if result.note:
        print(result.note, file=sys.stderr, flush=True)
    return result.exit_code


def _plain(metrics: Metrics | None) -> dict[str, dict] | None:
    return None if metrics is None else {stage: dict(values) for stage, values in metrics.items()}
