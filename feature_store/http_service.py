"""The request-time feature service over HTTP (FastAPI on uvicorn).

    POST /v1/features   one authorization as the raw JSON body (the bronze contract's record) → 200
                        {"event_id", "card_id", "ts_us", "event_time", "feature_set_version", "features"}
    POST /v1/score      the same plus "score", the baseline model's fraud probability (503 without a model)
    GET  /health        {"status": "ok", "feature_set_version", "model"}

A body the contract refuses gets 422 `{"error": <reason>, "detail": ...}` (card numbers masked). The body
is read as raw bytes and judged by the bronze contract itself, never parsed by FastAPI first: duplicate
keys, NaN and exponents must be seen to be refused. Every request is logged as one JSON line with its
event_id, status and latency (`feature_store.serving_endpoints`).

Run it with `python feature_store/serve_features.py http --lake-root DIR [--model PATH]`
(`--allow-development-token-key` for a lake tokenized with the public development key), or embed it:
`create_app(FeatureServer.local(lake_root), model=model_artifact.load(path))`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from feature_store import serving_endpoints
from feature_store.model_artifact import ModelArtifact
from spark_jobs.feature_registry import FEATURE_SET_VERSION

JSON = "application/json"


def create_app(server: Any, *, model: ModelArtifact | None = None) -> FastAPI:
    """The ASGI app serving `server` (a FeatureServer) and, for /v1/score, `model`."""
    app = FastAPI(
        title="Card features at request time",
        version=f"feature set {FEATURE_SET_VERSION}",
        description=__doc__,
    )

    @app.post("/v1/features")
    async def features(request: Request) -> Response:
        body = await _capped_body(request)
        # The state's reads and writes block (SQLite, DynamoDB): run them off the event loop.
        result = await run_in_threadpool(
            serving_endpoints.handle, "/v1/features", serving_endpoints.serve_features, server, body
        )
        return _response(result)

    @app.post("/v1/score")
    async def score(request: Request) -> Response:
        body = await _capped_body(request)
        result = await run_in_threadpool(
            serving_endpoints.handle, "/v1/score", serving_endpoints.score, server, model, body
        )
        return _response(result)

    @app.get("/health")
    async def health() -> Response:
        return _response(serving_endpoints.health(model))

    return app


async def _capped_body(request: Request) -> bytes:
    """The body, read only up to one byte past the cap: a huge upload is refused (413) without holding it all."""
    parts, size = [], 0
    async for chunk in request.stream():
        parts.append(chunk)
        size += len(chunk)
        if size > serving_endpoints.MAX_BODY_BYTES:
            break
    return b"".join(parts)


def _response(result: serving_endpoints.EndpointResult) -> Response:
    return Response(content=result.json_bytes(), status_code=result.status, media_type=JSON)
