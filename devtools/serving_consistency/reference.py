"""Independent answers the served features are checked against, all in DuckDB.

- `reference_features`: every registry feature recomputed from exactly the state events a request saw
  (the replay log), one SQL query written here from the registry's aggregation kinds; it shares no code
  with `feature_store/request_features.py`.
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
    COUNT,
    COUNT_DISTINCT,
    FEATURE_NAMES,
    FEATURES,
    MAX,
    MAX_WINDOW,
    MEAN,
    RATIO_TO_MEAN,
    SECONDS_SINCE_PREVIOUS,
    SUM,
    Feature,
)

AMOUNT = pa.decimal128(38, 10)
GOLD_TABLE = "gold/card_features"
SILVER_TABLE = "silver/card_transactions"


def _in_window(item: Feature, *, strictly_earlier: bool = False) -> str:
    upper = " AND s.ts_us < r.ts_us" if strictly_earlier else ""
    return f"FILTER (WHERE s.ts_us >= r.ts_us - {item.window_us}{upper})"


def _mean(item: Feature) -> str:
    return f"(CAST(sum(s.{item.source}) {_in_window(item)} AS DOUBLE) / count(*) {_in_window(item)})"


_AGGREGATE_SQL = {
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
    columns = ",\n    ".join(f"{feature_sql(item)} AS {item.name}" for item in FEATURES)
    return f"""
SELECT r.seq,
    {columns}
FROM requests AS r
JOIN seen AS s ON s.seq = r.seq AND s.ts_us <= r.ts_us
GROUP BY r.seq, r.ts_us, r.amount_usd
"""


def _own_amount(record: ServeRecord) -> str | None:
    return next((item[2] for item in record.state if item[0] == record.event_id), None)


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
    assert names[1:] == list(FEATURE_NAMES), names
    return {values[0]: dict(zip(FEATURE_NAMES, values[1:], strict=True)) for values in cursor.fetchall()}


def gold_rows(lake: Path) -> dict[str, dict]:
    """event_id -> gold row (card_id, ts_us and every feature), read with deltalake."""
    from deltalake import DeltaTable

    table = DeltaTable(str(lake / GOLD_TABLE)).to_pyarrow_table(
        columns=["event_id", "card_id", "ts_us", *FEATURE_NAMES]
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
