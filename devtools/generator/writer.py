"""generate_lake(): simulate, dirty, deliver into Firehose-like files, write chargebacks and the ground truth."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import sys
import time
from collections import Counter
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
from devtools.generator.events import concat_events, simulate_fraud_events, simulate_legit_events
from devtools.generator.records import (
    Originals,
    class_counts,
    finalize_events,
    original_lines,
    record_items,
    serialize_items,
)
from devtools.generator.world import build_world, hex_ids, stage_rng


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

    # 1. the world and the N valid events --------------------------------------------------------------------
    world = build_world(cfg, currencies, start_us, end_us)
    n_fraud_target = round(cfg.events * cfg.fraud_rate)
    legit = simulate_legit_events(cfg, world, cfg.events - n_fraud_target, start_us, end_us)
    fraud, fraud_info = simulate_fraud_events(cfg, world, legit, n_fraud_target, start_us=start_us, end_us=end_us)
    if len(fraud.ts_us) < n_fraud_target:  # only when cards or days are too few for bursts: top up with legit
        legit = concat_events(
            [legit, simulate_legit_events(cfg, world, n_fraud_target - len(fraud.ts_us), start_us, end_us, stage=12)]
        )
    orig = finalize_events(cfg, world, concat_events([legit, fraud]))
    n = cfg.events
    progress(f"{n} events simulated ({int((orig.fraud > 0).sum())} fraud)")

    # 2. ids: originals from one stream, everything else from another, all checked unique ---------------------
    n_bad = rate_count(cfg.bad_rate, n, minimum=len(QUARANTINE_REASONS))
    n_unreadable_records = 5 if cfg.bad_rate > 0 else 0
    n_unknown_labels = rate_count(cfg.bad_rate, n_fraud_target, minimum=1) if cfg.bad_rate > 0 else 0
    orig.event_ids = hex_ids(stage_rng(cfg.seed, 5), n)
    other_ids = hex_ids(stage_rng(cfg.seed, 8), n_bad + n_unreadable_records + n_unknown_labels)
    if len(set(orig.event_ids).union(other_ids)) != n + len(other_ids):  # 128 random bits: never in practice
        raise RuntimeError("event id collision; pick another seed")
    bad_ids = other_ids[:n_bad]
    unreadable_ids = other_ids[n_bad : n_bad + n_unreadable_records]
    unknown_label_ids = other_ids[n_bad + n_unreadable_records :]

    # 3. bronze lines: originals, re-deliveries, conflicts, bad lines, each with an arrival time -------------
    lines = original_lines(orig, world)
    arrival_rng = stage_rng(cfg.seed, 9)
    arrival = orig.ts_us + arrival_delay(arrival_rng, n)
    n_late = rate_count(cfg.late_rate, n)
    late_rows = np.sort(arrival_rng.choice(n, size=n_late, replace=False))
    late_delay = arrival_rng.uniform(LATE_MIN_HOURS, max(cfg.late_max_hours, LATE_MIN_HOURS), n_late)
    arrival[late_rows] = orig.ts_us[late_rows] + (late_delay * US_PER_HOUR).astype(np.int64)
    bucket_us = US_PER_HOUR // cfg.files_per_hour
    redelivered = redelivered_lines(cfg, world, orig, arrival, bucket_us)
    lines += redelivered.lines
    bad = invalid_lines(cfg, world, orig, bad_ids, n_bad)
    lines += bad.lines
    all_arrival = np.concatenate([arrival, redelivered.arrival_us, bad.arrival_us])
    all_kind = np.concatenate([np.zeros(n, dtype=np.int8), redelivered.kind, np.full(n_bad, 3, dtype=np.int8)])
    n_dup = int((redelivered.kind == 1).sum())
    n_conflict = int((redelivered.kind == 2).sum())
    bad_meta = bad.meta
    bad_reasons = [reason for reason, _, _ in bad_meta]
    redeliveries = redelivered.truth
    variant_counts = Counter(r["variant"] for r in redeliveries if r["class"] == "duplicate")
    progress(f"{len(lines)} bronze lines serialized")

    # 4. files: one per Firehose buffer interval (files_per_hour per arrival hour), sorted by arrival ---------
    order = np.lexsort((np.arange(len(all_arrival)), all_arrival))
    buckets = all_arrival[order] // bucket_us
    bounds = [0, *(np.flatnonzero(np.diff(buckets)) + 1).tolist(), len(order)]
    n_files = len(bounds) - 1
    file_rng = stage_rng(cfg.seed, 6)
    name_ids = hex_ids(file_rng, n_files + 2)
    plain_name = set(file_rng.choice(n_files, size=max(1, round(0.02 * n_files)), replace=False).tolist())
    crlf_files: set[int] = set()
    bom_files: set[int] = set()
    blank_at: dict[int, list[tuple[int, str]]] = {}
    n_blank = 0
    if cfg.bad_rate > 0:
        crlf_files = set(file_rng.choice(n_files, size=max(1, round(0.02 * n_files)), replace=False).tolist())
        bom_files = set(file_rng.choice(n_files, size=max(1, round(0.02 * n_files)), replace=False).tolist())
        n_blank = max(2, round(0.1 * n_bad))
        for number in range(n_blank):
            file_index = int(file_rng.integers(0, n_files))
            size = bounds[file_index + 1] - bounds[file_index]
            text = "" if number % 2 == 0 else (" ", "\t", "  \t  ")[number // 2 % 3]
            blank_at.setdefault(file_index, []).append((int(file_rng.integers(0, size + 1)), text))

    bronze_root = root / BRONZE_PREFIX
    written: list[dict[str, Any]] = []
    bad_truth: list[dict[str, Any]] = []
    line_file = np.empty(len(lines), dtype=np.int64)
    total_bytes = 0
    made_dirs: set[Path] = set()
    next_report = 0
    for file_index in range(n_files):
        rows = order[bounds[file_index] : bounds[file_index + 1]]
        line_file[rows] = file_index
        first = utc_datetime(int(all_arrival[rows[0]]))
        folder = bronze_root / first.strftime("ingest_dt=%Y/%m/%d/%H")
        name = f"{cfg.stream_name}-1-{first.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid_text(name_ids[file_index])}"
        if file_index not in plain_name:
            name += ".gz"
        body = [lines[i] for i in rows.tolist()]
        line_numbers = np.arange(1, len(rows) + 1)
        blanks = sorted(blank_at.get(file_index, []))
        if blanks:
            positions = np.array([p for p, _ in blanks])
            # a blank inserted at position p sits before the record at p: shift every record from p on
            line_numbers = line_numbers + np.searchsorted(positions, np.arange(len(rows)), side="right")
            for offset, (position, text) in enumerate(blanks):
                body.insert(position + offset, text)
        newline = "\r\n" if file_index in crlf_files else "\n"
        text = newline.join(body) + newline
        if file_index in bom_files:
            text = "\ufeff" + text
        data = gzip_bytes(text.encode("utf-8", "surrogateescape"), cfg.compress_level)
        if folder not in made_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            made_dirs.add(folder)
        (folder / name).write_bytes(data)
        total_bytes += len(data)
        relative = str((folder / name).relative_to(root))
        bad_positions = np.flatnonzero(all_kind[rows] == 3)
        for position in bad_positions.tolist():
            reason, variant, field_name = bad_meta[rows[position] - (len(all_kind) - n_bad)]
            bad_truth.append(
                {
                    "file": relative,
                    "line": int(line_numbers[position]),
                    "reason": reason,
                    "variant": variant,
                    "field": field_name,
                }
            )
        entry: dict[str, Any] = {"path": relative, "lines": len(body), "bytes": len(data)}
        if blanks:
            entry["blank_lines"] = len(blanks)
        if len(bad_positions):
            entry["bad_lines"] = len(bad_positions)
        for flag, chosen in (("crlf", crlf_files), ("bom", bom_files)):
            if file_index in chosen:
                entry[flag] = True
        if file_index in plain_name:
            entry["gz_suffix"] = False
        written.append(entry)
        if file_index * 10 >= next_report * n_files:
            progress(f"{file_index + 1}/{n_files} bronze files written")
            next_report += 1

    # 5. the unreadable file and the ignored file ----------------------------------------------------------
    special: dict[str, Any] = {}
    if cfg.bad_rate > 0:
        base_rows = file_rng.integers(0, n, n_unreadable_records)
        body = "".join(
            serialize_items(record_items(orig, world, r, e)) + "\n"
            for r, e in zip(base_rows.tolist(), unreadable_ids, strict=True)
        )
        whole = gzip_bytes(body.encode("utf-8"), cfg.compress_level)
        cut = whole[: max(12, len(whole) * 3 // 5)]  # a delivery cut short: the deflate stream just stops
        when = utc_datetime(int(orig.ts_us[base_rows[0]]) + US_PER_MINUTE)
        path = (
            bronze_root
            / when.strftime("ingest_dt=%Y/%m/%d/%H")
            / (f"{cfg.stream_name}-1-{when.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid_text(name_ids[n_files])}.gz")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cut)
        total_bytes += len(cut)
        special["unreadable_file"] = {
            "path": str(path.relative_to(root)),
            "reason": "truncated gzip",
            "records_inside": n_unreadable_records,
        }
    first_folder = bronze_root / utc_datetime(int(all_arrival[order[0]])).strftime("ingest_dt=%Y/%m/%d/%H")
    ignored = first_folder / f".tmp-{cfg.stream_name}-1-{uuid_text(name_ids[n_files + 1])}.gz"
    # An in-flight temporary: copies of real records, so a reader that does not skip it sees duplicates.
    ignored_data = gzip_bytes(("\n".join(lines[: min(3, n)]) + "\n").encode("utf-8"), cfg.compress_level)
    ignored.write_bytes(ignored_data)
    total_bytes += len(ignored_data)
    special["ignored_file"] = {"path": str(ignored.relative_to(root)), "records_inside": min(3, n)}
    progress(f"{n_files} bronze files written ({total_bytes} bytes)")

    # 6. chargebacks -----------------------------------------------------------------------------------------
    label_rows, label_truth, label_counts, label_bytes, label_files = _write_chargebacks(
        cfg, root, orig, unknown_label_ids
    )
    total_bytes += label_bytes

    # 7. manifest and ground truth ---------------------------------------------------------------------------
    fraud_truth = []
    report_by_event: dict[str, int] = {}
    for row in label_rows:
        if row["class"] == "chargeback":
            report_by_event.setdefault(row["event_id"], row["reported_at"])
    for row in np.flatnonzero(orig.fraud > 0).tolist():
        event_id = orig.event_ids[row]
        fraud_truth.append(
            {
                "event_id": event_id,
                "card_id": world.card_ids[orig.card[row]],
                "ts_us": int(orig.ts_us[row]),
                "scenario": SCENARIOS[int(orig.fraud[row]) - 1],
                "burst": int(orig.burst[row]),
                "merchant_id": world.merchant_ids[orig.merchant[row]],
                "amount_usd": round(float(orig.amount_usd[row]), 4),
                "reported_at": report_by_event.get(event_id),
            }
        )
    fraud_truth.sort(key=lambda r: (r["ts_us"], r["event_id"]))
    bad_truth.sort(key=lambda r: (r["file"], r["line"]))
    redeliveries.sort(key=lambda r: r["event_id"])
    gen_dir = root / GENERATOR_DIR
    for name, rows in (
        (FRAUD_TRUTH_NAME, fraud_truth),
        (BAD_LINE_TRUTH_NAME, bad_truth),
        (LABEL_TRUTH_NAME, label_truth),
        (REDELIVERY_TRUTH_NAME, redeliveries),
    ):
        write_jsonl_gz(gen_dir / name, rows, cfg.compress_level)

    late_ids = {orig.event_ids[r] for r in late_rows.tolist()}
    fraud_mask = orig.fraud > 0
    counts: dict[str, Any] = {
        "events": n,
        "legit_events": int((~fraud_mask).sum()),
        "fraud_events": int(fraud_mask.sum()),
        "fraud_events_by_scenario": {s: int((orig.fraud == i + 1).sum()) for i, s in enumerate(SCENARIOS)},
        "fraud_bursts": int(fraud_info["bursts"]),
        "compromised_merchants": len(fraud_info["compromised_merchants"]),
        "cards": cfg.cards,
        "cards_with_events": len(np.unique(orig.card)),
        "merchants": len(world.merchant_ids),
        "events_with_card_number": sum(1 for c in orig.card_number if c),
        "events_by_currency": dict(sorted(Counter(orig.currency).items())),
        "events_by_pos_mode": {p: orig.pos.count(p) for p in POS_MODES},
        "events_by_country": dict(sorted(Counter(orig.country).items())),
        "bronze_files": n_files + (1 if cfg.bad_rate > 0 else 0),
        "readable_files": n_files,
        "unreadable_files": 1 if cfg.bad_rate > 0 else 0,
        "ignored_files": 1,
        "files_without_gz_suffix": len(plain_name),
        "crlf_files": len(crlf_files),
        "bom_files": len(bom_files),
        "lines": len(lines) + n_blank,
        "records": len(lines),
        "valid_records": n + n_dup + n_conflict,
        "blank_lines": n_blank,
        "whitespace_only_lines": n_blank // 2,
        "duplicates": n_dup,
        "duplicates_by_variant": {v: variant_counts[v] for v in DUPLICATE_VARIANTS},
        "conflicts": n_conflict,
        "late_events": len(late_ids),
        "bad_lines": n_bad,
        "bad_lines_by_reason": {r: bad_reasons.count(r) for r in QUARANTINE_REASONS},
        "bad_lines_by_variant": dict(sorted(Counter(f"{r}/{v}" for r, v, _ in bad_meta).items())),
        "bronze_bytes": total_bytes - label_bytes,
        "label_bytes": label_bytes,
        **label_counts,
        "label_files": label_files,
    }
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
        "ground_truth": {
            "fraud_events": f"{GENERATOR_DIR}/{FRAUD_TRUTH_NAME}",
            "bad_lines": f"{GENERATOR_DIR}/{BAD_LINE_TRUTH_NAME}",
            "label_records": f"{GENERATOR_DIR}/{LABEL_TRUTH_NAME}",
            "redeliveries": f"{GENERATOR_DIR}/{REDELIVERY_TRUTH_NAME}",
        },
        "files": written,
    }
    manifest_path = gen_dir / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return GenerationSummary(
        lake_root=root.resolve(),
        manifest_path=manifest_path.resolve(),
        events=n,
        fraud_events=counts["fraud_events"],
        files=counts["bronze_files"] + label_files,
        bytes_written=total_bytes,
        bad_lines=n_bad,
        duplicates=n_dup,
        conflicts=n_conflict,
        late_events=len(late_ids),
        blank_lines=n_blank,
        chargebacks=label_counts["chargebacks"],
        seconds=time.perf_counter() - started,
        counts=counts,
    )


def _write_chargebacks(
    cfg: GeneratorConfig, root: Path, orig: Originals, unknown_ids: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], int, int]:
    """Chargebacks by report day: one per fraud event of a reported burst; with bad-rate also junk."""
    rng = stage_rng(cfg.seed, 7)
    fraud_rows = np.flatnonzero(orig.fraud > 0)
    bursts = np.unique(orig.burst[fraud_rows])
    reported_bursts = np.sort(rng.permutation(bursts)[: round(cfg.chargeback_rate * len(bursts))])
    # one dispute per burst: most within a week, a long tail up to 60 days
    within_week = rng.random(len(reported_bursts)) < 0.85
    delay_days = np.where(
        within_week,
        np.clip(rng.gamma(2.0, 1.3, len(reported_bursts)), 0.05, 7.0),
        np.minimum(7.0 + rng.exponential(15.0, len(reported_bursts)), CHARGEBACK_MAX_DAYS),
    )
    burst_delay = dict(zip(reported_bursts.tolist(), delay_days.tolist(), strict=True))
    records: list[dict[str, Any]] = []  # reported_at, line text, class, event_id, reason
    for row in fraud_rows.tolist():
        burst = int(orig.burst[row])
        if burst not in burst_delay:
            continue
        jitter = float(rng.uniform(0, 3 * 3600))
        reported_at = math.ceil(orig.ts_us[row] / US_PER_SECOND + burst_delay[burst] * 86400 + jitter)
        records.append({"reported_at": reported_at, "event_id": orig.event_ids[row], "class": "chargeback"})
    n_chargebacks = len(records)
    n_repeated = n_unknown = 0
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
        n_unknown = len(unknown_ids)
        n_bad = max(len(LABEL_REASONS), round(cfg.bad_rate * max(n_chargebacks, 1)))
        reasons = class_counts(n_bad, LABEL_REASONS, rng)
        for number, reason in enumerate(reasons):
            row = int(rng.integers(0, len(orig.event_ids)))
            event_id = orig.event_ids[row]
            ts_s = int(orig.ts_us[row] // US_PER_SECOND)
            reported_at = ts_s + int(rng.integers(3600, 10 * 86400))
            good = f'{{"event_id": "{event_id}", "reported_at": {reported_at}}}'
            variant = number // len(LABEL_REASONS) % 3
            if reason == "malformed_json":
                text = (good[: len(good) // 2], f"[{good}]", "null")[variant]
            elif reason == "missing_field":
                text = (
                    f'{{"reported_at": {reported_at}}}',
                    f'{{"event_id": "{event_id}", "reported_at": null}}',
                    f'{{"event_id": "", "reported_at": {reported_at}}}',
                )[variant]
            elif reason == "bad_type":
                text = (
                    f'{{"event_id": 12345, "reported_at": {reported_at}}}',
                    f'{{"event_id": "{event_id}", "reported_at": "{reported_at}"}}',
                    f'{{"event_id": "{event_id}", "reported_at": true}}',
                )[variant]
            else:  # reported before the event happened: a clock or join error upstream
                reported_at = ts_s - int(rng.integers(60, 5 * 86400))
                text = f'{{"event_id": "{event_id}", "reported_at": {reported_at}}}'
            bad.append({"reported_at": reported_at, "text": text, "class": "invalid", "reason": reason})
    for record in records:
        record["text"] = f'{{"event_id": "{record["event_id"]}", "reported_at": {record["reported_at"]}}}'
    every = sorted(records + bad, key=lambda r: (r["reported_at"], r["text"]))
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
    delays = np.array(sorted(burst_delay.values())) if burst_delay else np.zeros(1)
    counts = {
        "chargebacks": n_chargebacks,
        "fraud_events_reported": n_chargebacks,
        "fraud_events_never_reported": len(fraud_rows) - n_chargebacks,
        "repeated_reports": n_repeated,
        "unknown_event_reports": n_unknown,
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
    return every, truth, counts, total_bytes, len(by_day)
