"""Independent answers the served features are checked against, all in DuckDB.

- `reference_features`: every card and event feature recomputed from exactly the state events a request saw
  (the replay log), one SQL query written here from the registry's aggregation kinds (V2_DESIGN's
  definitions); it shares no code with `feature_store/request_features.py`.
- `merchant_reference`: the merchant features and the stale flag each request should have been served from
  the merchant snapshot the online store held (gold/merchant_features at the version ingested before serving:
  each merchant's newest day), by the serving rules written here in SQL (exact day; an earlier terminal record;
  else stale; none: counts 0, rates null); it shares no code with `feature_store/merchant_lookup.py`.
- `merchant_truth`: the merchant snapshot of each served event's (merchant, UTC day) in gold/merchant_features at
  a version (the final one: the offline truth; the ingested one: what a fresh snapshot said at serve time).
- `gold_rows`: gold after the final stream run, read with the `deltalake` package (not Spark).
- `affected_event_ids`: the served events for which some event gold counts in one of the windows (same
  card, ts in [ts − longest window, ts], equal-ts peers included) was not known when the event was served:
  neither in silver before serving started nor served earlier. Decided from the log and gold's keys alone.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from devtools.serving_consistency.replay import SERVED, ServeRecord
from spark_jobs.feature_registry import (
    CARD_FEATURE_NAMES,
    CARD_FEATURES,
    COUNT,
    COUNT_DISTINCT,
    HOUR_OF_DAY,
    IS_NIGHT,
    IS_WEEKEND,
    MAX,
    MAX_WINDOW,
    MEAN,
    MERCHANT_COUNT,
    MERCHANT_FEATURE_NAMES,
    MERCHANT_FEATURES,
    NIGHT_HOURS,
    RATIO_TO_MEAN,
    SECONDS_SINCE_PREVIOUS,
    SEEN_EARLIER,
    SUM,
    ZSCORE_TO_EARLIER,
    Feature,
)

AMOUNT = pa.decimal128(38, 10)
GOLD_TABLE = "gold/card_features"
SILVER_TABLE = "silver/card_transactions"
MERCHANT_TABLE = "gold/merchant_features"
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 86_400_000_000


def _in_window(item: Feature, *, strictly_earlier: bool = False) -> str:
    upper = " AND s.ts_us < r.ts_us" if strictly_earlier else ""
    return f"FILTER (WHERE s.ts_us >= r.ts_us - {item.window_us}{upper})"


def _mean(item: Feature) -> str:
    return f"(CAST(sum(s.{item.source}) {_in_window(item)} AS DOUBLE) / count(*) {_in_window(item)})"


def _double(expression: str) -> str:
    """An exact decimal or HUGEINT as the correctly rounded double, through its decimal text (DuckDB's direct
    casts of wide values may round twice; text → double is correctly rounded, as Java's and Python's are)."""
    return f"CAST(CAST({expression} AS VARCHAR) AS DOUBLE)"


ZSCORE_SPLIT = 10**15  # U = amount · 10^10 = hi · 10^15 + lo (spark_jobs/feature_aggregations.py)


def _zscore(item: Feature) -> str:
    """(amount − mean) / sqrt(var) over the strictly earlier window events, reproducing the documented double
    operations exactly (V2_DESIGN.md; spark_jobs/feature_aggregations.py's docstring), written here anew:
    n = count; mean = double(exact decimal sum) / n; the exact sum of squares as three exact integer sums
    (HUGEINT) over U = amount · 10^10 = hi · 10^15 + lo, each correctly rounded to double, then
    Σhi²·1e10 + (Σhi·lo·2)/1e5 + Σlo²/1e20; var = that / n − mean·mean; z = (double(amount) − mean) / sqrt(var);
    null when n < 2, min = max or var <= 0. IEEE +, −, ×, ÷ and sqrt are correctly rounded in DuckDB, Java
    and Python alike, so the served value must equal this one bit for bit (compare.py) — the formula loses
    precision when the earlier amounts are nearly equal (var ≪ mean²), and an exact-arithmetic reference would
    then differ from both by far more than any fixed tolerance."""
    earlier = _in_window(item, strictly_earlier=True)
    n = f"count(*) {earlier}"
    unscaled = f"CAST(s.{item.source} * 10000000000 AS HUGEINT)"
    high, low = f"({unscaled} // {ZSCORE_SPLIT})", f"({unscaled} % {ZSCORE_SPLIT})"
    squares = (
        f"({_double(f'sum({high} * {high}) {earlier}')} * 1e10"
        f" + ({_double(f'sum({high} * {low}) {earlier}')} * 2.0) / 1e5"
        f" + {_double(f'sum({low} * {low}) {earlier}')} / 1e20)"
    )
    mean = f"({_double(f'sum(s.{item.source}) {earlier}')} / {n})"
    variance = f"({squares} / {n} - {mean} * {mean})"
    return (
        f"CASE WHEN {n} >= 2 AND min(s.{item.source}) {earlier} <> max(s.{item.source}) {earlier} "
        f"AND {variance} > 0 THEN ({_double(f'r.{item.source}')} - {mean}) / sqrt({variance}) END"
    )


_AGGREGATE_SQL = {
    ZSCORE_TO_EARLIER: _zscore,
    SEEN_EARLIER: lambda item: (
        f"coalesce(max(CASE WHEN s.{item.source} = r.{item.source} THEN 1 ELSE 0 END) "
        f"{_in_window(item, strictly_earlier=True)}, 0)"
    ),
    # event features: UTC by integer arithmetic on ts_us; day 0 (1970-01-01) was a Thursday, (day + 3) % 7 = 0 a Monday
    HOUR_OF_DAY: lambda item: f"(r.ts_us // {US_PER_HOUR}) % 24",
    IS_WEEKEND: lambda item: f"CASE WHEN (r.ts_us // {US_PER_DAY} + 3) % 7 >= 5 THEN 1 ELSE 0 END",
    IS_NIGHT: lambda item: (
        f"CASE WHEN (r.ts_us // {US_PER_HOUR}) % 24 BETWEEN {NIGHT_HOURS.start} AND {NIGHT_HOURS.stop - 1} "
        "THEN 1 ELSE 0 END"
    ),
    COUNT: lambda item: f"count(*) {_in_window(item)}",
    SUM: lambda item: f"sum(s.{item.source}) {_in_window(item)}",
    MAX: lambda item: f"max(s.{item.source}) {_in_window(item)}",
    COUNT_DISTINCT: lambda item: f"count(DISTINCT s.{item.source}) {_in_window(item)}",
    MEAN: _mean,
    RATIO_TO_MEAN: lambda item: f"CAST(r.{item.source} AS DOUBLE) / {_mean(item)}",
    SECONDS_SINCE_PREVIOUS: lambda item: f"(r.ts_us - max(s.ts_us) {_in_window(item, strictly_earlier=True)}) / 1e6",
}


def feature_sql(item: Feature) -> str:
    """One feature as a DuckDB aggregate over `seen s` (a request's state events) grouped by request `r`."""
    if item.aggregation not in _AGGREGATE_SQL:
        raise ValueError(f"feature {item.name}: the reference has no SQL for aggregation {item.aggregation!r}")
    return _AGGREGATE_SQL[item.aggregation](item)


def reference_sql() -> str:
    columns = ",\n    ".join(f"{feature_sql(item)} AS {item.name}" for item in CARD_FEATURES)
    return f"""
SELECT r.seq,
    {columns}
FROM requests AS r
JOIN seen AS s ON s.seq = r.seq AND s.ts_us <= r.ts_us
GROUP BY r.seq, r.ts_us, r.amount_usd, r.merchant_id
"""


def _own_amount(record: ServeRecord) -> str | None:
    return next((item[2] for item in record.state if item[0] == record.event_id), None)


def _own_merchant(record: ServeRecord) -> str | None:
    return record.merchant_id or next((item[3] for item in record.state if item[0] == record.event_id), None)


def reference_features(records: list[ServeRecord]) -> dict[int, dict]:
    """seq -> {feature: value} recomputed from each served request's logged state."""
    from decimal import Decimal

    served = [record for record in records if record.outcome == SERVED]
    requests = pa.table(
        {
            "seq": pa.array([record.seq for record in served], pa.int64()),
            "ts_us": pa.array([record.ts_us for record in served], pa.int64()),
            "amount_usd": pa.array(
                [None if (text := _own_amount(record)) is None else Decimal(text) for record in served], AMOUNT
            ),
            "merchant_id": pa.array([_own_merchant(record) for record in served], pa.string()),
        }
    )
    rows = [(record.seq, item) for record in served for item in record.state]
    seen = pa.table(
        {
            "seq": pa.array([seq for seq, _ in rows], pa.int64()),
            "ts_us": pa.array([item[1] for _, item in rows], pa.int64()),
            "amount_usd": pa.array([Decimal(item[2]) for _, item in rows], AMOUNT),
            "merchant_id": pa.array([item[3] for _, item in rows], pa.string()),
            "country": pa.array([item[4] for _, item in rows], pa.string()),
        }
    )
    connection = duckdb.connect()
    connection.register("requests", requests)
    connection.register("seen", seen)
    cursor = connection.execute(reference_sql())
    names = [column[0] for column in cursor.description]
    assert names[1:] == list(CARD_FEATURE_NAMES), names
    return {values[0]: dict(zip(CARD_FEATURE_NAMES, values[1:], strict=True)) for values in cursor.fetchall()}


def _merchant_requests(records: list[ServeRecord]) -> pa.Table:
    served = [record for record in records if record.outcome == SERVED]
    return pa.table(
        {
            "seq": pa.array([record.seq for record in served], pa.int64()),
            "merchant_id": pa.array([_own_merchant(record) for record in served], pa.string()),
            "ts_us": pa.array([record.ts_us for record in served], pa.int64()),
        }
    )


def merchant_snapshot_table(lake: Path, version: int | None) -> pa.Table | None:
    """gold/merchant_features at `version` (None: the latest), read with deltalake; None when it does not exist."""
    from deltalake import DeltaTable

    path = lake / MERCHANT_TABLE
    if not (path / "_delta_log").exists():
        return None
    table = DeltaTable(str(path)) if version is None else DeltaTable(str(path), version=version)
    return table.to_pyarrow_table(columns=["merchant_id", "day", *MERCHANT_FEATURE_NAMES])


def _empty_snapshot() -> pa.Table:
    columns = {"merchant_id": pa.array([], pa.string()), "day": pa.array([], pa.date32())}
    for item in MERCHANT_FEATURES:
        columns[item.name] = pa.array([], pa.int64() if item.aggregation == MERCHANT_COUNT else pa.float64())
    return pa.table(columns)


_EVENT_DAY = f"(DATE '1970-01-01' + CAST(r.ts_us // {US_PER_DAY} AS INTEGER))"


def _merchant_values(alias: str) -> str:
    """The merchant features of a snapshot row `alias` (none: counts 0, rates null, as the datasets' join)."""
    return ", ".join(
        f"coalesce({alias}.{item.name}, 0) AS {item.name}"
        if item.aggregation == MERCHANT_COUNT
        else f"{alias}.{item.name} AS {item.name}"
        for item in MERCHANT_FEATURES
    )


def _terminal(alias: str) -> str:
    return " AND ".join(
        f"{alias}.{item.name} = 0" if item.aggregation == MERCHANT_COUNT else f"{alias}.{item.name} IS NULL"
        for item in MERCHANT_FEATURES
    )


MERCHANT_REFERENCE_SQL = f"""
WITH online AS (
    SELECT * FROM snapshot QUALIFY row_number() OVER (PARTITION BY merchant_id ORDER BY day DESC) = 1
), published AS (
    SELECT max(day) AS day FROM snapshot  -- P: the newest day ingestion published (its online marker)
)
SELECT r.seq, CAST(o.day AS VARCHAR) AS snapshot_day,
    CASE WHEN p.day IS NULL OR p.day < {_EVENT_DAY} THEN true
         WHEN o.merchant_id IS NULL OR o.day = {_EVENT_DAY} THEN false
         WHEN o.day < {_EVENT_DAY} AND {_terminal("o")} THEN false
         ELSE true END AS stale,
    CAST(p.day AS VARCHAR) AS published_day,
    {_merchant_values("o")}
FROM requests AS r CROSS JOIN published AS p LEFT JOIN online AS o ON o.merchant_id = r.merchant_id
"""

MERCHANT_TRUTH_SQL = f"""
SELECT r.seq, {_merchant_values("t")}, t.merchant_id IS NOT NULL AS has_row
FROM requests AS r LEFT JOIN snapshot AS t ON t.merchant_id = r.merchant_id AND t.day = {_EVENT_DAY}
"""


def _merchant_query(sql: str, records: list[ServeRecord], snapshot: pa.Table | None) -> list[tuple]:
    connection = duckdb.connect()
    connection.register("requests", _merchant_requests(records))
    connection.register("snapshot", _empty_snapshot() if snapshot is None else snapshot)
    return connection.execute(sql).fetchall()


def merchant_reference(records: list[ServeRecord], snapshot: pa.Table | None) -> dict[int, dict]:
    """seq -> {"features": the 6 merchant features, "stale": bool, "snapshot_day": "YYYY-MM-DD" | None,
    "published_day": P | None} that the serving rules give from the online store holding `snapshot`'s newest day
    per merchant and, as P, `snapshot`'s newest day (flagged unless P >= the event's day)."""
    return {
        seq: {
            "snapshot_day": day,
            "stale": stale,
            "published_day": published,
            "features": dict(zip(MERCHANT_FEATURE_NAMES, values, strict=True)),
        }
        for seq, day, stale, published, *values in _merchant_query(MERCHANT_REFERENCE_SQL, records, snapshot)
    }


def merchant_truth(records: list[ServeRecord], snapshot: pa.Table | None) -> dict[int, dict]:
    """seq -> the merchant features of the event's (merchant, UTC day) row in `snapshot` (none: counts 0,
    rates null): what gold's datasets join for that event."""
    rows = _merchant_query(MERCHANT_TRUTH_SQL, records, snapshot)
    return {seq: dict(zip(MERCHANT_FEATURE_NAMES, values, strict=True)) for seq, *values, _ in rows}


def gold_rows(lake: Path) -> dict[str, dict]:
    """event_id -> gold row (card_id, ts_us and every card and event feature), read with deltalake."""
    from deltalake import DeltaTable

    table = DeltaTable(str(lake / GOLD_TABLE)).to_pyarrow_table(
        columns=["event_id", "card_id", "ts_us", *CARD_FEATURE_NAMES]
    )
    return {row.pop("event_id"): row for row in table.to_pylist()}


def silver_event_ids(lake: Path) -> list[str]:
    from deltalake import DeltaTable

    return sorted(DeltaTable(str(lake / SILVER_TABLE)).to_pyarrow_table(columns=["event_id"])["event_id"].to_pylist())


AFFECTED_SQL = f"""
SELECT e.event_id, bool_or(os.seq IS NULL) AS by_never_served
FROM served AS e
JOIN gold AS g ON g.event_id = e.event_id
JOIN gold AS o
  ON o.card_id = g.card_id AND o.ts_us BETWEEN g.ts_us - {int(MAX_WINDOW.total_seconds()) * 1_000_000} AND g.ts_us
 AND o.event_id <> g.event_id
LEFT JOIN served AS os ON os.event_id = o.event_id
LEFT JOIN known AS k ON k.event_id = o.event_id
WHERE k.event_id IS NULL AND (os.seq IS NULL OR os.seq > e.seq)
GROUP BY e.event_id
"""


def affected_event_ids(records: list[ServeRecord], known_at_start: list[str], gold: dict[str, dict]) -> dict[str, bool]:
    """Served events with a gold window member that was served after them or never served (nor known):
    event_id -> whether a never-served event is among the causes (else only events served later)."""
    first_served = {}
    for record in records:
        if record.outcome == SERVED:
            first_served.setdefault(record.event_id, record.seq)
    connection = duckdb.connect()
    connection.register(
        "served",
        pa.table({"event_id": list(first_served), "seq": pa.array(list(first_served.values()), pa.int64())}),
    )
    connection.register("known", pa.table({"event_id": pa.array(known_at_start, pa.string())}))
    connection.register(
        "gold",
        pa.table(
            {
                "event_id": list(gold),
                "card_id": [row["card_id"] for row in gold.values()],
                "ts_us": pa.array([row["ts_us"] for row in gold.values()], pa.int64()),
            }
        ),
    )
    return dict(connection.execute(AFFECTED_SQL).fetchall())
