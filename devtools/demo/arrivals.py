"""The demo's deliveries: the staged lake's bronze and chargeback files, split by arrival hour into
consecutive arrivals and copied into the lake's bronze, as Firehose would over time."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BRONZE = Path("bronze/streaming/card_authorization")
LABELS = Path("bronze/labels/chargebacks")


def arrival_hour(path: Path, root: Path) -> datetime:
    """The arrival hour of a bronze file: its ingest_dt=YYYY/MM/DD/HH folder."""
    parts = path.relative_to(root).parts
    year, month, day, hour = parts[0].removeprefix("ingest_dt="), parts[1], parts[2], parts[3]
    return datetime(int(year), int(month), int(day), int(hour), tzinfo=UTC)


def reported_day(path: Path, root: Path) -> date:
    parts = path.relative_to(root).parts
    return date(int(parts[0].removeprefix("reported_dt=")), int(parts[1]), int(parts[2]))


def plan_arrivals(staging: Path, start: date, days: int, arrivals: int) -> list[dict]:
    """Split the staged bronze by arrival hour into `arrivals` consecutive deliveries (the last one takes
    everything left, late events included), with the chargeback files reported by each cutoff."""
    bronze_root, labels_root = staging / BRONZE, staging / LABELS
    files = sorted(p for p in bronze_root.rglob("*") if p.is_file())
    labels = sorted(p for p in labels_root.rglob("*") if p.is_file()) if labels_root.exists() else []
    origin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    plan = []
    for index in range(arrivals):
        cutoff = origin + timedelta(days=days * (index + 1) / arrivals)
        low = origin + timedelta(days=days * index / arrivals) if index else None
        last = index == arrivals - 1
        plan.append(
            {
                "number": index + 1,
                "cutoff": cutoff,
                "files": [
                    p
                    for p in files
                    if (low is None or arrival_hour(p, bronze_root) >= low)
                    and (last or arrival_hour(p, bronze_root) < cutoff)
                ],
                "labels": [
                    p
                    for p in labels
                    if (low is None or reported_day(p, labels_root) >= low.date())
                    and reported_day(p, labels_root) < cutoff.date()
                ],
            }
        )
    return plan


def deliver(arrival: dict, staging: Path, lake: Path) -> int:
    size = 0
    for path in arrival["files"] + arrival["labels"]:
        target = lake / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        size += path.stat().st_size
    return size
