"""Which bronze lines the batch builds, which a live scoring service sees (and in what order), which never.

A generated lake's bronze is split at `split_us` (midnight of the first served day):

- *history*: every arrival-hour folder before the split, built by the batch pipeline before serving starts;
- *served*: the lines of later folders whose event time is at or after the split, in event-time order
  (ties in arrival order, so the first delivery of an event is served first, as silver keeps the first seen),
  except those of the held-out events;
- *held out*: a seeded share of the served days' event ids, every delivery of them: they reach the platform
  only through bronze;
- *late history*: lines of later folders whose event time is before the split (late deliveries): they too
  reach the platform only through bronze.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

BRONZE = "bronze/streaming/card_authorization"
US_PER_SECOND = 1_000_000
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class BronzeLine:
    """One non-blank bronze line, where it was delivered and the event time it claims (None: unreadable)."""

    folder: str  # arrival hour, relative to the bronze prefix: ingest_dt=YYYY/MM/DD/HH
    file: str
    line_number: int  # 1-based, as silver numbers lines
    body: bytes  # the raw bytes, as a producer sent them (the server judges bytes: invalid UTF-8 included)
    event_id: str | None
    ts_us: int | None


@dataclass(frozen=True)
class ServePlan:
    split_us: int
    history_folders: list[str]
    later_folders: list[str]
    requests: list[BronzeLine]  # served, in this order
    held_out_event_ids: frozenset[str]
    late_history_lines: int  # later-arriving lines with an event time before the split
    unreadable_lines: int  # later-arriving lines without a usable event_id or ts: never served
    unreadable_files: int  # later-arriving files that do not decompress: never served


def arrival_folders(lake: Path) -> list[str]:
    """Arrival-hour folders of a lake's bronze, in arrival order."""
    root = lake / BRONZE
    return sorted(str(path.relative_to(root)) for path in root.glob("ingest_dt=*/*/*/*") if path.is_dir())


def folder_start_us(folder: str) -> int:
    """The first microsecond of an arrival-hour folder `ingest_dt=YYYY/MM/DD/HH` (UTC)."""
    from datetime import UTC, datetime

    year, month, day, hour = folder.removeprefix("ingest_dt=").split("/")
    start = datetime(int(year), int(month), int(day), int(hour), tzinfo=UTC)
    return int(start.timestamp()) * US_PER_SECOND


def read_raw_lines(path: Path) -> list[bytes] | None:
    """A bronze file's lines as bytes (split on newlines only), or None when it cannot be decompressed (a
    truncated upload: not served)."""
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError):
            return None
    return data.split(b"\n")


def claimed_event(body: bytes) -> tuple[str | None, int | None]:
    """The event_id and ts_us a line claims, for ordering only (the server's contract decides validity)."""
    try:
        record = json.loads(body.decode("utf-8", errors="replace"), parse_float=Decimal)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(record, dict):
        return None, None
    event_id, ts = record.get("event_id"), record.get("ts")
    if not isinstance(event_id, str) or isinstance(ts, bool) or not isinstance(ts, int | Decimal):
        return (event_id if isinstance(event_id, str) else None), None
    try:
        ts_us = int(Decimal(ts) * US_PER_SECOND)
    except (InvalidOperation, OverflowError, ValueError):
        return event_id, None
    return event_id, ts_us


def bronze_lines(lake: Path, folders: list[str]) -> tuple[list[BronzeLine], int]:
    """The non-blank lines of the folders' files, and the number of files that could not be read."""
    lines, unreadable_files = [], 0
    for folder in folders:
        for path in sorted((lake / BRONZE / folder).iterdir()):
            texts = read_raw_lines(path)
            if texts is None:
                unreadable_files += 1
                continue
            for number, body in enumerate(texts, start=1):
                if body.strip():
                    event_id, ts_us = claimed_event(body)
                    lines.append(BronzeLine(folder, path.name, number, body, event_id, ts_us))
    return lines, unreadable_files


def plan_serving(staged: Path, split_us: int, *, holdout_share: float, seed: int) -> ServePlan:
    """Split a generated lake's bronze into history, served requests and held-out events (seeded)."""
    if not 0.0 <= holdout_share < 1.0:
        raise ValueError(f"holdout share must be within [0, 1), got {holdout_share}")
    folders = arrival_folders(staged)
    if not folders:
        raise ValueError(f"{staged / BRONZE} holds no arrival-hour folders: generate a lake first")
    history = [folder for folder in folders if folder_start_us(folder) < split_us]
    later = folders[len(history) :]
    if not history or not later:
        raise ValueError(f"the split leaves no history or nothing to serve ({len(history)} of {len(folders)} hours)")
    lines, unreadable_files = bronze_lines(staged, later)
    readable = [line for line in lines if line.event_id is not None and line.ts_us is not None]
    candidates = [line for line in readable if line.ts_us >= split_us]
    event_ids = sorted({line.event_id for line in candidates})
    held_out = frozenset(random.Random(seed).sample(event_ids, round(holdout_share * len(event_ids))))
    # Stable sort: equal ts_us keep arrival order (folder, file, line), the order silver sees deliveries in.
    requests = sorted((line for line in candidates if line.event_id not in held_out), key=lambda line: line.ts_us)
    return ServePlan(
        split_us=split_us,
        history_folders=history,
        later_folders=later,
        requests=requests,
        held_out_event_ids=held_out,
        late_history_lines=sum(1 for line in readable if line.ts_us < split_us),
        unreadable_lines=len(lines) - len(readable),
        unreadable_files=unreadable_files,
    )


def deliver(staged: Path, lake: Path, folders: list[str]) -> int:
    """Copy arrival-hour folders into the lake's bronze (as Firehose would deliver them). Returns files copied."""
    copied = 0
    for folder in folders:
        target = lake / BRONZE / folder
        shutil.copytree(staged / BRONZE / folder, target, dirs_exist_ok=True)
        copied += sum(1 for _ in target.iterdir())
    return copied
