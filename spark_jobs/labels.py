"""Chargeback labels: the feed's contract per file (pure Python) and the transforms that turn valid
chargebacks into one label per event.

The feed is `<lake-root>/bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/*.jsonl.gz`, NDJSON
`{"event_id": "…", "reported_at": <Unix seconds>}`, framed exactly like bronze (`bronze_contract.frame_file`
and `decode_json_object`: gzip by magic bytes, BOM/CRLF stripped, 1-based physical line numbers, blank
lines skipped, duplicate keys and invalid UTF-8 are malformed_json). A record is valid when:

- it is a JSON object (else `malformed_json`);
- `event_id` is present, not null and not "" (else `missing_field`), and a string (else `bad_type`);
- `reported_at` is present and not null or "" (else `missing_field`), and a JSON number (else `bad_type`);
- `event_id` is at most 128 characters (`bronze_contract.FIELD_MAX_CHARS`, else `field_too_long`);
- no string of the record (event_id, any other key or value, nested ones included) holds a card number
  (`card_numbers.contains_card_number`, else `card_number_in_field`; the raw line is stored masked);
- `reported_at` lies in [2000-01-01, 2100-01-01) with at most 6 decimal places (else `out_of_range`);
- the event it names is not later than the report (else `reported_before_event`, decided against silver).

Unknown fields are ignored (but searched for card numbers). A whole file that cannot be read is
`unreadable_file`; the framing caps apply as for bronze (`file_too_large`, `line_too_long`).

chargebacks.py ingests the feed incrementally (its own ledger): valid records into the `silver/chargebacks`
Delta table (CHARGEBACKS_SCHEMA, each feed line once), invalid ones into `silver/label_quarantine`.
`reported_before_event` is decided where the records are used (build_datasets.py, the merchant snapshot),
against silver, because the event may arrive after its chargeback; chargebacks for events that are not in
silver are counted there, not quarantined (the event may arrive later). docs/contracts/chargeback_feed.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.bronze_contract import (
    CARD_NUMBER_IN_FIELD,
    DETAIL_VALUE_MAX_CHARS,
    FIELD_MAX_CHARS,
    FIELD_TOO_LONG,
    FILE_TOO_LARGE,
    LINE_TOO_LONG,
    TS_MAX_EXCLUSIVE,
    TS_MIN,
    FramingLimits,
    JsonNumber,
    decode_json_object,
    frame_file,
)
from spark_jobs.card_numbers import contains_card_number, mask_card_numbers

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
    FIELD_TOO_LONG,
    CARD_NUMBER_IN_FIELD,
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

EVENT_ID_MAX_CHARS = FIELD_MAX_CHARS["event_id"]
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

# silver/chargebacks: one row per valid feed record, each (source_file, line_number) once (chargebacks.py).
CHARGEBACKS_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType(), False),
        T.StructField("reported_at_us", T.LongType(), False),
        T.StructField("reported_at", T.DecimalType(16, 6), False),  # exact Unix seconds, as the feed wrote them
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)
CHARGEBACKS_STATS_COLUMNS = ("event_id", "reported_at_us")

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


def parse_chargeback_file(data: bytes, limits: FramingLimits | None = None) -> ChargebackFileParse:
    """Apply the chargeback contract (all but reported_before_event) to one file, under the framing caps
    `limits` (bronze's defaults when None). Never raises on bad data."""
    result = ChargebackFileParse()
    framed = frame_file(data, limits)
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


def judge_chargeback(record: dict) -> int | tuple[str, str]:  # noqa: PLR0911 - one return per finding
    """A decoded record's reported_at in microseconds, or its (reason, detail) finding (rules in order)."""
    for name in ("event_id", "reported_at"):
        value = record.get(name)
        if value is None or value == "":
            return MISSING_FIELD, f"field={name} value={'missing' if name not in record else _literal(value)}"
    event_id, reported_at = record["event_id"], record["reported_at"]
    if type(event_id) is not str:
        return BAD_TYPE, f"field=event_id value={_literal(event_id)}"
    if type(reported_at) is not JsonNumber:
        return BAD_TYPE, f"field=reported_at value={_literal(reported_at)}"
    if len(event_id) > EVENT_ID_MAX_CHARS:  # the value is not shown, as in bronze
        return FIELD_TOO_LONG, f"field=event_id length={len(event_id)} max={EVENT_ID_MAX_CHARS}"
    card_number_field = _card_number_field(record)
    if card_number_field is not None:
        value = _literal(record[card_number_field], masked=True)
        return CARD_NUMBER_IN_FIELD, f"field={_cut(mask_card_numbers(card_number_field))} value={value}"
    try:
        seconds = Decimal(reported_at)
    except InvalidOperation:
        return OUT_OF_RANGE, f"field=reported_at value={reported_at}"
    if not (_TS_MIN <= seconds < _TS_MAX_EXCLUSIVE) or seconds.quantize(_MICROSECOND) != seconds:
        return OUT_OF_RANGE, f"field=reported_at value={reported_at}"
    return int(seconds.scaleb(6))


def _card_number_field(record: dict) -> str | None:
    """The first key (event_id first, then line order) whose name or value holds a card number, at any depth
    (bronze_contract's card_number_in_field rule; the feed has no card_number field of its own)."""
    from spark_jobs.bronze_contract import _holds_card_number  # bronze's walk over a decoded value

    if contains_card_number(record["event_id"]):
        return "event_id"
    for key, value in record.items():
        if contains_card_number(key) or _holds_card_number(value):
            return key
    return None


def _cut(text: str) -> str:
    return text if len(text) <= DETAIL_VALUE_MAX_CHARS else text[:DETAIL_VALUE_MAX_CHARS] + "…"


def _literal(value: object, *, masked: bool = False) -> str:
    """The JSON text of a decoded value (numbers as written), cut to 200 characters; `masked`: card numbers
    masked before the cut (a cut must never leave part of one unmasked)."""

    def plain(item: object) -> object:
        if type(item) is tuple:  # a decoded object: (key, value) pairs
            return {key: plain(inner) for key, inner in item}
        if isinstance(item, list):
            return [plain(inner) for inner in item]
        return item

    text = str(value) if type(value) is JsonNumber else json.dumps(plain(value), ensure_ascii=False)
    return _cut(mask_card_numbers(text) if masked else text)


# --- Spark transforms -----------------------------------------------------------------------------------


def parse_planned_chargeback_files(
    planned_files: DataFrame, *, read_file: Callable[..., bytes], limits: FramingLimits | None = None
) -> DataFrame:
    """Read and parse each planned feed file (silver.PLANNED_FILE_SCHEMA rows) into PARSED_SCHEMA rows: one
    Python call per file inside `mapInArrow`, as silver does for bronze. The worker reads the file itself with
    `read_file(uri, version=…, max_bytes=…)` (`LakeStorage.read_planned`: the planned version, at most the cap
    plus one byte); a file it cannot read (gone, another version, access denied) is one unreadable_file row and
    the batch's other files proceed. One row per non-blank line plus one per file."""
    from spark_jobs.bronze_contract import DEFAULT_FRAMING_LIMITS
    from spark_jobs.silver import PLANNED_FILE_SCHEMA

    caps = limits or DEFAULT_FRAMING_LIMITS

    def parse_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(PARSED_SCHEMA)
        for batch in batches:
            for planned in batch.to_pylist():
                try:
                    data = read_file(planned["uri"], version=planned["version"], max_bytes=caps.max_file_bytes)
                except OSError as error:  # this file only: the rest of the batch proceeds
                    result = _unreadable_file(error)
                else:
                    result = parse_chargeback_file(data, caps)
                yield _result_batch(planned["uri"], result, schema)

    return planned_files.select(*PLANNED_FILE_SCHEMA.fieldNames()).mapInArrow(parse_partition, PARSED_SCHEMA)


def _unreadable_file(error: OSError) -> ChargebackFileParse:
    """A file the storage could not read: a whole-file unreadable_file naming the cause (masked: the error
    text may name the object key, which the producer chose)."""
    cause = error.strerror or str(error)
    detail = mask_card_numbers(f"cannot read the file: {type(error).__name__}: {cause}")
    return ChargebackFileParse(unreadable_reason=detail, file_reason=UNREADABLE_FILE)


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


def chargeback_rows(parsed: DataFrame, *, run_id: str, ingested_at) -> DataFrame:
    """The accepted records of PARSED_SCHEMA rows as `silver/chargebacks` rows (CHARGEBACKS_SCHEMA)."""
    micros = F.col("reported_at_us").cast(T.DecimalType(20, 0))
    return parsed.where(F.col("kind") == KIND_ACCEPTED).select(
        "event_id",
        "reported_at_us",
        # exact: an integer number of microseconds divided by 10^6 has at most 6 decimals
        (micros / F.lit(1_000_000).cast(T.DecimalType(7, 0))).cast(T.DecimalType(16, 6)).alias("reported_at"),
        "source_file",
        "line_number",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(run_id).alias("run_id"),
    )


def table_records(chargebacks: DataFrame) -> DataFrame:
    """`silver/chargebacks` rows as the records `classify_chargebacks` takes: their raw_record is the record as
    the table holds it (`{"event_id":…,"reported_at":…}`, canonical JSON; the feed line itself is in bronze)."""
    return chargebacks.select(
        "source_file",
        "line_number",
        "event_id",
        "reported_at_us",
        F.to_json(F.struct("event_id", "reported_at")).alias("raw_record"),
    )


def classify_chargebacks(records: DataFrame, events: DataFrame, *, as_of_us: int) -> DataFrame:
    """Each valid chargeback record with its `outcome` (CLASSIFIED_SCHEMA).

    `records` are valid chargeback records (source_file, line_number, event_id, reported_at_us, raw_record):
    `table_records` of the chargeback table, or PARSED_SCHEMA rows (their accepted ones). `events` are silver
    events (event_id, ts_us). A report at or after the as-of time is never looked at further
    (`reported_at_or_after_as_of`); the others are matched with the events before the as-of time: no match is
    `unknown_event`, a report before the event's ts is `reported_before_event`, the rest are `label`.
    """
    accepted = records.where(F.col("kind") == KIND_ACCEPTED) if "kind" in records.columns else records
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


def feed_quarantine_rows(parsed: DataFrame, *, run_id: str) -> DataFrame:
    """`silver/label_quarantine` rows of the feed's invalid lines and unreadable files (chargebacks.py)."""
    rejected = parsed.where(
        (F.col("kind") == KIND_REJECTED) | ((F.col("kind") == KIND_FILE) & F.col("reason").isNotNull())
    ).select("source_file", "line_number", "raw_record", "reason", "detail")
    return _quarantine_columns(rejected, run_id=run_id)


def reported_before_event_rows(classified: DataFrame, *, run_id: str) -> DataFrame:
    """`silver/label_quarantine` rows of the valid records reported before their event (build_datasets.py)."""
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
    return _quarantine_columns(too_early, run_id=run_id)


def label_quarantine_rows(parsed: DataFrame, classified: DataFrame, *, run_id: str) -> DataFrame:
    """Both kinds of `silver/label_quarantine` rows: rejected lines, unreadable files and reports before their
    event."""
    return feed_quarantine_rows(parsed, run_id=run_id).unionByName(
        reported_before_event_rows(classified, run_id=run_id)
    )


def _quarantine_columns(rows: DataFrame, *, run_id: str) -> DataFrame:
    return rows.select(
        "source_file",
        "line_number",
        "raw_record",
        "reason",
        "detail",
        reported_date_of(F.col("source_file")).alias("reported_date"),
        F.lit(run_id).alias("run_id"),
    )
