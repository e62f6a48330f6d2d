"""Daily datasets: leakage-free, out-of-time training and validation sets and the inference snapshot.

Entry point for `spark-submit --master 'local[*]'` and EMR Serverless (same arguments, with
`--lake-root s3://bucket/prefix`). For the as-of date A (00:00 UTC) it reads nothing at or after A:

  training    events with ts in [A − D − V − T, A − D − V)   label 1 when charged back before A
  validation  events with ts in [A − D − V, A − D)           label 1 when charged back before A
  (neither)   events with ts in [A − D, A)                   their chargebacks have not had time to arrive
  inference   each card's latest gold row with ts < A

Writes Parquet to <lake-root>/gold/training/as_of=A/{train,validation}/ and
<lake-root>/gold/inference/as_of=A/, then manifest.json in gold/training/as_of=A/ (written last: a
dataset is complete when its manifest exists). Labels come from the chargeback table silver/chargebacks
(silver_and_gold.py ingests the feed); reports before their event go to <lake-root>/silver/label_quarantine.
See docs/datasets.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spark_jobs import lake
from spark_jobs.feature_registry import LABEL_MATURITY
from spark_jobs.job_options import add_lake_options, add_region_option, parse_day, parse_timestamp
from spark_jobs.run_trace import add_run_options
from spark_jobs.storage import spark_path

MANIFEST_VERSION = 1
BASELINE_OUTPUTS = ("metrics.json", "pr_curve.png")  # written by scripts/train_baseline.py
ROWS_PER_FILE = 1_000_000
# D's default: the label maturity the merchant features' chargeback rates use (feature_registry.LABEL_MATURITY).
DEFAULT_LABEL_DELAY_DAYS = LABEL_MATURITY // timedelta(days=1)


class DatasetInputError(RuntimeError):
    """The lake cannot give the requested datasets (too little history, no gold table, ...)."""


class TooLittleHistory(DatasetInputError):
    """Silver does not reach back to the training window's first day. A scheduled run (--scheduled-time)
    ends skipped, exit 0, with the metric DatasetsSkipped=1: a young lake is not an incident. An as-of
    date asked by hand (--as-of) is refused."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_datasets.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--as-of",
        type=parse_day,
        help="A, the as-of date YYYY-MM-DD (00:00 UTC): nothing at or after it is read",
    )
    when.add_argument(
        "--scheduled-time",
        type=parse_timestamp,
        help="the scheduler's time (ISO-8601); A is its UTC date, so the daily run for day D has A = D + 1",
    )
    parser.add_argument(
        "--train-days", type=int, default=14, help="T: days of events in the training set (default: 14)"
    )
    parser.add_argument(
        "--validation-days", type=int, default=7, help="V: days of events in the validation set (default: 7)"
    )
    parser.add_argument(
        "--label-delay-days",
        type=int,
        default=DEFAULT_LABEL_DELAY_DAYS,
        help="D: the last D days before A are in neither set, their chargebacks not having had time to "
        f"arrive (default: {DEFAULT_LABEL_DELAY_DAYS}, the label maturity of the merchant features)",
    )
    add_lake_options(parser)
    add_region_option(parser)
    add_run_options(parser)
    args = parser.parse_args(argv)
    if args.train_days < 1 or args.validation_days < 1:
        parser.error("--train-days and --validation-days must be >= 1")
    if args.label_delay_days < 0:
        parser.error("--label-delay-days must be >= 0")
    if args.as_of is None:
        args.as_of = args.scheduled_time.date()  # parse_timestamp returns UTC
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from spark_jobs.datasets import DatasetWindows
    from spark_jobs.job_run import JobSpec, run_job

    windows = DatasetWindows(args.as_of, args.train_days, args.validation_days, args.label_delay_days)
    job = JobSpec(
        job="build_datasets",
        mode="datasets",
        lake_root=args.lake_root,
        endpoint_url=args.endpoint_url,
        arguments=vars(args),
        input_errors=(DatasetInputError,),
    )
    scheduled = args.scheduled_time is not None
    return run_job(
        job,
        lambda storage, report: _body(storage, report, windows, endpoint_url=args.endpoint_url, scheduled=scheduled),
    )


def _body(storage, report, windows, *, endpoint_url: str | None, scheduled: bool):
    """The job's body: the datasets, their summary on stdout, the metrics; a scheduled run on too little
    history is skipped."""
    from spark_jobs.job_run import JobResult
    from spark_jobs.session import build_spark_session

    spark = build_spark_session("build_datasets", s3_endpoint_url=endpoint_url)
    try:
        manifest = build_datasets(spark, storage, report, windows)
    except TooLittleHistory as error:
        if not scheduled:
            raise
        report.failed_step = None  # nothing failed: the step stopped because there is nothing to build yet
        return JobResult.skipped(str(error), metrics={"datasets": {"DatasetsSkipped": 1}})
    print_summary(manifest)
    counts = report.counts
    return JobResult(
        metrics={
            "datasets": {
                "TrainRows": counts["train_rows"],
                "TrainFrauds": counts["train_frauds"],
                "ValidationRows": counts["validation_rows"],
                "ValidationFrauds": counts["validation_frauds"],
                "InferenceRows": counts["inference_rows"],
                "ChargebacksRead": counts["chargebacks_read"],
                "LabelRecordsQuarantined": counts["labels_quarantined"],
                "UnknownEventChargebacks": counts["unknown_event_chargebacks"],
                "DatasetsSkipped": 0,
            }
        }
    )


@dataclass
class Sources:
    """Silver's events and gold's rows before A, each read at one pinned Delta version."""

    versions: dict[str, int]
    silver_events: Any  # DataFrame: event_id, ts_us, dt
    gold_rows: Any  # DataFrame: gold's columns
    first_day: date
    last_day: date
    merchant_rows: Any = None  # DataFrame: gold/merchant_features' rows of days before A


@dataclass
class Labels:
    """The chargeback table's records, classified against silver (persisted until the datasets are written)."""

    classified: Any
    event_labels: Any
    counts: dict
    source: dict  # the manifest's sources.chargebacks: the table and its pinned version


def build_datasets(spark, storage, report, windows) -> dict:
    """Read gold, silver and the chargebacks before A; write the three datasets and the manifest (last)."""
    from spark_jobs.datasets import INFERENCE, TRAIN, VALIDATION

    as_of = windows.as_of
    outputs = {
        TRAIN: lake.training_split_prefix(as_of, TRAIN),
        VALIDATION: lake.training_split_prefix(as_of, VALIDATION),
        INFERENCE: lake.inference_prefix(as_of),
    }
    manifest_uri = lake.training_file_uri(storage, as_of, lake.DATASET_MANIFEST)
    with report.step("read_sources"):
        sources = read_sources(spark, storage, windows)
    with report.step("labels"):
        label_set = read_labels(spark, storage, report, windows, sources.silver_events)
    previous_manifest = storage.read_json(manifest_uri)
    storage.delete(manifest_uri)  # a dataset is complete when its manifest exists
    with report.step("write_datasets"):
        expected = write_datasets(
            storage, windows, outputs, sources.gold_rows, label_set, merchant_rows=sources.merchant_rows
        )
    with report.step("content_hash"):
        digests, content_hash = read_back_digests(spark, storage, outputs, expected)
    manifest = manifest_document(windows, outputs, sources, label_set, digests, content_hash, report)
    if previous_manifest and previous_manifest.get("content_hash") != content_hash:
        for name in BASELINE_OUTPUTS:  # metrics of another content: stale
            storage.delete(lake.training_file_uri(storage, as_of, name))
    storage.write_json(manifest_uri, manifest)
    report.details.update({"manifest": manifest_uri, "content_hash": content_hash, "windows": manifest["windows"]})
    splits = manifest["splits"]
    report.add(
        train_rows=splits[TRAIN]["rows"],
        train_frauds=splits[TRAIN]["frauds"],
        validation_rows=splits[VALIDATION]["rows"],
        validation_frauds=splits[VALIDATION]["frauds"],
        inference_rows=splits[INFERENCE]["rows"],
        chargebacks_read=label_set.counts["valid_records"],
        labels_quarantined=label_set.counts["reported_before_event"],
        unknown_event_chargebacks=label_set.counts["unknown_event_ids"],
    )
    return manifest


def read_sources(spark, storage, windows) -> Sources:
    """Phase 1: silver, gold and the merchant snapshot, pinned to one Delta version each, cut at A; refuses
    too little history and gold or merchant rows of another feature set version."""
    from pyspark.sql import functions as F

    from spark_jobs.delta_tables import table_exists, table_version
    from spark_jobs.feature_registry import FEATURE_SET_VERSION

    as_of, as_of_us = windows.as_of, windows.as_of_us
    silver_path, gold_path = lake.table_path(storage, lake.SILVER_TABLE), lake.table_path(storage, lake.GOLD_TABLE)
    merchant_path = lake.table_path(storage, lake.MERCHANT_FEATURES_TABLE)
    for name, path in (("silver", silver_path), ("gold", gold_path), ("merchant features", merchant_path)):
        if not table_exists(spark, path):
            raise DatasetInputError(f"no {name} table at {path}: run spark_jobs/silver_and_gold.py first")
    versions = {"silver": table_version(spark, silver_path), "gold": table_version(spark, gold_path)}
    versions["merchant_features"] = table_version(spark, merchant_path)

    def before_as_of(path: str, version: int):
        table = spark.read.format("delta").option("versionAsOf", version).load(path)
        return table.where(F.col("dt") < F.lit(as_of)).where(F.col("ts_us") < as_of_us)

    silver_events = before_as_of(silver_path, versions["silver"]).select("event_id", "ts_us", "dt")
    gold_rows = before_as_of(gold_path, versions["gold"])
    first_day, last_day = silver_events.agg(F.min("dt"), F.max("dt")).first()
    check_history(windows, first_day, last_day)
    merchant_rows = (
        spark.read.format("delta")
        .option("versionAsOf", versions["merchant_features"])
        .load(merchant_path)
        .where(F.col("day") < F.lit(as_of))
    )
    for name, rows in (("gold", gold_rows), (lake.MERCHANT_FEATURES_TABLE, merchant_rows)):
        stale = rows.where(F.col("feature_set_version") != FEATURE_SET_VERSION).count()
        if stale:
            raise DatasetInputError(
                f"{name} holds {stale} rows before {as_of} computed with another feature set version than "
                f"{FEATURE_SET_VERSION}: recompute gold (silver_and_gold.py --mode full) first"
            )
    return Sources(versions, silver_events, gold_rows, first_day, last_day, merchant_rows)


def read_labels(spark, storage, report, windows, silver_events) -> Labels:
    """Phase 2: the chargeback table (pinned version; silver_and_gold.py ingests the feed into it), classified
    against silver: reports before A label their events; reports before their event go to the label quarantine
    (once: keyed by the record's feed line); reports for events not in silver before A are counted."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from spark_jobs import labels
    from spark_jobs.delta_tables import ensure_table, insert_new_rows, stats_columns, table_exists, table_version

    chargebacks_path = lake.table_path(storage, lake.CHARGEBACKS_TABLE)
    if not table_exists(spark, chargebacks_path):
        raise DatasetInputError(
            f"no chargeback table at {chargebacks_path}: run spark_jobs/silver_and_gold.py (it ingests the "
            "chargeback feed) first"
        )
    version = table_version(spark, chargebacks_path)
    table = spark.read.format("delta").option("versionAsOf", version).load(chargebacks_path)
    classified = labels.classify_chargebacks(
        labels.table_records(table), silver_events, as_of_us=windows.as_of_us
    ).persist(StorageLevel.MEMORY_AND_DISK)
    event_labels = labels.event_labels(classified).persist(StorageLevel.MEMORY_AND_DISK)
    outcomes = {row.outcome: row["count"] for row in classified.groupBy("outcome").count().collect()}
    quarantine_path = lake.table_path(storage, lake.LABEL_QUARANTINE_TABLE)
    ensure_table(
        spark,
        quarantine_path,
        labels.LABEL_QUARANTINE_SCHEMA,
        properties=stats_columns(*labels.LABEL_QUARANTINE_STATS_COLUMNS),
    )
    if outcomes.get(labels.REPORTED_BEFORE_EVENT, 0):
        insert_new_rows(
            spark,
            quarantine_path,
            labels.reported_before_event_rows(classified, run_id=report.run_id),
            match_condition="t.source_file = s.source_file AND t.line_number <=> s.line_number",
        )
    quarantine = spark.read.format("delta").load(quarantine_path).groupBy("reason").count()
    in_quarantine = {row.reason: row["count"] for row in quarantine.collect()}
    label_counts = count_labels(outcomes, event_labels.count(), in_quarantine)
    source = {
        "table": lake.CHARGEBACKS_TABLE,
        "delta_version": version,
        "rows": sum(outcomes.values()),
        "rows_reported_before_as_of": int(table.where(F.col("reported_at_us") < windows.as_of_us).count()),
    }
    return Labels(classified, event_labels, label_counts, source)


def write_datasets(
    storage, windows, outputs: dict[str, str], gold_rows, label_set: Labels, *, merchant_rows
) -> dict[str, int]:
    """Phase 3: the two splits and the inference snapshot as Parquet, each row with its merchant's snapshot of
    the event's day (datasets.with_merchant_features); returns the rows written per output."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from spark_jobs import datasets
    from spark_jobs.datasets import INFERENCE, SPLITS, TRAIN

    train_start_us = windows.bounds_us(TRAIN)[0]
    window_rows = gold_rows.where(F.col("dt") >= F.lit(windows.train_start)).where(F.col("ts_us") >= train_start_us)
    window_rows = datasets.with_merchant_features(window_rows, merchant_rows)
    labelled = datasets.labelled_events(window_rows, label_set.event_labels).persist(StorageLevel.MEMORY_AND_DISK)
    expected = {split: datasets.split_rows(labelled, windows, split).count() for split in SPLITS}
    for split in SPLITS:
        write_parquet(datasets.split_rows(labelled, windows, split), storage, outputs[split], expected[split])
    snapshot = datasets.inference_snapshot(
        gold_rows, as_of_us=windows.as_of_us, merchant_snapshot=merchant_rows
    ).persist(StorageLevel.MEMORY_AND_DISK)
    expected[INFERENCE] = snapshot.count()
    write_parquet(snapshot, storage, outputs[INFERENCE], expected[INFERENCE])
    for frame in (label_set.classified, label_set.event_labels, labelled, snapshot):
        frame.unpersist()
    return expected


def read_back_digests(spark, storage, outputs: dict[str, str], expected: dict[str, int]) -> tuple[dict, str]:
    """Phase 4: one pass over what was written: each split's statistics and the content hash."""
    from spark_jobs import datasets
    from spark_jobs.datasets import INFERENCE, TRAIN, VALIDATION

    hasher = datasets.ContentHasher()
    digests = {}
    for split in (TRAIN, VALIDATION, INFERENCE):
        schema = datasets.INFERENCE_SCHEMA if split == INFERENCE else datasets.TRAINING_SCHEMA
        written = spark.read.schema(schema).parquet(spark_path(storage.uri(outputs[split])))
        ordered = written.orderBy("ts_us", "event_id")
        digests[split] = hasher.add_split(row.asDict() for row in ordered.toLocalIterator())
        if digests[split].rows != expected[split]:
            raise RuntimeError(f"{split}: wrote {expected[split]} rows but read back {digests[split].rows}")
    return digests, hasher.hexdigest()


def manifest_document(windows, outputs, sources: Sources, label_set: Labels, digests, content_hash, report) -> dict:
    """Phase 5: the manifest: windows, splits with their statistics, columns, features, sources, labels."""
    from spark_jobs import datasets
    from spark_jobs.datasets import INFERENCE, TRAIN, VALIDATION
    from spark_jobs.feature_registry import FEATURE_NAMES, FEATURE_SET_VERSION

    described = windows.describe()
    splits = {}
    for split in (TRAIN, VALIDATION, INFERENCE):
        digest = digests[split]
        entry = {
            "path": outputs[split],
            "window": described[split],
            "rows": digest.rows,
            "cards": digest.cards,
            "first_event_at": datasets.iso_from_us(digest.first_ts_us),
            "last_event_at": datasets.iso_from_us(digest.last_ts_us),
            "sha256": digest.sha256,
        }
        if split != INFERENCE:
            entry["frauds"] = digest.frauds
            entry["fraud_rate"] = round(digest.frauds / digest.rows, 6) if digest.rows else None
        splits[split] = entry
    return {
        "manifest_version": MANIFEST_VERSION,
        "job": "spark_jobs/build_datasets.py",
        "as_of": windows.as_of.isoformat(),
        "label_cutoff": described["label_cutoff"],
        "parameters": {
            "train_days": windows.train_days,
            "validation_days": windows.validation_days,
            "label_delay_days": windows.label_delay_days,
        },
        "windows": described,
        "splits": splits,
        "columns": {
            "train_and_validation": schema_columns(datasets.TRAINING_SCHEMA),
            "inference": schema_columns(datasets.INFERENCE_SCHEMA),
        },
        "features": list(FEATURE_NAMES),
        "feature_set_version": FEATURE_SET_VERSION,
        "sources": {
            "gold": {"table": lake.GOLD_TABLE, "delta_version": sources.versions["gold"]},
            "merchant_features": {
                "table": lake.MERCHANT_FEATURES_TABLE,
                "delta_version": sources.versions["merchant_features"],
            },
            "silver": {
                "table": lake.SILVER_TABLE,
                "delta_version": sources.versions["silver"],
                "first_date": sources.first_day.isoformat(),
                "last_date_before_as_of": sources.last_day.isoformat(),
            },
            "chargebacks": label_set.source,
        },
        "labels": label_set.counts,
        "content_hash": content_hash,
        "content_hash_rule": datasets.CONTENT_HASH_RULE,
        "run_id": report.run_id,
        "created_at": report.started_at.isoformat(),
    }


def check_history(windows, first_day: date | None, last_day: date | None) -> None:
    """Too little history: silver must have data on the training window's first day or earlier."""
    needed = windows.train_start
    span = (
        f"(as-of {windows.as_of} − {windows.label_delay_days} label-delay − {windows.validation_days} validation "
        f"− {windows.train_days} training days)"
    )
    if first_day is None:
        raise TooLittleHistory(
            f"too little history: silver holds no event before the as-of date {windows.as_of}; the training "
            f"window would start on {needed} {span}"
        )
    if first_day > needed:
        earliest = first_day + (windows.as_of - needed)
        raise TooLittleHistory(
            f"too little history: the training window starts on {needed} {span}, but silver's first date is "
            f"{first_day} (dates available before the as-of date: {first_day} to {last_day}); use --as-of "
            f"{earliest} or later, or shorter windows"
        )


def count_labels(outcomes: dict[str, int], events_charged_back: int, in_quarantine: dict[str, int]) -> dict:
    """The manifest's label section: what became of the chargeback table's records at A, and the label
    quarantine table's rows by reason after this run (the feed's invalid lines, quarantined when
    silver_and_gold.py ingested them, and reports before their event, quarantined by datasets runs)."""
    from spark_jobs import labels

    quarantined_by_reason = dict.fromkeys(labels.LABEL_QUARANTINE_REASONS, 0) | in_quarantine
    used = outcomes.get(labels.LABEL, 0)
    return {
        "valid_records": sum(outcomes.values()),
        "chargebacks_used": used,
        "events_charged_back": events_charged_back,
        "repeated_reports": used - events_charged_back,
        "unknown_event_ids": outcomes.get(labels.UNKNOWN_EVENT, 0),
        "reported_at_or_after_as_of": outcomes.get(labels.AFTER_AS_OF, 0),
        "reported_before_event": outcomes.get(labels.REPORTED_BEFORE_EVENT, 0),
        "quarantined": sum(quarantined_by_reason.values()),
        "quarantined_by_reason": quarantined_by_reason,
        "quarantine_table": lake.LABEL_QUARANTINE_TABLE,
    }


def write_parquet(frame, storage, relative_path: str, rows: int) -> None:
    """Replace the folder with `frame` sorted by (ts_us, event_id), at most ~1M rows per file."""
    files = max(1, math.ceil(rows / ROWS_PER_FILE))
    (
        frame.repartitionByRange(files, "ts_us", "event_id")
        .sortWithinPartitions("ts_us", "event_id")
        .write.mode("overwrite")
        .parquet(spark_path(storage.uri(relative_path)))
    )


def schema_columns(schema) -> list[dict]:
    return [{"name": item.name, "type": item.dataType.simpleString()} for item in schema.fields]


def print_summary(manifest: dict) -> None:
    """One line per split: window, rows, frauds and fraud rate."""
    print(f"datasets as_of={manifest['as_of']} content_hash={manifest['content_hash']}", flush=True)
    for name, split in manifest["splits"].items():
        window = split["window"]
        span = (
            f"[{window.get('start', '-')[:10]}, {window['end'][:10]})"
            if "start" in window
            else f"ts < {window['end'][:10]}"
        )
        frauds = f" frauds={split['frauds']} fraud_rate={split['fraud_rate']}" if "frauds" in split else ""
        print(f"  {name:<10} {span:<26} rows={split['rows']} cards={split['cards']}{frauds}", flush=True)
    labels = manifest["labels"]
    shown = (
        "chargebacks_used",
        "events_charged_back",
        "unknown_event_ids",
        "reported_at_or_after_as_of",
        "quarantined",
    )
    print("  labels     " + " ".join(f"{name}={labels[name]}" for name in shown), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
