"""The one way the dev tools run a job of this repository with the venv's `spark-submit`: the command and
the environment (the repository's rendered Spark conf, this interpreter for driver and executors, the
repository on PYTHONPATH). The local runner, the benchmark and the stream-equivalence check all use it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from devtools.repo import REPO_ROOT, SPARK_CONF_DIR


class SparkSetupMissing(FileNotFoundError):
    """spark-submit or the rendered spark-defaults.conf is missing: `make setup` has not run."""


def spark_submit_executable() -> Path:
    """The venv's spark-submit (pyspark installs it next to the interpreter)."""
    executable = Path(sys.executable).parent / "spark-submit"
    if not executable.exists():
        raise SparkSetupMissing(f"{executable} is missing: run `make setup`")
    return executable


def spark_submit_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with SPARK_CONF_DIR, PYSPARK_PYTHON, PYSPARK_DRIVER_PYTHON
    and the repository first on PYTHONPATH."""
    defaults = SPARK_CONF_DIR / "spark-defaults.conf"
    if not defaults.exists():
        raise SparkSetupMissing(f"{defaults} is missing: run `make setup`")
    environment = dict(os.environ if base is None else base)
    python_path = [str(REPO_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    environment.update(
        SPARK_CONF_DIR=str(SPARK_CONF_DIR),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join(python_path),
    )
    return environment


def spark_submit_command(
    entry_point: Path | str, arguments: Sequence[str], *, master: str, conf: Sequence[str] = ()
) -> list[str]:
    """`spark-submit --master <master> [--conf k=v ...] <entry point> <arguments>`; a relative entry point is a
    path in the repository."""
    conf_options = [option for pair in conf for option in ("--conf", pair)]
    return [str(spark_submit_executable()), "--master", master, *conf_options, str(REPO_ROOT / entry_point), *arguments]
