"""Where a run came from, for the on-call engineer tracing it back: the Step Functions execution, the EMR
Serverless job run and the code version. Every run report carries these fields (see RunReport.as_dict):

    run_id              `--run-id`: the state machines pass `<execution name>.<state>.<redrive>.<retry>`
                        (docs/runbook.md#tracing-a-run); without it, `<mode>-<UTC start>-<8 hex>`
    execution_arn       `--execution-arn`: the Step Functions execution ($$.Execution.Id), else null
    emr_job_run_id      the EMR Serverless job run, from the driver's environment variable
                        SERVERLESS_EMR_JOB_ID, else null (local runs)
    emr_application_id  the EMR Serverless application, from SERVERLESS_EMR_VIRTUAL_CLUSTER_ID, else null
    code_version        the git commit of the code that ran: `spark_jobs/BUILD_INFO.json` in lakehouse.zip
                        (written by scripts/package.py), else `git rev-parse HEAD` of a checkout, else null

EMR Serverless does not document the two variables in its user guide; they are the ones its Spark drivers
carry (OpenSearch's Spark jobs on EMR Serverless read the same two). docs/deploy.md lists checking them
as a first-deploy check; a missing variable leaves the field null, never fails a run.
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import re
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

EMR_JOB_RUN_ID_ENV = "SERVERLESS_EMR_JOB_ID"
EMR_APPLICATION_ID_ENV = "SERVERLESS_EMR_VIRTUAL_CLUSTER_ID"
BUILD_INFO_NAME = "BUILD_INFO.json"  # inside the spark_jobs package of lakehouse.zip
# A run id names the report file `_runs/<run_id>.json` and is one token of the summary line: no
# whitespace, no slash or backslash, not "." or "..". Step Functions execution names never hold any of them.
_RUN_ID = re.compile(r"(?!\.{1,2}$)[^\s/\\]{1,200}")


def run_id_argument(text: str) -> str:
    if not _RUN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a run id of at most 200 characters without spaces or slashes, got {text!r}"
        )
    return text


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """`--run-id` and `--execution-arn`, which every job launched by a state machine receives."""
    parser.add_argument(
        "--run-id",
        type=run_id_argument,
        default=None,
        help="this run's id: names the run report _runs/<run-id>.json (the state machines pass "
        "<execution name>.<state>.<redrive>.<retry>); default: <mode>-<UTC start>-<8 hex>",
    )
    parser.add_argument(
        "--execution-arn",
        default=None,
        help="the Step Functions execution that started the run, recorded in the run report",
    )


@dataclass(frozen=True)
class RunTrace:
    """The fields a run report carries to link it to its execution, job run and code."""

    execution_arn: str | None = None
    emr_job_run_id: str | None = None
    emr_application_id: str | None = None
    code_version: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def current_trace(execution_arn: str | None = None) -> RunTrace:
    return RunTrace(
        execution_arn=execution_arn or None,
        emr_job_run_id=os.environ.get(EMR_JOB_RUN_ID_ENV) or None,
        emr_application_id=os.environ.get(EMR_APPLICATION_ID_ENV) or None,
        code_version=code_version(),
    )


@lru_cache(maxsize=1)
def code_version() -> str | None:
    """The packaged build's commit, else the checkout's, else None."""
    return _packaged_commit() or _checkout_commit()


def _packaged_commit() -> str | None:
    try:  # pkgutil reads from lakehouse.zip (zipimport) as well as from a folder
        raw = pkgutil.get_data("spark_jobs", BUILD_INFO_NAME)
    except OSError:
        return None
    if raw is None:
        return None
    return json.loads(raw).get("git_commit") or None


def _checkout_commit() -> str | None:
    repository = Path(__file__).resolve().parents[1]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
