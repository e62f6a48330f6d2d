"""Keeping gold equal to a full recompute of silver, at the cost of what changed.

- stream: read silver's Change Data Feed since gold's watermark (`_state/gold_watermark.json`, the last
  silver version gold has absorbed), find each affected card's new events in spans (`change_spans`),
  recompute that card's rows whose windows can contain them (from a span's first new ts to its last + the
  longest window), reading only the silver days and rows those need (the scan is bounded per card and span,
  never by the distance between two changed events), and MERGE, updating a row only when a value changed. The watermark
  moves after the MERGE, so a crash in between is healed by the next run.
- range (daily and full): recompute every event in a ts range from scratch, with the history it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession, Window
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
from spark_jobs.feature_registry import FEATURE_SET_VERSION, MAX_WINDOW
from spark_jobs.frame_cache import FrameCache
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


def ensure_gold_table(spark: SparkSession, path: str) -> list[str]:
    """Create gold if absent; migrate an older feature set's gold (v1) by adding GOLD_SCHEMA's missing columns.

    Returns the columns added. Delta adds them nullable and null in the existing rows (it cannot add a NOT NULL
    column to a table with data); those rows keep feature_set_version 1 until `--mode full` recomputes them
    (docs/runbook.md), after which every row has every column.
    """
    ensure_table(
        spark,
        path,
        gold.GOLD_SCHEMA,
        partition_by=("dt",),
        change_data_feed=True,
        properties=stats_columns(*gold.GOLD_STATS_COLUMNS),
    )
    existing = set(spark.read.format("delta").load(path).columns)
    missing = [item for item in gold.GOLD_SCHEMA.fields if item.name not in existing]
    if missing:
        columns = ", ".join(f"`{item.name}` {item.dataType.simpleString()}" for item in missing)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")
    return [item.name for item in missing]


def _note_migration(stats: GoldRunStats, added: list[str]) -> None:
    if added:
        stats.notes.append(
            f"gold migrated to feature set v{FEATURE_SET_VERSION}: added {', '.join(added)}; "
            "run --mode full once to recompute the older rows (docs/runbook.md)"
        )


def daily_recompute_range(day: date) -> tuple[int, int]:
    """The daily mode's ts_us range [low, high): day D's events and every later row whose windows can hold one of
    them, [D, D + MAX_WINDOW + 1 d) (an event late on D changes rows up to its ts + the longest window)."""
    low = (day - date(1970, 1, 1)).days * DAY_US
    return low, low + MAX_WINDOW_US + DAY_US


def update_from_changes(
    spark: SparkSession, storage: LakeStorage, report: RunReport, *, computed_at: datetime
) -> GoldRunStats:
    """The stream update: absorb silver versions after the watermark."""
    paths = GoldPaths.of(storage)
    stats = GoldRunStats(mode="incremental")
    _note_migration(stats, ensure_gold_table(spark, paths.gold))
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
    with FrameCache() as frames:
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
            spans = frames.persist(change_spans(changes))
            # One job: the counts and the spans' day pairs together (each Spark job has a fixed cost).
            summary = spans.agg(
                F.countDistinct("card_id").alias("cards"),
                F.sum("n").alias("rows"),
                F.collect_set(_span_day_pair()).alias("pairs"),
            ).collect()[0]
            stats.add_scan(spans)
        stats.changed_silver_rows = int(summary["rows"] or 0)
        stats.affected_cards = int(summary["cards"] or 0)
        if not stats.affected_cards:
            return
        read_days, affected_days = _days_of_pairs(summary["pairs"])
        bounds = F.broadcast(spans.select("card_id", "first_new_us", "last_new_us"))
        history = (
            _silver_on_days(spark, paths.silver, read_days)
            .join(bounds, "card_id")
            .where(F.col("ts_us").between(F.col("first_new_us") - MAX_WINDOW_US, F.col("last_new_us") + MAX_WINDOW_US))
        )
        recomputed = gold.card_features(history.drop("first_new_us", "last_new_us"), computed_at=computed_at)
        # Only the rows whose windows can hold a new event; the earlier history was context.
        affected_rows = (
            recomputed.join(bounds, "card_id")
            .where(F.col("ts_us").between(F.col("first_new_us"), F.col("last_new_us") + MAX_WINDOW_US))
            .select(*gold.GOLD_SCHEMA.fieldNames())
        )
        _merge_changed(spark, paths, stats, report, affected_rows, None, None, days=affected_days)


def change_spans(changes: DataFrame) -> DataFrame:
    """Per card, its new events (`changes`: card_id, ts_us) in spans: a span ends where the card's next new event
    is more than twice the longest window later. Rows from a span's first new event to its last + the window
    change, and need the history from its first - the window, so two spans' history never overlap and what a
    stream update reads grows with the new events, never with the distance between them (a card's late event
    and its current one, one far-off event among many recent ones). Columns: card_id, first_new_us, last_new_us, n.
    """
    by_card = Window.partitionBy("card_id").orderBy("ts_us")
    gap = F.col("ts_us") - F.lag("ts_us").over(by_card)
    starts = F.when(gap.isNull() | (gap > 2 * MAX_WINDOW_US), 1).otherwise(0)
    return (
        changes.withColumn("span", F.sum(starts).over(by_card.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy("card_id", "span")
        .agg(F.min("ts_us").alias("first_new_us"), F.max("ts_us").alias("last_new_us"), F.count("*").alias("n"))
        .drop("span")
    )


def span_days(spans: DataFrame) -> tuple[list[date], list[date]]:
    """The silver days the spans' history lies on, and the days of the rows they change (for partition pruning
    and the MERGE's condition): a few per span, collected from the distinct (first, last) day pairs."""
    return _days_of_pairs([row.pair for row in spans.select(_span_day_pair().alias("pair")).distinct().collect()])


def _span_day_pair():
    """A span's (a: first day its history needs, b: last day it changes, c: first day it changes)."""
    first_day = F.floor((F.col("first_new_us") - MAX_WINDOW_US) / DAY_US).cast("long")
    last_day = F.floor((F.col("last_new_us") + MAX_WINDOW_US) / DAY_US).cast("long")
    changed_first = F.floor(F.col("first_new_us") / DAY_US).cast("long")
    return F.struct(first_day.alias("a"), last_day.alias("b"), changed_first.alias("c"))


def _days_of_pairs(pairs) -> tuple[list[date], list[date]]:
    """The read and changed days of collected `_span_day_pair` values."""
    epoch = date(1970, 1, 1)
    read = {epoch + timedelta(days=day) for row in pairs for day in range(row.a, row.b + 1)}
    changed = {epoch + timedelta(days=day) for row in pairs for day in range(row.c, row.b + 1)}
    return sorted(read), sorted(changed)


def _silver_on_days(spark: SparkSession, silver_path: str, days: list[date]) -> DataFrame:
    """Silver rows of the given `dt` partitions (Delta prunes the rest)."""
    return (
        spark.read.format("delta")
        .load(silver_path)
        .where(F.col("dt").isin(days))
        .select("event_id", "card_id", "ts", "ts_us", "event_ts", "dt", "amount_usd", "merchant_id", "country")
    )


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
    _note_migration(stats, ensure_gold_table(spark, paths.gold))
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
    *,
    days: list[date] | None = None,
) -> None:
    """MERGE recomputed rows into gold: insert new events, update a row only when a value changed. The target
    is pruned to the `dt` days of [low_us, high_us], or to `days`.

    Into an empty gold table (the initial build) the MERGE would only insert, so the rows are appended.
    """
    from delta.tables import DeltaTable

    with FrameCache() as frames:
        with report.step("gold_compute"):
            rows = frames.persist(rows)
            stats.rows_recomputed += rows.count()
            stats.add_scan(rows)
        condition = "t.dt = s.dt AND t.event_id = s.event_id"
        if low_us is not None:
            days = _days_between(low_us, high_us)
        if days is not None:
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
    fail_point("after_gold_merge")


def _days_between(low_us: int, high_us: int) -> list[date]:
    epoch = date(1970, 1, 1)
    first = epoch + timedelta(days=low_us // DAY_US)
    last = epoch + timedelta(days=high_us // DAY_US)
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
