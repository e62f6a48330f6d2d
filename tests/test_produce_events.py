"""scripts/produce_events.py against a moto Kinesis server over HTTP. moto never reports failed records, so a
botocore event hook rewrites responses to inject partial failures; the test checks exactly those are re-sent."""

from __future__ import annotations

import gzip
import json
import random
import socket

import boto3
import pytest

from devtools.producer import (
    MAX_RECORD_BYTES,
    MAX_REQUEST_BYTES,
    KinesisRecord,
    kinesis_client,
    put_records,
    record_for_line,
    request_batches,
)
from scripts.produce_events import main

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def create_stream(endpoint: str, name: str) -> None:
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION)
    client.create_stream(StreamName=name, ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})


def stream_records(endpoint: str, name: str) -> list[dict]:
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION)
    found = []
    for shard in client.list_shards(StreamName=name)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = client.get_records(ShardIterator=iterator, Limit=10_000)
            found += response["Records"]
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return found


def event_line(index: int, card: int) -> str:
    return json.dumps({"event_id": f"{index:032x}", "card_id": f"card_{card}", "amount": 1.5}) + "\n"


def test_only_the_records_a_response_marks_failed_are_sent_again(moto_endpoint):
    create_stream(moto_endpoint, "partial-failures")
    client = kinesis_client(moto_endpoint, REGION)
    sent_requests: list[list[bytes]] = []
    failing = {0: [3, 7, 498], 1: [0]}  # request number → entries the rewritten response marks failed

    def capture(params, **kwargs):
        sent_requests.append([entry["Data"] for entry in params["Records"]])

    def inject_failures(http_response, parsed, model, **kwargs):
        request = len(sent_requests) - 1
        for index in failing.get(request, []):
            parsed["Records"][index] = {
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": "Rate exceeded for shard",
            }
        parsed["FailedRecordCount"] = len(failing.get(request, []))

    client.meta.events.register("provide-client-params.kinesis.PutRecords", capture)
    client.meta.events.register("after-call.kinesis.PutRecords", inject_failures)
    records = [record_for_line(event_line(i, i % 7)) for i in range(620)]
    sleeps = []
    summary = put_records(client, "partial-failures", records, sleep=sleeps.append, rng=random.Random(1))

    first = [record.data for record in records[:500]]
    assert sent_requests[0] == first
    assert sent_requests[1] == [first[3], first[7], first[498]]  # exactly the failed ones, in order
    assert sent_requests[2] == [first[3]]  # the re-send's own failed entry 0, alone
    assert sent_requests[3] == [record.data for record in records[500:]]
    assert len(sleeps) == 2 and all(0 <= s <= 5 for s in sleeps)
    assert (summary.records, summary.sent, summary.resent, summary.failed, summary.requests) == (620, 620, 4, 0, 4)
    assert summary.error_codes == {"ProvisionedThroughputExceededException": 4}
    stored = stream_records(moto_endpoint, "partial-failures")
    # moto stored the "failed" entries too (only the responses were rewritten): 620 + 4 re-sent.
    assert len(stored) == 624
    assert {record["Data"] for record in stored} == {record.data for record in records}
    by_data = {record["Data"]: record["PartitionKey"] for record in stored}
    assert by_data[records[5].data] == "card_5"
    assert not any(record["Data"].endswith(b"\n") for record in stored)


def test_records_failing_every_attempt_are_counted_failed(moto_endpoint):
    create_stream(moto_endpoint, "always-failing")
    client = kinesis_client(moto_endpoint, REGION)

    def fail_first_entry(http_response, parsed, **kwargs):
        parsed["Records"][0] = {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure"}
        parsed["FailedRecordCount"] = 1

    client.meta.events.register("after-call.kinesis.PutRecords", fail_first_entry)
    records = [record_for_line(event_line(i, i)) for i in range(3)]
    summary = put_records(client, "always-failing", records, max_attempts=3, sleep=lambda s: None)
    assert (summary.sent, summary.failed, summary.resent, summary.requests) == (2, 1, 2, 3)


def test_request_batches_respect_count_and_size_limits():
    small = [KinesisRecord(b"x" * 10, "k") for _ in range(1201)]
    assert [len(batch) for batch in request_batches(small)] == [500, 500, 201]
    big = [KinesisRecord(b"y" * (MAX_RECORD_BYTES - 10), "key") for _ in range(11)]
    batches = list(request_batches(big))
    assert [len(batch) for batch in batches] == [5, 5, 1]
    assert all(sum(record.size for record in batch) <= MAX_REQUEST_BYTES for batch in batches)


def test_record_for_line():
    record = record_for_line('\ufeff{"card_id": "card_9", "amount": 1}\r\n')
    assert record.data == b'{"card_id": "card_9", "amount": 1}' and record.partition_key == "card_9"
    assert record_for_line("   \n") is None
    unreadable = record_for_line("{not json\n")
    assert unreadable.data == b"{not json" and len(unreadable.partition_key) == 32


def test_oversized_records_are_rejected_not_sent(moto_endpoint):
    create_stream(moto_endpoint, "oversized")
    client = kinesis_client(moto_endpoint, REGION)
    records = [KinesisRecord(b"z" * MAX_RECORD_BYTES, "k"), record_for_line(event_line(1, 1))]
    summary = put_records(client, "oversized", records, sleep=lambda s: None)
    assert (summary.records, summary.sent, summary.rejected) == (2, 1, 1)


def test_command_line_with_files_and_generated_events(moto_endpoint, tmp_path, capsys):
    create_stream(moto_endpoint, "from-cli")
    plain = tmp_path / "events.ndjson"
    plain.write_text("".join(event_line(i, i % 3) for i in range(5)) + "\n")
    zipped = tmp_path / "more"
    zipped.write_bytes(gzip.compress("".join(event_line(i, 1) for i in range(5, 8)).encode()))
    common = ["--stream", "from-cli", "--endpoint-url", moto_endpoint, "--region", REGION]
    assert main([*common, "--file", str(plain), "--file", str(zipped)]) == 0
    assert "8 of 8 records" in capsys.readouterr().out
    assert main([*common, "--events", "200", "--cards", "20", "--days", "1"]) == 0
    line = capsys.readouterr().out
    assert "failed 0" in line
    assert len(stream_records(moto_endpoint, "from-cli")) > 200  # bad lines and re-deliveries included
