"""An independent implementation of the gold features: a brute-force DuckDB self-join over silver.

Silver is read with the `deltalake` package (not Spark), times are the integer `ts_us`, and each window
is an explicit join predicate rather than a window frame, so a shared mistake is unlikely.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from deltalake import DeltaTable

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US

REFERENCE_SQL = f"""
SELECT
    e.event_id,
    count(*) FILTER (WHERE o.ts_us >= e.ts_us - {HOUR_US}) AS txn_count_1h,
    sum(o.amount_usd) FILTER (WHERE o.ts_us >= e.ts_us - {HOUR_US}) AS txn_amount_1h,
    count(*) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS txn_count_24h,
    count(DISTINCT o.merchant_id) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS merchant_count_24h,
    count(DISTINCT o.country) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS country_count_24h,
    max(o.amount_usd) FILTER (WHERE o.ts_us >= e.ts_us - {DAY_US}) AS max_amount_24h,
    CAST(sum(o.amount_usd) AS DOUBLE) / count(*) AS avg_amount_7d,
    CAST(any_value(e.amount_usd) AS DOUBLE) / (CAST(sum(o.amount_usd) AS DOUBLE) / count(*)) AS amount_to_avg_7d,
    (any_value(e.ts_us) - max(o.ts_us) FILTER (WHERE o.ts_us < e.ts_us)) / 1e6 AS secs_since_prev_txn
FROM silver AS e
JOIN silver AS o
  ON o.card_id = e.card_id AND o.ts_us BETWEEN e.ts_us - {WEEK_US} AND e.ts_us
GROUP BY e.event_id
"""


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
