"""Medians, the machine, the versions and the Spark settings the results record."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from devtools.benchmark.options import BenchmarkOptions
from devtools.repo import REPO_ROOT, SPARK_CONF_DIR


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


def summarize_runs(runs: list[dict], keys: tuple[str, ...]) -> dict:
    return {key: median([run.get(key) for run in runs]) for key in keys}


def machine_info() -> dict:
    import psutil

    info: dict[str, Any] = {
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def versions() -> dict:
    from importlib import metadata

    found = {}
    for package in ("pyspark", "delta-spark", "duckdb", "pyarrow", "deltalake", "psutil", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
        found["java"] = (java.stderr or java.stdout).splitlines()[0] if (java.stderr or java.stdout) else None
    except (OSError, subprocess.SubprocessError):
        found["java"] = None
    return found


def spark_settings(options: BenchmarkOptions) -> dict:
    from spark_jobs.session import LOCAL_DEFAULTS, RUNTIME_DEFAULTS

    defaults_file = SPARK_CONF_DIR / "spark-defaults.conf"
    jvm = {}
    if defaults_file.exists():
        for line in defaults_file.read_text().splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0].startswith("spark.") and parts[0] != "spark.jars":
                jvm[parts[0]] = parts[1].strip()
    return {
        "master": options.spark_master,
        "spark_defaults_conf": jvm,
        "runtime_defaults": RUNTIME_DEFAULTS,
        "local_defaults": LOCAL_DEFAULTS,
        "extra_conf": options.spark_conf,
    }


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def settle_load(limit: float | None, longest_wait: float) -> dict:
    """The 1-minute load average as a timed run starts; with `limit`, after waiting (polling every 10 s, at most
    `longest_wait` s) for it to fall to `limit`, so that a run does not start on the previous run's tail."""
    started = time.monotonic()
    load = os.getloadavg()[0]
    if limit is not None and load > limit:
        log(f"load average {load:.2f} > {limit:g}: waiting up to {longest_wait:.0f} s before the next timed run")
        while load > limit and time.monotonic() - started < longest_wait:
            time.sleep(10)
            load = os.getloadavg()[0]
    return {"load_average_before": round(load, 2), "waited_for_load_seconds": round(time.monotonic() - started, 1)}


def log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)
