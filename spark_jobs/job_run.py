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
A `CommitConflictError` (another writer committed the same batch or watermark step first, storage.CreateOnlyLog)
is always one of them: exit 5, naming the commit and the other run. `JobSpec.invalid_inputs` are refused input
files (a malformed `--fx-rates`): the message names the file and line, exit 4. A local `--lake-root` that does
not exist is a failed precondition (exit 5, nothing written) unless the arguments say `--create-lake`
(spark_jobs/storage.py open_lake).
A body with nothing to do on a scheduled run returns `JobResult.skipped(reason)`: status `skipped`, exit 0,
the reason in the report.

Tracing: every job's parser adds `spark_jobs.run_trace.add_run_options` (`--run-id`, `--execution-arn`);
`run_job` takes both from `JobSpec.arguments`, names the report `_runs/<run-id>.json` after the run id and
records the execution, the EMR job run, the code version and the failed step (spark_jobs/run_trace.py).
While the body runs, `spark_jobs.job_log.log` writes its lines with the run id (spark_jobs/job_log.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_jobs import exit_codes
from spark_jobs.job_log import log, run_logging
from spark_jobs.run_report import RunReport
from spark_jobs.run_trace import current_trace
from spark_jobs.storage import CommitConflictError, LakeNotFoundError, LakeStorage, open_lake

# Refused whatever the job: another writer committed first (the message names the commit and the winner's run),
# or the run lease is held by a live run (spark_jobs/run_lease.py).
ALWAYS_PRECONDITIONS: tuple[type[Exception], ...] = (CommitConflictError,)

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
    invalid_inputs: tuple[type[Exception], ...] = ()  # a malformed input file: a message and exit 4


@dataclass(frozen=True)
class JobResult:
    """How a body ended: the report's status and metrics, the exit code, and a note for stderr."""

    status: str = "succeeded"
    metrics: Metrics | None = None
    exit_code: int = exit_codes.OK
    note: str | None = None  # printed to stderr after the summary line (e.g. where dead letters went)
    reason: str | None = None  # why a skipped run had nothing to do (the report's `reason`)

    @classmethod
    def skipped(cls, reason: str, metrics: Metrics | None = None) -> JobResult:
        """Nothing to do on this scheduled run (say, too little history yet): exit 0, since EMR marks any
        other exit FAILED and the state machine would page for a lake that is merely young."""
        return cls(status="skipped", metrics=metrics, reason=reason, note=f"skipped: {reason}")


def recorded_arguments(arguments: Mapping[str, Any]) -> dict[str, str]:
    """The arguments as the report keeps them: every value that was set, as text."""
    return {key: str(value) for key, value in arguments.items() if value is not None}


def run_job(spec: JobSpec, body: Callable[[LakeStorage, RunReport], JobResult]) -> int:
    """Run `body` inside a run report; returns the process exit code."""
    try:
        storage = open_lake(
            spec.lake_root,
            endpoint_url=spec.endpoint_url,
            create=bool(spec.arguments.get("create_lake")),
            region=spec.arguments.get("region"),  # a job's --region (spark_jobs/aws_region.py), else AWS_REGION
        )
    except LakeNotFoundError as error:  # no lake, so no run report either
        print(f"{spec.job}.py: error: {error}", file=sys.stderr, flush=True)
        return exit_codes.PRECONDITION_FAILED
    report = RunReport(
        storage,
        job=spec.job,
        mode=spec.mode,
        run_id=spec.arguments.get("run_id") or "",
        trace=current_trace(spec.arguments.get("execution_arn")),
    )
    report.arguments = recorded_arguments(spec.arguments)
    with run_logging(report.run_id, spec.job, spec.mode):
        try:
            result = body(storage, report)
        except ALWAYS_PRECONDITIONS + spec.input_errors + spec.invalid_inputs as error:
            _log_failure(report, error)
            report.finish("failed", error=error, metrics=_plain(spec.failure_metrics))
            print(f"{spec.job}.py: error: {error}", file=sys.stderr, flush=True)
            return exit_codes.INVALID_INPUT if isinstance(error, spec.invalid_inputs) else INPUT_ERROR_EXIT_CODE
        except Exception as error:
            _log_failure(report, error)
            report.finish("failed", error=error, metrics=_plain(spec.failure_metrics))
            raise
        if result.reason:
            report.details["reason"] = result.reason
            log.info("%s: %s", result.status, result.reason, extra={"fields": {"reason": result.reason}})
        report.finish(result.status, metrics=_plain(result.metrics))
    if result.note:
        print(result.note, file=sys.stderr, flush=True)
    return result.exit_code


def _log_failure(report: RunReport, error: Exception) -> None:
    step = report.failed_step or "-"
    log.error("failed in step %s: %s: %s", step, type(error).__name__, error, extra={"fields": {"step": step}})


def _plain(metrics: Metrics | None) -> dict[str, dict] | None:
    return None if metrics is None else {stage: dict(values) for stage, values in metrics.items()}
