"""Request-time features: every card and event feature for one authorization, at its own ts, with gold's rules.

Gold computes a row's features from the card's silver events in [ts − window, ts] (`spark_jobs/gold.py`);
serving computes the same features for a new authorization from the card's online state
(`feature_store/online_state.py`) the moment it arrives. Both go through one table of aggregations
(`spark_jobs/feature_aggregations.py`), whose request-time halves reproduce Spark's arithmetic exactly, so
an authorization served over the same events as gold saw gets gold's values, bit for bit.

No Spark here: the Lambda imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from feature_store.online_state import StateEvent
from spark_jobs.feature_aggregations import CardWindows, aggregation_of
from spark_jobs.feature_registry import CARD_FEATURES, MAX_WINDOW

MAX_WINDOW_US = int(MAX_WINDOW.total_seconds()) * 1_000_000

FeatureValue = int | Decimal | float | None

# Resolved once: a registry feature with an unknown aggregation fails at import, not at the first request.
_FEATURE_AGGREGATIONS = tuple((feature, aggregation_of(feature).at_request) for feature in CARD_FEATURES)


def history_bounds(ts_us: int) -> tuple[int, int]:
    """The ts_us range of the state a request at ts_us reads: [ts_us − longest window, ts_us]."""
    return ts_us - MAX_WINDOW_US, ts_us


def compute_features(history: Sequence[StateEvent], current: StateEvent) -> dict[str, FeatureValue]:
    """Every card and event feature (`CARD_FEATURES`, in registry order) for `current`, at current.ts_us; the
    merchant features come from the merchant snapshot, not from here.

    `history` is the card's state events with ts_us in [current.ts_us − longest window, current.ts_us],
    in any order; events outside that range are ignored, and `current` counts once whether or not it is
    among them (matched by event_id). Events with current's ts_us are peers and count, as in gold.
    """
    low_us, high_us = history_bounds(current.ts_us)
    events = []
    for event in history:
        if event.card_id != current.card_id:
            raise ValueError(f"history event {event.event_id} is of another card than {current.event_id}")
        if low_us <= event.ts_us <= high_us and event.event_id != current.event_id:
            events.append(event)
    events.append(current)
    events.sort(key=_by_ts_us)  # stable: the order among peers does not matter to any aggregation
    windows = CardWindows(events, current)
    return {feature.name: at_request(feature, windows) for feature, at_request in _FEATURE_AGGREGATIONS}


def _by_ts_us(event: StateEvent) -> int:
    return event.ts_us
