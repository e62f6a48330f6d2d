"""The benchmark's event-log hot spots count a run's jobs, SQL executions and Delta log reads per run step."""

from __future__ import annotations

from devtools.benchmark.processes import hot_spots_of
from spark_jobs.run_report import SPARK_STEP_PROPERTY


def _job(job_id: int, start: int, end: int, *, step: str | None, execution: int | None) -> list[dict]:
    properties = {} if step is None else {SPARK_STEP_PROPERTY: step}
    if execution is not None:
        properties["spark.sql.execution.id"] = str(execution)
    return [
        {"Event": "SparkListenerJobStart", "Job ID": job_id, "Submission Time": start, "Properties": properties},
        {"Event": "SparkListenerJobEnd", "Job ID": job_id, "Completion Time": end},
    ]


def _execution(execution: int, description: str, start: int, end: int) -> list[dict]:
    prefix = "org.apache.spark.sql.execution.ui."
    return [
        {
            "Event": prefix + "SparkListenerSQLExecutionStart",
            "executionId": execution,
            "description": description,
            "time": start,
        },
        {"Event": prefix + "SparkListenerSQLExecutionEnd", "executionId": execution, "time": end},
    ]


def test_jobs_and_delta_log_reads_are_counted_per_step():
    events = [
        *_execution(0, "collect at silver_ingest.py:429", 1_000, 4_000),
        *_job(0, 1_000, 3_000, step="parse_bronze", execution=0),
        *_job(1, 3_000, 3_500, step="parse_bronze", execution=0),  # a second job of the same execution
        *_execution(1, "localCheckpoint at NativeMethodAccessorImpl.java:0", 5_000, 9_000),
        *_execution(2, "Delta: Filtering files for query", 5_100, 5_600),
        *_job(2, 5_100, 5_600, step="deduplicate", execution=2),
        *_execution(3, "Delta: Delta: Filtering files for query: Compute snapshot for version: 7", 5_700, 6_000),
        *_job(3, 5_700, 6_000, step="deduplicate", execution=3),
        *_job(4, 6_000, 9_000, step="deduplicate", execution=1),
        *_job(5, 9_500, 9_600, step=None, execution=None),  # outside any step, no SQL
    ]
    spots = hot_spots_of(events)
    assert spots["jobs"] == 6 and spots["sql_executions"] == 4
    assert spots["longest_sql_executions"][0] == {
        "what": "localCheckpoint at NativeMethodAccessorImpl.java:0",
        "seconds": 4.0,
    }
    assert spots["by_step"] == {
        "parse_bronze": {
            "jobs": 2,
            "job_seconds": 2.5,
            "sql_executions": 1,
            "delta_snapshot_states": 0,
            "delta_file_filterings": 0,
        },
        "deduplicate": {
            "jobs": 3,
            "job_seconds": 3.8,
            "sql_executions": 3,
            "delta_snapshot_states": 1,
            "delta_file_filterings": 2,
        },
        "(no step)": {
            "jobs": 1,
            "job_seconds": 0.1,
            "sql_executions": 0,
            "delta_snapshot_states": 0,
            "delta_file_filterings": 0,
        },
    }
