"""Generate a realistic, deterministic card-authorization lake (the library is devtools/generator/).

Bronze in the Firehose layout under <lake-root>/bronze/streaming/card_authorization/, chargebacks under
<lake-root>/bronze/labels/chargebacks/ and the ground truth in <lake-root>/_generator/; docs/generator.md
describes the world, the dirt and the manifest.

Usage: `python scripts/generate_transactions.py --events 100000 --cards 2000 --days 30 --seed 7 --lake-root lake`
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.generator import LATE_MIN_HOURS, GeneratorConfig, generate_lake
from spark_jobs import exit_codes


def _merchant_count(text: str) -> int | None:
    return None if text == "auto" else int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="generate_transactions.py",
        description=(
            "Generate a deterministic, realistic card-authorization lake: bronze NDJSON in the Firehose layout "
            "(<lake-root>/bronze/streaming/card_authorization/ingest_dt=YYYY/MM/DD/HH/), chargebacks "
            "(<lake-root>/bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/) and the ground truth "
            "(<lake-root>/_generator/manifest.json). Rates are shares of --events. Same arguments, same bytes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = GeneratorConfig()
    add = parser.add_argument
    add("--events", type=int, default=d.events, help="distinct valid transactions to generate (fraud included)")
    add("--cards", type=int, default=d.cards, help="number of cards (each has a home country, spend level, activity)")
    add(
        "--merchants",
        type=_merchant_count,
        default="auto",
        help="approximate number of merchants (at least 5 per country); auto: max(120, cards/4)",
    )
    add("--start", type=dt.date.fromisoformat, default=d.start, help="first event day (UTC), YYYY-MM-DD")
    add("--days", type=int, default=d.days, help="number of days of event time")
    add("--seed", type=int, default=d.seed, help="random seed: same seed and arguments give byte-identical files")
    add("--lake-root", type=Path, default="./lake", help="local lake folder to write into")
    add(
        "--bad-rate",
        type=float,
        default=d.bad_rate,
        help="invalid lines per event, spread over every quarantine reason (at least one each when > 0); "
        "> 0 also adds blank/whitespace-only lines, CRLF and BOM files, one truncated gzip file and "
        "invalid, repeated and unknown-event chargebacks",
    )
    add(
        "--dup-rate",
        type=float,
        default=d.dup_rate,
        help="exact re-deliveries per event, in a later file (some with other key order, whitespace or an "
        "extra unknown field: the same record)",
    )
    add(
        "--conflict-rate",
        type=float,
        default=d.conflict_rate,
        help="re-deliveries per event with the same event_id and ts but another amount or merchant",
    )
    add("--late-rate", type=float, default=d.late_rate, help="share of events that arrive hours after their ts")
    add(
        "--late-max-hours",
        type=float,
        default=d.late_max_hours,
        help=f"late events arrive {LATE_MIN_HOURS:g} h to this many hours after their ts",
    )
    add("--card-number-rate", type=float, default=d.card_number_rate, help="share of records carrying card_number")
    add("--fraud-rate", type=float, default=d.fraud_rate, help="share of events that are fraud")
    add(
        "--merchant-fraud-share",
        type=float,
        default=d.merchant_fraud_share,
        help="share of fraud from compromised merchants (the rest: compromised cards)",
    )
    add(
        "--breached-merchants",
        type=int,
        default=d.breached_merchants,
        help="merchants breached during the lake (scenario merchant_breach: fraud at the merchant itself, on top "
        "of --fraud-rate, visible only through its earlier chargebacks)",
    )
    add("--breach-days", type=int, default=d.breach_days, help="length of each breach in days (cut at the lake's end)")
    add(
        "--breach-fraud-share",
        type=float,
        default=d.breach_fraud_share,
        help="share of a breached merchant's authorizations during the breach that are fraud",
    )
    add(
        "--chargeback-rate",
        type=float,
        default=d.chargeback_rate,
        help="share of fraud bursts reported as chargebacks (the rest are never reported)",
    )
    add("--travel-rate", type=float, default=d.travel_rate, help="share of cards that travel abroad for 2-7 days")
    add(
        "--files-per-hour",
        type=int,
        default=d.files_per_hour,
        help="Firehose buffer intervals per hour: at most this many files per arrival-hour folder",
    )
    add("--fx-rates", type=Path, default=d.fx_rates, help="currency,usd_rate CSV: every currency in it is used")
    add("--stream-name", default=d.stream_name, help="delivery stream name, the prefix of every bronze file name")
    add("--compress-level", type=int, default=d.compress_level, help="gzip level (0-9)")
    add("--overwrite", action="store_true", help="replace the generator's folders if the lake already has them")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--progress", action="store_true", help="print progress (default from 200000 events)")
    verbosity.add_argument("--quiet", action="store_true", help="print only the final summary line")
    return parser


def config_from_args(args: argparse.Namespace) -> GeneratorConfig:
    values = {f.name: getattr(args, f.name) for f in fields(GeneratorConfig) if hasattr(args, f.name)}
    values["progress"] = bool(args.progress or (not args.quiet and args.events >= 200_000))
    return GeneratorConfig(**values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = generate_lake(config_from_args(args))
    except ValueError as error:  # impossible option values: a usage error
        parser.error(str(error))
    except OSError as error:  # e.g. the lake already holds data (--overwrite): not a usage error
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    print(summary.one_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
