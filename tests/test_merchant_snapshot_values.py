"""merchant_features.snapshot_values (running sums over each merchant's days) against the definition evaluated
event by event in Python, on random events: merchants with gaps longer than the row span, several reports of
one event, reports before their event, reports of unknown events, reports on the boundaries of L and W, and a
last snapshot day that cuts merchants short."""

from __future__ import annotations

import random

import pytest

from spark_jobs import merchant_features
from spark_jobs.feature_registry import MERCHANT_CHARGEBACK_RATE, MERCHANT_COUNT, MERCHANT_FEATURES
from spark_jobs.frame_cache import FrameCache

DAY_US = merchant_features.DAY_US
L = merchant_features.LABEL_MATURITY_DAYS
SPAN = merchant_features.ROW_SPAN_DAYS


def random_lake(seed: int) -> tuple[list[tuple[str, str, int]], list[tuple[str, int]]]:
    """(event_id, merchant_id, ts_us) events and (event_id, reported_at_us) reports, from day 20000 on."""
    rng = random.Random(seed)
    events, reports = [], []
    for merchant in range(6):
        # active stretches separated by gaps, some longer than the row span
        day = 20_000 + rng.randrange(5)
        for _stretch in range(3):
            for _ in range(rng.randrange(5, 60)):
                ts = (day + rng.randrange(0, 20)) * DAY_US + rng.choice([0, 1, DAY_US - 1, rng.randrange(DAY_US)])
                event_id = f"e{len(events)}"
                events.append((event_id, f"m{merchant}", ts))
                for _report in range(rng.choice([0, 0, 0, 1, 1, 2])):
                    # around the edges: the same day, L days later, L + W days later, before the event
                    offset_days = rng.choice([0, 1, L - 1, L, L + 1, L + 7, L + 30, 40, rng.randrange(60), -1])
                    reported = ts + offset_days * DAY_US + rng.choice([0, -1, 1, rng.randrange(DAY_US)])
                    reports.append((event_id, max(reported, 0)))
            day += 20 + rng.choice([5, SPAN - 20, SPAN + 5, 60])
    reports.append(("no-such-event", 20_010 * DAY_US))
    return events, reports


def expected_rows(events, reports, last_day: int) -> dict[tuple[str, int], dict]:
    """The definition (docs/datasets.md), per snapshot day D (S = D's start) and merchant."""
    ts_of = {event_id: ts for event_id, _, ts in events}
    first_known: dict[str, int] = {}
    for event_id, reported in reports:
        if event_id in ts_of and reported >= ts_of[event_id]:
            first_known[event_id] = min(first_known.get(event_id, reported), reported)
    rows = {}
    merchants = sorted({merchant for _, merchant, _ in events})
    for day in range(20_000, last_day + 1):
        start = day * DAY_US
        for merchant in merchants:
            mine = [(event_id, ts) for event_id, m, ts in events if m == merchant]
            if not any(start - SPAN * DAY_US <= ts < start for _, ts in mine):
                continue
            row = {}
            for item in MERCHANT_FEATURES:
                width = merchant_features.window_days(item)
                if item.aggregation == MERCHANT_COUNT:
                    row[item.name] = sum(start - width * DAY_US <= ts < start for _, ts in mine)
                elif item.aggregation == MERCHANT_CHARGEBACK_RATE:
                    matured = [e for e, ts in mine if start - (L + width) * DAY_US <= ts < start - L * DAY_US]
                    known = [e for e in matured if e in first_known and first_known[e] < start]
                    row[item.name] = len(known) / len(matured) if matured else None
            rows[(merchant, day)] = row
    return rows


@pytest.mark.parametrize("seed", [1, 2])
def test_snapshot_values_equal_the_definition_event_by_event(spark, seed):
    events, reports = random_lake(seed)
    last_day = max(ts for _, _, ts in events) // DAY_US - 10  # cuts the last stretch short
    frame = spark.createDataFrame(events, "event_id string, merchant_id string, ts_us long")
    chargebacks = spark.createDataFrame(reports, "event_id string, reported_at_us long")
    with FrameCache() as frames:
        values = merchant_features.snapshot_values(frame, chargebacks, last_day=last_day, frames=frames).collect()
    got = {
        (row.merchant_id, row.day_number): {item.name: row[item.name] for item in MERCHANT_FEATURES} for row in values
    }
    expected = expected_rows(events, reports, last_day)
    assert sum(1 for row in expected.values() if row["merchant_cb_rate_30d"]) > 20  # the rates are exercised
    assert set(got) == set(expected)
    differing = {key: (got[key], expected[key]) for key in expected if got[key] != expected[key]}
    assert not differing, list(differing.items())[:5]
