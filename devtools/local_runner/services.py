"""The Task resources the runner implements, keyed by Resource ARN, with the parameters each allows."""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from devtools.local_runner.alerts import LocalAlerts
from devtools.local_runner.definition import LEASE_TABLE_KEY
from devtools.local_runner.dynamodb import LocalDynamoDB
from devtools.local_runner.emr import EMR_PARAMETERS, LOCAL_DROPPED_CONF_PREFIXES, JobRequest
from devtools.local_runner.errors import StatesError, UnsupportedConstruct
from devtools.local_runner.executions import ExecutionRegistry
from devtools.repo import REPO_ROOT


class LocalServices:
    """The Task resources the runner implements, keyed by Resource ARN, with their allowed parameters."""

    RESOURCES: ClassVar[dict[str, set[str]]] = {
        "arn:aws:states:::emr-serverless:startJobRun.sync": EMR_PARAMETERS,
        "arn:aws:states:::dynamodb:putItem": {
            "TableName",
            "Item",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        },
        "arn:aws:states:::dynamodb:getItem": {"TableName", "Key", "ConsistentRead"},
        "arn:aws:states:::dynamodb:deleteItem": {
            "TableName",
            "Key",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        },
        "arn:aws:states:::aws-sdk:sfn:describeExecution": {"ExecutionArn"},
        "arn:aws:states:::sns:publish": {"TopicArn", "Message", "Subject"},
    }

    def __init__(
        self,
        *,
        state_dir: Path,
        config: Mapping[str, str],
        alerts: LocalAlerts,
        job_launcher: Callable[[JobRequest], dict],
        endpoint_url: str | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.config = dict(config)
        self.alerts = alerts
        self.job_launcher = job_launcher
        self.endpoint_url = endpoint_url
        self.log = log
        self.dynamodb = LocalDynamoDB(self.state_dir / "dynamodb", {config["lease_table_name"]: (LEASE_TABLE_KEY,)})
        self.executions = ExecutionRegistry(self.state_dir / "executions")
        self.jobs: list[dict] = []

    def invoke(self, resource: str, parameters: Any, *, timeout_seconds: float | None, context: Mapping) -> Any:
        if not isinstance(parameters, dict):
            raise StatesError("States.Runtime", f"{resource} needs an object of parameters")
        action = resource.rsplit(":", 1)[-1]
        if action == "startJobRun.sync":
            return self.start_job_run(parameters, timeout_seconds=timeout_seconds, context=context)
        if action == "putItem":
            return self.dynamodb.put_item(parameters)
        if action == "getItem":
            return self.dynamodb.get_item(parameters)
        if action == "deleteItem":
            return self.dynamodb.delete_item(parameters)
        if action == "describeExecution":
            if "ExecutionArn" not in parameters:
                raise StatesError("Sfn.InvalidArnException", "ExecutionArn is required")
            return self.executions.describe(parameters["ExecutionArn"])
        if action == "publish":
            return self.alerts.publish(parameters)
        raise UnsupportedConstruct(f"Task resource {resource}")

    # EMR Serverless ------------------------------------------------------------------------------
    def _validate_job_parameters(self, parameters: Mapping[str, Any]) -> None:
        def invalid(message: str) -> StatesError:
            return StatesError("EMRServerless.ValidationException", message)

        if not re.fullmatch(r"[0-9a-z]{1,64}", str(parameters.get("ApplicationId", ""))):
            raise invalid("ApplicationId must be 1-64 characters of [0-9a-z]")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", str(parameters.get("ClientToken", ""))):
            raise invalid(f"ClientToken {parameters.get('ClientToken')!r} must be 1-64 characters of [A-Za-z0-9._-]")
        if not str(parameters.get("ExecutionRoleArn", "")).startswith("arn:"):
            raise invalid("ExecutionRoleArn must be an IAM role ARN")
        if len(str(parameters.get("Name", ""))) > 256:
            raise invalid("Name is at most 256 characters")
        timeout = parameters.get("ExecutionTimeoutMinutes")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0):
            raise invalid("ExecutionTimeoutMinutes must be a non-negative integer")
        driver = parameters.get("JobDriver")
        if not isinstance(driver, dict) or set(driver) != {"SparkSubmit"}:
            raise invalid("JobDriver must hold exactly SparkSubmit")
        spark_submit = driver["SparkSubmit"]
        if "EntryPoint" not in spark_submit:
            raise invalid("JobDriver.SparkSubmit.EntryPoint is required")
        unknown = set(spark_submit) - {"EntryPoint", "EntryPointArguments", "SparkSubmitParameters"}
        if unknown:
            raise invalid(f"unknown JobDriver.SparkSubmit fields {sorted(unknown)}")
        arguments = spark_submit.get("EntryPointArguments", [])
        if not isinstance(arguments, list) or not all(isinstance(argument, str) for argument in arguments):
            raise invalid("EntryPointArguments must be a list of strings")

    def _local_path(self, uri: str, what: str) -> Path:
        prefix = self.config["code_uri"].rstrip("/") + "/"
        if not uri.startswith(prefix):
            raise StatesError("EMRServerless.ValidationException", f"{what} {uri} is not under code_uri {prefix}")
        return REPO_ROOT / uri[len(prefix) :]

    def _local_conf(self, spark_submit_parameters: str) -> dict[str, str]:
        """--conf key=value pairs to keep locally; --py-files points into code_uri, i.e. this repository."""
        words, conf, position = shlex.split(spark_submit_parameters or ""), {}, 0
        while position < len(words):
            option = words[position]
            value = words[position + 1] if position + 1 < len(words) else None
            if value is None:
                raise StatesError("EMRServerless.ValidationException", f"SparkSubmitParameters: {option} needs a value")
            if option == "--py-files":
                for path in value.split(","):
                    self._local_path(path, "--py-files")
            elif option == "--conf":
                key, _, conf_value = value.partition("=")
                if not key.startswith(LOCAL_DROPPED_CONF_PREFIXES):
                    conf[key] = conf_value
            else:
                raise UnsupportedConstruct(f"SparkSubmitParameters option {option}")
            position += 2
        return conf

    def _local_only_arguments(self, entry_point: Path) -> list[str]:
        """Options a job takes only when run here, which the state machines cannot pass: on AWS the value would be
        an empty argument, and EMR drops empty arguments (the local backend's online store)."""
        if entry_point == REPO_ROOT / "feature_store" / "ingest_features.py" and self.config.get("online_store_path"):
            return ["--online-store-path", self.config["online_store_path"]]
        local: list[str] = []
        if entry_point == REPO_ROOT / "spark_jobs" / "silver_and_gold.py":
            if _uses_development_token_key(self.config):
                local.append("--allow-development-token-key")
            if self.config.get("event_id_index_path"):  # an S3 lake run here: the SQLite index on this machine
                local += ["--event-id-index-path", self.config["event_id_index_path"]]
        return local

    @staticmethod
    def _local_arguments(arguments: list[str], endpoint_url: str | None) -> list[str]:
        """Options whose value is empty are left out (the local configuration leaves glue_database and
        card_token_secret_id empty: no catalog, no secret); --endpoint-url is added."""
        kept, position = [], 0
        while position < len(arguments):
            argument = arguments[position]
            following = arguments[position + 1] if position + 1 < len(arguments) else None
            if argument.startswith("--") and following == "":
                position += 2
                continue
            kept.append(argument)
            position += 1
        if endpoint_url:
            kept += ["--endpoint-url", endpoint_url]
        return kept

    def start_job_run(self, parameters: Mapping[str, Any], *, timeout_seconds: float | None, context: Mapping) -> dict:
        self._validate_job_parameters(parameters)
        spark_submit = parameters["JobDriver"]["SparkSubmit"]
        entry_point = self._local_path(spark_submit["EntryPoint"], "EntryPoint")
        job_run_id = "local" + uuid.uuid4().hex[:12]
        name = parameters.get("Name") or entry_point.stem
        if not entry_point.is_file():
            raise StatesError(
                "States.TaskFailed",
                json.dumps(
                    {
                        "Name": name,
                        "State": "FAILED",
                        "StateDetails": f"entry point {spark_submit['EntryPoint']} does not exist",
                    }
                ),
            )
        minutes = parameters.get("ExecutionTimeoutMinutes")
        execution_name = context["Execution"]["Name"]
        job = JobRequest(
            name=name,
            entry_point=entry_point,
            arguments=self._local_arguments(list(spark_submit.get("EntryPointArguments", [])), self.endpoint_url)
            + self._local_only_arguments(entry_point),
            spark_conf=self._local_conf(spark_submit.get("SparkSubmitParameters", "")),
            execution_timeout_seconds=minutes * 60 if minutes else None,
            state_timeout_seconds=timeout_seconds,
            log_path=self.state_dir / "logs" / execution_name / f"{context['State']['Name']}-{job_run_id}.log",
        )
        self.log(
            f"  spark-submit {entry_point.relative_to(REPO_ROOT)} {shlex.join(job.arguments)}"
            f"  (job run {job_run_id}, log {job.log_path})"
        )
        record = {"state": context["State"]["Name"], "job_run_id": job_run_id, "entry_point": str(entry_point)}
        try:
            local = self.job_launcher(job)
        except StatesError as error:
            self.jobs.append({**record, "status": "FAILED", "error": error.error})
            raise
        self.jobs.append({**record, "status": "SUCCESS", **{k.lower(): v for k, v in (local or {}).items()}})
        return {
            "ApplicationId": parameters["ApplicationId"],
            "JobRunId": job_run_id,
            "Name": name,
            "State": "SUCCESS",
            "ClientToken": parameters["ClientToken"],
            **{f"Local{key}": value for key, value in (local or {}).items()},
        }


def _uses_development_token_key(config: Mapping[str, Any]) -> bool:
    """A local lake without a card-token secret tokenizes with the public development key, asked for explicitly
    (--allow-development-token-key). An s3:// lake never gets the flag: without a secret its job fails, naming
    --card-token-secret-id (spark_jobs/card_numbers.py resolve_token_keys)."""
    lake_root = str(config.get("lake_root", ""))
    return not config.get("card_token_secret_id") and not lake_root.startswith(("s3://", "s3a://"))
