"""The HTTP service (FastAPI, starlette's TestClient): a burst for one card climbs; the responses' shape
and number formats; 422 with the contract reason and no card number; repeated and conflicting event_ids;
/v1/score with and without a model; /health; JSON request logs with the event_id and no card number."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from feature_store import model_artifact
from feature_store.http_service import create_app
from feature_store.serving import FeatureServer
from feature_store.serving_endpoints import JsonLogFormatter
from spark_jobs.feature_registry import FEATURE_NAMES, FEATURE_SET_VERSION
from tests.serving_fixtures import CARD, CARD_NUMBER, MODEL_INPUTS, T0_S, authorization, small_model, state_lake


@pytest.fixture
def server(tmp_path):
    server = FeatureServer.local(state_lake(tmp_path), allow_dev_key=True)
    yield server
    server.close()


@pytest.fixture(scope="module")
def model():
    data = model_artifact.dumps(small_model(), input_names=MODEL_INPUTS, training={"as_of": "2026-01-01"})
    return model_artifact.loads(data)


def test_a_burst_for_one_card_is_counted_as_it_arrives(server):
    client = TestClient(create_app(server))
    counts = []
    for number in range(1, 21):  # 20 authorizations, 9 s apart: all within 3 minutes after T0
        response = client.post("/v1/features", content=authorization(f"burst-{number}", T0_S + 9 * number))
        assert response.status_code == 200, response.text
        body = response.json()
        counts.append(body["features"]["txn_count_1h"])
    assert counts == list(range(4, 24))  # the three silver events in the hour, then each authorization

    assert set(body) == {
        "event_id",
        "card_id",
        "ts_us",
        "event_time",
        "feature_set_version",
        "features",
        "merchant_snapshot_stale",
        "merchant_snapshot_day",
        "merchant_published_day",
    }
    assert body["event_id"] == "burst-20" and body["card_id"] == CARD
    assert body["ts_us"] == (T0_S + 180) * 1_000_000 and body["event_time"].startswith("2026-01-01T00:03:00")
    assert body["feature_set_version"] == FEATURE_SET_VERSION and list(body["features"]) == list(FEATURE_NAMES)
    features = body["features"]
    # Decimals as strings at their column's scale (decimal(38,10)); counts as integers; doubles as numbers.
    assert features["txn_amount_1h"] == "165.0000000000"  # 10 + 20 + 30 + 20 x 5.25
    assert features["max_amount_24h"] == "30.0000000000"
    assert features["merchant_count_24h"] == 3 and features["country_count_24h"] == 2
    assert features["secs_since_prev_txn"] == 9.0
    assert Decimal(str(features["avg_amount_7d"])) == pytest.approx(Decimal("165") / 23)
    assert CARD_NUMBER not in response.text


def test_contract_rejections_are_422_with_the_reason_and_no_card_number(server):
    client = TestClient(create_app(server))
    cases = {
        "malformed_json": '{"event_id": "x", ',
        "missing_field": authorization("r-1", T0_S).replace('"merchant_id": "m-9", ', ""),
        "bad_type": authorization("r-2", T0_S, amount=f'"{CARD_NUMBER}"'),
        "out_of_range": authorization("r-3", 1e3),
        "non_positive_amount": authorization("r-4", T0_S, amount="0"),
        "unknown_currency": authorization("r-5", T0_S, currency="XXX"),
        "bad_enum": authorization("r-6", T0_S, pos_mode="telepathy"),
        "invalid_card_number": authorization("r-7", T0_S, card_number="4111111111111112"),
        "field_too_long": authorization("r-10", T0_S, merchant_id="m" * 129),
        "card_number_in_field": authorization("r-11", T0_S, merchant_id=f"shop {CARD_NUMBER}"),
    }
    for reason, body in cases.items():
        response = client.post("/v1/features", content=body)
        assert response.status_code == 422, (reason, response.text)
        assert response.json()["error"] == reason and response.json()["detail"]
        assert CARD_NUMBER not in response.text, reason
    deep = client.post("/v1/features", content=b"[" * 60_000)  # deeper than Python's JSON parser goes
    assert deep.status_code == 422 and deep.json()["error"] == "malformed_json"
    too_large = client.post("/v1/features", content=b"x" * (1 << 20))
    assert too_large.status_code == 413 and too_large.json()["error"] == "body_too_large"
    # Duplicate keys and NaN are judged on the raw bytes, as in bronze (a JSON parser would hide them).
    duplicate = authorization("r-8", T0_S).replace('"country": "US"', '"country": "US", "country": "FR"')
    assert client.post("/v1/features", content=duplicate).json()["error"] == "malformed_json"
    assert client.post("/v1/features", content=authorization("r-9", T0_S, amount="NaN")).status_code == 422
    # Nothing refused was written: the next authorization still sees only the three silver events.
    assert client.post("/v1/features", content=authorization("ok", T0_S + 1)).json()["features"]["txn_count_1h"] == 4


def test_repeated_event_id_returns_the_same_features_and_a_conflicting_one_is_refused(server):
    client = TestClient(create_app(server))
    first = client.post("/v1/features", content=authorization("again", T0_S + 10))
    client.post("/v1/features", content=authorization("later", T0_S + 20))
    repeated = client.post("/v1/features", content=authorization("again", T0_S + 10))
    assert repeated.status_code == 200 and repeated.json() == first.json()
    conflicting = client.post("/v1/features", content=authorization("again", T0_S + 10, amount="99"))
    assert conflicting.status_code == 422 and conflicting.json()["error"] == "conflicting_duplicate"
    assert client.post("/v1/features", content=authorization("last", T0_S + 30)).json()["features"]["txn_count_1h"] == 6


def test_score_needs_a_model_and_scores_the_served_features_in_the_models_order(server, model):
    without = TestClient(create_app(server)).post("/v1/score", content=authorization("s-a", T0_S + 5))
    assert without.status_code == 503 and without.json()["error"] == "no_model"
    assert "--model" in without.json()["detail"]

    client = TestClient(create_app(server, model=model))
    response = client.post("/v1/score", content=authorization("s-a", T0_S + 5, amount="7.5"))
    assert response.status_code == 200, response.text
    body = response.json()
    features = {name: Decimal(value) if isinstance(value, str) else value for name, value in body["features"].items()}
    assert body["score"] == pytest.approx(model.score({**features, "amount_usd": Decimal("7.5")}), abs=1e-12)
    assert 0.0 <= body["score"] <= 1.0
    assert body["features"]["txn_count_1h"] == 4  # the 503 above served (and wrote) nothing
    # A card's first event: secs_since_prev_txn is null, NaN for the model, as in training.
    first = client.post("/v1/score", content=authorization("s-new", T0_S, card_id="card-new")).json()
    assert first["features"]["secs_since_prev_txn"] is None and 0.0 <= first["score"] <= 1.0
    refused = client.post("/v1/score", content=authorization("s-b", T0_S, currency="XXX"))
    assert refused.status_code == 422 and refused.json()["error"] == "unknown_currency"


def test_health_names_the_feature_set_and_the_model(server, model):
    assert TestClient(create_app(server)).get("/health").json() == {
        "status": "ok",
        "feature_set_version": FEATURE_SET_VERSION,
        "model": None,
    }
    health = TestClient(create_app(server, model=model)).get("/health").json()
    assert health["model"]["input_names"] == list(MODEL_INPUTS) and health["model"]["as_of"] == "2026-01-01"


def test_request_logs_are_json_with_the_event_id_and_never_a_card_number(server, caplog):
    client = TestClient(create_app(server))
    with caplog.at_level(logging.INFO, logger="feature_store.serving"):
        client.post("/v1/features", content=authorization("logged", T0_S + 1))
        # an event_id that is a card number: refused (card_number_in_field), and logged masked
        client.post("/v1/features", content=authorization(CARD_NUMBER, T0_S + 2))
        client.post("/v1/features", content=authorization("bad", T0_S, amount=f'"{CARD_NUMBER}"'))
    lines = [json.loads(JsonLogFormatter().format(record)) for record in caplog.records]
    assert [line["status"] for line in lines] == [200, 422, 422]
    assert lines[1]["reason"] == "card_number_in_field"
    assert lines[0]["event_id"] == "logged" and lines[0]["level"] == "info" and lines[0]["latency_ms"] > 0
    assert lines[2]["reason"] == "bad_type" and lines[2]["event_id"] == "bad"
    assert all(CARD_NUMBER not in json.dumps(line) for line in lines)
    assert lines[1]["event_id"].endswith("1111") and "*" in lines[1]["event_id"]


class FailingServer:
    """A server whose state is down: every request fails with an error that quotes a card number."""

    def serve(self, raw_body):
        raise RuntimeError(f"state unreachable while serving {CARD_NUMBER}")


def test_an_unexpected_failure_is_a_500_logged_with_its_traceback_masked(caplog):
    client = TestClient(create_app(FailingServer()))
    with caplog.at_level(logging.INFO, logger="feature_store.serving"):
        response = client.post("/v1/features", content=authorization("down-1", T0_S))
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "RuntimeError: the request could not be served"}
    lines = [JsonLogFormatter().format(record) for record in caplog.records]
    assert len(lines) == 2 and all(CARD_NUMBER not in line for line in lines)
    failure, request = (json.loads(line) for line in lines)
    assert "state unreachable" in failure["exception"] and failure["level"] == "error"
    assert request["event_id"] == "down-1" and request["status"] == 500
