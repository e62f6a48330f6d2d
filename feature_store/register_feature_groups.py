"""Create or update the feature groups of the registry's feature set so they match it: `card-features-v{N}`
(record identifier card_id) and `merchant-features-v{N}` (merchant_id); one JSON line per group.

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
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.cli_options import add_backend_options, add_ttl_options, resolve_backend_args, ttl_from_args
from feature_store.definitions import group_specs
from spark_jobs import exit_codes
from spark_jobs.job_options import add_lake_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="register_feature_groups.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_backend_options(parser, default=None, writes=False)
    add_lake_options(parser)
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
        help="sagemaker: Glue table of the card group's offline store (default: the group name with _ for -; the "
        "merchant group's is always its name with _ for -)",
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
    resolve_backend_args(parser, args)
    if args.wait_timeout_seconds < 0 or args.poll_seconds < 0:
        parser.error("--wait-timeout-seconds and --poll-seconds must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from feature_store.backends import open_group_admin
    from feature_store.cli_options import backend_options
    from feature_store.groups import IncompatibleFeatureGroup, register

    if args.backend == "local" and not args.lake_root.startswith(("s3://", "s3a://")):
        from spark_jobs.storage import LakeNotFoundError, open_lake

        try:  # the local store lives in the lake: a mistyped --lake-root must not start a new one
            open_lake(args.lake_root, create=args.create_lake)
        except LakeNotFoundError as error:
            print(f"register_feature_groups.py: error: {error}", file=sys.stderr)
            return exit_codes.PRECONDITION_FAILED
    groups, release = open_group_admin(
        backend_options(args),
        args.lake_root,
        wait_timeout_seconds=args.wait_timeout_seconds,
        poll_seconds=args.poll_seconds,
    )
    # Every group of the feature set (card, then merchant), one JSON line each; a refusal stops at that group.
    try:
        for position, spec in enumerate(group_specs(ttl=args.ttl)):
            table = args.glue_table if position == 0 else None
            result = register(spec, groups, store_settings(args, spec.name, glue_table=table))
            print(json.dumps(result, sort_keys=True))
    except IncompatibleFeatureGroup as error:
        print(f"refused: {error}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    finally:
        release()
    return exit_codes.OK


def store_settings(args: argparse.Namespace, group_name: str, *, glue_table: str | None = None):
    """What Terraform provides for a SageMaker group (None for the local backend)."""
    if args.backend != "sagemaker":
        return None
    from feature_store.backends.sagemaker import StoreSettings

    return StoreSettings(
        role_arn=args.role_arn,
        offline_store_s3_uri=args.offline_store_s3_uri,
        glue_database=args.glue_database,
        glue_table=glue_table or group_name.replace("-", "_"),
        online_store_kms_key_id=args.online_store_kms_key_id,
        offline_store_kms_key_id=args.offline_store_kms_key_id,
        table_format=args.table_format,
    )


if __name__ == "__main__":
    raise SystemExit(main())
