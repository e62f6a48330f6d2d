"""Ingestion of gold into the Feature Store (the library behind feature_store/ingest_features.py; see its
docstring and docs/feature_store.md for what a run does).

Two groups of the running feature set (definitions.py), each from its own table with its own watermark entry:
- `card-features-v{N}` from gold/card_features (one record per event; online: each card's newest row);
- `merchant-features-v{N}` from gold/merchant_features (one record per (merchant, snapshot day), event time
  the day's start; online: each merchant's newest day).
Groups of other versions (v1) are never written: a v1 watermark means a full resync into the v2 groups.

- `plan_read`: incremental from the table's Change Data Feed after the group's watermark entry when it is
  still complete, else a resync of every row;
- the transforms: the rows to write, each flagged `online` when it is its card's (merchant's) newest row;
- `ingest`: one run through an `IngestionBackend` (backends/), moving the watermark last;
- `run_ingestion`: the job's body (backend, Spark session, ingest, metrics) for spark_jobs.job_run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from feature_store.backends import BackendOptions, IngestionBackend, open_backend
from feature_store.batch_writer import WriterOptions
from feature_store.change_feed import (
    ChangePlan,
    commit_timestamp,
    deleted_file_retention,
    latest_changes,
    plan_from_version,
)
from feature_store.definitions import TtlDuration, feature_group_name, merchant_feature_group_name
from feature_store.online_state_sync import OnlineStateOptions
from spark_jobs import exit_codes, lake
from spark_jobs.feature_registry import CARD, MERCHANT
from spark_jobs.job_log import log

DEAD_LETTER_EXIT_CODE = exit_codes.DEAD_LETTERS
METRIC_STAGE = "feature_store"
FAILURE_METRICS = {METRIC_STAGE: {"FeatureStoreRunFailed": 1}}


def write_dead_letters(storage, run_id: str, letters: list[dict]) -> str:
    """Append a run's dead letters to `_dead_letter/feature_store/<run_id>.jsonl` (one JSON object a line:
    batch_writer's dead letter plus the run id); returns the file's URI. dead_letters.py replays them."""
    uri = lake.dead_letter_file_uri(storage, run_id)
    storage.append_lines(uri, [json.dumps({**item, "run_id": run_id}, sort_keys=True) for item in letters])
    return uri


def pending_files(storage, run_ids: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The dead-letter files to replay: those of `run_ids` (each must exist), else every one not replayed."""
    prefix = lake.dead_letters_uri(storage)
    if run_ids:
        uris = [lake.dead_letter_file_uri(storage, run_id) for run_id in run_ids]
        missing = [uri for uri in uris if not storage.exists(uri)]
        if missing:
            raise FileNotFoundError(f"no dead-letter file {', '.join(missing)}")
        return uris
    return [
        item.uri
        for item in storage.list_files(prefix)
        if item.uri.endswith(".jsonl") and f"/{lake.REPLAYED_FOLDER}/" not in item.uri[len(prefix) :]
    ]


def read_dead_letters(storage, uris: list[str]) -> list[dict]:
    return [json.loads(line) for uri in uris for line in storage.read_text(uri).splitlines() if line.strip()]


@dataclass(frozen=True)
class IngestOptions:
    """What one ingestion writes, and how."""

    feature_group: str = field(default_factory=feature_group_name)  # the card group
    max_attempts: int = 8  # attempts per record before it is dead-lettered
    ttl: TtlDuration | None = None  # record-level TTL of online writes; None: the group's
    full_resync: bool = False  # ignore the watermark: every row of both tables at their latest version
    merchant_feature_group: str = field(default_factory=merchant_feature_group_name)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def group_of(self, entity: str) -> str:
        return self.merchant_feature_group if entity == MERCHANT else self.feature_group

    def writer_options(self, entity: str = CARD) -> WriterOptions:
        return WriterOptions(
            feature_group=self.group_of(entity), max_attempts=self.max_attempts, ttl=self.ttl, entity=entity
        )


@dataclass(frozen=True)
class GroupSource:
    """A group and the table it is written from: the table's lake path, its name in reasons and summaries, and
    the columns that identify one of its rows (one record)."""

    entity: str
    table: str  # lake.GOLD_TABLE or lake.MERCHANT_FEATURES_TABLE
    label: str  # "gold", "merchant_features"
    keys: tuple[str, ...]
    partition_column: str  # the newest row lies in this column's latest values: gold's dt, the snapshot's day
    order: tuple[str, ...]  # newest row first by these, descending


CARD_SOURCE = GroupSource(CARD, lake.GOLD_TABLE, "gold", ("event_id",), "dt", ("ts_us", "event_id"))
MERCHANT_SOURCE = GroupSource(
    MERCHANT, lake.MERCHANT_FEATURES_TABLE, "merchant_features", ("merchant_id", "day"), "day", ("day",)
)
SOURCES = (CARD_SOURCE, MERCHANT_SOURCE)


def group_watermark(watermark: dict | None, feature_group: str) -> dict | None:
    """The watermark entry of one group: {"version", "commit_timestamp", …} or None.

    The file holds `groups` (group name → entry). An older file (feature set v1) held one group:
    `feature_group` and `gold_version`; it still counts for that group (so a v1 watermark is an entry of
    card-features-v1 only, and the v2 groups start with a full load)."""
    if watermark is None:
        return None
    if "groups" in watermark:
        return (watermark.get("groups") or {}).get(feature_group)
    if watermark.get("feature_group") == feature_group and watermark.get("gold_version") is not None:
        return {"version": int(watermark["gold_version"]), "commit_timestamp": watermark.get("gold_commit_timestamp")}
    return None


# Deciding what to read -----------------------------------------------------------------------------------


ReadPlan = ChangePlan  # the plan's modes and reasons are change_feed's


def plan_read(
    storage,
    gold_uri: str,
    watermark: dict | None,
    *,
    feature_group: str,
    current_version: int,
    retention: timedelta,
    now: datetime,
    force_resync: bool = False,
    table: str = "gold",
) -> ReadPlan:
    """Incremental when the table's (`gold_uri`, named `table` in reasons) Change Data Feed after the group's
    watermark entry is still complete, else a resync."""
    if force_resync:
        return ReadPlan("resync", "requested with --full-resync", until_version=current_version)
    if watermark is None:
        return ReadPlan("initial", f"no watermark: every {table} row is written", until_version=current_version)
    entry = group_watermark(watermark, feature_group)
    if entry is None:
        held = sorted(watermark.get("groups") or {}) or [watermark.get("feature_group")]
        return ReadPlan(
            "initial",
            f"the watermark is for {', '.join(repr(name) for name in held)}, not {feature_group!r}: every "
            f"{table} row is written to the new group",
            until_version=current_version,
        )
    return plan_from_version(
        storage,
        gold_uri,
        table=table,
        done=int(entry["version"]),
        current_version=current_version,
        retention=retention,
        now=now,
    )


# Reading gold (transforms) ------------------------------------------------------------------------------


def output_columns() -> list[str]:
    from spark_jobs.feature_registry import CARD_FEATURE_NAMES

    return ["card_id", "event_id", "ts_us", "dt", *CARD_FEATURE_NAMES, "online"]


def merchant_output_columns() -> list[str]:
    from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES

    return ["merchant_id", "day", "snapshot_start_us", *MERCHANT_FEATURE_NAMES, "online"]


def newest_key():
    from pyspark.sql import functions as F

    return F.struct(F.col("ts_us"), F.col("event_id"))


def with_online_flag(changed, gold_snapshot):
    """`changed` gold rows plus `online`: the row is its card's newest row in `gold_snapshot` (greatest
    (ts_us, event_id)). Only the snapshot's rows of the changed cards from their earliest changed `dt` on are
    read: a newer row cannot lie in an earlier partition."""
    from pyspark.sql import functions as F

    cards = changed.groupBy("card_id").agg(F.min("dt").alias("_from_dt"))
    newest = (
        gold_snapshot.join(F.broadcast(cards), "card_id")
        .where(F.col("dt") >= F.col("_from_dt"))
        .groupBy("card_id")
        .agg(F.max(newest_key()).alias("_newest"))
    )
    return (
        changed.join(newest, "card_id", "left")
        .withColumn("online", F.coalesce(newest_key() == F.col("_newest"), F.lit(False)))
        .select(*output_columns())
    )


def all_rows_with_online_flag(gold_snapshot):
    """Every row of the snapshot, `online` on each card's newest row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    newest_first = Window.partitionBy("card_id").orderBy(F.col("ts_us").desc(), F.col("event_id").desc())
    return gold_snapshot.withColumn("online", F.row_number().over(newest_first) == 1).select(*output_columns())


def merchant_rows_with_online_flag(changed, snapshot):
    """`changed` merchant snapshot rows plus `online`: the row is its merchant's newest day in `snapshot`."""
    from pyspark.sql import functions as F

    merchants = changed.groupBy("merchant_id").agg(F.min("day").alias("_from_day"))
    newest = (
        snapshot.join(F.broadcast(merchants), "merchant_id")
        .where(F.col("day") >= F.col("_from_day"))
        .groupBy("merchant_id")
        .agg(F.max("day").alias("_newest_day"))
    )
    return (
        changed.join(newest, "merchant_id", "left")
        .withColumn("online", F.coalesce(F.col("day") == F.col("_newest_day"), F.lit(False)))
        .select(*merchant_output_columns())
    )


def all_merchant_rows_with_online_flag(snapshot):
    """Every merchant snapshot row, `online` on each merchant's newest day (the record serving reads)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    newest_first = Window.partitionBy("merchant_id").orderBy(F.col("day").desc())
    return snapshot.withColumn("online", F.row_number().over(newest_first) == 1).select(*merchant_output_columns())


def merchant_rows_to_write(spark, table_path: str, plan: ReadPlan):
    """The merchant snapshot rows to write for a plan (+ `online`), reading gold/merchant_features at
    `until_version`: every row (initial, resync) or the Change Data Feed's changed (merchant, day) rows."""
    from pyspark.sql import functions as F

    snapshot = spark.read.format("delta").option("versionAsOf", plan.until_version).load(table_path)
    if plan.mode in ("initial", "resync"):
        return all_merchant_rows_with_online_flag(snapshot)
    change_feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", plan.since_version)
        .option("endingVersion", plan.until_version)
        .load(table_path)
    )
    changed = latest_changes(change_feed, MERCHANT_SOURCE.keys)
    first_day = changed.agg(F.min("day")).collect()[0][0]
    if first_day is None:
        return changed.withColumn("online", F.lit(False)).select(*merchant_output_columns())
    return merchant_rows_with_online_flag(changed, snapshot.where(F.col("day") >= F.lit(first_day)))


def rows_to_write(spark, gold_path: str, plan: ReadPlan):
    """The DataFrame of rows to write for a plan (gold columns + `online`), reading gold at `until_version`."""
    from pyspark.sql import functions as F

    snapshot = spark.read.format("delta").option("versionAsOf", plan.until_version).load(gold_path)
    if plan.mode in ("initial", "resync"):
        return all_rows_with_online_flag(snapshot)
    change_feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", plan.since_version)
        .option("endingVersion", plan.until_version)
        .load(gold_path)
    )
    changed = latest_changes(change_feed)
    first_day = changed.agg(F.min("dt")).collect()[0][0]
    if first_day is None:
        return changed.withColumn("online", F.lit(False)).select(*output_columns())
    return with_online_flag(changed, snapshot.where(F.col("dt") >= F.lit(first_day)))


class FeatureGroupNotReady(RuntimeError):
    """The group to write is missing, not Created or lacks registry features: register it first (the job exits 5,
    a failed precondition, with this message instead of a traceback)."""


def check_group(described: dict | None, name: str) -> None:
    """Fail before writing anything when the group is missing, not ready or lacks registry features."""
    from feature_store.definitions import entity_of_group, group_spec

    hint = "run `cardfeat register` (feature_store/register_feature_groups.py) first"
    if described is None:
        raise FeatureGroupNotReady(f"feature group {name} does not exist: {hint}")
    if described.get("FeatureGroupStatus") != "Created":
        raise FeatureGroupNotReady(f"feature group {name} is {described.get('FeatureGroupStatus')}, not Created")
    try:
        wanted = group_spec(entity=entity_of_group(name))
    except ValueError:
        return  # a group of another name: its definitions are its owner's
    defined = {item["FeatureName"] for item in described["FeatureDefinitions"]}
    missing = [feature for feature, _ in wanted.definitions if feature not in defined]
    if missing and name == wanted.name:
        raise FeatureGroupNotReady(f"feature group {name} lacks {', '.join(missing)}: {hint}")


def ingest(
    spark, storage, backend: IngestionBackend, report, options: IngestOptions, *, now: datetime | None = None
) -> dict:
    """One ingestion run of both groups; returns its summary (also in report.details["feature_store"]): the
    card group's plan and writes at the top level (mode, reason, gold_version_from/to, writes), the merchant
    group's under `merchant`."""
    from feature_store.batch_writer import WriteStats
    from spark_jobs.delta_tables import table_exists
    from spark_jobs.fault_injection import fail_point

    now = now or datetime.now(UTC)
    summary: dict = {"feature_group": options.feature_group, "backend": backend.name}
    report.details["feature_store"] = summary
    # A missing change file must fail the read, never be skipped.
    spark.conf.set("spark.sql.files.ignoreMissingFiles", "false")
    if not table_exists(spark, lake.table_path(storage, lake.GOLD_TABLE)):
        summary.update(mode="unchanged", reason="no gold table yet")
        return summary
    for source in SOURCES:  # both groups must be registered before anything is written
        check_group(backend.describe_group(options.group_of(source.entity)), options.group_of(source.entity))
    watermark_uri = lake.feature_store_watermark_uri(storage)
    # Create-only commits (lake.state_commit_log): a second writer from the same watermark fails (exit 5).
    watermark_log = lake.state_commit_log(storage, watermark_uri, what="feature store watermark")
    watermark = watermark_log.latest()
    results = {
        source.entity: _ingest_group(spark, storage, backend, report, options, source, watermark, now)
        for source in SOURCES
    }
    card, merchant = results[CARD], results[MERCHANT]
    dead_letters = card.stats.dead_letters + merchant.stats.dead_letters
    if dead_letters:
        summary["dead_letter_file"] = write_dead_letters(storage, report.run_id, dead_letters)
    published_day = publish_merchant_day(spark, storage, backend, options, merchant)
    summary.update(
        mode=card.plan.mode,
        reason=card.plan.reason,
        gold_version_from=card.version_from,
        gold_version_to=card.version_to,
        writes=card.writes(),
        merchant={
            "feature_group": options.merchant_feature_group,
            "mode": merchant.plan.mode,
            "reason": merchant.plan.reason,
            "version_from": merchant.version_from,
            "version_to": merchant.version_to,
            "writes": merchant.writes(),
            "published_day": None if published_day is None else published_day.isoformat(),
        },
    )
    fail_point("before_feature_store_watermark")
    if any(result.plan.mode != "unchanged" for result in results.values()):
        entries = {options.group_of(entity): result.entry for entity, result in results.items() if result.entry}
        watermark_log.commit(
            {
                "sequence": watermark_log.sequence(watermark) + 1,
                "groups": entries,
                "run_id": report.run_id,
                "mode": card.plan.mode,
            },
            run_id=report.run_id,
        )
    stats = WriteStats()
    stats.merge(card.stats)
    stats.merge(merchant.stats)
    report.add(
        records=stats.records,
        online_records=stats.online_records,
        offline_only_records=stats.offline_only_records,
        written=stats.written,
        online_corrections=stats.online_corrections,
        online_skipped_older=stats.online_skipped_older,
        online_restored=stats.online_restored,
        dead_letters=len(dead_letters),
        retries=stats.retries,
        write_calls=stats.calls.get("BatchWriteRecord", 0),
        merchant_records=merchant.stats.records,
    )
    return summary


def publish_merchant_day(spark, storage, backend, options: IngestOptions, merchant: GroupRun):
    """Write the merchant group's published-day marker (merchant_lookup.PUBLISHED_MARKER_ID, event time = the
    start of the newest day in gold/merchant_features at the version just ingested) to the ONLINE store only
    (the offline store, so training, never sees it); returns that day, None when nothing was published.

    Serving flags a request stale unless its day <= this day, so the marker moves only when every merchant row
    reached the online store: not while any merchant-group dead letter is pending (this run's or an earlier
    run's not yet replayed: P stays where it was and the new days are served flagged until the first ingestion
    run after the replay). It never moves back (the online store keeps the newer event time)."""
    from pyspark.sql import functions as F

    from feature_store.merchant_lookup import published_marker_record

    if merchant.version_to is None or merchant.stats.dead_letters:
        return None
    pending = read_dead_letters(storage, pending_files(storage))
    if any(letter.get("feature_group") == options.merchant_feature_group for letter in pending):
        log.warning("feature store: merchant dead letters are pending: the published day does not move")
        return None
    table_path = lake.table_path(storage, lake.MERCHANT_FEATURES_TABLE)
    snapshot = spark.read.format("delta").option("versionAsOf", merchant.version_to).load(table_path)
    newest_day = snapshot.agg(F.max("day")).collect()[0][0]
    if newest_day is None:
        return None
    backend.put_online_only(options.merchant_feature_group, published_marker_record(newest_day))
    log.info("feature store: %s: published day %s", options.merchant_feature_group, newest_day)
    return newest_day


@dataclass
class GroupRun:
    """One group's part of a run: its plan, the watermark entry to commit (None: none yet) and the writes."""

    plan: ReadPlan
    entry: dict | None
    version_from: int | None
    version_to: int | None
    stats: object

    def writes(self) -> dict:
        counts = self.stats.as_dict()
        counts.pop("dead_letters")
        return counts


def _ingest_group(spark, storage, backend, report, options: IngestOptions, source: GroupSource, watermark, now):
    """Plan and write one group from its table; the watermark entry it may commit."""
    from feature_store.batch_writer import WriteStats
    from spark_jobs.delta_tables import table_exists, table_version

    group = options.group_of(source.entity)
    table_uri = lake.table_uri(storage, source.table)
    table_path = lake.table_path(storage, source.table)
    previous = group_watermark(watermark, group)
    version_from = None if previous is None else previous.get("version")
    if not table_exists(spark, table_path):
        plan = ReadPlan("unchanged", f"no {source.label} table yet")
        return GroupRun(plan, previous, version_from, None, WriteStats())
    with report.step(f"plan_{source.label}" if source.entity == MERCHANT else "plan"):
        current = table_version(spark, table_path)
        plan = plan_read(
            storage,
            table_uri,
            watermark,
            feature_group=group,
            current_version=current,
            retention=deleted_file_retention(spark, table_path),
            now=now,
            force_resync=options.full_resync,
            table=source.label,
        )
    log.info("feature store: %s: %s: %s", group, plan.mode, plan.reason)
    stats = WriteStats()
    if plan.mode == "unchanged":
        return GroupRun(plan, previous, version_from, current, stats)
    rows = (
        merchant_rows_to_write(spark, table_path, plan)
        if source.entity == MERCHANT
        else rows_to_write(spark, table_path, plan)
    )
    with report.step(f"write_{source.label}" if source.entity == MERCHANT else "write"):
        try:
            stats = backend.write(spark, rows, options.writer_options(source.entity))
        except Exception as error:
            if _missing_files(error):
                raise RuntimeError(
                    f"{source.label}'s change data for versions {plan.since_version}..{plan.until_version} has "
                    "missing files (vacuumed?); nothing was skipped and the watermark did not move. Rerun with "
                    "--full-resync to rewrite every row."
                ) from error
            raise
    committed = commit_timestamp(storage, table_uri, current)
    entry = {
        "table": source.table,
        "version": current,
        "commit_timestamp": committed.isoformat() if committed else None,
        "mode": plan.mode,
    }
    return GroupRun(plan, entry, version_from, current, stats)


def _missing_files(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}"
    return any(marker in text for marker in ("FileNotFound", "does not exist", "FILE_NOT_EXIST", "ChangeDataFileNot"))


def run_ingestion(
    storage,
    report,
    options: IngestOptions,
    backend_options: BackendOptions,
    *,
    endpoint_url: str | None = None,
    online_state: OnlineStateOptions | None = None,
):
    """The ingestion job's body: open the backend, ingest, close, then sync the online state with silver
    (feature_store/online_state_sync.py) when given; the metrics, exit code 3 on dead letters."""
    from spark_jobs.job_run import JobResult
    from spark_jobs.session import build_spark_session

    backend = open_backend(backend_options, storage.root)
    try:
        spark = build_spark_session(f"ingest_features-{backend_options.backend}", s3_endpoint_url=endpoint_url)
        ingest(spark, storage, backend, report, options)
    finally:
        backend.close()
    if online_state is not None:
        from feature_store.online_state_sync import run_sync

        run_sync(spark, storage, report, online_state)
    counts = report.counts
    dead = counts.get("dead_letters", 0)
    metrics = {
        METRIC_STAGE: {
            "FeatureStoreRecords": counts.get("records", 0),
            "FeatureStoreOnlineRecords": counts.get("online_records", 0),
            "FeatureStoreOnlineCorrections": counts.get("online_corrections", 0),
            "FeatureStoreDeadLetters": dead,
            "FeatureStoreWriteCalls": counts.get("write_calls", 0),
            "FeatureStoreRetries": counts.get("retries", 0),
        }
    }
    if not dead:
        return JobResult(metrics=metrics)
    note = (
        f"{dead} record(s) dead-lettered to {report.details['feature_store'].get('dead_letter_file')}; "
        "replay them with scripts/replay_dead_letters.py"
    )
    return JobResult(status="dead_lettered", metrics=metrics, exit_code=DEAD_LETTER_EXIT_CODE, note=note)
