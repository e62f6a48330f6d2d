"""Merchant features at request time: the merchant group's online record for the authorization's merchant.

Merchant features are a daily snapshot as of the start S (00:00 UTC) of day D (spark_jobs/merchant_features.py
computes gold/merchant_features; ingestion writes each merchant's newest day to the online store of
`merchant-features-v{N}`, event time = S). After writing a run's merchant rows, ingestion also writes the
*published-day marker* to the group's online store only: a record whose identifier (`PUBLISHED_MARKER_ID`) can
never be a merchant's and whose event time is the start of P, the newest snapshot day published online.

Without P nothing tells "the merchant has no newer row" from "day D has not been published yet": a merchant
silent for 38+ days (or new) with an event on day D - 1 still shows its old terminal record (or none) before
day D is ingested, although day D's true merchant_txn_count_1d >= 1. So each request reads the merchant's
record AND the marker in one call (BatchGetRecord; locally one SQL query), and for an authorization on UTC
day D:

- no marker, or P < D: day D is not published; whatever the record (an earlier snapshot, a terminal one, none)
  the values are served and **stale** (flagged with the record's day);
- the record's day > D (an authorization older than the merchant's newest snapshot, e.g. a replay): its values,
  which are not day D's; **stale**;
- otherwise (P >= D, record day <= D) the newest record is day D's snapshot: a record of day D is exact; an
  earlier record is terminal-and-still-true (ingestion would have written a newer row otherwise); no record:
  counts 0, rates null (no silver event of the merchant in the look-back), as the datasets' join. Not stale.
  (An earlier record that is NOT terminal cannot come from a clean ingestion: flagged, as a safeguard.)

`snapshot_day` is the record's day (None without a record), `published_day` is P (None without a marker).
Errors of the read propagate (the endpoint answers 500); on AWS `sagemaker-featurestore-runtime` with the SDK's
retries, locally the backend's SQLite online store.

No Spark here: the Lambda imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from feature_store.definitions import EVENT_TIME_FEATURE, merchant_feature_group_name
from feature_store.records import RecordError, event_time_ms, event_time_text
from spark_jobs.bronze_contract import FIELD_MAX_CHARS
from spark_jobs.feature_registry import INTEGER, MERCHANT, MERCHANT_COUNT, MERCHANT_FEATURES

US_PER_DAY = 86_400_000_000
MS_PER_DAY = 86_400_000
_EPOCH_DAY = date(1970, 1, 1)

MerchantValue = int | float | None

# The published-day marker's record identifier: one character longer than the bronze contract lets a
# merchant_id be (longer is quarantined as field_too_long, so no silver event and no snapshot row can have it).
PUBLISHED_MARKER_ID = "__published_snapshot_day__".ljust(FIELD_MAX_CHARS[MERCHANT] + 1, "_")


@dataclass(frozen=True)
class MerchantFeatures:
    """The merchant features served for one authorization, in registry order, and where they come from."""

    features: dict[str, MerchantValue]
    snapshot_day: date | None  # the online record's day; None: the merchant has no record
    stale: bool  # not surely day D's: D not published yet, a later day's record, or an earlier non-terminal one
    published_day: date | None = None  # P, the marker's day; None: no marker (nothing published)

    def as_json(self) -> dict[str, object]:
        """The response fields besides the features."""
        return {
            "merchant_snapshot_stale": self.stale,
            "merchant_snapshot_day": _iso(self.snapshot_day),
            "merchant_published_day": _iso(self.published_day),
        }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def absent_merchant_features() -> dict[str, MerchantValue]:
    """A merchant without a snapshot: counts 0, rates null (the datasets' LEFT JOIN, counts coalesced to 0)."""
    return {item.name: (0 if item.aggregation == MERCHANT_COUNT else None) for item in MERCHANT_FEATURES}


def utc_day(ts_us: int) -> date:
    """The UTC day of a ts_us (integer arithmetic: floor division, also before 1970)."""
    return _EPOCH_DAY + timedelta(days=ts_us // US_PER_DAY)


def record_day(record: Iterable[Mapping[str, Any]]) -> date:
    """The day of a merchant group record (a snapshot row or the marker): its event time, a day's start."""
    values = {value["FeatureName"]: value.get("ValueAsString") for value in record}
    event_time = values.get(EVENT_TIME_FEATURE)
    if event_time is None:
        raise RecordError(f"the merchant record has no {EVENT_TIME_FEATURE}")
    snapshot_ms = event_time_ms(event_time)
    if snapshot_ms % MS_PER_DAY:
        raise RecordError(f"merchant record event time {event_time} is not a day's start (00:00:00.000Z)")
    return _EPOCH_DAY + timedelta(days=snapshot_ms // MS_PER_DAY)


def published_marker_record(day: date) -> list[dict[str, str]]:
    """The marker record for published day P = `day` (identifier and event time only; ingestion writes it to
    the online store only)."""
    return [
        {"FeatureName": MERCHANT, "ValueAsString": PUBLISHED_MARKER_ID},
        {"FeatureName": EVENT_TIME_FEATURE, "ValueAsString": event_time_text(day_start_us(day))},
    ]


def parse_merchant_record(record: Iterable[Mapping[str, Any]]) -> tuple[date, dict[str, MerchantValue]]:
    """(the snapshot day, the features) of a merchant group record: Integral → int, Fractional → float
    (the record's shortest round-trip text gives back the snapshot's double exactly); absent → None."""
    record = list(record)
    values = {value["FeatureName"]: value.get("ValueAsString") for value in record}
    day = record_day(record)
    features: dict[str, MerchantValue] = {}
    for item in MERCHANT_FEATURES:
        text = values.get(item.name)
        features[item.name] = None if text is None else int(text) if item.dtype == INTEGER else float(text)
    return day, features


def is_terminal(features: Mapping[str, MerchantValue]) -> bool:
    """Every count 0 and every rate null: the merchant's events have all left the snapshot's look-back."""
    return all(
        (value == 0) if item.aggregation == MERCHANT_COUNT else (value is None)
        for item in MERCHANT_FEATURES
        for value in (features.get(item.name),)
    )


def merchant_features_at(
    record: Iterable[Mapping[str, Any]] | None, ts_us: int, published_day: date | None
) -> MerchantFeatures:
    """The merchant features for an authorization at ts_us from its merchant's online record (None: none) and
    the published day P (None: no marker); the rules are the module docstring's."""
    event_day = utc_day(ts_us)
    published = published_day is not None and published_day >= event_day
    if not record:
        return MerchantFeatures(absent_merchant_features(), None, stale=not published, published_day=published_day)
    snapshot_day, features = parse_merchant_record(record)
    # P >= D and the record not later than D: it is the merchant's newest row up to D, i.e. day D's values (an
    # earlier one is terminal: a merchant with an event in the look-back has a row for day D). An earlier record
    # that is not terminal cannot come from a clean ingestion (e.g. a lost write): flagged, not trusted.
    stale = not published or snapshot_day > event_day or (snapshot_day < event_day and not is_terminal(features))
    return MerchantFeatures(features, snapshot_day, stale=stale, published_day=published_day)


class MerchantSnapshots:
    """Reads the merchant group's online records through a featurestore-runtime client (boto3's
    `sagemaker-featurestore-runtime`, or the local backend's `LocalFeatureStoreRuntime`)."""

    def __init__(self, client: Any, feature_group: str | None = None, *, release=None) -> None:
        self.client = client
        self.feature_group = feature_group or merchant_feature_group_name()
        self._release = release

    @classmethod
    def local(cls, lake_root: str | Path, *, online_store_path: str | Path | None = None) -> MerchantSnapshots:
        """The lake's local online store (`<lake-root>/feature_store/online.db`), read-only; the merchant group
        must be registered there (FileNotFoundError / LookupError naming the fix otherwise)."""
        from feature_store.backends.local import LocalFeatureStoreRuntime, LocalStore
        from spark_jobs.lake import local_online_store_path

        path = Path(online_store_path or local_online_store_path(str(lake_root)))
        if not path.is_file():
            raise FileNotFoundError(
                f"no local online store at {path}: register the feature groups (cardfeat register) and ingest"
            )
        store = LocalStore(path, read_only=True)
        name = merchant_feature_group_name()
        if store.describe_group(name) is None:
            store.close()
            raise LookupError(
                f"the online store {path} has no feature group {name}: register it (cardfeat register), then ingest"
            )
        return cls(LocalFeatureStoreRuntime(store), name, release=store.close)

    @classmethod
    def sagemaker(cls, region: str | None = None, feature_group: str | None = None) -> MerchantSnapshots:
        """SageMaker Feature Store's runtime in `region`, with the SDK's standard retries."""
        from feature_store.backends.sagemaker import runtime_client

        return cls(runtime_client(region, retries=True), feature_group)

    def batch_request(self, merchant_id: str) -> dict:
        """The one BatchGetRecord request of a lookup: the merchant's record and the published-day marker."""
        return {
            "Identifiers": [
                {
                    "FeatureGroupName": self.feature_group,
                    "RecordIdentifiersValueAsString": [merchant_id, PUBLISHED_MARKER_ID],
                }
            ]
        }

    def records(self, merchant_id: str) -> tuple[list[dict] | None, date | None]:
        """(the merchant's online record or None, P or None), read together in one BatchGetRecord so both come
        from the same moment. A per-record error is raised (RuntimeError naming the record), not taken as
        "no record"."""
        if merchant_id == PUBLISHED_MARKER_ID:  # cannot pass the bronze contract; never answer with the marker
            raise ValueError("the merchant_id is the published-day marker's identifier")
        response = self.client.batch_get_record(**self.batch_request(merchant_id))
        failed = response.get("Errors") or response.get("UnprocessedIdentifiers")
        if failed:
            raise RuntimeError(f"BatchGetRecord of {self.feature_group} for merchant {merchant_id!r} failed: {failed}")
        found = {
            item["RecordIdentifierValueAsString"]: item.get("Record") or None
            for item in response.get("Records") or []
            if item.get("FeatureGroupName", self.feature_group) == self.feature_group
        }
        marker = found.get(PUBLISHED_MARKER_ID)
        return found.get(merchant_id), None if marker is None else record_day(marker)

    def record(self, merchant_id: str) -> list[dict] | None:
        """The merchant's online record, None when it has none."""
        return self.records(merchant_id)[0]

    def features_at(self, merchant_id: str, ts_us: int) -> MerchantFeatures:
        record, published = self.records(merchant_id)
        return merchant_features_at(record, ts_us, published)

    def close(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


def day_start_us(day: date) -> int:
    """S of a day: its 00:00 UTC in microseconds."""
    return (datetime(day.year, day.month, day.day, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
