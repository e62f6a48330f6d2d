"""Daily datasets for fraud data scientists: the out-of-time split and the inference snapshot (pure
transforms), plus the content hash rule.

For an as-of date A (00:00 UTC), label delay D, validation V and training T days:

    training    ts in [A − D − V − T, A − D − V)
    validation  ts in [A − D − V, A − D)
    (neither)   ts in [A − D, A): their chargebacks have not had time to arrive
    inference   every card's latest gold row with ts < A (latest = greatest (ts_us, event_id))

Every row carries its merchant's features as of the start of the event's UTC day: the point-in-time join of
gold/merchant_features on (merchant_id, day = dt) (`with_merchant_features`; counts 0, rates null without a
snapshot row).

An event's label is 1 when a valid chargeback for it was reported before A (`labels.py`), else 0. Every
transform filters on its own bounds, so rows at or after A that reach it are never used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.feature_registry import FEATURE_NAMES, INTEGER, MERCHANT_FEATURE_NAMES, MERCHANT_FEATURES
from spark_jobs.gold import GOLD_SCHEMA, feature_field

TRAIN = "train"
VALIDATION = "validation"
INFERENCE = "inference"
SPLITS = (TRAIN, VALIDATION)

KEY_COLUMNS = ("event_id", "card_id", "ts", "ts_us", "amount_usd")
INFERENCE_COLUMNS = (*KEY_COLUMNS, *FEATURE_NAMES)
TRAINING_COLUMNS = (*INFERENCE_COLUMNS, "label")

# gold's columns, and the merchant snapshot's (merchant features are not in gold)
_GOLD_FIELDS = {item.name: item for item in GOLD_SCHEMA.fields} | {
    item.name: feature_field(item) for item in MERCHANT_FEATURES
}
INFERENCE_SCHEMA = T.StructType([_GOLD_FIELDS[name] for name in INFERENCE_COLUMNS])
TRAINING_SCHEMA = T.StructType([*INFERENCE_SCHEMA.fields, T.StructField("label", T.IntegerType(), False)])

US_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1)

CONTENT_HASH_RULE = (
    "sha256 over the train, validation and inference rows, in that order, each split sorted by "
    "(ts_us, event_id); one line per row: json.dumps(row, sort_keys=True, separators=(',', ':'), "
    "default=str) + '\\n', UTF-8 (decimals as str(Decimal), floats by repr, nulls as null)"
)


def day_start_us(day: date) -> int:
    return (day - _EPOCH).days * US_PER_DAY


def iso_from_us(ts_us: int | None) -> str | None:
    """2026-01-03T00:00:00.000001+00:00 for microseconds since the epoch (exact, no float)."""
    if ts_us is None:
        return None
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us)).isoformat()


@dataclass(frozen=True)
class DatasetWindows:
    """The as-of date and the day counts; every bound is a UTC midnight, starts inclusive, ends exclusive."""

    as_of: date
    train_days: int = 14
    validation_days: int = 7
    label_delay_days: int = 7

    def __post_init__(self) -> None:
        if self.train_days < 1 or self.validation_days < 1 or self.label_delay_days < 0:
            raise ValueError("train and validation days must be >= 1 and the label delay >= 0")

    @property
    def validation_end(self) -> date:
        return self.as_of - timedelta(days=self.label_delay_days)

    @property
    def validation_start(self) -> date:
        return self.validation_end - timedelta(days=self.validation_days)

    @property
    def train_start(self) -> date:
        return self.validation_start - timedelta(days=self.train_days)

    @property
    def as_of_us(self) -> int:
        return day_start_us(self.as_of)

    def bounds_us(self, split: str) -> tuple[int, int]:
        """[start, end) of a split in microseconds since the epoch."""
        if split == TRAIN:
            return day_start_us(self.train_start), day_start_us(self.validation_start)
        if split == VALIDATION:
            return day_start_us(self.validation_start), day_start_us(self.validation_end)
        raise ValueError(f"unknown split {split!r}")

    def describe(self) -> dict:
        """The windows as the manifest states them (ISO timestamps, starts inclusive, ends exclusive)."""

        def moment(day: date) -> str:
            return datetime.combine(day, datetime.min.time(), tzinfo=UTC).isoformat()

        return {
            TRAIN: {"start": moment(self.train_start), "end": moment(self.validation_start), "days": self.train_days},
            VALIDATION: {
                "start": moment(self.validation_start),
                "end": moment(self.validation_end),
                "days": self.validation_days,
            },
            "label_maturity_gap": {
                "start": moment(self.validation_end),
                "end": moment(self.as_of),
                "days": self.label_delay_days,
            },
            INFERENCE: {"end": moment(self.as_of)},
            "label_cutoff": moment(self.as_of),
        }


def with_merchant_features(events: DataFrame, merchant_snapshot: DataFrame) -> DataFrame:
    """Gold rows with the merchant features of their merchant's snapshot of the event's UTC day: a LEFT JOIN
    of the rows on (merchant_id, dt) with gold/merchant_features' (merchant_id, day); a merchant without a
    row that day (its first day, a silent month) gets counts 0 and rates null. Output: the rows' columns
    (any merchant feature columns they had replaced), then MERCHANT_FEATURE_NAMES."""
    snapshot = merchant_snapshot.select("merchant_id", F.col("day").alias("dt"), *MERCHANT_FEATURE_NAMES)
    own_columns = [name for name in events.columns if name not in MERCHANT_FEATURE_NAMES]
    joined = events.select(*own_columns).join(snapshot, ["merchant_id", "dt"], "left")
    merchant_values = [
        (F.coalesce(F.col(item.name), F.lit(0)) if item.dtype == INTEGER else F.col(item.name))
        .cast(item.spark_type)
        .alias(item.name)
        for item in MERCHANT_FEATURES
    ]
    return joined.select(*own_columns, *merchant_values)


def labelled_events(events: DataFrame, labels: DataFrame) -> DataFrame:
    """Gold rows with `label`: 1 when the event is in `labels` (labels.event_labels: chargebacks reported
    before the as-of time), else 0. Output: TRAINING_COLUMNS."""
    charged_back = labels.select("event_id", F.lit(1).alias("charged_back"))
    return events.join(charged_back, "event_id", "left").select(
        *INFERENCE_COLUMNS, F.coalesce(F.col("charged_back"), F.lit(0)).cast("int").alias("label")
    )


def split_rows(labelled: DataFrame, windows: DatasetWindows, split: str) -> DataFrame:
    """The rows of one split: ts_us in [start, end). Output: TRAINING_COLUMNS."""
    start_us, end_us = windows.bounds_us(split)
    return labelled.where((F.col("ts_us") >= start_us) & (F.col("ts_us") < end_us)).select(*TRAINING_COLUMNS)


def inference_snapshot(events: DataFrame, *, as_of_us: int, merchant_snapshot: DataFrame | None = None) -> DataFrame:
    """Every card's latest gold row with ts < as-of: greatest (ts_us, event_id); with `merchant_snapshot`,
    joined to it afterwards (`with_merchant_features`: only the latest rows are joined).
    Output: INFERENCE_COLUMNS."""
    latest_first = Window.partitionBy("card_id").orderBy(F.col("ts_us").desc(), F.col("event_id").desc())
    latest = (
        events.where(F.col("ts_us") < as_of_us)
        .withColumn("recency_rank", F.row_number().over(latest_first))
        .where(F.col("recency_rank") == 1)
    )
    if merchant_snapshot is not None:
        latest = with_merchant_features(latest, merchant_snapshot)
    return latest.select(*INFERENCE_COLUMNS)


# --- The content hash -----------------------------------------------------------------------------------


def content_hash_line(row: Mapping[str, object]) -> str:
    """One row's line of the content hash (without the newline)."""
    return json.dumps(dict(row), sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class SplitDigest:
    """What one pass over a split's rows (in hash order) found: its hash and its statistics."""

    rows: int = 0
    frauds: int = 0
    cards: int = 0
    first_ts_us: int | None = None
    last_ts_us: int | None = None
    sha256: str = ""


class ContentHasher:
    """The dataset's content hash, fed split by split in order; each split's rows in (ts_us, event_id) order."""

    def __init__(self) -> None:
        self._total = hashlib.sha256()

    def add_split(self, rows: Iterable[Mapping[str, object]]) -> SplitDigest:
        digest = SplitDigest()
        split_hash = hashlib.sha256()
        cards: set[str] = set()
        previous: tuple | None = None
        for row in rows:
            key = (row["ts_us"], row["event_id"])
            if previous is not None and key <= previous:
                raise ValueError(f"rows are not in strictly increasing (ts_us, event_id) order at {key}")
            previous = key
            line = (content_hash_line(row) + "\n").encode("utf-8")
            split_hash.update(line)
            self._total.update(line)
            digest.rows += 1
            digest.frauds += int(row.get("label") or 0)
            cards.add(row["card_id"])
            if digest.first_ts_us is None:
                digest.first_ts_us = row["ts_us"]
            digest.last_ts_us = row["ts_us"]
        digest.cards = len(cards)
        digest.sha256 = split_hash.hexdigest()
        return digest

    def hexdigest(self) -> str:
        return self._total.hexdigest()
