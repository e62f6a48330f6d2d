"""Merchant features at request time: the merchant group's online record for the authorization's merchant.

Merchant features are a daily snapshot as of the start S (00:00 UTC) of day D (spark_jobs/merchant_features.py
computes gold/merchant_features; ingestion writes each merchant's newest day to the online store of
`merchant-features-v{N}`, event time = S). For an authorization on UTC day D the online record of its merchant
is one of:

- a record of day D: its values, exactly the snapshot gold's datasets join for day D; not stale;
- a record of an earlier day that is *terminal* (every count 0, every rate null): its values, which are day D's
  too (a terminal row holds until the merchant's next event); not stale;
- a record of an earlier day, not terminal: its values, the previous snapshot (e.g. in the first minutes of a
  day, before the daily run has published day D); **stale**;
- a record of a later day (an authorization older than the merchant's newest snapshot, e.g. a replay): its
  values, which are not day D's; **stale**;
- no record (no silver event of the merchant in the snapshot's look-back): counts 0, rates null, as the
  datasets' join; not stale.

`snapshot_day` is the record's day (None without a record). One GetRecord per request
(`sagemaker-featurestore-runtime` on AWS with the SDK's retries; the local backend's SQLite online store),
whose errors propagate (the endpoint answers 500).

No Spark here: the Lambda imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from feature_store.definitions import EVENT_TIME_FEATURE, merchant_feature_group_name
from feature_store.records import RecordError, event_time_ms
from spark_jobs.feature_registry import INTEGER, MERCHANT_COUNT, MERCHANT_FEATURES

US_PER_DAY = 86_400_000_000
MS_PER_DAY = 86_400_000
_EPOCH_DAY = date(1970, 1, 1)

MerchantValue = int | float | None


@dataclass(frozen=True)
class MerchantFeatures:
    """The merchant features served for one authorization, in registry order, and where they come from."""

    features: dict[str, MerchantValue]
    snapshot_day: date | None  # the online record's day; None: the merchant has no record
    stale: bool  # the record is of another day than the authorization's and not a terminal earlier one

    def as_json(self) -> dict[str, object]:
        """The response fields besides the features."""
        return {
            "merchant_snapshot_stale": self.stale,
            "merchant_snapshot_day": None if self.snapshot_day is None else self.snapshot_day.isoformat(),
        }


def absent_merchant_features() -> dict[str, MerchantValue]:
    """A merchant without a snapshot: counts 0, rates null (the datasets' LEFT JOIN, counts coalesced to 0)."""
    return {item.name: (0 if item.aggregation == MERCHANT_COUNT else None) for item in MERCHANT_FEATURES}


def utc_day(ts_us: int) -> date:
    """The UTC day of a ts_us (integer arithmetic: floor division, also before 1970)."""
    return _EPOCH_DAY + timedelta(days=ts_us // US_PER_DAY)


def parse_merchant_record(record: Iterable[Mapping[str, Any]]) -> tuple[date, dict[str, MerchantValue]]:
    """(the snapshot day, the features) of a merchant group record: Integral → int, Fractional → float
    (the record's shortest round-trip text gives back the snapshot's double exactly); absent → None."""
    values = {value["FeatureName"]: value.get("ValueAsString") for value in record}
    event_time = values.get(EVENT_TIME_FEATURE)
    if event_time is None:
        raise RecordError(f"the merchant record has no {EVENT_TIME_FEATURE}")
    snapshot_ms = event_time_ms(event_time)
    if snapshot_ms % MS_PER_DAY:
        raise RecordError(f"merchant record event time {event_time} is not a day's start (00:00:00.000Z)")
    features: dict[str, MerchantValue] = {}
    for item in MERCHANT_FEATURES:
        text = values.get(item.name)
        features[item.name] = None if text is None else int(text) if item.dtype == INTEGER else float(text)
    return _EPOCH_DAY + timedelta(days=snapshot_ms // MS_PER_DAY), features


def is_terminal(features: Mapping[str, MerchantValue]) -> bool:
    """Every count 0 and every rate null: the merchant's events have all left the snapshot's look-back."""
    return all(
        (value == 0) if item.aggregation == MERCHANT_COUNT else (value is None)
        for item in MERCHANT_FEATURES
        for value in (features.get(item.name),)
    )


def merchant_features_at(record: Iterable[Mapping[str, Any]] | None, ts_us: int) -> MerchantFeatures:
    """The merchant features for an authorization at ts_us from its merchant's online record (None: none);
    the rules are the module docstring's table."""
    if not record:
        return MerchantFeatures(absent_merchant_features(), None, stale=False)
    snapshot_day, features = parse_merchant_record(record)
    event_day = utc_day(ts_us)
    stale = snapshot_day != event_day and not (snapshot_day < event_day and is_terminal(features))
    return MerchantFeatures(features, snapshot_day, stale=stale)


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

    def record(self, merchant_id: str) -> list[dict] | None:
        """The merchant's online record (GetRecord), None when it has none."""
        response = self.client.get_record(
            FeatureGroupName=self.feature_group, RecordIdentifierValueAsString=merchant_id
        )
        return response.get("Record") or None

    def features_at(self, merchant_id: str, ts_us: int) -> MerchantFeatures:
        return merchant_features_at(self.record(merchant_id), ts_us)

    def close(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


def day_start_us(day: date) -> int:
    """S of a day: its 00:00 UTC in microseconds."""
    return (datetime(day.year, day.month, day.day, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
