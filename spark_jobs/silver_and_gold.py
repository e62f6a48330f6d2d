"""Bronze → silver (validated, deduplicated, masked) → gold (point-in-time card features).

Entry point for `spark-submit --master 'local[*]'` and for EMR Serverless (same arguments, with
`--lake-root s3://bucket/prefix`). Modes:
  stream  process new bronze files (every 10 minutes on AWS)
  daily   a stream update, then recompute and maintain the day given by --date/--scheduled-time
  full    a stream update, then recompute everything (the reference for tests and the benchmark)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spark_jobs.bronze_contract import FUTURE_TS_ALLOWANCE
from spark_jobs.bronze_ledger import MAX_FIREHOSE_BUFFERING
from spark_jobs.job_options import (
    REPO_ROOT_FX_RATES,
    add_event_id_index_options,
    add_framing_options,
    add_lake_options,
    add_region_option,
    add_token_key_options,
    check_event_id_index_options,
    check_token_key_options,
    day_before,
    framing_limits,
    parse_day,
    parse_timestamp,
)
from spark_jobs.run_lease import add_lease_table_option
from spark_jobs.run_trace import add_run_options

MODES = ("stream", "daily", "full")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="silver_and_gold.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=MODES, default="stream", help="what to run (default: stream)")
    add_lake_options(parser)
    add_region_option(parser)
    add_run_options(parser)
    add_lease_table_option(parser)
    parser.add_argument(
        "--date",
        type=parse_day,
        help="daily mode: the UTC day to recompute (default: the day before --scheduled-time, else yesterday)",
    )
    parser.add_argument(
        "--scheduled-time",
        type=parse_timestamp,
        help="the scheduler's time (ISO-8601); daily mode derives --date as the UTC day before it",
    )
    parser.add_argument(
        "--lookback-hours",
        type=int,
        default=48,
        help="list arrival-hour folders from the ledger's high-water mark minus this many hours (default: 48); "
        "at least the Firehose buffering and at most the stream retention when those are given",
    )
    parser.add_argument(
        "--full-scan",
        action="store_true",
        help="list every file under bronze/streaming/card_authorization/ (and the chargeback feed), including "
        "files outside ingest_dt= (reported_dt=) folders and older than the lookback (slow on a large lake; for "
        "backfills); also resets a high-water mark found in the future (docs/runbook.md)",
    )
    parser.add_argument(
        "--now",
        type=parse_timestamp,
        default=None,
        help="the run's time (ISO-8601; the state machines pass the schedule's time; default: the clock): "
        "ingest_dt= folders starting later than it plus --future-allowance-minutes wait for their time",
    )
    parser.add_argument(
        "--future-allowance-minutes",
        type=float,
        default=FUTURE_TS_ALLOWANCE / timedelta(minutes=1),
        help="how far a record's ts may lie after its arrival (else future_timestamp), and a folder's hour "
        f"after --now (default: {FUTURE_TS_ALLOWANCE / timedelta(minutes=1):g}; docs/contracts)",
    )
    parser.add_argument(
        "--firehose-buffering-seconds",
        type=int,
        default=None,
        help="the delivery stream's buffering interval (Terraform passes it): a record arrived at the latest "
        f"this long after its folder's hour (default: {MAX_FIREHOSE_BUFFERING.total_seconds():g}, Firehose's "
        "maximum); --lookback-hours must cover it",
    )
    parser.add_argument(
        "--stream-retention-hours",
        type=int,
        default=None,
        help="the Kinesis stream's retention (Terraform passes it): no object lands in a folder older than that, "
        "so --lookback-hours must not exceed it (default: not checked)",
    )
    parser.add_argument(
        "--max-batch-files",
        type=int,
        default=2000,
        help="at most this many bronze files per ledger batch; more new files make more batches (default: 2000)",
    )
    parser.add_argument(
        "--fx-rates",
        default=None,
        help=f"currency,usd_rate CSV, local path or s3:// URI (default: {REPO_ROOT_FX_RATES} in the repository)",
    )
    add_token_key_options(parser)
    add_event_id_index_options(parser, backfill=True)
    parser.add_argument(
        "--vacuum-retention-hours",
        type=int,
        default=168,
        help="daily mode: VACUUM keeps files needed by versions younger than this (default: 168 = 7 days)",
    )
    parser.add_argument(
        "--vacuum-mode",
        choices=("auto", "lite", "full"),
        default="auto",
        help="daily mode: VACUUM LITE (files known to the Delta log) or FULL (lists the table's folders, also "
        "removes files of crashed writes); auto = FULL when --date is a Sunday, else LITE (default: auto)",
    )
    add_framing_options(parser)
    parser.add_argument(
        "--glue-database",
        default=None,
        help="register the tables in this catalog database (Glue on EMR) so Athena can query them",
    )
    args = parser.parse_args(argv)
    if args.lookback_hours < 0:
        parser.error("--lookback-hours must be >= 0")
    _check_lookback(parser, args)
    if args.future_allowance_minutes < 0:
        parser.error("--future-allowance-minutes must be >= 0")
    if args.now is None:
        from spark_jobs.run_report import utc_now

        args.now = utc_now()
    if args.vacuum_retention_hours < 0:
        parser.error("--vacuum-retention-hours must be >= 0")
    if args.max_batch_files < 1:
        parser.error("--max-batch-files must be >= 1")
    check_token_key_options(parser, args)
    check_event_id_index_options(parser, args)
    # A backfill by hand on the shared lake takes the lease the state machines take (issue 17, "One writer").
    if args.lake_root.startswith(("s3://", "s3a://")) and not (args.execution_arn or args.lease_table):
        parser.error(
            f"--lake-root {args.lake_root}: a run started by hand on an S3 lake must hold the pipeline lease: "
            "pass --lease-table <lease table> (terraform output -raw lease_table_name; the state machines pass "
            "--execution-arn instead)"
        )
    if args.mode == "daily" and args.date is None:
        from spark_jobs.run_report import utc_now

        args.date = day_before(args.scheduled_time or utc_now())
    return args


def _check_lookback(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (usage error, exit 2) a lookback that cannot see every file a folder behind the mark may still
    get: shorter than the buffering (the previous hour's last objects land after the hour), or longer than the
    stream keeps records (listing folders nothing can land in any more)."""
    buffering, retention = args.firehose_buffering_seconds, args.stream_retention_hours
    if buffering is not None and not 0 <= buffering <= MAX_FIREHOSE_BUFFERING.total_seconds():
        parser.error(f"--firehose-buffering-seconds {buffering}: Firehose buffers 0 to 900 seconds")
    if buffering is not None and args.lookback_hours * 3600 < buffering:
        parser.error(
            f"--lookback-hours {args.lookback_hours} is shorter than the Firehose buffering window "
            f"({buffering} s): files landing after their hour would never be listed"
        )
    if retention is not None and args.lookback_hours > retention:
        parser.error(
            f"--lookback-hours {args.lookback_hours} is longer than the stream retention ({retention} h): "
            "no file can land in folders that old; use at most the retention"
        )


@dataclass(frozen=True)
class GoldOptions:
    """What `run_gold` does after the stream update: nothing more (stream), a day's recompute and the
    table maintenance (daily), or a recompute of everything (full)."""

    mode: str
    day: date | None = None  # daily: the UTC day to recompute
    vacuum_retention_hours: int = 168
    vacuum_mode: str = "auto"  # auto | lite | full
    now: datetime | None = None  # the run's time: the merchant snapshot's last day is at most its UTC day

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: expected one of {', '.join(MODES)}")
        if self.mode == "daily" and self.day is None:
            raise ValueError("daily mode needs the day to recompute")

    @property
    def vacuum_full(self) -> bool:
        """FULL when asked for, and on Sundays in auto mode (see maintenance.py)."""
        return self.vacuum_mode == "full" or (
            self.vacuum_mode == "auto" and self.day is not None and self.day.weekday() == 6
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from spark_jobs.job_run import JobSpec, run_job
    from spark_jobs.run_lease import run_holding_job_lease

    gold_options = GoldOptions(
        mode=args.mode,
        day=args.date,
        vacuum_retention_hours=args.vacuum_retention_hours,
        vacuum_mode=args.vacuum_mode,
        now=args.now,
    )
    from spark_jobs.card_numbers import TokenKeyError
    from spark_jobs.silver_ingest import FxRatesError

    job = JobSpec(
        job="silver_and_gold",
        mode=args.mode,
        lake_root=args.lake_root,
        endpoint_url=args.endpoint_url,
        arguments=vars(args),
        input_errors=(TokenKeyError,),
        invalid_inputs=(FxRatesError,),
    )
    # By hand (a backfill, no --execution-arn) with --lease-table, the run holds the pipeline lease.
    return run_holding_job_lease(
        args,
        job="silver_and_gold",
        run=lambda: run_job(job, lambda storage, report: _body(storage, report, args, gold_options)),
    )


def _body(storage, report, args: argparse.Namespace, gold_options: GoldOptions):
    """The job's body (the CLI's own arguments): silver from bronze, the chargeback table, gold, the catalog;
    the metrics."""
    from spark_jobs.chargebacks import ChargebackOptions, chargeback_metrics, ingest_chargebacks
    from spark_jobs.delta_tables import register_in_catalog
    from spark_jobs.event_id_index import index_location
    from spark_jobs.job_run import JobResult
    from spark_jobs.lake import CATALOG_TABLES, table_path
    from spark_jobs.session import build_spark_session
    from spark_jobs.silver_ingest import SilverOptions, ingest_bronze, load_reference_data

    fx_rates, token_keys = load_reference_data(
        fx_rates=args.fx_rates,
        card_token_secret_id=args.card_token_secret_id,
        allow_development_token_key=args.allow_development_token_key,
        lake_root=args.lake_root,
        endpoint_url=args.endpoint_url,
        region=args.region,
    )
    options = SilverOptions(
        fx_rates=fx_rates,
        token_key=token_keys,
        lookback_hours=args.lookback_hours,
        full_scan=args.full_scan,
        max_batch_files=args.max_batch_files,
        event_id_index=index_location(
            args.lake_root, table=args.event_id_index_table, path=args.event_id_index_path, region=args.region
        ),
        backfill_event_id_index=args.backfill_event_id_index,
        now=args.now,
        future_allowance=timedelta(minutes=args.future_allowance_minutes),
        firehose_buffering=(
            MAX_FIREHOSE_BUFFERING
            if args.firehose_buffering_seconds is None
            else timedelta(seconds=args.firehose_buffering_seconds)
        ),
        limits=framing_limits(args),
    )
    spark = build_spark_session(f"silver_and_gold-{args.mode}", s3_endpoint_url=args.endpoint_url)
    ingest_bronze(spark, storage, options, report, ingested_at=report.started_at)
    ingest_chargebacks(
        spark,
        storage,
        report,
        ingested_at=report.started_at,
        options=ChargebackOptions(
            full_scan=args.full_scan,
            max_batch_files=args.max_batch_files,
            now=args.now,
            future_allowance=options.future_allowance,
            limits=options.limits,
        ),
    )
    run_gold(spark, storage, report, gold_options)
    if args.glue_database:
        for table in CATALOG_TABLES:
            register_in_catalog(spark, args.glue_database, table.split("/")[-1], table_path(storage, table))
    counts = report.counts
    return JobResult(
        metrics={
            "silver": silver_metrics(counts),
            "chargebacks": chargeback_metrics(counts),
            "gold": {
                "GoldRowsInserted": counts["gold_rows_inserted"],
                "GoldRowsUpdated": counts["gold_rows_updated"],
                "GoldFilesScanned": counts["gold_files_scanned"],
                "GoldBytesScanned": counts["gold_bytes_scanned"],
            },
        }
    )


def silver_metrics(counts: dict) -> dict[str, int]:
    """The silver stage's CloudWatch metrics (EMF, namespace CardFeatures; alarms in modules/monitoring)."""
    return {
        "RecordsRead": counts["records_read"],
        "AcceptedRecords": counts["accepted"],
        "DuplicateRecords": counts["duplicates"],
        "QuarantinedRecords": counts["quarantined"],
        "BronzeFiles": counts["files"],
        "BronzeBytesScanned": counts["bytes_scanned"],
        # a processed file that changed since (grown, overwritten): alarmed, docs/runbook.md
        "ChangedBronzeFiles": counts.get("changed_files", 0),
        # files in ingest_dt= folders after the run's now + allowance, deferred until their time
        "FutureFolderFiles": counts.get("future_folder_files", 0),
        # a resumed batch whose files or reference data changed since it was planned: re-planned, alarmed
        "ReplannedBatches": counts.get("replanned_batches", 0),
    }


def run_gold(spark, storage, report, options: GoldOptions) -> None:
    """Gold for the mode: the stream update always; then a day's or everything's recompute."""
    from spark_jobs.gold_update import daily_recompute_range, recompute_range, update_from_changes
    from spark_jobs.maintenance import maintain_tables

    computed_at = report.started_at
    runs = [update_from_changes(spark, storage, report, computed_at=computed_at)]
    if options.mode == "daily":
        # [D, D + MAX_WINDOW + 1 d): the day's events and the rows whose windows reach back to them
        runs.append(
            recompute_range(
                spark, storage, report, computed_at=computed_at, ts_range=daily_recompute_range(options.day)
            )
        )
        with report.step("maintenance"):
            report.details["maintenance"] = maintain_tables(
                spark,
                storage,
                maintained_tables(storage),
                retention_hours=options.vacuum_retention_hours,
                vacuum_full=options.vacuum_full,
                run_id=report.run_id,
            )
    elif options.mode == "full" and runs[0].mode != "initial":  # an initial build already computed everything
        runs.append(recompute_range(spark, storage, report, computed_at=computed_at, ts_range=None))
    report.details["gold"] = [vars(run) for run in runs]
    report.add(
        gold_rows_recomputed=sum(run.rows_recomputed for run in runs),
        gold_rows_inserted=sum(run.rows_inserted for run in runs),
        gold_rows_updated=sum(run.rows_updated for run in runs),
        gold_files_scanned=sum(run.files_scanned for run in runs),
        gold_bytes_scanned=sum(run.bytes_scanned for run in runs),
    )
    # The merchant snapshot after the card rows, in every mode: full recomputes it, stream and daily absorb
    # silver's and the chargebacks' changes (merchant_features.py).
    from spark_jobs.merchant_features import update_merchant_features

    update_merchant_features(
        spark, storage, report, mode=options.mode, computed_at=computed_at, now=options.now or report.started_at
    )


def maintained_tables(storage) -> dict:
    """Every Delta table of the lake for the daily maintenance, with its declared statistics columns: silver and
    gold Z-ordered by card_id, the logs (duplicates, quarantine, replays, label quarantine) only VACUUMed, the
    unpartitioned tables stream MERGEs grow by small files OPTIMIZEd whole when changed (the merchant snapshot
    Z-ordered by merchant_id, day; the chargebacks bin-packed) and VACUUMed."""
    from spark_jobs import gold, labels, silver
    from spark_jobs.delta_tables import stats_columns
    from spark_jobs.lake import (
        CHARGEBACKS_TABLE,
        DUPLICATES_TABLE,
        GOLD_TABLE,
        LABEL_QUARANTINE_TABLE,
        MERCHANT_FEATURES_TABLE,
        QUARANTINE_REPLAYS_TABLE,
        QUARANTINE_TABLE,
        SILVER_TABLE,
        table_path,
    )
    from spark_jobs.maintenance import MaintainedTable
    from spark_jobs.merchant_features import MERCHANT_FEATURES_STATS_COLUMNS

    def log_table(table: str, columns: tuple[str, ...]) -> MaintainedTable:
        return MaintainedTable(table_path(storage, table), zorder_by=None, properties=stats_columns(*columns))

    return {
        "silver": MaintainedTable(
            table_path(storage, SILVER_TABLE), properties=stats_columns(*silver.SILVER_STATS_COLUMNS)
        ),
        "gold": MaintainedTable(table_path(storage, GOLD_TABLE), properties=stats_columns(*gold.GOLD_STATS_COLUMNS)),
        "duplicates": log_table(DUPLICATES_TABLE, silver.DUPLICATES_STATS_COLUMNS),
        "quarantine": log_table(QUARANTINE_TABLE, silver.QUARANTINE_STATS_COLUMNS),
        "quarantine_replays": log_table(QUARANTINE_REPLAYS_TABLE, silver.QUARANTINE_REPLAYS_STATS_COLUMNS),
        "label_quarantine": log_table(LABEL_QUARANTINE_TABLE, labels.LABEL_QUARANTINE_STATS_COLUMNS),
        "chargebacks": MaintainedTable(
            table_path(storage, CHARGEBACKS_TABLE),
            zorder_by=None,
            properties=stats_columns(*labels.CHARGEBACKS_STATS_COLUMNS),
            partitioned=False,
            compact=True,
        ),
        # unpartitioned, read by (merchant_id, day) (the datasets' join): Z-ordered by both
        "merchant_features": MaintainedTable(
            table_path(storage, MERCHANT_FEATURES_TABLE),
            zorder_by=MERCHANT_FEATURES_STATS_COLUMNS,
            properties=stats_columns(*MERCHANT_FEATURES_STATS_COLUMNS),
            partitioned=False,
        ),
    }


if __name__ == "__main__":
    raise SystemExit(main())
