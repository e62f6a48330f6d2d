"""The batch pipeline the measurement drives: a stream run of silver and gold, and the feature-store ingestion
(which also brings the online state in line with silver).

`SparkSubmitPipeline` runs the jobs as the README does (`spark-submit --master local[*] …`, one JVM each);
`InProcessPipeline` calls the same entry points in this process, on the test suite's Spark session.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Protocol

from devtools.repo import REPO_ROOT
from devtools.serving_consistency.sync_state import sync_local_state, synced
from devtools.spark_submit import spark_submit_command, spark_submit_environment


class BatchPipeline(Protocol):
    def stream(self, lake: Path) -> None: ...

    def ingest(self, lake: Path) -> None:
        """Register the feature groups (idempotent), ingest gold's changes, sync the online state."""
        ...


def _require_state(lake: Path) -> None:
    from feature_store.online_state import local_state_path

    if not local_state_path(lake).exists():
        raise RuntimeError(
            f"the ingestion left no online state at {local_state_path(lake)}: it must sync the state from silver"
        )


class SparkSubmitPipeline:
    def __init__(self, *, master: str = "local[*]", log_dir: Path) -> None:
        self.master = master
        self.log_dir = log_dir

    def _run(self, name: str, command: list[str]) -> None:
        environment = spark_submit_environment()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            result = subprocess.run(command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=log, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed with exit status {result.returncode}; see {log_path}")

    def _spark_submit(self, name: str, script: str, *arguments: str) -> None:
        self._run(name, spark_submit_command(script, arguments, master=self.master))

    def stream(self, lake: Path) -> None:
        self._spark_submit(
            "silver_and_gold",
            "spark_jobs/silver_and_gold.py",
            "--mode",
            "stream",
            "--allow-development-token-key",
            "--lake-root",
            str(lake),
        )

    def ingest(self, lake: Path) -> None:
        register = [
            sys.executable,
            str(REPO_ROOT / "feature_store/register_feature_groups.py"),
            "--lake-root",
            str(lake),
        ]
        self._run("register_feature_groups", register)
        self._spark_submit("ingest_features", "feature_store/ingest_features.py", "--lake-root", str(lake))
        if not synced(lake):  # an ingestion job without the state sync: run it ourselves
            self._run(
                "sync_state",
                [sys.executable, "-m", "devtools.serving_consistency.sync_state", "--lake-root", str(lake)],
            )
        _require_state(lake)


class InProcessPipeline:
    """The same entry points called in this process (tests: one Spark session for the whole suite)."""

    def stream(self, lake: Path) -> None:
        from spark_jobs import silver_and_gold

        silver_and_gold.main(["--mode", "stream", "--allow-development-token-key", "--lake-root", str(lake)])

    def ingest(self, lake: Path) -> None:
        from feature_store import ingest_features, register_feature_groups

        register_feature_groups.main(["--lake-root", str(lake)])
        status = ingest_features.main(["--lake-root", str(lake)])
        if status:
            raise RuntimeError(f"ingest_features exited {status}")
        if not synced(lake):  # an ingestion job without the state sync: run it ourselves
            from spark_jobs.session import build_spark_session

            sync_local_state(build_spark_session("serving-consistency-sync"), lake)
        _require_state(lake)
