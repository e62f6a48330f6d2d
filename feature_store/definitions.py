"""The feature group, derived from the feature registry (the only feature list).

Group `card-features-v{N}` (N = FEATURE_SET_VERSION), record identifier `card_id` (String), event time
feature `event_time` (String, ISO-8601 UTC with milliseconds), then every registry feature in registry order
with its Feature Store type (integers Integral, decimals and doubles Fractional).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_jobs.feature_registry import ENTITY, FEATURE_SET_VERSION, FEATURES, Feature

RECORD_IDENTIFIER = ENTITY
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


def feature_group_name(version: int = FEATURE_SET_VERSION) -> str:
    return f"card-features-v{version}"


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
    features: tuple[Feature, ...] = FEATURES,
    *,
    version: int = FEATURE_SET_VERSION,
    ttl: TtlDuration | None = None,
) -> GroupSpec:
    """The group for a feature set (the registry's by default)."""
    for item in features:
        if item.name in (*OFFLINE_ONLY_COLUMNS, RECORD_IDENTIFIER, EVENT_TIME_FEATURE):
            raise ValueError(f"feature name {item.name!r} is reserved by the Feature Store or the group")
    definitions = (
        (RECORD_IDENTIFIER, STRING),
        (EVENT_TIME_FEATURE, STRING),
        *((item.name, item.feature_store_type) for item in features),
    )
    return GroupSpec(
        name=feature_group_name(version),
        definitions=definitions,
        ttl=ttl,
        description=f"Card fraud features, feature set version {version} (spark_jobs/feature_registry.py).",
    )
