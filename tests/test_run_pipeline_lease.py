"""The stream and daily state machines through the local runner, with the jobs stubbed: the lease (acquire,
skip while live, stale holder cleared, daily_pending, the 2-hour wait), alerts and release after failures,
retries that start new job runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devtools.local_runner import (
    ExecutionRegistry,
    LocalDynamoDB,
    StatesError,
    local_config,
    run_pipeline,
)

LEASE = "card-features-pipeline"
PENDING = "card-features-pipeline#daily-pending"
TABLE = "local-run-lease"
OTHER = "arn:aws:states:us-east-1:000000000000:execution:local-stream:other-run"


class StubJobs:
    """Records each job request; `failures` maps an entry point name to errors raised on its next calls."""

    def __init__(self, failures=None, delay=0.0):
        self.requests = []
        self.failures = {name: list(errors) for name, errors in (failures or {}).items()}
        self.delay = delay

    def __call__(self, job):
        self.requests.append(job)
        if self.delay:
            time.sleep(self.delay)
        pending = self.failures.get(job.entry_point.name)
        if pending:
            raise pending.pop(0)
        return {"DurationSeconds": 0.0}

    @property
    def entry_points(self):
        return [job.entry_point.name for job in self.requests]


def lease_table(lake: Path) -> dict:
    path = lake / "_orchestration" / "dynamodb" / f"{TABLE}.json"
    items = json.loads(path.read_text()) if path.exists() else {}
    return {json.loads(key)["lease_id"]["S"]: item for key, item in items.items()}


def dynamodb(lake: Path) -> LocalDynamoDB:
    return LocalDynamoDB(lake / "_orchestration" / "dynamodb", {TABLE: ("lease_id",)})


def registry(lake: Path) -> ExecutionRegistry:
    return ExecutionRegistry(lake / "_orchestration" / "executions")


def put(lake: Path, key: str, holder: str) -> None:
    dynamodb(lake).put_item({"TableName": TABLE, "Item": {"lease_id": {"S": key}, "holder": {"S": holder}}})


def register(lake: Path, arn: str, *, pid: int) -> None:
    """An execution in the registry as if its runner were process `pid` (alive or not)."""
    registry(lake).register(arn, state_machine_arn=arn.rsplit(":", 1)[0], execution_input={})
    path = lake / "_orchestration" / "executions" / arn.split(":")[6] / f"{arn.split(':')[7]}.json"
    record = json.loads(path.read_text())
    record["pid"] = pid
    path.write_text(json.dumps(record))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def alerts(lake: Path) -> list[dict]:
    path = lake / "_runs" / "alerts.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run(lake: Path, mode: str = "stream", jobs=None, **options):
    return run_pipeline(
        mode=mode,
        lake_root=str(lake),
        job_launcher=jobs if jobs is not None else StubJobs(),
        time_scale=options.pop("time_scale", 0),
        log=lambda line: None,
        **options,
    )


def trace(result, state: str) -> list[str]:
    """The arguments linking a job to its execution: its own run id, the execution's ARN."""
    return ["--run-id", f"{result.name}.{state}.0.0", "--execution-arn", result.execution_arn]


def value_of(arguments: list[str], option: str) -> str:
    return arguments[arguments.index(option) + 1]


def visited(result) -> list[str]:
    return [record.name for record in result.states]


def test_stream_takes_the_lease_runs_both_jobs_and_releases(tmp_path):
    jobs = StubJobs()
    result = run(tmp_path, jobs=jobs, endpoint_url="http://127.0.0.1:9")
    assert result.status == "SUCCEEDED" and result.output["status"] == "succeeded"
    assert jobs.entry_points == ["silver_and_gold.py", "ingest_features.py"]
    silver, ingest = jobs.requests
    # Empty options (glue database, token secret) are left out locally; the endpoint is added.
    fx_rates = f"file://{Path(__file__).resolve().parents[1]}/spark_jobs/reference_data/fx_rates.csv"
    now = value_of(silver.arguments, "--now")  # the execution's start time (no schedule)
    assert silver.arguments == [
        "--mode", "stream", "--lake-root", str(tmp_path), "--region", "us-east-1", "--fx-rates", fx_rates,
        "--now", now, "--lookback-hours", "48",
        *trace(result, "RunSilverAndGold"),
        "--endpoint-url", "http://127.0.0.1:9",
        "--allow-development-token-key",  # the runner's local lake: the public development key, asked for
    ]  # fmt: skip
    assert ingest.arguments[:4] == ["--backend", "local", "--lake-root", str(tmp_path)]
    # Not in the ASL (it would be an empty argument on AWS): the local runner adds the local online store.
    assert ingest.arguments[-2:] == ["--online-store-path", f"{tmp_path}/feature_store/online.db"]
    assert "--online-state-table" not in ingest.arguments  # empty locally: the SQLite online state
    assert ingest.arguments[-8:-4] == trace(result, "IngestFeatures")
    assert silver.spark_conf == {}  # the S3DynamoDBLogStore settings stay on EMR
    assert silver.execution_timeout_seconds < silver.state_timeout_seconds
    tokens = [result.output["jobs"][name]["ClientToken"] for name in ("silver_and_gold", "ingest_features")]
    assert len(set(tokens)) == 2 and all(len(token) == 32 for token in tokens)
    assert lease_table(tmp_path) == {}
    assert registry(tmp_path).describe(result.execution_arn)["Status"] == "SUCCEEDED"


def test_stream_skips_while_a_live_run_holds_the_lease(tmp_path):
    register(tmp_path, OTHER, pid=os.getpid())
    put(tmp_path, LEASE, OTHER)
    jobs = StubJobs()
    result = run(tmp_path, jobs=jobs)
    assert result.status == "SUCCEEDED"
    assert result.output == {"status": "skipped", "reason": "another run holds the lease", "holder": OTHER}
    assert jobs.requests == []
    assert lease_table(tmp_path)[LEASE]["holder"] == {"S": OTHER}


@pytest.mark.parametrize("mode", ["stream", "daily"])
def test_a_holder_pending_redrive_is_live_and_keeps_the_lease(tmp_path, mode):
    """A redriven execution (DescribeExecution: PENDING_REDRIVE, then RUNNING) resumes under the same ARN and
    still holds the lease: never taken over. Its runner process is gone meanwhile, which does not matter."""
    register(tmp_path, OTHER, pid=dead_pid())
    registry(tmp_path).finish(OTHER, "PENDING_REDRIVE")
    put(tmp_path, LEASE, OTHER)
    jobs = StubJobs()
    result = run(tmp_path, mode, jobs=jobs)
    assert "ReleaseStaleLease" not in visited(result)
    assert jobs.requests == []
    assert lease_table(tmp_path)[LEASE]["holder"] == {"S": OTHER}
    if mode == "stream":
        assert result.output == {"status": "skipped", "reason": "another run holds the lease", "holder": OTHER}
    else:  # daily waits for it (2 hours), then gives up and alerts, leaving the holder's lease alone
        assert result.status == "FAILED" and "WaitForLease" in visited(result)


def test_a_daily_run_pending_redrive_still_makes_stream_runs_step_aside(tmp_path):
    daily = "arn:aws:states:us-east-1:000000000000:execution:local-daily:redriven"
    register(tmp_path, daily, pid=dead_pid())
    registry(tmp_path).finish(daily, "PENDING_REDRIVE")
    put(tmp_path, PENDING, daily)
    jobs = StubJobs()
    result = run(tmp_path, jobs=jobs)
    assert result.output == {"status": "skipped", "reason": "a daily run is waiting for the lease", "holder": daily}
    assert jobs.requests == [] and lease_table(tmp_path)[PENDING]["holder"] == {"S": daily}


@pytest.mark.parametrize("mode", ["stream", "daily"])
def test_a_replay_holding_the_lease_is_a_live_holder_for_the_state_machines(tmp_path, mode):
    """A replay or backfill run by hand holds the lease as `manual:…` (spark_jobs/run_lease.py): DescribeExecution
    refuses it (InvalidArn), which the machines take as live: stream skips, daily waits."""
    holder = "manual:replay_quarantine:host:123:20260101T000000Z"
    put(tmp_path, LEASE, holder)
    jobs = StubJobs()
    result = run(tmp_path, mode, jobs=jobs)
    assert jobs.requests == [] and lease_table(tmp_path)[LEASE]["holder"] == {"S": holder}
    assert "DescribeLeaseHolderFailed" not in visited(result) and "ReleaseStaleLease" not in visited(result)
    if mode == "stream":
        assert result.output == {"status": "skipped", "reason": "another run holds the lease", "holder": holder}
    else:
        assert "WaitForLease" in visited(result)


def test_a_replay_waits_for_no_one_it_refuses_while_an_execution_runs(tmp_path, capsys):
    """replay-dead-letters takes the pipeline lease: with a live execution holding it, exit 5 and nothing runs;
    once the holder is finished, the replay clears it, runs and releases."""
    from scripts import replay_dead_letters

    register(tmp_path, OTHER, pid=os.getpid())
    put(tmp_path, LEASE, OTHER)
    assert replay_dead_letters.main(["--lake-root", str(tmp_path)]) == 5
    error = capsys.readouterr().err
    assert f"held by {OTHER}" in error and "still running" in error
    assert not (tmp_path / "_runs").exists()  # refused before the job started
    registry(tmp_path).finish(OTHER, "PENDING_REDRIVE")
    assert replay_dead_letters.main(["--lake-root", str(tmp_path)]) == 5  # a redrive pending is live too
    registry(tmp_path).finish(OTHER, "FAILED")
    assert replay_dead_letters.main(["--lake-root", str(tmp_path)]) == 0
    assert lease_table(tmp_path) == {}


def test_a_replay_on_an_s3_lake_needs_the_dynamodb_lease_table(tmp_path, capsys):
    from scripts import replay_dead_letters

    arguments = ["--lake-root", "s3://bucket/lake", "--backend", "sagemaker", "--region", "eu-west-1"]
    assert replay_dead_letters.main(arguments) == 5
    assert "an S3 lake needs --lease-table" in capsys.readouterr().err


@pytest.mark.parametrize("holder_state", ["dead runner", "unknown execution", "finished"])
def test_a_stale_holder_is_cleared_and_the_run_proceeds(tmp_path, holder_state):
    if holder_state == "dead runner":
        register(tmp_path, OTHER, pid=dead_pid())
    elif holder_state == "finished":
        register(tmp_path, OTHER, pid=os.getpid())
        registry(tmp_path).finish(OTHER, "FAILED")
    put(tmp_path, LEASE, OTHER)
    jobs = StubJobs()
    result = run(tmp_path, jobs=jobs)
    assert result.status == "SUCCEEDED" and result.output["status"] == "succeeded"
    assert "ReleaseStaleLease" in visited(result)
    assert len(jobs.requests) == 2
    assert lease_table(tmp_path) == {}


def test_stream_steps_aside_for_a_waiting_daily_run_and_clears_a_stale_flag(tmp_path):
    daily = "arn:aws:states:us-east-1:000000000000:execution:local-daily:waiting"
    register(tmp_path, daily, pid=os.getpid())
    put(tmp_path, PENDING, daily)
    result = run(tmp_path)
    assert result.output == {"status": "skipped", "reason": "a daily run is waiting for the lease", "holder": daily}
    registry(tmp_path).finish(daily, "ABORTED")
    jobs = StubJobs()
    result = run(tmp_path, jobs=jobs)
    assert result.output["status"] == "succeeded" and len(jobs.requests) == 2
    assert "ClearStaleDailyPending" in visited(result)
    assert lease_table(tmp_path) == {}


def test_daily_runs_its_three_jobs_with_the_date_override(tmp_path):
    jobs = StubJobs()
    result = run(tmp_path, "daily", jobs=jobs, execution_input={"date": "2026-02-14"})
    assert result.status == "SUCCEEDED"
    assert jobs.entry_points == ["silver_and_gold.py", "build_datasets.py", "ingest_features.py"]
    day_after_at_midnight = ["--scheduled-time", "2026-02-14T23:00:00-01:00"]
    assert jobs.requests[0].arguments[:4] == ["--mode", "daily", "--lake-root", str(tmp_path)]
    assert value_of(jobs.requests[0].arguments, "--scheduled-time") == day_after_at_midnight[1]
    assert jobs.requests[0].arguments[-5:-1] == trace(result, "RunDailySilverAndGold")
    assert jobs.requests[1].arguments == [
        "--lake-root", str(tmp_path), "--region", "us-east-1", *day_after_at_midnight, *trace(result, "BuildDatasets"),
    ]  # fmt: skip
    assert jobs.requests[2].arguments[-6:-2] == trace(result, "IngestFeatures")
    assert lease_table(tmp_path) == {}  # lease released, pending flag cleared
    jobs = StubJobs()
    run(tmp_path, "daily", jobs=jobs, execution_input={"scheduled_time": "2026-02-15T00:05:00Z"})
    assert value_of(jobs.requests[0].arguments, "--scheduled-time") == "2026-02-15T00:05:00Z"
    assert jobs.requests[1].arguments[-6:-4] == ["--scheduled-time", "2026-02-15T00:05:00Z"]


def test_daily_waits_for_a_live_holder_and_proceeds_when_it_finishes(tmp_path):
    register(tmp_path, OTHER, pid=os.getpid())
    put(tmp_path, LEASE, OTHER)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 3:  # the stream run finishes (and releases) during the third wait
            dynamodb(tmp_path).delete_item({"TableName": TABLE, "Key": {"lease_id": {"S": LEASE}}})
            registry(tmp_path).finish(OTHER, "SUCCEEDED")

    jobs = StubJobs()
    result = run(tmp_path, "daily", jobs=jobs, execution_input={"date": "2026-02-14"}, time_scale=1.0, sleep=sleep)
    assert result.status == "SUCCEEDED"
    assert waits == [300.0, 300.0, 300.0]
    assert visited(result).count("WaitForLease") == 3
    assert len(jobs.requests) == 3
    assert lease_table(tmp_path) == {}


def test_daily_gives_up_after_two_hours_alerts_and_leaves_the_holders_lease(tmp_path):
    register(tmp_path, OTHER, pid=os.getpid())
    put(tmp_path, LEASE, OTHER)
    waits = []
    jobs = StubJobs()
    result = run(tmp_path, "daily", jobs=jobs, execution_input={"date": "2026-02-14"}, time_scale=1.0,
                 sleep=waits.append)  # fmt: skip
    assert result.status == "FAILED" and result.error == "PipelineFailed"
    assert sum(waits) == 2 * 3600
    assert jobs.requests == []
    assert "ReleaseLeaseAfterFailure" not in visited(result)
    assert lease_table(tmp_path) == {LEASE: {"lease_id": {"S": LEASE}, "holder": {"S": OTHER}}}  # flag cleared
    [alert] = alerts(tmp_path)
    message = json.loads(alert["message"])
    assert message["state"] == "WaitForLease" and message["error"]["Error"] == "LeaseWaitTimeout"
    assert message["execution"] == result.execution_arn and message["holder"] == OTHER


def test_a_failed_job_alerts_releases_the_lease_and_fails(tmp_path):
    cause = json.dumps({"State": "FAILED", "StateDetails": "spark-submit exited with 1: boom"})
    jobs = StubJobs(failures={"ingest_features.py": [StatesError("States.TaskFailed", cause)]})
    result = run(tmp_path, jobs=jobs)
    assert result.status == "FAILED" and result.error == "PipelineFailed"
    assert visited(result)[-4:] == ["IngestFeaturesFailed", "NotifyFailure", "ReleaseLeaseAfterFailure", "Failed"]
    [alert] = alerts(tmp_path)
    assert alert["subject"] == "card-features stream run failed"
    assert alert["topic"] == local_config(str(tmp_path), tmp_path)["alerts_topic_arn"]
    message = json.loads(alert["message"])
    assert message == {
        "execution": result.execution_arn,
        "state": "IngestFeatures",
        "error": {"Error": "States.TaskFailed", "Cause": cause},
    }
    assert lease_table(tmp_path) == {}
    assert registry(tmp_path).describe(result.execution_arn)["Status"] == "FAILED"


def test_transient_emr_errors_are_retried_each_retry_a_new_job_run(tmp_path):
    transient = StatesError("EMRServerless.InternalServerException", "Internal server error")
    jobs = StubJobs(failures={"silver_and_gold.py": [transient, transient]})
    result = run(tmp_path, jobs=jobs)
    assert result.status == "SUCCEEDED"
    assert jobs.entry_points == ["silver_and_gold.py"] * 3 + ["ingest_features.py"]
    assert result.states[[r.name for r in result.states].index("RunSilverAndGold")].retries == 2
    assert len({job.log_path.name for job in jobs.requests[:3]}) == 3


def test_a_failure_while_taking_the_lease_alerts_without_releasing(tmp_path, monkeypatch):
    def denied(self, parameters):
        raise StatesError("DynamoDB.AccessDeniedException", "not authorized to perform dynamodb:PutItem")

    monkeypatch.setattr(LocalDynamoDB, "put_item", denied)
    jobs = StubJobs()
    result = run(tmp_path, jobs=jobs)
    assert result.status == "FAILED"
    assert visited(result)[-4:] == ["AcquireLease", "AcquireLeaseFailed", "NotifyLeaseFailure", "Failed"]
    assert jobs.requests == []
    message = json.loads(alerts(tmp_path)[0]["message"])
    assert message["state"] == "AcquireLease"
    assert message["error"]["Error"] == "DynamoDB.AccessDeniedException"


def test_two_concurrent_stream_runs_one_works_one_skips(tmp_path):
    jobs = StubJobs(delay=1.0)
    results = []
    threads = [threading.Thread(target=lambda: results.append(run(tmp_path, jobs=jobs))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(result.output["status"] for result in results)
    assert statuses == ["skipped", "succeeded"]
    assert len(jobs.requests) == 2
    assert lease_table(tmp_path) == {}


def test_the_command_line(tmp_path, capsys):
    from scripts import run_pipeline as runner

    assert runner.main(["--mode", "stream", "--lake-root", str(tmp_path), "--definition", "/nonexistent"]) == 4
    assert "/nonexistent" in capsys.readouterr().err
    definition = tmp_path / "tiny.asl.json"
    definition.write_text(json.dumps({"StartAt": "Hi", "States": {"Hi": {"Type": "Pass", "Result": "${lake_root}",
                                                                         "End": True}}}))  # fmt: skip
    code = runner.main(["--mode", "stream", "--lake-root", str(tmp_path), "--definition", str(definition), "--json"])
    output = capsys.readouterr().out
    assert code == 0
    assert json.loads(output.strip().splitlines()[-1])["output"] == str(tmp_path)
    definition.write_text(json.dumps({"StartAt": "M", "States": {"M": {"Type": "Map", "End": True}}}))
    assert runner.main(["--mode", "stream", "--lake-root", str(tmp_path), "--definition", str(definition)]) == 4
    assert "unsupported: state type Map" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        runner.parse_args(["--mode", "stream", "--lake-root", str(tmp_path), "--date", "2026-01-01"])


def test_a_missing_local_lake_is_refused_before_anything_runs(tmp_path, capsys):
    """A mistyped --lake-root used to get an _orchestration folder, i.e. a new empty lake, and a run on nothing."""
    from scripts import run_pipeline as runner
    from spark_jobs import exit_codes

    missing = tmp_path / "lkae"
    assert runner.main(["--mode", "stream", "--lake-root", str(missing)]) == exit_codes.PRECONDITION_FAILED
    assert f"run_pipeline: error: --lake-root {missing}: no lake there" in capsys.readouterr().err
    assert not missing.exists()


def test_the_local_runner_refuses_a_shared_s3_lake(tmp_path, capsys):
    """No DynamoDB lease, no S3DynamoDBLogStore: an s3:// lake only with --single-writer-s3-lake."""
    from scripts import run_pipeline as command

    jobs = StubJobs()
    with pytest.raises(ValueError, match="neither the pipeline's DynamoDB lease nor Delta's S3DynamoDBLogStore"):
        run_pipeline(
            mode="stream",
            lake_root="s3://bucket/lake",
            state_dir=tmp_path / "state",
            job_launcher=jobs,
            time_scale=0,
            log=lambda line: None,
        )
    assert jobs.requests == []
    arguments = ["--mode", "stream", "--lake-root", "s3://bucket/lake", "--state-dir", str(tmp_path / "state")]
    assert command.main(arguments) == 5
    assert "--single-writer-s3-lake" in capsys.readouterr().err
