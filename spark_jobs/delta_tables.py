"""Creating, merging into and registering the lake's Delta tables."""

from __future__ import annotations

import re
import uuid

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

# Delta keeps min/max statistics (in its log) only on the columns a table's reads prune by, named per table
# (`stats_columns`). Statistics on other columns cost write time and log size for no skipping, and would copy
# the prefix of free text into the log: a quarantine's raw_record (masked, but a producer's text) never goes
# there, nor merchant ids or card tokens.
STATS_COLUMNS_PROPERTY = "delta.dataSkippingStatsColumns"


def stats_columns(*columns: str) -> dict[str, str]:
    """The table property that limits Delta's column statistics to `columns`."""
    return {STATS_COLUMNS_PROPERTY: ",".join(columns)}


def set_table_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> list[str]:
    """Give an existing table the `properties` it lacks or holds with another value (one ALTER TABLE commit);
    returns the keys set. (A table made before a property was declared; new files follow it, old ones keep
    the statistics they were written with until OPTIMIZE rewrites them.)"""
    from delta.tables import DeltaTable

    current = DeltaTable.forPath(spark, path).detail().select("properties").collect()[0][0] or {}
    changed = {key: value for key, value in properties.items() if current.get(key) != value}
    if changed:
        assignments = ", ".join(f"'{key}' = '{value}'" for key, value in sorted(changed.items()))
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({assignments})")
    return sorted(changed)


def table_exists(spark: SparkSession, path: str) -> bool:
    """Whether a Delta table lives at `path`: one filesystem call, no snapshot load."""
    jvm = spark.sparkContext._jvm
    log_dir = jvm.org.apache.hadoop.fs.Path(path.rstrip("/") + "/_delta_log")
    filesystem = log_dir.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(filesystem.exists(log_dir))


def ensure_table(
    spark: SparkSession,
    path: str,
    schema: T.StructType,
    *,
    partition_by: tuple[str, ...] = (),
    change_data_feed: bool = False,
    properties: dict[str, str] | None = None,
) -> None:
    """Create the table at `path` with an explicit schema if it does not exist yet."""
    from delta.tables import DeltaTable

    if table_exists(spark, path):
        return
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    table_properties = {"delta.enableChangeDataFeed": str(change_data_feed).lower(), **(properties or {})}
    for key, value in table_properties.items():
        builder = builder.property(key, value)
    builder.execute()


def sql_literal_list(values) -> str:
    """`'a', 'b'` for an IN list of dates or strings (values come from our own tables, quoted anyway)."""
    return ", ".join("'" + str(value).replace("'", "''") + "'" for value in values)


def insert_new_rows(spark: SparkSession, path: str, rows: DataFrame, *, match_condition: str) -> dict:
    """MERGE that only inserts rows not matched by `match_condition` (t = table, s = rows).

    Insert-only MERGE never rewrites existing files, and a rerun of the same rows is a no-op. Into a
    table with no data files the MERGE would only insert everything, so the rows are appended instead
    (no join; the same result, since `rows` never repeats a key). Returns the commit's operation metrics
    with `rows_inserted` and `version`, or {} when nothing was committed.
    """
    from delta.tables import DeltaTable

    version_before = table_version(spark, path)
    if is_empty(spark, path):
        metrics = append_into_empty(spark, path, rows, version_before=version_before)
        return metrics | {"rows_inserted": metrics.get("numOutputRows", 0)} if metrics else {}
    table = DeltaTable.forPath(spark, path)
    table.alias("t").merge(rows.alias("s"), match_condition).whenNotMatchedInsertAll().execute()
    metrics = commit_metrics_since(spark, path, version_before)
    return metrics | {"rows_inserted": metrics.get("numTargetRowsInserted", 0)} if metrics else {}


class ConcurrentWriteError(RuntimeError):
    """Another writer committed to a table while this job appended into it as an empty table."""


def append_into_empty(spark: SparkSession, path: str, rows: DataFrame, *, version_before: int) -> dict:
    """Append `rows` to a table that had no data files at `version_before`; returns the commit's metrics.

    A blind append never conflicts in Delta, so a commit by another writer between the emptiness check and
    this one would go unnoticed: the commit is found by a marker in its userMetadata, and any other commit
    before it fails the job loudly (one writer at a time is the lease's promise; a MERGE would have failed
    with ConcurrentAppendException).
    """
    from delta.tables import DeltaTable

    marker = f"append-into-empty-{uuid.uuid4().hex}"
    rows.write.format("delta").mode("append").option("userMetadata", marker).save(path)
    history = DeltaTable.forPath(spark, path).history(50).where(f"version > {version_before}").collect()
    ours = [entry for entry in history if entry.userMetadata == marker]
    if not ours:  # nothing to append (Delta commits no empty append): nothing of ours can be repeated
        return {}
    others = sorted(entry.version for entry in history if entry.version < ours[0].version)
    if others:
        raise ConcurrentWriteError(
            f"{path}: another writer committed version(s) {others} while this job appended its first rows "
            f"(version {ours[0].version}); the table may now hold rows twice. Stop the other writer (only the "
            "lease holder may write), then look for repeated keys before the next run."
        )
    return _commit_metrics(ours[0])


def table_version(spark: SparkSession, path: str) -> int:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, path).history(1).collect()[0].version


def is_empty(spark: SparkSession, path: str) -> bool:
    """Whether the table's current snapshot has no data files (a snapshot read, no data scan)."""
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, path).detail().select("numFiles").collect()[0][0] == 0


def commit_metrics_since(spark: SparkSession, path: str, version_before: int) -> dict:
    """Operation metrics of the commit after `version_before`, or {} if no commit happened.

    Comparing versions (not operation names) keeps an earlier commit's metrics from being reported
    for a write that committed nothing.
    """
    from delta.tables import DeltaTable

    latest = DeltaTable.forPath(spark, path).history(1).collect()[0]
    if latest.version == version_before:
        return {}
    return _commit_metrics(latest)


def _commit_metrics(entry) -> dict:
    """A DESCRIBE HISTORY row's numeric operation metrics, plus its version."""
    metrics = entry.operationMetrics or {}
    return {key: int(value) for key, value in metrics.items() if value.isdigit()} | {"version": entry.version}


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register_in_catalog(spark: SparkSession, database: str, table: str, path: str) -> None:
    """Register a Delta table in the metastore (Glue on EMR) so Athena can query it."""
    for name in (database, table):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"invalid catalog identifier {name!r}: letters, digits and underscores only")
    spark.sql(f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` USING DELTA LOCATION '{path}'")
