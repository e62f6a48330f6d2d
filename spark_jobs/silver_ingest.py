"""Bronze → silver for every pending and new ledger batch (the I/O around the transforms in silver.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import silver
from spark_jobs.bronze_contract import DEFAULT_FRAMING_LIMITS, FUTURE_TS_ALLOWANCE, FramingLimits
from spark_jobs.bronze_ledger import (
    MAX_FIREHOSE_BUFFERING,
    BatchPlan,
    BronzeFile,
    BronzeLedger,
    ListingResult,
    arrival_hour_of,
    arrival_time,
)
from spark_jobs.card_numbers import CardTokenKeys
from spark_jobs.delta_tables import (
    ensure_table,
    insert_new_rows,
    sql_literal_list,
    stats_columns,
    table_exists,
)
from spark_jobs.event_id_index import (
    EventIdIndexLocation,
    add_to_index,
    backfill_from_silver,
    indexed_days,
    mark_index_complete,
)
from spark_jobs.fault_injection import fail_point
from spark_jobs.frame_cache import FrameCache
from spark_jobs.job_log import log
from spark_jobs.lake import DUPLICATES_TABLE, QUARANTINE_REPLAYS_TABLE, QUARANTINE_TABLE, SILVER_TABLE, table_path
from spark_jobs.run_report import RunReport
from spark_jobs.scan_metrics import scanned_files_and_bytes
from spark_jobs.storage import LakeStorage


@dataclass(frozen=True)
class SilverOptions:
    fx_rates: dict[str, Decimal]
    token_key: bytes | CardTokenKeys  # every held key version (card_numbers.resolve_token_keys)
    lookback_hours: int = 48
    full_scan: bool = False
    max_batch_files: int = 2000
    # The exact event-id lookup (event_id_index.py); the jobs always give one (None only for transforms' tests).
    event_id_index: EventIdIndexLocation | None = None
    backfill_event_id_index: bool = False  # fill the index from silver before the first batch, even if complete
    # The run's "now" (the schedule's time; None: the clock), how far a folder's hour or an event's ts may
    # lie after it, and the Firehose buffering interval that bounds a record's arrival (docs/runbook.md).
    now: datetime | None = None
    future_allowance: timedelta = FUTURE_TS_ALLOWANCE
    firehose_buffering: timedelta = MAX_FIREHOSE_BUFFERING
    limits: FramingLimits = DEFAULT_FRAMING_LIMITS  # the framing caps (--max-file-bytes, --max-line-bytes)


# Above this many repeated ids (a whole batch re-delivered) the dedupe ranks every row instead of
# broadcasting the ids to pick out the rows to rank; above this many batch ids their silver lookup is joined
# without a broadcast hint.
MAX_BROADCAST_REPEATED_IDS = 1_000_000


class FxRatesError(ValueError):
    """The `--fx-rates` file cannot be read or is malformed; the message names the file (and the line)."""


def load_fx_rates_file(
    source: str | None, *, endpoint_url: str | None = None, region: str | None = None
) -> dict[str, Decimal]:
    """The `--fx-rates` file (local path, file:// or s3:// URI); None: the reference file in the repository.
    Raises FxRatesError naming the file, and the line for a malformed one."""
    from spark_jobs.bronze_contract import load_fx_rates
    from spark_jobs.job_options import REPO_ROOT_FX_RATES
    from spark_jobs.session import REPO_ROOT
    from spark_jobs.storage import open_file_bytes

    source = source or str(REPO_ROOT / REPO_ROOT_FX_RATES)
    try:
        data = open_file_bytes(source, endpoint_url=endpoint_url, region=region)
    except Exception as error:  # a missing file, a denied or missing S3 object: no traceback for a bad path
        raise FxRatesError(f"--fx-rates {source}: cannot read it: {error}") from error
    try:
        return load_fx_rates(data, source=source)  # bytes: a non-UTF-8 file is named with its line
    except ValueError as error:
        raise FxRatesError(f"--fx-rates {error}") from error


def load_reference_data(
    *,
    fx_rates: str | None,
    card_token_secret_id: str | None,
    allow_development_token_key: bool,
    lake_root: str,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> tuple[dict[str, Decimal], CardTokenKeys]:
    """The FX rates and the card-token keys, read the same way by every job that judges bronze lines
    (silver_and_gold.py, the quarantine replay): both from `region`, so a job never reads them elsewhere."""
    from spark_jobs.card_numbers import resolve_token_keys

    rates = load_fx_rates_file(fx_rates, endpoint_url=endpoint_url, region=region)
    keys = resolve_token_keys(
        card_token_secret_id,
        allow_development_key=allow_development_token_key,
        lake_root=lake_root,
        region=region,
    )
    return rates, keys


class BalanceError(RuntimeError):
    """Records read != accepted + duplicates + quarantined: a bug, never committed."""


def ensure_silver_tables(spark: SparkSession, storage: LakeStorage) -> None:
    ensure_table(
        spark,
        table_path(storage, SILVER_TABLE),
        silver.SILVER_SCHEMA,
        partition_by=("dt",),
        change_data_feed=True,
        properties=stats_columns(*silver.SILVER_STATS_COLUMNS),
    )
    for name, schema, statistics in (
        (DUPLICATES_TABLE, silver.DUPLICATES_SCHEMA, silver.DUPLICATES_STATS_COLUMNS),
        (QUARANTINE_TABLE, silver.QUARANTINE_SCHEMA, silver.QUARANTINE_STATS_COLUMNS),
        (QUARANTINE_REPLAYS_TABLE, silver.QUARANTINE_REPLAYS_SCHEMA, silver.QUARANTINE_REPLAYS_STATS_COLUMNS),
    ):
        ensure_table(
            spark,
            table_path(storage, name),
            schema,
            partition_by=("ingest_date",),
            properties=stats_columns(*statistics),
        )


def ingest_bronze(
    spark: SparkSession, storage: LakeStorage, options: SilverOptions, report: RunReport, *, ingested_at: datetime
) -> None:
    """Finish a pending batch, then process new files in batches; the ledger commits after the tables."""
    ledger = BronzeLedger(storage)
    report.add(
        batches=0,
        files=0,
        empty_files=0,
        bytes_scanned=0,
        records_read=0,
        blank_lines=0,
        accepted=0,
        already_in_silver=0,
        duplicates=0,
        quarantined=0,
        event_id_index_backfilled=0,
        event_id_index_lookups=0,
        event_id_index_hits=0,
        event_id_index_writes=0,
        dedupe_silver_files_read=0,
        dedupe_silver_bytes_read=0,
        replanned_batches=0,
    )
    report.counts.setdefault("quarantined_by_reason", {})
    with report.step("silver_prepare"):
        ensure_silver_tables(spark, storage)
    with report.step("event_id_index_prepare"):
        ensure_event_id_index(spark, storage, options, report)
    inputs = batch_inputs(options)
    pending = ledger.pending()
    if pending:
        log.warning("resuming uncommitted batch %s of run %s", pending.batch, pending.run_id)
        pending = replan_if_changed(ledger, pending, inputs, report)
        process_batch(spark, storage, ledger, pending, options, report, ingested_at=ingested_at)
    listing = list_bronze(ledger, options, report)
    for start in range(0, len(listing.new_files), options.max_batch_files):
        files = listing.new_files[start : start + options.max_batch_files]
        plan = ledger.plan(report.run_id, files, inputs=inputs)
        process_batch(spark, storage, ledger, plan, options, report, ingested_at=ingested_at)


def batch_inputs(options: SilverOptions) -> dict:
    """What a batch's outcome depends on besides its files, recorded in its plan (pending.json): the FX rates
    (a hash of their content), the card-token key versions (a fingerprint of each, never the key) and the
    framing caps. A resumed batch compares them with the run's own (`replan_if_changed`)."""
    rates = "".join(f"{currency},{rate}\n" for currency, rate in sorted(options.fx_rates.items()))
    token_key = options.token_key
    current, keys = (0, ((0, token_key),)) if isinstance(token_key, bytes) else (token_key.current, token_key.keys)
    fingerprints = {
        str(version): hmac.new(key, b"card-token key fingerprint", hashlib.sha256).hexdigest()[:16]
        for version, key in keys
    }
    return {
        "fx_rates_sha256": hashlib.sha256(rates.encode("utf-8")).hexdigest(),
        "card_token_keys": {"current": current, "fingerprints": fingerprints},
        "framing_limits": asdict(options.limits),
    }


def replan_if_changed(ledger: BronzeLedger, pending: BatchPlan, inputs: dict, report: RunReport) -> BatchPlan:
    """The pending batch, re-planned when its files or inputs changed since it was planned; a re-plan is counted
    (`replanned_batches`, metric ReplannedBatches and its alarm) and described in the run report."""
    plan, changes = ledger.replan_if_changed(pending, run_id=report.run_id, inputs=inputs)
    if changes:
        report.add(replanned_batches=1)
        described = {"batch": plan.batch, "planned_by": pending.run_id, **asdict(changes)}
        report.details.setdefault("replanned_batches", []).append(described)
        log.error(
            "batch %s changed since run %s planned it; re-planned (docs/runbook.md, '<prefix>-replanned-batch'): "
            "%d file(s) changed, %d deleted, inputs changed: %s",
            plan.batch,
            pending.run_id,
            len(changes.changed_files),
            len(changes.deleted_files),
            sorted(changes.changed_inputs),
        )
    return plan


def list_bronze(ledger: BronzeLedger, options: SilverOptions, report: RunReport) -> ListingResult:
    """List new bronze files (commit a --full-scan's repair of a future mark first) and report what the
    listing found: files changed after processing and files in future folders are counted as metrics."""
    with report.step("bronze_listing"):
        listing = ledger.list_new_files(
            lookback_hours=options.lookback_hours,
            full_scan=options.full_scan,
            now=options.now,
            allowance=options.future_allowance,
        )
        ledger.repair_high_water(report.run_id, listing)
    report.add(changed_files=len(listing.changed), future_folder_files=len(listing.future_files))
    report.details["bronze_listing"] = {
        "listed_from_hour": listing.listed_from,
        "files_listed": listing.listed_files,
        "new_files": len(listing.new_files),
        "ignored_files": listing.ignored,
        "changed_files": listing.changed,
        "files_outside_hour_folders": listing.outside_hour_folders,
        "future_files": [item.uri for item in listing.future_files],
        "high_water_in_future": listing.high_water_in_future,
        "repaired_high_water": listing.repaired_high_water,
    }
    if listing.changed:
        log.error(
            "%d bronze file(s) changed after they were processed (see docs/runbook.md, "
            "'<prefix>-changed-bronze-files'): %s",
            len(listing.changed),
            [item["uri"] for item in listing.changed[:5]],
        )
    if listing.future_files:
        log.warning("%d bronze file(s) in future ingest_dt= folders deferred", len(listing.future_files))
    if listing.high_water_in_future and not listing.repaired_high_water:
        log.error(
            "the ledger's high-water mark %s is in the future: run once with --full-scan (docs/runbook.md)",
            listing.high_water_in_future,
        )
    return listing


def folder_arrivals(uris: Sequence[str], buffering: timedelta) -> dict[str, datetime | None]:
    """Each bronze file's arrival from its `ingest_dt=` folder alone (hour end + buffering; None outside the
    folders): for a re-read without the batch plan's LastModified, such as a quarantine replay."""
    return {
        uri: arrival_time(BronzeFile(uri=uri, size=0, version="", arrival_hour=arrival_hour_of(uri)), buffering)
        for uri in uris
    }


def process_batch(
    spark: SparkSession,
    storage: LakeStorage,
    ledger: BronzeLedger,
    plan: BatchPlan,
    options: SilverOptions,
    report: RunReport,
    *,
    ingested_at: datetime,
) -> None:
    readable = [item for item in plan.files if item.size > 0]
    report.add(batches=1, files=len(plan.files), empty_files=len(plan.files) - len(readable))
    report.add(bytes_scanned=sum(item.size for item in readable))
    if readable:
        arrivals = {item.uri: arrival_time(item, options.firehose_buffering) for item in readable}
        write_batch(
            spark,
            storage,
            readable,
            options,
            report,
            ingested_at=ingested_at,
            arrivals=arrivals,
        )
    fail_point("before_ledger_commit")
    with report.step("ledger_commit"):
        ledger.commit(plan, committed_by=report.run_id)
    fail_point("after_ledger_commit")


def write_batch(
    spark: SparkSession,
    storage: LakeStorage,
    files: list[BronzeFile],
    options: SilverOptions,
    report: RunReport,
    *,
    ingested_at: datetime,
    arrivals: dict[str, datetime | None] | None = None,
) -> None:
    run_id = report.run_id
    # The parsed batch and the checkpoints are released when the writes are done, or when one fails.
    with FrameCache() as frames:
        with report.step("parse_bronze"):
            parsed, records_read, blank_lines, reasons = parse_and_count(
                spark, storage, files, options, arrivals, frames
            )
        valid = silver.accepted_records(parsed)
        with report.step("deduplicate"):
            silver_path = table_path(storage, SILVER_TABLE)
            lookup = known_silver_rows(spark, silver_path, valid, options.event_id_index, frames)
            batch_dates = lookup.batch_dates
            classified = classify_against_silver(valid, lookup, report, frames)
            outcomes = {row.outcome: row["count"] for row in classified.groupBy("outcome").count().collect()}
            if outcomes.get("conflicting_duplicate"):  # quarantined too (silver.conflict_quarantine's reason)
                reasons["conflicting_duplicate"] = (
                    reasons.get("conflicting_duplicate", 0) + outcomes["conflicting_duplicate"]
                )
            rejected = silver.rejected_lines(parsed).unionByName(
                silver.conflict_quarantine(classified.where(F.col("outcome") == "conflicting_duplicate"))
            )
        accepted = outcomes.get("insert", 0) + outcomes.get("noop", 0)
        duplicates = outcomes.get("duplicate", 0)
        quarantined = sum(reasons.values())
        if records_read != accepted + duplicates + quarantined:
            raise BalanceError(
                f"records read {records_read} != accepted {accepted} + duplicates {duplicates} + quarantined "
                f"{quarantined} for files {[item.uri for item in files[:3]]}..."
            )

        # A write with no rows is skipped (its MERGE would find nothing to insert): the counts above are exact.
        with report.step("write_event_id_index"):
            if outcomes.get("insert"):
                index_inserts(classified, options.event_id_index, report)
        fail_point("after_event_id_index_write")  # the index names days silver does not hold yet: a hint, safe
        with report.step("write_silver"):
            if outcomes.get("insert"):
                inserts = silver.silver_rows(
                    classified.where(F.col("outcome") == "insert"), run_id=run_id, ingested_at=ingested_at
                )
                insert_silver(spark, silver_path, inserts, batch_dates)
        fail_point("after_silver_commit")
        with report.step("write_duplicates"):
            if duplicates:
                insert_by_location(
                    spark,
                    table_path(storage, DUPLICATES_TABLE),
                    silver.duplicate_rows(classified.where(F.col("outcome") == "duplicate"), run_id=run_id),
                )
        fail_point("after_duplicates_commit")
        with report.step("write_quarantine"):
            if quarantined:
                insert_by_location(
                    spark, table_path(storage, QUARANTINE_TABLE), silver.quarantine_rows(rejected, run_id=run_id)
                )
        fail_point("after_quarantine_commit")

    report.add(
        records_read=records_read,
        blank_lines=blank_lines,
        accepted=accepted,
        already_in_silver=outcomes.get("noop", 0),
        duplicates=duplicates,
        quarantined=quarantined,
    )
    by_reason = report.counts["quarantined_by_reason"]
    for reason, count in reasons.items():
        by_reason[reason] = by_reason.get(reason, 0) + count


def classify_against_silver(
    valid: DataFrame, lookup: KnownSilverRows, report: RunReport, frames: FrameCache
) -> DataFrame:
    """`valid` with each row's outcome (silver.classify_valid_records) against the silver rows `lookup` found; the
    checkpoints it reads are held by `frames`, for the caller's writes."""
    # The silver rows the batch may repeat, checkpointed: no plan below reads the silver table, so the
    # silver commit cannot invalidate the cached parsed batch the writes read (Spark drops every cached
    # plan over a path a write commits to).
    known_scan = lookup.rows.select("event_id", *silver.PAYLOAD_FIELDS, "source_file", "line_number")
    known = frames.checkpoint(known_scan)
    lookup.record(report, known_scan)
    repeated = frames.checkpoint(
        silver.repeated_event_ids(
            lookup.batch_id_counts, known, broadcast_known=lookup.details["ids_found"] <= MAX_BROADCAST_REPEATED_IDS
        )
    )
    lookup.batch_id_counts.unpersist()  # early: the writes below do not read it
    repeated_count = repeated.count()
    ranked_only_repeated = repeated_count <= MAX_BROADCAST_REPEATED_IDS
    # Only the ranked rows are materialized: with few repeated ids, the rest are inserted as they are and
    # each write reads them from the cached parsed batch (a checkpoint of every row cost 36 s at 5M events).
    if ranked_only_repeated:
        ranked = frames.checkpoint(silver.contested_records(valid, known, repeated))
        classified = silver.unique_records(valid, repeated).unionByName(ranked)
    else:
        ranked = frames.checkpoint(silver.classify_valid_records(valid, known))
        classified = ranked
    report.details.setdefault("dedupe", []).append(
        {
            "repeated_event_ids": repeated_count,
            "ranked": "repeated ids only" if ranked_only_repeated else "all rows",
            "event_id_index": lookup.details,
        }
    )
    return classified


def parse_and_count(
    spark: SparkSession,
    storage: LakeStorage,
    files: list[BronzeFile],
    options: SilverOptions,
    arrivals: dict[str, datetime | None] | None,
    frames: FrameCache,
) -> tuple[DataFrame, int, int, dict]:
    """The parsed batch, cached in `frames`, with its records read, blank lines and rejected rows by reason, counted
    in the one job that materializes it (silver.rejected_lines: rejected lines, and files with a reason: unreadable)."""
    parsed = frames.persist(read_and_parse(spark, storage, files, options, arrivals=arrivals))
    totals = parsed.groupBy("kind", "reason").agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum("file_records_read").alias("records_read"),
        F.sum("file_blank_lines").alias("blank_lines"),
    )
    records_read = blank_lines = 0
    reasons: dict = {}
    for row in totals.collect():
        if row.kind == silver.KIND_FILE:
            records_read += int(row.records_read or 0)
            blank_lines += int(row.blank_lines or 0)
        if row.kind == silver.KIND_REJECTED or (row.kind == silver.KIND_FILE and row.reason is not None):
            reasons[row.reason] = reasons.get(row.reason, 0) + row.rows
    return parsed, records_read, blank_lines, reasons


def read_and_parse(
    spark: SparkSession,
    storage: LakeStorage,
    files: Sequence[BronzeFile | str],
    options: SilverOptions,
    *,
    arrivals: dict | None = None,
) -> DataFrame:
    """PARSED_SCHEMA rows of `files`, each read by a Python worker through `storage` (LakeStorage.read_planned): a
    BronzeFile at its planned version, a bare URI (a quarantine replay's) as the file is now."""
    return silver.parse_bronze_files(
        planned_files_frame(spark, files),
        read_file=storage.read_planned,
        fx_rates=options.fx_rates,
        token_key=options.token_key,
        limits=options.limits,
        arrivals=arrivals,
        future_allowance=options.future_allowance,
    )


# Bytes of bronze per read task beyond one task per core: Spark's own split size for files
# (spark.sql.files.maxPartitionBytes' default).
READ_TASK_BYTES = 128 * 1024 * 1024


def planned_files_frame(spark: SparkSession, files: Sequence[BronzeFile | str]) -> DataFrame:
    """The files to read as PLANNED_FILE_SCHEMA rows, in contiguous runs of files per task: one task per core,
    more for a batch over READ_TASK_BYTES per core (each Python task has a fixed cost; see session.py)."""
    rows = [
        (item, None, None, None) if isinstance(item, str) else (item.uri, item.size, item.version, item.last_modified)
        for item in files
    ]
    total_bytes = sum(row[1] or 0 for row in rows)
    tasks = max(spark.sparkContext.defaultParallelism, -(-total_bytes // READ_TASK_BYTES))
    rdd = spark.sparkContext.parallelize(rows, max(1, min(len(rows), tasks)))
    return spark.createDataFrame(rdd, silver.PLANNED_FILE_SCHEMA)


@dataclass(frozen=True)
class KnownSilverRows:
    """What the dedupe compares a batch with: the silver rows that may share an event_id with it."""

    batch_dates: list  # the batch's event days
    rows: DataFrame  # the batch's ids in silver at the days the index names for them
    indexed: DataFrame  # (event_id, dt) the index holds for the batch's ids, checkpointed in the caller's frames
    batch_id_counts: DataFrame  # silver.event_id_counts of the batch, cached in the caller's frames
    details: dict  # ids looked up and found, the days read because the index named them

    def record(self, report: RunReport, scanned: DataFrame) -> None:
        """Add the lookup's counts and the silver files/bytes `scanned` (the materialized rows) read."""
        files, size = scanned_files_and_bytes(scanned)
        self.details.update(silver_files_read=files, silver_bytes_read=size)
        report.add(
            event_id_index_lookups=self.details["ids_looked_up"],
            event_id_index_hits=self.details["ids_found"],
            dedupe_silver_files_read=files,
            dedupe_silver_bytes_read=size,
        )


def known_silver_rows(
    spark: SparkSession,
    silver_path: str,
    valid: DataFrame,
    index: EventIdIndexLocation | None,
    frames: FrameCache,
) -> KnownSilverRows:
    """The silver rows a batch may repeat, exact at any distance with reads bounded by the batch, not the lake.

    The event-id index is a superset of silver's (event_id, dt) pairs (event_id_index.py: both writers add a
    row's pair before its silver commit, and an index missing pairs is not complete, so it is backfilled from
    silver before the first batch), so every silver row sharing an id with the batch lies at a day the index
    names for that id: silver is read at exactly those days, filtered to those (id, day) pairs, and not at all
    when the index knows none of the batch's ids (a stream batch of new events). A day the index names without
    the row (a crash between the index write and the silver commit) is read and simply holds nothing for the
    id: silver decides.
    """
    if index is None:
        raise ValueError("the dedupe needs the event-id index (SilverOptions.event_id_index)")
    # The batch's ids are aggregated once, cached, and read for their number, the index lookup and
    # (silver.repeated_event_ids) the ids that repeat: at 5M events each separate distinct was a 6-17 s shuffle.
    batch_dates = sorted(valid.agg(F.collect_set("dt").alias("days")).first()["days"])
    batch_id_counts = frames.persist(silver.event_id_counts(valid))
    ids_looked_up = batch_id_counts.count()
    indexed = frames.checkpoint(indexed_days(batch_id_counts, index, ids_distinct=True))
    found = indexed.agg(F.collect_set("dt").alias("days"), F.countDistinct("event_id").alias("ids")).first()
    named_dates = sorted(found["days"])
    details = {
        "ids_looked_up": ids_looked_up,
        "ids_found": int(found["ids"]),
        "indexed_days_read": [day.isoformat() for day in named_dates],
    }
    if not named_dates or not table_exists(spark, silver_path):
        empty = spark.createDataFrame([], silver.SILVER_SCHEMA)
        return KnownSilverRows(batch_dates, empty, indexed, batch_id_counts, details)
    # Partition pruning on the named days; the semi join keeps only the (id, day) pairs the index named, so
    # the days' other rows (most of them) are dropped at the scan instead of being checkpointed and counted by
    # the dedupe. A stream batch's pairs are broadcast; a backfill's millions are joined without the hint
    # (Spark picks the join).
    pairs = indexed.select("event_id", "dt").distinct()
    if found["ids"] <= MAX_BROADCAST_REPEATED_IDS:
        pairs = F.broadcast(pairs)
    table = spark.read.format("delta").load(silver_path)
    rows = table.where(F.col("dt").isin(named_dates)).join(pairs, ["event_id", "dt"], "left_semi")
    return KnownSilverRows(batch_dates, rows, indexed, batch_id_counts, details)


def index_inserts(classified: DataFrame, index: EventIdIndexLocation | None, report: RunReport) -> None:
    """Add the (event_id, dt) of the rows about to be inserted into silver, before the silver commit."""
    if index is None:
        raise ValueError("the dedupe needs the event-id index (SilverOptions.event_id_index)")
    written = add_to_index(classified.where(F.col("outcome") == "insert").select("event_id", "dt"), index)
    report.add(event_id_index_writes=written)


def ensure_event_id_index(spark: SparkSession, storage: LakeStorage, options: SilverOptions, report: RunReport) -> None:
    """Backfill the index from silver when asked to, or when it is not complete yet (a lake built before the
    index, a lost index): one scan of silver's event_id and dt, idempotent; the marker is written last."""
    location = options.event_id_index
    if location is None:
        raise ValueError("the dedupe needs the event-id index (SilverOptions.event_id_index)")
    index = location.open()
    try:
        complete = index.is_complete()
    finally:
        index.close()
    report.details["event_id_index"] = {"store": location.describe(), "complete_before_run": complete}
    if complete and not options.backfill_event_id_index:
        return
    from delta.tables import DeltaTable

    silver_path = table_path(storage, SILVER_TABLE)
    if DeltaTable.forPath(spark, silver_path).detail().collect()[0].numFiles == 0:
        mark_index_complete(location)  # a new lake: the empty index is complete, no scan (DESCRIBE DETAIL only)
        return
    log.warning("event-id index %s: backfilling from silver (one scan)", location.describe())
    silver_table = spark.read.format("delta").load(silver_path)
    report.add(event_id_index_backfilled=backfill_from_silver(silver_table, location))


def insert_silver(spark: SparkSession, silver_path: str, inserts: DataFrame, batch_dates: list) -> None:
    date_list = sql_literal_list(batch_dates) if batch_dates else "NULL"
    insert_new_rows(
        spark,
        silver_path,
        inserts,
        match_condition=f"t.dt IN ({date_list}) AND t.dt = s.dt AND t.event_id = s.event_id",
    )


def insert_by_location(spark: SparkSession, path: str, rows: DataFrame) -> None:
    """Insert rows keyed by (source_file, line_number), null-safe for whole-file rows, pruned by date."""
    dates = [row.ingest_date for row in rows.select("ingest_date").distinct().collect()]
    known_dates = [day for day in dates if day is not None]
    pruning = [f"t.ingest_date IN ({sql_literal_list(known_dates)})"] if known_dates else []
    if None in dates:
        pruning.append("t.ingest_date IS NULL")
    if not pruning:
        return
    condition = (
        f"({' OR '.join(pruning)}) AND t.ingest_date <=> s.ingest_date AND t.source_file = s.source_file "
        "AND t.line_number <=> s.line_number"
    )
    insert_new_rows(spark, path, rows, match_condition=condition)
