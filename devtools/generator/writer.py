"""generate_lake(): simulate, dirty, deliver into Firehose-like files, write chargebacks and the ground truth."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devtools.generator.config import (
    BAD_LINE_TRUTH_NAME,
    BRONZE_PREFIX,
    CHARGEBACK_MAX_DAYS,
    DUPLICATE_VARIANTS,
    FRAUD_TRUTH_NAME,
    GENERATOR_DIR,
    LABEL_REASONS,
    LABEL_TRUTH_NAME,
    LABELS_PREFIX,
    LATE_MIN_HOURS,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    POS_MODES,
    QUARANTINE_REASONS,
    REDELIVERY_TRUTH_NAME,
    SCENARIOS,
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
    US_PER_SECOND,
    GenerationSummary,
    GeneratorConfig,
    load_currencies,
)
from devtools.generator.dirt import (
    arrival_delay,
    gzip_bytes,
    invalid_lines,
    rate_count,
    redelivered_lines,
    utc_datetime,
    uuid_text,
    write_jsonl_gz,
)
from devtools.generator.events import (
    concat_events,
    simulate_fraud_events,
    simulate_legit_events,
    simulate_merchant_breaches,
)
from devtools.generator.records import (
    Originals,
    class_counts,
    finalize_events,
    original_lines,
    record_items,
    serialize_items,
)
from devtools.generator.world import World, build_world, hex_ids, stage_rng

UNREADABLE_RECORDS = 5  # records inside the truncated gzip file (with bad-rate)


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def _prepare_lake(cfg: GeneratorConfig) -> Path:
    root = Path(cfg.lake_root)
    owned = [root / BRONZE_PREFIX, root / LABELS_PREFIX, root / GENERATOR_DIR]
    existing = [p for p in owned if p.exists() and any(p.iterdir())]
    if existing and not cfg.overwrite:
        raise FileExistsError(
            f"{', '.join(map(str, existing))} already hold data; pass --overwrite to replace them "
            "(only the generator's own folders are removed)"
        )
    for path in owned:
        if path.exists():
            shutil.rmtree(path)
    return root


@dataclass
class _SpareIds:
    """Event ids beyond the originals' (drawn from a stream of their own): bad lines, the unreadable file's
    records and chargebacks of unknown events."""

    bad: list[str]
    unreadable: list[str]
    unknown_labels: list[str]


@dataclass
class _BronzeLines:
    """Every bronze record line (originals, re-deliveries, conflicts, bad lines) with its arrival time."""

    lines: list[str]
    arrival_us: np.ndarray
    kind: np.ndarray  # 0 original, 1 duplicate, 2 conflict, 3 bad
    late_rows: np.ndarray
    duplicates: int
    conflicts: int
    bad_meta: list[tuple[str, str, str | None]]
    redeliveries: list[dict[str, Any]]

    @property
    def bad(self) -> int:
        return len(self.bad_meta)


@dataclass
class _FilePlan:
    """Firehose files: one per buffer interval, the rows of each (`order[bounds[i]:bounds[i + 1]]`), their
    names and the files that get a CRLF, a BOM, no .gz suffix or blank lines."""

    order: np.ndarray
    bounds: list[int]
    name_ids: list[str]
    plain_name: set[int]
    crlf_files: set[int] = field(default_factory=set)
    bom_files: set[int] = field(default_factory=set)
    blank_at: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    blank_lines: int = 0

    @property
    def files(self) -> int:
        return len(self.bounds) - 1


@dataclass
class _BronzeFiles:
    written: list[dict[str, Any]]
    bad_truth: list[dict[str, Any]]
    bytes_written: int


def generate_lake(config: GeneratorConfig) -> GenerationSummary:
    """Write a generated lake under `config.lake_root` and return what was written."""
    started = time.perf_counter()
    cfg = config
    cfg.validate()
    progress = _Progress(cfg.progress)
    currencies = load_currencies(cfg.fx_rates)
    root = _prepare_lake(cfg)
    start_us = int(dt.datetime.combine(cfg.start, dt.time(), tzinfo=dt.UTC).timestamp()) * US_PER_SECOND
    end_us = start_us + cfg.days * US_PER_DAY

    world = build_world(cfg, currencies, start_us, end_us)
    orig, fraud_info, n_fraud_target = _simulate_events(cfg, world, start_us, end_us)
    progress(f"{cfg.events} events simulated ({int((orig.fraud > 0).sum())} fraud)")
    spare_ids = _assign_event_ids(cfg, orig, n_fraud_target)
    bronze = _bronze_lines(cfg, world, orig, spare_ids)
    progress(f"{len(bronze.lines)} bronze lines serialized")
    file_rng = stage_rng(cfg.seed, 6)  # drawn from by the file plan, then by the unreadable file
    plan = _plan_files(cfg, bronze, file_rng)
    files = _write_bronze_files(cfg, root, bronze, plan, progress)
    special, special_bytes = _write_special_files(cfg, root, world, orig, bronze, plan, spare_ids, file_rng)
    bronze_bytes = files.bytes_written + special_bytes
    progress(f"{plan.files} bronze files written ({bronze_bytes} bytes)")
    label_rows, label_truth, label_counts, label_bytes, label_files = _write_chargebacks(
        cfg, root, orig, spare_ids.unknown_labels
    )
    _write_ground_truth(cfg, root, world, orig, bronze, files, label_rows, label_truth)
    counts = {
        **_event_counts(cfg, world, orig, fraud_info),
        **_bronze_counts(cfg, orig, bronze, plan),
        "bronze_bytes": bronze_bytes,
        "label_bytes": label_bytes,
        **label_counts,
        "label_files": label_files,
    }
    manifest_path = _write_manifest(cfg, root, (start_us, end_us), counts, special, fraud_info, files.written)
    return GenerationSummary(
        lake_root=root.resolve(),
        manifest_path=manifest_path.resolve(),
        events=cfg.events,
        fraud_events=counts["fraud_events"],
        files=counts["bronze_files"] + label_files,
        bytes_written=bronze_bytes + label_bytes,
        bad_lines=bronze.bad,
        duplicates=bronze.duplicates,
        conflicts=bronze.conflicts,
        late_events=counts["late_events"],
        blank_lines=plan.blank_lines,
        chargebacks=label_counts["chargebacks"],
        seconds=time.perf_counter() - started,
        counts=counts,
    )


def _simulate_events(
    cfg: GeneratorConfig, world: World, start_us: int, end_us: int
) -> tuple[Originals, dict[str, Any], int]:
    """Phase 1: the N valid events (legitimate and fraud), in event-time order; the fraud info; the fraud target
    (of the card scenarios: merchant breaches relabel legitimate events on top of it)."""
    n_fraud_target = round(cfg.events * cfg.fraud_rate)
    legit = simulate_legit_events(cfg, world, cfg.events - n_fraud_target, start_us, end_us)
    fraud, fraud_info = simulate_fraud_events(cfg, world, legit, n_fraud_target, start_us=start_us, end_us=end_us)
    if len(fraud.ts_us) < n_fraud_target:  # only when cards or days are too few for bursts: top up with legit
        legit = concat_events(
            [legit, simulate_legit_events(cfg, world, n_fraud_target - len(fraud.ts_us), start_us, end_us, stage=12)]
        )
    breaches = simulate_merchant_breaches(cfg, world, legit, fraud, fraud_info, start_us=start_us, end_us=end_us)
    fraud_info["breached_merchants"] = [
        {
            "merchant_id": world.merchant_ids[merchant],
            "window_start_us": window_start,
            "window_end_us": window_end,
            "authorizations": authorizations,
            "fraud_events": frauds,
        }
        for merchant, window_start, window_end, authorizations, frauds in breaches
    ]
    return finalize_events(cfg, world, concat_events([legit, fraud])), fraud_info, n_fraud_target


def _assign_event_ids(cfg: GeneratorConfig, orig: Originals, n_fraud_target: int) -> _SpareIds:
    """Phase 2: ids of the originals from one stream, every other id from another, all checked unique."""
    n = cfg.events
    n_bad = rate_count(cfg.bad_rate, n, minimum=len(QUARANTINE_REASONS))
    n_unreadable_records = UNREADABLE_RECORDS if cfg.bad_rate > 0 else 0
    n_unknown_labels = rate_count(cfg.bad_rate, n_fraud_target, minimum=1) if cfg.bad_rate > 0 else 0
    orig.event_ids = hex_ids(stage_rng(cfg.seed, 5), n)
    other_ids = hex_ids(stage_rng(cfg.seed, 8), n_bad + n_unreadable_records + n_unknown_labels)
    if len(set(orig.event_ids).union(other_ids)) != n + len(other_ids):  # 128 random bits: never in practice
        raise RuntimeError("event id collision; pick another seed")
    return _SpareIds(
        bad=other_ids[:n_bad],
        unreadable=other_ids[n_bad : n_bad + n_unreadable_records],
        unknown_labels=other_ids[n_bad + n_unreadable_records :],
    )


def _bronze_lines(cfg: GeneratorConfig, world: World, orig: Originals, spare_ids: _SpareIds) -> _BronzeLines:
    """Phase 3: the originals (some late), re-deliveries, conflicts and bad lines, each with an arrival time."""
    n = cfg.events
    lines = original_lines(orig, world)
    arrival_rng = stage_rng(cfg.seed, 9)
    arrival = orig.ts_us + arrival_delay(arrival_rng, n)
    n_late = rate_count(cfg.late_rate, n)
    late_rows = np.sort(arrival_rng.choice(n, size=n_late, replace=False))
    late_delay = arrival_rng.uniform(LATE_MIN_HOURS, max(cfg.late_max_hours, LATE_MIN_HOURS), n_late)
    arrival[late_rows] = orig.ts_us[late_rows] + (late_delay * US_PER_HOUR).astype(np.int64)
    redelivered = redelivered_lines(cfg, world, orig, arrival, US_PER_HOUR // cfg.files_per_hour)
    bad = invalid_lines(cfg, world, orig, spare_ids.bad, len(spare_ids.bad))
    return _BronzeLines(
        lines=lines + redelivered.lines + bad.lines,
        arrival_us=np.concatenate([arrival, redelivered.arrival_us, bad.arrival_us]),
        kind=np.concatenate([np.zeros(n, dtype=np.int8), redelivered.kind, np.full(len(bad.lines), 3, dtype=np.int8)]),
        late_rows=late_rows,
        duplicates=int((redelivered.kind == 1).sum()),
        conflicts=int((redelivered.kind == 2).sum()),
        bad_meta=bad.meta,
        redeliveries=redelivered.truth,
    )


def _plan_files(cfg: GeneratorConfig, bronze: _BronzeLines, file_rng: np.random.Generator) -> _FilePlan:
    """Phase 4: one file per Firehose buffer interval (files_per_hour per arrival hour), rows sorted by arrival;
    with bad-rate, some files get CRLF line ends, a BOM or blank and whitespace-only lines."""
    order = np.lexsort((np.arange(len(bronze.arrival_us)), bronze.arrival_us))
    buckets = bronze.arrival_us[order] // (US_PER_HOUR // cfg.files_per_hour)
    bounds = [0, *(np.flatnonzero(np.diff(buckets)) + 1).tolist(), len(order)]
    n_files = len(bounds) - 1
    name_ids = hex_ids(file_rng, n_files + 2)
    plain_name = set(file_rng.choice(n_files, size=max(1, round(0.02 * n_files)), replace=False).tolist())
    plan = _FilePlan(order=order, bounds=bounds, name_ids=name_ids, plain_name=plain_name)
    if cfg.bad_rate > 0:
        plan.crlf_files = set(file_rng.choice(n_files, size=max(1, round(0.02 * n_files)), replace=False).tolist())
        plan.bom_files = set(file_rng.choice(n_files, size=max(1, round(0.02 * n_files)), replace=False).tolist())
        plan.blank_lines = max(2, round(0.1 * bronze.bad))
        for number in range(plan.blank_lines):
            file_index = int(file_rng.integers(0, n_files))
            size = bounds[file_index + 1] - bounds[file_index]
            text = "" if number % 2 == 0 else (" ", "\t", "  \t  ")[number // 2 % 3]
            plan.blank_at.setdefault(file_index, []).append((int(file_rng.integers(0, size + 1)), text))
    return plan


def _write_bronze_files(
    cfg: GeneratorConfig, root: Path, bronze: _BronzeLines, plan: _FilePlan, progress: _Progress
) -> _BronzeFiles:
    """Phase 4, written: each planned file under its arrival hour's folder, with the bad lines' positions."""
    bronze_root = root / BRONZE_PREFIX
    files = _BronzeFiles(written=[], bad_truth=[], bytes_written=0)
    made_dirs: set[Path] = set()
    next_report = 0
    for file_index in range(plan.files):
        rows = plan.order[plan.bounds[file_index] : plan.bounds[file_index + 1]]
        first = utc_datetime(int(bronze.arrival_us[rows[0]]))
        folder = bronze_root / first.strftime("ingest_dt=%Y/%m/%d/%H")
        name = f"{cfg.stream_name}-1-{first.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid_text(plan.name_ids[file_index])}"
        if file_index not in plan.plain_name:
            name += ".gz"
        body, line_numbers = _file_body(bronze, plan, file_index, rows)
        newline = "\r\n" if file_index in plan.crlf_files else "\n"
        text = newline.join(body) + newline
        if file_index in plan.bom_files:
            text = "\ufeff" + text
        data = gzip_bytes(text.encode("utf-8", "surrogateescape"), cfg.compress_level)
        if folder not in made_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            made_dirs.add(folder)
        (folder / name).write_bytes(data)
        files.bytes_written += len(data)
        relative = str((folder / name).relative_to(root))
        bad_positions = np.flatnonzero(bronze.kind[rows] == 3)
        for position in bad_positions.tolist():
            reason, variant, field_name = bronze.bad_meta[rows[position] - (len(bronze.kind) - bronze.bad)]
            files.bad_truth.append(
                {
                    "file": relative,
                    "line": int(line_numbers[position]),
                    "reason": reason,
                    "variant": variant,
                    "field": field_name,
                }
            )
        files.written.append(_file_entry(plan, file_index, relative, len(body), len(data), len(bad_positions)))
        if file_index * 10 >= next_report * plan.files:
            progress(f"{file_index + 1}/{plan.files} bronze files written")
            next_report += 1
    return files


def _file_body(
    bronze: _BronzeLines, plan: _FilePlan, file_index: int, rows: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """A file's lines (its records plus any planned blank lines) and each record's 1-based line number."""
    body = [bronze.lines[i] for i in rows.tolist()]
    line_numbers = np.arange(1, len(rows) + 1)
    blanks = sorted(plan.blank_at.get(file_index, []))
    if blanks:
        positions = np.array([p for p, _ in blanks])
        # a blank inserted at position p sits before the record at p: shift every record from p on
        line_numbers = line_numbers + np.searchsorted(positions, np.arange(len(rows)), side="right")
        for offset, (position, text) in enumerate(blanks):
            body.insert(position + offset, text)
    return body, line_numbers


def _file_entry(
    plan: _FilePlan, file_index: int, relative: str, lines: int, size: int, bad_lines: int
) -> dict[str, Any]:
    """A file's entry in the manifest: path, lines, bytes and what is special about it."""
    entry: dict[str, Any] = {"path": relative, "lines": lines, "bytes": size}
    if plan.blank_at.get(file_index):
        entry["blank_lines"] = len(plan.blank_at[file_index])
    if bad_lines:
        entry["bad_lines"] = bad_lines
    for flag, chosen in (("crlf", plan.crlf_files), ("bom", plan.bom_files)):
        if file_index in chosen:
            entry[flag] = True
    if file_index in plan.plain_name:
        entry["gz_suffix"] = False
    return entry


def _write_special_files(
    cfg: GeneratorConfig,
    root: Path,
    world: World,
    orig: Originals,
    bronze: _BronzeLines,
    plan: _FilePlan,
    spare_ids: _SpareIds,
    file_rng: np.random.Generator,
) -> tuple[dict[str, Any], int]:
    """Phase 5: the unreadable file (a gzip cut short, with bad-rate) and the ignored in-flight temporary."""
    bronze_root = root / BRONZE_PREFIX
    special: dict[str, Any] = {}
    written = 0
    if cfg.bad_rate > 0:
        base_rows = file_rng.integers(0, cfg.events, len(spare_ids.unreadable))
        body = "".join(
            serialize_items(record_items(orig, world, r, e)) + "\n"
            for r, e in zip(base_rows.tolist(), spare_ids.unreadable, strict=True)
        )
        whole = gzip_bytes(body.encode("utf-8"), cfg.compress_level)
        cut = whole[: max(12, len(whole) * 3 // 5)]  # a delivery cut short: the deflate stream just stops
        when = utc_datetime(int(orig.ts_us[base_rows[0]]) + US_PER_MINUTE)
        path = (
            bronze_root
            / when.strftime("ingest_dt=%Y/%m/%d/%H")
            / (f"{cfg.stream_name}-1-{when.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid_text(plan.name_ids[plan.files])}.gz")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cut)
        written += len(cut)
        special["unreadable_file"] = {
            "path": str(path.relative_to(root)),
            "reason": "truncated gzip",
            "records_inside": len(spare_ids.unreadable),
        }
    first_arrival = utc_datetime(int(bronze.arrival_us[plan.order[0]]))
    first_folder = bronze_root / first_arrival.strftime("ingest_dt=%Y/%m/%d/%H")
    ignored = first_folder / f".tmp-{cfg.stream_name}-1-{uuid_text(plan.name_ids[plan.files + 1])}.gz"
    # An in-flight temporary: copies of real records, so a reader that does not skip it sees duplicates.
    inside = min(3, cfg.events)
    ignored_data = gzip_bytes(("\n".join(bronze.lines[:inside]) + "\n").encode("utf-8"), cfg.compress_level)
    ignored.write_bytes(ignored_data)
    written += len(ignored_data)
    special["ignored_file"] = {"path": str(ignored.relative_to(root)), "records_inside": inside}
    return special, written


def _write_ground_truth(
    cfg: GeneratorConfig,
    root: Path,
    world: World,
    orig: Originals,
    bronze: _BronzeLines,
    files: _BronzeFiles,
    label_rows: list[dict[str, Any]],
    label_truth: list[dict[str, Any]],
) -> None:
    """Phase 7: the fraud events (with their report time), the bad lines, the label records and the
    re-deliveries, each sorted, as gzipped JSON lines under _generator/."""
    report_by_event: dict[str, int] = {}
    for row in label_rows:
        if row["class"] == "chargeback":
            report_by_event.setdefault(row["event_id"], row["reported_at"])
    fraud_truth = [
        {
            "event_id": orig.event_ids[row],
            "card_id": world.card_ids[orig.card[row]],
            "ts_us": int(orig.ts_us[row]),
            "scenario": SCENARIOS[int(orig.fraud[row]) - 1],
            "burst": int(orig.burst[row]),
            "merchant_id": world.merchant_ids[orig.merchant[row]],
            "amount_usd": round(float(orig.amount_usd[row]), 4),
            "reported_at": report_by_event.get(orig.event_ids[row]),
        }
        for row in np.flatnonzero(orig.fraud > 0).tolist()
    ]
    fraud_truth.sort(key=lambda r: (r["ts_us"], r["event_id"]))
    files.bad_truth.sort(key=lambda r: (r["file"], r["line"]))
    bronze.redeliveries.sort(key=lambda r: r["event_id"])
    for name, rows in (
        (FRAUD_TRUTH_NAME, fraud_truth),
        (BAD_LINE_TRUTH_NAME, files.bad_truth),
        (LABEL_TRUTH_NAME, label_truth),
        (REDELIVERY_TRUTH_NAME, bronze.redeliveries),
    ):
        write_jsonl_gz(root / GENERATOR_DIR / name, rows, cfg.compress_level)


def _event_counts(cfg: GeneratorConfig, world: World, orig: Originals, fraud_info: dict[str, Any]) -> dict[str, Any]:
    """The manifest's counts of the valid events: fraud, cards, merchants, currencies, POS modes, countries."""
    fraud_mask = orig.fraud > 0
    return {
        "events": cfg.events,
        "legit_events": int((~fraud_mask).sum()),
        "fraud_events": int(fraud_mask.sum()),
        "fraud_events_by_scenario": {s: int((orig.fraud == i + 1).sum()) for i, s in enumerate(SCENARIOS)},
        "fraud_bursts": int(fraud_info["bursts"]),
        "compromised_merchants": len(fraud_info["compromised_merchants"]),
        "breached_merchants": len(fraud_info["breached_merchants"]),
        "cards": cfg.cards,
        "cards_with_events": len(np.unique(orig.card)),
        "merchants": len(world.merchant_ids),
        "events_with_card_number": sum(1 for c in orig.card_number if c),
        "events_by_currency": dict(sorted(Counter(orig.currency).items())),
        "events_by_pos_mode": {p: orig.pos.count(p) for p in POS_MODES},
        "events_by_country": dict(sorted(Counter(orig.country).items())),
    }


def _bronze_counts(cfg: GeneratorConfig, orig: Originals, bronze: _BronzeLines, plan: _FilePlan) -> dict[str, Any]:
    """The manifest's counts of bronze: files and their oddities, lines, records, the dirt by class and reason."""
    variant_counts = Counter(r["variant"] for r in bronze.redeliveries if r["class"] == "duplicate")
    bad_reasons = [reason for reason, _, _ in bronze.bad_meta]
    return {
        "bronze_files": plan.files + (1 if cfg.bad_rate > 0 else 0),
        "readable_files": plan.files,
        "unreadable_files": 1 if cfg.bad_rate > 0 else 0,
        "ignored_files": 1,
        "files_without_gz_suffix": len(plan.plain_name),
        "crlf_files": len(plan.crlf_files),
        "bom_files": len(plan.bom_files),
        "lines": len(bronze.lines) + plan.blank_lines,
        "records": len(bronze.lines),
        "valid_records": cfg.events + bronze.duplicates + bronze.conflicts,
        "blank_lines": plan.blank_lines,
        "whitespace_only_lines": plan.blank_lines // 2,
        "duplicates": bronze.duplicates,
        "duplicates_by_variant": {v: variant_counts[v] for v in DUPLICATE_VARIANTS},
        "conflicts": bronze.conflicts,
        "late_events": len({orig.event_ids[r] for r in bronze.late_rows.tolist()}),
        "bad_lines": bronze.bad,
        "bad_lines_by_reason": {r: bad_reasons.count(r) for r in QUARANTINE_REASONS},
        "bad_lines_by_variant": dict(sorted(Counter(f"{r}/{v}" for r, v, _ in bronze.bad_meta).items())),
    }


def _write_manifest(
    cfg: GeneratorConfig,
    root: Path,
    window_us: tuple[int, int],
    counts: dict[str, Any],
    special: dict[str, Any],
    fraud_info: dict[str, Any],
    written: list[dict[str, Any]],
) -> Path:
    """Phase 8: _generator/manifest.json: the arguments, the window, every count, the special files, the
    ground-truth tables and every bronze file."""
    start_us, end_us = window_us
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "generator": "scripts/generate_transactions.py",
        "arguments": cfg.arguments(),
        "window": {
            "start": utc_datetime(start_us).isoformat(),
            "end": utc_datetime(end_us).isoformat(),
            "start_us": start_us,
            "end_us": end_us,
        },
        "rates_are_shares_of": "events",
        "counts": counts,
        "special_files": special,
        "compromised_merchants": fraud_info["compromised_merchants"],
        "breached_merchants": fraud_info["breached_merchants"],
        "ground_truth": {
            "fraud_events": f"{GENERATOR_DIR}/{FRAUD_TRUTH_NAME}",
            "bad_lines": f"{GENERATOR_DIR}/{BAD_LINE_TRUTH_NAME}",
            "label_records": f"{GENERATOR_DIR}/{LABEL_TRUTH_NAME}",
            "redeliveries": f"{GENERATOR_DIR}/{REDELIVERY_TRUTH_NAME}",
        },
        "files": written,
    }
    manifest_path = root / GENERATOR_DIR / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest_path


def _write_chargebacks(
    cfg: GeneratorConfig, root: Path, orig: Originals, unknown_ids: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], int, int]:
    """Phase 6, chargebacks by report day: one per fraud event of a reported burst; with bad-rate also repeated
    reports, reports of unknown events and invalid lines. Returns every label record (sorted), the label ground
    truth, the label counts, the bytes and the number of files written."""
    rng = stage_rng(cfg.seed, 7)
    fraud_rows = np.flatnonzero(orig.fraud > 0)
    burst_delay = _report_delays(cfg, orig, fraud_rows, rng)
    records: list[dict[str, Any]] = []  # reported_at, class, event_id; the line text is added below
    for row in fraud_rows.tolist():
        burst = int(orig.burst[row])
        if burst not in burst_delay:
            continue
        jitter = float(rng.uniform(0, 3 * 3600))
        reported_at = math.ceil(orig.ts_us[row] / US_PER_SECOND + burst_delay[burst] * 86400 + jitter)
        records.append({"reported_at": reported_at, "event_id": orig.event_ids[row], "class": "chargeback"})
    n_chargebacks = len(records)
    n_repeated = 0
    bad: list[dict[str, Any]] = []
    if cfg.bad_rate > 0 and n_chargebacks:
        repeated = rng.choice(n_chargebacks, size=max(1, round(0.03 * n_chargebacks)), replace=False)
        for index in sorted(repeated.tolist()):
            again = dict(records[index])
            again["reported_at"] += int(rng.integers(86400, 20 * 86400))
            again["class"] = "repeated_report"
            records.append(again)
        n_repeated = len(repeated)
    if cfg.bad_rate > 0:
        window = (int(orig.ts_us.min()) // US_PER_SECOND, int(orig.ts_us.max()) // US_PER_SECOND + 7 * 86400)
        for event_id in unknown_ids:
            records.append({"reported_at": int(rng.integers(*window)), "event_id": event_id, "class": "unknown_event"})
        bad = _invalid_label_records(cfg, orig, n_chargebacks, rng)
    for record in records:
        record["text"] = f'{{"event_id": "{record["event_id"]}", "reported_at": {record["reported_at"]}}}'
    every = sorted(records + bad, key=lambda r: (r["reported_at"], r["text"]))
    truth, total_bytes, files = _write_label_files(cfg, root, every, rng)
    delays = np.array(sorted(burst_delay.values())) if burst_delay else np.zeros(1)
    counts = {
        "chargebacks": n_chargebacks,
        "fraud_events_reported": n_chargebacks,
        "fraud_events_never_reported": len(fraud_rows) - n_chargebacks,
        "repeated_reports": n_repeated,
        "unknown_event_reports": len(unknown_ids) if cfg.bad_rate > 0 else 0,
        "label_bad_records": len(bad),
        "label_bad_records_by_reason": {r: sum(1 for b in bad if b["reason"] == r) for r in LABEL_REASONS},
        "label_records": len(every),
        "chargeback_delay_days": {
            "p50": round(float(np.quantile(delays, 0.5)), 2),
            "p90": round(float(np.quantile(delays, 0.9)), 2),
            "share_within_7_days": round(float((delays <= 7).mean()), 3),
            "max": round(float(delays.max()), 2),
        },
    }
    return every, truth, counts, total_bytes, files


def _report_delays(
    cfg: GeneratorConfig, orig: Originals, fraud_rows: np.ndarray, rng: np.random.Generator
) -> dict[int, float]:
    """The reported bursts (chargeback-rate of them) and each one's dispute delay in days: most within a week,
    a long tail up to 60 days."""
    bursts = np.unique(orig.burst[fraud_rows])
    reported_bursts = np.sort(rng.permutation(bursts)[: round(cfg.chargeback_rate * len(bursts))])
    within_week = rng.random(len(reported_bursts)) < 0.85
    delay_days = np.where(
        within_week,
        np.clip(rng.gamma(2.0, 1.3, len(reported_bursts)), 0.05, 7.0),
        np.minimum(7.0 + rng.exponential(15.0, len(reported_bursts)), CHARGEBACK_MAX_DAYS),
    )
    return dict(zip(reported_bursts.tolist(), delay_days.tolist(), strict=True))


def _invalid_label_records(
    cfg: GeneratorConfig, orig: Originals, n_chargebacks: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Invalid label lines spread over the label reasons, cycling through three variants of each."""
    n_bad = max(len(LABEL_REASONS), round(cfg.bad_rate * max(n_chargebacks, 1)))
    bad = []
    for number, reason in enumerate(class_counts(n_bad, LABEL_REASONS, rng)):
        row = int(rng.integers(0, len(orig.event_ids)))
        event_id = orig.event_ids[row]
        ts_s = int(orig.ts_us[row] // US_PER_SECOND)
        reported_at = ts_s + int(rng.integers(3600, 10 * 86400))
        variant = number // len(LABEL_REASONS) % 3
        if reason == "reported_before_event":  # a clock or join error upstream
            reported_at = ts_s - int(rng.integers(60, 5 * 86400))
        card_number = orig.card_number[row] or "4111111111111111"  # a card-not-present event has none
        text = _invalid_label_text(reason, variant, event_id, reported_at, card_number)
        bad.append({"reported_at": reported_at, "text": text, "class": "invalid", "reason": reason})
    return bad


def _invalid_label_text(reason: str, variant: int, event_id: str, reported_at: int, card_number: str) -> str:
    good = f'{{"event_id": "{event_id}", "reported_at": {reported_at}}}'
    if reason == "malformed_json":
        return (good[: len(good) // 2], f"[{good}]", "null")[variant]
    if reason == "missing_field":
        return (
            f'{{"reported_at": {reported_at}}}',
            f'{{"event_id": "{event_id}", "reported_at": null}}',
            f'{{"event_id": "", "reported_at": {reported_at}}}',
        )[variant]
    if reason == "bad_type":
        return (
            f'{{"event_id": 12345, "reported_at": {reported_at}}}',
            f'{{"event_id": "{event_id}", "reported_at": "{reported_at}"}}',
            f'{{"event_id": "{event_id}", "reported_at": true}}',
        )[variant]
    if reason == "field_too_long":  # event_id over 128 characters (the value is never shown)
        return f'{{"event_id": "{(event_id * 200)[: (129, 200, 4000)[variant]]}", "reported_at": {reported_at}}}'
    if reason == "card_number_in_field":  # the event's card number leaked into the feed
        spaced = " ".join(card_number[i : i + 4] for i in range(0, len(card_number), 4))
        return (
            f'{{"event_id": "{card_number}", "reported_at": {reported_at}}}',
            f'{{"event_id": "{event_id}", "reported_at": {reported_at}, "note": "card {spaced}"}}',
            f'{{"event_id": "{event_id}", "reported_at": {reported_at}, "{card_number}": true}}',
        )[variant]
    return good  # reported_before_event: a well-formed line whose time is before the event's


def _write_label_files(
    cfg: GeneratorConfig, root: Path, every: list[dict[str, Any]], rng: np.random.Generator
) -> tuple[list[dict[str, Any]], int, int]:
    """One gzipped JSON-lines file per report day; returns the label ground truth, the bytes and the files."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for record in every:
        by_day.setdefault(utc_datetime(record["reported_at"] * US_PER_SECOND).strftime("%Y/%m/%d"), []).append(record)
    total_bytes = 0
    truth: list[dict[str, Any]] = []
    label_root = root / LABELS_PREFIX
    name_ids = hex_ids(rng, len(by_day), 4)
    for (day, day_records), suffix in zip(sorted(by_day.items()), name_ids, strict=True):
        path = label_root / f"reported_dt={day}" / f"chargebacks-{day.replace('/', '-')}-{suffix}.jsonl.gz"
        text = "".join(r["text"] + "\n" for r in day_records)
        data = gzip_bytes(text.encode("utf-8"), cfg.compress_level)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total_bytes += len(data)
        relative = str(path.relative_to(root))
        for line, record in enumerate(day_records, start=1):
            entry = {"file": relative, "line": line, "class": record["class"]}
            if "reason" in record:
                entry["reason"] = record["reason"]
            if record["class"] != "invalid":
                entry["event_id"] = record["event_id"]
                entry["reported_at"] = record["reported_at"]
            truth.append(entry)
    return truth, total_bytes, len(by_day)


def generate_once(config: GeneratorConfig, *, echo: Callable[[str], None] = print) -> Path:
    """The lake `config` describes, generated into `config.lake_root` (overwriting), or reused as it is when an
    earlier call completed the same arguments there (a `_generator/complete` marker written last)."""
    from devtools.generator.manifest import load_manifest

    root = Path(config.lake_root)
    done = root / GENERATOR_DIR / "complete"
    if done.exists() and load_manifest(root)["arguments"] == config.arguments():
        echo(f"reusing the generated lake {root}")
        return root
    echo(f"generating {config.events:,} events, {config.cards:,} cards, {config.days} days into {root}")
    generate_lake(config)
    done.write_text("ok\n")
    return root
