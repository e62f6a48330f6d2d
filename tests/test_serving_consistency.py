"""The serving consistency measurement: its DuckDB reference, the affected rule and the serving plan on
hand-made cases, then the whole measurement at a small size through the real jobs (in this process)."""

from __future__ import annotations

import math
from datetime import date
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


def test_reference_v2_card_and_event_features_follow_the_definitions():
    """txn_count_30d / avg_amount_30d inclusive, the z-score and merchant_seen_30d over strictly earlier events
    (peers excluded), the event features in UTC; against a brute force of V2_DESIGN.md's definitions."""
    now = T + 5 * DAY + 23 * HOUR  # a Tuesday (2026-01-06), 23:00 UTC
    seen = [
        state_event("out", now - 30 * DAY - 1, "900.0000000000", "m9"),  # 1 µs outside 30 d
        state_event("edge", now - 30 * DAY, "10.0000000000", "m2"),  # exactly 30 d back: counts
        state_event("mid", now - 3 * DAY, "20.0000000000", "m3"),
        state_event("late", now - HOUR, "31.5000000000", "m2"),
        state_event("peer", now, "7.0000000000", "m1"),  # equal ts: counts in 30 d, not in the z-score / seen
        state_event("now", now, "50.0000000000", "m1"),
    ]
    record = served(1, "now", now, seen)
    record.merchant_id = "m1"
    (features,) = reference_features([record]).values()
    assert features["txn_count_30d"] == 5 and math.isclose(features["avg_amount_30d"], 118.5 / 5)
    earlier = [10.0, 20.0, 31.5]
    mean = sum(earlier) / 3
    std = math.sqrt(sum((value - mean) ** 2 for value in earlier) / 3)
    assert math.isclose(features["amount_zscore_30d"], (50.0 - mean) / std, rel_tol=1e-12)
    assert features["merchant_seen_30d"] == 0  # m1 only at the same ts (the peer): not strictly earlier
    assert (features["hour_of_day"], features["is_weekend"], features["is_night"]) == (23, 0, 0)
    record_m2 = served(2, "now", now, seen)
    record_m2.merchant_id = "m2"
    (features_m2,) = reference_features([record_m2]).values()
    assert features_m2["merchant_seen_30d"] == 1
    # a Saturday 03:00: weekend and night; fewer than 2 earlier events or all equal amounts: no z-score
    saturday = T + 2 * DAY + 3 * HOUR  # 2026-01-03
    lone = served(
        3, "s", saturday, [state_event("a", saturday - HOUR, "5.0000000000"), state_event("s", saturday, "9.0")]
    )
    flat = served(
        4,
        "f",
        saturday,
        [
            state_event("a", saturday - 2, "5.0000000000"),
            state_event("b", saturday - 1, "5.0"),
            state_event("f", saturday, "6"),
        ],
    )
    by_seq = reference_features([lone, flat])
    assert (by_seq[3]["hour_of_day"], by_seq[3]["is_weekend"], by_seq[3]["is_night"]) == (3, 1, 1)
    assert by_seq[3]["amount_zscore_30d"] is None and by_seq[4]["amount_zscore_30d"] is None


def test_merchant_reference_and_truth_apply_the_serving_rules():
    import pyarrow as pa

    from devtools.serving_consistency.reference import merchant_reference, merchant_truth
    from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES

    day = date(2026, 1, 2)
    rows = [  # (merchant, day, counts, rates)
        ("m-exact", date(2026, 1, 1), (1, 1, 1), (None, None, None)),
        ("m-exact", day, (2, 3, 4), (0.5, None, 0.25)),
        ("m-stale", date(2026, 1, 1), (5, 6, 7), (0.1, 0.2, 0.3)),
        ("m-terminal", date(2025, 12, 20), (0, 0, 0), (None, None, None)),
    ]
    snapshot = pa.table(
        {
            "merchant_id": [row[0] for row in rows],
            "day": pa.array([row[1] for row in rows], pa.date32()),
            **{name: [row[2][index] for row in rows] for index, name in enumerate(MERCHANT_FEATURE_NAMES[:3])},
            **{
                name: pa.array([row[3][index] for row in rows], pa.float64())
                for index, name in enumerate(MERCHANT_FEATURE_NAMES[3:])
            },
        }
    )
    at = T + DAY + 5 * HOUR  # 2026-01-02 05:00
    records = []
    for seq, merchant in enumerate(("m-exact", "m-stale", "m-terminal", "m-absent"), start=1):
        record = served(seq, f"e{seq}", at, [])
        record.merchant_id = merchant
        records.append(record)
    expected = merchant_reference(records, snapshot)
    assert [(expected[seq]["snapshot_day"], expected[seq]["stale"]) for seq in (1, 2, 3, 4)] == [
        ("2026-01-02", False),
        ("2026-01-01", True),
        ("2025-12-20", False),
        (None, False),
    ]
    assert {expected[seq]["published_day"] for seq in (1, 2, 3, 4)} == {"2026-01-02"}  # P: the newest day
    assert list(expected[1]["features"].values()) == [2, 3, 4, 0.5, None, 0.25]
    # a day after P (2026-01-03, not published): flagged whatever the record, the terminal and the absent too
    for record in records:
        record.ts_us = at + DAY
    later = merchant_reference(records, snapshot)
    assert [(later[seq]["snapshot_day"], later[seq]["stale"]) for seq in (1, 2, 3, 4)] == [
        ("2026-01-02", True),
        ("2026-01-01", True),
        ("2025-12-20", True),
        (None, True),
    ]
    for record in records:
        record.ts_us = at
    assert list(expected[4]["features"].values()) == [0, 0, 0, None, None, None]
    truth = merchant_truth(records, snapshot)  # the (merchant, event day) rows: only m-exact has one
    assert list(truth[1].values()) == [2, 3, 4, 0.5, None, 0.25]
    assert list(truth[2].values()) == [0, 0, 0, None, None, None]
    assert merchant_truth(records, None)[1] == dict.fromkeys(MERCHANT_FEATURE_NAMES[:3], 0) | dict.fromkeys(
        MERCHANT_FEATURE_NAMES[3:]
    )


def test_merchant_mismatches_are_counted_as_explained_or_not():
    from devtools.serving_consistency.run import MerchantTally
    from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES

    def features(*values):
        return dict(zip(MERCHANT_FEATURE_NAMES, values, strict=True))

    fresh, old = features(3, 3, 3, 0.5, 0.5, 0.5), features(1, 1, 1, None, None, None)

    def record(event_id, served_values, day, stale, published="2026-01-01"):
        item = served(1, event_id, T + HOUR, [])  # event day 2026-01-01
        item.features, item.merchant_id = served_values, "m"
        item.merchant_snapshot_day, item.merchant_snapshot_stale = day, stale
        item.merchant_published_day = published
        return item

    tally = MerchantTally()
    tally.add(record("ok", fresh, "2026-01-01", False), fresh, fresh)  # exact and still right
    tally.add(record("stale", old, "2025-12-31", True, "2025-12-31"), fresh, fresh)  # flagged: explained
    tally.add(record("late", old, "2026-01-01", False), fresh, old)  # the day's snapshot changed after ingestion
    tally.add(record("bug", old, "2026-01-01", False), fresh, fresh)  # nothing explains it
    assert tally.summary()["passed"] is False
    summary = tally.summary()
    assert (summary["responses"], summary["flagged_stale"], summary["served_equals_gold"]) == (4, 1, 1)
    assert summary["mismatches"] == {
        "explained_by_stale_snapshot": 1,
        "explained_by_later_snapshot_change": 1,
        "unflagged_before_published_day": 0,
        "unexplained": 1,
    }
    assert summary["unexplained_examples"][0]["event"] == "bug"


def test_an_unflagged_response_before_its_day_is_published_fails_the_run():
    """The review's counter-example: a silent (or new) merchant with an event the day before; served on the next
    day before that day is published, from its old terminal record (or none): 0/null, unflagged. The table
    version ingestion published has no row for the day (so 0/null too) and the final one has count_1d >= 1:
    before the fix this counted as explained_by_later_snapshot_change and the report stayed green."""
    from devtools.serving_consistency.run import MerchantTally
    from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES

    zeros = dict(zip(MERCHANT_FEATURE_NAMES, (0, 0, 0, None, None, None), strict=True))
    final = dict(zip(MERCHANT_FEATURE_NAMES, (1, 1, 1, None, None, None), strict=True))
    for day in ("2025-11-01", None):  # its old terminal record, or none
        item = served(1, "silent", T + HOUR, [])
        item.features, item.merchant_id = zeros, "m-silent"
        item.merchant_snapshot_day, item.merchant_snapshot_stale = day, False
        item.merchant_published_day = "2025-12-31"  # P < the event's day 2026-01-01
        tally = MerchantTally()
        tally.add(item, final, zeros)
        summary = tally.summary()
        assert not summary["passed"] and summary["mismatches"]["unflagged_before_published_day"] == 1
        assert summary["mismatches"]["explained_by_later_snapshot_change"] == 0
        # the same response flagged (what serving now answers) is explained
        item.merchant_snapshot_stale = True
        tally = MerchantTally()
        tally.add(item, final, zeros)
        assert tally.summary()["passed"] and tally.summary()["mismatches"]["explained_by_stale_snapshot"] == 1


def _request_time_zscore(seen: list[list], event_id: str) -> float | None:
    """The production request-time half (feature_store.request_features) over the same state events."""
    from feature_store.online_state import SILVER, StateEvent
    from feature_store.request_features import compute_features

    events = [StateEvent("c1", item[0], item[1], Decimal(item[2]), item[3], item[4], SILVER, "f" * 64) for item in seen]
    current = next(event for event in events if event.event_id == event_id)
    return compute_features(events, current)["amount_zscore_30d"]


def test_reference_zscore_reproduces_the_documented_doubles_bit_for_bit():
    """Nearly equal earlier amounts (var ≪ mean²): the documented formula is 1.5e-6 relative off the exact
    value, so the reference reproduces its double operations and compare.py requires the same bits."""
    from fractions import Fraction

    from devtools.serving_consistency.compare import same_value

    seen = [
        state_event("a", T - 2 * HOUR, "999.9900000000"),
        state_event("b", T - HOUR, "1000.0000000000"),
        state_event("now", T, "30.0000000000"),
    ]
    (features,) = reference_features([served(1, "now", T, seen)]).values()
    served_z = _request_time_zscore(seen, "now")
    assert features["amount_zscore_30d"] == served_z  # bit for bit
    exact_mean = (Fraction("999.99") + Fraction(1000)) / 2
    exact_var = ((Fraction("999.99") - exact_mean) ** 2 + (Fraction(1000) - exact_mean) ** 2) / 2
    exact_z = (30 - exact_mean) / Fraction(math.sqrt(exact_var))  # sqrt(2.5e-5) = 0.005 exactly enough here
    assert abs(served_z / float(exact_z) - 1) > 1e-9  # the old flat 1e-9 against exact arithmetic failed here
    assert same_value("double", served_z, features["amount_zscore_30d"], rel_tol=0.0)
    assert not same_value("double", served_z, math.nextafter(served_z, 0.0), rel_tol=0.0)


def test_reference_zscore_equals_request_time_on_random_amounts():
    import random

    generator = random.Random(19)
    for case in range(200):
        base = generator.choice(["1000.00", "5.25", "123456.78", "0.01"])
        count = generator.randint(2, 6)
        seen = []
        for index in range(count):
            jitter = Decimal(generator.randint(-3, 3)) / 100 if case % 2 else Decimal(generator.randint(0, 99999)) / 100
            amount = max(Decimal(base) + jitter, Decimal("0.01"))
            ts = T - (count - index) * HOUR if index % 3 else T  # some peers at T (excluded from the z-score)
            seen.append(state_event(f"e{index}", ts, f"{amount:.10f}"))
        seen.append(state_event("now", T, f"{Decimal(generator.randint(1, 10**7)) / 100:.10f}"))
        seen.sort(key=lambda item: item[1])
        (features,) = reference_features([served(1, "now", T, seen)]).values()
        assert features["amount_zscore_30d"] == _request_time_zscore(seen, "now"), seen


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
        "d": gold_row("c1", T + 31 * DAY),  # more than the longest window (30 d) after every other c1 event
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
    assert results["requests"].get("merchant_flag_or_day_differs_from_reference", 0) == 0
    merchant = results["merchant_served_vs_gold"]
    assert merchant["passed"], merchant
    assert merchant["responses"] == a["events"] and sum(merchant["by_source"].values()) == merchant["responses"]
    # the history's snapshot days end the day after its last day: that day is served exact, the next one stale
    assert results["merchant_snapshot_version"] is not None
    assert merchant["by_source"].get("exact", 0) > 0 and merchant["flagged_stale"] > 0, merchant["by_source"]
    assert merchant["served_equals_gold"] > 0
    assert results["requests"]["own_event_in_state"] == results["requests"]["served"]
    assert results["plan"]["held_out_events"] > 0
    # The last batch's online features are stale: they cannot match gold everywhere.
    assert results["last_batch_online_vs_gold"]["all"]["features"]["txn_count_1h"]["rate"] < 1.0
    assert (tmp_path / "replay_log.jsonl.gz").exists()
