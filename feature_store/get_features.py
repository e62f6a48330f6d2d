"""A card's (or a merchant's) online features, as JSON or from Python.

    python feature_store/get_features.py --card-id card-000123 --lake-root ./lake
    python feature_store/get_features.py --card-id card-000123 --backend sagemaker --region eu-west-1
    python feature_store/get_features.py --merchant-id m_0042 --lake-root ./lake

prints `{"card_id": …, "event_time": …, "features": {name: value}}` (numbers as numbers, a missing value as
null) per card; per merchant `{"merchant_id": …, "snapshot_day": …, "published_day": …, "terminal": …,
"features": {…}}`: the merchant group's newest online snapshot and the newest day published online (the
published-day marker, feature_store/merchant_lookup.py); an unknown card or merchant prints "not found" on
stderr and exits 1; a lake without an online store says where it
looked and what to run first, and exits 5 (spark_jobs/exit_codes.py). `make demo` writes its lake to lake/demo:
pass `--lake-root lake/demo` to read it. In Python (e.g. a scoring service):

    reader = OnlineFeatures.local("./lake")            # or OnlineFeatures.sagemaker(region="eu-west-1")
    reader.get("card-000123")                          # dict as above, or None
    reader.get_many(["card-1", "card-2"])              # {card_id: dict} for the cards found (BatchGetRecord)

SageMaker reads use GetRecord / BatchGetRecord; the local backend answers the same calls from SQLite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.backends import BackendOptions, RuntimeClient, open_runtime_client
from feature_store.cli_options import add_backend_options, add_feature_group_option
from feature_store.definitions import EVENT_TIME_FEATURE, RECORD_IDENTIFIER, feature_group_name
from feature_store.merchant_lookup import MerchantSnapshots, is_terminal, parse_merchant_record
from feature_store.records import parse_features, record_value
from spark_jobs import exit_codes

NOT_FOUND_EXIT_CODE = exit_codes.NOT_FOUND
DEMO_LAKE_ROOT = "lake/demo"  # where `make demo` writes
MAX_BATCH_GET = 100


class MissingGroup(Exception):
    """The local online store has no merchant group (not registered yet)."""


class OnlineFeatures:
    """Reads a feature group's online store through a featurestore-runtime client (or the local one)."""

    def __init__(self, client: RuntimeClient, feature_group: str | None = None, *, close=None) -> None:
        self.client = client
        self.feature_group = feature_group or feature_group_name()
        self._close = close

    @classmethod
    def local(
        cls, lake_root: str = "./lake", *, online_store_path: str | None = None, feature_group: str | None = None
    ) -> OnlineFeatures:
        return cls.open(BackendOptions("local", online_store_path=online_store_path), lake_root, feature_group)

    @classmethod
    def sagemaker(cls, region: str | None = None, *, feature_group: str | None = None) -> OnlineFeatures:
        return cls.open(BackendOptions("sagemaker", region=region), "", feature_group)

    @classmethod
    def open(cls, options: BackendOptions, lake_root: str, feature_group: str | None = None) -> OnlineFeatures:
        """A reader over the backend's runtime client (backends.open_runtime_client)."""
        client, release = open_runtime_client(options, lake_root)
        return cls(client, feature_group, close=release)

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> OnlineFeatures:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _result(record: list[dict]) -> dict:
        return {
            "card_id": record_value(record, RECORD_IDENTIFIER),
            "event_time": record_value(record, EVENT_TIME_FEATURE),
            "features": parse_features(record),
        }

    def get(self, card_id: str) -> dict | None:
        """GetRecord: the card's online features, or None when the online store has no record."""
        response = self.client.get_record(FeatureGroupName=self.feature_group, RecordIdentifierValueAsString=card_id)
        record = response.get("Record")
        return self._result(record) if record else None

    def get_many(self, card_ids: list[str]) -> dict[str, dict]:
        """BatchGetRecord (≤ 100 cards a call): {card_id: features} for the cards found."""
        found: dict[str, dict] = {}
        unique = list(dict.fromkeys(card_ids))
        for start in range(0, len(unique), MAX_BATCH_GET):
            chunk = unique[start : start + MAX_BATCH_GET]
            response = self.client.batch_get_record(
                Identifiers=[{"FeatureGroupName": self.feature_group, "RecordIdentifiersValueAsString": chunk}]
            )
            errors = [error for error in response.get("Errors", []) if error["ErrorCode"] != "ResourceNotFound"]
            if errors or response.get("UnprocessedIdentifiers"):
                first = errors[0] if errors else {"ErrorCode": "Unprocessed", "ErrorMessage": "retry later"}
                raise RuntimeError(f"BatchGetRecord failed: {first['ErrorCode']}: {first['ErrorMessage']}")
            for result in response.get("Records", []):
                found[result["RecordIdentifierValueAsString"]] = self._result(result["Record"])
        return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="get_features.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--card-id", action="append", default=[], help="card to look up (repeat for several)")
    parser.add_argument(
        "--merchant-id",
        action="append",
        default=[],
        help="merchant whose newest online snapshot to print (repeat for several; merchant-features group)",
    )
    add_backend_options(parser, writes=False)
    parser.add_argument(
        "--lake-root",
        default="./lake",
        help=f"local backend: the lake (default: ./lake; `make demo` writes {DEMO_LAKE_ROOT})",
    )
    add_feature_group_option(parser)
    args = parser.parse_args(argv)
    if not args.card_id and not args.merchant_id:
        parser.error("give at least one --card-id or --merchant-id")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = BackendOptions(args.backend, online_store_path=args.online_store_path or None, region=args.region)
    try:
        status = _print_cards(args, options) if args.card_id else 0
        if args.merchant_id:
            status = max(status, _print_merchants(args, options))
    except (FileNotFoundError, MissingGroup) as error:  # the local store or group is missing: say where, what to run
        print(f"get_features.py: error: {error}{_demo_hint(args.lake_root)}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    return status


def _print_cards(args: argparse.Namespace, options: BackendOptions) -> int:
    with OnlineFeatures.open(options, args.lake_root, args.feature_group) as reader:
        if len(args.card_id) == 1:
            single = reader.get(args.card_id[0])
            found = {args.card_id[0]: single} if single else {}
        else:
            found = reader.get_many(args.card_id)
    status = 0
    for card_id in args.card_id:
        if card_id in found:
            print(json.dumps(found[card_id]))
        else:
            print(f"card {card_id!r} not found in the online store of {args.feature_group}", file=sys.stderr)
            status = NOT_FOUND_EXIT_CODE
    return status


def _print_merchants(args: argparse.Namespace, options: BackendOptions) -> int:
    if options.backend == "sagemaker":
        snapshots = MerchantSnapshots.sagemaker(options.region)
    else:
        try:
            snapshots = MerchantSnapshots.local(args.lake_root, online_store_path=options.online_store_path)
        except LookupError as error:
            raise MissingGroup(str(error)) from error
    status = 0
    try:
        for merchant_id in args.merchant_id:
            try:
                record, published_day = snapshots.records(merchant_id)
            except ValueError as error:  # e.g. the published-day marker's identifier: not a merchant
                print(f"get_features.py: error: --merchant-id {merchant_id!r}: {error}", file=sys.stderr)
                status = exit_codes.USAGE
                continue
            if record is None:
                print(
                    f"merchant {merchant_id!r} not found in the online store of {snapshots.feature_group}",
                    file=sys.stderr,
                )
                status = NOT_FOUND_EXIT_CODE
                continue
            day, features = parse_merchant_record(record)
            print(json.dumps(merchant_result(merchant_id, day, published_day, features)))
    finally:
        snapshots.close()
    return status


def merchant_result(merchant_id: str, day, published_day, features: dict) -> dict:
    """The printed form of a merchant's newest online snapshot."""
    return {
        "merchant_id": merchant_id,
        "snapshot_day": day.isoformat(),
        "published_day": None if published_day is None else published_day.isoformat(),
        "terminal": is_terminal(features),
        "features": features,
    }


def _demo_hint(lake_root: str) -> str:
    """What to run first; and, when the demo's lake has a store, how to read that one instead."""
    hint = f"; build it with `cardfeat run-pipeline --mode stream --lake-root {lake_root}` or `make demo`"
    if (
        Path(lake_root).resolve() != Path(DEMO_LAKE_ROOT).resolve()
        and (Path(DEMO_LAKE_ROOT) / "feature_store").is_dir()
    ):
        hint += f" (`make demo` wrote its lake to {DEMO_LAKE_ROOT}: pass --lake-root {DEMO_LAKE_ROOT})"
    return hint


if __name__ == "__main__":
    raise SystemExit(main())
