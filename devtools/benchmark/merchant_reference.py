"""The benchmark reference's feature set v2 merchant half: the chargeback feed and the merchant snapshot.

Written again from the words of `docs/contracts/` and `spark_jobs/feature_registry.py`, never by calling the
jobs' code (`spark_jobs/labels.py`, `spark_jobs/merchant_features.py`):

- **The feed**: every non-empty file in a `reported_dt=` folder under `bronze/labels/chargebacks/` (names
  starting with `_` or `.` skipped), framed like bronze (the reference's own framing: gzip by magic bytes,
  size caps, CRLF and one leading BOM a line stripped). A line is a VALID record when it decodes (Python's
  `json`, duplicate keys, NaN/Infinity and lone surrogates refused) to an object whose `event_id` is a
  non-empty string of at most 128 characters and whose `reported_at` is a JSON number in
  [2000-01-01, 2100-01-01) with at most 6 decimal places, and no key or string value holds a card number (the
  reference's SQL macro `holds_card_number`). Only the valid set matters here: it is what silver/chargebacks
  must hold, whatever the reasons of the rest.
- **The snapshot** per (merchant, UTC day D), S = D's start, L = LABEL_MATURITY, over silver and the valid
  reports: `merchant_txn_count_W` = events in [S − W, S); `merchant_cb_rate_W` = k / n over the events in
  [S − L − W, S − L), k = those with a report at or after the event's ts and before S (an event counts once),
  null when n = 0. Rows: every D from the first silver day to min(last silver day + 1, the UTC day of `now`)
  where the merchant has an event in [S − 38 d, S). Everything is whole days, so each event day d adds to
  D − d in [1, W] (counts) and [L + 1, L + W] (denominators); a charged event adds to the numerators from the
  day after its first qualifying report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from spark_jobs.feature_registry import FEATURE_SET_VERSION, LABEL_MATURITY, MERCHANT_FEATURES, MERCHANT_LOOKBACK

LABELS_PREFIX = "bronze/labels/chargebacks"
DAY_US = 86_400_000_000
LABEL_DAYS = LABEL_MATURITY.days
LOOKBACK_DAYS = MERCHANT_LOOKBACK.days + 1  # a row for the day after the window passes: the terminal row
EVENT_ID_MAX_CHARS = 128
REPORTED_AT_MIN = Decimal(946_684_800)  # 2000-01-01
REPORTED_AT_MAX_EXCLUSIVE = Decimal(4_102_444_800)  # 2100-01-01
MERCHANT_COUNT_FEATURES = tuple(item for item in MERCHANT_FEATURES if item.dtype == "integer")
MERCHANT_RATE_FEATURES = tuple(item for item in MERCHANT_FEATURES if item.dtype == "double")


# ------------------------------------------------------------------------------------------------ the feed
def list_chargeback_files(lake_root: Path) -> list[tuple[str, Path]]:
    """(canonical URI, path) of every feed file, sorted by URI."""
    root = (lake_root / LABELS_PREFIX).resolve()
    found = []
    if not root.exists():
        return found
    for folder, directories, files in os.walk(root):
        directories[:] = [name for name in directories if not name.startswith(("_", "."))]
        if not Path(folder).relative_to(root).as_posix().startswith("reported_dt="):
            continue
        for name in files:
            path = Path(folder) / name
            if not name.startswith(("_", ".")) and path.stat().st_size > 0:
                found.append(("file://" + str(path), path))
    found.sort(key=lambda item: item[0])
    return found


class _NotAllowed(ValueError):
    pass


def _refuse_constant(text: str):
    raise _NotAllowed(f"non-standard number {text}")


def _pairs_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _NotAllowed("duplicate key")
    return result


def _strings(value: object):
    """Every key and string value of a decoded JSON value, nested ones included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def _decode_object(text: str | None) -> dict | None:
    """The line as a JSON object, or None (invalid UTF-8 or JSON, a duplicate key, NaN/Infinity, not an
    object, a lone surrogate)."""
    if text is None:  # invalid UTF-8
        return None
    try:
        record = json.loads(
            text,
            object_pairs_hook=_pairs_without_duplicates,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_refuse_constant,
        )
        json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")  # a lone surrogate raises
    except (ValueError, RecursionError, UnicodeEncodeError):
        return None
    return record if isinstance(record, dict) else None


def _reported_at_us(value: object) -> int | None:
    """A JSON number in [2000-01-01, 2100-01-01) with at most 6 decimal places, in microseconds."""
    if not isinstance(value, Decimal) or not REPORTED_AT_MIN <= value < REPORTED_AT_MAX_EXCLUSIVE:
        return None
    micros = value.scaleb(6)
    return int(micros) if micros == micros.to_integral_value() else None


def judge_chargeback_line(text: str | None) -> tuple[str, int, list[str]] | None:
    """(event_id, reported_at_us, strings) of a line that passes every rule but the card-number check (done in
    SQL over `strings`: its keys and string values), else None."""
    record = _decode_object(text)
    if record is None:
        return None
    event_id, reported_at_us = record.get("event_id"), _reported_at_us(record.get("reported_at"))
    if not isinstance(event_id, str) or not event_id or len(event_id) > EVENT_ID_MAX_CHARS or reported_at_us is None:
        return None
    return event_id, reported_at_us, list(_strings(record))


def chargeback_candidates(lake_root: Path, threads: int, read_lines: Callable[[str, Path], list[str | None]]):
    """An Arrow table of the feed's lines that pass every rule but the card-number check: source_file,
    line_number, event_id, reported_at_us, strings (the keys and string values to check). `read_lines` frames
    a file into its physical lines (None for a line that is not UTF-8 or over the line cap)."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    def one_file(item: tuple[str, Path]) -> list[tuple]:
        uri, path = item
        rows = []
        for number, text in enumerate(read_lines(uri, path), 1):
            judged = judge_chargeback_line(text)
            if judged is not None:
                rows.append((uri, number, *judged))
        return rows

    rows = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for part in pool.map(one_file, list_chargeback_files(lake_root)):
            rows += part
    return pa.table(
        {
            "source_file": pa.array([row[0] for row in rows], pa.string()),
            "line_number": pa.array([row[1] for row in rows], pa.int64()),
            "event_id": pa.array([row[2] for row in rows], pa.string()),
            "reported_at_us": pa.array([row[3] for row in rows], pa.int64()),
            "strings": pa.array([row[4] for row in rows], pa.list_(pa.string())),
        }
    )


def build_chargebacks(
    connection, lake_root: Path, threads: int, read_lines: Callable[[str, Path], list[str | None]]
) -> None:
    """The `chargebacks` table: the feed's valid records (source_file, line_number, event_id, reported_at_us).
    Needs the `holds_card_number` macro."""
    candidates = chargeback_candidates(lake_root, threads, read_lines)  # noqa: F841 - DuckDB scans it by name
    connection.execute(
        """
        CREATE TABLE chargebacks AS
        SELECT source_file, line_number, event_id, reported_at_us FROM candidates
        WHERE NOT coalesce(list_bool_or([holds_card_number(item) FOR item IN strings]), false)
        """
    )


# ------------------------------------------------------------------------------------------------ the snapshot
def _count_filter(window_days: int) -> str:
    return f"CAST(coalesce(sum(events) FILTER (WHERE age <= {window_days}), 0) AS BIGINT)"


def _denominator_filter(window_days: int) -> str:
    return f"sum(events) FILTER (WHERE age BETWEEN {LABEL_DAYS + 1} AND {LABEL_DAYS + window_days})"


def merchant_snapshot_sql(last_snapshot_day: str) -> str:
    """The snapshot rows (MERCHANT_FEATURES_TABLE's columns but computed_at) from `silver` and `chargebacks`;
    `last_snapshot_day` an SQL expression of the last day number (days since 1970-01-01)."""
    counts = ", ".join(f"{_count_filter(item.window.days)} AS {item.name}" for item in MERCHANT_COUNT_FEATURES)
    denominators = ", ".join(
        f"{_denominator_filter(item.window.days)} AS n_{item.name}" for item in MERCHANT_RATE_FEATURES
    )
    numerators = ", ".join(
        f"count(*) FILTER (WHERE age <= {LABEL_DAYS + item.window.days}) AS k_{item.name}"
        for item in MERCHANT_RATE_FEATURES
    )
    rates = ", ".join(
        f"CASE WHEN d.n_{item.name} > 0 THEN CAST(coalesce(k.k_{item.name}, 0) AS DOUBLE) / d.n_{item.name} END "
        f"AS {item.name}"
        for item in MERCHANT_RATE_FEATURES
    )
    count_names = ", ".join(f"d.{item.name}" for item in MERCHANT_COUNT_FEATURES)
    return f"""
WITH merchant_days AS (
    SELECT merchant_id, ts_us // {DAY_US} AS event_day, count(*) AS events FROM silver GROUP BY ALL
),
bounds AS (
    SELECT min(event_day) AS first_day, least(max(event_day) + 1, {last_snapshot_day}) AS last_day
    FROM merchant_days
),
-- each event day adds to the snapshot days 1 .. LOOKBACK days after it (age = D - event day)
spread AS (
    SELECT merchant_id, events, event_day,
           unnest(range(event_day + 1, event_day + {LOOKBACK_DAYS + 1})) AS day_number
    FROM merchant_days
),
by_day AS (
    SELECT merchant_id, day_number, {counts}, {denominators}
    FROM (SELECT *, day_number - event_day AS age FROM spread), bounds AS b
    WHERE day_number BETWEEN b.first_day AND b.last_day
    GROUP BY merchant_id, day_number
),
charged AS (  -- silver events with a report at or after their ts: the day their first one became known
    SELECT s.merchant_id, s.ts_us // {DAY_US} AS event_day, min(c.reported_at_us) // {DAY_US} + 1 AS known_from
    FROM silver AS s JOIN chargebacks AS c ON c.event_id = s.event_id AND c.reported_at_us >= s.ts_us
    GROUP BY s.event_id, s.merchant_id, s.ts_us
),
charged_spread AS (  -- in the numerators from the day its report is known until its event leaves the window
    SELECT merchant_id, event_day,
           unnest(range(greatest(event_day + {LABEL_DAYS + 1}, known_from), event_day + {LOOKBACK_DAYS}))
               AS day_number
    FROM charged
),
known AS (
    SELECT merchant_id, day_number, {numerators}
    FROM (SELECT *, day_number - event_day AS age FROM charged_spread)
    GROUP BY merchant_id, day_number
)
SELECT d.merchant_id, DATE '1970-01-01' + CAST(d.day_number AS INTEGER) AS day,
       d.day_number * {DAY_US} AS snapshot_start_us, {count_names}, {rates},
       {FEATURE_SET_VERSION} AS feature_set_version
FROM by_day AS d LEFT JOIN known AS k USING (merchant_id, day_number)
"""


def merchant_event_features_sql(events: str, snapshot: str) -> str:
    """Each event of `events` (event_id, merchant_id, ts_us) with the snapshot of (its merchant, its UTC day):
    counts 0 and rates null where the merchant has no row for that day."""
    counts = ", ".join(f"coalesce(m.{item.name}, 0) AS {item.name}" for item in MERCHANT_COUNT_FEATURES)
    rates = ", ".join(f"m.{item.name}" for item in MERCHANT_RATE_FEATURES)
    return f"""
SELECT e.event_id, {counts}, {rates}
FROM {events} AS e LEFT JOIN {snapshot} AS m
  ON m.merchant_id = e.merchant_id AND m.snapshot_start_us = e.ts_us // {DAY_US} * {DAY_US}
"""


# ------------------------------------------------------------------------------------------------ verify
# Feed files are compared by their path below the feed's prefix, so two copies of one lake compare equal.
_RELATIVE_FEED_FILE = f"regexp_replace(source_file, '^.*/{LABELS_PREFIX}/', '') AS source_file"
RATE_RELATIVE_TOLERANCE = 1e-12  # k / n: one division of two integers on both sides


def verify_merchant_half(connection, lake_root: Path, output_dir: Path) -> dict:
    """Spark's silver/chargebacks (the valid record set: file, line, event, report time) and
    gold/merchant_features (every row Spark has and every row the reference has, and each silver event's
    features through its (merchant, day) row) against the reference. Expects `silver_spark` (event_id,
    merchant_id, ts_us) registered. A table Spark did not write counts as empty (everything only_reference)."""
    reference_chargebacks = f"(SELECT * REPLACE ({_RELATIVE_FEED_FILE}) FROM '{output_dir / 'chargebacks.parquet'}')"
    reference_snapshot = f"read_parquet('{output_dir / 'merchant_features.parquet'}')"
    result: dict[str, object] = {"missing_spark_tables": _register_spark_tables(connection, lake_root, output_dir)}
    row = connection.execute(
        f"""
        SELECT count(*) FILTER (WHERE s.source_file IS NULL), count(*) FILTER (WHERE r.source_file IS NULL),
               count(*) FILTER (WHERE s.source_file IS NOT NULL AND r.source_file IS NOT NULL
                                AND (s.event_id <> r.event_id OR s.reported_at_us <> r.reported_at_us))
        FROM chargebacks_spark AS s FULL OUTER JOIN {reference_chargebacks} AS r
          ON s.source_file = r.source_file AND s.line_number = r.line_number
        """
    ).fetchone()
    result["chargebacks_mismatches"] = _nonzero(("only_reference", "only_spark", "values"), row)
    result["spark_chargebacks"] = connection.execute("SELECT count(*) FROM chargebacks_spark").fetchone()[0]
    result["merchant_features_rows"] = {
        "spark": connection.execute("SELECT count(*) FROM merchant_features_spark").fetchone()[0],
        "reference": connection.execute(f"SELECT count(*) FROM {reference_snapshot}").fetchone()[0],
    }
    result["merchant_features_mismatches"] = _column_differences(
        connection,
        "merchant_features_spark",
        reference_snapshot,
        keys=("merchant_id", "day"),
        exact=("snapshot_start_us", *(item.name for item in MERCHANT_COUNT_FEATURES), "feature_set_version"),
    )
    spark_events = merchant_event_features_sql("silver_spark", "merchant_features_spark")
    reference_events = merchant_event_features_sql(
        f"read_parquet('{output_dir / 'silver.parquet'}')", reference_snapshot
    )
    result["merchant_event_features_mismatches"] = _column_differences(
        connection,
        f"({spark_events})",
        f"({reference_events})",
        keys=("event_id",),
        exact=tuple(item.name for item in MERCHANT_COUNT_FEATURES),
    )
    result["merchant_equal"] = not (
        result["missing_spark_tables"]
        or result["chargebacks_mismatches"]
        or result["merchant_features_mismatches"]
        or result["merchant_event_features_mismatches"]
    )
    return result


def _register_spark_tables(connection, lake_root: Path, output_dir: Path) -> list[str]:
    """`chargebacks_spark` (lake-relative files) and `merchant_features_spark` from Spark's Delta tables; an
    absent table becomes an empty one of the reference's shape. Returns the absent tables' paths."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from spark_jobs.lake import CHARGEBACKS_TABLE, MERCHANT_FEATURES_TABLE

    missing = []
    for name, path in (("chargebacks", CHARGEBACKS_TABLE), ("merchant_features", MERCHANT_FEATURES_TABLE)):
        try:
            spark_table = DeltaTable(str(lake_root / path)).to_pyarrow_table()  # noqa: F841 - scanned by name
        except TableNotFoundError:
            missing.append(path)
            connection.execute(
                f"CREATE TEMP TABLE {name}_spark AS SELECT * FROM '{output_dir / (name + '.parquet')}' LIMIT 0"
            )
            continue
        replace = f" REPLACE ({_RELATIVE_FEED_FILE})" if name == "chargebacks" else ""
        connection.execute(f"CREATE TEMP TABLE {name}_spark AS SELECT *{replace} FROM spark_table")
    return missing


def _column_differences(connection, spark: str, reference: str, *, keys: tuple[str, ...], exact: tuple[str, ...]):
    """Rows only on one side (by `keys`) and, per column, rows whose values differ: `exact` columns exactly,
    the rates to RATE_RELATIVE_TOLERANCE (both null, or both set and close)."""
    conditions = {name: f"s.{name} IS NOT DISTINCT FROM r.{name}" for name in exact}
    for item in MERCHANT_RATE_FEATURES:
        name = item.name
        conditions[name] = (
            f"((s.{name} IS NULL AND r.{name} IS NULL) OR abs(s.{name} - r.{name}) <= "
            f"{RATE_RELATIVE_TOLERANCE} * greatest(abs(s.{name}), abs(r.{name})))"
        )
    both = " AND ".join(f"s.{key} IS NOT NULL AND r.{key} IS NOT NULL" for key in keys[:1])
    columns = ", ".join(
        f'count(*) FILTER (WHERE {both} AND NOT coalesce({condition}, false)) AS "{name}"'
        for name, condition in conditions.items()
    )
    on = " AND ".join(f"s.{key} = r.{key}" for key in keys)
    row = connection.execute(
        f"""
        SELECT count(*) FILTER (WHERE s.{keys[0]} IS NULL), count(*) FILTER (WHERE r.{keys[0]} IS NULL), {columns}
        FROM {spark} AS s FULL OUTER JOIN {reference} AS r ON {on}
        """
    ).fetchone()
    return _nonzero(("only_reference", "only_spark", *conditions), row)


def _nonzero(names, row) -> dict[str, int]:
    return {name: int(value) for name, value in zip(names, row, strict=True) if value}
