"""The local online state (SqliteOnlineState): the OnlineStateStore semantics, exact amounts, concurrency."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from feature_store.online_state import (
    PAYLOAD_FIELDS,
    SERVED,
    SILVER,
    STATE_RETENTION,
    SqliteOnlineState,
    StateEvent,
    local_state_path,
    payload_fingerprint,
    sort_key,
)
from spark_jobs.feature_registry import MAX_WINDOW


def event(event_id: str, ts_us: int, *, card_id: str = "card-1", amount: str = "12.5000000000", origin=SERVED, fp="f"):
    return StateEvent(card_id, event_id, ts_us, Decimal(amount), "m-1", "US", origin, fp)


@pytest.fixture
def state(tmp_path):
    store = SqliteOnlineState(tmp_path / "feature_store" / "online_state.db")
    yield store
    store.close()


def test_paths_and_retention(tmp_path):
    assert local_state_path(tmp_path) == tmp_path / "feature_store" / "online_state.db"
    assert MAX_WINDOW + timedelta(hours=48) == STATE_RETENTION


def test_payload_fields_are_silvers():
    # one definition (bronze_contract) for silver's dedupe and the serving replay check
    silver = pytest.importorskip("spark_jobs.silver")
    assert PAYLOAD_FIELDS is silver.PAYLOAD_FIELDS


def test_payload_fingerprint_compares_by_value_like_silver():
    row = {
        "card_id": "c",
        "ts_us": 1,
        "merchant_id": "m",
        "amount": Decimal("12.5000"),
        "currency": "USD",
        "country": "US",
        "pos_mode": "chip",
        "card_last4": None,
        "card_token": None,
        "line_number": 7,  # not a payload field: ignored
    }
    same = {**row, "amount": Decimal("12.5"), "line_number": 8}
    assert payload_fingerprint(row) == payload_fingerprint(same)
    for name, other in [("amount", Decimal("12.5001")), ("card_last4", ""), ("ts_us", 2), ("pos_mode", "swipe")]:
        assert payload_fingerprint(row) != payload_fingerprint({**row, name: other}), name
    with pytest.raises(ValueError, match="lacks payload fields"):
        payload_fingerprint({"card_id": "c"})


def test_window_is_inclusive_and_ordered_by_ts_then_event_id(state):
    events = [event("b", 100), event("a", 100), event("c", 99), event("d", 201), event("e", 200)]
    for item in events:
        assert state.add_served(item) is None
    assert [e.event_id for e in state.window("card-1", 100, 200)] == ["a", "b", "e"]
    assert [e.event_id for e in state.window("card-1", 0, 10**12)] == ["c", "a", "b", "e", "d"]
    assert state.window("card-1", 201, 200) == []
    assert state.window("card-2", 0, 10**12) == []


def test_amounts_round_trip_exactly(state):
    amount = "123456789012345678.1234567891"
    state.add_served(event("x", 5, amount=amount))
    stored = state.find("card-1", "x")
    assert stored.amount_usd == Decimal(amount) and str(stored.amount_usd) == amount


def test_add_served_is_a_conditional_create(state):
    first = event("x", 5, fp="one")
    assert state.add_served(first) is None
    # the same event_id under another ts and payload: nothing written, the stored one returned
    assert state.add_served(event("x", 9, fp="two")) == first
    assert state.window("card-1", 0, 100) == [first]
    assert state.find("card-1", "x") == first and state.find("card-1", "y") is None
    with pytest.raises(ValueError, match="served events"):
        state.add_served(event("z", 5, origin=SILVER))


def test_silver_wins_remove_and_prune(state):
    state.add_served(event("x", 5, fp="served"))
    state.add_served(event("y", 7))
    silver_x = event("x", 6, origin=SILVER, fp="silver")  # silver's ts differs: the served copy goes
    assert state.upsert_silver([silver_x, event("z", 1, origin=SILVER)]) == 2
    assert [(e.event_id, e.origin) for e in state.window("card-1", 0, 10)] == [
        ("z", SILVER),
        ("x", SILVER),
        ("y", SERVED),
    ]
    assert state.upsert_silver([silver_x]) == 1  # idempotent
    assert state.remove([("card-1", "y"), ("card-1", "missing")]) == 1
    assert state.prune("card-1", 6) == 1
    assert [e.event_id for e in state.window("card-1", 0, 10)] == ["x"]
    with pytest.raises(ValueError, match="silver events"):
        state.upsert_silver([event("q", 1)])


def test_sort_key_matches_the_stored_order():
    assert sort_key(5, "a") < sort_key(5, "b") < sort_key(6, "a")


def test_concurrent_threads_on_one_card_all_land(tmp_path):
    path = tmp_path / "state.db"
    stores = [SqliteOnlineState(path) for _ in range(2)]
    start = threading.Barrier(8)

    def serve(index: int) -> None:
        start.wait()
        for offset in range(25):
            stores[index % 2].add_served(event(f"e{index}-{offset}", 1_000 + offset))

    threads = [threading.Thread(target=serve, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stores[0].window("card-1", 0, 10**6)) == 200
    for store in stores:
        store.close()


def _add_in_process(path: str, prefix: str, count: int) -> None:
    store = SqliteOnlineState(path)
    for offset in range(count):
        store.add_served(event(f"{prefix}-{offset}", 1_000 + offset))
    store.close()


def test_concurrent_processes_on_one_card_all_land(tmp_path):
    path = str(tmp_path / "state.db")
    SqliteOnlineState(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_in_process, args=(path, f"p{index}", 30)) for index in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with SqliteOnlineState(path) as store:
        assert len(store.window("card-1", 0, 10**6)) == 60


def test_reads_do_not_wait_for_a_writer(tmp_path):
    path = tmp_path / "state.db"
    writer, reader = SqliteOnlineState(path), SqliteOnlineState(path)
    writer.add_served(event("x", 5))
    with writer._write() as connection:  # an open write transaction
        connection.execute("DELETE FROM state_events")
        assert [e.event_id for e in reader.window("card-1", 0, 10)] == ["x"]
    assert reader.window("card-1", 0, 10) == []
    writer.close()
    reader.close()
