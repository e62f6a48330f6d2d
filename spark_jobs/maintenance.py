"""Daily table maintenance: Z-order the partitions that changed since the last maintenance, then VACUUM.

Z-ordering by card_id inside each `dt` partition is what lets stream runs skip files: their reads filter
on a set of cards, and Delta's min/max statistics on card_id then exclude most files of a partition.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.delta_tables import sql_literal_list, table_exists
from spark_jobs.gold_update import table_version
from spark_jobs.storage import LakeStorage

STATE = "_state/maintenance.json"


def changed_partitions(spark: SparkSession, path: str, since_version: int | None) -> list:
    """`dt` values that received data after `since_version` (all partitions when None)."""
    reader = spark.read.format("delta")
    if since_version is None:
        frame = reader.load(path)
    else:
        frame = (reader.option("readChangeFeed", "true").option("startingVersion", since_version + 1).load(path)).where(
            F.col("_change_type").isin("insert", "update_postimage")
        )
    return sorted(row.dt for row in frame.select("dt").distinct().collect())


def maintain_tables(
    spark: SparkSession, storage: LakeStorage, tables: dict[str, str], *, retention_hours: int
) -> dict[str, dict]:
    """OPTIMIZE … ZORDER BY (card_id) the changed partitions of each table, then VACUUM it."""
    from delta.tables import DeltaTable

    state = storage.read_json(storage.uri(STATE), {})
    summary = {}
    for name, path in tables.items():
        if not table_exists(spark, path):
            continue
        current = table_version(spark, path)
        last = state.get(name, {}).get("version")
        partitions = [] if last == current else changed_partitions(spark, path, last)
        table = DeltaTable.forPath(spark, path)
        if partitions:
            table.optimize().where(f"dt IN ({sql_literal_list(partitions)})").executeZOrderBy("card_id")
        table.vacuum(retention_hours)
        state[name] = {"version": table_version(spark, path)}
        summary[name] = {
            "optimized_partitions": [str(day) for day in partitions],
            "vacuum_retention_hours": retention_hours,
        }
    storage.write_json(storage.uri(STATE), state)
    return summary
