"""Request-time features: a Hypothesis differential test against an independent DuckDB query, the pairing of
each registry aggregation's Spark and request-time halves, and one Spark test against gold itself."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import date
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feature_store.online_state import SERVED, StateEvent
from feature_store.request_features import compute_features
from spark_jobs.feature_aggregations import AGGREGATIONS, Aggregation, aggregation_of
from spark_jobs.feature_registry import CARD_FEATURE_NAMES, CARD_FEATURES, MERCHANT_FEATURES, Feature

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
MONTH_US = 30 * DAY_US
T_BASE = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, a Thursday
# Friday/Saturday, Saturday/Sunday, Sunday/Monday midnights and 1 µs before each; 06:00 and 1 µs before
DAY_BOUNDARIES = [T_BASE + days * DAY_US + delta for days in (2, 3, 4) for delta in (-1, 0)]
DAY_BOUNDARIES += [T_BASE + 6 * HOUR_US - 1, T_BASE + 6 * HOUR_US]

# --- the independent reference ----------------------------------------------------------------------------
# Written from the feature definitions, not from the Python code: explicit predicates over the card's state
# table, exact DECIMAL sums, and decimal -> double through the decimal text (DuckDB's string -> double is
# correctly rounded, as Spark's Decimal.toDouble is), so doubles are compared for equality, not closeness.
# The exception is amount_zscore_30d: DuckDB's own stddev_pop (another algorithm), compared within 1e-9 relative.
# The event features use DuckDB's calendar functions on the UTC timestamp (not the integer arithmetic of the code).

REFERENCE_SQL = f"""
WITH card AS (SELECT * FROM state WHERE ts_us BETWEEN $t - {MONTH_US} AND $t),
week AS (
    SELECT CAST(CAST(sum(amount_usd) AS VARCHAR) AS DOUBLE) / CAST(count(*) AS DOUBLE) AS mean
    FROM card WHERE ts_us >= $t - {WEEK_US}
),
month AS (
    SELECT CAST(CAST(sum(amount_usd) AS VARCHAR) AS DOUBLE) / CAST(count(*) AS DOUBLE) AS mean FROM card
),
earlier AS (
    SELECT count(*) AS n, min(amount_usd) = max(amount_usd) AS flat, avg(CAST(CAST(amount_usd AS VARCHAR) AS DOUBLE))
        AS mean, stddev_pop(CAST(CAST(amount_usd AS VARCHAR) AS DOUBLE)) AS std
    FROM card WHERE ts_us < $t
),
moment AS (SELECT make_timestamp($t) AS at)
SELECT
    count(*) FILTER (WHERE ts_us >= $t - {HOUR_US}) AS txn_count_1h,
    sum(amount_usd) FILTER (WHERE ts_us >= $t - {HOUR_US}) AS txn_amount_1h,
    count(*) FILTER (WHERE ts_us >= $t - {DAY_US}) AS txn_count_24h,
    count(DISTINCT merchant_id) FILTER (WHERE ts_us >= $t - {DAY_US}) AS merchant_count_24h,
    count(DISTINCT country) FILTER (WHERE ts_us >= $t - {DAY_US}) AS country_count_24h,
    max(amount_usd) FILTER (WHERE ts_us >= $t - {DAY_US}) AS max_amount_24h,
    any_value(week.mean) AS avg_amount_7d,
    CAST(CAST($amount AS VARCHAR) AS DOUBLE) / any_value(week.mean) AS amount_to_avg_7d,
    CAST($t - max(ts_us) FILTER (WHERE ts_us < $t AND ts_us >= $t - {WEEK_US}) AS DOUBLE) / CAST(1000000 AS DOUBLE)
        AS secs_since_prev_txn,
    count(*) AS txn_count_30d,
    any_value(month.mean) AS avg_amount_30d,
    CASE WHEN any_value(earlier.n) < 2 OR any_value(earlier.flat) THEN NULL
        ELSE (CAST(CAST($amount AS VARCHAR) AS DOUBLE) - any_value(earlier.mean)) / any_value(earlier.std)
    END AS amount_zscore_30d,
    CASE WHEN count(*) FILTER (WHERE ts_us < $t AND merchant_id = $merchant) > 0 THEN 1 ELSE 0 END
        AS merchant_seen_30d,
    hour(any_value(moment.at)) AS hour_of_day,
    CASE WHEN dayname(any_value(moment.at)) IN ('Saturday', 'Sunday') THEN 1 ELSE 0 END AS is_weekend,
    CASE WHEN hour(any_value(moment.at)) < 6 THEN 1 ELSE 0 END AS is_night
FROM card, week, month, earlier, moment
"""
STATE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts_us", pa.int64()),
        ("amount_usd", pa.decimal128(30, 10)),
        ("merchant_id", pa.string()),
        ("country", pa.string()),
    ]
)


def reference(state: list[StateEvent], current: StateEvent) -> dict:
    """The features of `current` by DuckDB over the card's state (which holds `current`)."""
    table = pa.table(
        {
            "event_id": [e.event_id for e in state],
            "ts_us": [e.ts_us for e in state],
            "amount_usd": [e.amount_usd for e in state],
            "merchant_id": [e.merchant_id for e in state],
            "country": [e.country for e in state],
        },
        schema=STATE_SCHEMA,
    )
    connection = _connection()
    connection.register("state", table)
    parameters = {"t": current.ts_us, "amount": str(current.amount_usd), "merchant": current.merchant_id}
    cursor = connection.execute(REFERENCE_SQL, parameters)
    names = [column[0] for column in cursor.description]
    (values,) = cursor.fetchall()
    row = dict(zip(names, values, strict=True))
    connection.unregister("state")
    return row


_CONNECTIONS: list = []


def _connection():
    """One DuckDB connection for the module (opening one per Hypothesis example costs most of the test)."""
    if not _CONNECTIONS:
        _CONNECTIONS.append(duckdb.connect())
    return _CONNECTIONS[0]


# --- generated card states --------------------------------------------------------------------------------

# Offsets back from the authorization's ts: every window edge and one microsecond either side, ties (0),
# a 7-day gap (beyond the longest window), later events (negative: not in the window) and anything between.
EDGE_OFFSETS = [0, 0, 1, -1, HOUR_US - 1, HOUR_US, HOUR_US + 1, DAY_US - 1, DAY_US, DAY_US + 1]
EDGE_OFFSETS += [WEEK_US - 1, WEEK_US, WEEK_US + 1, 2 * WEEK_US, WEEK_US + DAY_US]
EDGE_OFFSETS += [MONTH_US - 1, MONTH_US, MONTH_US + 1, MONTH_US + WEEK_US]
offsets = (
    st.sampled_from(EDGE_OFFSETS) | st.integers(-HOUR_US, WEEK_US + DAY_US) | st.integers(-HOUR_US, MONTH_US + DAY_US)
)
amounts = st.builds(
    lambda unscaled, places: Decimal(unscaled).scaleb(-places),
    st.integers(1, 10**6) | st.integers(1, 10**20 - 1),  # large: more digits than a double holds
    st.integers(0, 10),
)


@st.composite
def card_states(draw):
    """(state, current): the card's events as the online state holds them after the write-back."""
    t = T_BASE + draw(st.integers(0, 10**12) | st.sampled_from(DAY_BOUNDARIES))
    count = draw(st.integers(0, 12))  # 0: the card's first event
    state = []
    for index in range(count):
        state.append(
            StateEvent(
                "card-1",
                f"e{index:02d}",
                t - draw(offsets),
                draw(amounts),
                draw(st.sampled_from(["m-1", "m-2", "m-3", "m-4"])),
                draw(st.sampled_from(["US", "FR", "SG"])),
                SERVED,
                "fp",
            )
        )
    current = StateEvent(
        "card-1", "current", t, draw(amounts), draw(st.sampled_from(["m-1", "m-9"])), "US", SERVED, "fp"
    )
    return [*state, current], current


def test_the_reference_covers_every_registry_feature():
    only = StateEvent("c", "x", T_BASE, Decimal(1), "m", "US", SERVED, "f")
    row = reference([only], only)
    assert tuple(row) == CARD_FEATURE_NAMES


def assert_equals_reference(served: dict, expected: dict, state: list[StateEvent], current: StateEvent) -> None:
    """Every feature equal, the z-score within 1e-9 relative of DuckDB's stddev_pop when the formula's
    double arithmetic is well conditioned (mean of squares over variance below 10^5; beyond it the design's
    var = E[x²] − mean² loses digits by cancellation: then both must be null or both a number)."""
    served_z = served.pop("amount_zscore_30d")
    expected_z = expected.pop("amount_zscore_30d")
    assert served == expected
    if served_z is None or expected_z is None:
        assert (served_z is None and expected_z is None) or not _well_conditioned(state, current)
        return
    if _well_conditioned(state, current):
        assert served_z == pytest.approx(expected_z, rel=1e-9, abs=1e-12)


def _well_conditioned(state: list[StateEvent], current: StateEvent) -> bool:
    amounts = [e.amount_usd for e in state if current.ts_us - MONTH_US <= e.ts_us < current.ts_us]
    if len(amounts) < 2:
        return True
    n = Decimal(len(amounts))
    mean = sum(amounts) / n
    variance = sum((a - mean) ** 2 for a in amounts) / n
    return variance > 0 and sum(a * a for a in amounts) / n / variance < Decimal(10) ** 5


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(card_states(), st.randoms())
def test_request_time_equals_the_duckdb_reference(case, random):
    state, current = case
    history = list(state)
    random.shuffle(history)  # any order
    if random.random() < 0.5:
        history.remove(current)  # current counts once, in the history or not
    served = compute_features(history, current)
    expected = reference(state, current)
    assert_equals_reference(dict(served), expected, state, current)
    # exact types: counts int, decimals at decimal(38,10)'s scale, doubles float
    for feature in CARD_FEATURES:
        value = served[feature.name]
        if isinstance(value, Decimal):
            assert value.as_tuple().exponent == -10, feature.name


def test_hand_written_window_edges_ties_and_gap():
    def event(event_id, ts_us, amount="1", merchant="m-1", country="US"):
        return StateEvent("card-1", event_id, ts_us, Decimal(amount), merchant, country, SERVED, "fp")

    t = T_BASE + WEEK_US * 3
    current = event("now", t, "30")
    history = [
        event("gap", t - WEEK_US - 1, "1000"),  # one microsecond outside the week: nothing of it counts
        event("week-edge", t - WEEK_US, "10"),  # exactly on the edge: inside
        event("hour-out", t - HOUR_US - 1, "5", "m-2"),
        event("hour-edge", t - HOUR_US, "2", "m-3", "FR"),
        event("peer", t, "3"),  # a peer at the same ts: counts
        event("later", t + 1, "999"),  # later than the authorization: cannot be known
        current,
    ]
    features = compute_features(history, current)
    assert features["txn_count_1h"] == 3
    assert features["txn_amount_1h"] == Decimal("35.0000000000")
    assert features["txn_count_24h"] == 4
    assert features["merchant_count_24h"] == 3
    assert features["country_count_24h"] == 2
    assert features["max_amount_24h"] == Decimal("30.0000000000")
    assert features["avg_amount_7d"] == 50 / 5
    assert features["amount_to_avg_7d"] == 30 / 10
    assert features["secs_since_prev_txn"] == 3600.0  # the peer is not "previous": strictly earlier only
    first = compute_features([], event("first", t))
    assert first["secs_since_prev_txn"] is None and first["txn_count_1h"] == 1
    only_gap = compute_features([event("old", t - WEEK_US - 1), current], current)
    assert only_gap["secs_since_prev_txn"] is None and only_gap["txn_count_24h"] == 1


def test_history_of_another_card_is_refused():
    current = StateEvent("card-1", "x", T_BASE, Decimal(1), "m", "US", SERVED, "f")
    other = StateEvent("card-2", "y", T_BASE, Decimal(1), "m", "US", SERVED, "f")
    with pytest.raises(ValueError, match="another card"):
        compute_features([other], current)


# --- pairing ----------------------------------------------------------------------------------------------


def test_every_registry_feature_has_a_spark_and_a_request_time_half():
    unpaired = []
    for feature in CARD_FEATURES:
        aggregation = AGGREGATIONS.get(feature.aggregation)
        if aggregation is None or not callable(aggregation.spark_column) or not callable(aggregation.at_request):
            unpaired.append(feature.name)
    assert unpaired == [], f"features whose aggregation lacks a Spark or a request-time half: {unpaired}"


def test_an_aggregation_without_a_half_or_unknown_fails_the_pairing(monkeypatch):
    import spark_jobs.feature_aggregations as aggregations

    bogus = Feature("bogus", "integer", "median", CARD_FEATURES[0].window, "not an aggregation")
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        aggregation_of(bogus)
    for merchant_feature in MERCHANT_FEATURES:  # a daily snapshot, never aggregated per event
        with pytest.raises(ValueError, match=f"{merchant_feature.name}: a merchant_id feature"):
            aggregation_of(merchant_feature)
    first = CARD_FEATURES[0]
    half = Aggregation(first.aggregation, None, AGGREGATIONS[first.aggregation].at_request)
    monkeypatch.setitem(aggregations.AGGREGATIONS, first.aggregation, half)
    with pytest.raises(AssertionError, match=first.name):
        test_every_registry_feature_has_a_spark_and_a_request_time_half()


def test_the_serving_path_never_imports_spark():
    code = (
        "import sys, feature_store.serving, feature_store.request_features, spark_jobs.feature_aggregations\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j', 'delta'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- request time == Spark gold ---------------------------------------------------------------------------


def _generated_card_events(seed: int) -> list[StateEvent]:
    """Three cards with bursts, peers, window edges (30 d ± 1 µs too), gaps, repeated amounts (the z-score's
    std 0), and amounts with 10 places and 20 digits (the exact sum of squares' high part)."""
    import random

    rng = random.Random(seed)
    events = []
    for card in ("card-a", "card-b", "card-c"):
        t = T_BASE
        for index in range(40):
            steps = [0, 1, HOUR_US - 1, HOUR_US, HOUR_US + 1, DAY_US, WEEK_US + 1, rng.randrange(HOUR_US)]
            steps += [MONTH_US - 1, MONTH_US, MONTH_US + 1, rng.randrange(6 * HOUR_US)]
            t += rng.choice(steps)
            amount = Decimal(rng.choice([rng.randrange(1, 10**6), rng.randrange(1, 10**20)])).scaleb(-rng.randrange(11))
            if card == "card-c" and index % 5:  # long runs of one amount: min == max, then one different
                amount = Decimal("12.5")
            merchant = rng.choice(["m-1", "m-2", "m-3"])
            country = rng.choice(["US", "FR"])
            events.append(StateEvent(card, f"{card}-{index:03d}", t, amount, merchant, country, SERVED, "fp"))
    return events


def test_request_time_equals_spark_gold(spark, tmp_path):
    from spark_jobs import gold

    events = _generated_card_events(seed=16)
    rows = [
        (
            e.event_id,
            e.card_id,
            Decimal(e.ts_us).scaleb(-6),
            e.ts_us,
            date(2026, 1, 1),
            e.amount_usd,
            e.merchant_id,
            e.country,
        )
        for e in events
    ]
    schema = (
        "event_id string, card_id string, ts decimal(16,6), ts_us long, dt date, amount_usd decimal(30,10), "
        "merchant_id string, country string"
    )
    # through Parquet, so the decimals reach gold as silver's do (read from files, not from Python objects)
    spark.createDataFrame(rows, schema).write.parquet(str(tmp_path / "silver"))
    silver = spark.read.parquet(str(tmp_path / "silver")).selectExpr("*", "timestamp_micros(ts_us) AS event_ts")
    gold_rows = {row.event_id: row.asDict() for row in gold.card_features(silver, computed_at="2026-01-01").collect()}

    mismatches = []
    for current in events:
        card_events = [e for e in events if e.card_id == current.card_id]
        served = compute_features(card_events, current)
        for name in CARD_FEATURE_NAMES:
            if not _same_bits(served[name], gold_rows[current.event_id][name]):
                mismatches.append((current.event_id, name, served[name], gold_rows[current.event_id][name]))
    assert mismatches == []
    assert any(row["secs_since_prev_txn"] is None for row in gold_rows.values())
    zscores = [row["amount_zscore_30d"] for row in gold_rows.values()]
    assert any(z is None for z in zscores) and sum(z is not None for z in zscores) > 20
    assert {row["merchant_seen_30d"] for row in gold_rows.values()} == {0, 1}


def _same_bits(served, stored) -> bool:
    """Equal values of the same type; doubles equal bit for bit (so -0.0 is not 0.0)."""
    if isinstance(served, float) or isinstance(stored, float):
        return type(served) is type(stored) and struct.pack("<d", served) == struct.pack("<d", stored)
    return type(served) is type(stored) and served == stored
