"""End to end on S3: the stream state machine through the local runner against a moto S3 server over HTTP, the
jobs as real spark-submits reading and writing s3:// through S3A (path-style, dummy credentials)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import boto3
import pytest

from devtools.generator import GeneratorConfig, generate_lake, load_manifest
from devtools.local_runner import run_pipeline

REGION = "us-east-1"
BUCKET = "card-lake"
PREFIX = "env/lake"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def moto_s3(monkeypatch):
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # An S3 lake never takes the public development key: the jobs read this test's own key from the environment.
    monkeypatch.setenv("LAKEHOUSE_CARD_TOKEN_KEY", "5e" * 32)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def upload_tree(s3, local: Path, prefix: str) -> int:
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(local).as_posix()}")
        count += 1
    return count


def delta_rows(endpoint: str, table: str) -> list[dict]:
    from deltalake import DeltaTable

    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    return DeltaTable(f"s3://{BUCKET}/{PREFIX}/{table}", storage_options=options).to_pyarrow_table().to_pylist()


@pytest.mark.slow
def test_stream_pipeline_on_a_moto_s3_lake(moto_s3, tmp_path):
    generated = tmp_path / "generated"
    generate_lake(GeneratorConfig(events=300, cards=30, days=2, seed=19, files_per_hour=1, lake_root=generated))
    counts = load_manifest(generated)["counts"]
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name=REGION)
    uploaded = upload_tree(s3, generated / "bronze", f"{PREFIX}/bronze")
    assert uploaded == counts["bronze_files"] + 1 + counts["label_files"]  # + the ignored .tmp file

    lines = []
    result = run_pipeline(
        mode="stream",
        lake_root=f"s3://{BUCKET}/{PREFIX}",
        endpoint_url=moto_s3,
        state_dir=tmp_path / "state",
        spark_master="local[2]",
        log=lines.append,
        single_writer_s3_lake=True,  # the moto bucket has no other writer
    )
    assert result.status == "SUCCEEDED", "\n".join(lines[-60:]) + f"\n{result.error}: {result.cause}"
    assert result.output["status"] == "succeeded"
    assert [job["state"] for job in result.jobs] == ["RunSilverAndGold", "IngestFeatures"]

    keys = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
            for item in page.get("Contents", [])}  # fmt: skip
    for table in ("silver/card_transactions", "silver/duplicates", "silver/quarantine", "gold/card_features"):
        assert f"{PREFIX}/{table}/_delta_log/00000000000000000000.json" in keys, table
    silver = delta_rows(moto_s3, "silver/card_transactions")
    assert len(silver) == counts["events"]
    assert len({row["event_id"] for row in silver}) == counts["events"]
    assert len(delta_rows(moto_s3, "silver/quarantine")) == (
        counts["bad_lines"] + counts["conflicts"] + counts["unreadable_files"]
    )
    assert len(delta_rows(moto_s3, "silver/duplicates")) == counts["duplicates"]
    assert len(delta_rows(moto_s3, "gold/card_features")) == counts["events"]
    reports = [key for key in keys if key.startswith(f"{PREFIX}/_runs/") and key.endswith(".json")]
    silver_key = f"{PREFIX}/_runs/{result.name}.RunSilverAndGold.0.0.json"  # the run id the state machine passed
    assert silver_key in reports
    silver_report = json.loads(s3.get_object(Bucket=BUCKET, Key=silver_key)["Body"].read())
    assert silver_report["status"] == "succeeded" and silver_report["counts"]["accepted"] == counts["events"]
    assert silver_report["execution_arn"] == result.execution_arn
    assert (tmp_path / "state" / "online.db").exists()  # the local online store of an S3 lake stays local
    assert (tmp_path / "state" / "online_state.db").exists()  # so does the online state, synced with silver
    assert not any(key.endswith("alerts.log") for key in keys)
