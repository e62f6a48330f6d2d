"""The event generator: determinism, the Firehose layout, every class it promises, and realistic fraud.

Bronze lines are checked through the contract parser itself (`spark_jobs.bronze_contract`), so "every bad
line is quarantined with the reason the generator intended" is a statement about the real pipeline.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.generator import (
    BRONZE_PREFIX,
    DEFAULT_FX_RATES,
    LABEL_REASONS,
    LABELS_PREFIX,
    POS_MODES,
    QUARANTINE_REASONS,
    GeneratorConfig,
    config_from_manifest,
    generate_lake,
    load_manifest,
    load_truth,
)
from scripts.generate_transactions import build_parser, main
from spark_jobs import exit_codes
from spark_jobs.bronze_contract import load_fx_rates, parse_bronze_file
from spark_jobs.bronze_ledger import MAX_FIREHOSE_BUFFERING, BronzeFile, arrival_hour_of, arrival_time
from spark_jobs.card_numbers import DEVELOPMENT_TOKEN_KEY_HEX

TOKEN_KEY = bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)
FX_RATES = load_fx_rates(DEFAULT_FX_RATES)
HEX32 = re.compile(r"[0-9a-f]{32}")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
BRONZE_PATH = re.compile(
    rf"ingest_dt=(\d{{4}})/(\d{{2}})/(\d{{2}})/(\d{{2}})/card-authorization-stream-1-"
    rf"\1-\2-\3-\4-\d{{2}}-\d{{2}}-{UUID}(\.gz)?"
)
US_PER_HOUR = 3_600_000_000
SAMPLE_LAKE = Path(__file__).resolve().parents[1] / "sample_data" / "lake"

DIRTY = {
    "events": 12_000,
    "cards": 300,
    "days": 14,
    "seed": 11,
    "bad_rate": 0.02,
    "dup_rate": 0.02,
    "conflict_rate": 0.005,
    "late_rate": 0.02,
    "late_max_hours": 30.0,
    "card_number_rate": 0.3,
    "fraud_rate": 0.015,
}


# --------------------------------------------------------------------------------------------- helpers
def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _hour_start_us(relative: str) -> int:
    match = re.search(r"ingest_dt=(\d{4})/(\d{2})/(\d{2})/(\d{2})/", relative)
    assert match, relative
    year, month, day, hour = map(int, match.groups())
    return int(np.datetime64(f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}", "us").astype(np.int64))


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties given their average rank."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(score)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    positives = label.sum()
    negatives = len(label) - positives
    return float((ranks[label == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


class ParsedLake:
    """Every bronze file of a generated lake run through the contract parser."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = load_manifest(root)
        self.parses = {}
        self.ignored = []
        for path in sorted((root / BRONZE_PREFIX).rglob("*")):
            if not path.is_file():
                continue
            relative = str(path.relative_to(root))
            if path.name.startswith((".", "_")):
                self.ignored.append(relative)
                continue
            # as the job reads it: arrival from the hour folder (the job's default buffering) and the mtime
            uri = "file://" + str(path.resolve())
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC).isoformat()
            planned = BronzeFile(uri, stat.st_size, str(stat.st_mtime_ns), arrival_hour_of(uri), modified)
            arrival = arrival_time(planned, MAX_FIREHOSE_BUFFERING)
            self.parses[relative] = parse_bronze_file(
                path.read_bytes(), fx_rates=FX_RATES, token_key=TOKEN_KEY, arrival=arrival
            )
        self.readable = {k: v for k, v in self.parses.items() if v.unreadable_reason is None}
        # accepted records in arrival order (paths sort by arrival time), with their file
        self.accepted = [
            (relative, row) for relative, parse in self.readable.items() for row in parse.accepted_records()
        ]
        self.rejected = [
            (relative, row) for relative, parse in self.readable.items() for row in parse.rejected_records()
        ]

    def originals(self) -> dict[str, tuple[str, dict]]:
        """First delivery of each event id: (file, record)."""
        first: dict[str, tuple[str, dict]] = {}
        for relative, row in self.accepted:
            first.setdefault(row["event_id"], (relative, row))
        return first


def _payload(row: dict) -> tuple:
    return tuple(row[k] for k in ("card_id", "ts_us", "merchant_id", "amount", "currency", "country", "pos_mode"))


@pytest.fixture(scope="module")
def dirty_lake(tmp_path_factory: pytest.TempPathFactory) -> ParsedLake:
    root = tmp_path_factory.mktemp("dirty_lake")
    generate_lake(GeneratorConfig(lake_root=root, **DIRTY))
    return ParsedLake(root)


# --------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    settings_ = {"events": 3_000, "cards": 80, "days": 3, "bad_rate": 0.02, "dup_rate": 0.02, "late_rate": 0.02}
    first = generate_lake(GeneratorConfig(lake_root=tmp_path / "a", seed=5, **settings_))
    second = generate_lake(GeneratorConfig(lake_root=tmp_path / "b", seed=5, **settings_))
    other = generate_lake(GeneratorConfig(lake_root=tmp_path / "c", seed=6, **settings_))
    files_a, files_b, files_c = _files(first.lake_root), _files(second.lake_root), _files(other.lake_root)
    assert len(files_a) > 100
    assert files_a == files_b
    assert files_a.keys() != files_c.keys()
    assert set(files_a.values()).isdisjoint(v for k, v in files_c.items() if not k.endswith(".tmp"))


def test_the_committed_sample_regenerates_byte_for_byte(tmp_path: Path) -> None:
    """sample_data/lake is exactly what its recorded arguments produce (see sample_data/README.md)."""
    config = config_from_manifest(SAMPLE_LAKE, target=tmp_path)
    assert (config.events, config.cards, config.days, str(config.start)) == (2_000, 50, 3, "2026-01-01")
    generate_lake(config)
    committed = _files(SAMPLE_LAKE)
    assert sum(map(len, committed.values())) < 300_000
    assert _files(tmp_path) == committed


def test_the_committed_sample_holds_every_class() -> None:
    lake = ParsedLake(SAMPLE_LAKE)
    counts = lake.manifest["counts"]
    assert set(counts["bad_lines_by_reason"]) == set(QUARANTINE_REASONS)
    assert all(counts["bad_lines_by_reason"].values())
    assert {row["reason"] for _, row in lake.rejected} == set(QUARANTINE_REASONS)
    assert [p.unreadable_reason is not None for p in lake.parses.values()].count(True) == 1
    for name in ("duplicates", "conflicts", "late_events", "blank_lines", "whitespace_only_lines", "crlf_files"):
        assert counts[name] > 0, name
    for name in ("bom_files", "files_without_gz_suffix", "ignored_files", "repeated_reports"):
        assert counts[name] > 0, name
    assert counts["unknown_event_reports"] > 0 and counts["fraud_events_never_reported"] > 0
    assert all(counts["fraud_events_by_scenario"].values())
    assert all(counts["label_bad_records_by_reason"].values())


def test_changing_bad_rate_does_not_move_valid_events(tmp_path: Path) -> None:
    """Each stage has its own random stream: the valid events do not depend on the dirt added around them."""
    common = {"events": 1_000, "cards": 40, "days": 2, "seed": 9, "dup_rate": 0.0, "late_rate": 0.0}
    clean = ParsedLake(generate_lake(GeneratorConfig(lake_root=tmp_path / "clean", bad_rate=0.0, **common)).lake_root)
    dirty = ParsedLake(generate_lake(GeneratorConfig(lake_root=tmp_path / "dirty", bad_rate=0.05, **common)).lake_root)
    assert sorted((*_payload(r), r["event_id"]) for _, r in clean.accepted) == sorted(
        (*_payload(r), r["event_id"]) for _, r in dirty.accepted
    )


# --------------------------------------------------------------------------------------------- layout and ids
def test_event_ids_are_32_hex_and_unique_among_originals(dirty_lake: ParsedLake) -> None:
    originals = dirty_lake.originals()
    assert len(originals) == DIRTY["events"]
    assert all(HEX32.fullmatch(event_id) for event_id in originals)
    fraud_ids = {row["event_id"] for row in load_truth(dirty_lake.root, "fraud_events")}
    assert fraud_ids <= originals.keys()


def test_files_sit_in_the_firehose_layout(dirty_lake: ParsedLake) -> None:
    counts = dirty_lake.manifest["counts"]
    per_folder: Counter[str] = Counter()
    without_suffix = 0
    for relative in dirty_lake.parses:
        inside = relative.removeprefix(BRONZE_PREFIX + "/")
        assert BRONZE_PATH.fullmatch(inside), relative
        per_folder[inside.rsplit("/", 1)[0]] += 1
        without_suffix += not relative.endswith(".gz")
        assert (dirty_lake.root / relative).read_bytes()[:2] == b"\x1f\x8b", "every bronze file is gzip"
    assert len(dirty_lake.parses) == counts["bronze_files"]
    assert without_suffix == counts["files_without_gz_suffix"] >= 1
    assert max(per_folder.values()) > 1, "several files per arrival hour"
    assert len(dirty_lake.ignored) == counts["ignored_files"] == 1
    assert Path(dirty_lake.ignored[0]).name.startswith((".", "_"))
    # the listing recorded in the manifest is exactly what is on disk
    assert {f["path"] for f in dirty_lake.manifest["files"]} == set(dirty_lake.readable)


def test_records_arrive_in_the_folder_of_their_arrival_hour(dirty_lake: ParsedLake) -> None:
    """No record sits in a folder before its event time; on-time ones arrive within minutes, late ones hours."""
    late = 0
    for relative, row in dirty_lake.originals().values():
        lag_us = _hour_start_us(relative) - row["ts_us"]
        assert lag_us <= 10 * 60_000_000 or lag_us >= US_PER_HOUR, (relative, row["event_id"])
        late += lag_us >= US_PER_HOUR
        assert lag_us < DIRTY["late_max_hours"] * US_PER_HOUR
    assert late == dirty_lake.manifest["counts"]["late_events"] == round(DIRTY["late_rate"] * DIRTY["events"])


def test_ts_and_amount_precision_vary_within_the_contract(dirty_lake: ParsedLake) -> None:
    ts_places: Counter[int] = Counter()
    amount_places: Counter[int] = Counter()
    pattern = re.compile(r'"ts": (\d+)(?:\.(\d+))?, .*"amount": (\d+)(?:\.(\d+))?, ')
    for entry in dirty_lake.manifest["files"][:200]:
        text = gzip.decompress((dirty_lake.root / entry["path"]).read_bytes()).decode("utf-8", "replace")
        for match in pattern.finditer(text):
            ts_places[len(match.group(2) or "")] += 1
            amount_places[len(match.group(4) or "")] += 1
    assert set(ts_places) >= set(range(7))
    assert set(amount_places) >= {0, 2, 3, 4}


# --------------------------------------------------------------------------------------------- classes
def test_every_bad_line_is_quarantined_with_the_intended_reason(dirty_lake: ParsedLake) -> None:
    intended = {(row["file"], row["line"]): row for row in load_truth(dirty_lake.root, "bad_lines")}
    quarantined = {(relative, row["line_number"]): row for relative, row in dirty_lake.rejected}
    assert quarantined.keys() == intended.keys()
    for key, truth in intended.items():
        row = quarantined[key]
        assert row["reason"] == truth["reason"], (key, truth["variant"], row["detail"], row["raw_record"])
        if truth["field"] is not None:
            assert row["detail"].startswith(f"field={truth['field']} "), (truth["variant"], row["detail"])
    reasons = Counter(truth["reason"] for truth in intended.values())
    assert set(reasons) == set(QUARANTINE_REASONS)
    assert dict(reasons) == dirty_lake.manifest["counts"]["bad_lines_by_reason"]


def test_class_counts_match_the_manifest_exactly(dirty_lake: ParsedLake) -> None:
    counts = dirty_lake.manifest["counts"]
    readable = dirty_lake.readable.values()
    assert sum(p.lines for p in readable) == counts["lines"]
    assert sum(p.blank_lines for p in readable) == counts["blank_lines"] >= 2
    assert sum(p.records_read for p in readable) == counts["records"]
    assert len(dirty_lake.rejected) == counts["bad_lines"]
    assert len(dirty_lake.accepted) == counts["valid_records"]
    unreadable = [k for k, p in dirty_lake.parses.items() if p.unreadable_reason is not None]
    assert unreadable == [dirty_lake.manifest["special_files"]["unreadable_file"]["path"]]
    assert counts["unreadable_files"] == 1

    deliveries: dict[str, list[tuple]] = defaultdict(list)
    for _, row in dirty_lake.accepted:
        deliveries[row["event_id"]].append((*_payload(row), row["card_token"]))
    repeated = {k: v for k, v in deliveries.items() if len(v) > 1}
    assert all(len(v) == 2 for v in repeated.values())
    conflicts = {k for k, v in repeated.items() if v[0] != v[1]}
    assert len(deliveries) == counts["events"]
    assert len(repeated) - len(conflicts) == counts["duplicates"]
    assert len(conflicts) == counts["conflicts"]
    truth = load_truth(dirty_lake.root, "redeliveries")
    assert {r["event_id"] for r in truth if r["class"] == "conflict"} == conflicts
    variants = Counter(r["variant"] for r in truth if r["class"] == "duplicate")
    assert all(variants[v] > 0 for v in ("identical", "key_order", "whitespace", "extra_field"))
    # framing: CRLF and BOM files exist and parse like any other
    assert counts["crlf_files"] >= 1 and counts["bom_files"] >= 1
    for entry in dirty_lake.manifest["files"]:
        if entry.get("crlf") or entry.get("bom"):
            data = gzip.decompress((dirty_lake.root / entry["path"]).read_bytes())
            assert (b"\r\n" in data) == bool(entry.get("crlf"))
            assert data.startswith(b"\xef\xbb\xbf") == bool(entry.get("bom"))


def test_shares_match_the_requested_rates(dirty_lake: ParsedLake) -> None:
    counts = dirty_lake.manifest["counts"]
    events = counts["events"]
    assert counts["bad_lines"] / events == pytest.approx(DIRTY["bad_rate"], abs=1e-3)
    assert counts["duplicates"] / events == pytest.approx(DIRTY["dup_rate"], abs=1e-3)
    assert counts["conflicts"] / events == pytest.approx(DIRTY["conflict_rate"], abs=1e-3)
    assert counts["late_events"] / events == pytest.approx(DIRTY["late_rate"], abs=1e-3)
    assert counts["fraud_events"] / events == pytest.approx(DIRTY["fraud_rate"], abs=1e-3)
    with_number = sum(1 for _, row in dirty_lake.originals().values() if row["card_token"] is not None)
    assert with_number == counts["events_with_card_number"]
    assert with_number / events == pytest.approx(DIRTY["card_number_rate"], abs=0.02)
    by_reason = counts["bad_lines_by_reason"]
    assert max(by_reason.values()) - min(by_reason.values()) <= 1, "bad lines spread evenly over the reasons"


def test_every_currency_and_pos_mode_appears(dirty_lake: ParsedLake) -> None:
    rows = [row for _, row in dirty_lake.originals().values()]
    assert {row["currency"] for row in rows} == set(FX_RATES)
    assert {row["pos_mode"] for row in rows} == set(POS_MODES)
    assert len({row["country"] for row in rows}) >= 9


# --------------------------------------------------------------------------------------------- fraud
def test_fraud_follows_both_scenarios_in_bursts_at_new_merchants(dirty_lake: ParsedLake) -> None:
    fraud = load_truth(dirty_lake.root, "fraud_events")
    scenarios = Counter(row["scenario"] for row in fraud)
    assert scenarios["compromised_card"] > 0 and scenarios["compromised_merchant"] > 0
    by_scenario = dirty_lake.manifest["counts"]["fraud_events_by_scenario"]
    assert by_scenario["merchant_breach"] == 0  # no --breached-merchants: the card scenarios only
    assert scenarios == {name: count for name, count in by_scenario.items() if count}
    bursts: dict[int, list[int]] = defaultdict(list)
    for row in fraud:
        bursts[row["burst"]].append(row["ts_us"])
    spans_h = [(max(ts) - min(ts)) / US_PER_HOUR for ts in bursts.values()]
    assert np.median([len(ts) for ts in bursts.values()]) >= 3
    assert np.median(spans_h) <= 1.5
    # fraudsters shop where the card had not been before
    originals = dirty_lake.originals()
    fraud_ids = {row["event_id"] for row in fraud}
    legit_pairs = {(r["card_id"], r["merchant_id"]) for _, r in originals.values() if r["event_id"] not in fraud_ids}
    new_merchant = [(originals[i][1]["card_id"], originals[i][1]["merchant_id"]) not in legit_pairs for i in fraud_ids]
    assert np.mean(new_merchant) >= 0.95
    # a compromised merchant's victims visited it before they were defrauded
    for entry in dirty_lake.manifest["compromised_merchants"]:
        assert entry["victim_cards"] >= 1


def test_amount_alone_is_a_weak_signal_but_a_rolling_count_is_strong(dirty_lake: ParsedLake) -> None:
    fraud_ids = {row["event_id"] for row in load_truth(dirty_lake.root, "fraud_events")}
    rows = sorted((r for _, r in dirty_lake.originals().values()), key=lambda r: (r["card_id"], r["ts_us"]))
    label = np.array([r["event_id"] in fraud_ids for r in rows], dtype=int)
    amount_usd = np.array([float(r["amount_usd"]) for r in rows])
    card = np.array([r["card_id"] for r in rows])
    ts = np.array([r["ts_us"] for r in rows])
    # transactions of the same card in the hour up to and including this one
    group_start = np.searchsorted(card, card, side="left")
    key = np.unique(card, return_inverse=True)[1].astype(np.int64) * (1 << 52) + (ts - ts.min())
    count_1h = np.arange(len(rows)) - np.maximum(np.searchsorted(key, key - US_PER_HOUR, side="left"), group_start) + 1
    amount_auc = _auc(amount_usd, label)
    count_auc = _auc(count_1h.astype(float), label)
    assert 0.4 < amount_auc < 0.75, amount_auc
    assert count_auc > 0.8, count_auc
    assert count_auc - amount_auc > 0.15


# --------------------------------------------------------------------------------------------- merchant breach
BREACH = {
    "events": 30_000,
    "cards": 600,
    "days": 30,
    "seed": 23,
    "breached_merchants": 6,
    "breach_days": 12,
    "breach_fraud_share": 0.25,
    "bad_rate": 0.0,
    "dup_rate": 0.0,
    "conflict_rate": 0.0,
    "late_rate": 0.0,
}


@pytest.fixture(scope="module")
def breach_lake(tmp_path_factory: pytest.TempPathFactory) -> ParsedLake:
    root = tmp_path_factory.mktemp("breach_lake")
    generate_lake(GeneratorConfig(lake_root=root, **BREACH))
    return ParsedLake(root)


def test_merchant_breach_is_fraud_at_the_breached_merchant_during_the_breach(breach_lake: ParsedLake) -> None:
    """Each breach fraud is one of the breached merchant's own authorizations inside its window; about the
    requested share of the window's authorizations are fraud; never a compromised merchant, never a card of
    another scenario; each fraud its own dispute."""
    manifest = breach_lake.manifest
    breaches = {entry["merchant_id"]: entry for entry in manifest["breached_merchants"]}
    assert len(breaches) == manifest["counts"]["breached_merchants"] == BREACH["breached_merchants"]
    assert not breaches.keys() & {entry["merchant_id"] for entry in manifest["compromised_merchants"]}
    fraud = load_truth(breach_lake.root, "fraud_events")
    breach_fraud = [row for row in fraud if row["scenario"] == "merchant_breach"]
    assert len(breach_fraud) == manifest["counts"]["fraud_events_by_scenario"]["merchant_breach"] > 0
    assert Counter(row["merchant_id"] for row in breach_fraud) == {
        merchant: entry["fraud_events"] for merchant, entry in breaches.items() if entry["fraud_events"]
    }
    for row in breach_fraud:
        window = breaches[row["merchant_id"]]
        assert window["window_start_us"] <= row["ts_us"] < window["window_end_us"]
    for entry in breaches.values():
        assert entry["window_end_us"] - entry["window_start_us"] <= BREACH["breach_days"] * 86_400_000_000
        assert entry["window_end_us"] <= manifest["window"]["end_us"]
    authorizations = sum(entry["authorizations"] for entry in breaches.values())
    assert authorizations >= 5 * len(breaches) * BREACH["breach_days"] * 0.5  # busy merchants
    assert len(breach_fraud) / authorizations == pytest.approx(BREACH["breach_fraud_share"], abs=0.04)
    other_cards = {row["card_id"] for row in fraud if row["scenario"] != "merchant_breach"}
    assert not other_cards & {row["card_id"] for row in breach_fraud}
    assert len({row["burst"] for row in breach_fraud}) == len(breach_fraud)
    assert not {row["burst"] for row in breach_fraud} & {row["burst"] for row in fraud if row not in breach_fraud}
    # The events are the merchant's ordinary business: with every authorization at the breached merchants in
    # their windows, fraud or not, the bronze counts per merchant equal the manifest's authorizations.
    originals = breach_lake.originals()
    in_window = Counter(
        row["merchant_id"]
        for _, row in originals.values()
        if row["merchant_id"] in breaches
        and breaches[row["merchant_id"]]["window_start_us"]
        <= row["ts_us"]
        < breaches[row["merchant_id"]]["window_end_us"]
        and row["event_id"] not in {r["event_id"] for r in fraud if r["scenario"] != "merchant_breach"}
    )
    assert in_window == {merchant: entry["authorizations"] for merchant, entry in breaches.items()}


def test_merchant_breach_frauds_look_like_the_merchants_legitimate_business(breach_lake: ParsedLake) -> None:
    """Amount, hour and POS mode of the breach frauds do not tell them from the same merchants' legitimate
    authorizations in the same windows, and the cards had paid there before about as often."""
    breaches = {entry["merchant_id"]: entry for entry in breach_lake.manifest["breached_merchants"]}
    fraud = {row["event_id"]: row["scenario"] for row in load_truth(breach_lake.root, "fraud_events")}
    rows = [
        row
        for _, row in breach_lake.originals().values()
        if row["merchant_id"] in breaches
        and breaches[row["merchant_id"]]["window_start_us"]
        <= row["ts_us"]
        < breaches[row["merchant_id"]]["window_end_us"]
        and fraud.get(row["event_id"]) in (None, "merchant_breach")
    ]
    label = np.array([fraud.get(row["event_id"]) == "merchant_breach" for row in rows], dtype=int)
    assert 50 < label.sum() < len(rows) - 50
    amount_auc = _auc(np.array([float(row["amount_usd"]) for row in rows]), label)
    hour_auc = _auc(np.array([(row["ts_us"] // US_PER_HOUR) % 24 for row in rows], dtype=float), label)
    assert 0.42 < amount_auc < 0.58, amount_auc
    assert 0.42 < hour_auc < 0.58, hour_auc


def test_merchant_breach_frauds_are_charged_back_with_the_usual_delays(breach_lake: ParsedLake) -> None:
    """About chargeback-rate of the breach frauds are reported, one dispute each, after the event, mostly
    within a week: so the merchant's chargebacks are known L = 7 days later."""
    breach_fraud = [row for row in load_truth(breach_lake.root, "fraud_events") if row["scenario"] == "merchant_breach"]
    reported = [row for row in breach_fraud if row["reported_at"] is not None]
    assert len(reported) / len(breach_fraud) == pytest.approx(GeneratorConfig().chargeback_rate, abs=0.05)
    delays_days = np.array([(row["reported_at"] - row["ts_us"] / 1e6) / 86_400 for row in reported])
    assert delays_days.min() > 0 and delays_days.max() <= 60.2
    assert 1.0 < np.median(delays_days) < 4.0
    assert np.mean(delays_days <= 7.2) >= 0.75
    chargebacks = {
        entry["event_id"] for entry in load_truth(breach_lake.root, "label_records") if entry["class"] == "chargeback"
    }
    assert {row["event_id"] for row in reported} <= chargebacks


def test_merchant_breach_is_deterministic_and_moves_no_event(tmp_path: Path) -> None:
    """Same seed, same bytes; and the breach only relabels: the lake without breaches has the same events."""
    small = {**BREACH, "events": 4_000, "cards": 100, "days": 10, "breach_days": 5, "breached_merchants": 3}
    first = generate_lake(GeneratorConfig(lake_root=tmp_path / "a", **small))
    second = generate_lake(GeneratorConfig(lake_root=tmp_path / "b", **small))
    assert _files(first.lake_root) == _files(second.lake_root)
    assert first.counts["fraud_events_by_scenario"]["merchant_breach"] > 0
    without = generate_lake(GeneratorConfig(lake_root=tmp_path / "c", **{**small, "breached_merchants": 0}))
    assert without.counts["fraud_events_by_scenario"]["merchant_breach"] == 0
    assert without.counts["breached_merchants"] == 0
    with_breach, no_breach = ParsedLake(first.lake_root), ParsedLake(without.lake_root)
    assert sorted((*_payload(r), r["event_id"]) for _, r in with_breach.accepted) == sorted(
        (*_payload(r), r["event_id"]) for _, r in no_breach.accepted
    )
    other = {k: v for k, v in first.counts["fraud_events_by_scenario"].items() if k != "merchant_breach"}
    assert other == {k: v for k, v in without.counts["fraud_events_by_scenario"].items() if k != "merchant_breach"}


# --------------------------------------------------------------------------------------------- labels
def test_chargebacks_report_most_frauds_with_realistic_delays(dirty_lake: ParsedLake) -> None:
    counts = dirty_lake.manifest["counts"]
    originals = dirty_lake.originals()
    fraud = {row["event_id"]: row for row in load_truth(dirty_lake.root, "fraud_events")}
    truth = load_truth(dirty_lake.root, "label_records")
    files = sorted((dirty_lake.root / LABELS_PREFIX).rglob("*"))
    lines: dict[tuple[str, int], bytes] = {}
    for path in files:
        if path.is_file():
            relative = str(path.relative_to(dirty_lake.root))
            assert re.fullmatch(
                rf"{LABELS_PREFIX}/reported_dt=\d{{4}}/\d{{2}}/\d{{2}}/chargebacks-\d{{4}}-\d{{2}}-\d{{2}}-[0-9a-f]{{8}}"
                r"\.jsonl\.gz",
                relative,
            )
            for number, line in enumerate(gzip.decompress(path.read_bytes()).split(b"\n")[:-1], 1):
                lines[(relative, number)] = line
    assert lines.keys() == {(t["file"], t["line"]) for t in truth}
    classes = Counter(t["class"] for t in truth)
    assert classes["chargeback"] == counts["chargebacks"]
    assert classes["repeated_report"] == counts["repeated_reports"] >= 1
    assert classes["unknown_event"] == counts["unknown_event_reports"] >= 1
    assert 0 < counts["fraud_events_never_reported"] < 0.5 * counts["fraud_events"]
    delays_days = []
    first_report: dict[str, int] = {}
    for entry in truth:
        if entry["class"] == "invalid":
            continue
        record = json.loads(lines[(entry["file"], entry["line"])])
        assert record == {"event_id": entry["event_id"], "reported_at": entry["reported_at"]}
        assert type(record["reported_at"]) is int
        if entry["class"] == "unknown_event":
            assert record["event_id"] not in originals
            continue
        assert record["event_id"] in fraud
        delay = record["reported_at"] - fraud[record["event_id"]]["ts_us"] / 1e6
        assert delay > 0
        if entry["class"] == "chargeback":
            delays_days.append(delay / 86_400)
            first_report[record["event_id"]] = record["reported_at"]
        else:
            assert record["reported_at"] > first_report.get(record["event_id"], 0)
    assert max(delays_days) <= 60.2
    assert np.mean(np.array(delays_days) <= 7.2) >= 0.7
    assert {e: r["reported_at"] for e, r in fraud.items() if r["reported_at"] is not None} == first_report


def test_invalid_chargeback_records_break_the_rule_they_are_meant_to(dirty_lake: ParsedLake) -> None:
    originals = dirty_lake.originals()
    truth = [t for t in load_truth(dirty_lake.root, "label_records") if t["class"] == "invalid"]
    assert {t["reason"] for t in truth} == set(LABEL_REASONS)
    for entry in truth:
        raw = gzip.decompress((dirty_lake.root / entry["file"]).read_bytes()).split(b"\n")[entry["line"] - 1]
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        reason = entry["reason"]
        if reason == "malformed_json":
            assert not isinstance(record, dict), raw
            continue
        assert isinstance(record, dict), raw
        event_id, reported_at = record.get("event_id"), record.get("reported_at")
        if reason == "missing_field":
            assert event_id in (None, "") or reported_at is None, raw
        elif reason == "bad_type":
            assert type(event_id) is not str or type(reported_at) is not int, raw
            assert event_id not in (None, "") and reported_at is not None, raw
        elif reason == "field_too_long":
            assert type(event_id) is str and len(event_id) > 128 and type(reported_at) is int, raw
        elif reason == "card_number_in_field":  # a whole 16-digit card number (spaces allowed) in a key or value
            texts = [key for key in record] + [value for value in record.values() if type(value) is str]
            numbers = [re.sub(r"(?<=\d) (?=\d)", "", text) for text in texts]
            assert any(re.search(r"(?<!\d)\d{16}(?!\d)", number) for number in numbers), raw
        else:
            assert reported_at * 1_000_000 < originals[event_id][1]["ts_us"], raw


# --------------------------------------------------------------------------------------------- small runs
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31),
    events=st.integers(50, 600),
    bad_rate=st.sampled_from([0.0, 0.01, 0.1]),
    files_per_hour=st.integers(1, 12),
)
def test_any_small_run_parses_as_intended(
    tmp_path_factory: pytest.TempPathFactory, seed: int, events: int, bad_rate: float, files_per_hour: int
) -> None:
    root = tmp_path_factory.mktemp("small")
    generate_lake(
        GeneratorConfig(
            lake_root=root,
            events=events,
            cards=20,
            days=2,
            seed=seed,
            bad_rate=bad_rate,
            files_per_hour=files_per_hour,
            dup_rate=0.05,
            conflict_rate=0.02,
        )
    )
    lake = ParsedLake(root)
    counts = lake.manifest["counts"]
    intended = {(r["file"], r["line"]): r["reason"] for r in load_truth(root, "bad_lines")}
    assert {(f, r["line_number"]): r["reason"] for f, r in lake.rejected} == intended
    assert len(lake.originals()) == events
    assert len(lake.accepted) == counts["valid_records"]
    assert counts["unreadable_files"] == (1 if bad_rate else 0)
    assert counts["blank_lines"] == sum(p.blank_lines for p in lake.readable.values())


def test_a_clean_run_has_no_dirt(tmp_path: Path) -> None:
    summary = generate_lake(
        GeneratorConfig(
            lake_root=tmp_path, events=2_000, cards=50, days=3, bad_rate=0, dup_rate=0, conflict_rate=0, late_rate=0
        )
    )
    lake = ParsedLake(tmp_path)
    assert len(lake.accepted) == 2_000 and not lake.rejected
    assert all(p.unreadable_reason is None and p.blank_lines == 0 for p in lake.parses.values())
    assert summary.bad_lines == summary.duplicates == summary.conflicts == summary.late_events == 0
    assert all(t["class"] == "chargeback" for t in load_truth(tmp_path, "label_records"))
    assert len(lake.ignored) == 1


# --------------------------------------------------------------------------------------------- CLI
def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in build_parser()._actions:
        for option in action.option_strings:
            assert option in text
        assert action.help, action.option_strings
    assert "(default: ./lake)" in text


def test_cli_writes_a_lake_and_refuses_to_overwrite_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--events", "300", "--cards", "10", "--days", "1", "--seed", "3", "--lake-root", str(tmp_path)]
    assert main(argv) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("generated 300 events")
    manifest = load_manifest(tmp_path)
    assert manifest["arguments"]["events"] == 300 and "lake_root" not in manifest["arguments"]
    assert main(argv) == exit_codes.PRECONDITION_FAILED
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--quiet"]) == 0


@pytest.mark.parametrize(
    "bad_args",
    [
        ["--bad-rate", "1.5"],
        ["--events", "0"],
        ["--late-max-hours", "1"],
        ["--files-per-hour", "0"],
        ["--breach-days", "0"],
        ["--breached-merchants", "-1"],
        ["--breach-fraud-share", "1.2"],
    ],
)
def test_cli_rejects_impossible_options(tmp_path: Path, bad_args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--lake-root", str(tmp_path), *bad_args])
    assert exit_info.value.code == 2


def test_amount_usd_in_the_truth_matches_the_contract_conversion(dirty_lake: ParsedLake) -> None:
    originals = dirty_lake.originals()
    for row in load_truth(dirty_lake.root, "fraud_events")[:50]:
        parsed = originals[row["event_id"]][1]
        assert parsed["amount_usd"] == pytest.approx(Decimal(str(row["amount_usd"])), abs=Decimal("0.01"))
        assert parsed["ts_us"] == row["ts_us"]
