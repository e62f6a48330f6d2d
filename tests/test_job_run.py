"""The job entry boilerplate (spark_jobs/job_run.py), the summary line's format and the lake's paths."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from spark_jobs import lake
from spark_jobs.job_run import INPUT_ERROR_EXIT_CODE, JobResult, JobSpec, run_job
from spark_jobs.run_report import find_summary, parse_summary_line, summary_line
from spark_jobs.storage import open_lake


class RefusedInput(RuntimeError):
    pass


def spec(tmp_path: Path, **overrides) -> JobSpec:
    (tmp_path / "lake").mkdir(exist_ok=True)  # an existing lake (a missing one is refused, see below)
    values = {
        "job": "demo_job",
        "mode": "stream",
        "lake_root": str(tmp_path / "lake"),
        "arguments": {"mode": "stream", "date": None, "lookback_hours": 48},
    }
    values.update(overrides)
    return JobSpec(**values)


def only_report(tmp_path: Path) -> dict:
    (path,) = (tmp_path / "lake" / lake.RUNS_PREFIX).glob("*.json")
    return json.loads(path.read_text())


def test_a_successful_body_finishes_with_its_status_metrics_and_exit_code(tmp_path, capsys):
    def body(storage, report):
        report.add(files=2, accepted=7)
        return JobResult(status="dead_lettered", metrics={"stage": {"Things": 7}}, exit_code=3, note="see the file")

    assert run_job(spec(tmp_path), body) == 3
    report = only_report(tmp_path)
    assert report["status"] == "dead_lettered" and report["counts"] == {"files": 2, "accepted": 7}
    assert report["arguments"] == {"mode": "stream", "lookback_hours": "48"}  # unset values are not recorded
    out, err = capsys.readouterr()
    metrics = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert metrics[0]["Things"] == 7 and metrics[0]["Stage"] == "stage"
    summary = find_summary(err)  # a run that did not succeed prints its summary on stderr
    assert (
        summary is not None and summary.status == "dead_lettered" and summary.counts == {"files": "2", "accepted": "7"}
    )
    assert summary.report_uri == lake.run_report_uri(open_lake(str(tmp_path / "lake")), report["run_id"])
    assert err.rstrip().endswith("see the file")


def test_a_failing_body_finishes_failed_with_the_failure_metrics_and_reraises(tmp_path, capsys):
    def body(storage, report):
        raise ValueError("bad things")

    with pytest.raises(ValueError, match="bad things"):
        run_job(spec(tmp_path, failure_metrics={"stage": {"RunFailed": 1}}), body)
    report = only_report(tmp_path)
    assert report["status"] == "failed" and report["error"] == "ValueError: bad things"
    out, err = capsys.readouterr()
    assert '"RunFailed": 1' in out and find_summary(err).status == "failed"


def test_an_input_error_is_a_message_and_a_failed_precondition_not_a_traceback(tmp_path, capsys):
    def body(storage, report):
        raise RefusedInput("too little history")

    assert run_job(spec(tmp_path, input_errors=(RefusedInput,)), body) == INPUT_ERROR_EXIT_CODE == 5
    assert only_report(tmp_path)["status"] == "failed"
    assert "demo_job.py: error: too little history" in capsys.readouterr().err


def test_the_summary_line_round_trips_and_other_lines_are_not_summaries():
    line = summary_line(
        "silver_and_gold",
        "daily",
        "succeeded",
        "daily-20260102T000500Z-1a2b3c4d",
        {"files": 3, "quarantined_by_reason": {"bad_type": 1}, "accepted": 120},
        41.25,
        "s3://bucket/lake/_runs/daily-20260102T000500Z-1a2b3c4d.json",
    )
    parsed = parse_summary_line(line)
    assert parsed is not None
    assert (parsed.job, parsed.mode, parsed.status, parsed.run_id) == (
        "silver_and_gold",
        "daily",
        "succeeded",
        "daily-20260102T000500Z-1a2b3c4d",
    )
    assert parsed.counts == {"files": "3", "accepted": "120"}  # nested counts stay in the report
    assert parsed.duration_seconds == 41.25
    assert parsed.report_uri == "s3://bucket/lake/_runs/daily-20260102T000500Z-1a2b3c4d.json"
    no_counts = parse_summary_line("job m failed: run_id=r duration=0.5s report=file:///r.json")
    assert no_counts is not None and no_counts.counts == {}
    for other in ("done report=file:///r.json", "[stream-1] silver_prepare ...", '{"_aws": {}}', ""):
        assert parse_summary_line(other) is None


def test_lake_uris_are_canonical_and_paths_are_what_spark_opens(tmp_path):
    storage = open_lake(str(tmp_path / "lake"), create=True)
    root = (tmp_path / "lake").resolve()
    assert lake.table_uri(storage, lake.GOLD_TABLE) == f"file://{root}/gold/card_features"
    assert lake.table_path(storage, lake.GOLD_TABLE) == f"{root}/gold/card_features"
    assert lake.gold_watermark_uri(storage) == f"file://{root}/_state/gold_watermark.json"
    assert lake.dead_letter_file_uri(storage, "ingest-1") == f"file://{root}/_dead_letter/feature_store/ingest-1.jsonl"
    assert lake.training_split_prefix(date(2026, 2, 1), "train") == "gold/training/as_of=2026-02-01/train"
    assert lake.local_online_store_path(str(tmp_path / "lake")) == f"{root}/feature_store/online.db"
    assert lake.local_online_store_path("s3://bucket/lake") is None
    s3 = open_lake("s3://bucket/lake")
    assert (
        lake.table_path(s3, lake.SILVER_TABLE)
        == lake.table_uri(s3, lake.SILVER_TABLE)
        == ("s3://bucket/lake/silver/card_transactions")
    )


def test_typed_options_check_themselves():
    from feature_store.dead_letters import DeadLetterReplayOptions
    from feature_store.ingestion import IngestOptions
    from spark_jobs.silver_and_gold import GoldOptions

    sunday, monday = date(2026, 1, 4), date(2026, 1, 5)
    assert GoldOptions("daily", day=sunday).vacuum_full and not GoldOptions("daily", day=monday).vacuum_full
    assert GoldOptions("daily", day=monday, vacuum_mode="full").vacuum_full
    assert not GoldOptions("daily", day=sunday, vacuum_mode="lite").vacuum_full
    with pytest.raises(ValueError, match="daily mode needs the day"):
        GoldOptions("daily")
    with pytest.raises(ValueError, match="mode 'hourly'"):
        GoldOptions("hourly")
    with pytest.raises(ValueError, match="max_attempts"):
        IngestOptions(max_attempts=0)
    with pytest.raises(ValueError, match="max_attempts"):
        DeadLetterReplayOptions(max_attempts=0)
    writer = IngestOptions(feature_group="g", max_attempts=3).writer_options()
    assert (writer.feature_group, writer.max_attempts, writer.ttl) == ("g", 3, None)


def test_a_missing_local_lake_is_a_failed_precondition_unless_create_lake(tmp_path, capsys):
    """A mistyped --lake-root used to become a new empty lake and a run that succeeded on nothing."""
    from spark_jobs import exit_codes

    ran = []
    missing = tmp_path / "lkae"
    body = lambda storage, report: ran.append(storage.root) or JobResult()  # noqa: E731
    assert run_job(spec(tmp_path, lake_root=str(missing)), body) == exit_codes.PRECONDITION_FAILED
    assert not missing.exists() and ran == []
    err = capsys.readouterr().err
    assert f"demo_job.py: error: --lake-root {missing}: no lake at {missing} (it does not exist)" in err
    assert "--create-lake" in err
    created = spec(tmp_path, lake_root=str(missing), arguments={"create_lake": True})
    assert run_job(created, body) == exit_codes.OK
    assert missing.is_dir() and ran == [f"file://{missing}"]


def test_a_job_parser_takes_create_lake():
    from spark_jobs.silver_and_gold import parse_args

    assert parse_args(["--lake-root", "x"]).create_lake is False
    assert parse_args(["--lake-root", "x", "--create-lake"]).create_lake is True


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"currency,usd_rate\nUSD,1\nEUR,abc\n", "line 3 field usd_rate: 'abc' is not a plain decimal number"),
        (b"currency,usd_rate\nUSD,1\nEUR,1.1\xff\n", "line 3: not UTF-8"),
    ],
)
def test_a_bad_fx_rates_file_is_refused_naming_the_file_and_line(tmp_path, capsys, content, where):
    from spark_jobs import exit_codes
    from spark_jobs.silver_and_gold import main

    fx_rates = tmp_path / "fx.csv"
    fx_rates.write_bytes(content)
    (tmp_path / "lake").mkdir()
    code = main(["--lake-root", str(tmp_path / "lake"), "--fx-rates", str(fx_rates)])
    assert code == exit_codes.INVALID_INPUT
    assert f"silver_and_gold.py: error: --fx-rates {fx_rates} {where}" in capsys.readouterr().err


def test_an_unreadable_fx_rates_file_is_refused_naming_it(tmp_path, capsys):
    from spark_jobs import exit_codes
    from spark_jobs.silver_and_gold import main

    (tmp_path / "lake").mkdir()
    missing = tmp_path / "fx-typo.csv"
    assert main(["--lake-root", str(tmp_path / "lake"), "--fx-rates", str(missing)]) == exit_codes.INVALID_INPUT
    assert f"silver_and_gold.py: error: --fx-rates {missing}: cannot read it" in capsys.readouterr().err
