"""A fresh stack's first nights: the scheduled daily run on a lake with 3 days of history, through the local
runner and state_machines/daily.asl.json, ends SUCCEEDED with the dataset step skipped (exit 0, run report
status `skipped` with its reason, the metric DatasetsSkipped=1) instead of paging on-call."""

from __future__ import annotations

import json

import pytest

from devtools.generator import GeneratorConfig, generate_lake
from devtools.local_runner import run_pipeline


@pytest.mark.slow
def test_a_scheduled_daily_run_with_three_days_of_history_succeeds_with_the_datasets_skipped(tmp_path):
    lake = tmp_path / "lake"
    generate_lake(GeneratorConfig(events=400, cards=30, days=3, seed=5, files_per_hour=1, lake_root=lake))
    lines: list[str] = []
    result = run_pipeline(
        mode="daily",
        lake_root=str(lake),
        execution_input={"scheduled_time": "2026-01-04T00:05:00Z"},  # as EventBridge Scheduler passes it
        state_dir=tmp_path / "state",
        spark_master="local[2]",
        log=lines.append,
    )
    assert result.status == "SUCCEEDED", "\n".join(lines[-60:]) + f"\n{result.error}: {result.cause}"
    assert [(job["state"], job["status"]) for job in result.jobs] == [
        ("RunDailySilverAndGold", "SUCCESS"),
        ("BuildDatasets", "SUCCESS"),
        ("IngestFeatures", "SUCCESS"),
    ]

    report = json.loads((lake / "_runs" / f"{result.name}.BuildDatasets.0.0.json").read_text())
    assert report["status"] == "skipped" and report["failed_step"] is None
    assert report["reason"].startswith("too little history")
    assert report["execution_arn"] == result.execution_arn
    assert not (lake / "gold" / "training").exists()

    job_log = next((tmp_path / "state" / "logs" / result.name).glob("BuildDatasets-*.log")).read_text()
    metrics = [json.loads(line) for line in job_log.splitlines() if line.startswith("{") and '"_aws"' in line]
    assert [(metric["Stage"], metric["DatasetsSkipped"]) for metric in metrics] == [("datasets", 1)]
    assert not (lake / "_runs" / "alerts.log").exists()  # nobody was paged
    for state in ("RunDailySilverAndGold", "IngestFeatures"):  # every job's report is found from the execution
        linked = json.loads((lake / "_runs" / f"{result.name}.{state}.0.0.json").read_text())
        assert linked["status"] == "succeeded" and linked["execution_arn"] == result.execution_arn
