"""Delta Change Data Feed helpers shared by the readers of gold and silver's changes (feature store
ingestion, online state sync): when a commit happened, whether its change files can still be there, and the
latest post-image of each event."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spark_jobs.lake import delta_commit_uri

DEFAULT_DELETED_FILE_RETENTION = "interval 1 week"

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
    """The commitInfo timestamp of one Delta version (the table given by its canonical URI), None when its
    log entry is gone."""
    uri = delta_commit_uri(table_uri, version)
    if not storage.exists(uri):
        return None
    for line in storage.read_text(uri).splitlines():
        if '"commitInfo"' in line:
            info = json.loads(line)["commitInfo"]
            moment = info.get("inCommitTimestamp") or info.get("timestamp")
            if moment is not None:
                return datetime.fromtimestamp(int(moment) / 1000, tz=UTC)
    raise RuntimeError(f"{uri} has no commitInfo timestamp")


def latest_changes(change_feed, keys: tuple[str, ...] = ("event_id",)):
    """The CDF's inserts and post-images, one row per key (an event; a merchant snapshot's (merchant_id,
    day)): the one of its latest commit."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest_first = Window.partitionBy(*keys).orderBy(F.col("_commit_version").desc())
    return (
        change_feed.where(F.col("_change_type").isin("insert", "update_postimage"))
        .withColumn("_rank", F.row_number().over(latest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank", "_change_type", "_commit_version", "_commit_timestamp")
    )


def deleted_file_retention(spark, gold_path: str) -> timedelta:
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{gold_path}`").collect()[0]["properties"] or {}
    return parse_interval(properties.get("delta.deletedFileRetentionDuration", DEFAULT_DELETED_FILE_RETENTION))


@dataclass(frozen=True)
class ChangePlan:
    """What a reader of a table's changes does this run, and why (the run report shows both)."""

    mode: str  # initial | incremental | resync | unchanged
    reason: str
    since_version: int | None = None  # first version read (incremental)
    until_version: int | None = None


def plan_from_version(
    storage, table_uri: str, *, table: str, done: int, current_version: int, retention: timedelta, now: datetime
) -> ChangePlan:
    """The plan of a reader whose watermark says versions up to `done` of `table` (its name in the reasons,
    e.g. "gold") are read: unchanged; incremental from the Change Data Feed while the versions after `done`
    are still complete (in `_delta_log`, and younger than the deleted-file retention VACUUM keeps); else a
    resync at `current_version`."""
    if done == current_version:
        return ChangePlan("unchanged", f"{table} unchanged since the watermark", until_version=current_version)
    if done > current_version:
        return ChangePlan(
            "resync",
            f"the watermark ({table} version {done}) is ahead of {table} (version {current_version}): {table} "
            "was recreated",
            until_version=current_version,
        )
    first = done + 1
    committed = commit_timestamp(storage, table_uri, first)
    if committed is None:
        return ChangePlan(
            "resync",
            f"{table} version {first} (the first after the watermark) is no longer in _delta_log: the change "
            "history was cleaned up",
            until_version=current_version,
        )
    if committed < now - retention:
        return ChangePlan(
            "resync",
            f"{table} version {first} was committed at {committed.isoformat()}, longer ago than the table's "
            f"deleted-file retention ({retention}): VACUUM may have deleted its change files",
            until_version=current_version,
        )
    return ChangePlan(
        "incremental",
        f"{table} versions {first}..{current_version} from the Change Data Feed",
        since_version=first,
        until_version=current_version,
    )
