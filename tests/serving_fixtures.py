"""Shared by the serving interface tests: a lake holding only an online state, authorizations as the
bronze contract's JSON, and a small model on the registry's inputs."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np

from feature_store.merchant_lookup import PUBLISHED_MARKER_ID, MerchantSnapshots, published_marker_record
from feature_store.model_artifact import AMOUNT_INPUT
from feature_store.online_state import SILVER, SqliteOnlineState, StateEvent, local_state_path
from spark_jobs.feature_registry import FEATURE_NAMES, MERCHANT

CARD = "card-burst"
CARD_NUMBER = "4111111111111111"  # Luhn-valid: must never come back in a response or a log line
T0_S = 1_767_225_600  # 2026-01-01T00:00:00Z: the card's last silver event
MODEL_INPUTS = (*FEATURE_NAMES, AMOUNT_INPUT)


def silver_event(event_id: str, ts_s: int, amount: str, merchant: str = "m-1", country: str = "US") -> StateEvent:
    return StateEvent(CARD, event_id, ts_s * 1_000_000, Decimal(amount), merchant, country, SILVER, "f" * 64)


class MerchantRecords:
    """An in-memory featurestore-runtime client answering BatchGetRecord from {record id: Record} (the merchant
    group's records and, when `published_day` is given, the published-day marker); logs the calls."""

    def __init__(self, records: dict[str, list[dict]] | None = None, published_day: date | None = None) -> None:
        self.records = dict(records or {})
        if published_day is not None:
            self.records[PUBLISHED_MARKER_ID] = published_marker_record(published_day)
        self.calls: list[dict] = []

    def batch_get_record(self, **request):
        self.calls.append(request)
        (identifier,) = request["Identifiers"]
        found = [
            {
                "FeatureGroupName": identifier["FeatureGroupName"],
                "RecordIdentifierValueAsString": record_id,
                "Record": self.records[record_id],
            }
            for record_id in identifier["RecordIdentifiersValueAsString"]
            if record_id in self.records
        ]
        return {"Records": found, "Errors": [], "UnprocessedIdentifiers": []}


PUBLISHED_DAY = date(2026, 1, 1)  # T0_S's day: requests on it are served unflagged by default


def merchant_snapshots(
    records: dict[str, list[dict]] | None = None, published_day: date | None = PUBLISHED_DAY
) -> MerchantSnapshots:
    """Merchant lookups over in-memory records (none by default: every merchant gets counts 0, rates null) with
    day `published_day` published (None: no marker, every response flagged stale)."""
    return MerchantSnapshots(MerchantRecords(records, published_day))


def register_merchant_group(root: Path, rows: list[dict] = (), published_day: date | None = PUBLISHED_DAY) -> Path:
    """The lake's local online store (`feature_store/online.db`) with the feature groups registered, and the
    given merchant snapshot rows written to the merchant group (online: the newest day wins, as ingestion), and
    the published-day marker of `published_day` (None: none)."""
    from feature_store.backends.local import LocalFeatureStoreRuntime, LocalStore
    from feature_store.definitions import group_specs
    from feature_store.records import to_record

    store = LocalStore(Path(root) / "feature_store" / "online.db")
    try:
        for spec in group_specs():
            if store.describe_group(spec.name) is None:
                store.create_group(spec)
        runtime = LocalFeatureStoreRuntime(store)
        for row in rows:
            entry = {
                "FeatureGroupName": group_specs()[1].name,
                "Record": to_record(row, MERCHANT),
                "TargetStores": ["OnlineStore"],
            }
            assert runtime.batch_write_record(Entries=[entry])["Errors"] == []
        if published_day is not None:
            marker = {
                "FeatureGroupName": group_specs()[1].name,
                "Record": published_marker_record(published_day),
                "TargetStores": ["OnlineStore"],
            }
            assert runtime.batch_write_record(Entries=[marker])["Errors"] == []
    finally:
        store.close()
    return Path(root)


def state_lake(root: Path) -> Path:
    """A lake whose online state holds three silver events of CARD: 30 min, 10 min and 0 min before T0, and
    whose local online store has the feature groups (no merchant record)."""
    register_merchant_group(root)
    with SqliteOnlineState(local_state_path(root)) as state:
        state.upsert_silver(
            [
                silver_event("s-1", T0_S - 1800, "10.00"),
                silver_event("s-2", T0_S - 600, "20.00", merchant="m-2"),
                silver_event("s-3", T0_S, "30.00", country="FR"),
            ]
        )
    return root


def authorization(event_id: str, ts_s: float | str, amount: str = "5.25", **overrides: object) -> str:
    """One authorization as bronze-contract JSON text (numbers written as given)."""
    fields = {
        "event_id": event_id,
        "card_id": CARD,
        "ts": "@ts@",
        "merchant_id": "m-9",
        "amount": "@amount@",
        "currency": "USD",
        "country": "US",
        "pos_mode": "ecommerce",
        "card_number": CARD_NUMBER,
    }
    fields.update(overrides)
    return json.dumps(fields).replace('"@ts@"', str(ts_s)).replace('"@amount@"', amount)


def small_model():
    """A small gradient-boosting model (the baseline's learner, so nulls are fine) on the registry's inputs:
    the more transactions in the hour, the likelier fraud."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(3)
    rows = rng.uniform(0, 10, size=(300, len(MODEL_INPUTS)))
    rows[::3, FEATURE_NAMES.index("secs_since_prev_txn")] = np.nan  # a card's first event has none
    labels = (rows[:, 0] > 5).astype(int)
    return HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(rows, labels)
