"""An independent implementation of the gold features: a brute-force DuckDB self-join over silver.

Silver is read with the `deltalake` package (not Spark), times are the integer `ts_us`, and each window
is an explicit join predicate rather than a window frame, so a shared mistake is unlikely. The z-score uses
DuckDB's own stddev_pop, an accurate algorithm, while gold follows the design's var = E[x²] − mean² in doubles,
which loses precision when the earlier amounts are nearly equal: compare them with `zscore_tolerance`, derived
from that conditioning (mean of squares / variance × a few ulps), not a flat relative tolerance.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import duckdb
from deltalake import DeltaTable

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
MONTH_US = 30 * DAY_US

# o is an event of e's card in e's 30-day window [e.ts − 30 d, e.ts]; shorter windows filter it further.
# "earlier": strictly before e (the z-score's and merchant_seen's window [e.ts − 30 d, e.ts)).
_EARLIER = "o.ts_us < e.ts_us"
_AMOUNT = "CAST(o.amount_usd AS DOUBLE)"
REFERENCE_SQL = f"""
SELECT
    e.event_id,
    count(*) FILTER (WHERE o.ts_us >= e.ts_us - {HOUR_US}) AS txn_count_1h,
    sum(o.amount_usd) FILTER (WHERE o.ts_us >= e.ts_us - {HOUR_US}) AS txn_amount_1h,
    count(*) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS txn_count_24h,
    count(DISTINCT o.merchant_id) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS merchant_count_24h,
    count(DISTINCT o.country) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS country_count_24h,
    max(o.amount_usd) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS max_amount_24h,
    CAST(sum(o.amount_usd) FILTER (WHERE o.ts_us >= e.ts_us - {WEEK_US}) AS DOUBLE)
        / count(*) FILTER (WHERE o.ts_us >= e.ts_us - {WEEK_US}) AS avg_amount_7d,
    CAST(any_value(e.amount_usd) AS DOUBLE) / (
        CAST(sum(o.amount_usd) FILTER (WHERE o.ts_us >= e.ts_us - {WEEK_US}) AS DOUBLE)
        / count(*) FILTER (WHERE o.ts_us >= e.ts_us - {WEEK_US})
    ) AS amount_to_avg_7d,
    (any_value(e.ts_us) - max(o.ts_us) FILTER (WHERE {_EARLIER} AND o.ts_us >= e.ts_us - {WEEK_US})) / 1e6
        AS secs_since_prev_txn,
    count(*) AS txn_count_30d,
    CAST(sum(o.amount_usd) AS DOUBLE) / count(*) AS avg_amount_30d,
    CASE
        WHEN count(*) FILTER (WHERE {_EARLIER}) < 2 THEN NULL
        WHEN min(o.amount_usd) FILTER (WHERE {_EARLIER}) = max(o.amount_usd) FILTER (WHERE {_EARLIER}) THEN NULL
        ELSE (CAST(any_value(e.amount_usd) AS DOUBLE) - avg({_AMOUNT}) FILTER (WHERE {_EARLIER}))
            / stddev_pop({_AMOUNT}) FILTER (WHERE {_EARLIER})
    END AS amount_zscore_30d,
    -- the z-score's conditioning, for zscore_tolerance (not features)
    CAST(any_value(e.amount_usd) AS DOUBLE) AS _zscore_amount,
    avg({_AMOUNT}) FILTER (WHERE {_EARLIER}) AS _zscore_mean,
    avg({_AMOUNT} * {_AMOUNT}) FILTER (WHERE {_EARLIER}) AS _zscore_mean_of_squares,
    var_pop({_AMOUNT}) FILTER (WHERE {_EARLIER}) AS _zscore_variance,
    CASE WHEN bool_or({_EARLIER} AND o.merchant_id = e.merchant_id) THEN 1 ELSE 0 END AS merchant_seen_30d,
    -- event features by integer arithmetic on e.ts_us (UTC); day 0 was a Thursday, day 3 a Sunday
    (any_value(e.ts_us) // {HOUR_US}) % 24 AS hour_of_day,
    CASE WHEN (any_value(e.ts_us) // {DAY_US} + 4) % 7 IN (0, 6) THEN 1 ELSE 0 END AS is_weekend,
    CASE WHEN any_value(e.ts_us) % {DAY_US} < 6 * {HOUR_US} THEN 1 ELSE 0 END AS is_night
FROM silver AS e
JOIN silver AS o
  ON o.card_id = e.card_id AND o.ts_us BETWEEN e.ts_us - {MONTH_US} AND e.ts_us
GROUP BY e.event_id
"""


ZSCORE_ULPS = 16  # a few ulps per rounding step of the design's formula, with margin


def zscore_tolerance(row: dict) -> float:
    """The absolute tolerance between gold's amount_zscore_30d (var = double(Σx²)/n − mean², V2_DESIGN.md) and
    this reference's accurate one, from the reference row's `_zscore_*` columns. The formula's variance is off by a
    few ulps of E[x²] (the sum of squares, the division, mean²), so the relative error of sqrt(var), hence of z,
    is about ulps × (E[x²] / var) / 2: the conditioning, 4e10 for earlier amounts 999.99 and 1000.00. The
    numerator's error is a few ulps of |x| + |mean|, divided by std."""
    variance = row["_zscore_variance"]
    if row["amount_zscore_30d"] is None or not variance:
        return 0.0
    epsilon = sys.float_info.epsilon
    conditioning = row["_zscore_mean_of_squares"] / variance
    std = math.sqrt(variance)
    numerator = abs(row["_zscore_amount"]) + abs(row["_zscore_mean"])
    return ZSCORE_ULPS * epsilon * (abs(row["amount_zscore_30d"]) * conditioning + numerator / std)


def reference_features(silver_path: Path) -> dict[str, dict]:
    """event_id -> {feature: value} computed by DuckDB from the silver Delta table."""
    silver = DeltaTable(str(silver_path)).to_pyarrow_table(
        columns=["event_id", "card_id", "ts_us", "amount_usd", "merchant_id", "country"]
    )
    connection = duckdb.connect()
    connection.register("silver", silver)
    cursor = connection.execute(REFERENCE_SQL)
    names = [column[0] for column in cursor.description]
    rows = (dict(zip(names, values, strict=True)) for values in cursor.fetchall())
    return {row.pop("event_id"): row for row in rows}


# --- The merchant snapshot (spark_jobs/merchant_features.py), independently -------------------------------
# Windows written out here (not read from the registry): W = 1, 7, 30 days, label maturity L = 7 days.
MERCHANT_WINDOW_DAYS = {"1d": 1, "7d": 7, "30d": 30}
LABEL_MATURITY_US = 7 * DAY_US
# A merchant has a snapshot row on day D when it has an event in [S − (L + 30 d) − 1 d, S).
MERCHANT_ROW_LOOKBACK_US = (7 + 30 + 1) * DAY_US


def _merchant_probe_sql(probes: str) -> str:
    """Per probe (merchant_id, s): the six merchant features as of s, by explicit predicates over ts_us and
    reported_at_us; `rows` = the merchant's events in [s − MERCHANT_ROW_LOOKBACK_US, s)."""
    columns = []
    for text, days in MERCHANT_WINDOW_DAYS.items():
        width = days * DAY_US
        columns.append(
            f"count(o.event_id) FILTER (WHERE o.ts_us >= p.s - {width} AND o.ts_us < p.s) AS merchant_txn_count_{text}"
        )
    for text, days in MERCHANT_WINDOW_DAYS.items():
        width = days * DAY_US
        matured = f"o.ts_us >= p.s - {LABEL_MATURITY_US} - {width} AND o.ts_us < p.s - {LABEL_MATURITY_US}"
        columns.append(
            f"CAST(count(o.event_id) FILTER (WHERE {matured} AND o.known) AS DOUBLE) "
            f"/ NULLIF(count(o.event_id) FILTER (WHERE {matured}), 0) AS merchant_cb_rate_{text}"
        )
    return f"""
WITH probes AS ({probes}),
window_events AS (
    SELECT p.merchant_id, p.s, o.event_id, o.ts_us,
           EXISTS (SELECT 1 FROM chargebacks c
                   WHERE c.event_id = o.event_id AND c.reported_at_us < p.s AND c.reported_at_us >= o.ts_us) AS known
    FROM probes p
    JOIN silver o ON o.merchant_id = p.merchant_id AND o.ts_us >= p.s - {MERCHANT_ROW_LOOKBACK_US} AND o.ts_us < p.s
)
SELECT p.merchant_id, p.s, count(o.event_id) AS window_rows, {", ".join(columns)}
FROM probes p
LEFT JOIN window_events o ON o.merchant_id = p.merchant_id AND o.s = p.s
GROUP BY p.merchant_id, p.s
"""


def _merchant_connection(silver_path: Path, chargebacks_path: Path):
    import pyarrow as pa

    silver = DeltaTable(str(silver_path)).to_pyarrow_table(columns=["event_id", "merchant_id", "ts_us"])
    if (Path(chargebacks_path) / "_delta_log").exists():
        chargebacks = DeltaTable(str(chargebacks_path)).to_pyarrow_table(columns=["event_id", "reported_at_us"])
    else:  # no chargeback table yet: no chargebacks
        chargebacks = pa.table({"event_id": pa.array([], pa.string()), "reported_at_us": pa.array([], pa.int64())})
    connection = duckdb.connect()
    connection.register("silver", silver)
    connection.register("chargebacks", chargebacks)
    return connection


def _fetch_dicts(cursor) -> list[dict]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


MERCHANT_FEATURE_COLUMNS = (
    *(f"merchant_txn_count_{text}" for text in MERCHANT_WINDOW_DAYS),
    *(f"merchant_cb_rate_{text}" for text in MERCHANT_WINDOW_DAYS),
)


def reference_merchant_features(silver_path: Path, chargebacks_path: Path) -> dict[str, dict]:
    """event_id -> the six merchant features of each silver event (as of S = the start of its UTC day), by
    DuckDB from silver and silver/chargebacks (read with `deltalake`); counts 0 and rates null when the
    merchant has no event before S in the windows."""
    connection = _merchant_connection(silver_path, chargebacks_path)
    probes = f"SELECT DISTINCT merchant_id, (ts_us // {DAY_US}) * {DAY_US} AS s FROM silver"
    per_probe = {
        (row["merchant_id"], row["s"]): row for row in _fetch_dicts(connection.execute(_merchant_probe_sql(probes)))
    }
    events = connection.execute(f"SELECT event_id, merchant_id, (ts_us // {DAY_US}) * {DAY_US} FROM silver").fetchall()
    return {
        event_id: {name: per_probe[(merchant_id, s)][name] for name in MERCHANT_FEATURE_COLUMNS}
        for event_id, merchant_id, s in events
    }


def reference_merchant_snapshot(silver_path: Path, chargebacks_path: Path, *, last_day_start_us: int) -> list[dict]:
    """The whole gold/merchant_features table (merchant_id, snapshot_start_us, the six features): a row per
    day start s from silver's first day to `last_day_start_us` and merchant with an event in
    [s − 38 d, s)."""
    connection = _merchant_connection(silver_path, chargebacks_path)
    probes = f"""
        SELECT m.merchant_id, d.s
        FROM (SELECT DISTINCT merchant_id FROM silver) m,
             (SELECT range AS s FROM range((SELECT min(ts_us) // {DAY_US} * {DAY_US} FROM silver),
                                           {last_day_start_us} + 1, {DAY_US})) d"""
    rows = _fetch_dicts(connection.execute(_merchant_probe_sql(probes)))
    return [
        {
            "merchant_id": row["merchant_id"],
            "snapshot_start_us": row["s"],
            **{n: row[n] for n in MERCHANT_FEATURE_COLUMNS},
        }
        for row in rows
        if row["window_rows"] > 0
    ]
