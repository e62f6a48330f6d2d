"""One writer (issue 17): create-only commits, locally and on S3 (moto honours `If-None-Match: *`)."""

from __future__ import annotations

import threading

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
