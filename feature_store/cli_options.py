"""Command-line options the Feature Store CLIs share, turned into the typed options the library takes."""

from __future__ import annotations

import argparse

from feature_store.backends import BACKENDS, BackendOptions
from feature_store.definitions import TTL_UNITS, TtlDuration, feature_group_name


def add_backend_options(parser: argparse.ArgumentParser, *, default: str | None = "local", writes: bool) -> None:
    """--backend, --online-store-path, --region (and --max-concurrency for the CLIs that write)."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="local: SQLite online store + Delta offline store under the lake; sagemaker: SageMaker Feature "
        f"Store (default: {default or 'sagemaker when --role-arn is given, else local'})",
    )
    parser.add_argument(
        "--online-store-path",
        default=None,
        help="local backend: SQLite file of the online store and groups (default: <lake-root>/feature_store/online.db; "
        "required for an s3:// lake)",
    )
    parser.add_argument("--region", default=None, help="sagemaker backend: AWS region (default: AWS_REGION)")
    if writes:
        parser.add_argument(
            "--max-concurrency",
            type=int,
            default=4,
            help="sagemaker backend: partitions (each one runtime client, one request at a time) written at once "
            "(default: 4)",
        )


def resolve_backend_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the backend arguments and fill in the local online store's default path (a usage error when the
    lake is on S3 and no path is given)."""
    from spark_jobs.lake import local_online_store_path

    args.online_store_path = args.online_store_path or None  # the state machines pass "" on AWS
    if args.backend == "local" and args.online_store_path is None:
        args.online_store_path = local_online_store_path(args.lake_root)
        if args.online_store_path is None:
            parser.error("--online-store-path is required for the local backend when --lake-root is on S3")
    if getattr(args, "max_concurrency", 1) < 1:
        parser.error("--max-concurrency must be >= 1")


def backend_options(args: argparse.Namespace) -> BackendOptions:
    """The BackendOptions of arguments checked by `resolve_backend_args`."""
    return BackendOptions(
        backend=args.backend,
        online_store_path=args.online_store_path,
        region=args.region,
        max_concurrency=getattr(args, "max_concurrency", 4),
    )


def add_feature_group_option(parser: argparse.ArgumentParser, *, what: str = "feature group") -> None:
    parser.add_argument(
        "--feature-group",
        default=feature_group_name(),
        help=f"{what} (default: {feature_group_name()}, from the registry's feature set version)",
    )


def add_writer_options(parser: argparse.ArgumentParser) -> None:
    """--max-attempts and the record-level TTL of online writes."""
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=8,
        help="attempts per record (throttling, 5xx, unprocessed entries) before it is dead-lettered (default: 8)",
    )
    add_ttl_options(parser, what="record-level TTL of online writes, overriding the group's")


def resolve_writer_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check --max-attempts and turn the TTL options into `args.ttl` (a TtlDuration or None)."""
    args.ttl = ttl_from_args(parser, args)
    if args.max_attempts < 1:
        parser.error("--max-attempts must be >= 1")


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
