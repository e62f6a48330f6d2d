"""Daily table maintenance: Z-order the partitions that changed since the last maintenance, then VACUUM.

Every table of the lake is VACUUMed with the same retention: silver, gold, and the duplicates, quarantine and
quarantine-replay logs (whose rows are never deleted: VACUUM removes only files that no version younger than
the retention needs, such as those a replay's MERGE rewrote). The logs are not Z-ordered (no card_id to order
by). The unpartitioned tables that stream MERGEs grow by small files are OPTIMIZEd whole when they changed and
hold several files: the merchant snapshot Z-ordered by (merchant_id, day), the chargebacks bin-packed. A table
lacking its declared statistics columns (made before they were declared) is given them.

Z-ordering by card_id inside each `dt` partition is what lets stream runs skip files: their reads filter
on a set of cards, and Delta's min/max statistics on card_id then exclude most files of a partition.

Two rules keep the daily run's cost proportional to what changed:
- A changed partition already held in a single file is left alone. OPTIMIZE writes files of up to
  `spark.databricks.delta.optimize.maxFileSize` (1 GB), so Z-ordering a partition smaller than that can
  only rewrite the same rows into one file again: no file-level skipping is gained, and Delta's Z-order
  rewrites single files unconditionally.
- VACUUM LITE finds the removable files from the Delta log instead of listing every table directory
  (22-28 s per table on the demo lake, 2-3 s with LITE). The log does not know files of writes that
  crashed before their commit, so VACUUM FULL (the directory listing) runs when asked for, on Sundays in
  `auto` mode, and whenever Delta refuses LITE because its log no longer covers the retention period.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.delta_tables import set_table_properties, sql_literal_list, table_exists, table_version
from spark_jobs.lake import maintenance_state_uri, state_commit_log
from spark_jobs.storage import LakeStorage


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


def files_per_partition(spark: SparkSession, path: str) -> dict[str, int]:
    """Data files of the current snapshot per `dt` value (from the Delta log; no data is read)."""
    jvm = spark.sparkContext._jvm
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    snapshot = log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty())
    files = DataFrame(snapshot.allFiles().toDF(), spark)
    counts = files.groupBy(F.col("partitionValues")["dt"].alias("dt")).count().collect()
    return {row.dt: row["count"] for row in counts}


def vacuum(spark: SparkSession, path: str, *, retention_hours: int, full: bool) -> str:
    """VACUUM the table; returns the mode that ran ("lite", or "full")."""
    if not full:
        try:
            spark.sql(f"VACUUM delta.`{path}` LITE RETAIN {retention_hours} HOURS").collect()
            return "lite"
        except Exception as error:  # Delta refuses LITE when its log no longer covers the retention period
            if "DELTA_CANNOT_VACUUM_LITE" not in str(error):
                raise
    spark.sql(f"VACUUM delta.`{path}` FULL RETAIN {retention_hours} HOURS").collect()
    return "full"


@dataclass(frozen=True)
class MaintainedTable:
    """A table the daily maintenance looks after: Z-ordered by `zorder_by` (a column or several) in its changed
    `dt` partitions (None: no OPTIMIZE, e.g. the quarantine and duplicates logs, partitioned by ingest_date and
    without a change feed), given its declared `properties` (the statistics columns) if it lacks them, and
    VACUUMed. `partitioned=False` (a table without `dt`, e.g. the merchant snapshot and the chargebacks, which
    stream MERGEs grow by small files): the whole table is OPTIMIZEd when it changed since the last maintenance
    and holds more than one file, Z-ordered by `zorder_by`, or bin-packed (small files compacted) when
    `zorder_by` is None and `compact` is set."""

    path: str
    zorder_by: str | tuple[str, ...] | None = "card_id"
    properties: dict[str, str] = field(default_factory=dict)
    partitioned: bool = True
    compact: bool = False

    @property
    def zorder_columns(self) -> tuple[str, ...]:
        if self.zorder_by is None:
            return ()
        return (self.zorder_by,) if isinstance(self.zorder_by, str) else tuple(self.zorder_by)


def data_file_count(spark: SparkSession, path: str) -> int:
    """Data files of the current snapshot (from the Delta log; no data is read)."""
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, path).detail().first()["numFiles"]


def optimize_whole_table(spark: SparkSession, table: MaintainedTable, changed: bool) -> dict:
    """OPTIMIZE an unpartitioned table that changed and holds several files: Z-order, or bin-packing."""
    from delta.tables import DeltaTable

    files_before = data_file_count(spark, table.path) if changed else 0
    optimized = files_before > 1
    if optimized:
        builder = DeltaTable.forPath(spark, table.path).optimize()
        if table.zorder_columns:
            builder.executeZOrderBy(*table.zorder_columns)
        else:
            builder.executeCompaction()
    return {
        "changed": changed,
        "optimized": "zorder" if optimized and table.zorder_columns else "compaction" if optimized else None,
        "files_before": files_before,
        "files_after": data_file_count(spark, table.path) if optimized else files_before,
    }


def maintain_tables(
    spark: SparkSession,
    storage: LakeStorage,
    tables: dict[str, MaintainedTable | str],
    *,
    retention_hours: int,
    vacuum_full: bool,
    run_id: str,
) -> dict[str, dict]:
    """OPTIMIZE … ZORDER BY (card_id) the changed multi-file partitions of each table (an unpartitioned table:
    the whole table, see MaintainedTable), then VACUUM it (every table with the same retention; a plain path is a
    table Z-ordered by card_id)."""
    from delta.tables import DeltaTable

    # Create-only commits (lake.state_commit_log): a second maintenance from the same state fails (exit 5).
    state_log = state_commit_log(storage, maintenance_state_uri(storage), what="maintenance state")
    previous = state_log.latest() or {}
    state = {name: value for name, value in previous.items() if name not in ("sequence", "run_id")}
    summary = {}
    for name, declared in tables.items():
        table = declared if isinstance(declared, MaintainedTable) else MaintainedTable(declared)
        path = table.path
        if not table_exists(spark, path):
            continue
        properties_set = set_table_properties(spark, path, table.properties) if table.properties else []
        current = table_version(spark, path)
        last = state.get(name, {}).get("version")
        if not table.partitioned:
            optimizes = bool(table.zorder_columns) or table.compact
            whole_table = optimize_whole_table(spark, table, changed=optimizes and last != current)
            vacuum_mode = vacuum(spark, path, retention_hours=retention_hours, full=vacuum_full)
            state[name] = {"version": table_version(spark, path)}
            summary[name] = {
                **whole_table,
                "vacuum_mode": vacuum_mode,
                "vacuum_retention_hours": retention_hours,
                "properties_set": properties_set,
            }
            continue
        unchanged = last == current or table.zorder_by is None
        changed = [] if unchanged else [str(day) for day in changed_partitions(spark, path, last)]
        file_counts = files_per_partition(spark, path) if changed else {}
        to_optimize = [day for day in changed if file_counts.get(day, 0) > 1]
        if to_optimize:
            DeltaTable.forPath(spark, path).optimize().where(
                f"dt IN ({sql_literal_list(to_optimize)})"
            ).executeZOrderBy(*table.zorder_columns)
        vacuum_mode = vacuum(spark, path, retention_hours=retention_hours, full=vacuum_full)
        state[name] = {"version": table_version(spark, path)}
        summary[name] = {
            "changed_partitions": changed,
            "optimized_partitions": to_optimize,
            "single_file_partitions_skipped": len(changed) - len(to_optimize),
            "vacuum_mode": vacuum_mode,
            "vacuum_retention_hours": retention_hours,
            "properties_set": properties_set,
        }
    # The record names its run, so a conflict names both the winner and the loser (`run_id`: the report's).
    state_log.commit({**state, "sequence": state_log.sequence(previous) + 1, "run_id": run_id}, run_id=run_id)
    return summary
