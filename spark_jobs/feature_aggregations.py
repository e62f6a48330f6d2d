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
  seconds = double(t − previous) / 1e6;
- the z-score (`ZSCORE_TO_EARLIER`) is over the strictly earlier events of the window, [t − W, t) (Spark's frame
  [−W, −1]): n = count, mean = double(exact decimal sum) / double(n), var = double(Σ amount²) / double(n) −
  mean·mean, z = (double(amount) − mean) / sqrt(var); null when n < 2, min == max, or var <= 0 (rounding).
  Σ amount² is exact and then converted by one fixed sequence of double operations (`_sum_of_squares`): each
  amount's unscaled integer U = amount·10^10 splits into hi·10^15 + lo, the three sums Σhi², Σhi·lo, Σlo² are
  exact integers (decimal(38,0) in Spark, Python ints), each converted to double once (correctly rounded), then
  Σhi²·1e10 + (2·Σhi·lo)/1e5 + Σlo²/1e20. IEEE double +, −, ×, ÷ and sqrt are correctly rounded in Java and
  Python alike, so the same operations in the same order give the same bits;
- `SEEN_EARLIER` is 1 when a strictly earlier event of the window has the event's own `source` value, else 0;
- event features (`HOUR_OF_DAY`, `IS_WEEKEND`, `IS_NIGHT`) read only the event's ts_us, by integer arithmetic
  in UTC (floor division; day 0, 1970-01-01, was a Thursday), never the session time zone.

Merchant features (`feature_registry.MERCHANT_FEATURES`) are not here: they are a daily snapshot
(`spark_jobs/merchant_features.py`), not a function of the card's events; `aggregation_of` rejects them.
"""

from __future__ import annotations

import decimal
import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from spark_jobs.feature_registry import (
    COUNT,
    COUNT_DISTINCT,
    HOUR_OF_DAY,
    IS_NIGHT,
    IS_WEEKEND,
    MAX,
    MEAN,
    NIGHT_HOURS,
    RATIO_TO_MEAN,
    SECONDS_SINCE_PREVIOUS,
    SEEN_EARLIER,
    SUM,
    ZSCORE_TO_EARLIER,
    Feature,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, WindowSpec

DECIMAL_SCALE = 10  # gold's decimal(38,10)
DECIMAL_PRECISION = 38
_DECIMAL_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_DECIMAL_LIMIT = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)
# Sums of amounts (each < 1e20 with <= 10 places) stay far inside 60 digits: no rounding, ever.
_EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
MICROS_PER_SECOND = 1_000_000.0
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 86_400_000_000
# Day 0 (1970-01-01) was a Thursday: (day + 3) mod 7 numbers Monday 0 .. Sunday 6.
_THURSDAY_FROM_MONDAY = 3
_SATURDAY_FROM_MONDAY = 5
# The z-score's exact sum of squares: an amount's unscaled integer U = amount * 10^10 (< 10^30) splits into
# U = hi * 10^15 + lo (hi, lo < 10^15), so U^2 = hi^2 * 10^30 + 2 hi lo * 10^15 + lo^2 and each of the three
# window sums is an exact integer below n * 10^30 (decimal(38,0) in Spark: exact up to 10^8 events).
_UNSCALED = 10**DECIMAL_SCALE
_SPLIT = 10**15


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


def _zscore_to_earlier_at_request(feature: Feature, windows: CardWindows) -> float | None:
    earlier = windows.earlier_within(feature)
    values = [getattr(event, feature.source) for event in earlier]
    if len(values) < 2 or min(values) == max(values):
        return None
    count = float(len(values))
    mean = float(_exact_sum(earlier, feature.source)) / count
    high_high = high_low = low_low = 0
    for value in values:
        high, low = divmod(int(value.scaleb(DECIMAL_SCALE, context=_EXACT)), _SPLIT)
        high_high += high * high
        high_low += high * low
        low_low += low * low
    variance = _sum_of_squares(float(high_high), float(high_low), float(low_low)) / count - mean * mean
    if variance <= 0.0:  # all amounts equal but for rounding
        return None
    return (float(getattr(windows.current, feature.source)) - mean) / math.sqrt(variance)


def _sum_of_squares(high_high: float, high_low: float, low_low: float) -> float:
    """Σ amount² in USD² as a double from the three exact integer sums (each converted once, correctly rounded),
    in one fixed operation order both halves share: Σhi²·10^10 + (2·Σhi·lo)/10^5 + Σlo²/10^20 (10^5, 10^10 and
    10^20 are exact doubles)."""
    return high_high * 1e10 + (high_low * 2.0) / 1e5 + low_low / 1e20


def _seen_earlier_at_request(feature: Feature, windows: CardWindows) -> int:
    own = getattr(windows.current, feature.source)
    return int(any(getattr(event, feature.source) == own for event in windows.earlier_within(feature)))


def _hour_of_day_at_request(feature: Feature, windows: CardWindows) -> int:
    return windows.current.ts_us // MICROS_PER_HOUR % 24


def _is_weekend_at_request(feature: Feature, windows: CardWindows) -> int:
    day = windows.current.ts_us // MICROS_PER_DAY
    return int((day + _THURSDAY_FROM_MONDAY) % 7 >= _SATURDAY_FROM_MONDAY)


def _is_night_at_request(feature: Feature, windows: CardWindows) -> int:
    return int(_hour_of_day_at_request(feature, windows) in NIGHT_HOURS)


# --- Spark halves (pyspark imported lazily) ---------------------------------------------------------------
#
# Cost: a sliding RANGE frame (both bounds moving) is O(rows × frame) in Spark: on every row whose bounds move,
# SlidingWindowFunctionFrame re-aggregates its whole buffer, for each aggregate. A running frame (RANGE UNBOUNDED
# PRECEDING AND CURRENT ROW / 1 PRECEDING) is O(rows): UnboundedPrecedingWindowFunctionFrame only adds the new
# rows. So long windows avoid sliding frames, without changing a bit of any value:
# - exact sums and counts over [t − W, t] and [t − W, t) are running sums over the events and one "exit" row per
#   event at its ts + W with the terms negated (`CardFrames.window_sum`, built by `CardFrames.prepare`); decimal
#   and integer sums are exact, so the difference is the window's exact sum and every double derived from it is
#   the same;
# - "the latest earlier event", "a strictly earlier event with this value" and "two different values among
#   the earlier events" are running maxima of a timestamp compared with t − W.
# Windows shorter than RUNNING_SUM_MIN_WINDOW_US keep their sliding frames (a few events per frame, where a second
# row per event and window would cost about what it saves).


# Every card window orders by this column of `CardFrames.prepare`: 2·ts_us on an event row (an exit row's is odd).
# The running sums need it over the events and their exits; ordering the event rows' windows by it too, rather
# than by ts_us, lets them reuse that sort (measured: one sort of every event fewer per build). A RANGE frame
# [2t − 2W, 2t] over it holds exactly the events with ts in [t − W, t]; up to 2t − 1, those with ts < t.
CARD_ORDER = "_order"


def card_time_window(feature: Feature, *, exclude_current_ts: bool = False) -> WindowSpec:
    """The card's events in [ts_us − window, ts_us] (or up to ts_us − 1): a RANGE frame over exact ts_us (as
    CARD_ORDER, 2·ts_us)."""
    from pyspark.sql import Window

    ordered = Window.partitionBy("card_id").orderBy(CARD_ORDER)
    return ordered.rangeBetween(-2 * feature.window_us, -1 if exclude_current_ts else 0)


def _card_earlier_running(*partition: str) -> WindowSpec:
    """Every event of the partition (default: the card) with ts_us < the row's: an O(n) running frame."""
    from pyspark.sql import Window

    return Window.partitionBy("card_id", *partition).orderBy(CARD_ORDER).rangeBetween(Window.unboundedPreceding, -1)


# Windows at least this long are summed by running sums with exit rows (`CardFrames`): the 30-day features, ~50
# events per frame on the bench lake (20,000 cards, 1M events in 30 days). The 7-day mean (~12 per frame) and the
# 1-hour and 24-hour windows (~0-2) stay sliding frames.
RUNNING_SUM_MIN_WINDOW_US = 30 * MICROS_PER_DAY


@dataclass(frozen=True, eq=False)  # a Column's == builds an expression
class _RunningSum:
    window_us: int
    earlier: bool  # [t − W, t) instead of [t − W, t]
    term: Column  # per event; an exit row adds its negation


class CardFrames:
    """The card's window aggregates that need more than one expression over silver's event rows.

    Gold asks every Spark half for its column first (each may register running sums or change points here and
    gets a column naming the prepared value), then `prepare` adds the prepared columns to the events, and the
    halves' columns are selected from that. Running sums: the card's events are ordered by 2·ts_us and unioned
    with one exit row per event and window W at 2·(ts_us + W) + 1 carrying the negated terms. The running frame up
    to the event's own order (2t) holds the events with ts <= t and the exits of the events with ts < t − W: the
    window [t − W, t]; up to 2t − 1 it holds the events with ts < t and the same exits: [t − W, t). (Orders stay
    far inside a long for any real ts_us.)
    """

    def __init__(self) -> None:
        self._sums: dict[str, _RunningSum] = {}
        self._previous: dict[str, str] = {}  # source column -> prepared column: ts of the previous event if changed
        self._finished: dict[str, Column] = {}  # prepared column -> its value from the event row and the sums

    @staticmethod
    def sums_running(feature: Feature) -> bool:
        """Whether the feature's window sums and counts are running sums over exit rows (prepared columns), not
        a sliding frame's window expression."""
        return feature.window_us >= RUNNING_SUM_MIN_WINDOW_US

    def finish(self, name: str, value: Column) -> Column:
        """`value` (an expression of the event's columns and the running sums only, no window) as a prepared
        column, evaluated right after the running sums: the card's later sorts and windows then carry this one
        value instead of the wide decimal sums it reads (measured: the z-score's five sums carried through two
        more sorts and windows cost more than computing them)."""
        from pyspark.sql import functions as F

        prepared = f"_finished__{name}"
        self._finished.setdefault(prepared, value)
        return F.col(prepared)

    def window_count(self, feature: Feature, *, earlier: bool = False) -> Column:
        """The number of the card's events in the feature's window ([t − W, t], or [t − W, t) when earlier)."""
        from pyspark.sql import functions as F

        if not self.sums_running(feature):
            return F.count(F.lit(1)).over(card_time_window(feature, exclude_current_ts=earlier))
        # a sum of ±1 (a long, like count); null only before the card's first row in the union
        return F.coalesce(self._running_sum(feature, "count", F.lit(1), earlier), F.lit(0).cast("long"))

    def window_sum(self, feature: Feature, label: str, term: Column, *, earlier: bool = False) -> Column:
        """The exact sum of `term` (a decimal or integer per event; `label` names it) over the feature's window,
        null over an empty window like SQL's sum."""
        from pyspark.sql import functions as F

        if not self.sums_running(feature):
            return F.sum(term).over(card_time_window(feature, exclude_current_ts=earlier))
        total = self._running_sum(feature, label, term, earlier)
        return F.when(self.window_count(feature, earlier=earlier) > 0, total)

    def varies_earlier(self, feature: Feature) -> Column:
        """True when the events in [t − W, t) hold at least two different values of `feature.source`, else false.

        In the card's ts order (ties in any order) an event is a change point when its value differs from the
        previous event's. The earlier events are contiguous in that order, so they hold two values iff some
        change point e_k has ts(e_k) < t and ts(e_k−1) >= t − W: iff the running maximum of ts(e_k−1) over the
        change points earlier than t is >= t − W."""
        from pyspark.sql import functions as F

        source = feature.source
        prepared = self._previous.setdefault(source, f"_changed_after_ts__{source}")
        latest_change = F.max(prepared).over(_card_earlier_running())
        return F.coalesce(latest_change >= F.col("ts_us") - F.lit(feature.window_us), F.lit(False))

    def _running_sum(self, feature: Feature, label: str, term: Column, earlier: bool) -> Column:
        from pyspark.sql import functions as F

        name = f"_sum__{label}__{feature.window_us}__{'earlier' if earlier else 'within'}"
        self._sums.setdefault(name, _RunningSum(feature.window_us, earlier, term))
        return F.col(name)

    def prepare(self, events: DataFrame) -> DataFrame:
        """`events` with the registered prepared columns and CARD_ORDER, one row per event (exit rows dropped)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not self._sums and not self._previous:
            return events.withColumn(CARD_ORDER, F.col("ts_us") * 2)
        # Each event row once as itself (copy 0) and once per window W as its exit (copy W): one scan of `events`,
        # and every column keeps its values (and so its nullability) on every copy.
        windows = sorted({item.window_us for item in self._sums.values()})
        copy = F.col("_copy")
        is_event = copy == 0
        # Shuffled by card before the copies are made: the windows below need exactly this partitioning, so the
        # exchange moves each event once with its own columns, not every copy with its terms (half the rows,
        # half the width); the copies and terms are then made within the card's partition. Each term is
        # evaluated once per event, before the copies (its exit copy only negates it): the z-score's terms are
        # decimal products of 38 digits, which cost more than the running sums over them.
        values = {name: f"_value__{name}" for name in self._sums}
        per_event = events.repartition("card_id").select(
            "*", *[item.term.alias(values[name]) for name, item in self._sums.items()]
        )
        rows = per_event.select(
            "*", F.explode(F.array(*[F.lit(0), *[F.lit(window) for window in windows]])).alias("_copy")
        )
        order = F.when(is_event, F.col("ts_us") * 2).otherwise((F.col("ts_us") + copy) * 2 + 1)
        terms = {name: f"_term__{name}" for name in self._sums}
        union = rows.select(
            *events.columns,
            order.alias(CARD_ORDER),
            is_event.alias("_is_event"),
            *[
                F.when(is_event, F.col(values[name]))
                .when(copy == item.window_us, -F.col(values[name]))
                .alias(terms[name])
                for name, item in self._sums.items()
            ],
        )
        ordered = Window.partitionBy("card_id").orderBy(CARD_ORDER)
        frames = {
            False: ordered.rangeBetween(Window.unboundedPreceding, Window.currentRow),
            True: ordered.rangeBetween(Window.unboundedPreceding, -1),
        }
        previous_event = ordered.rowsBetween(Window.unboundedPreceding, -1)
        prepared = [F.sum(terms[name]).over(frames[item.earlier]).alias(name) for name, item in self._sums.items()]
        for source, name in self._previous.items():
            # the previous event in the card's order (skipping exit rows): its ts where its value differs
            previous = F.last(F.when(F.col("_is_event"), F.struct("ts_us", source)), ignorenulls=True)
            previous = previous.over(previous_event)
            prepared.append(F.when(F.col(source) != previous[source], previous["ts_us"]).alias(name))
        rows = union.select(*events.columns, CARD_ORDER, "_is_event", *prepared).where("_is_event").drop("_is_event")
        if not self._finished:
            return rows
        # The sums a finished value reads are dropped here unless a feature column reads them directly.
        return rows.select("*", *[value.alias(name) for name, value in self._finished.items()])


def _window_sum(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    return card.window_sum(feature, feature.source, F.col(feature.source))


def _window_count(feature: Feature, card: CardFrames) -> Column:
    return card.window_count(feature)


def _max_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    return F.max(feature.source).over(card_time_window(feature))


def _count_distinct_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    return F.size(F.collect_set(feature.source).over(card_time_window(feature)))


def _mean_in_spark(feature: Feature, card: CardFrames) -> Column:
    # The exact decimal sum, converted once, over the count: within an ulp or two of the exact quotient.
    mean = _window_sum(feature, card).cast("double") / _window_count(feature, card)
    if not card.sums_running(feature):
        return mean  # a sliding frame's window expression
    return card.finish(f"mean__{feature.source}__{feature.window_us}", mean)


def _ratio_to_mean_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    return F.col(feature.source).cast("double") / _mean_in_spark(feature, card)


def _seconds_since_previous_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    # the latest ts_us < t (a running maximum), when it is inside the window
    latest = F.max("ts_us").over(_card_earlier_running())
    previous = F.when(latest >= F.col("ts_us") - F.lit(feature.window_us), latest)
    return (F.col("ts_us") - previous) / F.lit(MICROS_PER_SECOND)


def _zscore_to_earlier_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    amount = F.col(feature.source)
    # U = amount * 10^10 exactly (amount has <= 10 places): the decimal product, then an exact cast.
    unscaled = (amount * F.lit(Decimal(_UNSCALED))).cast("decimal(30,0)")
    split = F.lit(Decimal(_SPLIT))
    high = ((unscaled - unscaled % split) / split).cast("decimal(20,0)")
    low = (unscaled % split).cast("decimal(20,0)")

    def exact_sum(label: str, product: Column) -> Column:
        return card.window_sum(feature, label, product.cast("decimal(38,0)"), earlier=True).cast("double")

    count = card.window_count(feature, earlier=True)
    mean = card.window_sum(feature, feature.source, amount, earlier=True).cast("double") / count
    sum_of_squares = (
        exact_sum("high_high", high * high) * F.lit(1e10)
        + (exact_sum("high_low", high * low) * F.lit(2.0)) / F.lit(1e5)
        + exact_sum("low_low", low * low) / F.lit(1e20)
    )
    variance = sum_of_squares / count - mean * mean
    z = (amount.cast("double") - mean) / F.sqrt(variance)
    # null for fewer than two earlier events or a variance rounded to <= 0; the rest needs a window (below)
    z = card.finish(f"zscore__{feature.name}", F.when((count >= 2) & (variance > 0.0), z))
    # min == max over the earlier events is "no two different amounts among them"
    return F.when(card.varies_earlier(feature), z)


def _seen_earlier_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    # the latest strictly earlier event with the same value (a running maximum per value), inside the window
    latest_same = F.max("ts_us").over(_card_earlier_running(feature.source))
    return F.when(latest_same >= F.col("ts_us") - F.lit(feature.window_us), 1).otherwise(0)


def _hour_of_day_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    # integer arithmetic on ts_us (pmod is floor-mod), never the session time zone
    return F.expr(f"pmod(ts_us, {MICROS_PER_DAY}) div {MICROS_PER_HOUR}")


def _is_weekend_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    day = f"((ts_us - pmod(ts_us, {MICROS_PER_DAY})) div {MICROS_PER_DAY})"
    return F.expr(f"CASE WHEN pmod({day} + {_THURSDAY_FROM_MONDAY}, 7) >= {_SATURDAY_FROM_MONDAY} THEN 1 ELSE 0 END")


def _is_night_in_spark(feature: Feature, card: CardFrames) -> Column:
    from pyspark.sql import functions as F

    hour = _hour_of_day_in_spark(feature, card)
    return F.when((hour >= NIGHT_HOURS.start) & (hour < NIGHT_HOURS.stop), 1).otherwise(0)


# --- the table --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregation:
    """One registry aggregation: gold's Spark column and the request-time value, for any feature using it.

    `spark_column(feature, card)` is a column over the events `card.prepare` returns (it may register prepared
    columns in `card`, a `CardFrames` gold shares between all features). Neither half casts to the feature's type:
    gold casts the column to `feature.spark_type`; the request-time half already returns that type's Python value
    (int, Decimal at 10 places, float or None).
    """

    name: str
    spark_column: Callable[[Feature, CardFrames], Column]
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
        Aggregation(ZSCORE_TO_EARLIER, _zscore_to_earlier_in_spark, _zscore_to_earlier_at_request),
        Aggregation(SEEN_EARLIER, _seen_earlier_in_spark, _seen_earlier_at_request),
        Aggregation(HOUR_OF_DAY, _hour_of_day_in_spark, _hour_of_day_at_request),
        Aggregation(IS_WEEKEND, _is_weekend_in_spark, _is_weekend_at_request),
        Aggregation(IS_NIGHT, _is_night_in_spark, _is_night_at_request),
    )
}


def aggregation_of(feature: Feature) -> Aggregation:
    """The feature's row of AGGREGATIONS; a ValueError naming both when the registry names an unknown one, or
    when the feature is not computed per event (merchant features come from the daily snapshot)."""
    if not feature.per_event:
        raise ValueError(
            f"feature {feature.name}: a {feature.entity} feature is read from its snapshot, not aggregated per event"
        )
    try:
        return AGGREGATIONS[feature.aggregation]
    except KeyError:
        raise ValueError(
            f"feature {feature.name}: unknown aggregation {feature.aggregation!r}; known: {', '.join(AGGREGATIONS)}"
        ) from None
