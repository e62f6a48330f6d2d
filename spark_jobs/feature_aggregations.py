"""Every registry aggregation, twice, side by side: as a Spark window expression (gold) and at request time.

`feature_registry.Feature.aggregation` names one row of `AGGREGATIONS`. Its `spark_column` builds the
column gold computes for every silver event (`spark_jobs/gold.py`); its `at_request` computes the same
value for one authorization from the card's events at serving time (`feature_store/request_features.py`).
Keeping the two halves in one row is the pairing: a feature whose aggregation lacks either half fails a test,
and a change to one half sits next to the other.

The Spark halves import pyspark inside the function: this module is imported by the serving path (Lambda),
which has no Spark. The request-time halves reproduce Spark's arithmetic exactly:

- windows are inclusive on ts_us, [t − W, t]; events with ts_us == t are peers and count, whatever their
  arrival order (Spark's RANGE frame); nothing later than t is in the window;
- sums and maxima are exact decimals, at gold's decimal(38,10);
- a decimal converted to double is correctly rounded (Spark's `Decimal.toDouble` is Java's
  `BigDecimal.doubleValue`; Python's `float(Decimal)` rounds the same way), then double arithmetic follows
  Spark's operand order: mean = double(decimal sum) / double(count), ratio = double(amount) / mean,
  seconds = double(t − previous) / 1e6.
"""

from __future__ import annotations

import decimal
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from spark_jobs.feature_registry import (
    COUNT,
    COUNT_DISTINCT,
    MAX,
    MEAN,
    RATIO_TO_MEAN,
    SECONDS_SINCE_PREVIOUS,
    SUM,
    Feature,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, WindowSpec

DECIMAL_SCALE = 10  # gold's decimal(38,10)
DECIMAL_PRECISION = 38
_DECIMAL_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_DECIMAL_LIMIT = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)
# Sums of amounts (each < 1e20 with <= 10 places) stay far inside 60 digits: no rounding, ever.
_EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
MICROS_PER_SECOND = 1_000_000.0


class CardEvent(Protocol):
    """What the request-time halves read of an event (`feature_store.online_state.StateEvent` has it)."""

    event_id: str
    ts_us: int
    amount_usd: Decimal
    merchant_id: str
    country: str


class CardWindows:
    """A card's events up to the authorization at `current.ts_us`, sliced per window length.

    `events` must be ordered by ts_us, hold `current`, and hold nothing later than current.ts_us.
    """

    __slots__ = ("_ts_us", "current", "events")

    def __init__(self, events: Sequence[CardEvent], current: CardEvent) -> None:
        self.events = events
        self.current = current
        self._ts_us = [event.ts_us for event in events]

    def within(self, feature: Feature) -> Sequence[CardEvent]:
        """The events with current.ts_us − window <= ts_us <= current.ts_us (both ends inclusive)."""
        return self.events[bisect_left(self._ts_us, self.current.ts_us - feature.window_us) :]

    def earlier_within(self, feature: Feature) -> Sequence[CardEvent]:
        """The window's events strictly earlier than current.ts_us (Spark's frame [−W, −1])."""
        start = bisect_left(self._ts_us, self.current.ts_us - feature.window_us)
        return self.events[start : bisect_left(self._ts_us, self.current.ts_us)]


def _as_gold_decimal(value: Decimal, feature: Feature) -> Decimal:
    """`value` at decimal(38,10); gold's cast would fail (ANSI) or null it, so an overflow is an error."""
    quantized = value.quantize(_DECIMAL_QUANTUM, context=_EXACT)
    if abs(quantized) >= _DECIMAL_LIMIT:
        raise ArithmeticError(f"feature {feature.name}: {value} does not fit decimal(38,10)")
    return quantized


def _exact_sum(events: Sequence[CardEvent], source: str) -> Decimal:
    with decimal.localcontext(_EXACT):
        return sum((getattr(event, source) for event in events), Decimal(0))


# --- request-time halves ----------------------------------------------------------------------------------


def _count_at_request(feature: Feature, windows: CardWindows) -> int:
    return len(windows.within(feature))


def _sum_at_request(feature: Feature, windows: CardWindows) -> Decimal:
    return _as_gold_decimal(_exact_sum(windows.within(feature), feature.source), feature)


def _max_at_request(feature: Feature, windows: CardWindows) -> Decimal:
    return _as_gold_decimal(max(getattr(event, feature.source) for event in windows.within(feature)), feature)


def _count_distinct_at_request(feature: Feature, windows: CardWindows) -> int:
    return len({getattr(event, feature.source) for event in windows.within(feature)})


def _mean_at_request(feature: Feature, windows: CardWindows) -> float:
    events = windows.within(feature)
    # the decimal sum converted once (correctly rounded), over the count converted to double
    return float(_exact_sum(events, feature.source)) / float(len(events))


def _ratio_to_mean_at_request(feature: Feature, windows: CardWindows) -> float:
    return float(getattr(windows.current, feature.source)) / _mean_at_request(feature, windows)


def _seconds_since_previous_at_request(feature: Feature, windows: CardWindows) -> float | None:
    earlier = windows.earlier_within(feature)
    if not earlier:
        return None
    return float(windows.current.ts_us - earlier[-1].ts_us) / MICROS_PER_SECOND


# --- Spark halves (pyspark imported lazily) ---------------------------------------------------------------


def card_time_window(feature: Feature, *, exclude_current_ts: bool = False) -> WindowSpec:
    """The card's events in [ts_us − window, ts_us] (or up to ts_us − 1): a RANGE frame over exact ts_us."""
    from pyspark.sql import Window

    ordered = Window.partitionBy("card_id").orderBy("ts_us")
    return ordered.rangeBetween(-feature.window_us, -1 if exclude_current_ts else 0)


def _window_sum(feature: Feature) -> Column:
    from pyspark.sql import functions as F

    return F.sum(feature.source).over(card_time_window(feature))


def _window_count(feature: Feature) -> Column:
    from pyspark.sql import functions as F

    return F.count(F.lit(1)).over(card_time_window(feature))


def _max_in_spark(feature: Feature) -> Column:
    from pyspark.sql import functions as F

    return F.max(feature.source).over(card_time_window(feature))


def _count_distinct_in_spark(feature: Feature) -> Column:
    from pyspark.sql import functions as F

    return F.size(F.collect_set(feature.source).over(card_time_window(feature)))


def _mean_in_spark(feature: Feature) -> Column:
    # The exact decimal sum, converted once, over the count: within an ulp or two of the exact quotient.
    return _window_sum(feature).cast("double") / _window_count(feature)


def _ratio_to_mean_in_spark(feature: Feature) -> Column:
    from pyspark.sql import functions as F

    return F.col(feature.source).cast("double") / _mean_in_spark(feature)


def _seconds_since_previous_in_spark(feature: Feature) -> Column:
    from pyspark.sql import functions as F

    previous = F.max("ts_us").over(card_time_window(feature, exclude_current_ts=True))
    return (F.col("ts_us") - previous) / F.lit(MICROS_PER_SECOND)


# --- the table --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregation:
    """One registry aggregation: gold's Spark column and the request-time value, for any feature using it.

    Neither half casts to the feature's type: gold casts the column to `feature.spark_type`; the request-time
    half already returns that type's Python value (int, Decimal at 10 places, float or None).
    """

    name: str
    spark_column: Callable[[Feature], Column]
    at_request: Callable[[Feature, CardWindows], int | Decimal | float | None]


AGGREGATIONS: dict[str, Aggregation] = {
    aggregation.name: aggregation
    for aggregation in (
        Aggregation(COUNT, _window_count, _count_at_request),
        Aggregation(SUM, _window_sum, _sum_at_request),
        Aggregation(MAX, _max_in_spark, _max_at_request),
        Aggregation(COUNT_DISTINCT, _count_distinct_in_spark, _count_distinct_at_request),
        Aggregation(MEAN, _mean_in_spark, _mean_at_request),
        Aggregation(RATIO_TO_MEAN, _ratio_to_mean_in_spark, _ratio_to_mean_at_request),
        Aggregation(SECONDS_SINCE_PREVIOUS, _seconds_since_previous_in_spark, _seconds_since_previous_at_request),
    )
}


def aggregation_of(feature: Feature) -> Aggregation:
    """The feature's row of AGGREGATIONS; a ValueError naming both when the registry names an unknown one."""
    try:
        return AGGREGATIONS[feature.aggregation]
    except KeyError:
        raise ValueError(
            f"feature {feature.name}: unknown aggregation {feature.aggregation!r}; known: {', '.join(AGGREGATIONS)}"
        ) from None
