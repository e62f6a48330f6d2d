"""delta_tables: insert-only writes, the append into an empty table and its concurrent-writer check."""

from __future__ import annotations

import pytest

from spark_jobs.delta_tables import ConcurrentWriteError, append_into_empty, insert_new_rows, table_version

SCHEMA = "key string, value long"


def _frame(spark, rows):
    return spark.createDataFrame(rows, SCHEMA)


def test_insert_new_rows_appends_into_empty_then_merges(spark, tmp_path):
    path = f"file://{tmp_path}/t"
    _frame(spark, []).write.format("delta").save(path)
    first = insert_new_rows(spark, path, _frame(spark, [("a", 1), ("b", 2)]), match_condition="t.key = s.key")
    assert first["rows_inserted"] == 2 and first["version"] == 1
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert history[0].operation == "WRITE"  # appended, no join
    again = insert_new_rows(spark, path, _frame(spark, [("a", 1), ("c", 3)]), match_condition="t.key = s.key")
    assert again["rows_inserted"] == 1
    assert sorted(r.key for r in spark.read.format("delta").load(path).collect()) == ["a", "b", "c"]


def test_append_into_empty_fails_loudly_when_another_writer_committed_first(spark, tmp_path):
    path = f"file://{tmp_path}/t"
    _frame(spark, []).write.format("delta").save(path)
    seen_empty_at = table_version(spark, path)
    _frame(spark, [("a", 1)]).write.format("delta").mode("append").save(path)  # the other writer
    with pytest.raises(ConcurrentWriteError, match=r"another writer committed version\(s\) \[1\]"):
        append_into_empty(spark, path, _frame(spark, [("a", 1)]), version_before=seen_empty_at)


def test_append_of_no_rows_commits_nothing(spark, tmp_path):
    path = f"file://{tmp_path}/t"
    _frame(spark, []).write.format("delta").save(path)
    assert insert_new_rows(spark, path, _frame(spark, []), match_condition="t.key = s.key") == {}


def _stats_columns_written(table_dir) -> set[str]:
    """The columns with min/max statistics in the add actions of a table's Delta log."""
    import json

    columns: set[str] = set()
    for commit in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add and add.get("stats"):
                columns |= set(json.loads(add["stats"]).get("minValues", {}))
    return columns


def test_the_lake_tables_keep_statistics_only_on_the_columns_reads_prune_by(spark, tmp_path):
    """Quarantine and duplicates rows (raw_record, detail: a producer's text) and silver's merchant_id, tokens
    and files never reach the Delta log as statistics; the pruning keys do."""
    from datetime import date, datetime
    from decimal import Decimal

    from spark_jobs import silver
    from spark_jobs.silver_ingest import ensure_silver_tables, insert_by_location
    from spark_jobs.storage import open_lake

    storage = open_lake(str(tmp_path))  # the folder exists
    ensure_silver_tables(spark, storage)
    source = "file:///l/bronze/streaming/card_authorization/ingest_dt=2026/01/01/00/f.gz"
    quarantine = spark.createDataFrame(
        [
            (
                source,
                1,
                '{"card_id": "****-****-****-1111 free text"}',
                "bad_type",
                "field=amount",
                date(2026, 1, 1),
                "r",
            )
        ],
        silver.QUARANTINE_SCHEMA,
    )
    insert_by_location(spark, str(tmp_path / "silver/quarantine"), quarantine)
    duplicates = spark.createDataFrame([("e1", source, 2, date(2026, 1, 1), "r")], silver.DUPLICATES_SCHEMA)
    insert_by_location(spark, str(tmp_path / "silver/duplicates"), duplicates)
    silver_row = (
        "e1", "c1", Decimal("1767225600.000000"), 1767225600000000, datetime(2026, 1, 1), date(2026, 1, 1), "m1",
        Decimal("1.0000"), "USD", Decimal("1.0000000000"), "US", "chip", "1111", "a" * 64, source, 3,
        datetime(2026, 1, 1), "r",
    )  # fmt: skip
    spark.createDataFrame([silver_row], silver.SILVER_SCHEMA).write.format("delta").mode("append").save(
        str(tmp_path / "silver/card_transactions")
    )

    assert _stats_columns_written(tmp_path / "silver/quarantine") == {"source_file", "line_number", "reason"}
    assert _stats_columns_written(tmp_path / "silver/duplicates") == {"event_id", "source_file", "line_number"}
    assert _stats_columns_written(tmp_path / "silver/card_transactions") == {"event_id", "card_id", "ts_us"}
