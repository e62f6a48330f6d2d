"""Every boto3 client a job creates on EMR gets an explicit region (spark_jobs/aws_region.py): the job's --region,
else AWS_REGION / AWS_DEFAULT_REGION, else a clear error instead of botocore's fallbacks."""

from __future__ import annotations

import boto3
import pytest


@pytest.fixture
def clients(monkeypatch):
    """boto3.client replaced by a recorder of (service, keyword arguments); no region in the environment."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    created: list[tuple[str, dict]] = []

    class FakeClient:
        def head_object(self, **_):
            return {}

        def put_object(self, **_):  # the run report
            return {}

        def get_secret_value(self, **_):
            return {"SecretString": "ab" * 32}

    def fake_client(service, **kwargs):
        created.append((service, kwargs))
        return FakeClient()

    monkeypatch.setattr(boto3, "client", fake_client)
    return created


def test_the_s3_lake_client_is_created_in_the_environments_region(clients, monkeypatch):
    from spark_jobs.storage import open_lake

    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert open_lake("s3://bucket/lake").exists("s3://bucket/lake/_state/x.json")
    assert clients == [("s3", {"region_name": "eu-west-1", "endpoint_url": None})]


def test_the_jobs_region_option_wins_over_the_environment(clients, monkeypatch):
    from spark_jobs.card_numbers import resolve_token_keys
    from spark_jobs.storage import open_lake

    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    open_lake("s3://bucket/lake", region="ap-southeast-2").exists("s3://bucket/lake/x")
    assert resolve_token_keys("card-features/key", region="ap-southeast-2").current_key == bytes.fromhex("ab" * 32)
    assert [(service, kwargs["region_name"]) for service, kwargs in clients] == [
        ("s3", "ap-southeast-2"),
        ("secretsmanager", "ap-southeast-2"),
    ]


def test_no_region_anywhere_is_a_clear_error_naming_what_needed_it(clients):
    from spark_jobs.card_numbers import resolve_token_keys
    from spark_jobs.storage import open_lake

    storage = open_lake("s3://bucket/lake")  # no client yet: opening a lake needs no AWS call
    with pytest.raises(
        ValueError, match="no AWS region for the S3 lake s3://bucket/lake: pass --region or set AWS_REGION"
    ):
        storage.exists("s3://bucket/lake/x")
    with pytest.raises(ValueError, match="no AWS region for the Secrets Manager secret 'card-features/key'"):
        resolve_token_keys("card-features/key")
    assert clients == []


def test_the_lake_jobs_take_region_and_job_run_opens_the_lake_in_it(clients):
    from spark_jobs.build_datasets import parse_args as datasets_args
    from spark_jobs.job_run import JobResult, JobSpec, run_job
    from spark_jobs.silver_and_gold import parse_args as silver_args

    assert silver_args(["--region", "eu-central-1"]).region == "eu-central-1"
    assert datasets_args(["--as-of", "2026-02-01", "--region", "eu-central-1"]).region == "eu-central-1"
    spec = JobSpec(job="demo_job", mode="stream", lake_root="s3://bucket/lake", arguments={"region": "eu-central-1"})
    assert run_job(spec, lambda storage, report: JobResult()) == 0
    assert clients and all(kwargs["region_name"] == "eu-central-1" for _, kwargs in clients)
