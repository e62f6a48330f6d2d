"""run_pipeline(): one execution of state_machines/<mode>.asl.json with the local configuration and services."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from devtools.local_runner.alerts import LocalAlerts
from devtools.local_runner.definition import LOCAL_ACCOUNT, STATE_MACHINES_DIR, load_definition
from devtools.local_runner.emr import JobRequest, SparkSubmitLauncher
from devtools.local_runner.errors import DefinitionError, utc_now
from devtools.local_runner.interpreter import ExecutionResult, Interpreter
from devtools.local_runner.services import LocalServices
from devtools.repo import REPO_ROOT
from spark_jobs.lake import local_online_store_path


def default_state_dir(lake_root: str) -> Path:
    """Lease table, execution registry and job logs: inside a local lake, else a per-lake folder on this machine."""
    if lake_root.startswith(("s3://", "s3a://")):
        digest = hashlib.sha256(lake_root.rstrip("/").encode()).hexdigest()[:12]
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return cache / "card-features-runner" / digest
    return Path(lake_root).resolve() / "_orchestration"


def local_config(lake_root: str, state_dir: Path, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Values for every placeholder, as Terraform passes them, but local: backend `local`, code_uri = this repo."""
    lake = lake_root.rstrip("/") if lake_root.startswith(("s3://", "s3a://")) else str(Path(lake_root).resolve())
    # feature_store/ingest_features.py's own default for a local lake; an S3 lake keeps it on this machine.
    online_store = local_online_store_path(lake_root) or str(state_dir / "online.db")
    is_s3 = lake_root.startswith(("s3://", "s3a://"))
    config = {
        "aws_region": "us-east-1",
        "emr_application_id": "local",
        "emr_job_role_arn": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local-emr-job",
        "lake_root": lake,
        "code_uri": "file://" + str(REPO_ROOT),
        "lease_table_name": "local-run-lease",
        "alerts_topic_arn": f"arn:aws:sns:us-east-1:{LOCAL_ACCOUNT}:local-alerts",
        "feature_store_backend": "local",
        # Not a placeholder: the state machines pass no --online-store-path (empty on AWS, and EMR drops an
        # empty argument); the local runner adds it to the ingestion job (LocalServices._local_only_arguments).
        "online_store_path": online_store,
        "online_state_table": "",  # empty: the ingestion syncs the local SQLite state (beside online.db)
        # The bronze listing's lookback; empty buffering and retention (no delivery stream here): silver_and_gold
        # bounds a record's arrival by Firehose's maximum buffering and leaves the retention check out.
        "bronze_lookback_hours": "48",
        "firehose_buffering_seconds": "",
        "stream_retention_hours": "",
        # empty: silver_and_gold's SQLite event-id index, in a local lake's _state/ by default; for an S3 lake
        # the runner adds --event-id-index-path (a file on this machine, not a placeholder, like online_store_path)
        "event_id_index_table": "",
        "event_id_index_path": str(state_dir / "event_id_index.sqlite") if is_s3 else "",
        "delta_log_table_name": "local-delta-log",
        "glue_database": "",
        "card_token_secret_id": "",
        "log_group_name": "/local/emr-serverless",
    }
    for key, value in (overrides or {}).items():
        if key not in config:
            raise DefinitionError(f"unknown configuration key {key!r}; known: {', '.join(config)}")
        config[key] = str(value)
    return config


class UnguardedLakeError(ValueError):
    """An s3:// lake the local runner may not write: it has neither the DynamoDB lease nor the S3 log store."""


def refuse_unguarded_s3_lake(lake_root: str, *, single_writer_s3_lake: bool) -> None:
    """The local runner's lease is a file on this machine and it drops Delta's S3DynamoDBLogStore (it cannot
    point at a custom endpoint), so on a shared S3 lake a deployed execution, or a runner elsewhere, could
    commit at the same time (S3 has no atomic rename for Delta's default log store). Refused unless the caller
    says nothing else writes that bucket."""
    if lake_root.startswith(("s3://", "s3a://")) and not single_writer_s3_lake:
        raise UnguardedLakeError(
            f"--lake-root {lake_root}: the local runner has neither the pipeline's DynamoDB lease nor Delta's "
            "S3DynamoDBLogStore, so another writer of that lake (the deployed state machines, a runner on another "
            "machine) could commit at the same time. Start the deployed state machine instead (docs/runbook.md), "
            "or pass --single-writer-s3-lake for a bucket nothing else writes (a moto server, a scratch bucket)."
        )


def run_pipeline(
    *,
    mode: str,
    lake_root: str,
    execution_input: dict | None = None,
    endpoint_url: str | None = None,
    definition_path: Path | None = None,
    state_dir: Path | None = None,
    config_overrides: Mapping[str, str] | None = None,
    execution_name: str | None = None,
    time_scale: float = 1.0,
    spark_master: str = "local[*]",
    job_launcher: Callable[[JobRequest], dict] | None = None,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    register_feature_group: bool | None = None,
    single_writer_s3_lake: bool = False,
) -> ExecutionResult:
    """Run one execution of state_machines/<mode>.asl.json (or `definition_path`) locally.

    With the local feature store backend, the feature group is registered first (idempotent), as the deploy
    workflow does on AWS; by default only when the jobs really run (no `job_launcher` stub). An s3:// lake is
    refused (UnguardedLakeError) unless `single_writer_s3_lake` (see refuse_unguarded_s3_lake).
    """
    refuse_unguarded_s3_lake(lake_root, single_writer_s3_lake=single_writer_s3_lake)
    state_dir = Path(state_dir) if state_dir else default_state_dir(lake_root)
    config = local_config(lake_root, state_dir, config_overrides)
    definition_path = definition_path or STATE_MACHINES_DIR / f"{mode}.asl.json"
    definition = load_definition(definition_path, config)
    if register_feature_group is None:
        register_feature_group = job_launcher is None
    if register_feature_group and config["feature_store_backend"] == "local":
        register_local_feature_group(config, endpoint_url=endpoint_url, log=log)
    started = utc_now()
    execution_name = execution_name or f"{mode}-{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    services = LocalServices(
        state_dir=state_dir,
        config=config,
        alerts=LocalAlerts(lake_root, endpoint_url=endpoint_url, lock_path=state_dir / "alerts.lock"),
        job_launcher=job_launcher or SparkSubmitLauncher(master=spark_master, echo=log),
        endpoint_url=endpoint_url,
        log=log,
    )
    interpreter = Interpreter(
        definition,
        services,
        state_machine_name=f"local-{definition_path.name.removesuffix('.asl.json')}",
        execution_name=execution_name,
        region=config["aws_region"],
        time_scale=time_scale,
        log=log,
        sleep=sleep,
    )
    execution_input = execution_input or {}
    services.executions.register(
        interpreter.execution_arn, state_machine_arn=interpreter.state_machine_arn, execution_input=execution_input
    )
    result = ExecutionResult(interpreter.execution_arn, execution_name, "FAILED")
    try:
        result = interpreter.run(execution_input)
    finally:
        services.executions.finish(
            interpreter.execution_arn, result.status, output=result.output, error=result.error, cause=result.cause
        )
    return result


def register_local_feature_group(
    config: Mapping[str, str], *, endpoint_url: str | None, log: Callable[[str], None]
) -> None:
    """The local stand-in of the deploy step that creates the feature group (idempotent)."""
    command = [
        sys.executable,
        str(REPO_ROOT / "feature_store" / "register_feature_groups.py"),
        "--backend",
        "local",
        "--lake-root",
        config["lake_root"],
        "--online-store-path",
        config["online_store_path"],
    ]
    if endpoint_url:
        command += ["--endpoint-url", endpoint_url]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise DefinitionError(f"registering the local feature group failed: {(result.stdout + result.stderr)[-2000:]}")
    log(f"local setup: feature group registered in {config['online_store_path']} (the deploy workflow's step on AWS)")


def summary_lines(result: ExecutionResult) -> list[str]:
    lines = [f"execution {result.name}: {result.status} in {result.seconds:.1f}s"]
    if result.error:
        lines.append(f"  error {result.error}: {result.cause}")
    slow = sorted(
        (r for r in result.states if r.seconds >= 0.05 or r.retries or r.outcome != "ok"), key=lambda r: -r.seconds
    )
    for record in slow:
        extra = f", {record.retries} retries" if record.retries else ""
        outcome = "" if record.outcome == "ok" else f", {record.outcome}"
        lines.append(f"  {record.name:<28} {record.seconds:8.1f}s{extra}{outcome}")
    lines.append(f"  states visited: {' -> '.join(r.name for r in result.states)}")
    for job in result.jobs:
        report = f" report {job['runreport']}" if job.get("runreport") else ""
        seconds = f" {job['durationseconds']}s" if "durationseconds" in job else ""
        lines.append(f"  job {job['state']}: {job['status']}{seconds}{report}")
    lines.append(f"  output: {json.dumps(result.output, sort_keys=True)[:2000]}")
    return lines
