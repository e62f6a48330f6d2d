"""Command-line options every job shares, so each script's --help explains them the same way."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta

REPO_ROOT_FX_RATES = "spark_jobs/reference_data/fx_rates.csv"


def add_lake_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake-root",
        default="./lake",
        help="lake location: a local folder or s3://bucket/prefix (default: ./lake)",
    )
    parser.add_argument(
        "--create-lake",
        action="store_true",
        help="start a new, empty lake if the local --lake-root folder does not exist; without it a missing "
        "local lake is an error (exit 5), since a mistyped path would otherwise run on an empty lake",
    )
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="custom S3 endpoint (e.g. a local moto server); default: AWS_ENDPOINT_URL or AWS itself",
    )


def add_region_option(parser: argparse.ArgumentParser) -> None:
    """For the jobs whose other options do not already take --region (the feature-store backends do)."""
    parser.add_argument(
        "--region",
        default=None,
        help="AWS region of the S3 lake and the card-token secret (default: AWS_REGION; "
        "the state machines pass the stack's region)",
    )


def add_event_id_index_options(parser: argparse.ArgumentParser, *, backfill: bool = False) -> None:
    """Where the event-id index is (spark_jobs/event_id_index.py): the dedupe's exact lookup at any distance."""
    parser.add_argument(
        "--event-id-index-table",
        default=None,
        help="DynamoDB table of the event-id index (the state machines pass it; `terraform output -raw "
        "event_id_index_table_name`); empty or absent: the SQLite index of a local lake",
    )
    parser.add_argument(
        "--event-id-index-path",
        default=None,
        help="SQLite event-id index file (default: <lake-root>/_state/event_id_index.sqlite for a local lake; an "
        "s3:// lake needs this or --event-id-index-table, and a file only works with local Spark)",
    )
    if backfill:
        parser.add_argument(
            "--backfill-event-id-index",
            action="store_true",
            help="before the first batch, add every (event_id, dt) of silver to the event-id index (one scan of "
            "silver; idempotent). Runs by itself when the index is not complete yet (docs/runbook.md)",
        )


def check_event_id_index_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage error for an s3:// lake without an index its Spark workers can share."""
    if args.lake_root.startswith(("s3://", "s3a://")) and not (args.event_id_index_table or args.event_id_index_path):
        parser.error(
            f"--lake-root {args.lake_root} is on S3: pass --event-id-index-table (DynamoDB; "
            "`terraform output -raw event_id_index_table_name`) or --event-id-index-path (local Spark only)"
        )


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from error


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 as EventBridge Scheduler passes it (e.g. 2026-01-02T00:05:00Z); naive means UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 timestamp, got {text!r}") from error
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day_before(moment: datetime) -> date:
    """The day a daily run processes: the UTC day before its scheduled time."""
    return moment.astimezone(UTC).date() - timedelta(days=1)


def add_token_key_options(parser: argparse.ArgumentParser) -> None:
    """The card-token key options of the jobs that tokenize card numbers (silver_and_gold, the quarantine replay)."""
    parser.add_argument(
        "--card-token-secret-id",
        default=None,
        help="Secrets Manager secret holding the card-token HMAC key: one hex key, or every key version as JSON "
        '{"current": 1, "keys": {"0": "<hex>", "1": "<hex>"}} (docs/runbook.md, "Rotating the card-token key"); '
        "default: env LAKEHOUSE_CARD_TOKEN_KEY (same formats)",
    )
    parser.add_argument(
        "--allow-development-token-key",
        action="store_true",
        help="local development lakes only: without a secret or LAKEHOUSE_CARD_TOKEN_KEY, tokenize with the "
        "public development key (refused without this flag, and always for an s3:// lake)",
    )


def check_token_key_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage error for --allow-development-token-key with an s3:// lake (the public key never tokenizes there)."""
    if args.allow_development_token_key and args.lake_root.startswith(("s3://", "s3a://")):
        parser.error(
            f"--allow-development-token-key is refused for the s3:// lake {args.lake_root}: "
            "pass --card-token-secret-id <secret> (`terraform output -raw card_token_secret_name`)"
        )


def add_framing_options(parser: argparse.ArgumentParser) -> None:
    """The bronze framing caps (docs/contracts/bronze_card_authorization.md, "Size limits")."""
    from spark_jobs.bronze_contract import MAX_FILE_BYTES, MAX_LINE_BYTES

    parser.add_argument(
        "--max-file-bytes",
        type=_positive_bytes,
        default=MAX_FILE_BYTES,
        help="a bronze file whose size or decompressed size is over this is quarantined whole as file_too_large, "
        f"unread past it (default: {MAX_FILE_BYTES} = 256 MiB, twice Firehose's largest buffer)",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=_positive_bytes,
        default=MAX_LINE_BYTES,
        help="a bronze line longer than this (UTF-8 bytes) is quarantined as line_too_long; the file's other "
        f"lines proceed (default: {MAX_LINE_BYTES} = 1 MiB, the largest Kinesis record by default)",
    )


def framing_limits(args: argparse.Namespace):
    """The FramingLimits of `add_framing_options`' arguments."""
    from spark_jobs.bronze_contract import FramingLimits

    return FramingLimits(max_file_bytes=args.max_file_bytes, max_line_bytes=args.max_line_bytes)


def _positive_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return value
