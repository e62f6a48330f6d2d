"""emr-serverless:startJobRun.sync as a local `spark-submit --master 'local[*]'` of the same entry point."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from devtools.local_runner.errors import DefinitionError, StatesError
from devtools.repo import REPO_ROOT
from devtools.spark_submit import SparkSetupMissing, spark_submit_command, spark_submit_environment
from spark_jobs.run_report import parse_summary_line


@dataclass
class JobRequest:
    """One EMR Serverless job run, translated for a local spark-submit."""

    name: str
    entry_point: Path
    arguments: list[str]
    spark_conf: dict[str, str]
    execution_timeout_seconds: float | None  # EMR cancels the run: States.TaskFailed
    state_timeout_seconds: float | None  # Step Functions stops waiting: States.Timeout
    log_path: Path


LOCAL_SPARK_SUBMIT_OPTIONS = ("--conf", "--py-files")
# The S3DynamoDBLogStore settings stay on AWS: locally (and against moto) Delta uses its default log store,
# since that log store cannot be pointed at a custom endpoint.
LOCAL_DROPPED_CONF_PREFIXES = ("spark.delta.logStore.", "spark.io.delta.storage.S3DynamoDBLogStore.")
EMR_PARAMETERS = {
    "ApplicationId",
    "ExecutionRoleArn",
    "Name",
    "ClientToken",
    "ExecutionTimeoutMinutes",
    "JobDriver",
    "ConfigurationOverrides",
    "Tags",
}


class SparkSubmitLauncher:
    """Runs a job as `spark-submit --master <master>` with the venv's spark-submit and the repo's Spark conf."""

    def __init__(self, *, master: str = "local[*]", echo: Callable[[str], None] | None = None) -> None:
        self.master = master
        self.echo = echo or (lambda line: print(line, flush=True))

    def command(self, job: JobRequest) -> list[str]:
        conf = [f"{key}={value}" for key, value in job.spark_conf.items()]
        try:
            return spark_submit_command(job.entry_point, job.arguments, master=self.master, conf=conf)
        except SparkSetupMissing as error:
            raise DefinitionError(str(error)) from None

    def environment(self) -> dict[str, str]:
        try:
            return spark_submit_environment()
        except SparkSetupMissing as error:
            raise DefinitionError(str(error)) from None

    def __call__(self, job: JobRequest) -> dict:
        command = self.command(job)
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(job.log_path, "w", encoding="utf-8") as log:
            log.write("$ " + shlex.join(command) + "\n")
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
            )
            output = _JobOutput(log, self.echo)
            readers = output.read(process)
            return_code = _wait_or_cancel(process, job, readers)
            for reader in readers:
                reader.join(timeout=30)
        seconds = round(time.monotonic() - started, 1)
        if return_code != 0:
            raise output.failure(job, return_code)
        return {"DurationSeconds": seconds, "RunReport": output.report_uri}


class _JobOutput:
    """A job's output, read on two threads: every line to the log file; stdout echoed (EMF metric lines to the
    log only) and searched for the run report; the tails of both kept for a failure's details."""

    def __init__(self, log: TextIO, echo: Callable[[str], None]) -> None:
        self.log, self.echo = log, echo
        self.lock = threading.Lock()
        self.stdout_tail: list[str] = []  # spark-submit merges the Python driver's stderr into stdout
        self.stderr_tail: list[str] = []  # the JVM's log
        self.report_uri: str | None = None

    def read(self, process: subprocess.Popen) -> list[threading.Thread]:
        readers = [
            threading.Thread(target=self.pump, args=(process.stdout, True), daemon=True),
            threading.Thread(target=self.pump, args=(process.stderr, False), daemon=True),
        ]
        for reader in readers:
            reader.start()
        return readers

    def pump(self, stream: Iterable[str], is_stdout: bool) -> None:
        for line in stream:
            with self.lock:
                self.log.write(line)
            text = line.rstrip("\n")
            if is_stdout:
                summary = parse_summary_line(text)
                if summary:
                    self.report_uri = summary.report_uri
                if not text.startswith('{"'):  # EMF metric lines go to the log only
                    self.echo(f"    | {text}")
                    self.stdout_tail.append(text)
                    del self.stdout_tail[:-40]
            else:
                self.stderr_tail.append(text)
                del self.stderr_tail[:-40]

    def failure(self, job: JobRequest, return_code: int) -> StatesError:
        """States.TaskFailed with the driver's last lines and the JVM's errors (else its last lines)."""
        jvm_errors = [line for line in self.stderr_tail if " ERROR " in line or "Error" in line or "Exception" in line]
        jvm_errors = jvm_errors or self.stderr_tail[-5:]
        details = "\n".join(self.stdout_tail[-25:] + jvm_errors[-10:])[-6000:]
        return StatesError(
            "States.TaskFailed",
            json.dumps(
                {
                    "Name": job.name,
                    "State": "FAILED",
                    "LocalLog": str(job.log_path),
                    "StateDetails": f"spark-submit exited with {return_code}: {details}",
                }
            ),
        )


def _wait_or_cancel(process: subprocess.Popen, job: JobRequest, readers: list[threading.Thread]) -> int:
    """The exit code, or, past the earlier of the two limits, the process group killed and the error that
    limit means: EMR's ExecutionTimeoutMinutes -> States.TaskFailed (CANCELLED), the state's -> States.Timeout."""
    limits = [(job.execution_timeout_seconds, "TaskFailed"), (job.state_timeout_seconds, "Timeout")]
    limits = [(seconds, kind) for seconds, kind in limits if seconds]
    deadline, kind = min(limits) if limits else (None, None)
    try:
        return process.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for reader in readers:
            reader.join(timeout=5)
        if kind == "Timeout":
            raise StatesError("States.Timeout", f"job {job.name} ran longer than the state's TimeoutSeconds") from None
        raise StatesError(
            "States.TaskFailed",
            json.dumps(
                {
                    "Name": job.name,
                    "State": "CANCELLED",
                    "StateDetails": "Job run exceeded ExecutionTimeoutMinutes and was cancelled",
                }
            ),
        ) from None
