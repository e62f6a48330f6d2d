"""Deliver a generated lake in N arrival batches, run stream mode after each, then prove it equals `--mode full`.

The check behind gold's promise that any sequence of stream runs ends where a full recompute does:

1. Generate a lake (`--events`, `--days`, `--cards`; bad records, re-deliveries and late events included)
   into `<work-dir>/staged`, once per arguments.
2. Split its bronze by arrival hour into `--batches` consecutive deliveries (the last one also takes the
   stragglers), each with the chargeback feed files reported before the cutoff of the delivery
   `--label-delay-batches` earlier (default 1: every report arrives one batch late, after the stream run that
   wrote the merchant rows it changes; the last delivery takes all the rest), copy each into `<work-dir>/lake`
   and run
   `spark-submit --master local[*] spark_jobs/silver_and_gold.py --mode stream` after it.
3. Run `--mode full` on the same lake: it recomputes all of gold and the merchant snapshot
   (`gold/merchant_features`) from silver and silver/chargebacks and MERGEs only changed values, so it must
   insert, update and delete no gold row and no merchant row, and read no new bronze or feed file.

Prints one line per run and writes `<output>` (JSON): per stream run the bronze files and bytes read, the
chargebacks ingested, the gold files and bytes its update scanned, rows recomputed, cards affected, merchant
rows inserted/updated and seconds; then the full run's inserted/updated(/deleted) counts of gold and the
merchant snapshot and `equal: true|false`. Exit status 1 when the full run changed a row.

    .venv/bin/python scripts/stream_equivalence.py --events 1000000 --batches 10 \\
        --output docs/benchmarks/stream_equivalence.json        (run_equivalence() is the library)
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

from devtools.benchmark.options import SparkRunSettings
from devtools.benchmark.processes import require_success, run_report, spark_job_timing, spark_submit
from devtools.demo import LABELS, plan_arrivals


@dataclass(frozen=True)
class EquivalenceOptions:
    """The generated lake (events, cards, days, start, seed), the number of arrival batches, where the lakes go,
    where the JSON summary goes (None: nowhere) and spark-submit's master. cards=None: events / 50."""

    events: int = 1_000_000
    cards: int | None = None
    days: int = 30
    start: date = date(2026, 1, 1)
    seed: int = 7
    batches: int = 10
    label_delay_batches: int = 1
    work_dir: Path = Path("/tmp/card-fraud-stream-equivalence")
    output: Path | None = None
    spark_master: str = "local[*]"

    def __post_init__(self) -> None:
        if self.batches < 1 or self.events < 1 or self.days < 1:
            raise ValueError("--batches, --events and --days must be >= 1")
        if self.label_delay_batches < 0:
            raise ValueError("--label-delay-batches must be >= 0")
        object.__setattr__(self, "cards", self.cards or max(1, self.events // 50))


def log(message: str) -> None:
    print(f"[stream-equivalence {time.strftime('%H:%M:%S')}] {message}", flush=True)


def staged_lake(options: EquivalenceOptions) -> Path:
    """The generated lake for these arguments, reused when an earlier run generated the same one."""
    from devtools.generator import GeneratorConfig, generate_once

    config = GeneratorConfig(
        events=options.events,
        cards=options.cards,
        days=options.days,
        start=options.start,
        seed=options.seed,
        lake_root=options.work_dir / "staged",
        overwrite=True,
    )
    return generate_once(config, echo=log)


def gold_table_counts(lake: Path) -> dict:
    """Rows and distinct (dt, event_id) keys of gold, read with the `deltalake` package (not Spark)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from spark_jobs.lake import GOLD_TABLE

    keys = DeltaTable(str(lake / GOLD_TABLE)).to_pyarrow_table(columns=["dt", "event_id"])
    distinct = len(pc.unique(pc.binary_join_element_wise(pc.cast(keys["dt"], "string"), keys["event_id"], "/")))
    return {"gold_rows": keys.num_rows, "gold_distinct_keys": distinct}


def merchant_table_counts(lake: Path) -> dict:
    """Rows and distinct (merchant_id, day) keys of the merchant snapshot, read with `deltalake` (not Spark)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from spark_jobs.lake import MERCHANT_FEATURES_TABLE

    keys = DeltaTable(str(lake / MERCHANT_FEATURES_TABLE)).to_pyarrow_table(columns=["merchant_id", "day"])
    distinct = len(pc.unique(pc.binary_join_element_wise(keys["merchant_id"], pc.cast(keys["day"], "string"), "/")))
    return {"merchant_rows": keys.num_rows, "merchant_distinct_keys": distinct}


def stream_row(number: int, files: int, label_files: int, report: dict, timing: dict) -> dict:
    counts = report["counts"]
    gold = report["gold"][0]
    return {
        "batch": number,
        "files_delivered": files,
        "label_files_delivered": label_files,
        "chargeback_files_read": counts["chargeback_files"],
        "chargebacks_ingested": counts["chargebacks_ingested"],
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
        "merchant_days_recomputed": counts["merchant_days_recomputed"],
        "merchant_rows_inserted": counts["merchant_rows_inserted"],
        "merchant_rows_updated": counts["merchant_rows_updated"],
        "seconds": timing["wall_seconds"],
        "seconds_with_startup": timing["wall_seconds_with_startup"],
    }


def delay_labels(plan: list[dict], staged: Path, delay: int) -> None:
    """Deliver each arrival's chargeback feed files `delay` arrivals later; the last arrival also takes those
    reported on or after the last cutoff, so every report is delivered and the full run has none left to read."""
    planned = [arrival["labels"] for arrival in plan]
    feed = staged / LABELS
    taken = {path for labels in planned for path in labels}
    later = sorted(p for p in feed.rglob("*") if p.is_file() and p not in taken) if feed.exists() else []
    for index, arrival in enumerate(plan):
        source = index - delay
        arrival["labels"] = list(planned[source]) if source >= 0 else []
    plan[-1]["labels"] = [path for labels in planned[max(0, len(plan) - 1 - delay) :] for path in labels] + later


def run_equivalence(options: EquivalenceOptions) -> int:
    """Generate, deliver in batches with a stream run after each, then --mode full; 0 when it changed nothing."""
    spark = SparkRunSettings(master=options.spark_master)
    staged = staged_lake(options)
    lake = options.work_dir / "lake"
    if lake.exists():
        shutil.rmtree(lake)
    lake.mkdir(parents=True)
    plan = plan_arrivals(staged, options.start, options.days, options.batches)
    delay_labels(plan, staged, options.label_delay_batches)
    total_files = sum(len(arrival["files"]) for arrival in plan)
    total_labels = sum(len(arrival["labels"]) for arrival in plan)
    log(f"{total_files:,} bronze files and {total_labels:,} chargeback files in {options.batches} batches into {lake}")
    streams = []
    for arrival in plan:
        for path in arrival["files"] + arrival["labels"]:
            target = lake / path.relative_to(staged)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        run = spark_submit(
            spark,
            "spark_jobs/silver_and_gold.py",
            ["--mode", "stream", "--allow-development-token-key", "--lake-root", str(lake)],
        )
        require_success(run, f"stream run {arrival['number']} on {lake}")
        row = stream_row(
            arrival["number"],
            len(arrival["files"]),
            len(arrival["labels"]),
            run_report(lake, run),
            spark_job_timing(run, "silver_and_gold"),
        )
        streams.append(row)
        log(
            f"batch {row['batch']}/{options.batches}: {row['bronze_files_read']} files, {row['bronze_bytes_read']:,} B "
            f"read; {row['accepted']:,} accepted; {row['chargebacks_ingested']:,} chargebacks; "
            f"gold {row['gold_mode']}: {row['affected_cards']:,} cards, "
            f"{row['gold_rows_recomputed']:,} rows recomputed, {row['gold_files_scanned']} files / "
            f"{row['gold_bytes_scanned']:,} B scanned; merchant rows {row['merchant_rows_inserted']:,} inserted / "
            f"{row['merchant_rows_updated']:,} updated; {row['seconds']} s"
        )
    log("full recompute (--mode full) over the same silver")
    run = spark_submit(
        spark,
        "spark_jobs/silver_and_gold.py",
        ["--mode", "full", "--allow-development-token-key", "--lake-root", str(lake)],
    )
    require_success(run, f"full run on {lake}")
    full_report = run_report(lake, run)
    full_counts = full_report["counts"]
    full = {
        "gold_rows_recomputed": full_counts["gold_rows_recomputed"],
        "gold_rows_inserted": full_counts["gold_rows_inserted"],
        "gold_rows_updated": full_counts["gold_rows_updated"],
        "bronze_files_read": full_counts["files"],
        "chargeback_files_read": full_counts["chargeback_files"],
        "merchant_rows_recomputed": full_counts["merchant_rows_recomputed"],
        "merchant_rows_inserted": full_counts["merchant_rows_inserted"],
        "merchant_rows_updated": full_counts["merchant_rows_updated"],
        # a full recompute deletes the rows it no longer produces (rows a stream run should not have written)
        "merchant_rows_deleted": full_report["merchant_features"]["rows_deleted"],
        "seconds": spark_job_timing(run, "silver_and_gold")["wall_seconds"],
    }
    # The MERGE counts only inserts and updates; rows gold holds beyond the recompute (a duplicated or orphan
    # key) would not show there, so gold's rows and keys are counted too (and the merchant snapshot's).
    full.update(gold_table_counts(lake))
    full.update(merchant_table_counts(lake))
    gold_equal = (
        full["gold_rows_inserted"] == 0
        and full["gold_rows_updated"] == 0
        and full["bronze_files_read"] == 0
        and full["gold_rows"] == full["gold_distinct_keys"] == full["gold_rows_recomputed"]
    )
    merchant_equal = (
        full["merchant_rows_inserted"] == 0
        and full["merchant_rows_updated"] == 0
        and full["merchant_rows_deleted"] == 0
        and full["chargeback_files_read"] == 0
        and full["merchant_rows"] == full["merchant_distinct_keys"] == full["merchant_rows_recomputed"]
    )
    equal = gold_equal and merchant_equal
    summary = {
        "arguments": {item.name: str(getattr(options, item.name)) for item in fields(options)},
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "bronze_files": total_files,
        "label_files": total_labels,
        "ignored_files": sorted({name for row in streams for name in row["bronze_files_ignored"]}),
        "stream_runs": streams,
        "full_run": full,
        "silver_rows": sum(row["accepted"] for row in streams),
        "chargebacks": sum(row["chargebacks_ingested"] for row in streams),
        "gold_equal": gold_equal,
        "merchant_equal": merchant_equal,
        "equal": equal,
    }
    log(
        f"full recompute: {full['gold_rows_recomputed']:,} rows recomputed, {full['gold_rows_inserted']} inserted, "
        f"{full['gold_rows_updated']} updated; gold holds {full['gold_rows']:,} rows, "
        f"{full['gold_distinct_keys']:,} distinct keys: gold after {options.batches} stream runs "
        f"{'EQUALS' if gold_equal else 'DIFFERS FROM'} --mode full; merchant snapshot: "
        f"{full['merchant_rows_recomputed']:,} rows recomputed, {full['merchant_rows_inserted']} inserted, "
        f"{full['merchant_rows_updated']} updated, {full['merchant_rows_deleted']} deleted: "
        f"{'EQUALS' if merchant_equal else 'DIFFERS FROM'} --mode full"
    )
    if options.output:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(json.dumps(summary, indent=1) + "\n")
        log(f"wrote {options.output}")
    return 0 if equal else 1
