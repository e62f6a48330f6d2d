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
