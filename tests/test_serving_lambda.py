"""The serving Lambda against moto (DynamoDB state, Secrets Manager key, S3 FX rates and model): API
Gateway, function URL (base64) and direct invocations answer as the HTTP service; the configuration is
read once per container; bad events and a missing configuration are clear errors."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from moto import mock_aws

from feature_store import model_artifact, serving_lambda
from feature_store.online_state_dynamodb import DynamoDbOnlineState, create_table
from spark_jobs.feature_registry import FEATURE_SET_VERSION
from tests.serving_fixtures import (
    CARD_NUMBER,
    MODEL_INPUTS,
    T0_S,
    MerchantRecords,
    authorization,
    silver_event,
    small_model,
)

REGION = "eu-west-1"
TABLE = "card-online-state"
TOKEN_KEY_HEX = "5e" * 32  # a key of its own: the Lambda refuses the public development key
BUCKET = "serving-config"
ENV = {
    "ONLINE_STATE_TABLE": TABLE,
    "CARD_TOKEN_SECRET_ID": "card-token-key",
    "FX_RATES_URI": f"s3://{BUCKET}/reference/fx_rates.csv",
    "MODEL_URI": f"s3://{BUCKET}/models/model.zip",
    "FEATURE_SET_VERSION": str(FEATURE_SET_VERSION),
}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(serving_lambda, "_container_runtime", None)
    # moto has no sagemaker-featurestore-runtime: the merchant lookups answer "no record" (their requests are
    # asserted with botocore's Stubber in tests/test_serving_merchant.py)
    monkeypatch.setattr(serving_lambda, "featurestore_runtime_client", MerchantRecords)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb, TABLE)
        DynamoDbOnlineState(TABLE, client=dynamodb).upsert_silver(
            [silver_event("s-1", T0_S - 1800, "10.00"), silver_event("s-2", T0_S, "20.00")]
        )
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="card-token-key", SecretString=TOKEN_KEY_HEX
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=BUCKET, Key="reference/fx_rates.csv", Body=b"currency,usd_rate\nUSD,1.0\nEUR,1.08\n")
        model = model_artifact.dumps(small_model(), input_names=MODEL_INPUTS, training={"as_of": "2026-01-01"})
        s3.put_object(Bucket=BUCKET, Key="models/model.zip", Body=model)
        yield s3


def http_api_event(path: str, body: str | None, *, method: str = "POST", base64_body: bool = False) -> dict:
    """An API Gateway HTTP API (payload 2.0) / function URL event."""
    event = {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": method, "path": path}}}
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
        event["isBase64Encoded"] = base64_body
    return event


def answer(response: dict) -> tuple[int, dict]:
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_features_and_scores_through_every_event_style(aws, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    status, body = answer(serving_lambda.handler(http_api_event("/v1/features", authorization("l-1", T0_S + 1)), None))
    assert status == 200 and body["event_id"] == "l-1" and body["features"]["txn_count_1h"] == 3
    assert body["features"]["txn_amount_1h"] == "35.2500000000"

    url_event = http_api_event("/v1/features", authorization("l-2", T0_S + 2), base64_body=True)
    status, body = answer(serving_lambda.handler(url_event, None))
    assert status == 200 and body["features"]["txn_count_1h"] == 4  # l-1 was written back to DynamoDB

    rest_event = {"httpMethod": "POST", "path": "/prod/v1/score", "body": authorization("l-3", T0_S + 3)}
    status, body = answer(serving_lambda.handler(rest_event, None))
    assert status == 200 and body["features"]["txn_count_1h"] == 5 and 0 <= body["score"] <= 1

    status, body = answer(serving_lambda.handler({"body": authorization("l-4", T0_S + 4, amount="0")}, None))
    assert status == 422 and body["error"] == "non_positive_amount"
    status, body = answer(serving_lambda.handler({"body": authorization("l-1", T0_S + 1)}, None))
    assert status == 200 and body["features"]["txn_count_1h"] == 3  # the same event again: the same features
    status, body = answer(serving_lambda.handler(http_api_event("/health", None, method="GET"), None))
    assert status == 200 and body["model"]["as_of"] == "2026-01-01"

    # The configuration was read once: the container reuses it even after the secret and rates are gone.
    aws.delete_object(Bucket=BUCKET, Key="reference/fx_rates.csv")
    status, _ = answer(serving_lambda.handler({"body": authorization("l-5", T0_S + 5)}, None))
    assert status == 200


def test_bad_events_are_clear_answers(aws, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MODEL_URI")
    cases = [
        ({"body": {"event_id": "x"}}, 400, "bad_request"),  # a parsed object: the raw bytes are gone
        ({"path": "/v1/features"}, 400, "bad_request"),
        ({"body": "%%%", "isBase64Encoded": True}, 400, "bad_request"),
        (http_api_event("/v2/other", "{}"), 404, "not_found"),
        (http_api_event("/v1/features", None, method="GET"), 405, "method_not_allowed"),
        ({"path": "/v1/score", "body": authorization("n-1", T0_S + 1)}, 503, "no_model"),
        ({"body": authorization("n-2", T0_S + 1, card_number="4111111111111112")}, 422, "invalid_card_number"),
    ]
    for event, expected_status, reason in cases:
        response = serving_lambda.handler(event, None)
        status, body = answer(response)
        assert (status, body["error"]) == (expected_status, reason), event
        assert CARD_NUMBER not in response["body"]


def test_a_missing_configuration_names_the_variables(aws, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONLINE_STATE_TABLE", TABLE)
    with pytest.raises(serving_lambda.LambdaConfigError, match="CARD_TOKEN_SECRET_ID, FX_RATES_URI"):
        serving_lambda.handler({"body": "{}"}, None)
    config = serving_lambda.LambdaConfig(TABLE, "card-token-key", f"s3://{BUCKET}/reference/fx_rates.csv", "s3://x")
    with pytest.raises(serving_lambda.LambdaConfigError, match="not an s3://bucket/key URI"):
        serving_lambda.build_runtime(config)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FEATURE_SET_VERSION", "99")
    with pytest.raises(serving_lambda.LambdaConfigError, match="FEATURE_SET_VERSION=99 but this package serves"):
        serving_lambda.handler({"body": "{}"}, None)


def test_a_model_of_another_feature_set_is_refused_at_cold_start(aws, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    other = model_artifact.dumps(small_model(), input_names=MODEL_INPUTS, feature_set_version=99)
    aws.put_object(Bucket=BUCKET, Key="models/model.zip", Body=other)
    with pytest.raises(
        model_artifact.ModelArtifactError,
        match=r"s3://serving-config/models/model\.zip was trained on feature set version 99",
    ):
        serving_lambda.handler({"body": authorization("m-1", T0_S)}, None)


def test_the_handler_imports_without_spark_or_the_web_stack():
    """The Lambda package has neither pyspark nor FastAPI: the handler's imports must not need them."""
    import subprocess
    import sys
    from pathlib import Path

    check = (
        "import sys, feature_store.serving_lambda, feature_store.serving, feature_store.online_state_dynamodb; "
        "loaded = [name for name in ('pyspark', 'fastapi', 'starlette', 'uvicorn') if name in sys.modules]; "
        "assert not loaded, loaded"
    )
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", check], cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
