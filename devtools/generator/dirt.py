"""What a real stream adds to valid records: re-deliveries (exact and conflicting) and invalid lines."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from devtools.generator.config import (
    CONFLICT_VARIANTS,
    DUPLICATE_VARIANTS,
    MOVED_TS_CONFLICT,
    MOVED_TS_CONFLICT_SHARE,
    MOVED_TS_DAYS,
    NORMAL_DELAY_MAX_US,
    QUARANTINE_REASONS,
    US_PER_HOUR,
    US_PER_SECOND,
    GeneratorConfig,
)
from devtools.generator.records import (
    BAD_VARIANTS,
    Originals,
    class_counts,
    record_items,
    serialize_items,
    with_field,
    without_field,
)
from devtools.generator.world import World, stage_rng


# --------------------------------------------------------------------------------------------- the run
def rate_count(rate: float, events: int, minimum: int = 0) -> int:
    if rate <= 0:
        return 0
    return max(minimum, round(rate * events))


def arrival_delay(rng: np.random.Generator, count: int) -> np.ndarray:
    """On-time Firehose delivery delay: seconds, sometimes minutes."""
    seconds = np.exp(rng.normal(math.log(4.0), 1.2, count))
    return np.clip((seconds * US_PER_SECOND).astype(np.int64), 50_000, NORMAL_DELAY_MAX_US)


def utc_datetime(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


def uuid_text(raw: str) -> str:
    """A random (version 4) UUID from 32 random hex digits, as Firehose appends to object names."""
    variant = "89ab"[int(raw[16], 16) % 4]
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-{variant}{raw[17:20]}-{raw[20:32]}"


def gzip_bytes(data: bytes, level: int) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def write_jsonl_gz(path: Path, rows: list[dict[str, Any]], level: int) -> int:
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    data = gzip_bytes(text.encode("utf-8"), level)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


@dataclass
class _ExtraLines:
    lines: list[str]
    arrival_us: np.ndarray
    kind: np.ndarray  # 1 duplicate, 2 conflict, 3 bad
    truth: list[dict[str, Any]]  # re-deliveries: event_id, class, variant
    meta: list[tuple[str, str, str | None]]  # bad lines: reason, variant, field


def redelivered_lines(
    cfg: GeneratorConfig, world: World, orig: Originals, arrival: np.ndarray, bucket_us: int
) -> _ExtraLines:
    """Exact re-deliveries (dup-rate) and conflicting ones (conflict-rate), each in a later file than the original.

    Conflicts are drawn from legitimate events only, so the fraud ground truth never depends on how silver
    settles a conflict; an event is re-delivered at most once.
    """
    rng = stage_rng(cfg.seed, 10)
    n = len(orig.event_ids)
    n_dup = min(rate_count(cfg.dup_rate, n), n)
    n_conflict = min(rate_count(cfg.conflict_rate, n), n - n_dup)
    legit_rows = np.flatnonzero(orig.fraud == 0)
    conflict_rows = np.sort(rng.choice(legit_rows, size=min(n_conflict, len(legit_rows)), replace=False))
    remaining = np.setdiff1d(np.arange(n), conflict_rows)
    dup_rows = np.sort(rng.choice(remaining, size=min(n_dup, len(remaining)), replace=False))
    lines: list[str] = []
    truth: list[dict[str, Any]] = []
    dup_variants = rng.choice(len(DUPLICATE_VARIANTS), size=len(dup_rows), p=[0.5, 0.2, 0.15, 0.15])
    for row, variant in zip(dup_rows.tolist(), dup_variants.tolist(), strict=True):
        name = DUPLICATE_VARIANTS[variant]
        items = record_items(orig, world, row)
        if name == "identical":
            lines.append(serialize_items(items))
        elif name == "key_order":
            order = rng.permutation(len(items))
            while (order == np.arange(len(items))).all():
                order = rng.permutation(len(items))
            lines.append(serialize_items([items[i] for i in order.tolist()]))
        elif name == "whitespace":
            compact = rng.random() < 0.5
            lines.append(
                serialize_items(items, ",", ":")
                if compact
                else "{ " + serialize_items(items, " ,  ", " : ")[1:-1] + " }"
            )
        else:
            lines.append(serialize_items([*items, ("delivery_attempt", "2")]))
        truth.append({"event_id": orig.event_ids[row], "class": "duplicate", "variant": name})
    conflict_variants = rng.integers(0, len(CONFLICT_VARIANTS), len(conflict_rows))
    # Drawn from a stage of their own, so every other line of the lake stays as it was without them.
    moved_rng = stage_rng(cfg.seed, 12)
    moved = moved_rng.random(len(conflict_rows)) < MOVED_TS_CONFLICT_SHARE
    moved_days = moved_rng.integers(MOVED_TS_DAYS[0], MOVED_TS_DAYS[1] + 1, len(conflict_rows))
    for index, (row, variant) in enumerate(zip(conflict_rows.tolist(), conflict_variants.tolist(), strict=True)):
        name = CONFLICT_VARIANTS[variant]
        items = _changed_payload(rng, world, orig, row, name)  # drawn even when moved: other lines stay as they were
        if moved[index]:  # the same payload but ts, days earlier: exact decimal text, same precision
            name = MOVED_TS_CONFLICT
            earlier = Decimal(orig.ts_text[row]) - int(moved_days[index]) * 86_400
            items = with_field(record_items(orig, world, row), "ts", str(earlier))
        lines.append(serialize_items(items))
        truth.append({"event_id": orig.event_ids[row], "class": "conflict", "variant": name})
    rows = np.concatenate([dup_rows, conflict_rows]).astype(np.int64)
    # at least one buffer interval later: always a later file, usually within the next two hours
    later = rng.integers(bucket_us, bucket_us + 2 * US_PER_HOUR, len(rows))
    kind = np.concatenate([np.ones(len(dup_rows), dtype=np.int8), np.full(len(conflict_rows), 2, dtype=np.int8)])
    return _ExtraLines(lines=lines, arrival_us=arrival[rows] + later, kind=kind, truth=truth, meta=[])


def _changed_payload(rng: np.random.Generator, world: World, orig: Originals, row: int, name: str) -> list:
    """The event's fields with another amount or another merchant (of the same country and channel)."""
    items = record_items(orig, world, row)
    if name == "amount":
        units, _, decimals = orig.amount_text[row].partition(".")
        new_units = int(units) + 1 + int(rng.integers(0, 50))
        return with_field(items, "amount", f"{new_units}.{decimals}" if decimals else str(new_units))
    merchant = int(orig.merchant[row])
    group = world.groups[(int(world.merchant_country[merchant]), bool(world.merchant_online[merchant]))]
    pool = group[group != merchant]
    if len(pool) == 0:
        pool = np.flatnonzero(np.arange(len(world.merchant_ids)) != merchant)
    return with_field(items, "merchant_id", f'"{world.merchant_ids[int(rng.choice(pool))]}"')


def invalid_lines(cfg: GeneratorConfig, world: World, orig: Originals, bad_ids: list[str], n_bad: int) -> _ExtraLines:
    """`n_bad` invalid lines spread evenly over the quarantine reasons, cycling through each reason's variants.

    Each starts from a real event's fields under a fresh event id and breaks exactly one rule.
    """
    rng = stage_rng(cfg.seed, 11)
    reasons = class_counts(n_bad, QUARANTINE_REASONS, rng)
    base_rows = rng.integers(0, len(orig.event_ids), n_bad)
    lines: list[str] = []
    meta: list[tuple[str, str, str | None]] = []
    cursor: Counter[str] = Counter()
    for reason, base, event_id in zip(reasons, base_rows.tolist(), bad_ids, strict=True):
        variants = BAD_VARIANTS[reason]
        name, field_name, build = variants[cursor[reason] % len(variants)]
        cursor[reason] += 1
        items = without_field(record_items(orig, world, base, event_id), "card_number")
        lines.append(build(items, rng, world.card_numbers[orig.card[base]]))
        meta.append((reason, name, field_name))
    arrival = orig.ts_us[base_rows] + arrival_delay(rng, n_bad)
    return _ExtraLines(lines=lines, arrival_us=arrival, kind=np.full(n_bad, 3, dtype=np.int8), truth=[], meta=meta)
