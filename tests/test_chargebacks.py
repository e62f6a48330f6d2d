"""The chargeback feed's ingestion into silver/chargebacks (chargebacks.py): exactly once across reruns and
crashes between the table commits and the ledger commit, late feed files, card numbers and long event ids
quarantined, unreadable and oversized files quarantined while the rest of the batch is ingested."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from spark_jobs import lake as lake_paths
from spark_jobs.bronze_contract import FramingLimits
from spark_jobs.chargebacks import ChargebackOptions, chargeback_ledger, chargeback_metrics, ingest_chargebacks
from spark_jobs.run_report import RunReport
from spark_jobs.storage import open_lake
from tests.lake_helpers import fails_releasing_its_frames

T0 = 1767225600  # 2026-01-01T00:00:00Z
NOW = datetime(2026, 2, 1, tzinfo=UTC)
PAN = "4111111111111111"


def write_feed(lake: Path, day: str, name: str, lines: list, *, compress: bool = True) -> Path:
    """One feed file in `reported_dt=<day>/`; dict lines become JSON, strings are written as they are."""
    folder = lake / lake_paths.LABELS_PREFIX / f"reported_dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    data = gzip.compress(text.encode("utf-8"), mtime=0) if compress else text.encode("utf-8")
    path = folder / name
    path.write_bytes(data)
    return path


def report_day(lake: Path, day: str, count: int, *, first: int = 0) -> Path:
    """A feed file of `count` valid reports ev-<day>-<n>."""
    key = day.replace("/", "")
    lines = [{"event_id": f"ev-{key}-{n}", "reported_at": T0 + n} for n in range(first, first + count)]
    return write_feed(lake, day, f"cb-{key}-{first}.jsonl.gz", lines)


def run(spark, lake: Path, **options) -> RunReport:
    storage = open_lake(str(lake), create=True)
    report = RunReport(storage=storage, job="silver_and_gold", mode="stream")
    ingest_chargebacks(
        spark, storage, report, ingested_at=report.started_at, options=ChargebackOptions(now=NOW, **options)
    )
    return report


def chargebacks(spark, lake: Path) -> list[tuple]:
    frame = spark.read.format("delta").load(str(lake / lake_paths.CHARGEBACKS_TABLE))
    return sorted(
        (row.source_file.rsplit("/", 1)[-1], row.line_number, row.event_id, row.reported_at_us)
        for row in frame.collect()
    )


def quarantine(spark, lake: Path) -> list:
    frame = spark.read.format("delta").load(str(lake / lake_paths.LABEL_QUARANTINE_TABLE))
    return sorted(frame.collect(), key=lambda row: (row.source_file, row.line_number or 0))


def test_valid_records_land_once_with_exact_values_and_a_rerun_adds_nothing(spark, tmp_path):
    write_feed(
        tmp_path,
        "2026/01/02",
        "a.jsonl.gz",
        [
            {"event_id": "e1", "reported_at": T0},
            "",
            f'{{"event_id": "e2", "reported_at": {T0}.000001, "note": "x"}}',
            '{"event_id": 5, "reported_at": 1}',
        ],
    )
    report_day(tmp_path, "2026/01/03", 3)
    first = run(spark, tmp_path)
    rows = chargebacks(spark, tmp_path)
    assert rows == [
        ("a.jsonl.gz", 1, "e1", T0 * 1_000_000),
        ("a.jsonl.gz", 3, "e2", T0 * 1_000_000 + 1),
        ("cb-20260103-0.jsonl.gz", 1, "ev-20260103-0", T0 * 1_000_000),
        ("cb-20260103-0.jsonl.gz", 2, "ev-20260103-1", (T0 + 1) * 1_000_000),
        ("cb-20260103-0.jsonl.gz", 3, "ev-20260103-2", (T0 + 2) * 1_000_000),
    ]
    table = spark.read.format("delta").load(str(tmp_path / lake_paths.CHARGEBACKS_TABLE))
    [e2] = table.where("event_id = 'e2'").collect()
    assert e2.reported_at == Decimal(f"{T0}.000001") and e2.run_id == first.run_id
    assert [(row.line_number, row.reason) for row in quarantine(spark, tmp_path)] == [(4, "bad_type")]
    counts = first.counts
    assert (counts["chargeback_files"], counts["chargeback_records_read"]) == (2, 6)
    assert (counts["chargebacks_ingested"], counts["chargebacks_quarantined"]) == (5, 1)
    assert chargeback_metrics(counts)["ChargebacksIngested"] == 5
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{tmp_path / lake_paths.CHARGEBACKS_TABLE}`").first().properties
    assert properties["delta.enableChangeDataFeed"] == "true"

    again = run(spark, tmp_path)
    assert again.counts["chargeback_files"] == 0 and again.counts["chargebacks_ingested"] == 0
    assert chargebacks(spark, tmp_path) == rows and len(quarantine(spark, tmp_path)) == 1


@pytest.mark.parametrize(
    "fail_at", ["after_chargebacks_commit", "after_label_quarantine_commit", "before_chargeback_ledger_commit"]
)
def test_a_crash_before_the_ledger_commit_is_finished_by_the_next_run_without_duplicates_or_holes(
    spark, tmp_path, monkeypatch, fail_at
):
    report_day(tmp_path, "2026/01/02", 4)
    write_feed(tmp_path, "2026/01/02", "bad.jsonl.gz", ['{"event_id": "x"}', "{broken"])
    monkeypatch.setenv("LAKEHOUSE_FAIL_AT", fail_at)
    with fails_releasing_its_frames(spark):
        run(spark, tmp_path)
    monkeypatch.delenv("LAKEHOUSE_FAIL_AT")
    assert chargeback_ledger(open_lake(str(tmp_path))).pending() is not None
    report_day(tmp_path, "2026/01/03", 2)  # arrives meanwhile: the next run's second batch
    resumed = run(spark, tmp_path)
    rows = chargebacks(spark, tmp_path)
    assert [row[2] for row in rows] == [f"ev-20260102-{n}" for n in range(4)] + ["ev-20260103-0", "ev-20260103-1"]
    assert [(row.line_number, row.reason) for row in quarantine(spark, tmp_path)] == [
        (1, "missing_field"),
        (2, "malformed_json"),
    ]
    assert resumed.counts["chargeback_batches"] == 2 and chargeback_ledger(open_lake(str(tmp_path))).pending() is None
    # every fail point lies after the chargeback table's commit: the crashed run's 4 valid rows are counted as
    # already ingested, not written again
    assert (resumed.counts["chargebacks_ingested"], resumed.counts["chargebacks_already_ingested"]) == (2, 4)
    assert run(spark, tmp_path).counts["chargebacks_ingested"] == 0


def test_a_late_feed_file_in_an_earlier_day_folder_is_ingested(spark, tmp_path):
    report_day(tmp_path, "2026/01/10", 2)
    run(spark, tmp_path)
    late = report_day(tmp_path, "2026/01/05", 1, first=7)  # delivered after day 10's file, into day 5
    report = run(spark, tmp_path)
    assert report.counts["chargebacks_ingested"] == 1
    assert ("cb-20260105-7.jsonl.gz", 1, "ev-20260105-7", (T0 + 7) * 1_000_000) in chargebacks(spark, tmp_path)
    assert late.exists() and len(chargebacks(spark, tmp_path)) == 3
    # the chargeback ledger keeps its own state, by report day
    state = tmp_path / lake_paths.CHARGEBACK_LEDGER_PREFIX
    assert (state / "days" / "2026-01-05.json").exists() and not (tmp_path / "_state/bronze_ledger").exists()


def test_future_report_day_folders_wait_for_their_day(spark, tmp_path):
    report_day(tmp_path, "2026/02/03", 1)  # after NOW (2026-02-01) + 15 min
    report = run(spark, tmp_path)
    assert report.counts["chargebacks_ingested"] == 0 and report.counts["chargeback_future_files"] == 1


def test_a_card_number_in_any_field_is_quarantined_masked_and_a_long_event_id_is_field_too_long(spark, tmp_path):
    write_feed(
        tmp_path,
        "2026/01/02",
        "pan.jsonl.gz",
        [
            {"event_id": PAN, "reported_at": T0},
            {"event_id": "e1", "reported_at": T0, "comment": f"card {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}"},
            {"event_id": "e2", "reported_at": T0, PAN: 1},
            {"event_id": "e" * 129, "reported_at": T0},
            {"event_id": "e" * 128, "reported_at": T0},
        ],
    )
    run(spark, tmp_path)
    rows = quarantine(spark, tmp_path)
    assert [(row.line_number, row.reason) for row in rows] == [
        (1, "card_number_in_field"),
        (2, "card_number_in_field"),
        (3, "card_number_in_field"),
        (4, "field_too_long"),
    ]
    assert rows[0].detail.startswith("field=event_id") and rows[1].detail.startswith("field=comment")
    assert rows[3].detail == "field=event_id length=129 max=128"
    for row in rows[:3]:
        text = (row.raw_record + row.detail).replace(" ", "")
        assert PAN not in text and "1111" in row.raw_record.replace(" ", "")  # masked, last four kept
    assert [row[2] for row in chargebacks(spark, tmp_path)] == ["e" * 128]


def test_an_unreadable_or_oversized_file_is_quarantined_and_the_rest_of_the_batch_is_ingested(spark, tmp_path):
    report_day(tmp_path, "2026/01/02", 2)
    (tmp_path / lake_paths.LABELS_PREFIX / "reported_dt=2026/01/02/corrupt.jsonl.gz").write_bytes(
        b"\x1f\x8b\x08garbage"
    )
    big = [{"event_id": f"big-{n}", "reported_at": T0} for n in range(200)]
    write_feed(tmp_path, "2026/01/02", "big.jsonl", big, compress=False)  # plain text, over the cap below
    write_feed(tmp_path, "2026/01/02", "plain.jsonl", [{"event_id": "plain", "reported_at": T0}], compress=False)
    (tmp_path / lake_paths.LABELS_PREFIX / "reported_dt=2026/01/02/.in-flight.jsonl.gz").write_bytes(b"x")
    report = run(spark, tmp_path, limits=FramingLimits(max_file_bytes=4096, max_line_bytes=1024))
    assert [row[2] for row in chargebacks(spark, tmp_path)] == ["ev-20260102-0", "ev-20260102-1", "plain"]
    found = {row.source_file.rsplit("/", 1)[-1]: row for row in quarantine(spark, tmp_path)}
    assert {name: (row.line_number, row.reason) for name, row in found.items()} == {
        "big.jsonl": (None, "file_too_large"),
        "corrupt.jsonl.gz": (None, "unreadable_file"),
    }
    assert found["corrupt.jsonl.gz"].reported_date == date(2026, 1, 2)
    assert report.counts["chargeback_files"] == 4 and report.details["chargeback_listing"]["ignored_files"]
