"""The generator's configuration, its constants (paths, reasons, variants, the countries) and its summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from devtools.repo import REPO_ROOT
from spark_jobs import lake as lake_layout

DEFAULT_FX_RATES = REPO_ROOT / "spark_jobs" / "reference_data" / "fx_rates.csv"

# The lake's layout (spark_jobs/lake.py): the generator writes where producers deliver.
BRONZE_PREFIX = lake_layout.BRONZE_EVENTS_PREFIX
LABELS_PREFIX = lake_layout.LABELS_PREFIX
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
    "field_too_long",
    "card_number_in_field",
    "out_of_range",
    "future_timestamp",
    "non_positive_amount",
    "unknown_currency",
    "bad_enum",
    "invalid_card_number",
    "line_too_long",
)
LABEL_REASONS = (
    "malformed_json",
    "missing_field",
    "bad_type",
    "field_too_long",
    "card_number_in_field",
    "reported_before_event",
)
SCENARIOS = ("compromised_card", "compromised_merchant", "merchant_breach")  # fraud code = index + 1
DUPLICATE_VARIANTS = ("identical", "key_order", "whitespace", "extra_field")
CONFLICT_VARIANTS = ("amount", "merchant_id")
# A share of the conflicts instead re-deliver the event with its ts moved MOVED_TS_DAYS earlier (another dt
# partition): silver must find the first delivery however far it is (spark_jobs/event_id_index.py).
MOVED_TS_CONFLICT = "ts_moved_days"
MOVED_TS_CONFLICT_SHARE = 0.25
MOVED_TS_DAYS = (2, 10)  # inclusive range of whole days

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
NORMAL_DELAY_MAX_US = 10 * US_PER_MINUTE  # on-time arrivals come seconds to minutes after the event
LATE_MIN_HOURS = 2.0  # late arrivals come at least this long after the event: never confused with on-time ones
CHARGEBACK_MAX_DAYS = 60
# merchant_breach: breached merchants are drawn among those with at least this many legitimate authorizations
# per day on average over the lake (enough volume for a chargeback rate to mean something; docs/evaluation.md).
BREACH_MIN_DAILY_AUTHORIZATIONS = 5


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
    # merchant_breach (docs/evaluation.md): fraud at the breached merchant itself, on top of fraud_rate
    breached_merchants: int = 0
    breach_days: int = 21
    breach_fraud_share: float = 0.2
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
        for name, minimum in (("events", 1), ("cards", 1), ("days", 1), ("breached_merchants", 0), ("breach_days", 1)):
            if getattr(self, name) < minimum:
                problems.append(f"--{name.replace('_', '-')} must be at least {minimum}")
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
            "breach_fraud_share",
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
