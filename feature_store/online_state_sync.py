"""Keep the online state (feature_store/online_state.py) in line with silver after each pipeline run.

Called by the ingestion job (feature_store/ingest_features.py) after its feature writes, so after every
stream, daily and full run. Afterwards the state holds silver's events of each synced card's retention
window plus the served events not (yet) in silver that are younger than the retention:

1. **Silver wins.** Silver events changed since the sync watermark (silver's Change Data Feed, read the way
   the ingestion reads gold's: `plan_sync` falls back to a resync when the feed is no longer complete) are
   upserted, replacing a served copy of the same event (also one under another ts). Events older than
   their card's newest silver event − STATE_RETENTION are skipped (the prune would drop them).
2. **Quarantined events go.** The quarantine rows added since the watermark (the add actions of the
   quarantine table's commits) name the events the batch refused. A quarantine row keeps its record in
   `raw_record`: a conflicting_duplicate's as JSON with `event_id` and `card_id`, a contract rejection's as
   the masked line. Where both ids can be read (every conflicting_duplicate; a rejected line that is a JSON
   object with both as strings) a *served* copy of that event is removed; a silver copy stays (silver holds
   the first-seen delivery). A line that is not JSON, an unreadable file, or ids that the card-number mask
   rewrote name no event: those rows cannot be traced to a served event (the served copy then stays until
   the prune or silver's own copy replaces it).
3. **Retention by event time.** Each card with silver changes is pruned to [newest − STATE_RETENTION, ∞),
   newest being the card's newest event (silver's or a newer served one), never the wall clock: replays
   and backfills of past days behave like live traffic. A card with no new silver events is not pruned;
   its old events lie outside every later request's window anyway, and DynamoDB's TTL removes them.

`resync` (no watermark: a new deployment or another state table; `--full-resync`; or the change feed
is no longer complete) puts every silver event within its card's retention window and applies the whole
quarantine. Every step is idempotent (puts, deletes, prunes), and the watermark
`_state/online_state_sync.json` moves only after all of them, so a rerun after a failure repeats the work
harmlessly; a run with nothing new changes nothing.

No pyspark import at module level (feature_store/ ships to the serving Lambda too).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from feature_store.change_feed import ChangePlan, deleted_file_retention, latest_changes, plan_from_version
from feature_store.online_state import (
    ONLINE_STATE_FILE,
    PAYLOAD_FIELDS,
    SERVED,
    SILVER,
    STATE_RETENTION,
    TS_DIGITS,
    OnlineStateStore,
    SqliteOnlineState,
    StateEvent,
    local_state_path,
)
from spark_jobs.lake import delta_commit_uri

MAX_TS_US = 10**TS_DIGITS - 1
STATE_COLUMNS = ("card_id", "event_id", "ts_us", "amount_usd", "merchant_id", "country")
SILVER_COLUMNS = tuple(dict.fromkeys((*STATE_COLUMNS, *PAYLOAD_FIELDS, "dt")))


@dataclass(frozen=True)
class SyncOptions:
    state_name: str  # the state's identity in the watermark, e.g. "dynamodb:<table>" or "sqlite:<path>"
    retention: timedelta = STATE_RETENTION
    full_resync: bool = False
    upsert_batch: int = 5_000  # silver events per upsert_silver call (driver memory)
    # Per-card reads and prunes in flight at once: a stream batch touches thousands of cards, each a round
    # trip to DynamoDB (boto3 clients and SqliteOnlineState are thread-safe).
    call_workers: int = 8


SyncPlan = ChangePlan  # the plan's modes and reasons are change_feed's


def plan_sync(
    storage,
    silver_uri: str,
    watermark: dict | None,
    *,
    state_name: str,
    current_version: int,
    retention: timedelta,
    now: datetime,
    force_resync: bool = False,
) -> SyncPlan:
    """Incremental when silver's Change Data Feed after the watermark is still complete, else a resync."""

    if force_resync:
        return SyncPlan("resync", "requested with --full-resync", until_version=current_version)
    if watermark is None:
        return SyncPlan(
            "resync", "no sync watermark (a new deployment): every silver event", until_version=current_version
        )
    if watermark.get("state") != state_name:
        return SyncPlan(
            "resync",
            f"the watermark is for the state {watermark.get('state')!r}, not {state_name!r}: every silver event",
            until_version=current_version,
        )
    return plan_from_version(
        storage,
        silver_uri,
        table="silver",
        done=int(watermark["silver_version"]),
        current_version=current_version,
        retention=retention,
        now=now,
    )


# Silver events (transforms) -----------------------------------------------------------------------------


def with_card_newest(events, silver_snapshot):
    """`events` plus `card_newest_us`: the newest ts_us of the event's card in `silver_snapshot`. Only the
    snapshot's rows of those cards from their earliest event's `dt` on are read (a newer row cannot lie
    in an earlier partition)."""
    from pyspark.sql import functions as F

    cards = events.groupBy("card_id").agg(F.min("dt").alias("_from_dt"))
    newest = (
        silver_snapshot.join(F.broadcast(cards), "card_id")
        .where(F.col("dt") >= F.col("_from_dt"))
        .groupBy("card_id")
        .agg(F.max("ts_us").alias("card_newest_us"))
    )
    return events.join(newest, "card_id")


def within_retention(events, retention: timedelta):
    """The events no older than their card's newest − retention (the prune's bound, inclusive)."""
    from pyspark.sql import functions as F

    retention_us = _micros(retention)
    return events.where(F.col("ts_us") >= F.col("card_newest_us") - F.lit(retention_us)).select(
        *SILVER_COLUMNS, "card_newest_us"
    )


def all_silver_in_retention(silver_snapshot, retention: timedelta):
    """A resync's events: every silver event within its card's retention window, with `card_newest_us`."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_card = Window.partitionBy("card_id")
    return within_retention(silver_snapshot.withColumn("card_newest_us", F.max("ts_us").over(by_card)), retention)


def silver_events_to_sync(spark, silver_path: str, plan: SyncPlan, retention: timedelta):
    """The silver events a plan puts into the state (SILVER_COLUMNS + card_newest_us)."""

    snapshot = spark.read.format("delta").option("versionAsOf", plan.until_version).load(silver_path)
    if plan.mode == "resync":
        return all_silver_in_retention(snapshot, retention)
    change_feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", plan.since_version)
        .option("endingVersion", plan.until_version)
        .load(silver_path)
    )
    changed = latest_changes(change_feed).select(*SILVER_COLUMNS)
    return within_retention(with_card_newest(changed, snapshot), retention)


def state_event(row: dict) -> StateEvent:
    """A silver row as a state event (the fingerprint over the same payload fields silver compares)."""
    return StateEvent.from_accepted(row, origin=SILVER)


# Quarantined events ---------------------------------------------------------------------------------------


def quarantine_files_added(storage, quarantine_uri: str, after_version: int, until_version: int) -> set[str] | None:
    """Names of the data files the quarantine table's commits after_version+1..until_version added, or
    None when one of those log entries is gone (then the whole table is read)."""
    names: set[str] = set()
    for version in range(after_version + 1, until_version + 1):
        uri = delta_commit_uri(quarantine_uri, version)
        if not storage.exists(uri):
            return None
        for line in storage.read_text(uri).splitlines():
            if '"add"' in line:
                action = json.loads(line).get("add")
                if action and action.get("dataChange", True):
                    names.add(PurePosixPath(unquote(action["path"])).name)
    return names


def quarantined_event_keys(spark, quarantine_path: str, version: int, files: set[str] | None) -> list[tuple[str, str]]:
    """(card_id, event_id) of the quarantine rows (at `version`) in `files` (None: every row) whose
    raw_record names both ids."""
    from pyspark.sql import functions as F

    rows = spark.read.format("delta").option("versionAsOf", version).load(quarantine_path)
    if files is not None:
        if not files:
            return []
        file_name = F.element_at(F.split(F.col("_metadata.file_path"), "/"), -1)
        rows = rows.where(file_name.isin(sorted(files)))
    keys = (
        rows.select(
            F.get_json_object("raw_record", "$.card_id").alias("card_id"),
            F.get_json_object("raw_record", "$.event_id").alias("event_id"),
        )
        .where(F.col("card_id").isNotNull() & F.col("event_id").isNotNull())
        .distinct()
    )
    return [(row.card_id, row.event_id) for row in keys.collect()]


def remove_served(state: OnlineStateStore, keys: list[tuple[str, str]], *, workers: int = 1) -> int:
    """Remove the served copies of these events; a silver copy (the first-seen delivery) stays."""

    def is_served(key: tuple[str, str]) -> bool:
        stored = state.find(*key)
        return stored is not None and stored.origin == SERVED

    with ThreadPoolExecutor(max_workers=workers) as pool:
        flags = list(pool.map(is_served, keys))
    served = [key for key, flag in zip(keys, flags, strict=True) if flag]
    return state.remove(served) if served else 0


# The run --------------------------------------------------------------------------------------------------


def upsert_and_collect_newest(state: OnlineStateStore, events, batch: int) -> tuple[int, dict[str, int]]:
    """Upsert the events in batches from the driver; returns the count and each card's newest silver ts."""
    written = 0
    newest: dict[str, int] = {}
    pending: list[StateEvent] = []
    for row in events.toLocalIterator():
        values = row.asDict()
        pending.append(state_event(values))
        newest[values["card_id"]] = values["card_newest_us"]
        if len(pending) >= batch:
            written += state.upsert_silver(pending)
            pending = []
    if pending:
        written += state.upsert_silver(pending)
    return written, newest


def prune_cards(
    state: OnlineStateStore, newest_silver: dict[str, int], retention: timedelta, *, workers: int = 1
) -> int:
    """Prune each card to [its newest event − retention, ∞): a served event newer than silver's counts."""
    retention_us = _micros(retention)

    def prune_card(card: tuple[str, int]) -> int:
        card_id, silver_newest = card
        newer_served = state.window(card_id, silver_newest + 1, MAX_TS_US)
        newest = max([silver_newest, *(item.ts_us for item in newer_served)])
        return state.prune(card_id, newest - retention_us)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(prune_card, newest_silver.items()))


def sync_online_state(
    spark, storage, state: OnlineStateStore, options: SyncOptions, *, run_id: str, now: datetime | None = None
) -> dict:
    """One sync; returns its summary (mode, reason, versions, counts). The watermark moves last."""
    from spark_jobs import lake
    from spark_jobs.delta_tables import table_exists, table_version

    now = now or datetime.now(UTC)
    silver_uri = lake.table_uri(storage, lake.SILVER_TABLE)
    silver_path = lake.table_path(storage, lake.SILVER_TABLE)
    summary: dict = {"state": options.state_name, "upserted": 0, "removed_quarantined": 0, "pruned": 0, "cards": 0}
    if not table_exists(spark, silver_path):
        return summary | {"mode": "unchanged", "reason": "no silver table yet"}
    spark.conf.set("spark.sql.files.ignoreMissingFiles", "false")  # a missing change file must fail the read
    watermark_uri = lake.online_state_sync_watermark_uri(storage)
    # Create-only commits (lake.state_commit_log): a second writer from the same watermark fails (exit 5).
    watermark_log = lake.state_commit_log(storage, watermark_uri, what="online state sync watermark")
    watermark = watermark_log.latest()
    current = table_version(spark, silver_path)
    plan = plan_sync(
        storage,
        silver_uri,
        watermark,
        state_name=options.state_name,
        current_version=current,
        retention=deleted_file_retention(spark, silver_path),
        now=now,
        force_resync=options.full_resync,
    )
    summary.update(mode=plan.mode, reason=plan.reason, silver_version_from=_get(watermark, "silver_version"))
    summary["silver_version_to"] = current
    print(f"[{run_id}] online state: {plan.mode}: {plan.reason}", flush=True)
    newest_silver: dict[str, int] = {}
    if plan.mode != "unchanged":
        events = silver_events_to_sync(spark, silver_path, plan, options.retention)
        summary["upserted"], newest_silver = upsert_and_collect_newest(state, events, options.upsert_batch)
    quarantine_version = _sync_quarantine(spark, storage, state, plan, watermark, summary, options.call_workers)
    summary["pruned"] = prune_cards(state, newest_silver, options.retention, workers=options.call_workers)
    summary["cards"] = len(newest_silver)
    watermark_log.commit(
        {
            "sequence": watermark_log.sequence(watermark) + 1,
            "state": options.state_name,
            "silver_version": current,
            "quarantine_version": quarantine_version,
            "run_id": run_id,
            "mode": plan.mode,
            "synced_at": now.isoformat(),
        },
        run_id=run_id,
    )
    return summary


def _sync_quarantine(
    spark, storage, state, plan: SyncPlan, watermark: dict | None, summary: dict, workers: int
) -> int | None:
    """Remove the served copies of events quarantined since the watermark; returns the version read."""
    from spark_jobs import lake
    from spark_jobs.delta_tables import table_exists, table_version

    quarantine_path = lake.table_path(storage, lake.QUARANTINE_TABLE)
    if not table_exists(spark, quarantine_path):
        return None
    current = table_version(spark, quarantine_path)
    done = _get(watermark, "quarantine_version")
    files = None  # every row: a resync, or no quarantine version in the watermark
    if plan.mode != "resync" and done is not None:
        if done == current:
            return current
        if done < current:
            files = quarantine_files_added(storage, lake.table_uri(storage, lake.QUARANTINE_TABLE), done, current)
    keys = quarantined_event_keys(spark, quarantine_path, current, files)
    summary["quarantined_keys"] = len(keys)
    summary["removed_quarantined"] = remove_served(state, keys, workers=workers)
    return current


def _get(watermark: dict | None, key: str):
    return None if watermark is None else watermark.get(key)


def _micros(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


# The ingestion job's entry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineStateOptions:
    """Which online state the ingestion job syncs: a DynamoDB table (AWS) or a local SQLite file."""

    table: str | None = None  # DynamoDB table name; None: the local file
    local_path: str | None = None  # SQLite file (used when table is None)
    region: str | None = None  # DynamoDB region (default: AWS_REGION)
    resync: bool = False  # every silver event within its card's retention, whatever the watermark says

    def __post_init__(self) -> None:
        if not self.table and not self.local_path:
            raise ValueError("no online state: give a DynamoDB table or a local SQLite path")


def add_online_state_options(parser) -> None:
    """--online-state-table and --online-state-resync (feature_store/ingest_features.py)."""
    parser.add_argument(
        "--online-state-table",
        default="",
        help="DynamoDB table of the online state (request-time features), synced with silver after the feature "
        "writes; the state machines pass it (default, or empty: the local SQLite state "
        "<lake-root>/feature_store/online_state.db, beside --online-store-path for an s3:// lake)",
    )
    parser.add_argument(
        "--online-state-resync",
        action="store_true",
        help="rebuild the online state from silver (every event within its card's retention window) instead of "
        "syncing the changes since its watermark (a new deployment is detected and resynced without it)",
    )


def online_state_options(parser, args) -> OnlineStateOptions:
    """The OnlineStateOptions of parsed arguments (a usage error when an s3:// lake has no state to sync)."""
    table = args.online_state_table or None  # the local runner passes "" for the local state
    local_path = None if table else default_local_state_path(args.lake_root, getattr(args, "online_store_path", None))
    if table is None and local_path is None:
        parser.error("--online-state-table is required when --lake-root is on S3 and no --online-store-path is given")
    return OnlineStateOptions(table=table, local_path=local_path, region=args.region, resync=args.online_state_resync)


def default_local_state_path(lake_root: str, online_store_path: str | None) -> str | None:
    """The local state without --online-state-table: `<lake-root>/feature_store/online_state.db` for a local
    lake; for an S3 lake (local runs) beside the local online store; None when neither applies."""
    from spark_jobs.storage import canonical_uri, spark_path

    if not lake_root.startswith(("s3://", "s3a://")):
        return str(local_state_path(spark_path(canonical_uri(lake_root))))
    if online_store_path:
        return str(Path(online_store_path).with_name(PurePosixPath(ONLINE_STATE_FILE).name))
    return None


def open_state(options: OnlineStateOptions) -> tuple[OnlineStateStore, str, bool]:
    """The state to sync, its identity for the watermark, and whether it is new (a local file not there yet:
    a new deployment, resynced whatever the watermark says)."""
    if options.table:
        from feature_store.online_state_dynamodb import DynamoDbOnlineState

        return DynamoDbOnlineState(options.table, region=options.region), f"dynamodb:{options.table}", False
    path = Path(options.local_path).resolve()
    is_new = not path.exists()
    return SqliteOnlineState(path), f"sqlite:{path}", is_new


def run_sync(spark, storage, report, options: OnlineStateOptions) -> dict:
    """The ingestion job's sync step: open the state, sync, record the summary and counts in the report."""
    state, name, is_new = open_state(options)
    try:
        with report.step("online_state_sync"):
            summary = sync_online_state(
                spark,
                storage,
                state,
                SyncOptions(state_name=name, full_resync=options.resync or is_new),
                run_id=report.run_id,
            )
    finally:
        state.close()
    report.details["online_state"] = summary
    report.add(
        online_state_upserted=summary["upserted"],
        online_state_removed_quarantined=summary["removed_quarantined"],
        online_state_pruned=summary["pruned"],
    )
    return summary
