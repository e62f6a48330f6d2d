"""devtools/spark_submit.py: the one local spark-submit command and environment the dev tools use."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devtools import spark_submit
from devtools.repo import REPO_ROOT, SPARK_CONF_DIR


def test_environment_points_spark_at_the_repository_and_this_interpreter():
    environment = spark_submit.spark_submit_environment({"PYTHONPATH": "/elsewhere", "KEEP": "me"})
    assert environment["SPARK_CONF_DIR"] == str(SPARK_CONF_DIR)
    assert environment["PYSPARK_PYTHON"] == environment["PYSPARK_DRIVER_PYTHON"] == sys.executable
    assert environment["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
    assert environment["KEEP"] == "me"


def test_environment_defaults_to_this_process_and_does_not_change_it(monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("CARD_FRAUD_PROBE", "1")
    environment = spark_submit.spark_submit_environment()
    assert environment["CARD_FRAUD_PROBE"] == "1" and environment["PYTHONPATH"] == str(REPO_ROOT)
    assert "PYSPARK_PYTHON" not in os.environ or os.environ["PYSPARK_PYTHON"] == sys.executable


def test_command_runs_a_repository_entry_point_with_the_conf_pairs():
    command = spark_submit.spark_submit_command(
        "spark_jobs/silver_and_gold.py", ["--mode", "stream"], master="local[2]", conf=["a=1", "b=2"]
    )
    assert Path(command[0]).name == "spark-submit"
    assert command[1:] == [
        "--master",
        "local[2]",
        "--conf",
        "a=1",
        "--conf",
        "b=2",
        str(REPO_ROOT / "spark_jobs/silver_and_gold.py"),
        "--mode",
        "stream",
    ]


def test_missing_setup_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(spark_submit, "SPARK_CONF_DIR", tmp_path / "conf")
    with pytest.raises(spark_submit.SparkSetupMissing, match=r"spark-defaults.conf is missing: run `make setup`"):
        spark_submit.spark_submit_environment()
    monkeypatch.setattr(spark_submit.sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(spark_submit.SparkSetupMissing, match=r"bin/spark-submit is missing"):
        spark_submit.spark_submit_command("x.py", [], master="local[1]")
