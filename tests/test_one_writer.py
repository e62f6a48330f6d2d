"""One writer (issue 17): create-only commits, locally and on S3 (moto honours `If-None-Match: *`)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from spark_jobs.storage import AlreadyCommittedError, CommitConflictError, CreateOnlyLog, S3Storage, open_lake


@pytest.fixture
def local_lake(tmp_path):
    return open_lake(str(tmp_path / "lake"), create=True)


@pytest.fixture
def s3_lake():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="lake")
        yield S3Storage("s3://lake/prefix", client=client)


@pytest.fixture(params=["local", "s3"])
def lake(request):
    return request.getfixturevalue(f"{request.param}_lake")


def test_create_json_creates_once_and_keeps_the_first_content(lake):
    uri = lake.uri("_state", "commits", "000000000001.json")
    lake.create_json(uri, {"run_id": "first"})
    with pytest.raises(AlreadyCommittedError, match="exists already"):
        lake.create_json(uri, {"run_id": "second"})
    assert lake.read_json(uri) == {"run_id": "first"}


def test_concurrent_creators_exactly_one_wins(local_lake):
    uri = local_lake.uri("_state", "race.json")
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def create(number: int) -> None:
        start.wait()
        try:
            local_lake.create_json(uri, {"run_id": f"writer-{number}"})
            outcomes.append(f"writer-{number}")
        except AlreadyCommittedError:
            outcomes.append("lost")

    threads = [threading.Thread(target=create, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [outcome for outcome in outcomes if outcome != "lost"]
    assert len(winners) == 1 and local_lake.read_json(uri) == {"run_id": winners[0]}


def test_s3_create_sends_if_none_match_and_maps_412():
    """The exact request: PutObject with IfNoneMatch='*'; S3's 412 PreconditionFailed is 'another writer'."""
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    storage = S3Storage("s3://lake/prefix", client=client)
    with Stubber(client) as stub:
        stub.add_response(
            "put_object", {}, {"Bucket": "lake", "Key": "prefix/c.json", "Body": b"{}", "IfNoneMatch": "*"}
        )
        stub.add_client_error(
            "put_object",
            service_error_code="PreconditionFailed",
            http_status_code=412,
            expected_params={"Bucket": "lake", "Key": "prefix/c.json", "Body": b"{}", "IfNoneMatch": "*"},
        )
        stub.add_response(
            "get_object", {"Body": _body(b'{"run_id": "other"}')}, {"Bucket": "lake", "Key": "prefix/c.json"}
        )
        storage.create_bytes("s3://lake/prefix/c.json", b"{}")
        with pytest.raises(AlreadyCommittedError):
            storage.create_bytes("s3://lake/prefix/c.json", b"{}")
        stub.assert_no_pending_responses()


def test_s3_create_retries_a_409_conflict_and_then_reports_the_winner():
    """409 ConditionalRequestConflict (a concurrent conditional write in flight): retried, as the S3 guide says;
    the retry's 412 with another writer's bytes is AlreadyCommittedError, with our own bytes (a resent PUT) success."""
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    storage = S3Storage("s3://lake/prefix", client=client)
    put = {"Bucket": "lake", "Key": "prefix/c.json", "Body": b"mine", "IfNoneMatch": "*"}
    with Stubber(client) as stub:
        for theirs in (b"theirs", b"mine"):
            stub.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409, expected_params=put)
            stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412, expected_params=put)
            stub.add_response("get_object", {"Body": _body(theirs)}, {"Bucket": "lake", "Key": "prefix/c.json"})
        with pytest.raises(AlreadyCommittedError):
            storage.create_bytes("s3://lake/prefix/c.json", b"mine")
        storage.create_bytes("s3://lake/prefix/c.json", b"mine")  # our own earlier PUT: no rival
        stub.assert_no_pending_responses()


def _body(data: bytes):
    import io

    from botocore.response import StreamingBody

    return StreamingBody(io.BytesIO(data), len(data))


def test_commit_log_two_writers_one_sequence(lake):
    def log():
        return CreateOnlyLog(
            lake,
            records_uri=lake.uri("_state", "w", "commits"),
            pointer_uri=lake.uri("_state", "w", "watermark.json"),
            sequence_key="sequence",
            what="test watermark",
        )

    first, second = log(), log()
    assert first.latest() is None and second.latest() is None
    first.commit({"sequence": 1, "run_id": "run-a", "version": 5}, run_id="run-a")
    with pytest.raises(CommitConflictError, match=r"test watermark: commit 1 was made by run run-a .*this run run-b"):
        second.commit({"sequence": 1, "run_id": "run-b", "version": 4}, run_id="run-b")
    assert second.latest() == {"sequence": 1, "run_id": "run-a", "version": 5}
    # A pointer that trails (a writer died between its record and the pointer) is corrected by probing.
    lake.create_json(first.record_uri(2), {"sequence": 2, "run_id": "run-c", "version": 6})
    assert first.latest()["run_id"] == "run-c"


# The bronze ledger: one commit per batch -------------------------------------------------------------------


def _put_bronze(storage, hour: str, name: str, data: bytes = b"x") -> None:
    from spark_jobs.lake import BRONZE_EVENTS_PREFIX

    storage.write_bytes(storage.uri(BRONZE_EVENTS_PREFIX, f"ingest_dt={hour}", name), data)


def test_two_writers_commit_the_same_batch_exactly_one_wins(lake):
    """A job still running after its lease was released (the zombie) and the next run both work on batch 1."""
    from spark_jobs.bronze_ledger import BronzeLedger

    _put_bronze(lake, "2026/01/01/00", "a.gz")
    zombie = BronzeLedger(lake)
    zombie_plan = zombie.plan("zombie-run", zombie.list_new_files(lookback_hours=48, full_scan=False).new_files)
    _put_bronze(lake, "2026/01/01/01", "b.gz")
    successor = BronzeLedger(lake)
    # The successor resumes the pending batch 1 (the same files) and commits it first.
    resumed = successor.pending()
    assert resumed is not None and resumed.batch == zombie_plan.batch == 1
    successor.commit(resumed, committed_by="successor-run")
    with pytest.raises(
        CommitConflictError, match=r"bronze ledger batch: commit 1 was made by run successor-run .*this run zombie-run"
    ):
        zombie.commit(zombie_plan, committed_by="zombie-run")
    assert successor.committed()["last_batch"] == 1
    # The loser left the ledger as the winner wrote it: b.gz is still new, a.gz is processed.
    assert [
        item.uri.rsplit("/", 1)[1] for item in successor.list_new_files(lookback_hours=48, full_scan=False).new_files
    ] == ["b.gz"]


def test_concurrent_plans_of_one_batch_number_commit_once(local_lake):
    """Two runs without a common lease plan batch 1 from different listings: only one commit stands."""
    from spark_jobs.bronze_ledger import BronzeLedger

    _put_bronze(local_lake, "2026/01/01/00", "a.gz")
    first = BronzeLedger(local_lake)
    first_plan = first.plan("run-a", first.list_new_files(lookback_hours=48, full_scan=False).new_files)
    _put_bronze(local_lake, "2026/01/01/00", "b.gz")
    second = BronzeLedger(local_lake)
    listing = second.list_new_files(lookback_hours=48, full_scan=False)
    # run-b never saw run-a's pending plan (it read the state before run-a wrote it): same batch number.
    from spark_jobs.bronze_ledger import BatchPlan

    second_plan = BatchPlan(batch=1, run_id="run-b", files=listing.new_files)
    second.commit(second_plan)
    with pytest.raises(CommitConflictError, match=r"commit 1 was made by run run-b .*this run run-a"):
        first.commit(first_plan)
    committed = first.committed()
    assert committed["last_batch"] == 1 and committed["last_run_id"] == "run-b"


def test_a_commit_beyond_the_pointer_is_rolled_forward(local_lake, monkeypatch):
    """The writer stopped after creating its commit record: the next reader applies its hour entries."""
    from spark_jobs.bronze_ledger import BronzeLedger

    _put_bronze(local_lake, "2026/01/01/00", "a.gz")
    ledger = BronzeLedger(local_lake)
    plan = ledger.plan("run-a", ledger.list_new_files(lookback_hours=48, full_scan=False).new_files)

    def crash(*_args, **_kwargs):
        raise RuntimeError("stopped after the commit record")

    monkeypatch.setattr(BronzeLedger, "_record_hour_entries", crash)
    with pytest.raises(RuntimeError, match="stopped after the commit record"):
        ledger.commit(plan)
    monkeypatch.undo()
    assert local_lake.read_json(local_lake.uri("_state", "bronze_ledger", "committed.json")) is None
    fresh = BronzeLedger(local_lake)
    assert fresh.committed()["last_batch"] == 1 and fresh.pending() is None
    assert fresh.list_new_files(lookback_hours=48, full_scan=False).new_files == []
    assert local_lake.read_json(local_lake.uri("_state", "bronze_ledger", "committed.json"))["last_batch"] == 1


# Watermarks and the jobs' exit code ------------------------------------------------------------------------


def test_a_job_losing_a_commit_exits_5_naming_the_commit_and_the_winner(tmp_path, capsys):
    """Two runs read the same feature-store watermark; the slower one's commit is refused: exit 5, not a
    silently overwritten watermark (what `write_json` did on 363dd11)."""
    from spark_jobs import lake as lake_paths
    from spark_jobs.job_run import JobResult, JobSpec, run_job

    root = tmp_path / "lake"
    root.mkdir()
    storage = open_lake(str(root))
    uri = lake_paths.feature_store_watermark_uri(storage)

    def log():
        return lake_paths.state_commit_log(storage, uri, what="feature store watermark")

    slow_reader = log()
    seen_by_slow = slow_reader.latest()  # None: nothing committed yet
    log().commit({"sequence": 1, "gold_version": 7, "run_id": "fast-run"}, run_id="fast-run")

    def body(storage, report):
        slow_reader.commit(
            {"sequence": slow_reader.sequence(seen_by_slow) + 1, "gold_version": 5, "run_id": report.run_id},
            run_id=report.run_id,
        )
        return JobResult()

    spec = JobSpec(job="ingest_features", mode="incremental", lake_root=str(root), arguments={"run_id": "slow-run"})
    assert run_job(spec, body) == 5
    error = capsys.readouterr().err
    assert "feature store watermark: commit 1 was made by run fast-run" in error and "this run slow-run" in error
    assert storage.read_json(uri)["gold_version"] == 7


# The run lease (replays and backfills) -------------------------------------------------------------------


@pytest.fixture
def dynamodb_lease():
    from spark_jobs.run_lease import DynamoDBLeaseTable

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="lease",
            KeySchema=[{"AttributeName": "lease_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "lease_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoDBLeaseTable("lease", client=client)


EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:stream:run-1"


@pytest.mark.parametrize(
    ("status", "taken_over"),
    [
        ("RUNNING", False),
        ("PENDING_REDRIVE", False),
        ("FAILED", True),
        ("TIMED_OUT", True),
        ("ABORTED", True),
        (None, True),
    ],
)
def test_the_lease_of_an_execution_is_taken_over_only_when_it_is_not_live(dynamodb_lease, status, taken_over):
    from spark_jobs.run_lease import LeaseHeldError, acquire, lease_item

    dynamodb_lease.put_if_absent(lease_item(EXECUTION, now=datetime.now(UTC), hold_for=timedelta(hours=1)))
    statuses = {EXECUTION: status}
    if taken_over:
        acquire(dynamodb_lease, "manual:replay", statuses.get)
        assert dynamodb_lease.get()["holder"]["S"] == "manual:replay"
    else:
        with pytest.raises(LeaseHeldError, match=f"held by {EXECUTION}"):
            acquire(dynamodb_lease, "manual:replay", statuses.get)
        assert dynamodb_lease.get()["holder"]["S"] == EXECUTION


def test_a_manual_holder_is_live_until_it_expires_and_releases_only_its_own_lease(dynamodb_lease):
    from spark_jobs.run_lease import LeaseHeldError, acquire, held_lease

    with held_lease(dynamodb_lease, "manual:backfill", lambda arn: None, hold_for=timedelta(hours=1)):
        with pytest.raises(LeaseHeldError, match="held by manual:backfill"):
            acquire(dynamodb_lease, "manual:replay", lambda arn: None)
        later = datetime.now(UTC) + timedelta(hours=2)
        acquire(dynamodb_lease, "manual:replay", lambda arn: None, now=lambda: later)  # expired: taken over
    # The backfill's release is conditioned on itself: the replay's lease stays.
    assert dynamodb_lease.get()["holder"]["S"] == "manual:replay"


def test_a_backfill_started_by_hand_takes_the_lease(tmp_path, monkeypatch, capsys):
    """silver_and_gold.py --lease-table without --execution-arn (the runbook's backfill): refused while a
    state machine execution is RUNNING with the lease (DescribeExecution through moto)."""
    from spark_jobs import silver_and_gold
    from spark_jobs.run_lease import lease_item

    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    lake = tmp_path / "lake"
    lake.mkdir()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="lease",
            KeySchema=[{"AttributeName": "lease_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "lease_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="stream",
            definition='{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": true}}}',
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="run-1")["executionArn"]
        assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
        dynamodb.put_item(TableName="lease", Item=lease_item(execution, now=datetime.now(UTC), hold_for=timedelta(0)))
        arguments = ["--mode", "stream", "--full-scan", "--lake-root", str(lake), "--lease-table", "lease"]
        assert silver_and_gold.main([*arguments, "--region", "us-east-1"]) == 5
        assert f"held by {execution}" in capsys.readouterr().err
        assert not (lake / "_runs").exists()  # refused before the job started
        item = dynamodb.get_item(TableName="lease", Key={"lease_id": {"S": "card-features-pipeline"}})["Item"]
        assert item["holder"]["S"] == execution
