"""Reading a generated lake's manifest and ground truth back."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

from devtools.generator.config import GENERATOR_DIR, MANIFEST_NAME, GeneratorConfig
from devtools.repo import REPO_ROOT


# --------------------------------------------------------------------------------------------- ground truth
def load_manifest(lake_root: Path | str) -> dict[str, Any]:
    """The manifest of a generated lake."""
    return json.loads((Path(lake_root) / GENERATOR_DIR / MANIFEST_NAME).read_text(encoding="utf-8"))


def load_truth(lake_root: Path | str, name: str) -> list[dict[str, Any]]:
    """A ground-truth table of a generated lake: `fraud_events`, `bad_lines`, `label_records` or `redeliveries`."""
    relative = load_manifest(lake_root)["ground_truth"][name]
    with gzip.open(Path(lake_root) / relative, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def config_from_manifest(lake_root: Path | str, *, target: Path | str | None = None) -> GeneratorConfig:
    """The configuration that produced a generated lake (to regenerate it, into `target` if given)."""
    arguments = dict(load_manifest(lake_root)["arguments"])
    arguments["start"] = dt.date.fromisoformat(arguments["start"])
    fx_rates = Path(arguments["fx_rates"])
    arguments["fx_rates"] = fx_rates if fx_rates.is_absolute() else REPO_ROOT / fx_rates
    return GeneratorConfig(**arguments, lake_root=Path(target if target is not None else lake_root))
