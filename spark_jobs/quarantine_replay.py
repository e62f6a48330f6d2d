"""Replay quarantined bronze lines against today's contract and reference data.

Each quarantined (source_file, line_number) is re-read from bronze and validated again (say, after a
currency was added to the FX file). A line that now passes goes through the same first-seen-wins
classification as new data: into silver, the duplicates log, or back to quarantine as a conflict.
Quarantine rows are never deleted: a row that leaves quarantine gets a row in `silver/quarantine_replays`
(its outcome: silver, duplicates, file_read) after the silver and duplicates commits, and no later replay
selects it again. A crash in between leaves the row without its replay record only until the rerun, which
finds the line in silver as a no-op (or a duplicate again) and records it then. A formerly unreadable file
that now reads is replayed whole: its lines are judged one by one (new quarantine rows for those failing).

Duplicates are found exactly at any distance, like ingestion: silver at the days the event-id index names for
the lines' ids (spark_jobs/event_id_index.py); the (event_id, dt) of each line moving into silver is added
to the index before the silver commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import silver
from spark_jobs.bronze_contract import DEFAULT_FRAMING_LIMITS, FramingLimits
from spark_jobs.delta_tables import table_exists
from spark_jobs.fault_injection import fail_point
from spark_jobs.frame_cache import FrameCache
from spark_jobs.lake import DUPLICATES_TABLE, QUARANTINE_REPLAYS_TABLE, QUARANTINE_TABLE, SILVER_TABLE, table_path
from spark_jobs.run_report import RunReport
from spark_jobs.silver_ingest import (
    SilverOptions,
    folder_arrivals,
    index_inserts,
    insert_by_location,
    insert_silver,
    known_silver_rows,
    read_and_parse,
)
from spark_jobs.storage import LakeStorage

REPLAYABLE_OUTCOMES = ("insert", "noop", "duplicate")


@dataclass(frozen=True)
class QuarantineReplayOptions:
    """Which quarantined lines to replay, and the reference data to validate them with."""

    reasons: tuple[str, ...] = ()  # only lines quarantined for these reasons; empty: every reason
    since: date | None = None  # only lines whose bronze arrival date is on or after this day
    fx_rates: str | None = None  # currency,usd_rate CSV (path or URI); None: the reference file
    card_token_secret_id: str | None = None  # None: env LAKEHOUSE_CARD_TOKEN_KEY
    allow_development_token_key: bool = False  # local lakes only: the public key when no other is given
    endpoint_url: str | None = None
    # The event-id index (spark_jobs/event_id_index.py), as silver_and_gold.py takes it: a DynamoDB table, else a
    # SQLite path, else the local lake's own file.
    event_id_index_table: str | None = None
    event_id_index_path: str | None = None
    region: str | None = None
    limits: FramingLimits = DEFAULT_FRAMING_LIMITS  # the framing caps: a replay with higher ones can land lines


def run_quarantine_replay(storage: LakeStorage, report: RunReport, options: QuarantineReplayOptions):
    """The replay job's body (scripts/replay_quarantine.py): load the reference data, replay, the metrics."""
    from spark_jobs.event_id_index import index_location
    from spark_jobs.job_run import JobResult
    from spark_jobs.session import build_spark_session
    from spark_jobs.silver_ingest import ensure_event_id_index, ensure_silver_tables, load_reference_data

    fx_rates, token_keys = load_reference_data(
        fx_rates=options.fx_rates,
        card_token_secret_id=options.card_token_secret_id,
        allow_development_token_key=options.allow_development_token_key,
        lake_root=storage.root,
        endpoint_url=options.endpoint_url,
        region=options.region,
    )
    silver_options = SilverOptions(
        fx_rates=fx_rates,
        token_key=token_keys,
        event_id_index=index_location(
            storage.root,
            table=options.event_id_index_table,
            path=options.event_id_index_path,
            region=options.region,
        ),
        limits=options.limits,
    )
    spark = build_spark_session("replay_quarantine", s3_endpoint_url=options.endpoint_url)
    ensure_silver_tables(spark, storage)
    ensure_event_id_index(spark, storage, silver_options, report)  # a lake built before the index: backfill
    with FrameCache() as frames:  # the replay's caches and checkpoints, released however it ends
        replay_quarantine(spark, storage, silver_options, report, options, ingested_at=report.started_at, frames=frames)
    counts = report.counts
    return JobResult(
        metrics={"replay": {"ReplayedToSilver": counts["moved_to_silver"], "Selected": counts["selected"]}}
    )


def replay_quarantine(
    spark: SparkSession,
    storage: LakeStorage,
    silver_options: SilverOptions,
    report: RunReport,
    selection: QuarantineReplayOptions,
    *,
    ingested_at: datetime,
    frames: FrameCache,
) -> None:
    """Replay the lines `selection` picks (its reasons and arrival dates) with `silver_options`; the frames it
    caches are held by `frames`."""
    quarantine_path = table_path(storage, QUARANTINE_TABLE)
    silver_path = table_path(storage, SILVER_TABLE)
    report.add(selected=0, moved_to_silver=0, moved_to_duplicates=0, still_quarantined=0, newly_quarantined=0)
    if not table_exists(spark, quarantine_path):
        return
    selected = open_quarantine_rows(spark, storage)
    if selection.reasons:
        selected = selected.where(F.col("reason").isin(list(selection.reasons)))
    if selection.since:
        selected = selected.where(F.col("ingest_date") >= F.lit(selection.since))
    # Checkpointed, not cached: the quarantine MERGE below would make Spark drop a cached plan that reads the
    # quarantine table, and everything derived from `selected` would then see the post-replay table.
    selected = frames.checkpoint(selected.select("source_file", "line_number", "reason"))
    files = sorted(row.source_file for row in selected.select("source_file").distinct().collect())
    report.add(selected=selected.count())
    if not files:
        return

    with report.step("reparse"):
        # Judged against the folder's hour end + buffering (the object's LastModified is not re-listed here).
        arrivals = folder_arrivals(files, silver_options.firehose_buffering)
        parsed = frames.persist(read_and_parse(spark, storage, files, silver_options, arrivals=arrivals))
        line_rows = parsed.where(F.col("kind") != silver.KIND_FILE)
        whole_files = selected.where(F.col("line_number").isNull()).select("source_file").distinct()
        # Selected lines, plus every line of a selected whole-file row whose file now reads.
        replayed_lines = line_rows.join(
            selected.where(F.col("line_number").isNotNull()).select("source_file", "line_number"),
            ["source_file", "line_number"],
            "left_semi",
        ).unionByName(line_rows.join(whole_files, "source_file", "left_semi"))
        still_unreadable = parsed.where((F.col("kind") == silver.KIND_FILE) & F.col("reason").isNotNull()).join(
            whole_files, "source_file", "left_semi"
        )
        replayed_lines = frames.persist(replayed_lines)

    with report.step("classify"):
        valid = silver.accepted_records(replayed_lines)
        # The same exact lookup as ingestion: silver at the days the event-id index names for the lines' ids.
        lookup = known_silver_rows(spark, silver_path, valid, silver_options.event_id_index, frames)
        lookup.batch_id_counts.unpersist()  # every line is ranked here: replays are small
        batch_dates = lookup.batch_dates
        # Checkpointed: the silver insert below would invalidate a cached plan that reads silver.
        known = frames.checkpoint(lookup.rows)
        lookup.record(report, lookup.rows)
        report.details["event_id_index_lookup"] = lookup.details
        classified = frames.checkpoint(silver.classify_valid_records(valid, known))
        rejected = silver.rejected_lines(replayed_lines.unionByName(still_unreadable)).unionByName(
            silver.conflict_quarantine(classified.where(F.col("outcome") == "conflicting_duplicate"))
        )
        outcomes = {row.outcome: row["count"] for row in classified.groupBy("outcome").count().collect()}

    with report.step("write"):
        # Like ingestion: the index first (a superset of silver, so a crash before the silver commit is safe).
        index_inserts(classified, silver_options.event_id_index, report)
        fail_point("replay_after_event_id_index_write")
        inserts = silver.silver_rows(
            classified.where(F.col("outcome") == "insert"), run_id=report.run_id, ingested_at=ingested_at
        )
        insert_silver(spark, silver_path, inserts, batch_dates)
        insert_by_location(
            spark,
            table_path(storage, DUPLICATES_TABLE),
            silver.duplicate_rows(classified.where(F.col("outcome") == "duplicate"), run_id=report.run_id),
        )
        fail_point("replay_before_quarantine_update")
        newly = _update_quarantine(spark, quarantine_path, selected, rejected, report.run_id)
        fail_point("replay_before_replay_record")
        _record_departures(
            spark,
            table_path(storage, QUARANTINE_REPLAYS_TABLE),
            selected,
            classified,
            rejected,
            run_id=report.run_id,
            replayed_at=ingested_at,
        )

    report.add(
        moved_to_silver=outcomes.get("insert", 0) + outcomes.get("noop", 0),
        moved_to_duplicates=outcomes.get("duplicate", 0),
        still_quarantined=rejected.count() - newly,
        newly_quarantined=newly,
    )


def open_quarantine_rows(spark: SparkSession, storage: LakeStorage) -> DataFrame:
    """The quarantine rows no replay has taken out of quarantine (every row stays in the table itself)."""
    rows = spark.read.format("delta").load(table_path(storage, QUARANTINE_TABLE))
    replays_path = table_path(storage, QUARANTINE_REPLAYS_TABLE)
    if not table_exists(spark, replays_path):
        return rows
    departed = spark.read.format("delta").load(replays_path).select("source_file", "line_number")
    same_row = (rows["source_file"] == departed["source_file"]) & rows["line_number"].eqNullSafe(
        departed["line_number"]
    )
    return rows.join(departed, same_row, "left_anti")


def _record_departures(
    spark: SparkSession,
    replays_path: str,
    selected: DataFrame,
    classified: DataFrame,
    rejected: DataFrame,
    *,
    run_id: str,
    replayed_at: datetime,
) -> None:
    """A replay record for each selected quarantine row that left quarantine: its line now passes (in silver or
    the duplicates), or its unreadable file now reads (its lines judged one by one)."""
    moved = classified.where(F.col("outcome").isin(*REPLAYABLE_OUTCOMES)).select(
        "source_file",
        "line_number",
        F.when(F.col("outcome") == "duplicate", silver.REPLAY_OUTCOME_DUPLICATES)
        .otherwise(silver.REPLAY_OUTCOME_SILVER)
        .alias("outcome"),
    )
    readable_again = (
        selected.where(F.col("line_number").isNull())
        .join(rejected.where(F.col("line_number").isNull()).select("source_file"), "source_file", "left_anti")
        .select("source_file", "line_number", F.lit(silver.REPLAY_OUTCOME_FILE_READ).alias("outcome"))
    )
    leaving = moved.unionByName(readable_again).alias("l")
    rows = leaving.join(  # only quarantine rows: the lines of a file that now reads were never rows of their own
        selected.alias("q"),
        (F.col("l.source_file") == F.col("q.source_file")) & F.col("l.line_number").eqNullSafe(F.col("q.line_number")),
    ).select(
        F.col("q.source_file").alias("source_file"),
        F.col("q.line_number").alias("line_number"),
        silver.ingest_date_of(F.col("q.source_file")).alias("ingest_date"),
        F.col("q.reason").alias("quarantined_reason"),
        F.col("l.outcome").alias("outcome"),
        F.lit(replayed_at).cast("timestamp").alias("replayed_at"),
        F.lit(run_id).alias("run_id"),
    )
    insert_by_location(spark, replays_path, rows)


def _update_quarantine(
    spark: SparkSession,
    quarantine_path: str,
    selected: DataFrame,
    rejected: DataFrame,
    run_id: str,
) -> int:
    """Refresh reason/detail of the rows that stay, add the lines of files that now read; returns how many
    rows are new. Nothing is deleted (`_record_departures` records what left)."""
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, quarantine_path)
    staying = silver.quarantine_rows(rejected, run_id=run_id)
    (
        table.alias("t")
        .merge(
            staying.alias("s"),
            "t.ingest_date <=> s.ingest_date AND t.source_file = s.source_file AND t.line_number <=> s.line_number",
        )
        .whenMatchedUpdate(
            condition="NOT (t.reason <=> s.reason AND t.detail <=> s.detail)",
            set={"reason": "s.reason", "detail": "s.detail", "raw_record": "s.raw_record", "run_id": "s.run_id"},
        )
        .whenNotMatchedInsertAll()
        .execute()
    )
    return staying.join(
        selected.select("source_file", "line_number"), ["source_file", "line_number"], "left_anti"
    ).count()
