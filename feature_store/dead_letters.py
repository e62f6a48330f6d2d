"""Dead letters: the records a Feature Store write gave up on, and their replay.

Ingestion (and a replay) writes them (ingestion.write_dead_letters) to
`<lake-root>/_dead_letter/feature_store/<run_id>.jsonl`, one JSON object a line: the dead letter of
batch_writer.py (code, message, stage, attempts, the Record and its `source` event) plus the run id.

A dead letter names its group (`feature_group`). The replay (scripts/replay_dead_letters.py) looks the
dead-lettered rows up at the table's latest version — card group: the events in gold; merchant group: the
(merchant_id, day) rows in gold/merchant_features — and sends them through the ingestion's own path
(batch_writer.py): the row as the table holds it now, to the online store too if it is still its card's
(merchant's) newest row, with the same late-data correction. Re-reading the table rather than re-sending the
stored Record means a replay can never put an older version of a record online after a later run wrote a
newer one. Records still failing go to the replay's own dead-letter file
(exit code 3); replayed files move to `_dead_letter/feature_store/replayed/`. Run it while no ingestion runs
(the state machines hold the run lease), e.g. after fixing the cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feature_store.backends import BackendOptions, IngestionBackend, open_backend
from feature_store.batch_writer import WriterOptions
from feature_store.definitions import TtlDuration, feature_group_name, merchant_feature_group_name
from feature_store.ingestion import (  # pending_files, read_dead_letters: ingestion reads them too
    DEAD_LETTER_EXIT_CODE,
    METRIC_STAGE,
    check_group,
    merchant_rows_with_online_flag,
    pending_files,
    read_dead_letters,
    with_online_flag,
    write_dead_letters,
)
from spark_jobs import lake
from spark_jobs.feature_registry import CARD, MERCHANT
from spark_jobs.storage import LakeStorage


@dataclass(frozen=True)
class DeadLetterReplayOptions:
    """Which dead-letter files to replay, into which group, and how to write."""

    run_ids: tuple[str, ...] = ()  # only these runs' files; empty: every file not yet replayed
    feature_group: str = field(default_factory=feature_group_name)  # the card group
    max_attempts: int = 8
    ttl: TtlDuration | None = None  # record-level TTL of online writes; None: the group's

    merchant_feature_group: str = field(default_factory=merchant_feature_group_name)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def writer_options(self, entity: str) -> WriterOptions:
        group = self.merchant_feature_group if entity == MERCHANT else self.feature_group
        return WriterOptions(feature_group=group, max_attempts=self.max_attempts, ttl=self.ttl, entity=entity)


def replay(spark, storage: LakeStorage, backend: IngestionBackend, report, options: DeadLetterReplayOptions) -> dict:
    """Re-send the dead letters of the chosen files; returns the summary (also in the report)."""
    from feature_store.batch_writer import WriteStats

    uris = pending_files(storage, options.run_ids)
    letters = read_dead_letters(storage, uris)
    groups = {options.feature_group: CARD, options.merchant_feature_group: MERCHANT}
    other_groups = sorted({item["feature_group"] for item in letters} - set(groups))
    if other_groups:
        raise ValueError(
            f"dead letters of {', '.join(other_groups)} found: pass --feature-group and --dead-letter-run-id"
        )
    summary = {"files": uris, "dead_letters_read": len(letters), "feature_group": options.feature_group}
    report.details["replay"] = summary
    card_letters = [item for item in letters if groups[item["feature_group"]] == CARD]
    merchant_letters = [item for item in letters if groups[item["feature_group"]] == MERCHANT]
    stats = _replay_card_letters(spark, storage, backend, report, options, card_letters)
    events = sorted({item["source"]["event_id"] for item in card_letters if item.get("source", {}).get("event_id")})
    summary["events"] = len(events)
    summary["events_not_in_gold"] = max(0, len(events) - stats.records)
    merchant_stats = _replay_merchant_letters(spark, storage, backend, report, options, merchant_letters)
    summary["merchant_snapshots"] = len(_merchant_keys(merchant_letters))
    summary["merchant_snapshots_not_found"] = max(0, summary["merchant_snapshots"] - merchant_stats.records)
    total = WriteStats()
    total.merge(stats)
    total.merge(merchant_stats)
    stats = total
    if stats.dead_letters:
        summary["dead_letter_file"] = write_dead_letters(storage, report.run_id, stats.dead_letters)
    for uri in uris:
        name = uri.rsplit("/", 1)[1]
        storage.write_text(lake.replayed_dead_letter_uri(storage, name), storage.read_text(uri))
        storage.delete(uri)
    report.add(
        records=stats.records,
        written=stats.written,
        online_records=stats.online_records,
        online_corrections=stats.online_corrections,
        dead_letters=len(stats.dead_letters),
    )
    return summary


def _replay_card_letters(spark, storage, backend, report, options: DeadLetterReplayOptions, letters: list[dict]):
    """The card group's dead letters: their events as gold holds them now."""
    from pyspark.sql import functions as F

    from feature_store.batch_writer import WriteStats

    events = sorted({item["source"]["event_id"] for item in letters if item.get("source", {}).get("event_id")})
    if not events:
        return WriteStats()
    check_group(backend.describe_group(options.feature_group), options.feature_group)
    days = sorted({item["source"]["dt"] for item in letters if item.get("source", {}).get("dt")})
    gold = spark.read.format("delta").load(lake.table_path(storage, lake.GOLD_TABLE))
    changed = gold.where(F.col("dt").isin(days)).where(F.col("event_id").isin(events))
    rows = with_online_flag(changed, gold.where(F.col("dt") >= F.lit(days[0])))
    with report.step("write"):
        return backend.write(spark, rows, options.writer_options(CARD))


def _merchant_keys(letters: list[dict]) -> set[tuple[str, str]]:
    keys = set()
    for item in letters:
        source = item.get("source") or {}
        if source.get("merchant_id") and source.get("day"):
            keys.add((source["merchant_id"], source["day"]))
    return keys


def _replay_merchant_letters(spark, storage, backend, report, options: DeadLetterReplayOptions, letters: list[dict]):
    """The merchant group's dead letters: their (merchant_id, day) rows as gold/merchant_features holds them now."""
    from datetime import date

    from pyspark.sql import functions as F

    from feature_store.batch_writer import WriteStats

    keys = _merchant_keys(letters)
    if not keys:
        return WriteStats()
    check_group(backend.describe_group(options.merchant_feature_group), options.merchant_feature_group)
    snapshots = spark.read.format("delta").load(lake.table_path(storage, lake.MERCHANT_FEATURES_TABLE))
    wanted = spark.createDataFrame(
        [(merchant, date.fromisoformat(day)) for merchant, day in sorted(keys)], "merchant_id string, day date"
    )
    first_day = min(date.fromisoformat(day) for _, day in keys)
    changed = snapshots.join(F.broadcast(wanted), ["merchant_id", "day"])
    rows = merchant_rows_with_online_flag(changed, snapshots.where(F.col("day") >= F.lit(first_day)))
    with report.step("write_merchant_features"):
        return backend.write(spark, rows, options.writer_options(MERCHANT))


def run_dead_letter_replay(
    storage: LakeStorage,
    report,
    options: DeadLetterReplayOptions,
    backend_options: BackendOptions,
    *,
    endpoint_url: str | None = None,
):
    """The replay job's body: open the backend, replay, close; exit code 3 when records still fail."""
    from spark_jobs.job_run import JobResult
    from spark_jobs.session import build_spark_session

    backend = open_backend(backend_options, storage.root)
    try:
        spark = build_spark_session("replay_dead_letters", s3_endpoint_url=endpoint_url)
        replay(spark, storage, backend, report, options)
    finally:
        backend.close()
    dead = report.counts.get("dead_letters", 0)
    return JobResult(
        status="dead_lettered" if dead else "succeeded",
        metrics={METRIC_STAGE: {"FeatureStoreDeadLetters": dead}},
        exit_code=DEAD_LETTER_EXIT_CODE if dead else 0,
    )
