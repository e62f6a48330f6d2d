"""Gold: point-in-time-correct card and event features, one row per silver event (pure transforms).

Every feature column comes from `feature_registry.CARD_FEATURES` (the card and event features; the merchant
features are a separate daily snapshot, `spark_jobs/merchant_features.py`); see that module for the window
semantics.
Windows are over the exact integer `ts_us`, so both ends are inclusive and events with the same ts are peers:
all of them are inside each other's windows, whatever their arrival order (Spark's RANGE frames; long windows
are running sums over the events and their exit rows, `feature_aggregations.CardFrames`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.feature_aggregations import CardFrames, aggregation_of
from spark_jobs.feature_registry import (
    CARD_FEATURE_NAMES,
    CARD_FEATURES,
    DECIMAL,
    DOUBLE,
    FEATURE_SET_VERSION,
    INTEGER,
    Feature,
)

# merchant_id: the datasets join the merchant snapshot on it (and merchant_seen_30d reads it).
KEY_COLUMNS = ("event_id", "card_id", "merchant_id", "ts", "ts_us", "event_ts", "dt", "amount_usd")

_SPARK_DATA_TYPES = {INTEGER: T.LongType(), DECIMAL: T.DecimalType(38, 10), DOUBLE: T.DoubleType()}


def feature_field(feature: Feature) -> T.StructField:
    """A registry feature's Spark column (nullable): gold's card features, the merchant snapshot's columns."""
    return T.StructField(feature.name, _SPARK_DATA_TYPES[feature.dtype], True)


GOLD_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType(), False),
        T.StructField("card_id", T.StringType(), False),
        T.StructField("merchant_id", T.StringType(), False),
        T.StructField("ts", T.DecimalType(16, 6), False),
        T.StructField("ts_us", T.LongType(), False),
        T.StructField("event_ts", T.TimestampType(), False),
        T.StructField("dt", T.DateType(), False),
        T.StructField("amount_usd", T.DecimalType(30, 10), False),
        *[feature_field(item) for item in CARD_FEATURES],
        T.StructField("feature_set_version", T.IntegerType(), False),
        T.StructField("computed_at", T.TimestampType(), False),
    ]
)

# Delta statistics only on what gold's reads prune by (delta_tables.stats_columns): event_id (the feature store's
# dead-letter replay), card_id (Z-ordered; the stream's MERGE per card) and ts_us (time ranges).
GOLD_STATS_COLUMNS = ("event_id", "card_id", "ts_us")


def feature_column(feature: Feature, card: CardFrames) -> Column:
    """The Spark expression of one registry feature over the card's events prepared by `card` (its aggregation's
    Spark half, next to the request-time half in `spark_jobs/feature_aggregations.py`)."""
    return aggregation_of(feature).spark_column(feature, card).cast(feature.spark_type).alias(feature.name)


def card_features(events: DataFrame, *, computed_at) -> DataFrame:
    """Gold rows for `events` (silver rows: every event the windows need, typically more than the rows
    wanted; filter afterwards). Output columns are exactly GOLD_SCHEMA."""
    card = CardFrames()
    features = [feature_column(item, card) for item in CARD_FEATURES]  # first: they register what to prepare
    return card.prepare(events).select(
        *KEY_COLUMNS,
        *features,
        F.lit(FEATURE_SET_VERSION).cast("int").alias("feature_set_version"),
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
    )


def values_differ(target: str = "t", source: str = "s") -> str:
    """SQL condition true when any stored feature value differs from the recomputed one (null-safe)."""
    names = [*CARD_FEATURE_NAMES, "feature_set_version", "amount_usd", "card_id", "merchant_id", "ts_us"]
    return " OR ".join(f"NOT ({target}.{name} <=> {source}.{name})" for name in names)
