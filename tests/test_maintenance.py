"""Daily maintenance: which partitions are Z-ordered, VACUUM LITE and FULL, and the state that skips work."""

from __future__ import annotations

from datetime import date

from spark_jobs.maintenance import files_per_partition, maintain_tables
from spark_jobs.storage import open_lake

SCHEMA = "card_id string, amount long, dt date"


def _append(spark, path: str, rows) -> None:
    """One file per partition per call; Change Data Feed on, as on the lake's tables."""
    frame = spark.createDataFrame(rows, SCHEMA).coalesce(1)
    writer = frame.write.format("delta").mode("append").partitionBy("dt")
    writer.option("delta.enableChangeDataFeed", "true").save(path)


def test_maintenance_zorders_changed_multi_file_partitions_and_vacuums(spark, tmp_path):
    path = f"file://{tmp_path}/gold/t"
    storage = open_lake(str(tmp_path))
    jan1, jan2 = date(2026, 1, 1), date(2026, 1, 2)
    _append(spark, path, [("c1", 1, jan1), ("c2", 2, jan2)])
    _append(spark, path, [("c3", 3, jan1)])  # 2026-01-01 now has two files, 2026-01-02 one
    assert files_per_partition(spark, path) == {"2026-01-01": 2, "2026-01-02": 1}

    summary = maintain_tables(spark, storage, {"t": path}, retention_hours=168, vacuum_full=False, run_id="run-m")["t"]
    assert summary["changed_partitions"] == ["2026-01-01", "2026-01-02"]
    assert summary["optimized_partitions"] == ["2026-01-01"]
    assert summary["single_file_partitions_skipped"] == 1
    assert summary["vacuum_mode"] == "lite"
    assert files_per_partition(spark, path) == {"2026-01-01": 1, "2026-01-02": 1}
    assert sorted(r.card_id for r in spark.read.format("delta").load(path).collect()) == ["c1", "c2", "c3"]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    optimize = [row for row in history if row.operation == "OPTIMIZE"]
    assert len(optimize) == 1 and "dt" in optimize[0].operationParameters["predicate"]

    # Nothing changed since: no partition is looked at again; FULL lists the folders.
    summary = maintain_tables(spark, storage, {"t": path}, retention_hours=168, vacuum_full=True, run_id="run-m")["t"]
    assert summary["changed_partitions"] == [] and summary["optimized_partitions"] == []
    assert summary["vacuum_mode"] == "full"

    # A new file in 2026-01-02 makes only that partition a candidate.
    _append(spark, path, [("c4", 4, jan2)])
    summary = maintain_tables(spark, storage, {"t": path}, retention_hours=168, vacuum_full=False, run_id="run-m")["t"]
    assert summary["changed_partitions"] == ["2026-01-02"] and summary["optimized_partitions"] == ["2026-01-02"]


def test_vacuum_removes_files_past_retention(spark, tmp_path):
    path = f"file://{tmp_path}/t"
    storage = open_lake(str(tmp_path))
    _append(spark, path, [("c1", 1, date(2026, 1, 1))])
    _append(spark, path, [("c2", 2, date(2026, 1, 1))])
    parquet_before = sorted(p.name for p in (tmp_path / "t" / "dt=2026-01-01").glob("*.parquet"))
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        summary = maintain_tables(spark, storage, {"t": path}, retention_hours=0, vacuum_full=False, run_id="run-m")[
            "t"
        ]
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    parquet_after = sorted(p.name for p in (tmp_path / "t" / "dt=2026-01-01").glob("*.parquet"))
    assert summary["optimized_partitions"] == ["2026-01-01"] and summary["vacuum_mode"] == "lite"
    assert len(parquet_before) == 2 and len(parquet_after) == 1 and parquet_after[0] not in parquet_before


def test_daily_maintenance_vacuums_the_quarantine_and_duplicates_like_silver_and_gold(spark, tmp_path):
    """The daily run VACUUMs every table with the same retention: a quarantine file a refresh rewrote goes, its
    rows stay."""
    from spark_jobs import silver
    from spark_jobs.run_report import RunReport
    from spark_jobs.silver_and_gold import GoldOptions, run_gold
    from spark_jobs.silver_ingest import ensure_silver_tables, insert_by_location

    storage = open_lake(str(tmp_path))  # the folder exists
    ensure_silver_tables(spark, storage)
    quarantine = str(tmp_path / "silver/quarantine")
    source = "file:///l/bronze/streaming/card_authorization/ingest_dt=2026/01/01/00/f.gz"
    rows = [(source, n, "{}", "bad_type", "field=amount", date(2026, 1, 1), "r") for n in (1, 2)]
    insert_by_location(spark, quarantine, spark.createDataFrame(rows, silver.QUARANTINE_SCHEMA).coalesce(1))
    # A replay refreshing a row's detail rewrites its file; the old file is only needed by older versions.
    spark.sql(f"UPDATE delta.`{quarantine}` SET detail = 'refreshed' WHERE line_number = 1")
    files_before = {path.name for path in (tmp_path / "silver/quarantine").rglob("*.parquet")}

    report = RunReport(storage=storage, job="silver_and_gold", mode="daily")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        run_gold(spark, storage, report, GoldOptions(mode="daily", day=date(2026, 1, 1), vacuum_retention_hours=0))
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")

    maintenance = report.details["maintenance"]
    assert {"silver", "gold", "duplicates", "quarantine"} <= set(maintenance)
    assert maintenance["quarantine"]["vacuum_mode"] == maintenance["duplicates"]["vacuum_mode"] == "lite"
    assert maintenance["quarantine"]["vacuum_retention_hours"] == maintenance["silver"]["vacuum_retention_hours"]
    files_after = {path.name for path in (tmp_path / "silver/quarantine").rglob("*.parquet")}
    assert len(files_before) == 2 and len(files_after) == 1 and files_after < files_before
    kept = spark.read.format("delta").load(quarantine).collect()
    assert sorted((row.line_number, row.detail) for row in kept) == [(1, "refreshed"), (2, "field=amount")]


def test_unpartitioned_tables_are_optimized_whole_when_changed_zorder_or_bin_packing(spark, tmp_path):
    """The merchant snapshot and the chargebacks (no `dt`; stream MERGEs add small files) as the daily run declares
    them: Z-ordered by (merchant_id, day), bin-packed; only when changed since the last maintenance and in
    several files."""
    from spark_jobs.silver_and_gold import maintained_tables

    storage = open_lake(str(tmp_path))
    declared = maintained_tables(storage)
    tables = {name: declared[name] for name in ("merchant_features", "chargebacks")}
    assert tables["merchant_features"].zorder_columns == ("merchant_id", "day")
    assert tables["chargebacks"].compact and not tables["chargebacks"].zorder_columns
    schemas = {
        "merchant_features": "merchant_id string, day date, merchant_txn_count_1d long",
        "chargebacks": "event_id string, reported_at_us long",
    }
    rows = {"merchant_features": [("m1", date(2026, 1, 2), 1)], "chargebacks": [("e1", 5)]}
    for name, table in tables.items():
        for _ in range(2):  # two small files, as two stream MERGEs leave them
            frame = spark.createDataFrame(rows[name], schemas[name]).coalesce(1)
            frame.write.format("delta").mode("append").option("delta.enableChangeDataFeed", "true").save(table.path)

    summary = maintain_tables(spark, storage, tables, retention_hours=168, vacuum_full=False, run_id="run-m")
    assert summary["merchant_features"]["optimized"] == "zorder" and summary["chargebacks"]["optimized"] == "compaction"
    for name, table in tables.items():
        assert (summary[name]["files_before"], summary[name]["files_after"]) == (2, 1)
        assert spark.read.format("delta").load(table.path).count() == 2
    history = spark.sql(f"DESCRIBE HISTORY delta.`{tables['merchant_features'].path}`").collect()
    optimize = [row for row in history if row.operation == "OPTIMIZE"]
    assert len(optimize) == 1 and "merchant_id" in optimize[0].operationParameters["zOrderBy"]
    assert "day" in optimize[0].operationParameters["zOrderBy"]

    # Unchanged since: nothing is optimized again.
    summary = maintain_tables(spark, storage, tables, retention_hours=168, vacuum_full=False, run_id="run-m")
    assert summary["merchant_features"]["optimized"] is None and summary["merchant_features"]["changed"] is False
    assert summary["chargebacks"]["optimized"] is None
