"""Chargeback labels: the feed's contract per file (pure Python) and the transforms that turn valid
chargebacks into one label per event.

The feed is `<lake-root>/bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/*.jsonl.gz`, NDJSON
`{"event_id": "…", "reported_at": <Unix seconds>}`, framed exactly like bronze (`bronze_contract.frame_file`
and `decode_json_object`: gzip by magic bytes, BOM/CRLF stripped, 1-based physical line numbers, blank
lines skipped, duplicate keys and invalid UTF-8 are malformed_json). A record is valid when:

- it is a JSON object (else `malformed_json`);
- `event_id` is present, not null and not "" (else `missing_field`), and a string (else `bad_type`);
- `reported_at` is present and not null or "" (else `missing_field`), and a JSON number (else `bad_type`);
- `reported_at` lies in [2000-01-01, 2100-01-01) with at most 6 decimal places (else `out_of_range`);
- the event it names is not later than the report (else `reported_before_event`, decided against silver).

Unknown fields are ignored. A whole file that cannot be read is `unreadable_file`; the framing caps apply as
for bronze (`file_too_large`, `line_too_long`). Invalid records go to
the `silver/label_quarantine` Delta table; chargebacks for events that are not in silver are counted,
not quarantined (the event may arrive later).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.bronze_contract import (
    FILE_TOO_LARGE,
    LINE_TOO_LONG,
    TS_MAX_EXCLUSIVE,
    TS_MIN,
    JsonNumber,
    decode_json_object,
    frame_file,
)
from spark_jobs.card_numbers import mask_card_numbers

MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
BAD_TYPE = "bad_type"
OUT_OF_RANGE = "out_of_range"
UNREADABLE_FILE = "unreadable_file"
REPORTED_BEFORE_EVENT = "reported_before_event"
LABEL_QUARANTINE_REASONS = (
    MALFORMED_JSON,
    MISSING_FIELD,
    BAD_TYPE,
    OUT_OF_RANGE,
    UNREADABLE_FILE,
    FILE_TOO_LARGE,
    LINE_TOO_LONG,
    REPORTED_BEFORE_EVENT,
)

# What became of each valid chargeback record (see `classify_chargebacks`).
LABEL = "label"  # a report before the as-of time for an event in silver, not before the event
UNKNOWN_EVENT = "unknown_event"  # no silver event with this id before the as-of time
AFTER_AS_OF = "reported_at_or_after_as_of"  # not known yet at the as-of time: never used

KIND_ACCEPTED = "accepted"
KIND_REJECTED = "rejected"
KIND_FILE = "file"

_TS_MIN = Decimal(TS_MIN)
_TS_MAX_EXCLUSIVE = Decimal(TS_MAX_EXCLUSIVE)
_MICROSECOND = Decimal("0.000001")

PARSED_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("event_id", T.StringType(), True),
        T.StructField("reported_at_us", T.LongType(), True),
        T.StructField("raw_record", T.StringType(), True),
        T.StructField("reason", T.StringType(), True),
        T.StructField("detail", T.StringType(), True),
        # File rows only: physical lines, blank lines, records read (non-blank lines; 1 if unreadable).
        T.StructField("file_lines", T.LongType(), True),
        T.StructField("file_blank_lines", T.LongType(), True),
        T.StructField("file_records_read", T.LongType(), True),
    ]
)

LABEL_QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),  # null for a whole unreadable file
        T.StructField("raw_record", T.StringType(), True),
        T.StructField("reason", T.StringType(), False),
        T.StructField("detail", T.StringType(), True),
        T.StructField("reported_date", T.DateType(), True),  # the file's reported_dt= folder
        T.StructField("run_id", T.StringType(), False),
    ]
)
# Delta statistics on the location key and the reason only (delta_tables.stats_columns): never raw_record.
LABEL_QUARANTINE_STATS_COLUMNS = ("source_file", "line_number", "reason")

CLASSIFIED_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("event_id", T.StringType(), False),
        T.StructField("reported_at_us", T.LongType(), False),
        T.StructField("event_ts_us", T.LongType(), True),
        T.StructField("raw_record", T.StringType(), True),
        T.StructField("outcome", T.StringType(), False),
    ]
)


# --- The per-file contract (pure Python) ------------------------------------------------------------


@dataclass(slots=True)
class ChargebackFileParse:
    """One chargeback file: accepted records and quarantined lines, both in line order.

    `accepted` rows are (line_number, event_id, reported_at_us, raw_record); `rejected` rows are
    (line_number, raw_record, reason, detail). Every non-blank line is in exactly one of them. When the
    whole file cannot be read, `unreadable_reason` says why and the counts are 0.
    """

    lines: int = 0
    blank_lines: int = 0
    unreadable_reason: str | None = None
    file_reason: str | None = None  # unreadable_file or file_too_large when the whole file is quarantined
    accepted: list[tuple[int, str, int, str]] = field(default_factory=list)
    rejected: list[tuple[int, str, str, str]] = field(default_factory=list)

    @property
    def records_read(self) -> int:
        return self.lines - self.blank_lines


def parse_chargeback_file(data: bytes) -> ChargebackFileParse:
    """Apply the chargeback contract (all but reported_before_event) to one file. Never raises on bad data."""
    result = ChargebackFileParse()
    framed = frame_file(data)
    if framed.file_reason is not None:
        result.file_reason, result.unreadable_reason = framed.file_reason, framed.unreadable_reason
        return result
    result.lines = len(framed.lines)
    too_long = {item.line_number: item for item in framed.too_long}
    for line_number, line in enumerate(framed.lines, 1):
        if line_number in too_long:
            item = too_long[line_number]
            result.rejected.append((line_number, item.head, LINE_TOO_LONG, item.detail))
            continue
        record, malformed = decode_json_object(line)
        if record is None and malformed is None:
            result.blank_lines += 1
            continue
        text = mask_card_numbers(line if isinstance(line, str) else line.decode("utf-8", "replace"))
        if record is None:
            result.rejected.append((line_number, text, MALFORMED_JSON, mask_card_numbers(malformed)))
            continue
        finding = judge_chargeback(record)
        if isinstance(finding, tuple):
            reason, detail = finding
            result.rejected.append((line_number, text, reason, mask_card_numbers(detail)))
        else:
            result.accepted.append((line_number, record["event_id"], finding, text))
    return result


def judge_chargeback(record: dict) -> int | tuple[str, str]:
    """A decoded record's reported_at in microseconds, or its (reason, detail) finding."""
    for name in ("event_id", "reported_at"):
        value = record.get(name)
        if value is None or value == "":
            return MISSING_FIELD, f"field={name} value={'missing' if name not in record else _literal(value)}"
    event_id, reported_at = record["event_id"], record["reported_at"]
    if type(event_id) is not str:
        return BAD_TYPE, f"field=event_id value={_literal(event_id)}"
    if type(reported_at) is not JsonNumber:
        return BAD_TYPE, f"field=reported_at value={_literal(reported_at)}"
    try:
        seconds = Decimal(reported_at)
    except InvalidOperation:
        return OUT_OF_RANGE, f"field=reported_at value={reported_at}"
    if not (_TS_MIN <= seconds < _TS_MAX_EXCLUSIVE) or seconds.quantize(_MICROSECOND) != seconds:
        return OUT_OF_RANGE, f"field=reported_at value={reported_at}"
    return int(seconds.scaleb(6))


def _literal(value: object) -> str:
    """The JSON text of a decoded value (numbers as written), cut to 200 characters."""

    def plain(item: object) -> object:
        if type(item) is tuple:  # a decoded object: (key, value) pairs
            return {key: plain(inner) for key, inner in item}
        if isinstance(item, list):
            return [plain(inner) for inner in item]
        return item

    text = str(value) if type(value) is JsonNumber else json.dumps(plain(value), ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


# --- Spark transforms -----------------------------------------------------------------------------------


def parse_chargeback_files(binary_files: DataFrame, *, uri_of=None) -> DataFrame:
    """Parse a `binaryFile` DataFrame (path, content) into PARSED_SCHEMA rows: one Python call per file
    inside `mapInArrow` (as silver does for bronze), one row per non-blank line plus one per file."""
    from spark_jobs.storage import canonical_uri

    to_uri = uri_of or canonical_uri

    def parse_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(PARSED_SCHEMA)
        for batch in batches:
            paths = batch.column("path").to_pylist()
            contents = batch.column("content")
            for index, path in enumerate(paths):
                result = parse_chargeback_file(contents[index].as_py() or b"")
                yield _result_batch(to_uri(path), result, schema)

    return binary_files.select("path", "content").mapInArrow(parse_partition, PARSED_SCHEMA)


def _result_batch(source_file: str, result: ChargebackFileParse, schema: pa.Schema) -> pa.RecordBatch:
    accepted, rejected = result.accepted, result.rejected
    unreadable = result.unreadable_reason is not None
    nulls_a, nulls_r = [None] * len(accepted), [None] * len(rejected)
    columns = {
        "kind": [KIND_ACCEPTED] * len(accepted) + [KIND_REJECTED] * len(rejected) + [KIND_FILE],
        "source_file": [source_file] * (len(accepted) + len(rejected) + 1),
        "line_number": [row[0] for row in accepted] + [row[0] for row in rejected] + [None],
        "event_id": [row[1] for row in accepted] + nulls_r + [None],
        "reported_at_us": [row[2] for row in accepted] + nulls_r + [None],
        "raw_record": [row[3] for row in accepted] + [row[1] for row in rejected] + [None],
        "reason": nulls_a + [row[2] for row in rejected] + [result.file_reason],
        "detail": nulls_a + [row[3] for row in rejected] + [result.unreadable_reason],
        "file_lines": nulls_a + nulls_r + [result.lines],
        "file_blank_lines": nulls_a + nulls_r + [result.blank_lines],
        "file_records_read": nulls_a + nulls_r + [1 if unreadable else result.records_read],
    }
    return pa.RecordBatch.from_arrays([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)


def reported_date_of(source_file: Column) -> Column:
    """The report day encoded in the feed's path (`reported_dt=YYYY/MM/DD/`), null elsewhere."""
    day = F.regexp_extract(source_file, r"/reported_dt=(\d{4}/\d{2}/\d{2})/", 1)
    return F.when(day == "", F.lit(None).cast("date")).otherwise(F.to_date(F.regexp_replace(day, "/", "-")))


def classify_chargebacks(parsed: DataFrame, events: DataFrame, *, as_of_us: int) -> DataFrame:
    """Each valid chargeback record with its `outcome` (CLASSIFIED_SCHEMA).

    `events` are silver events (event_id, ts_us). A report at or after the as-of time is never looked at
    further (`reported_at_or_after_as_of`); the others are matched with the events before the as-of
    time: no match is `unknown_event`, a report before the event's ts is `reported_before_event`, the
    rest are `label`.
    """
    accepted = parsed.where(F.col("kind") == KIND_ACCEPTED)
    known = accepted.where(F.col("reported_at_us") < as_of_us)
    later = accepted.where(F.col("reported_at_us") >= as_of_us)
    before_as_of = events.where(F.col("ts_us") < as_of_us).select("event_id", F.col("ts_us").alias("event_ts_us"))
    matched = known.join(before_as_of, "event_id", "left").withColumn(
        "outcome",
        F.when(F.col("event_ts_us").isNull(), F.lit(UNKNOWN_EVENT))
        .when(F.col("reported_at_us") < F.col("event_ts_us"), F.lit(REPORTED_BEFORE_EVENT))
        .otherwise(F.lit(LABEL)),
    )
    unmatched = later.withColumn("event_ts_us", F.lit(None).cast("long")).withColumn("outcome", F.lit(AFTER_AS_OF))
    columns = CLASSIFIED_SCHEMA.fieldNames()
    return matched.select(*columns).unionByName(unmatched.select(*columns))


def event_labels(classified: DataFrame) -> DataFrame:
    """One row per charged-back event: event_id, first_reported_at_us (the earliest report counts),
    reports (how many valid reports it had)."""
    return (
        classified.where(F.col("outcome") == LABEL)
        .groupBy("event_id")
        .agg(F.min("reported_at_us").alias("first_reported_at_us"), F.count(F.lit(1)).alias("reports"))
        .select("event_id", "first_reported_at_us", "reports")
    )


def _seconds_text(micros: Column) -> Column:
    """Exact Unix seconds with 6 decimals from integer microseconds (no floating point)."""
    whole = F.floor(micros / F.lit(1_000_000)).cast("long")
    fraction = F.lpad((micros - whole * F.lit(1_000_000)).cast("string"), 6, "0")
    return F.concat(whole.cast("string"), F.lit("."), fraction)


def label_quarantine_rows(parsed: DataFrame, classified: DataFrame, *, run_id: str) -> DataFrame:
    """Rows for `silver/label_quarantine`: rejected lines, unreadable files and reports before their event."""
    rejected = parsed.where(
        (F.col("kind") == KIND_REJECTED) | ((F.col("kind") == KIND_FILE) & F.col("reason").isNotNull())
    ).select("source_file", "line_number", "raw_record", "reason", "detail")
    too_early = classified.where(F.col("outcome") == REPORTED_BEFORE_EVENT).select(
        "source_file",
        "line_number",
        "raw_record",
        F.lit(REPORTED_BEFORE_EVENT).alias("reason"),
        F.concat(
            F.lit("reported_at="),
            _seconds_text(F.col("reported_at_us")),
            F.lit(" is before the event's ts="),
            _seconds_text(F.col("event_ts_us")),
        ).alias("detail"),
    )
    return rejected.unionByName(too_early).select(
        "source_file",
        "line_number",
        "raw_record",
        "reason",
        "detail",
        reported_date_of(F.col("source_file")).alias("reported_date"),
        F.lit(run_id).alias("run_id"),
    )
