"""The serving consistency measurement: its DuckDB reference, the affected rule and the serving plan on
hand-made cases, then the whole measurement at a small size through the real jobs (in this process)."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.serving_consistency.plan import BronzeLine, folder_start_us, plan_serving
from devtools.serving_consistency.reference import affected_event_ids, reference_features
from devtools.serving_consistency.replay import REJECTED, REPLAYED, SERVED, ServeRecord

HOUR = 3_600_000_000
DAY = 24 * HOUR
T = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def served(seq: int, event_id: str, ts_us: int, state: list[list], card_id: str = "c1") -> ServeRecord:
    return ServeRecord(seq, "f", "x", seq, SERVED, event_id, card_id, ts_us, None, {}, state)


def state_event(event_id: str, ts_us: int, amount: str, merchant: str = "m1", country: str = "US") -> list:
    return [event_id, ts_us, amount, merchant, country, "silver"]


def test_reference_applies_gold_rules_to_the_state_a_request_saw():
    seen = [
        state_event("old", T - 7 * DAY - 1, "1000.0000000000"),  # 1 µs outside 7 d: ignored
        state_event("edge7d", T - 7 * DAY, "5.0000000000", "m2", "FR"),  # exactly 7 d back: counts in 7 d only
        state_event("edge1h", T - HOUR, "2.5000000000", "m3"),  # exactly 1 h back: counts in 1 h
        state_event("peer", T, "1.0000000000", "m1", "GB"),  # equal ts: a peer, counts everywhere
        state_event("now", T, "4.0000000000"),
    ]
    (features,) = reference_features([served(1, "now", T, seen)]).values()
    assert features["txn_count_1h"] == 3 and features["txn_amount_1h"] == Decimal("7.5")
    assert features["txn_count_24h"] == 3 and features["merchant_count_24h"] == 2
    assert features["country_count_24h"] == 2 and features["max_amount_24h"] == Decimal("4")
    assert math.isclose(features["avg_amount_7d"], 12.5 / 4)
    assert math.isclose(features["amount_to_avg_7d"], 4 / (12.5 / 4))
    assert features["secs_since_prev_txn"] == 3600.0  # strictly earlier: the peer does not count


def test_reference_first_event_of_a_card_has_no_previous():
    (features,) = reference_features([served(1, "e", T, [state_event("e", T, "3.0000000000")])]).values()
    assert features["txn_count_1h"] == 1 and features["secs_since_prev_txn"] is None
    assert features["amount_to_avg_7d"] == 1.0


def test_replayed_and_rejected_requests_are_not_recomputed():
    records = [
        served(1, "e", T, [state_event("e", T, "3.0000000000")]),
        ServeRecord(2, "f", "x", 2, REPLAYED, "e", "c1", T, None, {}, []),
        ServeRecord(3, "f", "x", 3, REJECTED, "bad", reason="bad_type"),
    ]
    assert set(reference_features(records)) == {1}


def gold_row(card_id: str, ts_us: int) -> dict:
    return {"card_id": card_id, "ts_us": ts_us}


def test_affected_when_a_window_member_was_served_later_or_never():
    gold = {
        "known": gold_row("c1", T - DAY),  # in silver before serving started
        "a": gold_row("c1", T),
        "b": gold_row("c1", T + HOUR),
        "held": gold_row("c1", T + 2 * HOUR),  # never served (held out)
        "c": gold_row("c1", T + 3 * HOUR),
        "peer1": gold_row("c2", T),  # equal ts, served in this order: peer2's arrival affects peer1
        "peer2": gold_row("c2", T),
        "far": gold_row("c3", T + 8 * DAY),  # its card's only event
        "d": gold_row("c1", T + 10 * DAY),  # more than 7 d after every other c1 event
    }
    order = ["a", "b", "c", "peer1", "peer2", "far", "d"]
    records = [served(index, event_id, gold[event_id]["ts_us"], []) for index, event_id in enumerate(order, 1)]
    affected = affected_event_ids(records, ["known"], gold)
    assert affected == {"c": True, "peer1": False}  # c: held was never served; peer1: peer2 came later


def test_a_late_served_event_affects_later_events_served_before_it():
    gold = {"late": gold_row("c1", T), "x": gold_row("c1", T + HOUR)}
    records = [served(1, "x", T + HOUR, []), served(2, "late", T, [])]
    assert affected_event_ids(records, [], gold) == {"x": False}


def test_plan_holds_out_a_seeded_share_and_serves_in_event_time_order(tmp_path):
    from devtools.generator import GeneratorConfig, generate_lake

    generate_lake(GeneratorConfig(events=600, cards=20, days=4, seed=3, lake_root=tmp_path / "lake"))
    split = T + 2 * DAY
    plan = plan_serving(tmp_path / "lake", split, holdout_share=0.2, seed=5)
    again = plan_serving(tmp_path / "lake", split, holdout_share=0.2, seed=5)
    assert plan.held_out_event_ids == again.held_out_event_ids and plan.requests == again.requests
    assert all(folder_start_us(folder) < split for folder in plan.history_folders)
    assert all(folder_start_us(folder) >= split for folder in plan.later_folders)
    stamps = [line.ts_us for line in plan.requests]
    assert stamps == sorted(stamps) and stamps[0] >= split
    served_ids = {line.event_id for line in plan.requests}
    assert not served_ids & plan.held_out_event_ids
    share = len(plan.held_out_event_ids) / (len(plan.held_out_event_ids) + len(served_ids))
    assert 0.15 < share < 0.25
    assert all(isinstance(line, BronzeLine) and isinstance(line.body, bytes) for line in plan.requests)


def test_lines_are_served_as_the_raw_bytes_bronze_holds(tmp_path):
    """A line with invalid UTF-8 must reach the server as is (its contract refuses it), never repaired."""
    import gzip

    from devtools.serving_consistency.plan import BRONZE, bronze_lines

    folder = tmp_path / BRONZE / "ingest_dt=2026/01/02/00"
    folder.mkdir(parents=True)
    bad = b'{"event_id": "e1", "ts": 1767312000.5, "merchant_id": "m\xff"}'
    (folder / "a.gz").write_bytes(gzip.compress(b'{"event_id": "e0", "ts": 1767312000}\n\n' + bad + b"\n"))
    lines, unreadable = bronze_lines(tmp_path, ["ingest_dt=2026/01/02/00"])
    assert unreadable == 0
    assert [(line.line_number, line.event_id, line.ts_us) for line in lines] == [
        (1, "e0", 1767312000_000000),
        (3, "e1", 1767312000_500000),
    ]
    assert lines[1].body == bad


@pytest.mark.slow
def test_consistency_measurement_passes_on_a_small_lake(spark, tmp_path):
    from devtools.serving_consistency import ConsistencyOptions, InProcessPipeline, run_consistency

    options = ConsistencyOptions(events=1000, cards=20, days=5, history_days=3, work_dir=Path(tmp_path))
    results = run_consistency(options, InProcessPipeline(), echo=lambda message: None)
    a, b = results["a_served_equals_reference"], results["b_served_equals_gold"]
    assert a["passed"], a["mismatch_examples"]
    assert b["passed_on_unaffected"], (b["unaffected"]["mismatch_examples"], results["requests"])
    assert a["events"] == results["requests"]["served"] > 100
    assert b["unaffected"]["events"] > 0 and b["affected"]["events"] > 0
    assert results["requests"].get("served_not_in_gold", 0) == 0
    assert results["requests"]["own_event_in_state"] == results["requests"]["served"]
    assert results["plan"]["held_out_events"] > 0
    # The last batch's online features are stale: they cannot match gold everywhere.
    assert results["last_batch_online_vs_gold"]["all"]["features"]["txn_count_1h"]["rate"] < 1.0
    assert (tmp_path / "replay_log.jsonl.gz").exists()
