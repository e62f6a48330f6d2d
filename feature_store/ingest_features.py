"""Gold → SageMaker Feature Store (or the local backend): online = each card's newest row, offline = history.

    spark-submit --master 'local[*]' feature_store/ingest_features.py --lake-root ./lake
    (EMR Serverless: --backend sagemaker --lake-root s3://bucket/prefix --region eu-west-1)

Each run:
1. Reads the watermark `<lake-root>/_state/feature_store_ingest.json` (the group and the last gold version
   fully ingested) and gold's latest version.
2. Decides whether gold's Change Data Feed since the watermark is still readable: the first commit to read
   must still be in `_delta_log`, and younger than the table's `delta.deletedFileRetentionDuration`
   (default 1 week; VACUUM may have deleted the change files of older commits). If not, or without a
   watermark, or with a watermark of another group, it resyncs: every gold row at the latest version.
   The run report says which and why. Missing files are never ignored: a read that still meets one fails.
3. Every changed row goes to the offline store; a card's newest gold row at the version read (greatest
   (ts_us, event_id)), when it is among the changed rows, also to the online store, with the late-data
   correction (see feature_store/batch_writer.py and docs/feature_store.md).
4. Writes dead letters to `<lake-root>/_dead_letter/feature_store/<run_id>.jsonl`, then moves the watermark:
   only when every record was written or dead-lettered. Any dead letter makes the exit code 3 and shows
   in the EMF metric FeatureStoreDeadLetters (namespace CardFeatures, Stage=feature_store).

The sagemaker backend writes from the executors (one runtime client per partition, at most
--max-concurrency partitions at once); the local backend writes from the driver into SQLite and Delta.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.definitions import feature_group_name
from feature_store.register_feature_groups import add_ttl_options, default_online_store_path, ttl_from_args
from spark_jobs.job_options import add_lake_options

WATERMARK = "_state/feature_store_ingest.json"
DEAD_LETTERS = "_dead_letter/feature_store"
DEAD_LETTER_EXIT_CODE = 3
METRIC_STAGE = "feature_store"
DEFAULT_DELETED_FILE_RETENTION = "interval 1 week"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ingest_features.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend",
        choices=("local", "sagemaker"),
        default="local",
        help="local: SQLite online store + Delta offline store under the lake; sagemaker: SageMaker Feature "
        "Store (the state machines pass it) (default: local)",
    )
    add_lake_options(parser)
    parser.add_argument(
        "--online-store-path",
        default=None,
        help="local backend: SQLite file of the online store (default: <lake-root>/feature_store/online.db; "
        "required for an s3:// lake)",
    )
    parser.add_argument(
        "--feature-group",
        default=feature_group_name(),
        help=f"feature group to write (default: {feature_group_name()}, from the registry's feature set version)",
    )
    parser.add_argument("--region", default=None, help="sagemaker backend: AWS region (default: AWS_REGION)")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=4,
        help="sagemaker backend: partitions (each one runtime client, one request at a time) written at once "
        "(default: 4)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=8,
        help="attempts per record (throttling, 5xx, unprocessed entries) before it is dead-lettered (default: 8)",
    )
    add_ttl_options(parser, what="record-level TTL of online writes, overriding the group's")
    parser.add_argument(
        "--full-resync",
        action="store_true",
        help="ignore the watermark and write every gold row at the latest version (newest per card online)",
    )
    args = parser.parse_args(argv)
    args.ttl = ttl_from_args(parser, args)
    if args.max_concurrency < 1:
        parser.error("--max-concurrency must be >= 1")
    if args.max_attempts < 1:
        parser.error("--max-attempts must be >= 1")
    args.online_store_path = args.online_store_path or None  # the state machines pass "" on AWS
    if args.backend == "local" and args.online_store_path is None:
        args.online_store_path = default_online_store_path(args.lake_root)
        if args.online_store_path is None:
            parser.error("--online-store-path is required for the local backend when --lake-root is on S3")
    return args


# Deciding what to read -----------------------------------------------------------------------------------

_INTERVAL_UNITS = {
    "microsecond": timedelta(microseconds=1),
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}


def parse_interval(text: str) -> timedelta:
    """A Delta table-property interval (`interval 1 week`, `interval 7 days 12 hours`, `168 hours`)."""
    words = text.strip().lower().split()
    if words and words[0] == "interval":
        words = words[1:]
    if not words or len(words) % 2:
        raise ValueError(f"cannot parse the interval {text!r}")
    total = timedelta(0)
    for amount, word in zip(words[::2], words[1::2], strict=True):
        unit = word[:-1] if word.endswith("s") else word
        if unit not in _INTERVAL_UNITS or not re.fullmatch(r"\d+", amount):
            raise ValueError(f"cannot parse the interval {text!r}")
        total += int(amount) * _INTERVAL_UNITS[unit]
    return total


def commit_timestamp(storage, table_uri: str, version: int) -> datetime | None:
    """The commitInfo timestamp of one Delta version, None when its log entry is gone."""
    uri = f"{table_uri.rstrip('/')}/_delta_log/{version:020d}.json"
    if not storage.exists(uri):
        return None
    for line in storage.read_text(uri).splitlines():
        if '"commitInfo"' in line:
            info = json.loads(line)["commitInfo"]
            moment = info.get("inCommitTimestamp") or info.get("timestamp")
            if moment is not None:
                return datetime.fromtimestamp(int(moment) / 1000, tz=UTC)
    raise RuntimeError(f"{uri} has no commitInfo timestamp")


@dataclass(frozen=True)
class ReadPlan:
    mode: str  # initial | incremental | resync | unchanged
    reason: str
    since_version: int | None = None  # first version read (incremental)
    until_version: int | None = None


def plan_read(  # noqa: PLR0911 - one return per documented outcome
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
    done = int(watermark["gold_version"])
    if done == current_version:
        return ReadPlan("unchanged", "gold unchanged since the watermark", until_version=current_version)
    if done > current_version:
        return ReadPlan(
            "resync",
            f"the watermark (gold version {done}) is ahead of gold (version {current_version}): gold was recreated",
            until_version=current_version,
        )
    first = done + 1
    committed = commit_timestamp(storage, gold_uri, first)
    if committed is None:
        return ReadPlan(
            "resync",
            f"gold version {first} (the first after the watermark) is no longer in _delta_log: the change "
            "history was cleaned up",
            until_version=current_version,
        )
    if committed < now - retention:
        return ReadPlan(
            "resync",
            f"gold version {first} was committed at {committed.isoformat()}, longer ago than the table's "
            f"deleted-file retention ({retention}): VACUUM may have deleted its change files",
            until_version=current_version,
        )
    return ReadPlan(
        "incremental",
        f"gold versions {first}..{current_version} from the Change Data Feed",
        since_version=first,
        until_version=current_version,
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


def latest_changes(change_feed):
    """The CDF's inserts and post-images, one row per event: the one of its latest commit."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest_first = Window.partitionBy("event_id").orderBy(F.col("_commit_version").desc())
    return (
        change_feed.where(F.col("_change_type").isin("insert", "update_postimage"))
        .withColumn("_rank", F.row_number().over(latest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank", "_change_type", "_commit_version", "_commit_timestamp")
    )


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


# Backends --------------------------------------------------------------------------------------------------


class LocalBackend:
    """SQLite online store + Delta offline store; writes from the driver."""

    def __init__(self, online_store_path: str, lake_root_uri: str, *, clock=None) -> None:
        from feature_store.local_backend import LocalFeatureStoreRuntime, LocalStore, utc_clock

        self.store = LocalStore(online_store_path)
        self.runtime = LocalFeatureStoreRuntime(self.store, clock=clock or utc_clock)
        self.lake_root_uri = lake_root_uri

    def describe_group(self, name: str) -> dict | None:
        return self.store.describe_group(name)

    FLUSH_EVERY_ROWS = 100_000  # offline rows buffered in the driver before an append to Delta

    def write(self, spark, frame, options):
        from itertools import islice

        from feature_store.batch_writer import WriteStats, write_rows

        total = WriteStats()
        rows = (row.asDict() for row in frame.toLocalIterator())
        while batch := list(islice(rows, self.FLUSH_EVERY_ROWS)):
            total.merge(write_rows(self.runtime, batch, options))
            self.runtime.flush_offline(spark, self.lake_root_uri)
        return total

    def close(self) -> None:
        self.store.close()


class SageMakerBackend:
    """SageMaker Feature Store; writes from the executors."""

    def __init__(self, region: str | None, max_concurrency: int, *, client_factory=None) -> None:
        from feature_store.sagemaker_backend import RuntimeClientFactory, default_region

        self.region = default_region(region)
        self.max_concurrency = max_concurrency
        self.client_factory = client_factory or RuntimeClientFactory(self.region)

    def describe_group(self, name: str) -> dict | None:
        from feature_store.sagemaker_backend import describe_group

        return describe_group(self.region, name)

    def write(self, spark, frame, options):
        from feature_store.sagemaker_backend import write_on_executors

        return write_on_executors(frame, options, self.client_factory, max_concurrency=self.max_concurrency)

    def close(self) -> None:
        return None


def check_group(described: dict | None, name: str) -> None:
    """Fail before writing anything when the group is missing, not ready or lacks registry features."""
    from feature_store.definitions import group_spec

    hint = "run feature_store/register_feature_groups.py first"
    if described is None:
        raise RuntimeError(f"feature group {name} does not exist: {hint}")
    if described.get("FeatureGroupStatus") != "Created":
        raise RuntimeError(f"feature group {name} is {described.get('FeatureGroupStatus')}, not Created")
    defined = {item["FeatureName"] for item in described["FeatureDefinitions"]}
    missing = [feature for feature, _ in group_spec().definitions if feature not in defined]
    if missing and name == group_spec().name:
        raise RuntimeError(f"feature group {name} lacks {', '.join(missing)}: {hint}")


# The run ----------------------------------------------------------------------------------------------------


def deleted_file_retention(spark, gold_path: str) -> timedelta:
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{gold_path}`").collect()[0]["properties"] or {}
    return parse_interval(properties.get("delta.deletedFileRetentionDuration", DEFAULT_DELETED_FILE_RETENTION))


def ingest(spark, storage, backend, report, args: argparse.Namespace, *, now: datetime | None = None) -> dict:
    """One ingestion run; returns its summary (also in report.details["feature_store"])."""
    from feature_store.batch_writer import WriterOptions, WriteStats
    from spark_jobs.delta_tables import table_exists, table_version
    from spark_jobs.fault_injection import fail_point
    from spark_jobs.gold import GOLD_TABLE
    from spark_jobs.storage import spark_path

    now = now or datetime.now(UTC)
    gold_uri = storage.uri(GOLD_TABLE)
    gold_path = spark_path(gold_uri)
    summary: dict = {"feature_group": args.feature_group, "backend": args.backend}
    report.details["feature_store"] = summary
    # A missing change file must fail the read, never be skipped.
    spark.conf.set("spark.sql.files.ignoreMissingFiles", "false")
    if not table_exists(spark, gold_path):
        summary.update(mode="unchanged", reason="no gold table yet")
        return summary
    check_group(backend.describe_group(args.feature_group), args.feature_group)
    watermark_uri = storage.uri(WATERMARK)
    watermark = storage.read_json(watermark_uri)
    with report.step("plan"):
        current = table_version(spark, gold_path)
        plan = plan_read(
            storage,
            gold_uri,
            watermark,
            feature_group=args.feature_group,
            current_version=current,
            retention=deleted_file_retention(spark, gold_path),
            now=now,
            force_resync=args.full_resync,
        )
    summary.update(
        mode=plan.mode,
        reason=plan.reason,
        gold_version_from=None if watermark is None else watermark.get("gold_version"),
        gold_version_to=current,
    )
    print(f"[{report.run_id}] feature store: {plan.mode}: {plan.reason}", flush=True)
    stats = WriteStats()
    if plan.mode != "unchanged":
        options = WriterOptions(feature_group=args.feature_group, max_attempts=args.max_attempts, ttl=args.ttl)
        with report.step("write"):
            try:
                stats = backend.write(spark, rows_to_write(spark, gold_path, plan), options)
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
        uri = storage.uri(DEAD_LETTERS, f"{report.run_id}.jsonl")
        storage.append_lines(
            uri, [json.dumps({**item, "run_id": report.run_id}, sort_keys=True) for item in dead_letters]
        )
        summary["dead_letter_file"] = uri
    fail_point("before_feature_store_watermark")
    if plan.mode != "unchanged":
        committed = commit_timestamp(storage, gold_uri, current)
        storage.write_json(
            watermark_uri,
            {
                "feature_group": args.feature_group,
                "gold_version": current,
                "gold_commit_timestamp": committed.isoformat() if committed else None,
                "run_id": report.run_id,
                "mode": plan.mode,
            },
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
        dead_letters=len(dead_letters),
        retries=stats.retries,
        write_calls=stats.calls.get("BatchWriteRecord", 0),
    )
    return summary


def _missing_files(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}"
    return any(marker in text for marker in ("FileNotFound", "does not exist", "FILE_NOT_EXIST", "ChangeDataFileNot"))


def open_backend(args: argparse.Namespace, storage):
    if args.backend == "local":
        return LocalBackend(args.online_store_path, storage.root)
    return SageMakerBackend(args.region, args.max_concurrency)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from spark_jobs.run_report import RunReport
    from spark_jobs.session import build_spark_session
    from spark_jobs.storage import open_lake

    storage = open_lake(args.lake_root, endpoint_url=args.endpoint_url)
    report = RunReport(storage, job="ingest_features", mode=args.backend)
    report.arguments = {key: str(value) for key, value in vars(args).items() if value is not None}
    backend = None
    try:
        backend = open_backend(args, storage)
        spark = build_spark_session(f"ingest_features-{args.backend}", s3_endpoint_url=args.endpoint_url)
        ingest(spark, storage, backend, report, args)
    except Exception as error:
        report.finish("failed", error=error, metrics={METRIC_STAGE: {"FeatureStoreRunFailed": 1}})
        raise
    finally:
        if backend is not None:
            backend.close()
    counts = report.counts
    dead = counts.get("dead_letters", 0)
    report.finish(
        "dead_lettered" if dead else "succeeded",
        metrics={
            METRIC_STAGE: {
                "FeatureStoreRecords": counts.get("records", 0),
                "FeatureStoreOnlineRecords": counts.get("online_records", 0),
                "FeatureStoreOnlineCorrections": counts.get("online_corrections", 0),
                "FeatureStoreDeadLetters": dead,
                "FeatureStoreWriteCalls": counts.get("write_calls", 0),
                "FeatureStoreRetries": counts.get("retries", 0),
            }
        },
    )
    if dead:
        print(
            f"{dead} record(s) dead-lettered to {report.details['feature_store'].get('dead_letter_file')}; "
            "replay them with scripts/replay_dead_letters.py",
            file=sys.stderr,
        )
        return DEAD_LETTER_EXIT_CODE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
