"""The merchant snapshot `gold/merchant_features`: each merchant's features as of the start S of each UTC day.

Definitions (docs/datasets.md, the registry's MERCHANT_FEATURES), with L = LABEL_MATURITY and W the window:
- `merchant_txn_count_W`: the merchant's silver events with ts in [S − W, S);
- `merchant_cb_rate_W`: of the merchant's events with ts in [S − L − W, S − L), the share with a chargeback
  known at S (a silver/chargebacks record with reported_at_us < S and >= the event's ts_us; several reports
  of one event count once); null when there are none.

L and W are whole days and S a midnight, so everything is per (merchant, UTC day d of the event): an event
of day d counts in the counts of days D in [d + 1, d + W], in the rate denominators of D in
[d + L + 1, d + L + W], and in their numerators once D > the UTC day of its first qualifying report.

Rows: for every snapshot day D and every merchant with >= 1 silver event in [S − MERCHANT_LOOKBACK − 1 d, S):
the extra day gives each merchant, the day after its window passes, an all-0/null "terminal" row, so the
latest row of a silent merchant stays right. Snapshot days: silver's first day .. min(its last day + 1, the
UTC day of the run's `now`), never ending before the watermark's last snapshot day (an earlier `now` keeps and
recomputes the later rows, in every mode: stream == full for the same `now`).

Updates (every mode of silver_and_gold.py): full recomputes every row and MERGEs (deleting rows no longer
produced: the result is a full overwrite, while the Change Data Feed shows only what changed); stream and
daily read the Change Data Feed of silver and silver/chargebacks since `_state/merchant_features_watermark.json`,
derive the affected (merchant, day) pairs plus the snapshot days new since the last run, recompute those from
silver + chargebacks and MERGE, updating a row only when a value changed; then the watermark moves (a crash in
between is healed by the next run recomputing the same pairs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

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
from spark_jobs.feature_registry import (
    DAY,
    DOUBLE,
    FEATURE_SET_VERSION,
    INTEGER,
    LABEL_MATURITY,
    MERCHANT_CHARGEBACK_RATE,
    MERCHANT_COUNT,
    MERCHANT_FEATURE_NAMES,
    MERCHANT_FEATURES,
    MERCHANT_LOOKBACK,
    Feature,
)
from spark_jobs.frame_cache import FrameCache
from spark_jobs.lake import (
    CHARGEBACKS_TABLE,
    MERCHANT_FEATURES_TABLE,
    MERCHANT_FEATURES_WATERMARK,
    SILVER_TABLE,
    delta_commit_uri,
    state_commit_log,
    table_path,
    table_uri,
)
from spark_jobs.run_report import RunReport
from spark_jobs.storage import LakeStorage

DAY_US = 86_400_000_000
LABEL_MATURITY_DAYS = LABEL_MATURITY // DAY
# An event of day d keeps a row of its merchant alive on days d + 1 .. d + ROW_SPAN_DAYS (the last: terminal).
ROW_SPAN_DAYS = MERCHANT_LOOKBACK // DAY + 1
FULL = "full"
INCREMENTAL_MODES = ("stream", "daily")
_EPOCH = date(1970, 1, 1)
_DT_IN_PATH = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")

_SPARK_DATA_TYPES = {INTEGER: T.LongType(), DOUBLE: T.DoubleType()}
MERCHANT_FEATURES_SCHEMA = T.StructType(
    [
        T.StructField("merchant_id", T.StringType(), False),
        T.StructField("day", T.DateType(), False),
        T.StructField("snapshot_start_us", T.LongType(), False),
        *[T.StructField(item.name, _SPARK_DATA_TYPES[item.dtype], True) for item in MERCHANT_FEATURES],
        T.StructField("feature_set_version", T.IntegerType(), False),
        T.StructField("computed_at", T.TimestampType(), False),
    ]
)
MERCHANT_FEATURES_STATS_COLUMNS = ("merchant_id", "day")

# silver/chargebacks (labels.CHARGEBACKS_SCHEMA, written by chargebacks.py): only these columns are read, and a
# lake without the table has no chargebacks yet.
CHARGEBACKS_COLUMNS = ("event_id", "reported_at_us")


def window_days(feature: Feature) -> int:
    return feature.window // DAY


# --- Pure transforms --------------------------------------------------------------------------------------


def daily_events(events: DataFrame) -> DataFrame:
    """Per (merchant_id, event_day): `n` events. `events`: silver's merchant_id, ts_us."""
    return events.groupBy("merchant_id", _day_of("ts_us").alias("event_day")).agg(F.count(F.lit(1)).alias("n"))


def known_chargebacks(events: DataFrame, chargebacks: DataFrame) -> DataFrame:
    """Per (merchant_id, event_day, known_day): `n` events with a chargeback. `events`: silver's event_id,
    merchant_id, ts_us; `chargebacks`: event_id, reported_at_us. known_day is the first snapshot day at whose start
    a chargeback of the event is known (the UTC day of its first report with reported_at_us >= ts_us, + 1).
    Reports before their event and reports of events not in `events` are ignored. Only events with a report
    pass the join (the feed is small next to silver: Spark broadcasts it when its size allows), so silver's
    rows are never shuffled here."""
    first_report = (
        chargebacks.select(*CHARGEBACKS_COLUMNS)
        .join(events.select("event_id", "merchant_id", "ts_us"), "event_id")
        .where(F.col("reported_at_us") >= F.col("ts_us"))
        .groupBy("event_id", "merchant_id", "ts_us")
        .agg(F.min("reported_at_us").alias("first_reported_us"))
    )
    return first_report.groupBy(
        "merchant_id",
        _day_of("ts_us").alias("event_day"),
        (_day_of("first_reported_us") + 1).alias("known_day"),
    ).agg(F.count(F.lit(1)).alias("n"))


def _day_of(column: str) -> Column:
    """UTC day number (days since 1970-01-01) of a non-negative microsecond timestamp, by integer division."""
    return F.expr(f"{column} div {DAY_US}").cast("long")


def _rate_features() -> list[Feature]:
    return [item for item in MERCHANT_FEATURES if item.aggregation == MERCHANT_CHARGEBACK_RATE]


def _numerator(feature: Feature) -> str:
    return f"_numerator_{feature.name}"


def snapshot_values(events: DataFrame, chargebacks: DataFrame, *, last_day: int, frames: FrameCache) -> DataFrame:
    """(merchant_id, day_number, every MERCHANT_FEATURES column) of every (merchant, day) with a row up to
    `last_day`: the days with an event of the merchant in [day − ROW_SPAN_DAYS, day − 1]. A row is exact when
    `events` holds every event of the merchant in that span (the stream mode reads silver from its first
    recomputed day − ROW_SPAN_DAYS; earlier rows are wrong and must be dropped by the caller).

    Computed per merchant over a dense sequence of its days (its first event's day .. the last day it has a row
    on), not per event day and snapshot day: with P(D) the merchant's events of days <= D (a running sum),
    `merchant_txn_count_W`(D) = P(D − 1) − P(D − 1 − W) and a rate's denominator P(D − L − 1) − P(D − L − W − 1).
    The numerator counts an event of day d known on day k on the days [max(d + L + 1, k), d + L + W]: +n on the
    first, −n on the day after the last, summed up to D. All sums are of longs, so the values equal the
    per-event definition's exactly. Two small aggregates are checkpointed in `frames`: the caller's writes read
    them."""
    # Both small aggregates feed several branches below: materialized once, so silver is scanned twice, not
    # once per branch (Spark does not reuse all of their exchanges).
    daily = frames.checkpoint(daily_events(events.select("merchant_id", "ts_us")), eager=False)
    known = frames.checkpoint(known_chargebacks(events, chargebacks), eager=False)
    # Each merchant's days: its first event's day (P starts there) .. its last row's day.
    span = (
        daily.groupBy("merchant_id")
        .agg(F.min("event_day").alias("first"), F.max("event_day").alias("last"))
        .select("merchant_id", "first", F.least(F.col("last") + ROW_SPAN_DAYS, F.lit(last_day)).alias("end"))
        .where(F.col("first") <= F.col("end"))
    )
    rates = _rate_features()
    zero = F.lit(0).cast("long")

    def part(frame: DataFrame, day: Column, events_n: Column, numerators: dict[str, Column]) -> DataFrame:
        return frame.select(
            "merchant_id",
            day.alias("day_number"),
            events_n.alias("_events"),
            *[numerators.get(item.name, zero).alias(_numerator(item)) for item in rates],
        )

    parts = [
        part(span, F.explode(F.sequence("first", "end")), zero, {}),
        part(daily.where(F.col("event_day") <= last_day), F.col("event_day"), F.col("n"), {}),
    ]
    for item in rates:
        width = window_days(item)
        first = F.greatest(F.col("event_day") + LABEL_MATURITY_DAYS + 1, F.col("known_day"))
        after_last = F.col("event_day") + LABEL_MATURITY_DAYS + width + 1
        counted = known.where(first < after_last)
        parts.append(part(counted, first, zero, {item.name: F.col("n")}))
        parts.append(part(counted, after_last, zero, {item.name: -F.col("n")}))
    combined = parts[0]
    for frame in parts[1:]:
        combined = combined.unionByName(frame)
    # One row per (merchant, day) of the dense sequence: no delta falls after a merchant's last event + the
    # row span, so only those after `last_day` need dropping.
    by_day = (
        combined.where(F.col("day_number") <= last_day)
        .groupBy("merchant_id", "day_number")
        .agg(
            F.sum("_events").alias("_events"),
            *[F.sum(_numerator(item)).alias(_numerator(item)) for item in rates],
        )
    )
    by_merchant = Window.partitionBy("merchant_id").orderBy("day_number")
    running = by_merchant.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cumulative = by_day.select(
        "merchant_id",
        "day_number",
        F.sum("_events").over(running).alias("_events_up_to"),
        *[F.sum(_numerator(item)).over(running).alias(_numerator(item)) for item in rates],
    )

    def events_between(newest_back: int, oldest_back: int) -> Column:
        """The merchant's events of days [D − oldest_back, D − newest_back] (rows are consecutive days)."""
        return F.lag("_events_up_to", newest_back, 0).over(by_merchant) - F.lag(
            "_events_up_to", oldest_back + 1, 0
        ).over(by_merchant)

    def value(item: Feature) -> Column:
        width = window_days(item)
        if item.aggregation == MERCHANT_COUNT:
            return events_between(1, width)
        if item.aggregation == MERCHANT_CHARGEBACK_RATE:
            denominator = events_between(LABEL_MATURITY_DAYS + 1, LABEL_MATURITY_DAYS + width)
            numerator = F.col(_numerator(item))
            return F.when(denominator > 0, numerator.cast("double") / denominator.cast("double"))
        raise ValueError(f"merchant feature {item.name}: no Spark aggregation for {item.aggregation!r}")

    return (
        cumulative.select(
            "merchant_id",
            "day_number",
            events_between(1, ROW_SPAN_DAYS).alias("_row_span_events"),
            *[value(item).alias(item.name) for item in MERCHANT_FEATURES],
        )
        .where(F.col("_row_span_events") > 0)
        .drop("_row_span_events")
    )


def snapshot_rows(values: DataFrame, *, computed_at) -> DataFrame:
    """The snapshot rows of `values` (from `snapshot_values`). Output columns: exactly MERCHANT_FEATURES_SCHEMA."""
    return values.select(
        "merchant_id",
        F.expr("date_from_unix_date(CAST(day_number AS INT))").alias("day"),
        (F.col("day_number") * F.lit(DAY_US)).cast("long").alias("snapshot_start_us"),
        *[F.col(item.name).cast(item.spark_type).alias(item.name) for item in MERCHANT_FEATURES],
        F.lit(FEATURE_SET_VERSION).cast("int").alias("feature_set_version"),
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
    )


def pairs_of_changed_events(changed_events: DataFrame) -> DataFrame:
    """(merchant_id, day_number) whose row a new (or changed) event can change: its day + 1 .. + ROW_SPAN_DAYS."""
    event_day = _day_of("ts_us")
    return changed_events.select(
        "merchant_id", F.explode(F.sequence(event_day + 1, event_day + ROW_SPAN_DAYS)).alias("day_number")
    )


def pairs_of_changed_chargebacks(changed_chargebacks: DataFrame, events: DataFrame) -> DataFrame:
    """(merchant_id, day_number) whose rates a new chargeback record can change: its event's day d, the days
    whose denominators hold it ([d + L + 1, d + L + longest W]) from the day after the report on."""
    longest = max(window_days(item) for item in MERCHANT_FEATURES if item.aggregation == MERCHANT_CHARGEBACK_RATE)
    event_day = _day_of("ts_us")
    first = F.greatest(event_day + LABEL_MATURITY_DAYS + 1, _day_of("reported_at_us") + 1)
    last = event_day + LABEL_MATURITY_DAYS + longest
    return (
        changed_chargebacks.select(*CHARGEBACKS_COLUMNS)
        .join(events.select("event_id", "merchant_id", "ts_us"), "event_id")
        .where(F.col("reported_at_us") >= F.col("ts_us"))
        .select("merchant_id", first.alias("first"), last.alias("last"))
        .where(F.col("first") <= F.col("last"))
        .select("merchant_id", F.explode(F.sequence("first", "last")).alias("day_number"))
    )


def values_differ(target: str = "t", source: str = "s") -> str:
    """SQL condition true when a stored value differs from the recomputed one (null-safe)."""
    names = [*MERCHANT_FEATURE_NAMES, "snapshot_start_us", "feature_set_version"]
    return " OR ".join(f"NOT ({target}.{name} <=> {source}.{name})" for name in names)


# --- The update -------------------------------------------------------------------------------------------


@dataclass
class MerchantRunStats:
    mode: str = ""
    silver_version: int | None = None
    chargebacks_version: int | None = None
    since_silver_version: int | None = None
    since_chargebacks_version: int | None = None
    last_snapshot_day: str | None = None
    affected_pairs: int = 0
    days_recomputed: int = 0
    rows_recomputed: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Inputs:
    """Silver and the chargebacks, each pinned to one Delta version (None: the table does not exist)."""

    silver_path: str
    chargebacks_path: str
    silver_version: int | None
    chargebacks_version: int | None

    def silver(self, spark: SparkSession) -> DataFrame:
        return spark.read.format("delta").option("versionAsOf", self.silver_version).load(self.silver_path)

    def events(self, spark: SparkSession, *, from_day: int | None = None, to_day: int | None = None) -> DataFrame:
        """Silver's events with a UTC day in [from_day, to_day] (None: unbounded). dt lets Delta prune partitions;
        it is widened by a day on each side (it is the day in the session's time zone) and ts_us decides."""
        frame = self.silver(spark)
        if from_day is not None:
            frame = frame.where(F.col("dt") >= F.lit(_EPOCH + timedelta(days=from_day - 1)))
            frame = frame.where(F.col("ts_us") >= from_day * DAY_US)
        if to_day is not None:
            frame = frame.where(F.col("dt") <= F.lit(_EPOCH + timedelta(days=to_day + 1)))
            frame = frame.where(F.col("ts_us") < (to_day + 1) * DAY_US)
        return frame.select("event_id", "merchant_id", "ts_us")

    def newest_partition(self, spark: SparkSession) -> DataFrame | None:
        """Silver's newest `dt` partition at the pinned version, found from the Delta log's file list (no data
        read); the whole table when its files name no `dt`; None when it has no file."""
        frame = self.silver(spark)
        files = frame.inputFiles()
        if not files:
            return None
        days = [date.fromisoformat(match.group(1)) for match in map(_DT_IN_PATH.search, files) if match]
        return frame.where(F.col("dt") == F.lit(max(days))) if days else frame

    def chargebacks(self, spark: SparkSession) -> DataFrame:
        if self.chargebacks_version is None:
            return spark.createDataFrame([], "event_id string, reported_at_us long")
        table = spark.read.format("delta").option("versionAsOf", self.chargebacks_version).load(self.chargebacks_path)
        return table.select(*CHARGEBACKS_COLUMNS)


def ensure_merchant_features_table(spark: SparkSession, path: str) -> None:
    ensure_table(
        spark,
        path,
        MERCHANT_FEATURES_SCHEMA,
        change_data_feed=True,
        properties=stats_columns(*MERCHANT_FEATURES_STATS_COLUMNS),
    )


def update_merchant_features(
    spark: SparkSession,
    storage: LakeStorage,
    report: RunReport,
    *,
    mode: str,
    computed_at: datetime,
    now: datetime,
) -> MerchantRunStats:
    """Bring gold/merchant_features up to date with silver and silver/chargebacks (module docstring); reports
    merchant_rows_inserted/updated and merchant_days_recomputed."""
    if mode != FULL and mode not in INCREMENTAL_MODES:
        raise ValueError(f"mode {mode!r}: expected {FULL} or one of {', '.join(INCREMENTAL_MODES)}")
    target = table_path(storage, MERCHANT_FEATURES_TABLE)
    stats = MerchantRunStats(mode=mode)
    ensure_merchant_features_table(spark, target)
    silver_path = table_path(storage, SILVER_TABLE)
    chargebacks_path = table_path(storage, CHARGEBACKS_TABLE)
    if not table_exists(spark, silver_path):
        stats.notes.append("no silver table yet")
        _report(report, stats)
        return stats
    inputs = _Inputs(
        silver_path,
        chargebacks_path,
        table_version(spark, silver_path),
        table_version(spark, chargebacks_path) if table_exists(spark, chargebacks_path) else None,
    )
    stats.silver_version, stats.chargebacks_version = inputs.silver_version, inputs.chargebacks_version
    watermark_log = state_commit_log(storage, storage.uri(MERCHANT_FEATURES_WATERMARK), what="merchant watermark")
    watermark = watermark_log.latest()
    with report.step("merchant_features"):
        last_day = _kept_last_day(_last_snapshot_day(spark, inputs, now), watermark, stats)
        stats.last_snapshot_day = None if last_day is None else (_EPOCH + timedelta(days=last_day)).isoformat()
        if mode == FULL or watermark is None:
            if watermark is None and mode != FULL:
                stats.notes.append("no merchant watermark: computing the snapshot from all of silver")
            _recompute_all(spark, target, inputs, stats, last_day=last_day, computed_at=computed_at)
        else:
            stats.since_silver_version = watermark.get("silver_version")
            stats.since_chargebacks_version = watermark.get("chargebacks_version")
            unreadable = _change_feed_gap(storage, inputs, watermark)
            if watermark.get("last_snapshot_day") is None:  # silver was empty at the last run
                stats.notes.append("no snapshot day at the watermark: computing the snapshot from all of silver")
                _recompute_all(spark, target, inputs, stats, last_day=last_day, computed_at=computed_at)
            elif unreadable:
                stats.mode = "recompute_all"
                stats.notes.append(
                    f"{unreadable}: the watermark is older than the table's Change Data Feed retention; "
                    "recomputing the whole merchant snapshot"
                )
                _recompute_all(spark, target, inputs, stats, last_day=last_day, computed_at=computed_at)
            else:
                _absorb_changes(spark, target, inputs, stats, watermark, last_day=last_day, computed_at=computed_at)
    fail_point("before_merchant_watermark")
    watermark_log.commit(
        {
            "sequence": watermark_log.sequence(watermark) + 1,
            "silver_version": inputs.silver_version,
            "chargebacks_version": inputs.chargebacks_version,
            "last_snapshot_day": last_day,
            "run_id": report.run_id,
        },
        run_id=report.run_id,
    )
    _report(report, stats)
    return stats


def _report(report: RunReport, stats: MerchantRunStats) -> None:
    report.details["merchant_features"] = vars(stats)
    report.add(
        merchant_rows_recomputed=stats.rows_recomputed,
        merchant_rows_inserted=stats.rows_inserted,
        merchant_rows_updated=stats.rows_updated,
        merchant_days_recomputed=stats.days_recomputed,
    )


def _last_snapshot_day(spark: SparkSession, inputs: _Inputs, now: datetime) -> int | None:
    """min(silver's last UTC day + 1, the UTC day of `now`) as a day number; None when silver is empty.
    dt rises with ts_us, so silver's newest event is in its newest dt partition: only that one is read."""
    newest = inputs.newest_partition(spark)
    last_ts_us = None if newest is None else newest.agg(F.max("ts_us")).first()[0]
    if last_ts_us is None:
        return None
    now_day = (now.astimezone(UTC).date() - _EPOCH).days
    return min(last_ts_us // DAY_US + 1, now_day)


def _kept_last_day(last_day: int | None, watermark: dict | None, stats: MerchantRunStats) -> int | None:
    """The snapshot never ends earlier than it did: a run whose `now` falls before the watermark's last snapshot
    day (a backfill with --now, clock skew) keeps — and recomputes like any other — the rows up to that day, so
    a stream run and a full recompute with the same `now` give the same table (neither drops nor freezes them)."""
    previous = None if watermark is None else watermark.get("last_snapshot_day")
    if previous is None or last_day is None or previous <= last_day:
        return last_day
    kept = _EPOCH + timedelta(days=previous)
    stats.notes.append(
        f"now's last snapshot day {_EPOCH + timedelta(days=last_day)} is before the last run's {kept}: "
        f"the rows up to {kept} are kept and recomputed"
    )
    return previous


def _recompute_all(
    spark: SparkSession, target: str, inputs: _Inputs, stats: MerchantRunStats, *, last_day: int | None, computed_at
) -> None:
    with FrameCache() as frames:
        if last_day is None:
            rows = spark.createDataFrame([], MERCHANT_FEATURES_SCHEMA)
        else:
            values = snapshot_values(inputs.events(spark), inputs.chargebacks(spark), last_day=last_day, frames=frames)
            rows = snapshot_rows(values, computed_at=computed_at)
        _merge(spark, target, stats, rows, days=None, delete_missing=True)


def _change_feed_gap(storage: LakeStorage, inputs: _Inputs, watermark: dict) -> str | None:
    """The table whose versions after the watermark are no longer all in its Delta log (cleaned up after the
    log retention), or None when the Change Data Feed since the watermark can be read. Delta's log cleanup
    deletes the oldest commit files first, so the first needed version's commit file decides: one existence
    check per table, not a read of the table's whole history every run."""
    for name, table, since, current in (
        ("silver", SILVER_TABLE, watermark.get("silver_version"), inputs.silver_version),
        ("chargebacks", CHARGEBACKS_TABLE, watermark.get("chargebacks_version"), inputs.chargebacks_version),
    ):
        if current is None or (since is not None and since >= current):
            continue
        first_needed = 0 if since is None else since + 1
        if not storage.exists(delta_commit_uri(table_uri(storage, table), first_needed)):
            return f"{name} version {first_needed} (its commit is no longer in the Delta log)"
    return None


def _changes(spark: SparkSession, path: str, since: int | None, until: int | None) -> DataFrame | None:
    """The Change Data Feed rows after version `since` (None: from the table's creation) up to `until`, of
    every change type but update_preimage (inserts, deletes, an update's new state). None: nothing changed."""
    if until is None or (since is not None and since >= until):
        return None
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 0 if since is None else since + 1)
        .option("endingVersion", until)
        .load(path)
        .where(F.col("_change_type") != "update_preimage")
    )


def _events_of_reports(spark: SparkSession, inputs: _Inputs, chargebacks: DataFrame) -> DataFrame:
    """The silver events whose rows `chargebacks` can change (pairs_of_changed_chargebacks): a report on day r
    changes rows only of events of days d with d <= r (a report before its event is no label) and
    d + L + longest W - 1 >= r (later, every day it could reach has passed), so silver is read by `dt` over
    [first report's day - L - longest W, last report's day] instead of whole."""
    longest = max(window_days(item) for item in MERCHANT_FEATURES if item.aggregation == MERCHANT_CHARGEBACK_RATE)
    first_us, last_us = chargebacks.agg(F.min("reported_at_us"), F.max("reported_at_us")).first()
    if first_us is None:
        return inputs.events(spark).limit(0)
    return inputs.events(spark, from_day=first_us // DAY_US - LABEL_MATURITY_DAYS - longest, to_day=last_us // DAY_US)


def _absorb_changes(
    spark: SparkSession,
    target: str,
    inputs: _Inputs,
    stats: MerchantRunStats,
    watermark: dict,
    *,
    last_day: int | None,
    computed_at,
) -> None:
    previous_last_day = watermark.get("last_snapshot_day")
    if last_day is None:
        return
    with FrameCache() as frames:
        pair_frames = []
        silver_changes = _changes(spark, inputs.silver_path, watermark.get("silver_version"), inputs.silver_version)
        if silver_changes is not None:
            pair_frames.append(pairs_of_changed_events(silver_changes.select("merchant_id", "ts_us")))
        chargeback_changes = _changes(
            spark, inputs.chargebacks_path, watermark.get("chargebacks_version"), inputs.chargebacks_version
        )
        if chargeback_changes is not None:
            pair_frames.append(
                pairs_of_changed_chargebacks(chargeback_changes, _events_of_reports(spark, inputs, chargeback_changes))
            )
        # Snapshot days after the last run's last one are computed whole (a new day, silver's last day moved).
        new_days_after = min(previous_last_day, last_day)
        pairs = None
        if pair_frames:
            pairs = pair_frames[0]
            for frame in pair_frames[1:]:
                pairs = pairs.unionByName(frame)
            pairs = frames.persist(pairs.where(F.col("day_number") <= new_days_after).distinct())
        changed_days = (
            [] if pairs is None else sorted(row[0] for row in pairs.select("day_number").distinct().collect())
        )
        new_days = list(range(new_days_after + 1, last_day + 1))
        days = sorted({*changed_days, *new_days})
        if not days:
            stats.notes.append("no change to silver or the chargebacks since the watermark, no new snapshot day")
            return
        stats.affected_pairs = pairs.count() if pairs is not None else 0
        # Every event any wanted row depends on lies at most ROW_SPAN_DAYS before its day.
        events = inputs.events(spark, from_day=days[0] - ROW_SPAN_DAYS)
        if not new_days:  # only the affected merchants' events are needed
            events = events.join(F.broadcast(pairs.select("merchant_id").distinct()), "merchant_id", "left_semi")
        # Rows before days[0] lack part of their history: only the wanted days are kept.
        values = snapshot_values(events, inputs.chargebacks(spark), last_day=last_day, frames=frames)
        wanted = values.where(F.col("day_number") > new_days_after)
        if pairs is not None:
            wanted = wanted.unionByName(
                values.where(F.col("day_number") <= new_days_after).join(
                    pairs, ["merchant_id", "day_number"], "left_semi"
                )
            )
        rows = snapshot_rows(wanted, computed_at=computed_at)
        _merge(spark, target, stats, rows, days=[_EPOCH + timedelta(days=day) for day in days], delete_missing=False)


def _merge(
    spark: SparkSession,
    target: str,
    stats: MerchantRunStats,
    rows: DataFrame,
    *,
    days: list[date] | None,
    delete_missing: bool,
) -> None:
    """MERGE recomputed rows: insert new (merchant, day) rows, update a row only when a value changed; with
    `delete_missing` (a full recompute) delete rows the recompute no longer produces. The target is pruned to
    `days` when given. Into an empty table the rows are appended."""
    from delta.tables import DeltaTable

    with FrameCache() as frames:
        rows = frames.persist(rows)
        recomputed, distinct_days = rows.agg(F.count(F.lit(1)), F.countDistinct("day")).first()  # one job
        stats.rows_recomputed += recomputed
        stats.days_recomputed += len(days) if days is not None else distinct_days
        version_before = table_version(spark, target)
        if is_empty(spark, target):
            metrics = append_into_empty(spark, target, rows, version_before=version_before)
            stats.rows_inserted += metrics.get("numOutputRows", 0)
        else:
            condition = "t.merchant_id = s.merchant_id AND t.day = s.day"
            if days is not None:
                condition = f"t.day IN ({sql_literal_list(days)}) AND {condition}"
            merge = (
                DeltaTable.forPath(spark, target)
                .alias("t")
                .merge(rows.alias("s"), condition)
                .whenMatchedUpdateAll(condition=values_differ())
                .whenNotMatchedInsertAll()
            )
            if delete_missing:
                merge = merge.whenNotMatchedBySourceDelete()
            merge.execute()
            metrics = commit_metrics_since(spark, target, version_before)
            stats.rows_inserted += metrics.get("numTargetRowsInserted", 0)
            stats.rows_updated += metrics.get("numTargetRowsUpdated", 0)
            stats.rows_deleted += metrics.get("numTargetRowsDeleted", 0)
    fail_point("after_merchant_merge")
