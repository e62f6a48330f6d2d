"""Tracing a run: the run id from the state machine names the report, which records the execution, the EMR
job run, the code version and the failed step; skipped runs; the jobs' log lines (spark_jobs/job_log.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from spark_jobs import lake
from spark_jobs.job_log import LOG_FORMAT_ENV
from spark_jobs.job_run import JobResult, JobSpec, run_job
from spark_jobs.run_report import find_summary
from spark_jobs.run_trace import EMR_APPLICATION_ID_ENV, EMR_JOB_RUN_ID_ENV, add_run_options, code_version
from spark_jobs.storage import open_lake

REPO_ROOT = Path(__file__).resolve().parents[1]
EXECUTION_ARN = "arn:aws:states:eu-west-1:123456789012:execution:card-features-daily:daily-20260102T000500Z"
RUN_ID = "daily-20260102T000500Z.BuildDatasets.0.1"
CARD = "4111 1111 1111 1111"  # a Luhn-valid test card number


def traced_spec(tmp_path: Path, **arguments) -> JobSpec:
    (tmp_path / "lake").mkdir(exist_ok=True)
    return JobSpec(
        job="demo_job",
        mode="daily",
        lake_root=str(tmp_path / "lake"),
        arguments={"run_id": RUN_ID, "execution_arn": EXECUTION_ARN, **arguments},
    )


def report_of(tmp_path: Path, run_id: str = RUN_ID) -> dict:
    return json.loads(Path(lake.run_report_uri(open_lake(str(tmp_path / "lake")), run_id)[7:]).read_text())


@pytest.fixture(autouse=True)
def _outside_emr(monkeypatch):
    for name in (EMR_JOB_RUN_ID_ENV, EMR_APPLICATION_ID_ENV, LOG_FORMAT_ENV):
        monkeypatch.delenv(name, raising=False)


def test_the_run_id_names_the_report_which_links_back_to_the_execution_job_run_and_code(tmp_path, monkeypatch):
    monkeypatch.setenv(EMR_JOB_RUN_ID_ENV, "00fkq1h3vbcd2f0l")
    monkeypatch.setenv(EMR_APPLICATION_ID_ENV, "00fkpq0iv5gmtq09")

    def body(storage, report):
        with report.step("prepare"):
            pass
        return JobResult()

    assert run_job(traced_spec(tmp_path), body) == 0
    report = report_of(tmp_path)
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    head = git.stdout.strip()
    assert report["run_id"] == RUN_ID and report["status"] == "succeeded" and report["failed_step"] is None
    assert report["execution_arn"] == EXECUTION_ARN
    assert (report["emr_job_run_id"], report["emr_application_id"]) == ("00fkq1h3vbcd2f0l", "00fkpq0iv5gmtq09")
    assert report["code_version"] == head and len(head) == 40


def test_without_a_state_machine_the_trace_fields_are_null_and_the_run_id_generated(tmp_path):
    (tmp_path / "lake").mkdir()
    spec = JobSpec(job="demo_job", mode="stream", lake_root=str(tmp_path / "lake"))
    assert run_job(spec, lambda storage, report: JobResult()) == 0
    (path,) = (tmp_path / "lake" / lake.RUNS_PREFIX).glob("stream-*.json")
    report = json.loads(path.read_text())
    assert report["execution_arn"] is None and report["emr_job_run_id"] is None and report["failed_step"] is None


def test_a_failure_names_the_innermost_step_it_left_and_masks_card_numbers(tmp_path, capsys):
    def body(storage, report):
        with report.step("silver_merge"), report.step("silver_write"):
            raise ValueError(f"cannot parse record with card {CARD}")

    with pytest.raises(ValueError):
        run_job(traced_spec(tmp_path), body)
    report = report_of(tmp_path)
    assert report["status"] == "failed" and report["failed_step"] == "silver_write"
    assert CARD not in report["error"] and "**** **** **** 1111" in report["error"]
    out, _ = capsys.readouterr()
    assert f"[{RUN_ID}] ERROR: failed in step silver_write" in out and CARD not in out


def test_a_skipped_run_exits_0_with_its_reason_a_metric_and_the_summary_on_stdout(tmp_path, capsys):
    def body(storage, report):
        return JobResult.skipped("too little history", metrics={"datasets": {"DatasetsSkipped": 1}})

    assert run_job(traced_spec(tmp_path), body) == 0
    report = report_of(tmp_path)
    assert report["status"] == "skipped" and report["reason"] == "too little history"
    out, _ = capsys.readouterr()
    metric = next(json.loads(line) for line in out.splitlines() if '"_aws"' in line)
    assert metric["DatasetsSkipped"] == 1 and metric["Stage"] == "datasets"
    assert find_summary(out).status == "skipped"


def test_json_logs_carry_level_and_run_id_on_every_line_and_never_a_card_number(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(EMR_JOB_RUN_ID_ENV, "00fkq1h3vbcd2f0l")  # on EMR Serverless, JSON is the default

    def body(storage, report):
        from spark_jobs.job_log import log

        with report.step("prepare"):
            log.warning("odd record for card %s", CARD, extra={"fields": {"raw": f"pan={CARD}"}})
        return JobResult(metrics={"stage": {"Things": 1}})

    assert run_job(traced_spec(tmp_path), body) == 0
    out, _ = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' not in line]
    assert [(line["level"], line.get("step")) for line in lines] == [("info", "prepare"), ("warning", None)]
    assert all(line["run_id"] == RUN_ID and line["job"] == "demo_job" for line in lines)
    assert CARD not in out and lines[1]["raw"] == "pan=**** **** **** 1111"
    assert find_summary(out).run_id == RUN_ID  # the summary line stays as it is


def test_an_unknown_log_format_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv(LOG_FORMAT_ENV, "yaml")
    with pytest.raises(ValueError, match="LAKEHOUSE_LOG_FORMAT='yaml'"):
        run_job(traced_spec(tmp_path), lambda storage, report: JobResult())


@pytest.mark.parametrize("bad", ["a/b", "two words", "..", ""])
def test_a_run_id_that_cannot_name_a_report_file_is_a_usage_error(bad, capsys):
    parser = argparse.ArgumentParser(prog="job.py")
    add_run_options(parser)
    with pytest.raises(SystemExit) as raised:
        parser.parse_args(["--run-id", bad])
    assert raised.value.code == 2 and "--run-id" in capsys.readouterr().err


def test_the_packaged_code_version_is_read_from_lakehouse_zip(tmp_path):
    from devtools import packaging

    archive = tmp_path / "lakehouse.zip"
    packaging.build_zip(archive, ["spark_jobs"], {"git_commit": "0123abcd" * 5})
    with zipfile.ZipFile(archive) as opened:
        assert "spark_jobs/BUILD_INFO.json" in opened.namelist()
    probe = "from spark_jobs.run_trace import code_version; print(code_version())"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(archive)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "0123abcd" * 5, result.stderr
    assert code_version() != "0123abcd" * 5  # the checkout's own commit


def test_a_steps_spark_jobs_carry_its_name_and_the_enclosing_one_comes_back(spark, tmp_path):
    """The jobs a step starts are in the step's job group (the Spark UI's Job Group) and carry SPARK_STEP_PROPERTY
    (the benchmark's per-step counts); a nested step names its own jobs, and leaving it names the outer step's."""
    from spark_jobs.run_report import SPARK_STEP_PROPERTY, RunReport

    context = spark.sparkContext
    report = RunReport(storage=open_lake(str(tmp_path), create=True), job="silver_and_gold", mode="stream")
    tracker = context.statusTracker()
    with report.step("outer_step"):
        spark.range(3).count()
        with report.step("inner_step"):
            spark.range(4).count()
            assert context.getLocalProperty(SPARK_STEP_PROPERTY) == "inner_step"
        assert context.getLocalProperty(SPARK_STEP_PROPERTY) == "outer_step"
        spark.range(5).count()
    assert context.getLocalProperty(SPARK_STEP_PROPERTY) is None
    assert context.getLocalProperty("spark.jobGroup.id") is None
    outer, inner = tracker.getJobIdsForGroup("outer_step"), tracker.getJobIdsForGroup("inner_step")
    assert len(outer) >= 2 and len(inner) >= 1
    assert max(inner) < max(outer) and not set(inner) & set(outer)


def test_a_step_outside_spark_labels_nothing(tmp_path, monkeypatch):
    """A job without a SparkContext (the feature store's, the serving's) times its steps as before."""
    from pyspark import SparkContext

    from spark_jobs.run_report import RunReport

    monkeypatch.setattr(SparkContext, "_active_spark_context", None)
    report = RunReport(storage=open_lake(str(tmp_path), create=True), job="ingest_features", mode="stream")
    with report.step("write"):
        pass
    assert set(report.steps) == {"write"}
