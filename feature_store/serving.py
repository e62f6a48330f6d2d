"""Serve one authorization: judge it, compute every registry feature at its own ts, add it to the state.

The Python API a scoring service embeds; the HTTP service, the replay CLI and the Lambda handler all call
`FeatureServer.serve`. One request:

1. the raw body is judged by the bronze contract's per-record rules (`bronze_contract.judge_record`:
   duplicate keys, NaN, exponents, every per-record reason; the receive time is the record's arrival for
   future_timestamp), with the batch jobs' FX reference rates and card-token key; the card number becomes
   `card_last4`/`card_token` there and goes no further;
2. the authorization is added to its card's state (`add_served`, a conditional create) BEFORE the state is
   read, so of two concurrent authorizations of a card at least the later-read one sees the other, and
   neither write is lost (no read-modify-write). The same event_id again with the same payload writes
   nothing and is answered from the state (`replayed`); a different payload is `conflicting_duplicate`;
3. the card's events in [ts − longest window, ts] are read and the card and event features computed
   (`request_features.compute_features`, gold's exact rules; peers at the same ts count);
4. the merchant features come from the merchant group's online record of the event's merchant
   (`merchant_lookup.py`: the snapshot of the event's UTC day; an earlier day's record is served and flagged
   `merchant_snapshot_stale` unless it is terminal; no record: counts 0, rates null).

Known limit: the state is keyed by card, so an event_id reused under another card is not detected here;
silver quarantines it and the state sync then removes the served copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from feature_store.merchant_lookup import MerchantFeatures, MerchantSnapshots
from feature_store.online_state import (
    SERVED,
    OnlineStateStore,
    SqliteOnlineState,
    StateEvent,
    local_state_path,
    payload_fingerprint,
)
from feature_store.request_features import FeatureValue, compute_features, history_bounds
from spark_jobs.bronze_contract import CONFLICTING_DUPLICATE, judge_record, load_fx_rates
from spark_jobs.card_numbers import CardTokenKeys, mask_card_numbers, resolve_token_keys, token_candidates
from spark_jobs.feature_aggregations import DECIMAL_SCALE
from spark_jobs.feature_registry import FEATURE_NAMES, FEATURE_SET_VERSION, MERCHANT_FEATURE_NAMES
from spark_jobs.job_options import REPO_ROOT_FX_RATES

_log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECIMAL_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_MERCHANT_NAMES = frozenset(MERCHANT_FEATURE_NAMES)


class ServingRejected(Exception):
    """The authorization cannot be served: `reason` is a bronze quarantine reason (or
    conflicting_duplicate), `detail` says which field and value (card numbers masked)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = mask_card_numbers(detail)
        super().__init__(f"{reason}: {self.detail}")


def event_time(ts_us: int) -> str:
    """ts_us as ISO 8601 UTC with microseconds, e.g. 2026-01-01T00:00:00.123456Z (exact: integer arithmetic)."""
    return (_EPOCH + timedelta(microseconds=ts_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def feature_json_value(value: FeatureValue) -> int | float | str | None:
    """A feature value for JSON: decimals as strings at decimal(38,10)'s 10 places, the rest as they are."""
    if isinstance(value, Decimal):
        return format(value.quantize(_DECIMAL_QUANTUM), "f")
    return value


@dataclass(frozen=True)
class ServedFeatures:
    event_id: str
    card_id: str
    ts_us: int
    event_time: str
    feature_set_version: int
    features: dict[str, FeatureValue]  # every registry feature, registry order
    replayed: bool  # the event_id was already in the state with this payload: nothing was written
    merchant: MerchantFeatures | None = None  # where the merchant features came from (snapshot day, stale)
    merchant_id: str | None = None  # the authorization's merchant (its features' record identifier)

    @property
    def merchant_snapshot_stale(self) -> bool:
        return self.merchant is not None and self.merchant.stale

    def as_json(self) -> dict[str, object]:
        """The response body: decimals as strings at their column's scale, ints and doubles as numbers; then
        whether the merchant features are a stale snapshot, and its day."""
        body: dict[str, object] = {
            "event_id": self.event_id,
            "card_id": self.card_id,
            "ts_us": self.ts_us,
            "event_time": self.event_time,
            "feature_set_version": self.feature_set_version,
            "features": {name: feature_json_value(value) for name, value in self.features.items()},
        }
        if self.merchant is not None:
            body.update(self.merchant.as_json())
        return body


class FeatureServer:
    """Request-time features over one online state (SQLite locally, DynamoDB on AWS)."""

    def __init__(
        self,
        state: OnlineStateStore,
        *,
        fx_rates: Mapping[str, Decimal],
        token_key: bytes | CardTokenKeys,
        merchant_snapshots: MerchantSnapshots,
    ) -> None:
        if not isinstance(token_key, CardTokenKeys) and (not isinstance(token_key, bytes) or not token_key):
            raise ValueError(
                "token_key must be non-empty bytes or CardTokenKeys (see spark_jobs.card_numbers.resolve_token_keys)"
            )
        self.state = state
        self.merchant_snapshots = merchant_snapshots
        self.fx_rates = dict(fx_rates)
        self.token_key = token_key
        # judging a blank record validates the rates now (ValueError naming the bad currency), not per request
        judge_record(b"", fx_rates=self.fx_rates, token_key=token_key)

    @classmethod
    def local(
        cls, lake_root: str | Path, *, fx_rates_path: str | Path | None = None, allow_dev_key: bool = False
    ) -> FeatureServer:
        """A server over the lake's SQLite state (`<lake-root>/feature_store/online_state.db`), the merchant
        group of its local online store (`<lake-root>/feature_store/online.db`), the FX rates the batch jobs use
        by default (`job_options.REPO_ROOT_FX_RATES`) and the card-token key from the environment
        (LAKEHOUSE_CARD_TOKEN_KEY), else the public development key if `allow_dev_key`
        (card_numbers.TokenKeyError otherwise)."""
        token_key = resolve_token_keys(allow_development_key=allow_dev_key, lake_root=str(lake_root))
        fx_rates = load_fx_rates(Path(fx_rates_path) if fx_rates_path else REPO_ROOT / REPO_ROOT_FX_RATES)
        merchants = MerchantSnapshots.local(lake_root)
        return cls(
            SqliteOnlineState(local_state_path(lake_root)),
            fx_rates=fx_rates,
            token_key=token_key,
            merchant_snapshots=merchants,
        )

    def serve(self, raw_body: bytes | str, *, received_at: datetime | None = None) -> ServedFeatures:
        """Judge, write back, compute (see the module docstring). Raises ServingRejected for bad input.

        `received_at` (default: now) is the request's arrival: a `ts` later than it plus the contract's allowance
        is future_timestamp, as for a bronze record after its file's arrival."""
        received_at = received_at or datetime.now(UTC)
        verdict = judge_record(raw_body, fx_rates=self.fx_rates, token_key=self.token_key, received_at=received_at)
        if verdict.accepted is None:
            raise ServingRejected(verdict.reason, verdict.detail)
        # The record's token under every held key version, current first: the event keeps the current one,
        # and a stored copy made under an older version is compared under that version (a key rotation).
        tokens = token_candidates(verdict.accepted["card_token"]) or [None]
        row = {**verdict.accepted, "card_token": tokens[0]}
        event = StateEvent.from_accepted(row, origin=SERVED)
        stored = self.state.add_served(event)
        replayed = stored is not None
        if stored is not None:
            same_payload = {payload_fingerprint({**row, "card_token": token}) for token in tokens}
            if stored.payload_fingerprint not in same_payload:
                raise ServingRejected(
                    CONFLICTING_DUPLICATE,
                    f"field=event_id value={event.event_id}: the card already holds this event_id with another payload",
                )
            event = stored  # what the state holds (silver's copy, once the batch has it)
        low_us, high_us = history_bounds(event.ts_us)
        card_features = compute_features(self.state.window(event.card_id, low_us, high_us), event)
        merchant = self.merchant_snapshots.features_at(event.merchant_id, event.ts_us)
        features = {
            name: merchant.features[name] if name in _MERCHANT_NAMES else card_features[name] for name in FEATURE_NAMES
        }
        _log.debug("served event_id=%s replayed=%s", mask_card_numbers(event.event_id), replayed)
        return ServedFeatures(
            event_id=event.event_id,
            card_id=event.card_id,
            ts_us=event.ts_us,
            event_time=event_time(event.ts_us),
            feature_set_version=FEATURE_SET_VERSION,
            features=features,
            replayed=replayed,
            merchant=merchant,
            merchant_id=event.merchant_id,
        )

    def close(self) -> None:
        self.state.close()
        self.merchant_snapshots.close()

    def __enter__(self) -> FeatureServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
