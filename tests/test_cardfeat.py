"""The `cardfeat` console script (cardfeat/cli.py) and the exit-code convention (spark_jobs/exit_codes.py)."""

from __future__ import annotations

import importlib
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from cardfeat import cli
from spark_jobs import exit_codes

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda command: command.name)
def test_every_command_is_a_program_with_its_own_parser_and_main(command, capsys):
    assert (REPO_ROOT / command.path).is_file()
    module = importlib.import_module(command.module)
    assert callable(module.main) and callable(getattr(module, command.parse))
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_command(command, ["--help"])
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_the_console_script_is_declared_and_installed():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"cardfeat": "cardfeat.cli:main"}
    assert project["project"]["license"] == "Apache-2.0" and (REPO_ROOT / "LICENSE").is_file()
    assert "pip install --quiet --disable-pip-version-check --no-deps -e ." in (REPO_ROOT / "Makefile").read_text()


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["silver-and-golden"])
    assert exit_info.value.code == exit_codes.USAGE
    assert "invalid choice: 'silver-and-golden'" in capsys.readouterr().err


def test_a_command_runs_its_program_in_process(tmp_path, capsys):
    missing = tmp_path / "no-lake"
    assert cli.main(["get-features", "--card-id", "c-1", "--lake-root", str(missing)]) == exit_codes.PRECONDITION_FAILED
    error = capsys.readouterr().err
    assert f"no local online store at {missing}/feature_store/online.db" in error
    assert "cardfeat run-pipeline --mode stream" in error and "Traceback" not in error


def test_a_spark_job_runs_through_spark_submit_of_its_entry_point(monkeypatch):
    launched = []

    def fake_run(command, env, check):
        launched.append((command, env))
        return subprocess.CompletedProcess(command, exit_codes.DEAD_LETTERS)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    monkeypatch.setenv(cli.SPARK_MASTER_VARIABLE, "local[2]")
    code = cli.main(["ingest", "--lake-root", "./lake", "--max-attempts", "3"])
    assert code == exit_codes.DEAD_LETTERS  # the job's own exit code
    [(command, env)] = launched
    assert Path(command[0]).name == "spark-submit" and command[1:3] == ["--master", "local[2]"]
    assert command[3:] == [str(REPO_ROOT / "feature_store/ingest_features.py"), "--lake-root", "./lake",
                           "--max-attempts", "3"]  # fmt: skip
    assert env["SPARK_CONF_DIR"] == str(REPO_ROOT / ".spark" / "conf")


def test_a_spark_job_usage_error_starts_no_jvm(monkeypatch, capsys):
    monkeypatch.setattr(cli.subprocess, "run", lambda *args, **kwargs: pytest.fail("spark-submit started"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["silver-and-gold", "--mode", "nightly"])
    assert exit_info.value.code == exit_codes.USAGE
    assert "invalid choice: 'nightly'" in capsys.readouterr().err


def test_docs_cli_lists_every_exit_code_by_its_name():
    text = (REPO_ROOT / "docs" / "cli.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \|", text, flags=re.MULTILINE))
    names = {code: [name for name in vars(exit_codes) if name.isupper() and getattr(exit_codes, name) == code]
             for code in exit_codes.CODES}  # fmt: skip
    assert {int(code) for code in rows} == set(exit_codes.CODES)
    for code, documented in rows.items():
        assert set(re.findall(r"`([A-Z_]+)`", documented)) == set(names[int(code)]), code


def test_only_argparse_exits_two():
    """No program returns USAGE by hand: 2 comes from argparse alone."""
    programs = [REPO_ROOT / command.path for command in cli.COMMANDS]
    for path in programs:
        text = path.read_text()
        assert not re.search(r"return 2\b|exit\(2\)", text), path


def test_ingesting_into_a_group_not_registered_is_a_failed_precondition(tmp_path, monkeypatch, capsys):
    from feature_store import ingest_features, ingestion

    with pytest.raises(ingestion.FeatureGroupNotReady, match="cardfeat register"):
        ingestion.check_group(None, "card-features-v1")

    def no_group(*args, **kwargs):
        ingestion.check_group(None, "card-features-v1")

    monkeypatch.setattr(ingest_features, "run_ingestion", no_group)
    assert ingest_features.main(["--lake-root", str(tmp_path)]) == exit_codes.PRECONDITION_FAILED
    error = capsys.readouterr().err
    assert "feature group card-features-v1 does not exist" in error and "Traceback" not in error


def test_a_spark_job_without_make_setup_says_so(monkeypatch, capsys):
    from devtools import spark_submit

    def missing(*args, **kwargs):
        raise spark_submit.SparkSetupMissing(".venv/bin/spark-submit is missing: run `make setup`")

    monkeypatch.setattr(spark_submit, "spark_submit_command", missing)
    assert cli.main(["build-datasets", "--as-of", "2026-01-29"]) == exit_codes.PRECONDITION_FAILED
    assert (
        "cardfeat build-datasets: error: .venv/bin/spark-submit is missing: run `make setup`" in capsys.readouterr().err
    )
