"""The benchmark's DuckDB reference: `build` bronze -> silver -> gold without Spark, or `verify` Spark's tables
against it. The library is devtools/benchmark/reference.py; `--help` shows its description."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.benchmark import reference


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmark_reference.py",
        description=reference.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="bronze → silver → gold with DuckDB, into --output-dir")
    verify_parser = commands.add_parser("verify", help="compare Spark's tables under --lake-root with the output")
    for sub in (build_parser, verify_parser):
        sub.add_argument("--lake-root", type=Path, required=True, help="the generated lake (bronze is read from it)")
        sub.add_argument("--output-dir", type=Path, required=True, help="where the reference's Parquet files live")
    build_parser.add_argument("--fx-rates", type=Path, default=reference.DEFAULT_FX_RATES, help="currency,usd_rate CSV")
    build_parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="DuckDB and framing threads (default: all cores)"
    )
    build_parser.add_argument(
        "--chunk-files", type=int, default=400, help="bronze files framed and validated together (default: 400)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "build":
        document = reference.build(
            args.lake_root, args.output_dir, fx_rates=args.fx_rates, threads=args.threads, chunk_files=args.chunk_files
        )
    else:
        document = reference.verify(args.lake_root, args.output_dir)
    print(json.dumps(document, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
