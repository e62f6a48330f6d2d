"""Create or update the card feature group so it matches the feature registry.

    python feature_store/register_feature_groups.py --backend local --lake-root ./lake
    python feature_store/register_feature_groups.py --region eu-west-1 \\
        --role-arn arn:aws:iam::…:role/cardfeat-dev-feature-store --offline-store-s3-uri s3://…/feature_store/offline \\
        --glue-database cardfeat_dev_feature_store \\
        --online-store-kms-key-id arn:aws:kms:… --offline-store-kms-key-id arn:aws:kms:…

(--backend defaults to sagemaker when --role-arn is given, as in the deploy workflow, else local.)

- A missing group is created (online store on, offline store in S3 with the Glue catalog, the KMS keys
  given) and the command waits until it is Created; CreateFailed stops with its FailureReason.
- A group that matches is left alone.
- Features the registry gained are added with UpdateFeatureGroup, waiting for LastUpdateStatus.
- A removed feature, a changed type, identifier or event time is refused: Feature Store cannot remove a
  feature or change its type, so such a change is a new feature set version N + 1 (a new group).

The Python side owns the group because the Terraform AWS provider replaces a feature group (dropping its
data) whenever its definitions change; Terraform provides the role, keys, bucket and Glue database.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.definitions import TTL_UNITS, GroupSpec, TtlDuration, group_spec
from spark_jobs.feature_registry import FEATURE_SET_VERSION
from spark_jobs.job_options import add_lake_options


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
            f"registers card-features-v{FEATURE_SET_VERSION + 1} beside this group; ingestion fills the new "
            "group from gold (its watermark names the group), consumers switch, then the old group can be deleted."
        )
    additions = [{"FeatureName": name, "FeatureType": kind} for name, kind in spec.definitions if name not in current]
    current_ttl = TtlDuration.from_api((described.get("OnlineStoreConfig") or {}).get("TtlDuration"))
    ttl = spec.ttl if spec.ttl is not None and spec.ttl != current_ttl else None
    return Plan(additions=additions, ttl=ttl)


def register(spec: GroupSpec, groups, settings=None) -> dict:
    """Bring one group in line with `spec`; `groups` is `SageMakerGroups` or `LocalGroups`.
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


class LocalGroups:
    """The local backend's groups (in the online store's SQLite file); creation is immediate."""

    def __init__(self, store) -> None:
        self.store = store

    def create_if_missing(self, spec: GroupSpec, settings=None) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.store.create_group(spec)
        except ClientError:
            return False
        return True

    def describe(self, name: str) -> dict:
        return self.store.describe_group(name)

    def wait_until_created(self, name: str) -> None:
        return None

    def add_features(self, name: str, additions: list[dict]) -> None:
        self.store.add_features(name, additions)

    def set_ttl(self, name: str, ttl: TtlDuration) -> None:
        self.store.set_ttl(name, ttl)


def add_ttl_options(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument("--ttl-value", type=int, default=None, help=f"{what}: TtlDuration value (default: no TTL)")
    parser.add_argument(
        "--ttl-unit", choices=TTL_UNITS, default="Days", help="TtlDuration unit of --ttl-value (default: Days)"
    )


def ttl_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TtlDuration | None:
    if args.ttl_value is None:
        return None
    try:
        return TtlDuration(unit=args.ttl_unit, value=args.ttl_value)
    except ValueError as error:
        parser.error(str(error))
        raise


def default_online_store_path(lake_root: str) -> str | None:
    """`<lake-root>/feature_store/online.db` for a local lake; None for S3 (the option is then required)."""
    if lake_root.startswith(("s3://", "s3a://")):
        return None
    from spark_jobs.storage import canonical_uri

    return canonical_uri(lake_root)[len("file://") :] + "/feature_store/online.db"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="register_feature_groups.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend",
        choices=("local", "sagemaker"),
        default=None,
        help="where the group lives (default: sagemaker when --role-arn is given, else local)",
    )
    add_lake_options(parser)
    parser.add_argument(
        "--online-store-path",
        default=None,
        help="local backend: the SQLite file of the online store and groups "
        "(default: <lake-root>/feature_store/online.db; required for an s3:// lake)",
    )
    parser.add_argument("--region", default=None, help="sagemaker: AWS region (default: AWS_REGION)")
    parser.add_argument("--role-arn", help="sagemaker: role Feature Store assumes for the offline store (RoleArn)")
    parser.add_argument(
        "--offline-store-s3-uri", help="sagemaker: offline store location (OfflineStoreConfig.S3StorageConfig.S3Uri)"
    )
    parser.add_argument("--online-store-kms-key-id", help="sagemaker: KMS key of the online store")
    parser.add_argument("--offline-store-kms-key-id", help="sagemaker: KMS key of the offline store's S3 objects")
    parser.add_argument("--glue-database", help="sagemaker: Glue database of the offline store table")
    parser.add_argument(
        "--glue-table",
        default=None,
        help="sagemaker: Glue table of the offline store (default: the group name with _ for -)",
    )
    parser.add_argument(
        "--table-format", choices=("Glue", "Iceberg"), default="Glue", help="sagemaker: offline table format"
    )
    add_ttl_options(parser, what="online store TTL of the group (ExpiresAt = EventTime + TTL)")
    parser.add_argument(
        "--wait-timeout-seconds", type=int, default=900, help="give up waiting for Created/an update after this"
    )
    parser.add_argument("--poll-seconds", type=int, default=10, help="seconds between DescribeFeatureGroup polls")
    args = parser.parse_args(argv)
    args.ttl = ttl_from_args(parser, args)
    if args.backend is None:
        args.backend = "sagemaker" if args.role_arn else "local"
    args.online_store_path = args.online_store_path or None  # the state machines pass "" on AWS
    if args.backend == "sagemaker":
        missing = [
            option
            for option, value in (
                ("--role-arn", args.role_arn),
                ("--offline-store-s3-uri", args.offline_store_s3_uri),
                ("--glue-database", args.glue_database),
            )
            if not value
        ]
        if missing:
            parser.error(f"--backend sagemaker needs {', '.join(missing)}")
    elif args.online_store_path is None:
        args.online_store_path = default_online_store_path(args.lake_root)
        if args.online_store_path is None:
            parser.error("--online-store-path is required when --lake-root is on S3")
    if args.wait_timeout_seconds < 0 or args.poll_seconds < 0:
        parser.error("--wait-timeout-seconds and --poll-seconds must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = group_spec(ttl=args.ttl)
    try:
        if args.backend == "local":
            from feature_store.local_backend import LocalStore

            store = LocalStore(args.online_store_path)
            try:
                result = register(spec, LocalGroups(store))
            finally:
                store.close()
        else:
            from feature_store.sagemaker_backend import SageMakerGroups, StoreSettings, default_region

            region = default_region(args.region)
            settings = StoreSettings(
                role_arn=args.role_arn,
                offline_store_s3_uri=args.offline_store_s3_uri,
                glue_database=args.glue_database,
                glue_table=args.glue_table or spec.name.replace("-", "_"),
                online_store_kms_key_id=args.online_store_kms_key_id,
                offline_store_kms_key_id=args.offline_store_kms_key_id,
                table_format=args.table_format,
            )
            groups = SageMakerGroups(
                region=region, wait_timeout_seconds=args.wait_timeout_seconds, poll_seconds=args.poll_seconds
            )
            result = register(spec, groups, settings)
    except IncompatibleFeatureGroup as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
