"""Where the repository is, and the environment a local `spark-submit` of its jobs needs."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SPARK_CONF_DIR = REPO_ROOT / ".spark" / "conf"
