"""Ingestion of gold into the Feature Store (the library behind feature_store/ingest_features.py; see its
docstring and docs/feature_store.md for what a run does).

- `plan_read`: incremental from gold's Change Data Feed after the watermark when it is still complete, else
  a resync of every gold row;
- the transforms: the rows to write, each flagged `online` when it is its card's newest gold row;
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
from feature_store.definitions import TtlDuration, feature_group_name
from feature_store.online_state_sync import OnlineStateOptions
from spark_jobs import exit_codes, lake
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


@dataclass(frozen=True)
class IngestOptions:
    """What one ingestion writes, and how."""

    feature_group: str = field(default_factory=feature_group_name)
    max_attempts: int = 8  # attempts per record before it is dead-lettered
    ttl: TtlDuration | None = None  # record-level TTL of online writes; None: the group's
    full_resync: bool = False  # ignore the watermark: every gold row at the latest version

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def writer_options(self) -> WriterOptions:
        return WriterOptions(feature_group=self.feature_group, max_attempts=self.max_attempts, ttl=self.ttl)


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
) -> ReadPlan:
    """Incremental when the Change Data Feed after the watermark is still complete, else a resync."""
    if force_resync:
        return ReadPlan("resync", "requested with --full-resync", until_version=current_version)
    if watermark is None:
        return ReadPlan("initial", "no watermark: every gold row is written", until_version=current_version)
    if watermark.get("feature_group") != feature_group:
        return ReadPlan(
            "initial",
            f"the watermark is for {watermark.get('feature_group')!r}, not {feature_group!r}: every gold row "
            "is written to the new group",
            until_version=current_version,
        )
    return plan_from_version(
        storage,
        gold_uri,
        table="gold",
        done=int(watermark["gold_version"]),
        current_version=current_version,
        retention=retention,
        now=now,
    )


# Reading gold (transforms) ------------------------------------------------------------------------------


def output_columns() -> list[str]:
    from spark_jobs.feature_registry import FEATURE_NAMES

    return ["card_id", "event_id", "ts_us", "dt", *FEATURE_NAMES, "online"]


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
    from feature_store.definitions import group_spec

    hint = "run `cardfeat register` (feature_store/register_feature_groups.py) first"
    if described is None:
        raise FeatureGroupNotReady(f"feature group {name} does not exist: {hint}")
    if described.get("FeatureGroupStatus") != "Created":
        raise FeatureGroupNotReady(f"feature group {name} is {described.get('FeatureGroupStatus')}, not Created")
    defined = {item["FeatureName"] for item in described["FeatureDefinitions"]}
    missing = [feature for feature, _ in group_spec().definitions if feature not in defined]
    if missing and name == group_spec().name:
        raise FeatureGroupNotReady(f"feature group {name} lacks {', '.join(missing)}: {hint}")


def ingest(
    spark, storage, backend: IngestionBackend, report, options: IngestOptions, *, now: datetime | None = None
) -> dict:
    """One ingestion run; returns its summary (also in report.details["feature_store"])."""
    from feature_store.batch_writer import WriteStats
    from spark_jobs.delta_tables import table_exists, table_version
    from spark_jobs.fault_injection import fail_point

    now = now or datetime.now(UTC)
    gold_uri = lake.table_uri(storage, lake.GOLD_TABLE)
    gold_path = lake.table_path(storage, lake.GOLD_TABLE)
    summary: dict = {"feature_group": options.feature_group, "backend": backend.name}
    report.details["feature_store"] = summary
    # A missing change file must fail the read, never be skipped.
    spark.conf.set("spark.sql.files.ignoreMissingFiles", "false")
    if not table_exists(spark, gold_path):
        summary.update(mode="unchanged", reason="no gold table yet")
        return summary
    check_group(backend.describe_group(options.feature_group), options.feature_group)
    watermark_uri = lake.feature_store_watermark_uri(storage)
    # Create-only commits (lake.state_commit_log): a second writer from the same watermark fails (exit 5).
    watermark_log = lake.state_commit_log(storage, watermark_uri, what="feature store watermark")
    watermark = watermark_log.latest()
    with report.step("plan"):
        current = table_version(spark, gold_path)
        plan = plan_read(
            storage,
            gold_uri,
            watermark,
            feature_group=options.feature_group,
            current_version=current,
            retention=deleted_file_retention(spark, gold_path),
            now=now,
            force_resync=options.full_resync,
        )
    summary.update(
        mode=plan.mode,
        reason=plan.reason,
        gold_version_from=None if watermark is None else watermark.get("gold_version"),
        gold_version_to=current,
    )
    log.info("feature store: %s: %s", plan.mode, plan.reason)
    stats = WriteStats()
    if plan.mode != "unchanged":
        with report.step("write"):
            try:
                stats = backend.write(spark, rows_to_write(spark, gold_path, plan), options.writer_options())
            except Exception as error:
                if _missing_files(error):
                    raise RuntimeError(
                        f"gold's change data for versions {plan.since_version}..{plan.until_version} has missing "
                        "files (vacuumed?); nothing was skipped and the watermark did not move. Rerun with "
                        "--full-resync to rewrite every gold row."
                    ) from error
                raise
    dead_letters = stats.dead_letters
    if dead_letters:
        summary["dead_letter_file"] = write_dead_letters(storage, report.run_id, dead_letters)
    fail_point("before_feature_store_watermark")
    if plan.mode != "unchanged":
        committed = commit_timestamp(storage, gold_uri, current)
        watermark_log.commit(
            {
                "sequence": watermark_log.sequence(watermark) + 1,
                "feature_group": options.feature_group,
                "gold_version": current,
                "gold_commit_timestamp": committed.isoformat() if committed else None,
                "run_id": report.run_id,
                "mode": plan.mode,
            },
            run_id=report.run_id,
        )
    counts = stats.as_dict()
    counts.pop("dead_letters")
    summary["writes"] = counts
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
    )
    return summary


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
