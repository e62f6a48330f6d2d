"""Creating, merging into and registering the lake's Delta tables."""

from __future__ import annotations

import re

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T


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

    Insert-only MERGE never rewrites existing files, and a rerun of the same rows is a no-op.
    Returns Delta's operation metrics of the commit (empty when nothing was written).
    """
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, path)
    table.alias("t").merge(rows.alias("s"), match_condition).whenNotMatchedInsertAll().execute()
    return last_commit_metrics(spark, path, operation="MERGE")


def last_commit_metrics(spark: SparkSession, path: str, *, operation: str) -> dict:
    from delta.tables import DeltaTable

    latest = DeltaTable.forPath(spark, path).history(1).collect()[0]
    if latest.operation != operation:
        return {}
    return {key: int(value) for key, value in (latest.operationMetrics or {}).items() if value.isdigit()} | {
        "version": latest.version
    }


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register_in_catalog(spark: SparkSession, database: str, table: str, path: str) -> None:
    """Register a Delta table in the metastore (Glue on EMR) so Athena can query it."""
    for name in (database, table):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"invalid catalog identifier {name!r}: letters, digits and underscores only")
    spark.sql(f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` USING DELTA LOCATION '{path}'")
