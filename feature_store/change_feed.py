"""Delta Change Data Feed helpers shared by the readers of gold and silver's changes (feature store
ingestion, online state sync): when a commit happened, whether its change files can still be there, and the
latest post-image of each event."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

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


def deleted_file_retention(spark, gold_path: str) -> timedelta:
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{gold_path}`").collect()[0]["properties"] or {}
    return parse_interval(properties.get("delta.deletedFileRetentionDuration", DEFAULT_DELETED_FILE_RETENTION))
