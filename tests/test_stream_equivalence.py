"""scripts/stream_equivalence.py at a tiny size: batches delivered, stream after each, full changes nothing."""

from __future__ import annotations

import json

from scripts import stream_equivalence


def test_stream_runs_end_equal_to_full(tmp_path):
    output = tmp_path / "result.json"
    arguments = ["--events", "1500", "--cards", "40", "--days", "2", "--batches", "2"]
    status = stream_equivalence.main([*arguments, "--work-dir", str(tmp_path / "work"), "--output", str(output)])
    result = json.loads(output.read_text())
    assert status == 0 and result["equal"] is True
    runs = result["stream_runs"]
    assert [run["batch"] for run in runs] == [1, 2] and runs[0]["gold_mode"] == "initial"
    assert runs[1]["gold_mode"] == "incremental" and runs[1]["affected_cards"] > 0
    # Every delivered file is read once, except the generator's `.tmp-` file, which is ignored by design.
    assert len(result["ignored_files"]) == 1
    assert sum(run["bronze_files_read"] for run in runs) + 1 == result["bronze_files"]
    assert all(run["gold_bytes_scanned"] > 0 for run in runs)
    full = result["full_run"]
    assert full["gold_rows_recomputed"] == result["silver_rows"] and full["gold_rows_updated"] == 0
    assert full["gold_rows"] == full["gold_distinct_keys"] == result["silver_rows"]
