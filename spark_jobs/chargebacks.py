"""The chargeback feed → `silver/chargebacks` (and `silver/label_quarantine`), incrementally and exactly once.

The feed is `<lake-root>/bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/*.jsonl.gz` (contract in labels.py and
docs/contracts/chargeback_feed.md). Every run of silver_and_gold.py (every mode) calls `ingest_chargebacks` after
silver: new feed files are found through the chargeback ledger (`_state/chargeback_ledger/`, the bronze ledger's
class over report-day folders: pending plan, create-only commits, lookback listing, future folders deferred),
read by Python workers at their planned version (`LakeStorage.read_planned`, the framing caps), and parsed with
the contract. Per batch: valid records are MERGEd into `silver/chargebacks` (insert-if-absent on
(source_file, line_number)), invalid lines and unreadable files into `silver/label_quarantine`, then the ledger
commits. A run that stops between a table commit and the ledger commit leaves the batch pending; its successor
processes the same files again and the MERGEs add nothing twice, so each feed line lands exactly once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs import labels, lake
from spark_jobs.bronze_contract import DEFAULT_FRAMING_LIMITS, FUTURE_TS_ALLOWANCE, FramingLimits
from spark_jobs.bronze_ledger import REPORT_DAYS, BatchPlan, BronzeFile, BronzeLedger
from spark_jobs.delta_tables import ensure_table, insert_new_rows, stats_columns
from spark_jobs.fault_injection import fail_point
from spark_jobs.frame_cache import FrameCache
from spark_jobs.job_log import log
from spark_jobs.run_report import RunReport
from spark_jobs.storage import LakeStorage

# How far behind the ledger's latest report day a run lists (a feed file delivered late into an older day
# folder is found within it; `--full-scan` lists the whole feed). Report-day folders hold a few files each.
CHARGEBACK_LOOKBACK_DAYS = 14


@dataclass(frozen=True)
class ChargebackOptions:
    lookback_days: int = CHARGEBACK_LOOKBACK_DAYS
    full_scan: bool = False
    max_batch_files: int = 2000
    # The run's "now" (None: the clock): report-day folders starting after now + allowance wait for their day.
    now: datetime | None = None
    future_allowance: timedelta = FUTURE_TS_ALLOWANCE
    limits: FramingLimits = DEFAULT_FRAMING_LIMITS  # the framing caps, as for bronze


class ChargebackBalanceError(RuntimeError):
    """Records read != ingested + quarantined: a bug, never committed."""


def chargeback_ledger(storage: LakeStorage) -> BronzeLedger:
    """The ledger of processed feed files: `_state/chargeback_ledger/`, over `reported_dt=YYYY/MM/DD/` folders."""
    return BronzeLedger(
        storage, prefix=lake.LABELS_PREFIX, state_prefix=lake.CHARGEBACK_LEDGER_PREFIX, layout=REPORT_DAYS
    )


def ensure_chargeback_tables(spark: SparkSession, storage: LakeStorage) -> None:
    ensure_table(
        spark,
        lake.table_path(storage, lake.CHARGEBACKS_TABLE),
        labels.CHARGEBACKS_SCHEMA,
        change_data_feed=True,  # the merchant snapshot follows late chargebacks through it
        properties=stats_columns(*labels.CHARGEBACKS_STATS_COLUMNS),
    )
    ensure_table(
        spark,
        lake.table_path(storage, lake.LABEL_QUARANTINE_TABLE),
        labels.LABEL_QUARANTINE_SCHEMA,
        properties=stats_columns(*labels.LABEL_QUARANTINE_STATS_COLUMNS),
    )


def ingest_chargebacks(
    spark: SparkSession,
    storage: LakeStorage,
    report: RunReport,
    *,
    ingested_at: datetime,
    options: ChargebackOptions | None = None,
) -> None:
    """Finish a pending chargeback batch, then ingest new feed files in batches; the ledger commits last."""
    options = options or ChargebackOptions()
    ledger = chargeback_ledger(storage)
    report.add(
        chargeback_batches=0,
        chargeback_files=0,
        chargeback_empty_files=0,
        chargeback_records_read=0,
        chargebacks_ingested=0,
        chargebacks_already_ingested=0,
        chargebacks_quarantined=0,
        chargeback_changed_files=0,
        chargeback_future_files=0,
        chargeback_replanned_batches=0,
    )
    report.counts.setdefault("chargebacks_quarantined_by_reason", {})
    with report.step("chargebacks_prepare"):
        ensure_chargeback_tables(spark, storage)
    inputs = {"framing_limits": asdict(options.limits)}
    pending = ledger.pending()
    if pending:
        log.warning("resuming uncommitted chargeback batch %s of run %s", pending.batch, pending.run_id)
        pending, changes = ledger.replan_if_changed(pending, run_id=report.run_id, inputs=inputs)
        if changes:
            report.add(chargeback_replanned_batches=1)
            report.details.setdefault("chargeback_replanned_batches", []).append(
                {"batch": pending.batch, **asdict(changes)}
            )
        process_batch(spark, storage, ledger, pending, options, report, ingested_at=ingested_at)
    with report.step("chargeback_listing"):
        listing = ledger.list_new_files(
            lookback_hours=options.lookback_days * 24,
            full_scan=options.full_scan,
            now=options.now,
            allowance=options.future_allowance,
        )
        ledger.repair_high_water(report.run_id, listing)
    report.add(chargeback_changed_files=len(listing.changed), chargeback_future_files=len(listing.future_files))
    report.details["chargeback_listing"] = {
        "listed_from_day": listing.listed_from,
        "files_listed": listing.listed_files,
        "new_files": len(listing.new_files),
        "ignored_files": listing.ignored,
        "changed_files": listing.changed,
        "files_outside_day_folders": listing.outside_hour_folders,
        "future_files": [item.uri for item in listing.future_files],
    }
    if listing.changed:
        log.error(
            "%d chargeback feed file(s) changed after they were ingested (docs/runbook.md, 'Chargeback feed'): %s",
            len(listing.changed),
            [item["uri"] for item in listing.changed[:5]],
        )
    for start in range(0, len(listing.new_files), options.max_batch_files):
        files = listing.new_files[start : start + options.max_batch_files]
        plan = ledger.plan(report.run_id, files, inputs=inputs)
        process_batch(spark, storage, ledger, plan, options, report, ingested_at=ingested_at)


def process_batch(
    spark: SparkSession,
    storage: LakeStorage,
    ledger: BronzeLedger,
    plan: BatchPlan,
    options: ChargebackOptions,
    report: RunReport,
    *,
    ingested_at: datetime,
) -> None:
    readable = [item for item in plan.files if item.size > 0]
    report.add(
        chargeback_batches=1,
        chargeback_files=len(plan.files),
        chargeback_empty_files=len(plan.files) - len(readable),
    )
    if readable:
        write_batch(spark, storage, readable, options, report, ingested_at=ingested_at)
    fail_point("before_chargeback_ledger_commit")
    with report.step("chargeback_ledger_commit"):
        ledger.commit(plan, committed_by=report.run_id)
    fail_point("after_chargeback_ledger_commit")


def write_batch(
    spark: SparkSession,
    storage: LakeStorage,
    files: list[BronzeFile],
    options: ChargebackOptions,
    report: RunReport,
    *,
    ingested_at: datetime,
) -> None:
    from spark_jobs.silver_ingest import planned_files_frame

    with FrameCache() as frames:
        with report.step("parse_chargebacks"):
            parsed = frames.persist(
                labels.parse_planned_chargeback_files(
                    planned_files_frame(spark, files), read_file=storage.read_planned, limits=options.limits
                )
            )
            kinds = parsed.groupBy("kind", "reason").agg(
                F.count(F.lit(1)).alias("rows"), F.sum("file_records_read").alias("records_read")
            )
            records_read, accepted, reasons = 0, 0, {}
            for row in kinds.collect():
                if row.kind == labels.KIND_FILE:
                    records_read += int(row.records_read or 0)
                elif row.kind == labels.KIND_ACCEPTED:
                    accepted += row.rows
                if row.reason and row.kind != labels.KIND_ACCEPTED:
                    reasons[row.reason] = reasons.get(row.reason, 0) + row.rows
        quarantined = sum(reasons.values())
        if records_read != accepted + quarantined:
            raise ChargebackBalanceError(
                f"chargeback records read {records_read} != valid {accepted} + quarantined {quarantined} for files "
                f"{[item.uri for item in files[:3]]}..."
            )
        with report.step("write_chargebacks"):
            written = insert_new_rows(
                spark,
                lake.table_path(storage, lake.CHARGEBACKS_TABLE),
                labels.chargeback_rows(parsed, run_id=report.run_id, ingested_at=ingested_at),
                match_condition="t.source_file = s.source_file AND t.line_number = s.line_number",
            )
        inserted = int(written.get("rows_inserted", 0))
        fail_point("after_chargebacks_commit")
        with report.step("write_label_quarantine"):
            if quarantined:
                insert_new_rows(
                    spark,
                    lake.table_path(storage, lake.LABEL_QUARANTINE_TABLE),
                    labels.feed_quarantine_rows(parsed, run_id=report.run_id),
                    match_condition="t.source_file = s.source_file AND t.line_number <=> s.line_number",
                )
        fail_point("after_label_quarantine_commit")
    report.add(
        chargeback_records_read=records_read,
        chargebacks_ingested=inserted,
        # valid records of a resumed batch that a crashed run had already written (the MERGE added nothing)
        chargebacks_already_ingested=accepted - inserted,
        chargebacks_quarantined=quarantined,
    )
    by_reason = report.counts["chargebacks_quarantined_by_reason"]
    for reason, count in reasons.items():
        by_reason[reason] = by_reason.get(reason, 0) + count


def chargeback_metrics(counts: dict) -> dict[str, int]:
    """The chargeback stage's CloudWatch metrics (EMF, namespace CardFeatures; docs/runbook.md)."""
    return {
        "ChargebackFiles": counts.get("chargeback_files", 0),
        "ChargebackRecordsRead": counts.get("chargeback_records_read", 0),
        "ChargebacksIngested": counts.get("chargebacks_ingested", 0),
        "ChargebacksQuarantined": counts.get("chargebacks_quarantined", 0),
        # a feed file that changed after it was ingested (its new lines are not read): see the runbook
        "ChangedChargebackFiles": counts.get("chargeback_changed_files", 0),
    }
