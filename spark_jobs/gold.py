"""Gold: point-in-time-correct card features, one row per silver event (pure transforms).

Every feature column comes from `feature_registry.FEATURES`; see that module for the window semantics.
Windows are Spark RANGE frames over the exact integer `ts_us`, so both ends are inclusive and events
with the same ts are peers: all of them are inside each other's windows, whatever their arrival order.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.feature_registry import (
    COUNT,
    COUNT_DISTINCT,
    DECIMAL,
    DOUBLE,
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    FEATURES,
    INTEGER,
    MAX,
    MEAN,
    RATIO_TO_MEAN,
    SECONDS_SINCE_PREVIOUS,
    SUM,
    Feature,
)

KEY_COLUMNS = ("event_id", "card_id", "ts", "ts_us", "event_ts", "dt", "amount_usd")

_SPARK_DATA_TYPES = {INTEGER: T.LongType(), DECIMAL: T.DecimalType(38, 10), DOUBLE: T.DoubleType()}

GOLD_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType(), False),
        T.StructField("card_id", T.StringType(), False),
        T.StructField("ts", T.DecimalType(16, 6), False),
        T.StructField("ts_us", T.LongType(), False),
        T.StructField("event_ts", T.TimestampType(), False),
        T.StructField("dt", T.DateType(), False),
        T.StructField("amount_usd", T.DecimalType(30, 10), False),
        *[T.StructField(item.name, _SPARK_DATA_TYPES[item.dtype], True) for item in FEATURES],
        T.StructField("feature_set_version", T.IntegerType(), False),
        T.StructField("computed_at", T.TimestampType(), False),
    ]
)


def _card_time_window(feature: Feature, *, exclude_current_ts: bool = False) -> Window:
    ordered = Window.partitionBy("card_id").orderBy("ts_us")
    return ordered.rangeBetween(-feature.window_us, -1 if exclude_current_ts else 0)


def _window_sum(feature: Feature) -> Column:
    return F.sum(feature.source).over(_card_time_window(feature))


def _window_count(feature: Feature) -> Column:
    return F.count(F.lit(1)).over(_card_time_window(feature))


def _mean(feature: Feature) -> Column:
    # The exact decimal sum, converted once, over the count: within an ulp or two of the exact quotient.
    return _window_sum(feature).cast("double") / _window_count(feature)


def feature_column(feature: Feature) -> Column:
    """The Spark expression of one registry feature over the card's events."""
    window = _card_time_window(feature)
    if feature.aggregation == COUNT:
        value = _window_count(feature)
    elif feature.aggregation == SUM:
        value = _window_sum(feature)
    elif feature.aggregation == MAX:
        value = F.max(feature.source).over(window)
    elif feature.aggregation == COUNT_DISTINCT:
        value = F.size(F.collect_set(feature.source).over(window))
    elif feature.aggregation == MEAN:
        value = _mean(feature)
    elif feature.aggregation == RATIO_TO_MEAN:
        value = F.col(feature.source).cast("double") / _mean(feature)
    elif feature.aggregation == SECONDS_SINCE_PREVIOUS:
        previous = F.max("ts_us").over(_card_time_window(feature, exclude_current_ts=True))
        value = (F.col("ts_us") - previous) / F.lit(1_000_000.0)
    else:
        raise ValueError(f"feature {feature.name}: unknown aggregation {feature.aggregation!r}")
    return value.cast(feature.spark_type).alias(feature.name)


def card_features(events: DataFrame, *, computed_at) -> DataFrame:
    """Gold rows for `events` (silver rows: every event the windows need, typically more than the rows
    wanted; filter afterwards). Output columns are exactly GOLD_SCHEMA."""
    return events.select(
        *KEY_COLUMNS,
        *[feature_column(item) for item in FEATURES],
        F.lit(FEATURE_SET_VERSION).cast("int").alias("feature_set_version"),
        F.lit(computed_at).cast("timestamp").alias("computed_at"),
    )


def values_differ(target: str = "t", source: str = "s") -> str:
    """SQL condition true when any stored feature value differs from the recomputed one (null-safe)."""
    names = [*FEATURE_NAMES, "feature_set_version", "amount_usd", "card_id", "ts_us"]
    return " OR ".join(f"NOT ({target}.{name} <=> {source}.{name})" for name in names)
