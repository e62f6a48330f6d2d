"""What each serving endpoint answers, once for every front door: the HTTP service
(`feature_store/http_service.py`), the Lambda handler (`feature_store/serving_lambda.py`) and the replay
CLI (`feature_store/serve_features.py`) all call these functions, so a request gets the same status and
body whichever door it came through.

- features: one authorization (its raw JSON bytes) → 200 with the served features, 422
  `{"error": <contract reason>, "detail": ...}` when the bronze contract or the event_id check refuses it;
- score: the same plus `"score"`, the model's fraud probability on the served features in the model's
  input order; 503 when no model is loaded;
- health: 200 with the feature set version and the model loaded, if any.

Also the JSON log lines: one per request with its event_id, level, status and latency, never a card
number (every logged text goes through the card-number mask).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feature_store.model_artifact import AMOUNT_INPUT, ModelArtifact
from spark_jobs.card_numbers import mask_card_numbers
from spark_jobs.feature_registry import FEATURE_SET_VERSION
from spark_jobs.job_log import JsonLogFormatter

NO_MODEL = "no_model"
INTERNAL_ERROR = "internal_error"
BAD_REQUEST = "bad_request"
BODY_TOO_LARGE = "body_too_large"
EVENT_ID_LOG_MAX_CHARS = 200
MAX_BODY_BYTES = 64 * 1024  # one authorization is a few hundred bytes; anything this big is not one

if TYPE_CHECKING:
    from feature_store.serving import FeatureServer, ServedFeatures

log = logging.getLogger("feature_store.serving")


@dataclass(frozen=True)
class EndpointResult:
    """An endpoint's answer: HTTP status, JSON body, and what the request log needs."""

    status: int
    body: dict[str, Any]
    event_id: str | None = None  # as served or as refused (None when the body had none)
    reason: str | None = None  # the error's reason, for the log
    log_fields: dict[str, Any] = field(default_factory=dict)

    def json_bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def error_result(status: int, reason: str, detail: str, *, event_id: str | None = None) -> EndpointResult:
    body = {"error": reason, "detail": mask_card_numbers(detail)}
    return EndpointResult(status, body, event_id=event_id, reason=reason)


def serve_features(server: FeatureServer, raw_body: bytes | str) -> EndpointResult:
    """POST /v1/features: the served features of one authorization, or the reason it was refused."""
    served = _serve(server, raw_body)
    return served if isinstance(served, EndpointResult) else _served_result(served)


def score(server: FeatureServer, model: ModelArtifact | None, raw_body: bytes | str) -> EndpointResult:
    """POST /v1/score: the served features plus `score`, the model's fraud probability computed on them (in
    the model's input order) and the authorization's USD amount."""
    if model is None:
        # Checked first: without a model nothing is served, so nothing is written back either.
        return error_result(
            503,
            NO_MODEL,
            "no model is loaded, so there is nothing to score with: start the service with --model PATH "
            "(a model.zip written by scripts/train_baseline.py), or set MODEL_URI for the Lambda; "
            "POST /v1/features serves the features alone",
        )
    served = _serve(server, raw_body)
    if isinstance(served, EndpointResult):
        return served
    result = _served_result(served)
    result.body["score"] = model.score({**served.features, AMOUNT_INPUT: _authorization_amount(server, served)})
    return result


def _authorization_amount(server: FeatureServer, served: ServedFeatures) -> Decimal:
    """The authorization's USD amount (the contract's conversion, exact), as the state holds it now: written
    back by this request, or there before it (a repeat)."""
    stored = server.state.find(served.card_id, served.event_id)
    if stored is None:  # the batch removed it in between (quarantined): nothing sound to score
        raise LookupError(f"event {served.event_id} left the online state while being scored")
    return stored.amount_usd


def _serve(server: FeatureServer, raw_body: bytes | str) -> ServedFeatures | EndpointResult:
    """The server's ServedFeatures, or the error result (413 too large, 422 refused by the contract)."""
    from feature_store.serving import ServingRejected

    size = len(raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body)
    if size > MAX_BODY_BYTES:
        return error_result(
            413, BODY_TOO_LARGE, f"the body is over {MAX_BODY_BYTES} bytes; one authorization is a few hundred"
        )
    try:
        return server.serve(raw_body)
    except ServingRejected as rejected:
        return error_result(422, rejected.reason, rejected.detail, event_id=_event_id_of(raw_body))


def _event_id_of(raw_body: bytes | str) -> str | None:
    """A refused body's event_id for the log, if it has a readable one (the log masks card numbers)."""
    try:
        record = json.loads(raw_body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    event_id = record.get("event_id") if isinstance(record, dict) else None
    return event_id[:EVENT_ID_LOG_MAX_CHARS] if isinstance(event_id, str) else None


def _served_result(served: ServedFeatures) -> EndpointResult:
    return EndpointResult(200, served.as_json(), event_id=served.event_id, log_fields={"replayed": served.replayed})


def health(model: ModelArtifact | None) -> EndpointResult:
    """GET /health: the service is up; which feature set it serves and which model it scores with."""
    body: dict[str, Any] = {"status": "ok", "feature_set_version": FEATURE_SET_VERSION, "model": None}
    if model is not None:
        body["model"] = {
            "feature_set_version": model.feature_set_version,
            "input_names": list(model.input_names),
            "as_of": model.training.get("as_of"),
        }
    return EndpointResult(200, body)


# --- request logs ------------------------------------------------------------------------------------------


def configure_json_logs(level: int = logging.INFO, *, force: bool = False) -> None:
    """Send every log record (the service's and uvicorn's) to stderr as JSON lines. Like
    logging.basicConfig, nothing changes when the root logger already has handlers (an embedding
    application's, or pytest's) unless `force` (the Lambda runtime installs its own, to be replaced)."""
    root = logging.getLogger()
    if root.handlers and not force:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)


def log_request(endpoint: str, result: EndpointResult, started: float) -> None:
    """The request's log line: event_id, status, reason and latency (milliseconds since `started`, a
    time.perf_counter() value)."""
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    # 503 (no model) is the deployment's choice, worth a warning; any other 5xx is a failure of ours
    level = logging.INFO if result.status < 500 else logging.WARNING if result.status == 503 else logging.ERROR
    fields = {
        "endpoint": endpoint,
        "event_id": result.event_id,
        "status": result.status,
        "latency_ms": latency_ms,
        **({"reason": result.reason} if result.reason else {}),
        **result.log_fields,
    }
    log.log(level, "%s %s", endpoint, result.status, extra={"fields": fields})


def handle(endpoint: str, call, *args: Any) -> EndpointResult:
    """Run one endpoint function, turning an unexpected exception into a 500 (logged with its traceback,
    masked) and logging the request either way."""
    started = time.perf_counter()
    try:
        result = call(*args)
    except Exception as error:
        raw_body = args[-1] if args and isinstance(args[-1], bytes | str) else b""
        event_id = _event_id_of(raw_body)
        log.exception("%s failed", endpoint, extra={"fields": {"endpoint": endpoint, "event_id": event_id}})
        detail = f"{type(error).__name__}: the request could not be served"
        result = error_result(500, INTERNAL_ERROR, detail, event_id=event_id)
    log_request(endpoint, result, started)
    return result


# --- the local server and the replay ------------------------------------------------------------------


class ServingSetupError(RuntimeError):
    """The lake or its online state is missing: nothing to serve from."""


def local_server(
    lake_root: str | Path, *, fx_rates_path: str | Path | None = None, allow_development_token_key: bool = False
) -> FeatureServer:
    """FeatureServer.local over an existing lake, its online state and its local online store's merchant group;
    a clear error when any is missing (serving from an empty state would count none of the card's past events),
    or when no card-token key is given and the public development key is not allowed
    (card_numbers.TokenKeyError)."""
    from feature_store.online_state import local_state_path
    from feature_store.serving import FeatureServer

    root = Path(lake_root)
    if not root.is_dir():
        raise ServingSetupError(f"no lake at {root} (build one: make demo, or scripts/run_pipeline.py)")
    state = local_state_path(root)
    if not state.is_file():
        raise ServingSetupError(
            f"no online state at {state}: it is built from silver by the pipeline's feature-store step "
            "(feature_store/ingest_features.py, after every stream, daily and full run): run the pipeline first "
            "(scripts/run_pipeline.py, or make demo)"
        )
    try:  # the merchant features: the merchant group of the lake's local online store
        return FeatureServer.local(root, fx_rates_path=fx_rates_path, allow_dev_key=allow_development_token_key)
    except (FileNotFoundError, LookupError) as error:
        raise ServingSetupError(f"{error} (scripts/run_pipeline.py, or make demo, does both)") from error


def replay_ndjson(server: FeatureServer, lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Serve each non-blank line in order, with write-back: yields the features response, or
    `{"line": N, "error": <reason>, "detail": ...}` (N counts every line from 1, blank ones included)."""
    for number, line in enumerate(lines, start=1):
        record = line.rstrip(b"\n")
        if not record.strip():
            continue
        result = handle("replay", serve_features, server, record)
        if result.status == 200:
            yield result.body
        else:
            yield {"line": number, **result.body}
