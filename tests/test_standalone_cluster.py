"""Nothing depends on local mode: a Spark standalone master and two workers on loopback (one core and 1 GB each,
devtools/standalone_cluster.py) run a full build of a small generated lake and then a stream batch on top of it,
through the benchmark's spark-submit (the local runner's too), the job's packages shipped to the executors as
lakehouse.zip (--py-files, as on EMR). After each run the DuckDB reference finds the lake's tables equal to its
own. The executors are JVMs of their own with Python workers of their own: a job that only works when driver
and executors share a process (driver-side state read in a task, a path relative to the driver's working
directory, the driver's environment in a task) fails here."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import psutil
import pytest

from devtools import standalone_cluster as module
from devtools.benchmark import reference
from devtools.benchmark.lakes import batch_lines, write_batch
from devtools.benchmark.options import BenchmarkOptions, SparkRunSettings
from devtools.benchmark.processes import require_success, run_report, spark_submit
from devtools.benchmark.stages import FULL_BUILD_ARGS
from devtools.generator import GeneratorConfig, generate_lake
from devtools.standalone_cluster import ClusterStartError, executor_package, standalone_cluster, start_cluster

EVENTS, CARDS, DAYS, SEED = 2000, 40, 6, 7
BATCH_EVENTS = 200
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # the generator's default start


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The loopback cluster, stopped on every way out of the module; then nothing it started may be alive."""
    with standalone_cluster(tmp_path_factory.mktemp("standalone-cluster"), workers=2) as running:
        yield running
    assert running.leftover_processes() == [], "the standalone cluster left processes behind"


def _run_on_cluster(cluster, settings: SparkRunSettings, lake: Path, arguments: list[str], what: str) -> dict:
    run = spark_submit(settings, "spark_jobs/silver_and_gold.py", [*arguments, "--lake-root", str(lake)])
    if run.returncode != 0:  # the job's own output first, then where the executors failed
        logs = "\n".join(
            path.read_text(errors="replace")[-3000:] for path in cluster.work_dir.glob("worker-*/*/*/stderr")
        )
        require_success(run, f"{what} on {cluster.master_url} (executor logs:\n{logs})")
    return run_report(lake, run)


def _verify(lake: Path, reference_dir: Path) -> dict:
    reference.build(lake, reference_dir, fx_rates=reference.DEFAULT_FX_RATES, threads=1, chunk_files=400)
    return reference.verify(lake, reference_dir)


@pytest.mark.slow
def test_full_build_and_stream_batch_on_a_standalone_cluster(cluster, tmp_path):
    status = cluster.status()
    assert [worker["state"] for worker in status["workers"]] == ["ALIVE", "ALIVE"]
    lake = tmp_path / "lake"  # absolute: the executors' working directory is their worker's app folder
    generate_lake(GeneratorConfig(events=EVENTS, cards=CARDS, days=DAYS, seed=SEED, lake_root=lake, overwrite=True))
    settings = SparkRunSettings(
        master=cluster.master_url, conf=tuple(cluster.submit_conf(executor_package(tmp_path / "code")))
    )

    full = _run_on_cluster(cluster, settings, lake, FULL_BUILD_ARGS, "full build")
    assert full["status"] == "succeeded" and full["counts"]["accepted"] > 0
    after_full = _verify(lake, tmp_path / "reference-full")
    assert after_full["equal"] is True, after_full

    options = BenchmarkOptions(
        events=EVENTS, days=DAYS, seed=SEED, work_dir=tmp_path / "work", stream_batch=BATCH_EVENTS
    )
    history_end = START + dt.timedelta(days=DAYS)
    lines = batch_lines(options, cards=CARDS, history_end=history_end, daily_rate=EVENTS / DAYS)
    write_batch(lake, lines, history_end)
    stream = _run_on_cluster(
        cluster, settings, lake, ["--mode", "stream", "--allow-development-token-key"], "stream batch"
    )
    assert stream["status"] == "succeeded" and stream["counts"]["accepted"] == BATCH_EVENTS
    after_stream = _verify(lake, tmp_path / "reference-stream")
    assert after_stream["equal"] is True, after_stream
    assert after_stream["spark_gold_rows"] == after_full["spark_gold_rows"] + BATCH_EVENTS

    # Both runs ran on the cluster's two executors (not in a local driver): the master saw two applications.
    finished = cluster.status()["completedapps"]
    assert len(finished) == 2 and all(app["state"] == "FINISHED" for app in finished), finished


def test_a_cluster_not_up_in_time_fails_with_the_daemons_logs_and_leaves_nothing(tmp_path):
    with pytest.raises(ClusterStartError) as failure:
        start_cluster(tmp_path / "cluster", workers=1, timeout_seconds=0.5)
    message = str(failure.value)
    assert "not up within 0 s" in message or "exited during start-up" in message
    assert f"{tmp_path}/cluster/logs/master.log" in message and "worker-1.log" in message
    running = [
        process.pid
        for process in psutil.process_iter()
        if str(tmp_path) in " ".join(_command_line(process))  # the daemons' classpath names their conf folder
    ]
    assert running == []


def _command_line(process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.mark.slow
def test_a_port_taken_before_the_master_binds_it_is_retried_with_new_ports(tmp_path, monkeypatch):
    """free_port() only finds a port free now: if another process binds it first, the master must fail (not bind
    port + 1, which the cluster's URL would not name) and the start retry with new ports."""
    taken = socket.socket()
    taken.bind((module.LOOPBACK, 0))
    taken.listen()
    chosen, really_free = [], module.free_port

    def first_the_taken_port() -> int:  # the master's port on the first attempt, then truly free ones
        chosen.append(taken.getsockname()[1] if not chosen else really_free())
        return chosen[-1]

    monkeypatch.setattr(module, "free_port", first_the_taken_port)
    try:
        cluster = start_cluster(tmp_path / "cluster", workers=1, timeout_seconds=60)
        try:
            assert cluster.master_url != f"spark://{module.LOOPBACK}:{chosen[0]}"
            assert [worker["state"] for worker in cluster.status()["workers"]] == ["ALIVE"]
        finally:
            cluster.stop()
        assert cluster.leftover_processes() == []
    finally:
        taken.close()
