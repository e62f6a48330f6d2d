"""Registration: bring a feature group in line with the registry, through a backend's `GroupAdmin`.

- A missing group is created (and waited for until Created).
- A group that matches is left alone.
- Features the registry gained are added (UpdateFeatureGroup FeatureAdditions); a changed TTL is set.
- A removed feature, a changed type, identifier or event time is refused (`IncompatibleFeatureGroup`):
  Feature Store cannot remove a feature or change its type, so such a change is a new feature set version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from feature_store.backends import GroupAdmin
from feature_store.definitions import GroupSpec, TtlDuration
from spark_jobs.feature_registry import FEATURE_SET_VERSION


class IncompatibleFeatureGroup(RuntimeError):
    """The existing group differs in a way UpdateFeatureGroup cannot express."""


@dataclass
class Plan:
    additions: list[dict] = field(default_factory=list)
    ttl: TtlDuration | None = None  # a TTL to set (None: leave the group's TTL as it is)

    @property
    def unchanged(self) -> bool:
        return not self.additions and self.ttl is None


def plan_changes(spec: GroupSpec, described: dict) -> Plan:
    """What UpdateFeatureGroup must do to turn `described` (DescribeFeatureGroup's shape) into `spec`."""
    problems = []
    if described["RecordIdentifierFeatureName"] != spec.record_identifier:
        problems.append(
            f"record identifier is {described['RecordIdentifierFeatureName']!r}, the registry wants "
            f"{spec.record_identifier!r}"
        )
    if described["EventTimeFeatureName"] != spec.event_time_feature:
        problems.append(
            f"event time feature is {described['EventTimeFeatureName']!r}, "
            f"the registry wants {spec.event_time_feature!r}"
        )
    current = {item["FeatureName"]: item["FeatureType"] for item in described["FeatureDefinitions"]}
    wanted = spec.types
    for name, kind in current.items():
        if name not in wanted:
            problems.append(f"feature {name!r} ({kind}) is no longer in the registry")
        elif wanted[name] != kind:
            problems.append(f"feature {name!r} is {kind} in the group, {wanted[name]} in the registry")
    if problems:
        raise IncompatibleFeatureGroup(
            f"feature group {spec.name} cannot be updated to the registry: "
            + "; ".join(problems)
            + ". Feature Store can only add features (UpdateFeatureGroup FeatureAdditions); it cannot remove a "
            "feature, change a type, the identifier or the event time. Make such a change a new feature set: "
            f"raise FEATURE_SET_VERSION in spark_jobs/feature_registry.py to {FEATURE_SET_VERSION + 1}, which "
            f"registers {_next_version_name(spec.name)} beside this group; ingestion fills the new group from "
            "gold (the card group) or gold/merchant_features (the merchant group) with a full resync (its "
            "watermark entry names the group), consumers switch, then the old group can be deleted "
            "(docs/feature_store.md, 'Migrating from feature set v1 to v2', the same steps)."
        )
    additions = [{"FeatureName": name, "FeatureType": kind} for name, kind in spec.definitions if name not in current]
    current_ttl = TtlDuration.from_api((described.get("OnlineStoreConfig") or {}).get("TtlDuration"))
    ttl = spec.ttl if spec.ttl is not None and spec.ttl != current_ttl else None
    return Plan(additions=additions, ttl=ttl)


def _next_version_name(name: str) -> str:
    """`card-features-v2` → `card-features-v3` (the group name of the next feature set version)."""
    stem = re.sub(r"-v[0-9]+$", "", name)
    return f"{stem}-v{FEATURE_SET_VERSION + 1}"


def register(spec: GroupSpec, groups: GroupAdmin, settings: Any = None) -> dict:
    """Bring one group in line with `spec` through a backend's group administration (`settings`: what the
    backend needs to create it, e.g. sagemaker.StoreSettings).
    Returns what was done: {"feature_group", "action": created|unchanged|updated, "added", "ttl"}."""
    if groups.create_if_missing(spec, settings):
        return {"feature_group": spec.name, "action": "created", "added": [], "ttl": _ttl_text(spec.ttl)}
    described = groups.describe(spec.name)
    if described["FeatureGroupStatus"] != "Created":
        groups.wait_until_created(spec.name)
        described = groups.describe(spec.name)
    plan = plan_changes(spec, described)
    if plan.additions:
        groups.add_features(spec.name, plan.additions)
    if plan.ttl is not None:
        groups.set_ttl(spec.name, plan.ttl)
    return {
        "feature_group": spec.name,
        "action": "unchanged" if plan.unchanged else "updated",
        "added": [item["FeatureName"] for item in plan.additions],
        "ttl": _ttl_text(plan.ttl),
    }


def _ttl_text(ttl: TtlDuration | None) -> str | None:
    return None if ttl is None else f"{ttl.value} {ttl.unit}"
