"""The feature groups, derived from the feature registry (the only feature list).

One group per entity that has a record in the online store (N = FEATURE_SET_VERSION):
- `card-features-v{N}`: record identifier `card_id`, the card and event features (`CARD_FEATURES`, gold's
  columns), one record per gold row, event time = the event's ts;
- `merchant-features-v{N}`: record identifier `merchant_id`, the merchant features (`MERCHANT_FEATURES`,
  gold/merchant_features' columns), one record per (merchant, snapshot day), event time = the day's start S.
Both: event time feature `event_time` (String, ISO-8601 UTC with milliseconds), then the entity's registry
features in registry order with their Feature Store type (integers Integral, decimals and doubles Fractional).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spark_jobs.feature_registry import (
    CARD,
    CARD_FEATURES,
    ENTITY,
    FEATURE_SET_VERSION,
    MERCHANT,
    MERCHANT_FEATURES,
    Feature,
)

RECORD_IDENTIFIER = ENTITY  # the card group's
# Entities with a feature group: record identifier column, group name stem, the group's features.
GROUP_ENTITIES = (CARD, MERCHANT)
_GROUP_STEMS = {CARD: "card-features", MERCHANT: "merchant-features"}
_GROUP_FEATURES = {CARD: CARD_FEATURES, MERCHANT: MERCHANT_FEATURES}
_GROUP_DESCRIPTIONS = {
    CARD: "Card fraud features of each event (card and event features)",
    MERCHANT: "Merchant features as of each UTC day's start",
}
EVENT_TIME_FEATURE = "event_time"
STRING = "String"
INTEGRAL = "Integral"
FRACTIONAL = "Fractional"
# Columns the offline store adds to every record; no feature may use these names.
OFFLINE_ONLY_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
TTL_UNITS = ("Seconds", "Minutes", "Hours", "Days", "Weeks")
_UNIT_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 7 * 86400}
ONLINE_STORE = "OnlineStore"
OFFLINE_STORE = "OfflineStore"


def _check_entity(entity: str) -> None:
    if entity not in GROUP_ENTITIES:
        raise ValueError(f"no feature group for entity {entity!r}; groups exist for {', '.join(GROUP_ENTITIES)}")


def feature_group_name(version: int = FEATURE_SET_VERSION, entity: str = CARD) -> str:
    """`card-features-v{N}` or `merchant-features-v{N}`."""
    _check_entity(entity)
    return f"{_GROUP_STEMS[entity]}-v{version}"


def merchant_feature_group_name(version: int = FEATURE_SET_VERSION) -> str:
    return feature_group_name(version, MERCHANT)


def group_features(entity: str = CARD) -> tuple[Feature, ...]:
    """The registry features a group of the running feature set holds, in registry order."""
    _check_entity(entity)
    return _GROUP_FEATURES[entity]


def entity_of_group(name: str) -> str:
    """The entity of a group name of this platform (`card-features-v2` → card_id); ValueError otherwise."""
    for entity, stem in _GROUP_STEMS.items():
        if re.fullmatch(rf"{stem}-v[0-9]+", name):
            return entity
    raise ValueError(f"{name!r} is not a feature group of this platform (card-features-vN or merchant-features-vN)")


@dataclass(frozen=True)
class TtlDuration:
    """The API's TtlDuration: ExpiresAt = EventTime + Value × Unit (the online store hard-deletes then)."""

    unit: str
    value: int

    def __post_init__(self) -> None:
        if self.unit not in TTL_UNITS:
            raise ValueError(f"TTL unit must be one of {', '.join(TTL_UNITS)}, got {self.unit!r}")
        if self.value < 1:
            raise ValueError(f"TTL value must be >= 1, got {self.value}")

    @property
    def seconds(self) -> int:
        return self.value * _UNIT_SECONDS[self.unit]

    def as_api(self) -> dict:
        return {"Unit": self.unit, "Value": self.value}

    @classmethod
    def from_api(cls, value: dict | None) -> TtlDuration | None:
        return None if not value else cls(unit=value["Unit"], value=int(value["Value"]))


@dataclass(frozen=True)
class GroupSpec:
    """What a feature group must look like: its name, identifier, event time and feature definitions."""

    name: str
    definitions: tuple[tuple[str, str], ...]  # (FeatureName, FeatureType), identifier and event time first
    record_identifier: str = RECORD_IDENTIFIER
    event_time_feature: str = EVENT_TIME_FEATURE
    ttl: TtlDuration | None = None
    description: str = field(default="", compare=False)

    @property
    def types(self) -> dict[str, str]:
        return dict(self.definitions)

    def as_api(self) -> list[dict]:
        return [{"FeatureName": name, "FeatureType": kind} for name, kind in self.definitions]


def group_spec(
    features: tuple[Feature, ...] | None = None,
    *,
    entity: str = CARD,
    version: int = FEATURE_SET_VERSION,
    ttl: TtlDuration | None = None,
) -> GroupSpec:
    """The group of an entity (`card_id` or `merchant_id`) for a feature set (the registry's by default:
    CARD_FEATURES or MERCHANT_FEATURES)."""
    features = group_features(entity) if features is None else features
    for item in features:
        if item.name in (*OFFLINE_ONLY_COLUMNS, *GROUP_ENTITIES, EVENT_TIME_FEATURE):
            raise ValueError(f"feature name {item.name!r} is reserved by the Feature Store or the group")
    definitions = (
        (entity, STRING),
        (EVENT_TIME_FEATURE, STRING),
        *((item.name, item.feature_store_type) for item in features),
    )
    return GroupSpec(
        name=feature_group_name(version, entity),
        definitions=definitions,
        record_identifier=entity,
        ttl=ttl,
        description=f"{_GROUP_DESCRIPTIONS[entity]}, feature set version {version} (spark_jobs/feature_registry.py).",
    )


def group_specs(*, version: int = FEATURE_SET_VERSION, ttl: TtlDuration | None = None) -> tuple[GroupSpec, ...]:
    """Every group of the feature set, card first: what registration registers and ingestion writes."""
    return tuple(group_spec(entity=entity, version=version, ttl=ttl) for entity in GROUP_ENTITIES)
