"""Generate a realistic, deterministic card-authorization lake: bronze in the Firehose layout plus chargebacks.

Bronze follows contract v1 (docs/contracts/bronze_card_authorization.md): gzipped NDJSON under
`<lake-root>/bronze/streaming/card_authorization/ingest_dt=YYYY/MM/DD/HH/<firehose-like name>`, the folder being
the arrival hour in UTC. Chargebacks go to `<lake-root>/bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/` as
NDJSON `{"event_id": ..., "reported_at": <unix seconds>}`. The ground truth (fraud events, the intended
quarantine reason of every bad line, every class count and the arguments) lands in `<lake-root>/_generator/`.

The world: cards with a home country, currency, spending scale and activity level (some travel abroad for a
few days), merchants with a country, an online/store kind, a price level and Zipf-like popularity, and a
daily activity cycle in the card's local time. Fraud follows the Fraud Detection Handbook's simulator:
(a) compromised cards: a burst of transactions within about an hour, abroad and/or online, at merchants the
card never used, amounts in the card's usual-to-moderately-higher range; (b) compromised merchants: cards
that transacted at the merchant during its compromise window are defrauded (with such a burst) days later.
Fraud amounts overlap legitimate ones, so amount alone is a weak signal while rolling per-card features
(counts in 1 h, distinct merchants and countries in 24 h, seconds since the previous transaction) are strong.

Determinism: every random choice comes from numpy generators seeded by `--seed` (one independent stream per
stage, so e.g. changing `--bad-rate` does not move a single legitimate event), gzip headers carry mtime 0,
nothing reads the wall clock, and every output is written in sorted order. Same arguments, same bytes.

Usage: `python scripts/generate_transactions.py --events 100000 --cards 2000 --days 30 --seed 7 --lake-root lake`
Library: `generate_lake(GeneratorConfig(...)) -> GenerationSummary`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import math
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FX_RATES = REPO_ROOT / "sample_data" / "fx_rates.csv"

BRONZE_PREFIX = "bronze/streaming/card_authorization"
LABELS_PREFIX = "bronze/labels/chargebacks"
GENERATOR_DIR = "_generator"
MANIFEST_NAME = "manifest.json"
FRAUD_TRUTH_NAME = "fraud_events.jsonl.gz"
BAD_LINE_TRUTH_NAME = "bad_lines.jsonl.gz"
LABEL_TRUTH_NAME = "label_records.jsonl.gz"
REDELIVERY_TRUTH_NAME = "redeliveries.jsonl.gz"
MANIFEST_VERSION = 1

POS_MODES = ("chip", "contactless", "swipe", "ecommerce", "manual")
REQUIRED_FIELDS = ("event_id", "card_id", "ts", "merchant_id", "amount", "currency", "country", "pos_mode")
QUARANTINE_REASONS = (
    "malformed_json",
    "missing_field",
    "bad_type",
    "out_of_range",
    "non_positive_amount",
    "unknown_currency",
    "bad_enum",
    "invalid_card_number",
)
LABEL_REASONS = ("malformed_json", "missing_field", "bad_type", "reported_before_event")
SCENARIOS = ("compromised_card", "compromised_merchant")
DUPLICATE_VARIANTS = ("identical", "key_order", "whitespace", "extra_field")
CONFLICT_VARIANTS = ("amount", "merchant_id")

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
NORMAL_DELAY_MAX_US = 10 * US_PER_MINUTE  # on-time arrivals come seconds to minutes after the event
LATE_MIN_HOURS = 2.0  # late arrivals come at least this long after the event: never confused with on-time ones
CHARGEBACK_MAX_DAYS = 60


@dataclass(frozen=True)
class Country:
    code: str
    currency: str
    utc_offset_hours: int  # standard time; good enough for a daily cycle
    card_weight: float  # share of cards issued there
    merchant_weight: float  # share of merchants located there


COUNTRIES = (
    Country("US", "USD", -5, 0.30, 0.26),
    Country("CA", "CAD", -5, 0.07, 0.06),
    Country("GB", "GBP", 0, 0.12, 0.11),
    Country("DE", "EUR", 1, 0.10, 0.09),
    Country("FR", "EUR", 1, 0.08, 0.08),
    Country("NL", "EUR", 1, 0.03, 0.04),
    Country("IT", "EUR", 1, 0.03, 0.05),
    Country("ES", "EUR", 1, 0.03, 0.05),
    Country("CH", "CHF", 1, 0.04, 0.04),
    Country("SG", "SGD", 8, 0.05, 0.06),
    Country("JP", "JPY", 9, 0.08, 0.09),
    Country("AU", "AUD", 10, 0.07, 0.07),
)
CURRENCY_DECIMALS = {"JPY": 0}  # minor units; every other currency has 2

# Relative transaction intensity by local hour of day (night trough, lunch and evening peaks).
HOURLY_ACTIVITY = np.array(
    [
        *(0.15, 0.08, 0.05, 0.04, 0.05, 0.10, 0.30, 0.60, 0.90, 1.00, 1.10, 1.30),  # 00-11 h local
        *(1.50, 1.30, 1.10, 1.10, 1.20, 1.40, 1.50, 1.40, 1.10, 0.80, 0.50, 0.30),  # 12-23 h local
    ]
)
STORE_POS_MODES = np.array([0, 1, 2, 4])  # chip, contactless, swipe, manual (indexes into POS_MODES)
STORE_POS_WEIGHTS = np.array([0.45, 0.40, 0.10, 0.05])
CLONED_CARD_POS_WEIGHTS = np.array([0.30, 0.10, 0.45, 0.15])  # a cloned card is swiped or keyed in more often
ECOMMERCE = 3
# Decimal places of ts (0-6) and their shares; ts is truncated to that precision.
TS_DECIMALS = np.array([0, 1, 2, 3, 4, 5, 6])
TS_DECIMAL_WEIGHTS = np.array([0.05, 0.03, 0.05, 0.37, 0.03, 0.02, 0.45])


# --------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class GeneratorConfig:
    """Every knob of a generated lake. Rates are shares of `events` (the distinct valid transactions)."""

    events: int = 100_000
    cards: int = 2_000
    start: dt.date = dt.date(2026, 1, 1)
    days: int = 30
    seed: int = 42
    lake_root: Path = Path("lake")
    merchants: int | None = None  # None: max(120, cards // 4)
    bad_rate: float = 0.005
    dup_rate: float = 0.01
    conflict_rate: float = 0.001
    late_rate: float = 0.01
    late_max_hours: float = 36.0
    card_number_rate: float = 0.3
    fraud_rate: float = 0.01
    merchant_fraud_share: float = 0.4
    chargeback_rate: float = 0.9
    travel_rate: float = 0.15
    files_per_hour: int = 4
    fx_rates: Path = DEFAULT_FX_RATES
    stream_name: str = "card-authorization-stream"
    compress_level: int = 6
    overwrite: bool = False
    progress: bool = False

    def validate(self) -> None:
        problems = []
        if self.events < 1:
            problems.append("--events must be at least 1")
        if self.cards < 1:
            problems.append("--cards must be at least 1")
        if self.days < 1:
            problems.append("--days must be at least 1")
        if self.merchants is not None and self.merchants < 1:
            problems.append("--merchants must be at least 1")
        for name in (
            "bad_rate",
            "dup_rate",
            "conflict_rate",
            "late_rate",
            "card_number_rate",
            "fraud_rate",
            "merchant_fraud_share",
            "chargeback_rate",
            "travel_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"--{name.replace('_', '-')} must be within [0, 1], got {value}")
        if self.dup_rate + self.conflict_rate > 1.0:
            problems.append("--dup-rate + --conflict-rate must not exceed 1")
        if self.late_rate > 0 and self.late_max_hours < LATE_MIN_HOURS:
            problems.append(f"--late-max-hours must be at least {LATE_MIN_HOURS:g} when --late-rate > 0")
        if not 1 <= self.files_per_hour <= 3600:
            problems.append("--files-per-hour must be within [1, 3600]")
        if not 0 <= self.compress_level <= 9:
            problems.append("--compress-level must be within [0, 9]")
        if str(self.lake_root).startswith(("s3://", "s3a://")):
            problems.append("--lake-root must be a local folder (generate locally, then `aws s3 sync` it)")
        if problems:
            raise ValueError("; ".join(problems))

    def arguments(self) -> dict[str, Any]:
        """The arguments as recorded in the manifest (no lake root: the same lake anywhere has the same bytes)."""
        recorded = {}
        for item in fields(self):
            if item.name in {"lake_root", "overwrite", "progress"}:
                continue
            value = getattr(self, item.name)
            recorded[item.name] = str(value) if isinstance(value, dt.date | Path) else value
        recorded["fx_rates"] = _display_path(self.fx_rates)
        return recorded


@dataclass
class GenerationSummary:
    """What a run wrote. `counts` is the manifest's `counts` section; paths are absolute."""

    lake_root: Path
    manifest_path: Path
    events: int
    fraud_events: int
    files: int
    bytes_written: int
    bad_lines: int
    duplicates: int
    conflicts: int
    late_events: int
    blank_lines: int
    chargebacks: int
    seconds: float
    counts: dict[str, Any] = field(default_factory=dict)

    def one_line(self) -> str:
        return (
            f"generated {self.events} events ({self.fraud_events} fraud) in {self.files} files, "
            f"{self.bytes_written} bytes; bad={self.bad_lines} dup={self.duplicates} conflict={self.conflicts} "
            f"late={self.late_events} blank={self.blank_lines}; chargebacks={self.chargebacks}; "
            f"{self.seconds:.1f}s -> {self.lake_root}"
        )


def _display_path(path: Path) -> str:
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def load_currencies(path: Path) -> dict[str, float]:
    """Currency -> USD rate from a `currency,usd_rate` CSV (float is fine here: it only shapes amounts)."""
    rates: dict[str, float] = {}
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    for line in lines[1:]:
        if line.strip():
            code, rate = line.split(",")[:2]
            rates[code.strip()] = float(rate)
    if not rates:
        raise ValueError(f"{path}: no currencies")
    return rates


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def _stage_rng(seed: int, stage: int) -> np.random.Generator:
    return np.random.default_rng([seed, stage])


def _hex_ids(rng: np.random.Generator, count: int, nbytes: int = 16) -> list[str]:
    text = rng.bytes(nbytes * count).hex()
    width = 2 * nbytes
    return [text[i : i + width] for i in range(0, width * count, width)]


def _luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it Luhn-valid."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # these get doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


def _decimal_texts(units: np.ndarray, places: np.ndarray) -> list[str]:
    """Exact decimal text of units / 10**places, with exactly `places` decimals (none when 0)."""
    out = []
    for value, k in zip(units.tolist(), places.tolist(), strict=True):
        if k == 0:
            out.append(str(value))
        else:
            scale = 10**k
            out.append(f"{value // scale}.{value % scale:0{k}d}")
    return out


# --------------------------------------------------------------------------------------------- the world
@dataclass
class _World:
    countries: tuple[Country, ...]
    currencies: dict[str, float]
    card_ids: list[str]
    card_home: np.ndarray  # country index
    card_scale_usd: np.ndarray  # typical amount in USD
    card_activity: np.ndarray  # relative transaction rate
    card_numbers: list[str]
    trip_start_us: np.ndarray  # -1: no trip
    trip_end_us: np.ndarray
    trip_country: np.ndarray
    merchant_ids: list[str]
    merchant_country: np.ndarray
    merchant_online: np.ndarray  # bool
    merchant_factor: np.ndarray  # price level
    merchant_popularity: np.ndarray  # Zipf-like weight within its (country, kind) group
    groups: dict[tuple[int, bool], np.ndarray]  # (country, online) -> merchant indexes


def _build_world(cfg: GeneratorConfig, currencies: dict[str, float], start_us: int, end_us: int) -> _World:
    rng = _stage_rng(cfg.seed, 1)
    countries = tuple(c for c in COUNTRIES if c.currency in currencies)
    uncovered = sorted(set(currencies) - {c.currency for c in countries})
    if uncovered:
        known = ", ".join(sorted({c.currency for c in COUNTRIES}))
        raise ValueError(f"no country uses currency {', '.join(uncovered)} (the generator knows {known})")
    n_countries = len(countries)

    card_weights = np.array([c.card_weight for c in countries])
    card_weights /= card_weights.sum()
    # The first cards cover every country once, so even a small lake sees every currency.
    home = rng.choice(n_countries, size=cfg.cards, p=card_weights)
    covered = min(cfg.cards, n_countries)
    home[:covered] = rng.permutation(n_countries)[:covered]
    scale_usd = np.exp(rng.normal(math.log(40.0), 0.6, cfg.cards))
    activity = rng.gamma(2.0, 1.0, cfg.cards) + 0.05
    card_ids = [f"card_{h}" for h in _hex_ids(rng, cfg.cards, 6)]
    brands = rng.choice(np.array(["4", "51", "52", "53", "54", "55"]), size=cfg.cards)
    bodies = rng.integers(0, 10, size=(cfg.cards, 15))
    card_numbers = []
    for brand, digits in zip(brands.tolist(), bodies.tolist(), strict=True):
        body = brand + "".join(map(str, digits))[: 15 - len(brand)]
        card_numbers.append(_luhn_complete(body))

    window_us = end_us - start_us
    travels = rng.random(cfg.cards) < cfg.travel_rate
    trip_length = rng.integers(2 * US_PER_DAY, 8 * US_PER_DAY, cfg.cards)
    trip_start = start_us + (rng.random(cfg.cards) * window_us).astype(np.int64)
    trip_start = np.where(travels, trip_start, -1)
    trip_end = np.where(travels, trip_start + trip_length, -1)
    shift = rng.integers(1, max(n_countries, 2), cfg.cards)
    trip_country = (home + shift) % n_countries if n_countries > 1 else home.copy()

    n_merchants = cfg.merchants if cfg.merchants is not None else max(120, cfg.cards // 4)
    merchant_weights = np.array([c.merchant_weight for c in countries])
    merchant_weights /= merchant_weights.sum()
    merchant_country_list: list[int] = []
    merchant_online_list: list[bool] = []
    for index, weight in enumerate(merchant_weights):
        stores = max(3, round(n_merchants * 0.8 * weight))
        online = max(2, round(n_merchants * 0.2 * weight))
        merchant_country_list += [index] * (stores + online)
        merchant_online_list += [False] * stores + [True] * online
    merchant_country = np.array(merchant_country_list)
    merchant_online = np.array(merchant_online_list)
    total_merchants = len(merchant_country)
    merchant_ids = [f"mer_{h}" for h in _hex_ids(rng, total_merchants, 5)]
    merchant_factor = np.exp(rng.normal(0.0, 0.5, total_merchants))
    popularity = np.zeros(total_merchants)
    groups: dict[tuple[int, bool], np.ndarray] = {}
    for country_index in range(n_countries):
        for online in (False, True):
            members = np.flatnonzero((merchant_country == country_index) & (merchant_online == online))
            ranks = rng.permutation(len(members)) + 1
            weights = 1.0 / ranks**1.1
            popularity[members] = weights / weights.sum()
            groups[(country_index, online)] = members
    return _World(
        countries=countries,
        currencies=currencies,
        card_ids=card_ids,
        card_home=home,
        card_scale_usd=scale_usd,
        card_activity=activity,
        card_numbers=card_numbers,
        trip_start_us=trip_start,
        trip_end_us=trip_end,
        trip_country=trip_country,
        merchant_ids=merchant_ids,
        merchant_country=merchant_country,
        merchant_online=merchant_online,
        merchant_factor=merchant_factor,
        merchant_popularity=popularity,
        groups=groups,
    )


def _pick_merchants(
    rng: np.random.Generator, world: _World, country: np.ndarray, online: np.ndarray, *, popular: bool
) -> np.ndarray:
    """One merchant per row from its (country, online) group: by popularity, or uniformly (fraudsters)."""
    merchant = np.empty(len(country), dtype=np.int64)
    for (country_index, kind), members in world.groups.items():
        rows = np.flatnonzero((country == country_index) & (online == kind))
        if len(rows) == 0:
            continue
        weights = world.merchant_popularity[members] if popular else None
        merchant[rows] = rng.choice(members, size=len(rows), p=weights)
    return merchant


# --------------------------------------------------------------------------------------------- events
@dataclass
class _Events:
    card: np.ndarray
    merchant: np.ndarray
    ts_us: np.ndarray
    amount_usd: np.ndarray
    pos: np.ndarray
    fraud: np.ndarray  # 0 legit, 1 compromised card, 2 compromised merchant
    burst: np.ndarray  # fraud burst number, -1 for legit


def _legit_events(
    cfg: GeneratorConfig, world: _World, count: int, start_us: int, end_us: int, *, stage: int = 2
) -> _Events:
    rng = _stage_rng(cfg.seed, stage)
    n_countries = len(world.countries)
    activity = world.card_activity / world.card_activity.sum()
    card = rng.choice(cfg.cards, size=count, p=activity)
    day = rng.integers(0, cfg.days, count)
    hour = rng.choice(24, size=count, p=HOURLY_ACTIVITY / HOURLY_ACTIVITY.sum())
    offsets = np.array([c.utc_offset_hours for c in world.countries])[world.card_home[card]]
    local_us = day * US_PER_DAY + hour * US_PER_HOUR + rng.integers(0, US_PER_HOUR, count)
    window_us = end_us - start_us
    ts_us = start_us + np.mod(local_us - offsets * US_PER_HOUR, window_us)

    online = rng.random(count) < 0.22
    country = world.card_home[card].copy()
    travelling = (ts_us >= world.trip_start_us[card]) & (ts_us < world.trip_end_us[card])
    country = np.where(travelling & ~online, world.trip_country[card], country)
    foreign_online = online & (rng.random(count) < 0.12)
    country = np.where(foreign_online, rng.integers(0, n_countries, count), country)
    merchant = _pick_merchants(rng, world, country, online, popular=True)

    amount_usd = world.card_scale_usd[card] * world.merchant_factor[merchant] * np.exp(rng.normal(0.0, 0.75, count))
    pos = np.where(online, ECOMMERCE, rng.choice(STORE_POS_MODES, size=count, p=STORE_POS_WEIGHTS))
    return _Events(
        card=card,
        merchant=merchant,
        ts_us=ts_us,
        amount_usd=amount_usd,
        pos=pos,
        fraud=np.zeros(count, dtype=np.int8),
        burst=np.full(count, -1, dtype=np.int64),
    )


def _fraud_events(
    cfg: GeneratorConfig, world: _World, legit: _Events, count: int, *, start_us: int, end_us: int
) -> tuple[_Events, dict[str, Any]]:
    """Bursts of fraud, `count` events in all: compromised merchants first (their share), then compromised cards."""
    rng = _stage_rng(cfg.seed, 3)
    n_countries = len(world.countries)
    n_merchants = len(world.merchant_ids)
    pairs = np.unique(legit.card * n_merchants + legit.merchant)  # sorted by card, then merchant

    def used_by(card: int) -> set[int]:
        """Merchants where the card has legitimate transactions."""
        first, last = np.searchsorted(pairs, [card * n_merchants, (card + 1) * n_merchants])
        return set((pairs[first:last] - card * n_merchants).tolist())

    compromised_cards: set[int] = set()
    rows: dict[str, list] = {k: [] for k in ("card", "merchant", "ts_us", "amount_usd", "pos", "fraud", "burst")}
    compromised_merchants: list[dict[str, Any]] = []
    burst_number = 0

    def add_burst(card: int, first_us: int, size: int, scenario: int) -> int:
        nonlocal burst_number
        gaps = rng.exponential(6 * US_PER_MINUTE, size).astype(np.int64) + US_PER_SECOND
        times = first_us + np.cumsum(gaps) - gaps[0]
        times = times[times < end_us]
        if len(times) == 0:
            return 0
        home = int(world.card_home[card])
        card_not_present = rng.random() < 0.6 or n_countries == 1
        if card_not_present:  # card details used online, often at foreign shops
            abroad = rng.random(len(times)) < 0.6
            country = np.where(abroad, (home + rng.integers(1, max(n_countries, 2), len(times))) % n_countries, home)
            online = np.ones(len(times), dtype=bool)
        else:  # a cloned card used in shops of one foreign country
            country = np.full(len(times), (home + rng.integers(1, n_countries)) % n_countries)
            online = np.zeros(len(times), dtype=bool)
        # fraudsters shop where the card has never been used (any such shop of the kind, if the country has none)
        used = used_by(card)
        merchant = np.empty(len(times), dtype=np.int64)
        for index, (country_index, kind) in enumerate(zip(country.tolist(), online.tolist(), strict=True)):
            fresh = [m for m in world.groups[(country_index, kind)].tolist() if m not in used]
            if not fresh:
                fresh = [m for m in np.flatnonzero(world.merchant_online == kind).tolist() if m not in used]
            merchant[index] = fresh[int(rng.integers(0, len(fresh)))] if fresh else int(rng.integers(0, n_merchants))
        amount = (
            world.card_scale_usd[card] * world.merchant_factor[merchant] * np.exp(rng.normal(0.3, 0.55, len(times)))
        )
        pos = (
            np.full(len(times), ECOMMERCE)
            if card_not_present
            else rng.choice(STORE_POS_MODES, size=len(times), p=CLONED_CARD_POS_WEIGHTS)
        )
        rows["card"] += [card] * len(times)
        rows["merchant"] += merchant.tolist()
        rows["ts_us"] += times.tolist()
        rows["amount_usd"] += amount.tolist()
        rows["pos"] += pos.tolist()
        rows["fraud"] += [scenario] * len(times)
        rows["burst"] += [burst_number] * len(times)
        burst_number += 1
        compromised_cards.add(card)
        return len(times)

    def burst_size(remaining: int) -> int:
        return int(min(remaining, rng.integers(3, 10)))

    merchant_target = round(count * cfg.merchant_fraud_share)
    produced = 0
    # (b) compromised merchants: popular stores, a compromise window, victims defrauded 1-10 days after their visit.
    store_members = np.flatnonzero(~world.merchant_online)
    if merchant_target > 0 and len(store_members):
        weights = world.merchant_popularity[store_members] / world.merchant_popularity[store_members].sum()
        candidates = rng.choice(store_members, size=min(len(store_members), 60), replace=False, p=weights)
        latest_start = start_us + max(cfg.days - 2, 0) * US_PER_DAY // 2  # compromises in the first half
        for merchant in candidates.tolist():
            if produced >= merchant_target:
                break
            window_start = int(rng.integers(start_us, latest_start + 1))
            window_end = window_start + int(rng.integers(1, 4)) * US_PER_DAY
            visits = np.flatnonzero(
                (legit.merchant == merchant) & (legit.ts_us >= window_start) & (legit.ts_us < window_end)
            )
            victims_this_merchant = 0
            first_visit: dict[int, int] = {}
            for row in visits[np.argsort(legit.ts_us[visits], kind="stable")].tolist():
                first_visit.setdefault(int(legit.card[row]), int(legit.ts_us[row]))
            for card, visit_us in first_visit.items():
                if produced >= merchant_target:
                    break
                if card in compromised_cards or victims_this_merchant >= 15 or rng.random() > 0.5:
                    continue
                latest = min(visit_us + 10 * US_PER_DAY, end_us - US_PER_HOUR)
                earliest = visit_us + US_PER_DAY
                if latest <= earliest:
                    continue
                made = add_burst(card, int(rng.integers(earliest, latest)), burst_size(merchant_target - produced), 2)
                produced += made
                victims_this_merchant += made > 0
            if victims_this_merchant:
                compromised_merchants.append(
                    {
                        "merchant_id": world.merchant_ids[merchant],
                        "window_start_us": window_start,
                        "window_end_us": window_end,
                        "victim_cards": victims_this_merchant,
                    }
                )
    # (a) compromised cards: the rest of the target.
    attempts = 0
    first_allowed = start_us + (US_PER_DAY if cfg.days > 1 else 0)
    while produced < count and attempts < 100 * count + 100:
        attempts += 1
        card = int(rng.integers(0, cfg.cards))
        if card in compromised_cards and len(compromised_cards) < cfg.cards:
            continue
        first_us = int(rng.integers(first_allowed, max(first_allowed + 1, end_us - US_PER_HOUR)))
        produced += add_burst(card, first_us, burst_size(count - produced), 1)
    events = _Events(
        card=np.array(rows["card"], dtype=np.int64),
        merchant=np.array(rows["merchant"], dtype=np.int64),
        ts_us=np.array(rows["ts_us"], dtype=np.int64),
        amount_usd=np.array(rows["amount_usd"], dtype=np.float64),
        pos=np.array(rows["pos"], dtype=np.int64),
        fraud=np.array(rows["fraud"], dtype=np.int8),
        burst=np.array(rows["burst"], dtype=np.int64),
    )
    return events, {"compromised_merchants": compromised_merchants, "bursts": burst_number}


def _concat(parts: Sequence[_Events]) -> _Events:
    return _Events(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_Events)})


# --------------------------------------------------------------------------------------------- serialization
@dataclass
class _Originals:
    """The N valid events, in event-time order, with their exact field texts."""

    event_ids: list[str]
    card: np.ndarray
    merchant: np.ndarray
    ts_us: np.ndarray  # exact: truncated to the printed precision
    ts_text: list[str]
    amount_text: list[str]
    amount_usd: np.ndarray
    currency: list[str]
    country: list[str]
    pos: list[str]
    card_number: list[str | None]
    fraud: np.ndarray
    burst: np.ndarray


def _finalize(cfg: GeneratorConfig, world: _World, events: _Events) -> _Originals:
    rng = _stage_rng(cfg.seed, 4)
    n = len(events.ts_us)
    order = np.lexsort((rng.random(n), events.ts_us))
    ev = _Events(**{f.name: getattr(events, f.name)[order] for f in fields(_Events)})

    places = rng.choice(TS_DECIMALS, size=n, p=TS_DECIMAL_WEIGHTS)
    step = 10 ** (6 - places)
    ts_us = ev.ts_us - np.mod(ev.ts_us, step)
    ts_text = _decimal_texts(ts_us // step, places)

    country_index = world.merchant_country[ev.merchant]
    currency_codes = np.array([c.currency for c in world.countries])[country_index]
    rates = np.array([world.currencies[c.currency] for c in world.countries])[country_index]
    minor = np.array([CURRENCY_DECIMALS.get(c.currency, 2) for c in world.countries])[country_index]
    style = rng.random(n)
    amount_places = np.where(minor == 0, 0, np.where(style < 0.05, 0, np.where(style < 0.97, 2, 3 + (style > 0.99))))
    local = np.maximum(ev.amount_usd, 0.5) / rates
    units = np.maximum(np.rint(local * 10.0**amount_places), 1).astype(np.int64)
    whole = (amount_places == 0) & (minor > 0)  # round amounts, e.g. a 20.00 top-up written as 20
    units = np.where(whole, np.maximum(np.rint(local), 1), units).astype(np.int64)
    amount_text = _decimal_texts(units, amount_places)
    amount_usd = units / 10.0**amount_places * rates

    with_number = rng.random(n) < cfg.card_number_rate
    card_number = [
        world.card_numbers[c] if w else None for c, w in zip(ev.card.tolist(), with_number.tolist(), strict=True)
    ]
    country_codes = np.array([c.code for c in world.countries])[country_index]
    return _Originals(
        event_ids=[],  # assigned once every id in the run is drawn
        card=ev.card,
        merchant=ev.merchant,
        ts_us=ts_us,
        ts_text=ts_text,
        amount_text=amount_text,
        amount_usd=amount_usd,
        currency=currency_codes.tolist(),
        country=country_codes.tolist(),
        pos=np.array(POS_MODES)[ev.pos].tolist(),
        card_number=card_number,
        fraud=ev.fraud,
        burst=ev.burst,
    )


Items = list[tuple[str, str]]  # (key, JSON value text) in output order


def _serialize(items: Items, item_sep: str = ", ", key_sep: str = ": ") -> str:
    return "{" + item_sep.join(f'"{k}"{key_sep}{v}' for k, v in items) + "}"


def _original_lines(orig: _Originals, world: _World) -> list[str]:
    card_ids = world.card_ids
    merchant_ids = world.merchant_ids
    lines = []
    for eid, card, ts, merchant, amount, currency, country, pos, number in zip(
        orig.event_ids,
        orig.card.tolist(),
        orig.ts_text,
        orig.merchant.tolist(),
        orig.amount_text,
        orig.currency,
        orig.country,
        orig.pos,
        orig.card_number,
        strict=True,
    ):
        tail = f', "card_number": "{number}"}}' if number else "}"
        lines.append(
            f'{{"event_id": "{eid}", "card_id": "{card_ids[card]}", "ts": {ts}, '
            f'"merchant_id": "{merchant_ids[merchant]}", "amount": {amount}, "currency": "{currency}", '
            f'"country": "{country}", "pos_mode": "{pos}"{tail}'
        )
    return lines


def _items(orig: _Originals, world: _World, i: int, event_id: str | None = None) -> Items:
    items = [
        ("event_id", f'"{event_id or orig.event_ids[i]}"'),
        ("card_id", f'"{world.card_ids[orig.card[i]]}"'),
        ("ts", orig.ts_text[i]),
        ("merchant_id", f'"{world.merchant_ids[orig.merchant[i]]}"'),
        ("amount", orig.amount_text[i]),
        ("currency", f'"{orig.currency[i]}"'),
        ("country", f'"{orig.country[i]}"'),
        ("pos_mode", f'"{orig.pos[i]}"'),
    ]
    if orig.card_number[i]:
        items.append(("card_number", f'"{orig.card_number[i]}"'))
    return items


def _replace(items: Items, key: str, value: str) -> Items:
    return [(k, value if k == key else v) for k, v in items]


def _without(items: Items, key: str) -> Items:
    return [(k, v) for k, v in items if k != key]


def _with_card_number(items: Items, number: str) -> Items:
    return [*_without(items, "card_number"), ("card_number", number)]


# --------------------------------------------------------------------------------------------- bad records
# Each variant: (name, field named in the detail or None, function(items, rng, card_number) -> line text).
# Every variant breaks exactly one rule of a record that is otherwise valid, so its reason is certain.
BadVariant = tuple[str, str | None, Callable[[Items, np.random.Generator, str], str]]


def _truncated(items: Items, rng: np.random.Generator, _: str) -> str:
    text = _serialize(items)
    return text[: int(rng.integers(2, len(text) - 1))]


def _missing(key: str, how: str) -> Callable[[Items, np.random.Generator, str], str]:
    def build(items: Items, _rng: np.random.Generator, _n: str) -> str:
        if how == "absent":
            return _serialize(_without(items, key))
        return _serialize(_replace(items, key, "null" if how == "null" else '""'))

    return build


def _set(key: str, value: str | Callable[[Items], str]) -> Callable[[Items, np.random.Generator, str], str]:
    def build(items: Items, _rng: np.random.Generator, _n: str) -> str:
        text = value(items) if callable(value) else value
        if key == "card_number":
            return _serialize(_with_card_number(items, text))
        return _serialize(_replace(items, key, text))

    return build


def _value(items: Items, key: str) -> str:
    return dict(items)[key]


def _ts_seconds(items: Items) -> int:
    return int(_value(items, "ts").split(".")[0])


def _bad_card_number(kind: str) -> Callable[[Items, np.random.Generator, str], str]:
    def build(items: Items, _rng: np.random.Generator, number: str) -> str:
        if kind == "luhn":
            text = number[:-1] + str((int(number[-1]) + 1 + _rng.integers(0, 9)) % 10)
        elif kind == "short":
            text = number[:8]
        elif kind == "letters":
            text = number[:6] + "ABCD" + number[10:]
        elif kind == "dashes":
            text = "-".join(number[i : i + 4] for i in range(0, 16, 4))
        elif kind == "long":
            text = number + "0000"
        else:
            text = ""
        return _serialize(_with_card_number(items, f'"{text}"'))

    return build


BAD_VARIANTS: dict[str, tuple[BadVariant, ...]] = {
    "malformed_json": (
        ("truncated", None, _truncated),
        ("array", None, lambda items, _r, _n: "[" + _serialize(items) + "]"),
        ("empty_array", None, lambda _i, _r, _n: "[]"),
        ("scalar_number", None, lambda _i, _r, _n: "42"),
        ("scalar_string", None, lambda _i, _r, _n: '"card_authorization"'),
        ("scalar_true", None, lambda _i, _r, _n: "true"),
        ("null", None, lambda _i, _r, _n: "null"),
        ("duplicate_key", None, lambda items, _r, _n: _serialize([*items, ("amount", "1.0")])),
        ("duplicate_key_same_value", None, lambda items, _r, _n: _serialize([*items, items[0]])),
        (
            "invalid_utf8",
            None,
            lambda items, _r, _n: _serialize(_replace(items, "merchant_id", '"caf\udce9-\udcff\udcfe"')),
        ),
        ("two_objects", None, lambda items, _r, _n: _serialize(items) + _serialize(items)),
        ("trailing_garbage", None, lambda items, _r, _n: _serialize(items) + " x"),
        ("single_quotes", None, lambda items, _r, _n: _serialize(items).replace('"', "'")),
        ("trailing_comma", None, lambda items, _r, _n: _serialize(items)[:-1] + ", }"),
    ),
    "missing_field": (
        ("empty_object", "event_id", lambda _i, _r, _n: "{}"),
        *(
            (f"{key}_{how}", key, _missing(key, how))
            for key in REQUIRED_FIELDS
            for how in ("absent", "null", "empty")
            if not (how == "empty" and key in {"ts", "amount"})
        ),
    ),
    "bad_type": (
        ("event_id_number", "event_id", _set("event_id", "918273645")),
        ("card_id_number", "card_id", _set("card_id", "123456")),
        ("ts_string", "ts", _set("ts", lambda items: f'"{_value(items, "ts")}"')),
        ("ts_bool", "ts", _set("ts", "true")),
        ("merchant_id_bool", "merchant_id", _set("merchant_id", "true")),
        ("amount_string", "amount", _set("amount", lambda items: f'"{_value(items, "amount")}"')),
        ("amount_bool", "amount", _set("amount", "false")),
        ("amount_object", "amount", _set("amount", lambda items: f'{{"value": {_value(items, "amount")}}}')),
        ("currency_number", "currency", _set("currency", "840")),
        ("country_bool", "country", _set("country", "true")),
        ("pos_mode_array", "pos_mode", _set("pos_mode", '["chip"]')),
        ("card_number_number", "card_number", lambda items, _r, number: _serialize(_with_card_number(items, number))),
    ),
    "out_of_range": (
        ("amount_5_decimals", "amount", _set("amount", lambda items: _value(items, "amount").split(".")[0] + ".12345")),
        ("amount_1e14", "amount", _set("amount", "100000000000000")),
        ("amount_above_1e14", "amount", _set("amount", "123456789012345.5")),
        ("ts_7_decimals", "ts", _set("ts", lambda items: f"{_ts_seconds(items)}.1234567")),
        ("ts_before_2000", "ts", _set("ts", "946684799.5")),
        ("ts_zero", "ts", _set("ts", "0")),
        ("ts_2100", "ts", _set("ts", "4102444800")),
        ("ts_negative", "ts", _set("ts", lambda items: f"-{_ts_seconds(items)}")),
    ),
    "non_positive_amount": (
        ("zero", "amount", _set("amount", "0")),
        ("zero_decimals", "amount", _set("amount", "0.00")),
        ("negative", "amount", _set("amount", lambda items: "-" + _value(items, "amount"))),
        ("negative_cent", "amount", _set("amount", "-0.01")),
    ),
    "unknown_currency": (
        ("lower_case", "currency", _set("currency", lambda items: _value(items, "currency").lower())),
        ("xxx", "currency", _set("currency", '"XXX"')),
        ("word", "currency", _set("currency", '"EURO"')),
        ("symbol", "currency", _set("currency", '"US$"')),
        ("padded", "currency", _set("currency", lambda items: '" ' + _value(items, "currency")[1:])),
    ),
    "bad_enum": (
        ("country_lower", "country", _set("country", lambda items: _value(items, "country").lower())),
        ("country_alpha3", "country", _set("country", '"USA"')),
        ("country_one_letter", "country", _set("country", '"U"')),
        ("country_digit", "country", _set("country", '"D3"')),
        ("country_non_ascii", "country", _set("country", '"\u00dcS"')),
        ("pos_mode_tap", "pos_mode", _set("pos_mode", '"tap"')),
        ("pos_mode_upper", "pos_mode", _set("pos_mode", '"CHIP"')),
        ("pos_mode_online", "pos_mode", _set("pos_mode", '"online"')),
        ("pos_mode_padded", "pos_mode", _set("pos_mode", '"chip "')),
    ),
    "invalid_card_number": (
        ("luhn_invalid", "card_number", _bad_card_number("luhn")),
        ("too_short", "card_number", _bad_card_number("short")),
        ("letters", "card_number", _bad_card_number("letters")),
        ("dashes", "card_number", _bad_card_number("dashes")),
        ("too_long", "card_number", _bad_card_number("long")),
        ("empty", "card_number", _bad_card_number("empty")),
    ),
}


def _class_counts(total: int, classes: Sequence[str], rng: np.random.Generator) -> list[str]:
    """`total` labels: every class at least once when total allows, the rest spread evenly, shuffled."""
    labels = [classes[i % len(classes)] for i in range(total)]
    return [labels[i] for i in rng.permutation(total).tolist()]


# --------------------------------------------------------------------------------------------- the run
def _count(rate: float, events: int, minimum: int = 0) -> int:
    if rate <= 0:
        return 0
    return max(minimum, round(rate * events))


def _arrival_delay(rng: np.random.Generator, count: int) -> np.ndarray:
    """On-time Firehose delivery delay: seconds, sometimes minutes."""
    seconds = np.exp(rng.normal(math.log(4.0), 1.2, count))
    return np.clip((seconds * US_PER_SECOND).astype(np.int64), 50_000, NORMAL_DELAY_MAX_US)


def _utc(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


def _uuid_text(raw: str) -> str:
    """A random (version 4) UUID from 32 random hex digits, as Firehose appends to object names."""
    variant = "89ab"[int(raw[16], 16) % 4]
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-{variant}{raw[17:20]}-{raw[20:32]}"


def _gzip(data: bytes, level: int) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def _write_jsonl_gz(path: Path, rows: list[dict[str, Any]], level: int) -> int:
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    data = _gzip(text.encode("utf-8"), level)
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


def _redeliveries(
    cfg: GeneratorConfig, world: _World, orig: _Originals, arrival: np.ndarray, bucket_us: int
) -> _ExtraLines:
    """Exact re-deliveries (dup-rate) and conflicting ones (conflict-rate), each in a later file than the original.

    Conflicts are drawn from legitimate events only, so the fraud ground truth never depends on how silver
    settles a conflict; an event is re-delivered at most once.
    """
    rng = _stage_rng(cfg.seed, 10)
    n = len(orig.event_ids)
    n_dup = min(_count(cfg.dup_rate, n), n)
    n_conflict = min(_count(cfg.conflict_rate, n), n - n_dup)
    legit_rows = np.flatnonzero(orig.fraud == 0)
    conflict_rows = np.sort(rng.choice(legit_rows, size=min(n_conflict, len(legit_rows)), replace=False))
    remaining = np.setdiff1d(np.arange(n), conflict_rows)
    dup_rows = np.sort(rng.choice(remaining, size=min(n_dup, len(remaining)), replace=False))
    lines: list[str] = []
    truth: list[dict[str, Any]] = []
    dup_variants = rng.choice(len(DUPLICATE_VARIANTS), size=len(dup_rows), p=[0.5, 0.2, 0.15, 0.15])
    for row, variant in zip(dup_rows.tolist(), dup_variants.tolist(), strict=True):
        name = DUPLICATE_VARIANTS[variant]
        items = _items(orig, world, row)
        if name == "identical":
            lines.append(_serialize(items))
        elif name == "key_order":
            order = rng.permutation(len(items))
            while (order == np.arange(len(items))).all():
                order = rng.permutation(len(items))
            lines.append(_serialize([items[i] for i in order.tolist()]))
        elif name == "whitespace":
            compact = rng.random() < 0.5
            lines.append(
                _serialize(items, ",", ":") if compact else "{ " + _serialize(items, " ,  ", " : ")[1:-1] + " }"
            )
        else:
            lines.append(_serialize([*items, ("delivery_attempt", "2")]))
        truth.append({"event_id": orig.event_ids[row], "class": "duplicate", "variant": name})
    conflict_variants = rng.integers(0, len(CONFLICT_VARIANTS), len(conflict_rows))
    for row, variant in zip(conflict_rows.tolist(), conflict_variants.tolist(), strict=True):
        items = _items(orig, world, row)
        name = CONFLICT_VARIANTS[variant]
        merchant = int(orig.merchant[row])
        if name == "amount":
            units, _, decimals = orig.amount_text[row].partition(".")
            new_units = int(units) + 1 + int(rng.integers(0, 50))
            items = _replace(items, "amount", f"{new_units}.{decimals}" if decimals else str(new_units))
        else:
            group = world.groups[(int(world.merchant_country[merchant]), bool(world.merchant_online[merchant]))]
            pool = group[group != merchant]
            if len(pool) == 0:
                pool = np.flatnonzero(np.arange(len(world.merchant_ids)) != merchant)
            items = _replace(items, "merchant_id", f'"{world.merchant_ids[int(rng.choice(pool))]}"')
        lines.append(_serialize(items))
        truth.append({"event_id": orig.event_ids[row], "class": "conflict", "variant": name})
    rows = np.concatenate([dup_rows, conflict_rows]).astype(np.int64)
    # at least one buffer interval later: always a later file, usually within the next two hours
    later = rng.integers(bucket_us, bucket_us + 2 * US_PER_HOUR, len(rows))
    kind = np.concatenate([np.ones(len(dup_rows), dtype=np.int8), np.full(len(conflict_rows), 2, dtype=np.int8)])
    return _ExtraLines(lines=lines, arrival_us=arrival[rows] + later, kind=kind, truth=truth, meta=[])


def _bad_lines(cfg: GeneratorConfig, world: _World, orig: _Originals, bad_ids: list[str], n_bad: int) -> _ExtraLines:
    """`n_bad` invalid lines spread evenly over the quarantine reasons, cycling through each reason's variants.

    Each starts from a real event's fields under a fresh event id and breaks exactly one rule.
    """
    rng = _stage_rng(cfg.seed, 11)
    reasons = _class_counts(n_bad, QUARANTINE_REASONS, rng)
    base_rows = rng.integers(0, len(orig.event_ids), n_bad)
    lines: list[str] = []
    meta: list[tuple[str, str, str | None]] = []
    cursor: Counter[str] = Counter()
    for reason, base, event_id in zip(reasons, base_rows.tolist(), bad_ids, strict=True):
        variants = BAD_VARIANTS[reason]
        name, field_name, build = variants[cursor[reason] % len(variants)]
        cursor[reason] += 1
        items = _without(_items(orig, world, base, event_id), "card_number")
        lines.append(build(items, rng, world.card_numbers[orig.card[base]]))
        meta.append((reason, name, field_name))
    arrival = orig.ts_us[base_rows] + _arrival_delay(rng, n_bad)
    return _ExtraLines(lines=lines, arrival_us=arrival, kind=np.full(n_bad, 3, dtype=np.int8), truth=[], meta=meta)


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
    world = _build_world(cfg, currencies, start_us, end_us)
    n_fraud_target = round(cfg.events * cfg.fraud_rate)
    legit = _legit_events(cfg, world, cfg.events - n_fraud_target, start_us, end_us)
    fraud, fraud_info = _fraud_events(cfg, world, legit, n_fraud_target, start_us=start_us, end_us=end_us)
    if len(fraud.ts_us) < n_fraud_target:  # only when cards or days are too few for bursts: top up with legit
        legit = _concat(
            [legit, _legit_events(cfg, world, n_fraud_target - len(fraud.ts_us), start_us, end_us, stage=12)]
        )
    orig = _finalize(cfg, world, _concat([legit, fraud]))
    n = cfg.events
    progress(f"{n} events simulated ({int((orig.fraud > 0).sum())} fraud)")

    # 2. ids: originals from one stream, everything else from another, all checked unique ---------------------
    n_bad = _count(cfg.bad_rate, n, minimum=len(QUARANTINE_REASONS))
    n_unreadable_records = 5 if cfg.bad_rate > 0 else 0
    n_unknown_labels = _count(cfg.bad_rate, n_fraud_target, minimum=1) if cfg.bad_rate > 0 else 0
    orig.event_ids = _hex_ids(_stage_rng(cfg.seed, 5), n)
    other_ids = _hex_ids(_stage_rng(cfg.seed, 8), n_bad + n_unreadable_records + n_unknown_labels)
    if len(set(orig.event_ids).union(other_ids)) != n + len(other_ids):  # 128 random bits: never in practice
        raise RuntimeError("event id collision; pick another seed")
    bad_ids = other_ids[:n_bad]
    unreadable_ids = other_ids[n_bad : n_bad + n_unreadable_records]
    unknown_label_ids = other_ids[n_bad + n_unreadable_records :]

    # 3. bronze lines: originals, re-deliveries, conflicts, bad lines, each with an arrival time -------------
    lines = _original_lines(orig, world)
    arrival_rng = _stage_rng(cfg.seed, 9)
    arrival = orig.ts_us + _arrival_delay(arrival_rng, n)
    n_late = _count(cfg.late_rate, n)
    late_rows = np.sort(arrival_rng.choice(n, size=n_late, replace=False))
    late_delay = arrival_rng.uniform(LATE_MIN_HOURS, max(cfg.late_max_hours, LATE_MIN_HOURS), n_late)
    arrival[late_rows] = orig.ts_us[late_rows] + (late_delay * US_PER_HOUR).astype(np.int64)
    bucket_us = US_PER_HOUR // cfg.files_per_hour
    redelivered = _redeliveries(cfg, world, orig, arrival, bucket_us)
    lines += redelivered.lines
    bad = _bad_lines(cfg, world, orig, bad_ids, n_bad)
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
    file_rng = _stage_rng(cfg.seed, 6)
    name_ids = _hex_ids(file_rng, n_files + 2)
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
        first = _utc(int(all_arrival[rows[0]]))
        folder = bronze_root / first.strftime("ingest_dt=%Y/%m/%d/%H")
        name = f"{cfg.stream_name}-1-{first.strftime('%Y-%m-%d-%H-%M-%S')}-{_uuid_text(name_ids[file_index])}"
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
        data = _gzip(text.encode("utf-8", "surrogateescape"), cfg.compress_level)
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
            _serialize(_items(orig, world, r, e)) + "\n"
            for r, e in zip(base_rows.tolist(), unreadable_ids, strict=True)
        )
        whole = _gzip(body.encode("utf-8"), cfg.compress_level)
        cut = whole[: max(12, len(whole) * 3 // 5)]  # a delivery cut short: the deflate stream just stops
        when = _utc(int(orig.ts_us[base_rows[0]]) + US_PER_MINUTE)
        path = (
            bronze_root
            / when.strftime("ingest_dt=%Y/%m/%d/%H")
            / (f"{cfg.stream_name}-1-{when.strftime('%Y-%m-%d-%H-%M-%S')}-{_uuid_text(name_ids[n_files])}.gz")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cut)
        total_bytes += len(cut)
        special["unreadable_file"] = {
            "path": str(path.relative_to(root)),
            "reason": "truncated gzip",
            "records_inside": n_unreadable_records,
        }
    first_folder = bronze_root / _utc(int(all_arrival[order[0]])).strftime("ingest_dt=%Y/%m/%d/%H")
    ignored = first_folder / f".tmp-{cfg.stream_name}-1-{_uuid_text(name_ids[n_files + 1])}.gz"
    # An in-flight temporary: copies of real records, so a reader that does not skip it sees duplicates.
    ignored_data = _gzip(("\n".join(lines[: min(3, n)]) + "\n").encode("utf-8"), cfg.compress_level)
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
        _write_jsonl_gz(gen_dir / name, rows, cfg.compress_level)

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
            "start": _utc(start_us).isoformat(),
            "end": _utc(end_us).isoformat(),
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
    cfg: GeneratorConfig, root: Path, orig: _Originals, unknown_ids: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], int, int]:
    """Chargebacks by report day: one per fraud event of a reported burst; with bad-rate also junk."""
    rng = _stage_rng(cfg.seed, 7)
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
        reasons = _class_counts(n_bad, LABEL_REASONS, rng)
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
        by_day.setdefault(_utc(record["reported_at"] * US_PER_SECOND).strftime("%Y/%m/%d"), []).append(record)
    total_bytes = 0
    truth: list[dict[str, Any]] = []
    label_root = root / LABELS_PREFIX
    name_ids = _hex_ids(rng, len(by_day), 4)
    for (day, day_records), suffix in zip(sorted(by_day.items()), name_ids, strict=True):
        path = label_root / f"reported_dt={day}" / f"chargebacks-{day.replace('/', '-')}-{suffix}.jsonl.gz"
        text = "".join(r["text"] + "\n" for r in day_records)
        data = _gzip(text.encode("utf-8"), cfg.compress_level)
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


# --------------------------------------------------------------------------------------------- CLI
def _merchant_count(text: str) -> int | None:
    return None if text == "auto" else int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="generate_transactions.py",
        description=(
            "Generate a deterministic, realistic card-authorization lake: bronze NDJSON in the Firehose layout "
            "(<lake-root>/bronze/streaming/card_authorization/ingest_dt=YYYY/MM/DD/HH/), chargebacks "
            "(<lake-root>/bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/) and the ground truth "
            "(<lake-root>/_generator/manifest.json). Rates are shares of --events. Same arguments, same bytes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = GeneratorConfig()
    add = parser.add_argument
    add("--events", type=int, default=d.events, help="distinct valid transactions to generate (fraud included)")
    add("--cards", type=int, default=d.cards, help="number of cards (each has a home country, spend level, activity)")
    add(
        "--merchants",
        type=_merchant_count,
        default="auto",
        help="approximate number of merchants (at least 5 per country); auto: max(120, cards/4)",
    )
    add("--start", type=dt.date.fromisoformat, default=d.start, help="first event day (UTC), YYYY-MM-DD")
    add("--days", type=int, default=d.days, help="number of days of event time")
    add("--seed", type=int, default=d.seed, help="random seed: same seed and arguments give byte-identical files")
    add("--lake-root", type=Path, default="./lake", help="local lake folder to write into")
    add(
        "--bad-rate",
        type=float,
        default=d.bad_rate,
        help="invalid lines per event, spread over every quarantine reason (at least one each when > 0); "
        "> 0 also adds blank/whitespace-only lines, CRLF and BOM files, one truncated gzip file and "
        "invalid, repeated and unknown-event chargebacks",
    )
    add(
        "--dup-rate",
        type=float,
        default=d.dup_rate,
        help="exact re-deliveries per event, in a later file (some with other key order, whitespace or an "
        "extra unknown field: the same record)",
    )
    add(
        "--conflict-rate",
        type=float,
        default=d.conflict_rate,
        help="re-deliveries per event with the same event_id and ts but another amount or merchant",
    )
    add("--late-rate", type=float, default=d.late_rate, help="share of events that arrive hours after their ts")
    add(
        "--late-max-hours",
        type=float,
        default=d.late_max_hours,
        help=f"late events arrive {LATE_MIN_HOURS:g} h to this many hours after their ts",
    )
    add("--card-number-rate", type=float, default=d.card_number_rate, help="share of records carrying card_number")
    add("--fraud-rate", type=float, default=d.fraud_rate, help="share of events that are fraud")
    add(
        "--merchant-fraud-share",
        type=float,
        default=d.merchant_fraud_share,
        help="share of fraud from compromised merchants (the rest: compromised cards)",
    )
    add(
        "--chargeback-rate",
        type=float,
        default=d.chargeback_rate,
        help="share of fraud bursts reported as chargebacks (the rest are never reported)",
    )
    add("--travel-rate", type=float, default=d.travel_rate, help="share of cards that travel abroad for 2-7 days")
    add(
        "--files-per-hour",
        type=int,
        default=d.files_per_hour,
        help="Firehose buffer intervals per hour: at most this many files per arrival-hour folder",
    )
    add("--fx-rates", type=Path, default=d.fx_rates, help="currency,usd_rate CSV: every currency in it is used")
    add("--stream-name", default=d.stream_name, help="delivery stream name, the prefix of every bronze file name")
    add("--compress-level", type=int, default=d.compress_level, help="gzip level (0-9)")
    add("--overwrite", action="store_true", help="replace the generator's folders if the lake already has them")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--progress", action="store_true", help="print progress (default from 200000 events)")
    verbosity.add_argument("--quiet", action="store_true", help="print only the final summary line")
    return parser


def config_from_args(args: argparse.Namespace) -> GeneratorConfig:
    values = {f.name: getattr(args, f.name) for f in fields(GeneratorConfig) if hasattr(args, f.name)}
    values["progress"] = bool(args.progress or (not args.quiet and args.events >= 200_000))
    return GeneratorConfig(**values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = generate_lake(config_from_args(args))
    except (ValueError, OSError) as error:
        parser.error(str(error))
    print(summary.one_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "BAD_VARIANTS",
    "LABEL_REASONS",
    "POS_MODES",
    "QUARANTINE_REASONS",
    "GenerationSummary",
    "GeneratorConfig",
    "build_parser",
    "config_from_manifest",
    "generate_lake",
    "load_manifest",
    "load_truth",
    "main",
]
