"""Send card-authorization events to the Kinesis data stream (the command line of devtools/producer.py,
whose docstring is this program's --help).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.producer import GeneratedEvents, ProduceOptions, produce
from devtools.producer import __doc__ as DESCRIPTION


def parse_options(argv: list[str] | None = None) -> ProduceOptions:
    parser = argparse.ArgumentParser(
        prog="produce_events.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stream", required=True, help="Kinesis data stream name or ARN")
    parser.add_argument("--endpoint-url", help="custom Kinesis endpoint (a moto server); default: AWS")
    parser.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    parser.add_argument(
        "--file", action="append", type=Path, help="NDJSON file to send, plain or gzip (repeatable); else generated"
    )
    generated = parser.add_argument_group("generated events (without --file)")
    generated.add_argument("--events", type=int, default=1000, help="distinct valid events (default: 1000)")
    generated.add_argument("--cards", type=int, default=100, help="cards (default: 100)")
    generated.add_argument("--days", type=int, default=1, help="days of event time (default: 1)")
    generated.add_argument(
        "--start", type=date.fromisoformat, default="2026-01-01", help="first day, YYYY-MM-DD (default: 2026-01-01)"
    )
    generated.add_argument("--seed", type=int, default=42, help="generator seed (default: 42)")
    generated.add_argument("--clean", action="store_true", help="no bad lines, re-deliveries or late events")
    parser.add_argument("--max-attempts", type=int, default=8, help="PutRecords attempts per batch (default: 8)")
    args = parser.parse_args(argv)
    if args.max_attempts < 1:
        parser.error("--max-attempts must be >= 1")
    return ProduceOptions(
        stream=args.stream,
        endpoint_url=args.endpoint_url,
        region=args.region,
        files=tuple(args.file or ()),
        generated=GeneratedEvents(
            events=args.events, cards=args.cards, days=args.days, start=args.start, seed=args.seed, clean=args.clean
        ),
        max_attempts=args.max_attempts,
    )


def main(argv: list[str] | None = None) -> int:
    return produce(parse_options(argv))


if __name__ == "__main__":
    raise SystemExit(main())
