"""Gold's running frames (`feature_aggregations.CardFrames`: exit rows, change points, running maxima) against the
sliding RANGE frames they replace, bit for bit, on the rows where the two could part: peers, window edges, runs
of one amount, a card's first events, a merchant seen exactly one window earlier."""

from __future__ import annotations

import random
import struct
from datetime import date
from decimal import Decimal

from spark_jobs import gold
from spark_jobs.feature_registry import CARD_FEATURES

DAY_US = 86_400_000_000
MONTH_US = 30 * DAY_US
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
SCHEMA = (
    "event_id string, card_id string, ts decimal(16,6), ts_us long, dt date, amount_usd decimal(30,10), "
    "merchant_id string, country string"
)
# The features whose Spark half is no longer a sliding frame.
RUNNING = ("txn_count_30d", "avg_amount_30d", "amount_zscore_30d", "merchant_seen_30d", "secs_since_prev_txn")


def _sliding_definitions(events):
    """The v2 gold columns of RUNNING as sliding RANGE frames over [t − W, t] / [t − W, t − 1] (7008aa5's code)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_card = Window.partitionBy("card_id").orderBy("ts_us")
    within = by_card.rangeBetween(-MONTH_US, 0)
    earlier = by_card.rangeBetween(-MONTH_US, -1)
    amount = F.col("amount_usd")
    unscaled = (amount * F.lit(Decimal(10**10))).cast("decimal(30,0)")
    split = F.lit(Decimal(10**15))
    high = ((unscaled - unscaled % split) / split).cast("decimal(20,0)")
    low = (unscaled % split).cast("decimal(20,0)")

    def exact_sum(product):
        return F.sum(product.cast("decimal(38,0)")).over(earlier).cast("double")

    count = F.count(F.lit(1)).over(earlier)
    mean = F.sum(amount).over(earlier).cast("double") / count
    variance = (
        exact_sum(high * high) * F.lit(1e10)
        + (exact_sum(high * low) * F.lit(2.0)) / F.lit(1e5)
        + exact_sum(low * low) / F.lit(1e20)
    ) / count - mean * mean
    degenerate = (count < 2) | (F.min(amount).over(earlier) == F.max(amount).over(earlier)) | (variance <= 0.0)
    same_merchant = Window.partitionBy("card_id", "merchant_id").orderBy("ts_us").rangeBetween(-MONTH_US, -1)
    week_earlier = by_card.rangeBetween(-7 * DAY_US, -1)
    return events.select(
        "event_id",
        F.count(F.lit(1)).over(within).alias("txn_count_30d"),
        (F.sum(amount).over(within).cast("double") / F.count(F.lit(1)).over(within)).alias("avg_amount_30d"),
        F.when(degenerate, F.lit(None).cast("double"))
        .otherwise((amount.cast("double") - mean) / F.sqrt(variance))
        .alias("amount_zscore_30d"),
        F.when(F.count(F.lit(1)).over(same_merchant) > 0, 1).otherwise(0).cast("long").alias("merchant_seen_30d"),
        ((F.col("ts_us") - F.max("ts_us").over(week_earlier)) / F.lit(1e6)).alias("secs_since_prev_txn"),
    )


def _edge_cases():
    """(event_id, card_id, ts_us, amount, merchant): each card one situation."""
    t = T0_US + 40 * DAY_US
    rows = [
        # peers at t with different amounts; earlier events exactly at t − W and at t − W − 1
        ("peer-old", "peers", t - MONTH_US - 1, "99", "m-9"),
        ("peer-edge", "peers", t - MONTH_US, "5", "m-1"),
        ("peer-mid", "peers", t - DAY_US, "7", "m-2"),
        ("peer-a", "peers", t, "1", "m-1"),
        ("peer-b", "peers", t, "1000", "m-2"),
        ("peer-c", "peers", t, "5", "m-3"),
        ("peer-after", "peers", t + 1, "5", "m-3"),
        # all-equal earlier amounts (n >= 2), then one different; its change point (odd, 5) counts while odd is
        # in the window (exactly at t − W for flat-edge), not after (flat-gone: only equal amounts again)
        *[(f"flat-{i}", "flat", t + i * DAY_US, "12.5", "m-1") for i in range(4)],
        ("flat-odd", "flat", t + 4 * DAY_US, "13", "m-1"),
        ("flat-5", "flat", t + 5 * DAY_US, "12.5", "m-1"),
        ("flat-edge", "flat", t + 4 * DAY_US + MONTH_US, "12.5", "m-1"),
        ("flat-gone", "flat", t + 4 * DAY_US + MONTH_US + 1, "12.5", "m-1"),
        # variance from rounding only: amounts whose doubles differ by an ulp-sized share
        ("round-1", "rounding", t, "0.1", "m-1"),
        ("round-2", "rounding", t + 1, "0.1000000001", "m-1"),
        ("round-3", "rounding", t + 2, "0.1", "m-1"),
        ("round-4", "rounding", t + 3, "0.1000000001", "m-1"),
        ("round-5", "rounding", t + 4, "99999999999999999999.9999999999", "m-1"),
        ("round-6", "rounding", t + 5, "99999999999999999999.9999999998", "m-1"),
        ("round-7", "rounding", t + 6, "1", "m-1"),
        # a card's only event, and a card whose first events are peers
        ("alone", "alone", t, "3", "m-1"),
        ("first-a", "first", t, "3", "m-1"),
        ("first-b", "first", t, "4", "m-1"),
        # a merchant seen exactly W earlier (seen), and W + 1 earlier (not)
        ("seen-w", "merchant", t - MONTH_US, "1", "m-1"),
        ("seen-now", "merchant", t, "2", "m-1"),
        ("unseen-w1", "merchant", t - MONTH_US - 1 + DAY_US, "1", "m-2"),
        ("unseen-now", "merchant", t + DAY_US, "2", "m-2"),
        # the previous event exactly 7 days back (kept) and 7 days + 1 µs back (none)
        ("prev-a", "previous", t, "1", "m-1"),
        ("prev-b", "previous", t + 7 * DAY_US, "1", "m-1"),
        ("prev-c", "previous", t + 14 * DAY_US + 1, "1", "m-1"),
    ]
    return rows


def _generated(seed: int):
    """Cards with steps at the 30-day and 7-day edges, peers, few amounts (runs) and few merchants."""
    rng = random.Random(seed)
    rows = []
    for card_index in range(12):
        card = f"gen-{card_index}"
        ts = T0_US
        amounts = [str(rng.choice([1, 7, 12.5, 250])) for _ in range(rng.choice([1, 2, 4]))]
        for index in range(rng.randrange(30, 90)):
            steps = [
                0,
                0,
                1,
                DAY_US,
                3 * DAY_US,
                MONTH_US - 1,
                MONTH_US,
                MONTH_US + 1,
                7 * DAY_US,
                rng.randrange(DAY_US),
            ]
            ts += rng.choice(steps)
            rows.append((f"{card}-{index:03d}", card, ts, rng.choice(amounts), rng.choice(["m-1", "m-2", "m-3"])))
    return rows


def _silver(spark, tmp_path, rows):
    data = [
        (event_id, card, Decimal(ts_us).scaleb(-6), ts_us, date(2026, 1, 1), Decimal(amount), merchant, "US")
        for event_id, card, ts_us, amount, merchant in rows
    ]
    # through Parquet, so the decimals reach gold as silver's do
    spark.createDataFrame(data, SCHEMA).write.parquet(str(tmp_path / "silver"))
    return spark.read.parquet(str(tmp_path / "silver")).selectExpr("*", "timestamp_micros(ts_us) AS event_ts")


def _bits(value):
    return struct.pack("<d", value) if isinstance(value, float) else value


def _differences(spark, tmp_path, rows):
    silver = _silver(spark, tmp_path, rows)
    stored = {row.event_id: row.asDict() for row in gold.card_features(silver, computed_at="2026-01-01").collect()}
    expected = {row.event_id: row.asDict() for row in _sliding_definitions(silver).collect()}
    assert stored.keys() == expected.keys() == {row[0] for row in rows}
    return stored, [
        (event_id, name, expected[event_id][name], stored[event_id][name])
        for event_id in sorted(expected)
        for name in RUNNING
        if _bits(expected[event_id][name]) != _bits(stored[event_id][name])
    ]


def test_running_frames_equal_the_sliding_frames_on_the_edge_cases(spark, tmp_path):
    assert set(RUNNING) <= {feature.name for feature in CARD_FEATURES}
    stored, differences = _differences(spark, tmp_path, _edge_cases())
    assert differences == []
    # the cases are what they say (so a change in the data cannot quietly make them trivial)
    assert stored["peer-a"]["txn_count_30d"] == 5 and stored["peer-a"]["amount_zscore_30d"] is not None
    assert stored["flat-3"]["amount_zscore_30d"] is None and stored["flat-odd"]["amount_zscore_30d"] is None
    assert stored["flat-5"]["amount_zscore_30d"] is not None and stored["flat-edge"]["amount_zscore_30d"] is not None
    assert stored["flat-gone"]["amount_zscore_30d"] is None
    assert stored["alone"]["txn_count_30d"] == 1 and stored["first-a"]["amount_zscore_30d"] is None
    assert (stored["seen-now"]["merchant_seen_30d"], stored["unseen-now"]["merchant_seen_30d"]) == (1, 0)
    assert stored["prev-b"]["secs_since_prev_txn"] == 7 * 86_400.0 and stored["prev-c"]["secs_since_prev_txn"] is None


def test_running_frames_equal_the_sliding_frames_on_generated_cards(spark, tmp_path):
    stored, differences = _differences(spark, tmp_path, _generated(seed=20))
    assert differences == []
    zscores = [row["amount_zscore_30d"] for row in stored.values()]
    assert sum(z is None for z in zscores) > 20 and sum(z is not None for z in zscores) > 100
