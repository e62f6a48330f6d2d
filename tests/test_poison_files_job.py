"""A poison file never blocks the pipeline, through the real silver job (issue 17): a gzip bomb and a long
line are quarantined and the rest of the batch lands; a file deleted after planning is quarantined and the batch
commits; a resumed batch whose inputs changed is re-planned, counted and alarmed. The framing caps themselves
are unit-tested in tests/test_poison_files.py."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from spark_jobs import silver_and_gold
from spark_jobs.bronze_ledger import BronzeLedger
from spark_jobs.fault_injection import InjectedFault
from tests.lake_helpers import BRONZE, event, table_rows, write_bronze

REPO_ROOT = Path(__file__).resolve().parents[1]
SILVER, QUARANTINE = "silver/card_transactions", "silver/quarantine"
MIB = 1024 * 1024


def run_job(lake: Path, *extra: str) -> dict:
    """The real entry point in-process (sharing the test session); its run report."""
    silver_and_gold.main(["--mode", "stream", "--allow-development-token-key", "--lake-root", str(lake), *extra])
    return latest_report(lake)


def latest_report(lake: Path) -> dict:
    reports = sorted((lake / "_runs").glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
    return json.loads(reports[-1].read_text())


def quarantine_rows(spark, lake: Path) -> list[tuple]:
    rows = spark.read.format("delta").load(str(lake / QUARANTINE)).collect()
    return sorted((row.source_file.rsplit("/", 1)[1], row.line_number, row.reason, row.detail) for row in rows)


def silver_ids(spark, lake: Path) -> list[str]:
    return sorted(row[0] for row in table_rows(spark, lake / SILVER))


def assert_balanced(counts: dict) -> None:
    assert counts["records_read"] == counts["accepted"] + counts["duplicates"] + counts["quarantined"]


def test_a_gzip_bomb_and_a_long_line_are_quarantined_and_the_rest_of_the_batch_lands(spark, tmp_path):
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/01/00", "a-good.gz", [event("g1"), event("g2")])
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 50 MiB of newlines in about 50 KB
    bomb = b"".join([*(compressor.compress(b"\n" * MIB) for _ in range(50)), compressor.flush()])
    folder = lake / BRONZE / "ingest_dt=2026/01/01/00"
    (folder / "b-bomb.gz").write_bytes(bomb)
    write_bronze(lake, "2026/01/01/00", "c-long-line.gz", [event("l1"), event("l2", merchant_id="m" * 5000)])

    report = run_job(lake, "--max-file-bytes", str(MIB), "--max-line-bytes", "4096")
    counts = report["counts"]
    assert report["status"] == "succeeded"
    assert counts["quarantined_by_reason"] == {"file_too_large": 1, "line_too_long": 1}
    assert (counts["accepted"], counts["files"]) == (3, 3)
    assert_balanced(counts)
    assert silver_ids(spark, lake) == ["g1", "g2", "l1"]
    [bomb_row, long_row] = quarantine_rows(spark, lake)
    assert bomb_row[:3] == ("b-bomb.gz", None, "file_too_large")
    assert bomb_row[3] == f"decompressed size over the {MIB}-byte limit (--max-file-bytes)"
    assert long_row[:3] == ("c-long-line.gz", 2, "line_too_long")
    assert run_job(lake)["counts"]["files"] == 0  # committed: the poison files never block a later run


def test_a_file_deleted_after_planning_is_quarantined_and_the_batch_commits(spark, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/01/00", "a.gz", [event("a1")])
    doomed = write_bronze(lake, "2026/01/01/00", "b.gz", [event("b1")])
    write_bronze(lake, "2026/01/01/00", "c.gz", [event("c1")])
    original_plan = BronzeLedger.plan

    def plan_then_lose_a_file(self, *args, **kwargs):  # the file goes between the listing and the read
        plan = original_plan(self, *args, **kwargs)
        doomed.unlink()
        return plan

    monkeypatch.setattr(BronzeLedger, "plan", plan_then_lose_a_file)
    report = run_job(lake)
    assert report["status"] == "succeeded", report["error"]
    assert report["counts"]["quarantined_by_reason"] == {"unreadable_file": 1}
    assert_balanced(report["counts"])
    assert silver_ids(spark, lake) == ["a1", "c1"]
    assert quarantine_rows(spark, lake) == [
        ("b.gz", None, "unreadable_file", "cannot read the file: FileNotFoundError: No such file or directory")
    ]
    monkeypatch.undo()
    assert run_job(lake)["counts"]["files"] == 0  # the batch committed


def _crash_before_the_ledger_commit(lake: Path, monkeypatch, *extra: str) -> None:
    monkeypatch.setenv("LAKEHOUSE_FAIL_AT", "before_ledger_commit")
    with pytest.raises(InjectedFault):
        run_job(lake, *extra)
    monkeypatch.delenv("LAKEHOUSE_FAIL_AT")


def test_a_pending_batch_whose_file_changed_is_re_planned_with_a_metric(spark, tmp_path, monkeypatch, capsys):
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/01/00", "a.gz", [event("a1")])
    changed = write_bronze(lake, "2026/01/01/00", "b.gz", [event("b1")])
    _crash_before_the_ledger_commit(lake, monkeypatch)
    # The producer overwrites a planned object before the batch is finished.
    write_bronze(lake, "2026/01/01/00", "b.gz", [event("b1"), event("b2")])
    capsys.readouterr()

    report = run_job(lake)
    assert report["status"] == "succeeded", report["error"]
    assert report["counts"].get("replanned_batches") == 1
    [replanned] = report["replanned_batches"]
    assert replanned["changed_files"] == [f"file://{changed}"] and replanned["changed_inputs"] == {}
    assert silver_ids(spark, lake) == ["a1", "b1", "b2"]  # the object as it is now
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"CloudWatchMetrics"' in line]
    assert [line["ReplannedBatches"] for line in metrics if "ReplannedBatches" in line] == [1]
    assert run_job(lake)["counts"]["files"] == 0


def test_a_pending_batch_resumed_with_other_fx_rates_is_re_planned(spark, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/01/00", "a.gz", [event("a1")])
    _crash_before_the_ledger_commit(lake, monkeypatch)
    rates = tmp_path / "fx.csv"
    rates.write_text((REPO_ROOT / "spark_jobs/reference_data/fx_rates.csv").read_text() + "NOK,0.095\n")

    report = run_job(lake, "--fx-rates", str(rates))
    assert report["status"] == "succeeded", report["error"]
    assert report["counts"].get("replanned_batches") == 1
    [replanned] = report["replanned_batches"]
    assert set(replanned["changed_inputs"]) == {"fx_rates_sha256"} and replanned["changed_files"] == []
