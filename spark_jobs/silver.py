"""Silver: bronze lines → validated, deduplicated, masked card transactions.

Pure DataFrame transforms (no I/O but each planned file's read, through the reader `parse_bronze_files` is
given) plus the table contracts; `silver_ingest.py` does the planning and writing (the tables' locations are in
`lake.py`). The flow for one ledger batch:

1. `parse_bronze_files`: one vectorised Arrow step per planned bronze file, which it reads itself (the JVM
   cannot check JSON types exactly, keep line numbers, or detect duplicate keys) → one row per non-blank line,
   accepted or rejected with a reason, plus one stats row per file (a whole-file quarantine reason for a file
   that cannot be read or is too large).
2. `classify_valid_records`: first seen wins per event_id. Rows already in silver (earlier batches) come
   first, then the batch ordered by (source_file, line_number). A row that *is* the silver row (same file
   and line: a resumed batch) is a no-op; the first new row is inserted; a later row with equal contract
   fields is a duplicate, with different ones a `conflicting_duplicate`.
3. `silver_rows`, `duplicate_rows`, `quarantine_rows`: the exact output columns of each table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.bronze_contract import PAYLOAD_FIELDS, FramingLimits
from spark_jobs.card_numbers import TOKEN_CANDIDATE_SEPARATOR

# accepted_records' column of the record's card token under every held key version (compared, never stored)
CARD_TOKEN_CANDIDATES = "card_token_candidates"

KIND_ACCEPTED = "accepted"
KIND_REJECTED = "rejected"
KIND_FILE = "file"

PARSED_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("event_id", T.StringType(), True),
        T.StructField("card_id", T.StringType(), True),
        T.StructField("ts", T.DecimalType(16, 6), True),
        T.StructField("ts_us", T.LongType(), True),
        T.StructField("merchant_id", T.StringType(), True),
        T.StructField("amount", T.DecimalType(18, 4), True),
        T.StructField("currency", T.StringType(), True),
        T.StructField("amount_usd", T.DecimalType(30, 10), True),
        T.StructField("country", T.StringType(), True),
        T.StructField("pos_mode", T.StringType(), True),
        T.StructField("card_last4", T.StringType(), True),
        T.StructField("card_token", T.StringType(), True),
        T.StructField("raw_record", T.StringType(), True),
        T.StructField("reason", T.StringType(), True),
        T.StructField("detail", T.StringType(), True),
        # File rows only: physical lines, blank lines, records read (non-blank lines; 1 if unreadable).
        T.StructField("file_lines", T.LongType(), True),
        T.StructField("file_blank_lines", T.LongType(), True),
        T.StructField("file_records_read", T.LongType(), True),
    ]
)

SILVER_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType(), False),
        T.StructField("card_id", T.StringType(), False),
        T.StructField("ts", T.DecimalType(16, 6), False),
        T.StructField("ts_us", T.LongType(), False),
        T.StructField("event_ts", T.TimestampType(), False),
        T.StructField("dt", T.DateType(), False),
        T.StructField("merchant_id", T.StringType(), False),
        T.StructField("amount", T.DecimalType(18, 4), False),
        T.StructField("currency", T.StringType(), False),
        T.StructField("amount_usd", T.DecimalType(30, 10), False),
        T.StructField("country", T.StringType(), False),
        T.StructField("pos_mode", T.StringType(), False),
        T.StructField("card_last4", T.StringType(), True),
        T.StructField("card_token", T.StringType(), True),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)

DUPLICATES_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), False),
        T.StructField("ingest_date", T.DateType(), True),
        T.StructField("run_id", T.StringType(), False),
    ]
)

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("raw_record", T.StringType(), True),
        T.StructField("reason", T.StringType(), False),
        T.StructField("detail", T.StringType(), True),
        T.StructField("ingest_date", T.DateType(), True),
        T.StructField("run_id", T.StringType(), False),
    ]
)

# What became of quarantine rows a replay took out of quarantine (quarantine_replay.py): the quarantine rows
# themselves are never deleted. One row per quarantine row, keyed like it by (source_file, line_number).
REPLAY_OUTCOME_SILVER = "silver"  # now passes: in silver (inserted, or already there from a crashed replay)
REPLAY_OUTCOME_DUPLICATES = "duplicates"  # now passes, a re-delivery of a silver row: in the duplicates table
REPLAY_OUTCOME_FILE_READ = "file_read"  # an unreadable file that now reads: its lines were judged one by one
QUARANTINE_REPLAYS_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("ingest_date", T.DateType(), True),
        T.StructField("quarantined_reason", T.StringType(), False),
        T.StructField("outcome", T.StringType(), False),
        T.StructField("replayed_at", T.TimestampType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)

# The columns each table's reads prune by, the only ones with Delta statistics (delta_tables.stats_columns):
# silver by event_id (the dedupe), card_id (the stream's gold update; Z-ordered) and ts_us (time ranges); the
# logs by their location key and the reason or event id a query selects on. Never raw_record or detail.
SILVER_STATS_COLUMNS = ("event_id", "card_id", "ts_us")
DUPLICATES_STATS_COLUMNS = ("event_id", "source_file", "line_number")
QUARANTINE_STATS_COLUMNS = ("source_file", "line_number", "reason")
QUARANTINE_REPLAYS_STATS_COLUMNS = ("source_file", "line_number", "outcome")


def _arrow_schema() -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(PARSED_SCHEMA)


# One bronze file to read, as its batch planned it (bronze_ledger.BronzeFile). A null version reads whatever the
# file holds now (a quarantine replay re-reads a file its producer re-uploaded).
PLANNED_FILE_SCHEMA = T.StructType(
    [
        T.StructField("uri", T.StringType(), False),
        T.StructField("size", T.LongType(), True),
        T.StructField("version", T.StringType(), True),
        T.StructField("last_modified", T.StringType(), True),
    ]
)


def parse_bronze_files(
    planned_files: DataFrame,
    *,
    read_file: Callable[..., bytes],
    fx_rates: Mapping[str, Decimal],
    token_key: bytes,
    limits: FramingLimits | None = None,
    arrivals: Mapping[str, datetime | None] | None = None,
    future_allowance: timedelta | None = None,
) -> DataFrame:
    """Read and parse each planned bronze file (PLANNED_FILE_SCHEMA rows) into PARSED_SCHEMA rows.

    One Python call per file inside `mapInArrow`: it reads the file itself with `read_file(uri, version=…,
    max_bytes=…)` (`LakeStorage.read_planned`: the planned version, at most the size cap plus one byte) and
    applies the pure-Python bronze contract to it (not a row-at-a-time UDF). A file that cannot be read (gone
    since it was planned, another version, access denied) is one unreadable_file row and the batch's other
    files proceed; a transient storage error fails the task, which Spark retries. `limits` are the framing
    caps; `arrivals` maps a file's URI to its arrival time (`bronze_ledger.arrival_time`; future_timestamp
    after it plus `future_allowance`); a file not in it gets no future check.
    """
    from spark_jobs.bronze_contract import DEFAULT_FRAMING_LIMITS, parse_bronze_file

    rates = dict(fx_rates)
    caps = limits or DEFAULT_FRAMING_LIMITS
    arrival_of = dict(arrivals or {})
    future = {} if future_allowance is None else {"future_allowance": future_allowance}

    def parse_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        schema = _arrow_schema()
        for batch in batches:
            for planned in batch.to_pylist():
                uri = planned["uri"]
                try:
                    data = read_file(uri, version=planned["version"], max_bytes=caps.max_file_bytes)
                except OSError as error:  # this file only: the rest of the batch proceeds
                    result = _unreadable_file(error)
                else:
                    arrival = arrival_of.get(uri)
                    result = parse_bronze_file(
                        data, fx_rates=rates, token_key=token_key, limits=caps, arrival=arrival, **future
                    )
                yield _parse_result_batch(uri, result, schema)

    columns = PLANNED_FILE_SCHEMA.fieldNames()
    return planned_files.select(*columns).mapInArrow(parse_partition, PARSED_SCHEMA)


def _unreadable_file(error: OSError):
    """The parse outcome of a file the storage could not read: a whole-file unreadable_file naming the cause."""
    from spark_jobs.bronze_contract import UNREADABLE_FILE, BronzeFileParse
    from spark_jobs.card_numbers import mask_card_numbers

    cause = error.strerror or str(error)  # "No such file or directory" rather than "[Errno 2] ...: '/path'"
    # The error text may name the object key, which the producer chose: masked like every quarantine detail.
    detail = mask_card_numbers(f"cannot read the file: {type(error).__name__}: {cause}")
    return BronzeFileParse(file_reason=UNREADABLE_FILE, unreadable_reason=detail)


def _parse_result_batch(source_file: str, result, schema: pa.Schema) -> pa.RecordBatch:
    """Lay one file's parse result out as Arrow columns: accepted rows, rejected rows, one file row."""
    accepted = result.accepted
    rejected = result.rejected
    n_accepted = len(accepted.line_number)
    n_rejected = len(rejected.line_number)
    size = n_accepted + n_rejected + 1

    def padded(values, before: int, after: int) -> list:
        return [None] * before + list(values) + [None] * after

    def accepted_column(values) -> list:
        return padded(values, 0, n_rejected + 1)

    def rejected_column(values) -> list:
        return padded(values, n_accepted, 1)

    unreadable = result.file_reason is not None
    columns = {
        "kind": [KIND_ACCEPTED] * n_accepted + [KIND_REJECTED] * n_rejected + [KIND_FILE],
        "source_file": [source_file] * size,
        "line_number": list(accepted.line_number) + list(rejected.line_number) + [None],
        "event_id": accepted_column(accepted.event_id),
        "card_id": accepted_column(accepted.card_id),
        "ts": accepted_column(accepted.ts),
        "ts_us": accepted_column(accepted.ts_us),
        "merchant_id": accepted_column(accepted.merchant_id),
        "amount": accepted_column(accepted.amount),
        "currency": accepted_column(accepted.currency),
        "amount_usd": accepted_column(accepted.amount_usd),
        "country": accepted_column(accepted.country),
        "pos_mode": accepted_column(accepted.pos_mode),
        "card_last4": accepted_column(accepted.card_last4),
        "card_token": accepted_column(accepted.card_token),
        "raw_record": rejected_column(rejected.raw_record),
        "reason": [*rejected_column(rejected.reason)[:-1], result.file_reason],
        "detail": [*rejected_column(rejected.detail)[:-1], result.unreadable_reason],
        "file_lines": [None] * (size - 1) + [result.lines],
        "file_blank_lines": [None] * (size - 1) + [result.blank_lines],
        "file_records_read": [None] * (size - 1) + [1 if unreadable else result.records_read],
    }
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[field.name], type=field.type) for field in schema], schema=schema
    )


def ingest_date_of(source_file: Column) -> Column:
    """The arrival date encoded in a Firehose path (`ingest_dt=YYYY/MM/DD/`), null elsewhere.

    Duplicates and quarantine are partitioned by it so their MERGE touches only the batch's dates.
    """
    digits = F.regexp_extract(source_file, r"/ingest_dt=(\d{4})/(\d{2})/(\d{2})/", 0)
    return F.when(digits == "", F.lit(None).cast("date")).otherwise(
        F.to_date(F.regexp_replace(F.regexp_extract(source_file, r"ingest_dt=(\d{4}/\d{2}/\d{2})", 1), "/", "-"))
    )


def accepted_records(parsed: DataFrame) -> DataFrame:
    """The accepted rows, with their event day; `card_token` split into the token stored (the current key
    version's) and `card_token_candidates`, the record's token under every held version, for the dedupe's
    comparison only (see `spark_jobs.card_numbers.token_candidates`)."""
    candidates = F.split(F.col("card_token"), TOKEN_CANDIDATE_SEPARATOR)
    return (
        parsed.where(F.col("kind") == KIND_ACCEPTED)
        .withColumn("dt", F.to_date(F.expr("timestamp_micros(ts_us)")))
        .withColumn(CARD_TOKEN_CANDIDATES, candidates)
        .withColumn("card_token", F.element_at(F.col(CARD_TOKEN_CANDIDATES), 1))
    )


def event_id_counts(batch_valid: DataFrame) -> DataFrame:
    """(event_id, rows): each of the batch's distinct ids with its number of rows. One aggregation (partial counts
    before the shuffle) that the dedupe reads three ways: the ids it looks up in the event-id index, how many
    they are, and which repeat (`repeated_event_ids`)."""
    return batch_valid.groupBy("event_id").agg(F.count(F.lit(1)).alias("rows"))


def repeated_event_ids(
    batch_id_counts: DataFrame, silver_known: DataFrame, *, broadcast_known: bool = True
) -> DataFrame:
    """The event_ids seen more than once among the batch and the silver rows it may repeat.

    `batch_id_counts` is `event_id_counts` of the batch. Silver holds one row per event_id, so an id repeats
    when the batch holds it twice or more, or once with a silver row: no second aggregation over the batch's ids.
    `broadcast_known` (the default) broadcasts the silver ids; a caller expecting millions passes False and Spark
    picks the join. Usually a small set (re-deliveries are a few percent of a batch).
    """
    known_ids = silver_known.select("event_id", F.lit(True).alias("in_silver")).distinct()
    if broadcast_known:
        known_ids = F.broadcast(known_ids)
    return (
        batch_id_counts.join(known_ids, "event_id", "left")
        .where((F.col("rows") > 1) | F.col("in_silver").isNotNull())
        .select("event_id")
    )


def classify_valid_records(
    batch_valid: DataFrame, silver_known: DataFrame, *, repeated_ids: DataFrame | None = None
) -> DataFrame:
    """Tag each valid batch row with `outcome`: insert, noop, duplicate or conflicting_duplicate.

    `silver_known` holds the silver rows that may share an event_id with the batch (the days the event-id
    index names for its ids: silver_ingest.known_silver_rows). Ranking puts silver rows first (earlier
    batches win), then the batch by (source_file, line_number).

    With `repeated_ids` (`repeated_event_ids`, small enough to broadcast), only the rows of those ids are
    ranked (`contested_records`); every other batch row is the only row of its id, so it is inserted
    (`unique_records`). Without it every row is ranked. Both give the same outcomes.
    """
    if repeated_ids is None:
        return _rank_by_event(batch_valid, silver_known)
    return unique_records(batch_valid, repeated_ids).unionByName(
        contested_records(batch_valid, silver_known, repeated_ids)
    )


def unique_records(batch_valid: DataFrame, repeated_ids: DataFrame) -> DataFrame:
    """The batch rows whose id is not in `repeated_ids` (broadcast), classified `insert` without ranking."""
    return (
        batch_valid.join(F.broadcast(repeated_ids), "event_id", "left_anti")
        .withColumn("outcome", F.lit("insert"))
        .withColumn("conflict_detail", F.lit(None).cast("string"))
    )


def contested_records(batch_valid: DataFrame, silver_known: DataFrame, repeated_ids: DataFrame) -> DataFrame:
    """The batch rows whose id is in `repeated_ids` (broadcast), classified by ranking them with silver's."""
    repeated = F.broadcast(repeated_ids)
    return _rank_by_event(
        batch_valid.join(repeated, "event_id", "left_semi"), silver_known.join(repeated, "event_id", "left_semi")
    )


def _rank_by_event(batch_valid: DataFrame, silver_known: DataFrame) -> DataFrame:
    payload = ["event_id", *PAYLOAD_FIELDS, "source_file", "line_number"]
    candidates = silver_known.select(*payload, F.lit(0).alias("priority")).unionByName(
        batch_valid.select(*payload, F.lit(1).alias("priority"))
    )
    # The card token is compared under the winner's own key version: equal when the winner's token is any of
    # the row's tokens (one per held version), so a re-delivery after a key rotation is still a duplicate.
    token_candidates = (
        F.col(CARD_TOKEN_CANDIDATES)
        if CARD_TOKEN_CANDIDATES in batch_valid.columns
        else F.array(F.col("card_token"))  # one key version: the token is its only candidate
    )
    by_event = Window.partitionBy("event_id").orderBy("priority", "source_file", "line_number")
    ranked = candidates.withColumn("rank", F.row_number().over(by_event))
    winners = ranked.where(F.col("rank") == 1).select(
        "event_id",
        F.col("priority").alias("winner_priority"),
        F.col("source_file").alias("winner_file"),
        F.col("line_number").alias("winner_line"),
        *[F.col(name).alias(f"winner_{name}") for name in PAYLOAD_FIELDS],
    )
    same_payload = F.lit(True)
    first_difference = F.lit(None).cast("string")
    for name in reversed(PAYLOAD_FIELDS):
        equal = F.col(name).eqNullSafe(F.col(f"winner_{name}"))
        if name == "card_token":
            equal = equal | F.coalesce(F.array_contains(token_candidates, F.col("winner_card_token")), F.lit(False))
        same_payload = same_payload & equal
        # JSON literal of the re-delivered value, e.g. field=amount value=12.5000
        literal = F.regexp_extract(F.to_json(F.struct(F.col(name).alias("v"))), r'^\{"v":(.*)\}$', 1)
        shown = F.concat(F.lit(f"field={name} value="), F.when(F.col(name).isNull(), "null").otherwise(literal))
        first_difference = F.when(~equal, shown).otherwise(first_difference)
    is_winner_location = (F.col("source_file") == F.col("winner_file")) & (F.col("line_number") == F.col("winner_line"))
    outcome = (
        F.when(is_winner_location & (F.col("winner_priority") == 0), "noop")
        .when(is_winner_location, "insert")
        .when(same_payload, "duplicate")
        .otherwise("conflicting_duplicate")
    )
    return (
        batch_valid.join(winners, "event_id")
        .withColumn("outcome", outcome)
        .withColumn(
            "conflict_detail",
            F.when(
                F.col("outcome") == "conflicting_duplicate",
                F.concat_ws(
                    " ",
                    first_difference,
                    F.concat(F.lit("first_seen="), "winner_file", F.lit(":"), F.col("winner_line").cast("string")),
                ),
            ),
        )
        .drop(*winners.columns[1:])
    )


def silver_rows(inserts: DataFrame, *, run_id: str, ingested_at) -> DataFrame:
    event_ts = F.expr("timestamp_micros(ts_us)")
    return inserts.select(
        "event_id",
        "card_id",
        "ts",
        "ts_us",
        event_ts.alias("event_ts"),
        F.to_date(event_ts).alias("dt"),
        "merchant_id",
        "amount",
        "currency",
        "amount_usd",
        "country",
        "pos_mode",
        "card_last4",
        "card_token",
        "source_file",
        "line_number",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(run_id).alias("run_id"),
    )


def duplicate_rows(duplicates: DataFrame, *, run_id: str) -> DataFrame:
    return duplicates.select(
        "event_id",
        "source_file",
        "line_number",
        ingest_date_of(F.col("source_file")).alias("ingest_date"),
        F.lit(run_id).alias("run_id"),
    )


def conflict_quarantine(conflicts: DataFrame) -> DataFrame:
    """Conflicting re-deliveries as quarantine input.

    raw_record is the parsed record as JSON (the card shown only as card_last4/card_token: the raw line
    may hold a card number); replay re-reads the original line from bronze by (source_file, line_number).
    """
    record = F.to_json(
        F.struct("event_id", "card_id", "ts", "merchant_id", "amount", "currency", "country", "pos_mode", "card_last4")
    )
    return conflicts.select(
        "source_file",
        "line_number",
        record.alias("raw_record"),
        F.lit("conflicting_duplicate").alias("reason"),
        F.col("conflict_detail").alias("detail"),
    )


def quarantine_rows(rejected: DataFrame, *, run_id: str) -> DataFrame:
    return rejected.select(
        "source_file",
        "line_number",
        "raw_record",
        "reason",
        "detail",
        ingest_date_of(F.col("source_file")).alias("ingest_date"),
        F.lit(run_id).alias("run_id"),
    )


def rejected_lines(parsed: DataFrame) -> DataFrame:
    """Lines the contract rejected plus whole unreadable files (line_number null)."""
    lines = parsed.where(F.col("kind") == KIND_REJECTED)
    unreadable = parsed.where((F.col("kind") == KIND_FILE) & F.col("reason").isNotNull())
    return lines.unionByName(unreadable).select("source_file", "line_number", "raw_record", "reason", "detail")
