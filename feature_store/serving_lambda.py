"""The request-time feature service as an AWS Lambda function: the same FeatureServer and endpoints as
the HTTP service (`feature_store/serving_endpoints.py`), over the DynamoDB online state.

Configuration, from the environment, read once per container (the cold start):

    ONLINE_STATE_TABLE     the DynamoDB online state table (feature_store/online_state_dynamodb.py)
    CARD_TOKEN_SECRET_ID   Secrets Manager secret holding the card-token HMAC key (hex), as the batch jobs use
    FX_RATES_URI           the batch jobs' currency,usd_rate CSV: s3://bucket/key or a path in the package
    MODEL_URI              optional: a model.zip (s3:// or path) from scripts/train_baseline.py for /v1/score
    FEATURE_SET_VERSION    optional: the version the deployment expects; a package of another one refuses to start
    MERCHANT_FEATURE_GROUP optional: the merchant feature group read at request time (GetRecord, in AWS_REGION);
                           default merchant-features-v{N} of the registry

Merchant features come from the merchant group's online record (feature_store/merchant_lookup.py): one
GetRecord per request through `sagemaker-featurestore-runtime` with the SDK's standard retries.

Events: API Gateway (REST or HTTP API) and function URLs (`body` a string, `isBase64Encoded`, the route
from `rawPath`/`path` and the method), or a direct invocation `{"body": "<the authorization JSON>"}`
(optionally with `"path": "/v1/score"`). The body must be the authorization's JSON text, not a parsed
object: the bronze contract judges its raw bytes (duplicate keys, NaN, exponents). The answer is
`{"statusCode", "headers", "body"}` with the HTTP service's status and JSON body.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feature_store import serving_endpoints
from feature_store.serving_endpoints import BAD_REQUEST, EndpointResult, error_result

ENV_TABLE = "ONLINE_STATE_TABLE"
ENV_SECRET = "CARD_TOKEN_SECRET_ID"
ENV_FX_RATES = "FX_RATES_URI"
ENV_MODEL = "MODEL_URI"
ENV_FEATURE_SET_VERSION = "FEATURE_SET_VERSION"
ENV_MERCHANT_GROUP = "MERCHANT_FEATURE_GROUP"

FEATURES_PATH = "/v1/features"
SCORE_PATH = "/v1/score"
HEALTH_PATH = "/health"
_ROUTES = {FEATURES_PATH: "POST", SCORE_PATH: "POST", HEALTH_PATH: "GET"}


class LambdaConfigError(RuntimeError):
    """A required environment variable is missing or its resource cannot be read."""


@dataclass(frozen=True)
class LambdaConfig:
    table_name: str
    token_secret_id: str
    fx_rates_uri: str
    model_uri: str | None
    expected_feature_set_version: str | None = None
    merchant_feature_group: str | None = None  # None: the registry's merchant-features-v{N}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LambdaConfig:
        missing = [name for name in (ENV_TABLE, ENV_SECRET, ENV_FX_RATES) if not environ.get(name)]
        if missing:
            raise LambdaConfigError(f"the serving function needs the environment variables {', '.join(missing)}")
        return cls(
            environ[ENV_TABLE],
            environ[ENV_SECRET],
            environ[ENV_FX_RATES],
            environ.get(ENV_MODEL) or None,
            environ.get(ENV_FEATURE_SET_VERSION) or None,
            environ.get(ENV_MERCHANT_GROUP) or None,
        )


@dataclass(frozen=True)
class ServingRuntime:
    """What a container builds once and every invocation reuses."""

    server: Any  # FeatureServer
    model: Any  # ModelArtifact | None


def read_uri(uri: str, *, s3_client: Any = None) -> bytes:
    """The bytes of an s3://bucket/key object or a local file (a path in the deployment package)."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise LambdaConfigError(f"{uri!r} is not an s3://bucket/key URI")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    path = Path(uri.removeprefix("file://"))
    if not path.is_file():
        raise LambdaConfigError(f"no file at {uri}")
    return path.read_bytes()


def featurestore_runtime_client() -> Any:
    """The sagemaker-featurestore-runtime client of the merchant lookups (AWS_REGION, standard retries)."""
    from feature_store.backends.sagemaker import runtime_client

    return runtime_client(None, retries=True)


def build_runtime(
    config: LambdaConfig,
    *,
    dynamodb_client: Any = None,
    secrets_client: Any = None,
    s3_client: Any = None,
    featurestore_client: Any = None,
) -> ServingRuntime:
    """The FeatureServer over the DynamoDB state and the merchant group, with the card-token key, the FX rates
    and the model."""
    from feature_store import model_artifact
    from feature_store.merchant_lookup import MerchantSnapshots
    from feature_store.online_state_dynamodb import DynamoDbOnlineState
    from feature_store.serving import FeatureServer
    from spark_jobs.bronze_contract import load_fx_rates
    from spark_jobs.card_numbers import resolve_token_keys
    from spark_jobs.feature_registry import FEATURE_SET_VERSION

    expected = config.expected_feature_set_version
    if expected is not None and expected != str(FEATURE_SET_VERSION):
        raise LambdaConfigError(
            f"{ENV_FEATURE_SET_VERSION}={expected} but this package serves feature set version "
            f"{FEATURE_SET_VERSION}: deploy the matching code, or change the variable with the feature set"
        )
    # Production: the public development key is refused here (card_numbers.TokenKeyError).
    token_key = resolve_token_keys(config.token_secret_id, secrets_client=secrets_client)
    fx_rates = load_fx_rates(read_uri(config.fx_rates_uri, s3_client=s3_client), source=config.fx_rates_uri)
    model = None
    if config.model_uri:
        data = read_uri(config.model_uri, s3_client=s3_client)
        model = model_artifact.loads(data, source=config.model_uri)
    state = DynamoDbOnlineState(config.table_name, client=dynamodb_client)
    merchants = MerchantSnapshots(featurestore_client or featurestore_runtime_client(), config.merchant_feature_group)
    server = FeatureServer(state, fx_rates=fx_rates, token_key=token_key, merchant_snapshots=merchants)
    return ServingRuntime(server, model)


_container_runtime: ServingRuntime | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point."""
    global _container_runtime  # noqa: PLW0603 - built once per container, reused by every invocation
    if _container_runtime is None:
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # on Lambda (not in tests): every log line as JSON
            serving_endpoints.configure_json_logs(force=True)
        _container_runtime = build_runtime(LambdaConfig.from_env())
    return handle_event(_container_runtime, event)


def handle_event(runtime: ServingRuntime, event: Mapping[str, Any]) -> dict[str, Any]:
    """One invocation: route, take the raw body, answer as the HTTP service does."""
    method, path = _route(event)
    if path not in _ROUTES:
        return _lambda_response(error_result(404, "not_found", f"no route {path}; routes: {', '.join(_ROUTES)}"))
    if method != _ROUTES[path]:
        return _lambda_response(error_result(405, "method_not_allowed", f"{path} takes {_ROUTES[path]}, got {method}"))
    if path == HEALTH_PATH:
        return _lambda_response(serving_endpoints.health(runtime.model))
    body = _raw_body(event)
    if isinstance(body, EndpointResult):
        return _lambda_response(body)
    if path == SCORE_PATH:
        result = serving_endpoints.handle(path, serving_endpoints.score, runtime.server, runtime.model, body)
    else:
        result = serving_endpoints.handle(path, serving_endpoints.serve_features, runtime.server, body)
    return _lambda_response(result)


def _route(event: Mapping[str, Any]) -> tuple[str, str]:
    """(method, path): HTTP API / function URL (requestContext.http, rawPath), REST API (httpMethod, path),
    or a direct invocation (POST, `path` or /v1/features). A stage prefix (/prod/v1/score) is dropped."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or event.get("httpMethod") or "POST").upper()
    path = str(event.get("rawPath") or event.get("path") or FEATURES_PATH).rstrip("/") or "/"
    for route in _ROUTES:
        if path.endswith(route):
            return method, route
    return method, path


def _raw_body(event: Mapping[str, Any]) -> bytes | str | EndpointResult:
    body = event.get("body")
    if not isinstance(body, str):
        found = "no body" if body is None else f"a {type(body).__name__}"
        return error_result(400, BAD_REQUEST, f"the body must be the authorization's JSON text (a string), got {found}")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            return error_result(400, BAD_REQUEST, "isBase64Encoded is set but the body is not valid base64")
    return body


def _lambda_response(result: EndpointResult) -> dict[str, Any]:
    return {
        "statusCode": result.status,
        "headers": {"content-type": "application/json"},
        "body": result.json_bytes().decode("utf-8"),
        "isBase64Encoded": False,
    }
