"""Online state for request-time features: each card's recent events, the input of every windowed feature.

The scoring path reads a card's events in [t − longest window, t], computes the registry's features for
the authorization at t (`feature_store/request_features.py`) and adds the authorization to the state
(write-back). The batch pipeline keeps the state in line with silver after each run
(`feature_store/online_state_sync.py`): silver wins where both hold an event, events the batch quarantined
are removed, and events older than the retention (relative to the card's newest event, never the wall
clock) are pruned.

Backends implement `OnlineStateStore`: SQLite under `<lake-root>/feature_store/` locally
(`SqliteOnlineState`), DynamoDB on AWS (`feature_store/online_state_dynamodb.py`). Both key an event by
(card_id, sort key), the sort key ordering by `ts_us` then `event_id`, and never read-modify-write a
card: two concurrent authorizations of one card both land.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

SILVER = "silver"  # the event is in silver (the batch pipeline put it there)
SERVED = "served"  # the event was scored and written back, not (yet) seen in silver
ORIGINS = (SILVER, SERVED)

TS_DIGITS = 20  # zero-padded ts_us in sort keys, so string order is time order


def sort_key(ts_us: int, event_id: str) -> str:
    """The state's sort key: ordered by ts_us, then event_id."""
    if ts_us < 0:
        raise ValueError(f"ts_us must be >= 0, got {ts_us}")
    return f"{ts_us:0{TS_DIGITS}d}#{event_id}"


@dataclass(frozen=True)
class StateEvent:
    """One of a card's events as the request-time features need it (no card number, ever)."""

    card_id: str
    event_id: str
    ts_us: int
    amount_usd: Decimal
    merchant_id: str
    country: str
    origin: str  # SILVER or SERVED
    payload_fingerprint: str  # hash of the contract payload fields: equal payload == equal fingerprint

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {self.origin!r}")

    @property
    def sort_key(self) -> str:
        return sort_key(self.ts_us, self.event_id)


class OnlineStateStore(Protocol):
    """The few operations serving and the sync need; every backend implements exactly these."""

    def window(self, card_id: str, low_us: int, high_us: int) -> list[StateEvent]:
        """The card's events with low_us <= ts_us <= high_us, ordered by (ts_us, event_id)."""
        ...

    def find(self, card_id: str, event_id: str) -> StateEvent | None:
        """The card's event with this event_id, whatever its ts_us, or None."""
        ...

    def add_served(self, event: StateEvent) -> StateEvent | None:
        """Create a served event unless the card already holds its event_id (a conditional create, never a
        read-modify-write). Returns None when written, else the event already stored (nothing written)."""
        ...

    def upsert_silver(self, events: Iterable[StateEvent]) -> int:
        """Put silver events, replacing a served copy of the same (card_id, event_id): silver wins.
        Returns the number of events written."""
        ...

    def remove(self, keys: Iterable[tuple[str, str]]) -> int:
        """Remove the (card_id, event_id) events, e.g. served events the batch quarantined. Returns the count."""
        ...

    def prune(self, card_id: str, keep_from_us: int) -> int:
        """Remove the card's events with ts_us < keep_from_us. Returns the count."""
        ...

    def close(self) -> None: ...
