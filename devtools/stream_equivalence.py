"""Deliver a generated lake in N arrival batches, run stream mode after each, then prove it equals `--mode full`.

The check behind gold's promise that any sequence of stream runs ends where a full recompute does:

1. Generate a lake (`--events`, `--days`, `--cards`; bad records, re-deliveries and late events included)
   into `<work-dir>/staged`, once per arguments.
2. Split its bronze by arrival hour into `--batches` consecutive deliveries (the last one also takes the
   stragglers), copy each into `<work-dir>/lake` and run
   `spark-submit --master local[*] spark_jobs/silver_and_gold.py --mode stream` after it.
3. Run `--mode full` on the same lake: it recomputes all of gold from silver and MERGEs only changed
   values, so it must insert and update nothing.

Prints one line per run and writes `<output>` (JSON): per stream run the bronze files and bytes read, the
gold files and bytes its update scanned, rows recomputed, cards affected and seconds; then the full run's
inserted/updated counts and `equal: true|false`. Exit status 1 when the full run changed a row.

    .venv/bin/python scripts/stream_equivalence.py --events 1000000 --batches 10 \\
        --output docs/benchmarks/stream_equivalence.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from datetime import date
from pathlib import Path

from devtools.benchmark.runner import require_success, run_report, spark_job_timing, spark_submit
from devtools.demo import plan_arrivals


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="distinct valid events (default: 1000000)")
    parser.add_argument("--cards", type=int, default=None, help="cards (default: events / 50)")
    parser.add_argument("--days", type=int, default=30, help="days of event time (default: 30)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first day (2026-01-01)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    parser.add_argument("--batches", type=int, default=10, help="arrival batches, a stream run after each (10)")
    parser.add_argument(
        "--work-dir", type=Path, default=Path("/tmp/card-fraud-stream-equivalence"), help="generated and run lakes"
    )
    parser.add_argument("--output", type=Path, default=None, help="write the JSON summary here")
    parser.add_argument("--spark-master", default="local[*]", help="spark-submit --master (default: local[*])")
    args = parser.parse_args(argv)
    if args.batches < 1 or args.events < 1 or args.days < 1:
        parser.error("--batches, --events and --days must be >= 1")
    args.cards = args.cards or max(1, args.events // 50)
    # What scripts.benchmark.spark_submit reads from its arguments.
    args.spark_conf, args.event_log, args.sample_seconds = [], False, 0.1
    return args


def log(message: str) -> None:
    print(f"[stream-equivalence {time.strftime('%H:%M:%S')}] {message}", flush=True)


def staged_lake(args: argparse.Namespace) -> Path:
    from devtools.generator import GeneratorConfig, generate_lake, load_manifest

    root = args.work_dir / "staged"
    config = GeneratorConfig(
        events=args.events,
        cards=args.cards,
        days=args.days,
        start=args.start,
        seed=args.seed,
        lake_root=root,
        overwrite=True,
    )
    done = root / "_generator" / "complete"
    if done.exists() and load_manifest(root)["arguments"] == config.arguments():
        log(f"reusing the generated lake {root}")
        return root
    log(f"generating {args.events:,} events, {args.cards:,} cards, {args.days} days into {root}")
    generate_lake(config)
    done.write_text("ok\n")
    return root


def gold_table_counts(lake: Path) -> dict:
    """Rows and distinct (dt, event_id) keys of gold, read with the `deltalake` package (not Spark)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from spark_jobs.gold import GOLD_TABLE

    keys = DeltaTable(str(lake / GOLD_TABLE)).to_pyarrow_table(columns=["dt", "event_id"])
    distinct = len(pc.unique(pc.binary_join_element_wise(pc.cast(keys["dt"], "string"), keys["event_id"], "/")))
    return {"gold_rows": keys.num_rows, "gold_distinct_keys": distinct}


def stream_row(number: int, files: int, report: dict, timing: dict) -> dict:
    counts = report["counts"]
    gold = report["gold"][0]
    return {
        "batch": number,
        "files_delivered": files,
        "bronze_files_read": counts["files"],
        "bronze_files_ignored": report["bronze_listing"]["ignored_files"],  # listed again by every run
        "bronze_bytes_read": counts["bytes_scanned"],
        "records_read": counts["records_read"],
        "accepted": counts["accepted"],
        "duplicates": counts["duplicates"],
        "quarantined": counts["quarantined"],
        "gold_mode": gold["mode"],
        "affected_cards": gold["affected_cards"],
        "gold_rows_recomputed": counts["gold_rows_recomputed"],
        "gold_rows_inserted": counts["gold_rows_inserted"],
        "gold_rows_updated": counts["gold_rows_updated"],
        "gold_files_scanned": counts["gold_files_scanned"],
        "gold_bytes_scanned": counts["gold_bytes_scanned"],
        "seconds": timing["wall_seconds"],
        "seconds_with_startup": timing["wall_seconds_with_startup"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    staged = staged_lake(args)
    lake = args.work_dir / "lake"
    if lake.exists():
        shutil.rmtree(lake)
    lake.mkdir(parents=True)
    plan = plan_arrivals(staged, args.start, args.days, args.batches)
    total_files = sum(len(arrival["files"]) for arrival in plan)
    log(f"{total_files:,} bronze files in {args.batches} batches into {lake}")
    streams = []
    for arrival in plan:
        for path in arrival["files"]:
            target = lake / path.relative_to(staged)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        run = spark_submit(args, "spark_jobs/silver_and_gold.py", ["--mode", "stream", "--lake-root", str(lake)])
        require_success(run, f"stream run {arrival['number']} on {lake}")
        row = stream_row(
            arrival["number"], len(arrival["files"]), run_report(lake, run), spark_job_timing(run, "silver_and_gold")
        )
        streams.append(row)
        log(
            f"batch {row['batch']}/{args.batches}: {row['bronze_files_read']} files, {row['bronze_bytes_read']:,} B "
            f"read; {row['accepted']:,} accepted; gold {row['gold_mode']}: {row['affected_cards']:,} cards, "
            f"{row['gold_rows_recomputed']:,} rows recomputed, {row['gold_files_scanned']} files / "
            f"{row['gold_bytes_scanned']:,} B scanned; {row['seconds']} s"
        )
    log("full recompute (--mode full) over the same silver")
    run = spark_submit(args, "spark_jobs/silver_and_gold.py", ["--mode", "full", "--lake-root", str(lake)])
    require_success(run, f"full run on {lake}")
    full_counts = run_report(lake, run)["counts"]
    full = {
        "gold_rows_recomputed": full_counts["gold_rows_recomputed"],
        "gold_rows_inserted": full_counts["gold_rows_inserted"],
        "gold_rows_updated": full_counts["gold_rows_updated"],
        "bronze_files_read": full_counts["files"],
        "seconds": spark_job_timing(run, "silver_and_gold")["wall_seconds"],
    }
    # The MERGE counts only inserts and updates; rows gold holds beyond the recompute (a duplicated or orphan
    # key) would not show there, so gold's rows and keys are counted too.
    full.update(gold_table_counts(lake))
    equal = (
        full["gold_rows_inserted"] == 0
        and full["gold_rows_updated"] == 0
        and full["bronze_files_read"] == 0
        and full["gold_rows"] == full["gold_distinct_keys"] == full["gold_rows_recomputed"]
    )
    summary = {
        "arguments": {
            k: str(v) for k, v in vars(args).items() if k not in ("spark_conf", "event_log", "sample_seconds")
        },
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "bronze_files": total_files,
        "ignored_files": sorted({name for row in streams for name in row["bronze_files_ignored"]}),
        "stream_runs": streams,
        "full_run": full,
        "silver_rows": sum(row["accepted"] for row in streams),
        "equal": equal,
    }
    log(
        f"full recompute: {full['gold_rows_recomputed']:,} rows recomputed, {full['gold_rows_inserted']} inserted, "
        f"{full['gold_rows_updated']} updated; gold holds {full['gold_rows']:,} rows, "
        f"{full['gold_distinct_keys']:,} distinct keys: gold after {args.batches} stream runs "
        f"{'EQUALS' if equal else 'DIFFERS FROM'} --mode full"
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
        log(f"wrote {args.output}")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
