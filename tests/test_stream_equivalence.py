"""scripts/stream_equivalence.py at a tiny size: batches delivered (chargebacks one batch late), stream after
each, full changes nothing in gold or the merchant snapshot."""

from __future__ import annotations

import json

from scripts import stream_equivalence


def test_stream_runs_end_equal_to_full(tmp_path):
    output = tmp_path / "result.json"
    # 12 days in 3 batches: the merchant rows of days 8 .. 12 have chargeback rates, and the reports known at
    # their start arrive a batch after the run that first wrote them (--label-delay-batches 1, the default).
    arguments = ["--events", "1500", "--cards", "40", "--days", "12", "--batches", "3"]
    status = stream_equivalence.main([*arguments, "--work-dir", str(tmp_path / "work"), "--output", str(output)])
    result = json.loads(output.read_text())
    assert status == 0 and result["equal"] is True
    runs = result["stream_runs"]
    assert [run["batch"] for run in runs] == [1, 2, 3] and runs[0]["gold_mode"] == "initial"
    assert runs[1]["gold_mode"] == "incremental" and runs[1]["affected_cards"] > 0
    # Every chargeback feed file is delivered, none in the first batch; late reports update merchant rows.
    assert runs[0]["label_files_delivered"] == 0 and result["label_files"] > 0
    assert sum(run["label_files_delivered"] for run in runs) == result["label_files"]
    assert sum(run["chargeback_files_read"] for run in runs) == result["label_files"] and result["chargebacks"] > 0
    assert runs[2]["merchant_rows_updated"] > 0
    # Every delivered file is read once, except the generator's `.tmp-` file, which is ignored by design.
    assert len(result["ignored_files"]) == 1
    assert sum(run["bronze_files_read"] for run in runs) + 1 == result["bronze_files"]
    assert all(run["gold_bytes_scanned"] > 0 for run in runs)
    full = result["full_run"]
    assert full["gold_rows_recomputed"] == result["silver_rows"] and full["gold_rows_updated"] == 0
    assert full["gold_rows"] == full["gold_distinct_keys"] == result["silver_rows"]
    assert result["gold_equal"] is result["merchant_equal"] is True
    assert full["merchant_rows_inserted"] == full["merchant_rows_updated"] == full["merchant_rows_deleted"] == 0
    assert full["chargeback_files_read"] == 0
    assert full["merchant_rows"] == full["merchant_distinct_keys"] == full["merchant_rows_recomputed"] > 0
