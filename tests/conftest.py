"""Shared fixtures: one local SparkSession for the whole test run."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    from spark_jobs.session import build_spark_session

    session = build_spark_session("tests", master="local[2]", extra_conf={"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()
