"""Gold row → Feature Store Record, and back.

`to_record` is the one serialiser every backend and the replay use: FeatureValues in registry order, every
value as a string (the API's ValueAsString), nulls omitted (an absent feature is the API's null), the event
time as `YYYY-MM-DDTHH:MM:SS.sssZ` in UTC. Two row kinds, one per group (definitions.py):
- a gold card row (`card_id`, CARD_FEATURES): event time from the row's `ts_us` (truncated to the
  millisecond, the format's precision: two events of a card in the same millisecond share an event time);
- a merchant snapshot row (`merchant_id`, MERCHANT_FEATURES): event time = the snapshot day's start S
  (`snapshot_start_us`, else the `day` column's midnight UTC).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from feature_store.definitions import EVENT_TIME_FEATURE, group_features
from spark_jobs.feature_registry import CARD, DECIMAL, DOUBLE, FEATURES, INTEGER, MERCHANT, Feature

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DTYPES = {item.name: item.dtype for item in FEATURES}


class RecordError(ValueError):
    """A row that cannot become a valid Record (it is dead-lettered, not written)."""


def event_time_text(ts_us: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS.sssZ` for microseconds since the epoch, truncated (floored) to milliseconds."""
    seconds, millis = divmod(ts_us // 1000, 1000)
    moment = EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def event_time_ms(text: str) -> int:
    """Milliseconds since the epoch of an event time in either format the API accepts
    (`yyyy-MM-dd'T'HH:mm:ssZ` or `yyyy-MM-dd'T'HH:mm:ss.SSSZ`)."""
    if not text.endswith("Z"):
        raise RecordError(f"event time {text!r} must end with Z")
    body = text[:-1]
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = datetime.strptime(body, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
        if "." in body and len(body.rsplit(".", 1)[1]) != 3:
            break
        return (moment - EPOCH) // timedelta(milliseconds=1)
    raise RecordError(f"event time {text!r} is not yyyy-MM-ddTHH:mm:ss[.SSS]Z")


def _row_ts_us(row: Mapping[str, Any]) -> int:
    if row.get("ts_us") is not None:
        return int(row["ts_us"])
    moment = row.get("event_ts")
    if not isinstance(moment, datetime):
        raise RecordError("row has neither ts_us nor event_ts")
    if moment.tzinfo is None:  # Spark hands out naive datetimes; this project runs Spark in UTC
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def _snapshot_start_us(row: Mapping[str, Any]) -> int:
    """S of a merchant snapshot row: `snapshot_start_us`, else midnight UTC of its `day`."""
    if row.get("snapshot_start_us") is not None:
        return int(row["snapshot_start_us"])
    day = row.get("day")
    if not isinstance(day, date):
        raise RecordError("merchant row has neither snapshot_start_us nor day")
    return (datetime(day.year, day.month, day.day, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def _value_text(name: str, dtype: str, value: Any) -> str:
    if dtype == INTEGER:
        if isinstance(value, bool) or int(value) != value:
            raise RecordError(f"{name}: {value!r} is not an integer")
        return str(int(value))
    if dtype == DECIMAL:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            raise RecordError(f"{name}: {value!r} is not a finite number")
        return format(number.normalize(), "f")
    if dtype == DOUBLE:
        number = float(value)
        if not math.isfinite(number):
            raise RecordError(f"{name}: {value!r} is not a finite number (Fractional cannot hold it)")
        # Shortest round-trip digits, positional notation (no exponent).
        return format(Decimal(repr(number)).normalize(), "f")
    raise RecordError(f"{name}: unknown feature type {dtype!r}")


def to_record(row: Mapping[str, Any], entity: str = CARD) -> list[dict[str, str]]:
    """The Record (list of FeatureValue) of one row of the entity's group: the record identifier
    (`card_id` of a gold row, `merchant_id` of a merchant snapshot row), `event_time`, then every non-null
    feature of the group in registry order, all as strings."""
    record_id = row.get(entity)
    if not isinstance(record_id, str) or not record_id:
        raise RecordError(f"{entity} must be a non-empty string, got {record_id!r}")
    moment_us = _snapshot_start_us(row) if entity == MERCHANT else _row_ts_us(row)
    record = [
        {"FeatureName": entity, "ValueAsString": record_id},
        {"FeatureName": EVENT_TIME_FEATURE, "ValueAsString": event_time_text(moment_us)},
    ]
    for item in group_features(entity):
        value = row.get(item.name)
        if value is not None:
            record.append({"FeatureName": item.name, "ValueAsString": _value_text(item.name, item.dtype, value)})
    return record


def record_value(record: Iterable[Mapping[str, Any]], name: str) -> str | None:
    for value in record:
        if value["FeatureName"] == name:
            return value.get("ValueAsString")
    return None


def parse_features(
    record: Iterable[Mapping[str, Any]], features: tuple[Feature, ...] | None = None
) -> dict[str, int | float | None]:
    """Features of a Record as numbers (Integral → int, Fractional → float); absent → None. `features`: the
    group's (default: the card group's, CARD_FEATURES). Names not among them (a newer group's features) are
    left out."""
    values = {value["FeatureName"]: value.get("ValueAsString") for value in record}
    features = group_features(CARD) if features is None else features
    parsed: dict[str, int | float | None] = {}
    for item in features:
        text = values.get(item.name)
        if text is None:
            parsed[item.name] = None
        elif _DTYPES[item.name] == INTEGER:
            parsed[item.name] = int(text)
        else:
            parsed[item.name] = float(text)
    return parsed
