"""FeatureServer: contract judging, write-back, replays and conflicts, concurrency, the JSON response."""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from feature_store.online_state import SERVED, SqliteOnlineState, local_state_path
from feature_store.serving import FeatureServer, ServedFeatures, ServingRejected, event_time
from spark_jobs.bronze_contract import load_fx_rates
from spark_jobs.card_numbers import DEVELOPMENT_TOKEN_KEY_HEX, CardTokenKeys, TokenKeyError
from spark_jobs.feature_registry import FEATURE_NAMES, FEATURE_SET_VERSION
from spark_jobs.job_options import REPO_ROOT_FX_RATES
from tests.serving_fixtures import merchant_snapshots, register_merchant_group

REPO = Path(__file__).resolve().parents[1]
FX_RATES = load_fx_rates(REPO / REPO_ROOT_FX_RATES)  # the batch jobs' reference rates
KEY = bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)
VISA = "4111111111111111"
T0 = 1767225600  # 2026-01-01T00:00:00Z


def body(event_id: str, ts: str, *, amount: str = "10.00", card_id: str = "card-1", **fields: object) -> bytes:
    record = {
        "event_id": event_id,
        "card_id": card_id,
        "ts": "@ts",
        "merchant_id": fields.pop("merchant_id", "m-1"),
        "amount": "@amount",
        "currency": fields.pop("currency", "USD"),
        "country": fields.pop("country", "US"),
        "pos_mode": fields.pop("pos_mode", "chip"),
        "card_number": fields.pop("card_number", VISA),
        **fields,
    }
    # numbers written exactly as given (JSON numbers, not strings)
    return json.dumps(record).replace('"@ts"', ts).replace('"@amount"', amount).encode()


@pytest.fixture
def server(tmp_path):
    with FeatureServer(
        SqliteOnlineState(local_state_path(tmp_path)),
        fx_rates=FX_RATES,
        token_key=KEY,
        merchant_snapshots=merchant_snapshots(),
    ) as served:
        yield served


def test_a_burst_is_served_with_each_authorization_counted(server):
    counts = [server.serve(body(f"e{i}", f"{T0 + 10 * i}")).features["txn_count_1h"] for i in range(20)]
    assert counts == list(range(1, 21))


def test_response_shape_and_json_types(server):
    served = server.serve(body("e1", f"{T0}.123456", amount="12.5", currency="EUR"))
    assert isinstance(served, ServedFeatures) and not served.replayed
    payload = served.as_json()
    assert list(payload) == [
        "event_id",
        "card_id",
        "ts_us",
        "event_time",
        "feature_set_version",
        "features",
        "merchant_snapshot_stale",
        "merchant_snapshot_day",
        "merchant_published_day",
    ]
    # a merchant without a snapshot record: counts 0, rates null, not stale
    assert (payload["merchant_snapshot_stale"], payload["merchant_snapshot_day"]) == (False, None)
    assert payload["features"]["merchant_txn_count_30d"] == 0 and payload["features"]["merchant_cb_rate_7d"] is None
    assert payload["ts_us"] == T0 * 1_000_000 + 123456
    assert payload["event_time"] == "2026-01-01T00:00:00.123456Z"
    assert payload["feature_set_version"] == FEATURE_SET_VERSION
    features = payload["features"]
    assert list(features) == list(FEATURE_NAMES)
    amount_usd = Decimal("12.5") * FX_RATES["EUR"]
    assert features["txn_amount_1h"] == format(amount_usd.quantize(Decimal("1e-10")), "f")
    assert features["txn_amount_1h"].split(".")[1].__len__() == 10
    assert features["txn_count_1h"] == 1 and isinstance(features["txn_count_1h"], int)
    assert features["avg_amount_7d"] == float(amount_usd) and features["secs_since_prev_txn"] is None
    json.dumps(payload)  # JSON-ready as it is


def test_event_time_is_exact():
    assert event_time(0) == "1970-01-01T00:00:00.000000Z"
    assert event_time(4102444799_999999) == "2099-12-31T23:59:59.999999Z"


def test_same_event_id_same_payload_is_replayed_and_writes_nothing(server):
    first = server.serve(body("e1", f"{T0}", amount="10.00"))
    # the same payload, written differently (amount 10 vs 10.00, keys in another order): a duplicate
    again = server.serve(json.dumps(json.loads(body("e1", f"{T0}", amount="10"))).encode())
    assert again.replayed and again.features == first.features and again.as_json() == first.as_json()
    assert len(server.state.window("card-1", 0, 2**62)) == 1


def test_conflicting_payload_under_a_known_event_id_is_refused(server):
    server.serve(body("e1", f"{T0}", amount="10.00"))
    with pytest.raises(ServingRejected) as refused:
        server.serve(body("e1", f"{T0}", amount="10.01"))
    assert refused.value.reason == "conflicting_duplicate"
    with pytest.raises(ServingRejected, match="conflicting_duplicate"):
        server.serve(body("e1", f"{T0 + 1}"))  # another ts: another sort key, the same event_id
    stored = server.state.window("card-1", 0, 2**62)
    assert len(stored) == 1 and stored[0].amount_usd == Decimal("10.00")


def test_after_a_key_rotation_a_replay_is_compared_under_the_stored_events_key_version(tmp_path):
    """An event served under key version 0, then the key is rotated to version 1 (0 still held): the exact
    re-delivery is a replay, a changed payload or another card number is a conflicting_duplicate."""
    state_path = local_state_path(tmp_path)
    with FeatureServer(
        SqliteOnlineState(state_path),
        fx_rates=FX_RATES,
        token_key=CardTokenKeys.single(KEY),
        merchant_snapshots=merchant_snapshots(),
    ) as old:
        first = old.serve(body("e1", f"{T0}"))
    rotated = CardTokenKeys(current=1, keys=((0, KEY), (1, bytes.fromhex("11" * 32))))
    with FeatureServer(
        SqliteOnlineState(state_path), fx_rates=FX_RATES, token_key=rotated, merchant_snapshots=merchant_snapshots()
    ) as server:
        again = server.serve(body("e1", f"{T0}"))
        assert again.replayed and again.as_json() == first.as_json()
        for changed in (body("e1", f"{T0}", amount="10.01"), body("e1", f"{T0}", card_number="5555555555554444")):
            with pytest.raises(ServingRejected, match="conflicting_duplicate"):
                server.serve(changed)
        assert not server.serve(body("e2", f"{T0 + 1}")).replayed
        assert len(server.state.window("card-1", 0, 2**62)) == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": "e1", "event_id": "e2"}', "malformed_json"),  # duplicate key
        (body("e1", "NaN"), "malformed_json"),
        (body("e1", f"{T0}", amount="1e14"), "out_of_range"),  # an exponent, judged by its value
        (body("e1", f"{T0}", amount="1e-5"), "out_of_range"),
        (body("e1", f"{T0}", amount="0"), "non_positive_amount"),
        (body("e1", f"{T0}", currency="XXX"), "unknown_currency"),
        (body("e1", f"{T0}", pos_mode="telepathy"), "bad_enum"),
        (body("e1", f"{T0}", card_number="4111111111111112"), "invalid_card_number"),
        (body("e1", "946684799"), "out_of_range"),
        (b'{"event_id": "e1"}', "missing_field"),
        (body("e1", f'"{T0}"'), "bad_type"),
        (b"[]", "malformed_json"),
        (b"", "malformed_json"),
    ],
)
def test_bad_input_is_refused_with_the_contract_reason_and_nothing_written(server, raw, reason):
    from spark_jobs.bronze_contract import judge_record

    assert judge_record(raw, fx_rates=FX_RATES, token_key=KEY).reason == reason  # the contract's own verdict
    with pytest.raises(ServingRejected) as refused:
        server.serve(raw)
    assert refused.value.reason == reason
    assert server.state.window("card-1", 0, 2**62) == []


def test_no_card_number_is_stored_returned_or_logged(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    # the card_number field is the card number; (an event_id is kept as given, as silver keeps it)
    served = server.serve(body("e1", f"{T0}"))
    with pytest.raises(ServingRejected) as refused:
        server.serve(body("e1", f"{T0}", amount="11"))
    assert VISA not in str(refused.value)
    with pytest.raises(ServingRejected) as bad:
        server.serve(body("e2", f"{T0}", currency=VISA))
    assert VISA not in str(bad.value)
    assert VISA not in caplog.text
    assert served.card_id == "card-1"
    server.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert VISA.encode() not in path.read_bytes(), path


def test_reads_only_the_longest_window(server):
    # an event just outside the longest window is in the state but not read
    week_us = 7 * 86400 * 1_000_000
    server.serve(body("old", f"{T0}"))
    served = server.serve(body("new", f"{(T0 * 1_000_000 + week_us + 1) / 1_000_000:.6f}"))
    assert served.features["secs_since_prev_txn"] is None and served.features["txn_count_24h"] == 1


class _WriteThenWait:
    """A state that holds each request after its write until every request has written, so both requests
    are in flight at once: a read-before-write design would let the later one miss the earlier here."""

    def __init__(self, state, parties):
        self.state = state
        self.all_written = threading.Barrier(parties)

    def add_served(self, event):
        stored = self.state.add_served(event)
        self.all_written.wait(timeout=60)
        return stored

    def __getattr__(self, name):
        return getattr(self.state, name)


def test_two_concurrent_requests_for_one_card_both_land_and_the_later_sees_the_earlier(tmp_path):
    path = local_state_path(tmp_path)
    state = _WriteThenWait(SqliteOnlineState(path), parties=2)
    results = {}

    def serve(event_id, ts):
        server = FeatureServer(state, fx_rates=FX_RATES, token_key=KEY, merchant_snapshots=merchant_snapshots())
        results[event_id] = server.serve(body(event_id, ts))

    threads = [threading.Thread(target=serve, args=args) for args in [("early", f"{T0}"), ("late", f"{T0 + 5}")]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results["late"].features["txn_count_1h"] == 2
    assert results["late"].features["secs_since_prev_txn"] == 5.0
    assert results["early"].features["txn_count_1h"] == 1  # the later one is not in its window
    state.close()
    with SqliteOnlineState(path) as reopened:
        assert [e.event_id for e in reopened.window("card-1", 0, 2**62)] == ["early", "late"]


def _serve_in_process(lake: str, prefix: str, count: int) -> None:
    server = FeatureServer(
        SqliteOnlineState(local_state_path(lake)),
        fx_rates=FX_RATES,
        token_key=KEY,
        merchant_snapshots=merchant_snapshots(),
    )
    for index in range(count):
        server.serve(body(f"{prefix}-{index}", f"{T0 + index}"))
    server.close()


def test_processes_serving_one_card_lose_no_event(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_serve_in_process, args=(str(tmp_path), f"p{i}", 15)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    with FeatureServer(
        SqliteOnlineState(local_state_path(tmp_path)),
        fx_rates=FX_RATES,
        token_key=KEY,
        merchant_snapshots=merchant_snapshots(),
    ) as server:
        assert len(server.state.window("card-1", 0, 2**62)) == 30
        # replaying the last authorization now sees every event of the card (peers included)
        assert server.serve(body("p0-14", f"{T0 + 14}")).features["txn_count_1h"] == 30


def test_local_server_uses_the_lake_state_and_reference_rates(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_CARD_TOKEN_KEY", raising=False)
    register_merchant_group(tmp_path)  # the lake's local online store with the merchant group
    with FeatureServer.local(tmp_path, allow_dev_key=True) as server:
        server.serve(body("e1", f"{T0}", currency="EUR"))
        assert server.fx_rates == FX_RATES
    assert local_state_path(tmp_path).exists()
    with SqliteOnlineState(local_state_path(tmp_path)) as state:
        assert state.find("card-1", "e1").origin == SERVED
    with pytest.raises(TokenKeyError, match="--allow-development-token-key"):
        FeatureServer.local(tmp_path, allow_dev_key=False)


def test_bad_configuration_is_named(tmp_path):
    state = SqliteOnlineState(local_state_path(tmp_path))
    with pytest.raises(ValueError, match="EUR"):
        FeatureServer(state, fx_rates={"EUR": 1.1}, token_key=KEY, merchant_snapshots=merchant_snapshots())
    with pytest.raises(ValueError, match="token_key"):
        FeatureServer(state, fx_rates=FX_RATES, token_key="not bytes", merchant_snapshots=merchant_snapshots())
    state.close()
