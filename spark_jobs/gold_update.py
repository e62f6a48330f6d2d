"""Keeping gold equal to a full recompute of silver, at the cost of what changed.

- stream: read silver's Change Data Feed since gold's watermark (`_state/gold_watermark.json`, the last
  silver version gold has absorbed), find each affected card's new events, recompute that card's rows
  whose windows can contain them (from its earliest new ts to its latest + the longest window), reading
  only the history those rows need, and MERGE, updating a row only when a value changed. The watermark
  moves after the MERGE, so a crash in between is healed by the next run.
- range (daily and full): recompute every event in a ts range from scratch, with the history it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import gold
from spark_jobs.delta_tables import (
    append_into_empty,
    commit_metrics_since,
    ensure_table,
    is_empty,
    sql_literal_list,
    stats_columns,
    table_exists,
    table_version,
)
from spark_jobs.fault_injection import fail_point
from spark_jobs.feature_registry import MAX_WINDOW
from spark_jobs.lake import GOLD_TABLE, SILVER_TABLE, gold_watermark_uri, state_commit_log, table_path
from spark_jobs.run_report import RunReport
from spark_jobs.scan_metrics import scanned_files_and_bytes
from spark_jobs.storage import LakeStorage

MAX_WINDOW_US = int(MAX_WINDOW / timedelta(microseconds=1))
DAY_US = 86_400_000_000


@dataclass
class GoldPaths:
    """What a gold update opens: silver and gold (Spark paths) and the watermark (a URI), from lake.py."""

    silver: str
    gold: str
    watermark_uri: str

    @classmethod
    def of(cls, storage: LakeStorage) -> GoldPaths:
        return cls(
            silver=table_path(storage, SILVER_TABLE),
            gold=table_path(storage, GOLD_TABLE),
            watermark_uri=gold_watermark_uri(storage),
        )


@dataclass
class GoldRunStats:
    mode: str = ""
    silver_version_from: int | None = None
    silver_version_to: int | None = None
    changed_silver_rows: int = 0
    affected_cards: int = 0
    rows_recomputed: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    files_scanned: int = 0
    bytes_scanned: int = 0
    notes: list[str] = field(default_factory=list)

    def add_scan(self, frame: DataFrame) -> None:
        files, size = scanned_files_and_bytes(frame)
        self.files_scanned += files
        self.bytes_scanned += size


def ensure_gold_table(spark: SparkSession, path: str) -> None:
    ensure_table(
        spark,
        path,
        gold.GOLD_SCHEMA,
        partition_by=("dt",),
        change_data_feed=True,
        properties=stats_columns(*gold.GOLD_STATS_COLUMNS),
    )


def update_from_changes(
    spark: SparkSession, storage: LakeStorage, report: RunReport, *, computed_at: datetime
) -> GoldRunStats:
    """The stream update: absorb silver versions after the watermark."""
    paths = GoldPaths.of(storage)
    stats = GoldRunStats(mode="incremental")
    ensure_gold_table(spark, paths.gold)
    if not table_exists(spark, paths.silver):
        stats.notes.append("no silver table yet")
        return stats
    current = table_version(spark, paths.silver)
    # The watermark's commits are create-only (lake.state_commit_log): of two writers that read the same
    # watermark, only the first commits its step; the other fails with CommitConflictError (exit 5).
    watermark_log = state_commit_log(storage, paths.watermark_uri, what="gold watermark")
    watermark = watermark_log.latest()
    stats.silver_version_to = current
    if watermark is None:
        stats.mode = "initial"
        stats.notes.append("no gold watermark: computing gold from all of silver")
        _recompute_range(spark, paths, stats, report, computed_at=computed_at, ts_range=None)
    elif watermark["silver_version"] >= current:
        stats.silver_version_from = watermark["silver_version"]
        stats.notes.append("silver unchanged since the watermark")
        return stats
    else:
        stats.silver_version_from = watermark["silver_version"]
        _absorb_changes(
            spark, paths, stats, report, since=watermark["silver_version"], until=current, computed_at=computed_at
        )
    fail_point("before_gold_watermark")
    watermark_log.commit(
        {"sequence": watermark_log.sequence(watermark) + 1, "silver_version": current, "run_id": report.run_id},
        run_id=report.run_id,
    )
    return stats


def _absorb_changes(
    spark: SparkSession,
    paths: GoldPaths,
    stats: GoldRunStats,
    report: RunReport,
    *,
    since: int,
    until: int,
    computed_at: datetime,
) -> None:
    with report.step("gold_read_changes"):
        changes = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", since + 1)
            .option("endingVersion", until)
            .load(paths.silver)
            .where(F.col("_change_type") == "insert")
            .select("card_id", "ts_us", "dt")
        )
        # Per card: the span of its new events; rows from the first to the last + the longest window change.
        card_spans = (
            changes.groupBy("card_id")
            .agg(F.min("ts_us").alias("first_new_us"), F.max("ts_us").alias("last_new_us"), F.count("*").alias("n"))
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        summary = card_spans.agg(
            F.count("*").alias("cards"), F.sum("n").alias("rows"), F.min("first_new_us"), F.max("last_new_us")
        ).collect()[0]
        stats.add_scan(card_spans)
    stats.changed_silver_rows = int(summary["rows"] or 0)
    stats.affected_cards = int(summary["cards"] or 0)
    if not stats.affected_cards:
        card_spans.unpersist()
        return
    first_us, last_us = summary[2], summary[3]
    history = (
        _silver_between(spark, paths.silver, first_us - MAX_WINDOW_US, last_us + MAX_WINDOW_US)
        .join(F.broadcast(card_spans.select("card_id", "first_new_us", "last_new_us")), "card_id")
        .where(F.col("ts_us").between(F.col("first_new_us") - MAX_WINDOW_US, F.col("last_new_us") + MAX_WINDOW_US))
    )
    recomputed = gold.card_features(history.drop("first_new_us", "last_new_us"), computed_at=computed_at)
    # Only the rows whose windows can hold a new event; the earlier history was context.
    spans = card_spans.select("card_id", "first_new_us", "last_new_us")
    affected_rows = (
        recomputed.join(F.broadcast(spans), "card_id")
        .where(F.col("ts_us").between(F.col("first_new_us"), F.col("last_new_us") + MAX_WINDOW_US))
        .select(*gold.GOLD_SCHEMA.fieldNames())
    )
    _merge_changed(spark, paths, stats, report, affected_rows, first_us, last_us + MAX_WINDOW_US)
    card_spans.unpersist()


def _silver_between(spark: SparkSession, silver_path: str, low_us: int, high_us: int) -> DataFrame:
    """Silver rows with low_us ≤ ts_us ≤ high_us; the dt bounds let Delta prune partitions."""
    low_day = date(1970, 1, 1) + timedelta(microseconds=low_us)
    high_day = date(1970, 1, 1) + timedelta(microseconds=high_us)
    return (
        spark.read.format("delta")
        .load(silver_path)
        .where(F.col("dt").between(F.lit(low_day), F.lit(high_day)))
        .where(F.col("ts_us").between(low_us, high_us))
        .select("event_id", "card_id", "ts", "ts_us", "event_ts", "dt", "amount_usd", "merchant_id", "country")
    )


def recompute_range(
    spark: SparkSession,
    storage: LakeStorage,
    report: RunReport,
    *,
    computed_at: datetime,
    ts_range: tuple[int, int] | None,
) -> GoldRunStats:
    """Recompute gold for events with ts_us in [low, high) (None: everything) from scratch."""
    paths = GoldPaths.of(storage)
    stats = GoldRunStats(mode="recompute")
    ensure_gold_table(spark, paths.gold)
    if table_exists(spark, paths.silver):
        _recompute_range(spark, paths, stats, report, computed_at=computed_at, ts_range=ts_range)
    return stats


def _recompute_range(
    spark: SparkSession,
    paths: GoldPaths,
    stats: GoldRunStats,
    report: RunReport,
    *,
    computed_at: datetime,
    ts_range: tuple[int, int] | None,
) -> None:
    if ts_range is None:
        history = (
            spark.read.format("delta")
            .load(paths.silver)
            .select("event_id", "card_id", "ts", "ts_us", "event_ts", "dt", "amount_usd", "merchant_id", "country")
        )
        rows = gold.card_features(history, computed_at=computed_at)
        _merge_changed(spark, paths, stats, report, rows, None, None)
        return
    low, high = ts_range
    history = _silver_between(spark, paths.silver, low - MAX_WINDOW_US, high - 1)
    rows = gold.card_features(history, computed_at=computed_at).where(F.col("ts_us").between(low, high - 1))
    _merge_changed(spark, paths, stats, report, rows, low, high - 1)


def _merge_changed(
    spark: SparkSession,
    paths: GoldPaths,
    stats: GoldRunStats,
    report: RunReport,
    rows: DataFrame,
    low_us: int | None,
    high_us: int | None,
) -> None:
    """MERGE recomputed rows into gold: insert new events, update a row only when a value changed.

    Into an empty gold table (the initial build) the MERGE would only insert, so the rows are appended.
    """
    from delta.tables import DeltaTable

    with report.step("gold_compute"):
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        stats.rows_recomputed += rows.count()
        stats.add_scan(rows)
    condition = "t.dt = s.dt AND t.event_id = s.event_id"
    if low_us is not None:
        days = _days_between(low_us, high_us)
        condition = f"t.dt IN ({sql_literal_list(days)}) AND {condition}"
    with report.step("gold_merge"):
        version_before = table_version(spark, paths.gold)
        if is_empty(spark, paths.gold):
            metrics = append_into_empty(spark, paths.gold, rows, version_before=version_before)
            stats.rows_inserted += metrics.get("numOutputRows", 0)
        else:
            (
                DeltaTable.forPath(spark, paths.gold)
                .alias("t")
                .merge(rows.alias("s"), condition)
                .whenMatchedUpdateAll(condition=gold.values_differ())
                .whenNotMatchedInsertAll()
                .execute()
            )
            metrics = commit_metrics_since(spark, paths.gold, version_before)
            stats.rows_inserted += metrics.get("numTargetRowsInserted", 0)
            stats.rows_updated += metrics.get("numTargetRowsUpdated", 0)
    rows.unpersist()
    fail_point("after_gold_merge")


def _days_between(low_us: int, high_us: int) -> list[date]:
    epoch = date(1970, 1, 1)
    first = epoch + timedelta(days=low_us // DAY_US)
    last = epoch + timedelta(days=high_us // DAY_US)
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
