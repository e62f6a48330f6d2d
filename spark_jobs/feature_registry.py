"""The feature set, declared once: card, event and merchant features.

Each `Feature` names its entity, type, window and aggregation; from this list come the gold table's Spark
columns (`spark_jobs/gold.py`: the card and event features, `CARD_FEATURES`), the merchant snapshot's
(`spark_jobs/merchant_features.py`: `MERCHANT_FEATURES`), the SageMaker Feature Store groups (`feature_store/`),
the dataset columns (`spark_jobs/build_datasets.py`: `FEATURE_NAMES`), the request-time features
(`feature_store/request_features.py`) and the tables in `docs/features.md`
(`python -m spark_jobs.feature_registry > docs/features.md`) and README.md (tests fail when they are stale).

Card windows are over the card's silver events by `ts_us`, both ends inclusive: for an event at t, the
window of length W holds the card's events with t − W ≤ ts ≤ t, the event itself and every event with
the same ts included, whatever order they arrived in (the z-score and merchant_seen read only the strictly
earlier ones, t − W ≤ ts < t). Event features read only the event's ts (UTC). Merchant features are as of
the start S of the event's UTC day (see MERCHANT_COUNT, MERCHANT_CHARGEBACK_RATE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

FEATURE_SET_VERSION = 2
V1_FEATURE_SET_VERSION = 1  # still readable: the migration (docs/feature_store.md) backfills v2 beside it

# Entities: whose history a feature aggregates. Card and event features are computed per event (gold's
# columns, and at request time from the card's state); merchant features are a daily snapshot as of the
# day's start (UTC), computed by the jobs and read from the merchant feature group at request time.
CARD = "card_id"
MERCHANT = "merchant_id"
EVENT = "event"
ENTITIES = (CARD, MERCHANT, EVENT)
ENTITY = CARD  # the card feature group's record identifier

# Feature value types; the Spark and Feature Store types follow from them.
INTEGER = "integer"
DECIMAL = "decimal"
DOUBLE = "double"
SPARK_TYPES = {INTEGER: "bigint", DECIMAL: "decimal(38,10)", DOUBLE: "double"}
FEATURE_STORE_TYPES = {INTEGER: "Integral", DECIMAL: "Fractional", DOUBLE: "Fractional"}

# Aggregations over a window of the card's events (gold.py and request time, feature_aggregations.py).
COUNT = "count"
SUM = "sum"
MAX = "max"
COUNT_DISTINCT = "count_distinct"
MEAN = "mean"  # exact decimal sum / count, as double
RATIO_TO_MEAN = "ratio_to_mean"  # the event's own value / the window mean
SECONDS_SINCE_PREVIOUS = "seconds_since_previous"  # t - latest ts < t within the window, in seconds
ZSCORE_TO_EARLIER = "zscore_to_earlier"  # (value - mean) / population std of the strictly earlier window events
SEEN_EARLIER = "seen_earlier"  # 1 when a strictly earlier window event has the event's own `source` value
# Event features: a function of the event's own ts_us (UTC).
HOUR_OF_DAY = "hour_of_day"
IS_WEEKEND = "is_weekend"
IS_NIGHT = "is_night"
# Merchant features: the merchant's events before the start S of the event's day (merchant_features.py).
MERCHANT_COUNT = "merchant_count"  # events with ts in [S - W, S)
MERCHANT_CHARGEBACK_RATE = "merchant_chargeback_rate"  # share of [S - L - W, S - L) with a chargeback known at S

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
MONTH = timedelta(days=30)
NO_WINDOW = timedelta(0)  # event features

# L: a merchant's chargeback rate counts only events at least this old, whose chargebacks have had time to
# arrive; the datasets' default label delay (build_datasets.py --label-delay-days) is the same.
LABEL_MATURITY = timedelta(days=7)
NIGHT_HOURS = range(0, 6)  # is_night: the UTC hour is in [0, 6)


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str
    aggregation: str
    window: timedelta
    description: str
    source: str | None = None  # the silver column aggregated (None for counts)
    entity: str = CARD

    def __post_init__(self) -> None:
        if self.entity not in ENTITIES:
            raise ValueError(f"feature {self.name}: unknown entity {self.entity!r}; known: {', '.join(ENTITIES)}")

    @property
    def spark_type(self) -> str:
        return SPARK_TYPES[self.dtype]

    @property
    def feature_store_type(self) -> str:
        return FEATURE_STORE_TYPES[self.dtype]

    @property
    def window_us(self) -> int:
        return int(self.window / timedelta(microseconds=1))

    @property
    def per_event(self) -> bool:
        """Computed for each event from the card's events (gold's columns, request time): card and event."""
        return self.entity != MERCHANT


def _span_text(window: timedelta) -> str:
    """A merchant window in words for its description: 24 hours, 7 days, 30 days."""
    return "24 hours" if window == DAY else f"{window // DAY} days"


def _merchant_count(window: timedelta, text: str) -> Feature:
    return Feature(
        f"merchant_txn_count_{text}",
        INTEGER,
        MERCHANT_COUNT,
        window,
        f"The merchant's transactions in the {_span_text(window)} before the start (UTC) of the event's day.",
        entity=MERCHANT,
    )


def _merchant_chargeback_rate(window: timedelta, text: str) -> Feature:
    return Feature(
        f"merchant_cb_rate_{text}",
        DOUBLE,
        MERCHANT_CHARGEBACK_RATE,
        window,
        f"Share of the merchant's transactions in the {_span_text(window)} ending the label maturity (7 d) before "
        "the start of the event's day that have a chargeback reported before that start; null when there are none.",
        entity=MERCHANT,
    )


V1_FEATURES: tuple[Feature, ...] = (
    Feature("txn_count_1h", INTEGER, COUNT, HOUR, "Number of the card's transactions in the last hour."),
    Feature(
        "txn_amount_1h",
        DECIMAL,
        SUM,
        HOUR,
        "Total USD amount of the card's transactions in the last hour.",
        "amount_usd",
    ),
    Feature("txn_count_24h", INTEGER, COUNT, DAY, "Number of the card's transactions in the last 24 hours."),
    Feature(
        "merchant_count_24h",
        INTEGER,
        COUNT_DISTINCT,
        DAY,
        "Distinct merchants the card paid in the last 24 hours.",
        "merchant_id",
    ),
    Feature(
        "country_count_24h",
        INTEGER,
        COUNT_DISTINCT,
        DAY,
        "Distinct countries the card was used in during the last 24 hours.",
        "country",
    ),
    Feature("max_amount_24h", DECIMAL, MAX, DAY, "Largest USD amount of the card in the last 24 hours.", "amount_usd"),
    Feature(
        "avg_amount_7d",
        DOUBLE,
        MEAN,
        WEEK,
        "Mean USD amount of the card's transactions in the last 7 days.",
        "amount_usd",
    ),
    Feature(
        "amount_to_avg_7d",
        DOUBLE,
        RATIO_TO_MEAN,
        WEEK,
        "This transaction's USD amount divided by the card's 7-day mean amount.",
        "amount_usd",
    ),
    Feature(
        "secs_since_prev_txn",
        DOUBLE,
        SECONDS_SINCE_PREVIOUS,
        WEEK,
        "Seconds since the card's previous transaction (strictly earlier ts, at most 7 days back); null if none.",
    ),
)

V2_ADDED: tuple[Feature, ...] = (
    Feature("txn_count_30d", INTEGER, COUNT, MONTH, "Number of the card's transactions in the last 30 days."),
    Feature(
        "avg_amount_30d",
        DOUBLE,
        MEAN,
        MONTH,
        "Mean USD amount of the card's transactions in the last 30 days.",
        "amount_usd",
    ),
    Feature(
        "amount_zscore_30d",
        DOUBLE,
        ZSCORE_TO_EARLIER,
        MONTH,
        "This transaction's USD amount minus the mean, over the population standard deviation, of the card's "
        "strictly earlier transactions in the last 30 days; null with fewer than 2 of them or a deviation of 0.",
        "amount_usd",
    ),
    Feature(
        "merchant_seen_30d",
        INTEGER,
        SEEN_EARLIER,
        MONTH,
        "1 when the card paid this merchant strictly earlier in the last 30 days, else 0.",
        "merchant_id",
    ),
    Feature("hour_of_day", INTEGER, HOUR_OF_DAY, NO_WINDOW, "Hour of the transaction (UTC), 0 to 23.", entity=EVENT),
    Feature(
        "is_weekend",
        INTEGER,
        IS_WEEKEND,
        NO_WINDOW,
        "1 when the transaction is on a Saturday or Sunday (UTC).",
        entity=EVENT,
    ),
    Feature("is_night", INTEGER, IS_NIGHT, NO_WINDOW, "1 when the UTC hour is in [0, 6), else 0.", entity=EVENT),
    _merchant_count(DAY, "1d"),
    _merchant_count(WEEK, "7d"),
    _merchant_count(MONTH, "30d"),
    _merchant_chargeback_rate(DAY, "1d"),
    _merchant_chargeback_rate(WEEK, "7d"),
    _merchant_chargeback_rate(MONTH, "30d"),
)

# The feature set: v1 unchanged, then what v2 added. Dataset columns and model inputs, in this order.
FEATURES: tuple[Feature, ...] = (*V1_FEATURES, *V2_ADDED)
V1_FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in V1_FEATURES)
# Gold's columns, the card feature group, computed at request time from the card's state.
CARD_FEATURES: tuple[Feature, ...] = tuple(feature for feature in FEATURES if feature.per_event)
# The merchant snapshot's columns and the merchant feature group.
MERCHANT_FEATURES: tuple[Feature, ...] = tuple(feature for feature in FEATURES if not feature.per_event)
CARD_FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in CARD_FEATURES)
MERCHANT_FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in MERCHANT_FEATURES)
FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in FEATURES)

# Rows of gold depend on the card's events at most this far back (and a late event changes them this far ahead).
MAX_WINDOW = max(feature.window for feature in CARD_FEATURES)
# A merchant snapshot of day D depends on the merchant's events in [S - MERCHANT_LOOKBACK, S), S = D's start.
MERCHANT_LOOKBACK = LABEL_MATURITY + max(feature.window for feature in MERCHANT_FEATURES)


def _window_text(window: timedelta) -> str:
    """1 h, 24 h (one day, as v1's docs always showed it), 7 d, 30 d; "–" for event features (no window)."""
    if window == NO_WINDOW:
        return "–"
    if window % DAY == timedelta(0) and window > DAY:
        return f"{window // DAY} d"
    return f"{int(window / HOUR)} h"


def features_by_entity() -> tuple[Feature, ...]:
    """FEATURES grouped by entity (card, event, merchant), each group in registry order (the docs' tables)."""
    order = (CARD, EVENT, MERCHANT)
    return tuple(sorted(FEATURES, key=lambda item: order.index(item.entity)))


def _entity_text(feature: Feature) -> str:
    return f"`{feature.entity}`" if feature.entity != EVENT else "event"


def markdown_table() -> str:
    """docs/features.md, generated from the registry."""
    maturity = _window_text(LABEL_MATURITY)
    lines = [
        "# Features",
        "",
        "<!-- Generated by `python -m spark_jobs.feature_registry > docs/features.md`; do not edit by hand. -->",
        "",
        f"Feature set version **{FEATURE_SET_VERSION}**: v1's {len(V1_FEATURES)} features unchanged, then "
        f"{len(V2_ADDED)} added. The datasets' columns and the model's inputs are every feature in registry order "
        "(`FEATURE_NAMES`); the table below groups them by entity.",
        "",
        f"- **card** (entity `{CARD}`) and **event** features are computed for every event: gold's columns "
        f"(`gold/card_features`), the Feature Store group `card-features-v{FEATURE_SET_VERSION}` (record id "
        f"`{CARD}`), and at request time from the card's state, with the same values bit for bit. Windows are by "
        "event time `ts_us`, both ends inclusive: for an event at t, the window of length W holds the card's "
        "silver events with t − W ≤ ts ≤ t, the event itself and every event with the same ts included, whatever "
        "their arrival order. `amount_zscore_30d` and `merchant_seen_30d` read only the strictly earlier events, "
        "t − W ≤ ts < t (peers at t excluded); the z-score is (amount − mean) / sqrt(E[amount²] − mean²) over them.",
        "- **event** features read only the event's own `ts_us`, in UTC (integer arithmetic, never a session time "
        "zone); `is_weekend` is Saturday or Sunday, `is_night` an hour in [0, 6).",
        f"- **merchant** features (entity `{MERCHANT}`) are a daily snapshot as of S, the start (00:00 UTC) of the "
        f"event's day: `gold/merchant_features`, the Feature Store group `merchant-features-v{FEATURE_SET_VERSION}` "
        f"(record id `{MERCHANT}`). Counts are over the merchant's silver events with S − W ≤ ts < S; chargeback "
        f"rates over its events with S − L − W ≤ ts < S − L, L = {maturity} (the label maturity), counting those "
        "with a chargeback reported before S (and not before the event), null when there are none. An event's "
        "dataset row takes the snapshot of its merchant and UTC day (counts 0, rates null without one).",
        "",
        "| feature | entity | type | Spark type | Feature Store type | window | aggregation | source | description |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for item in features_by_entity():
        lines.append(
            f"| `{item.name}` | {_entity_text(item)} | {item.dtype} | `{item.spark_type}` | "
            f"{item.feature_store_type} | {_window_text(item.window)} | {item.aggregation} | {item.source or '–'} | "
            f"{item.description} |"
        )
    return "\n".join(lines) + "\n"


def readme_table() -> str:
    """The compact table between the `features:start/end` markers in README.md."""
    lines = [
        "Generated from `spark_jobs/feature_registry.py` (the one list that drives Spark, the Feature Store, the",
        "datasets and request time); the full table is [docs/features.md](docs/features.md). Card and event features",
        "are computed per event (at request time too); merchant features are a daily snapshot as of the start (UTC)",
        f"of the event's day, chargeback rates over events at least L = {_window_text(LABEL_MATURITY)} older.",
        "",
        "| feature | entity | type | window | definition |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{item.name}` | {_entity_text(item)} | {item.dtype} | {_window_text(item.window)} | {item.description} |"
        for item in features_by_entity()
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
