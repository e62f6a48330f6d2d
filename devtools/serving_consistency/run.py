"""The measurement end to end: generate, build the history, serve the following days, deliver, compare."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from devtools.serving_consistency.compare import FeatureTally
from devtools.serving_consistency.pipeline import BatchPipeline
from devtools.serving_consistency.plan import US_PER_SECOND, deliver, plan_serving
from devtools.serving_consistency.reference import (
    affected_event_ids,
    gold_rows,
    merchant_reference,
    merchant_snapshot_table,
    merchant_truth,
    reference_features,
    silver_event_ids,
)
from devtools.serving_consistency.replay import REJECTED, REPLAYED, SERVED, ReplayLog, timed_serve, write_log
from spark_jobs.feature_registry import CARD_FEATURES, MAX_WINDOW, MERCHANT_FEATURES

REPLAY_LOG_FILE = "replay_log.jsonl.gz"
LAST_BATCH_FILE = "last_batch_features.json"
RUN_FACTS_FILE = "run_facts.json"  # the plan, arguments and timings, for a later --analyze-only


@dataclass(frozen=True)
class ConsistencyOptions:
    events: int = 5_000
    cards: int = 100
    days: int = 10
    start: dt.date = dt.date(2026, 1, 1)
    seed: int = 7
    history_days: int = 7  # built by the batch pipeline; the days after it are served
    holdout_share: float = 0.1  # of the served days' events: reach the platform only through bronze
    work_dir: Path = Path("/tmp/card-fraud-serving-consistency")

    def validate(self) -> None:
        if not 1 <= self.history_days < self.days:
            raise ValueError(f"--history-days must be within [1, --days), got {self.history_days} of {self.days}")

    @property
    def split_us(self) -> int:
        split = dt.datetime.combine(self.start + dt.timedelta(days=self.history_days), dt.time(), tzinfo=dt.UTC)
        return int(split.timestamp()) * US_PER_SECOND


def staged_lake(options: ConsistencyOptions, echo: Callable[[str], None]) -> Path:
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
    return generate_once(config, echo=echo)


def last_batch_features(lake: Path, card_ids: list[str]) -> dict[str, dict]:
    """The online feature store's features per card as the last batch left them (what serving replaced)."""
    from feature_store.get_features import OnlineFeatures

    with OnlineFeatures.local(str(lake)) as reader:
        return {card_id: found["features"] for card_id, found in reader.get_many(card_ids).items()}


def ingested_merchant_version(lake: Path) -> int | None:
    """The gold/merchant_features version the feature-store ingestion last wrote (its watermark entry): the
    snapshot the merchant group's online records hold while the requests are served."""
    from feature_store.definitions import merchant_feature_group_name
    from spark_jobs.lake import FEATURE_STORE_WATERMARK

    path = lake / FEATURE_STORE_WATERMARK
    if not path.exists():
        return None
    entry = (json.loads(path.read_text()).get("groups") or {}).get(merchant_feature_group_name()) or {}
    return entry.get("version")


def serve_days(lake: Path, plan, known_at_start: list[str]) -> ReplayLog:
    from feature_store.online_state import SqliteOnlineState, local_state_path
    from feature_store.serving import FeatureServer

    window_us = int(MAX_WINDOW / dt.timedelta(microseconds=1))
    server = FeatureServer.local(str(lake), allow_dev_key=True)  # the lake built with the development key
    state = SqliteOnlineState(local_state_path(lake))
    try:
        return timed_serve(server, state, plan.requests, window_us=window_us, known_at_start=known_at_start)
    finally:
        state.close()
        close = getattr(server, "close", None)
        if close is not None:
            close()


def run_consistency(options: ConsistencyOptions, pipeline: BatchPipeline, echo: Callable[[str], None] = print) -> dict:
    """Run the measurement; returns the results (see `compare_all`), the replay log under the work dir."""
    options.validate()
    started = time.perf_counter()
    staged = staged_lake(options, echo)
    lake = options.work_dir / "lake"
    if lake.exists():
        shutil.rmtree(lake)
    plan = plan_serving(staged, options.split_us, holdout_share=options.holdout_share, seed=options.seed)
    echo(f"history: {len(plan.history_folders)} arrival hours; {len(plan.requests):,} requests to serve")

    deliver(staged, lake, plan.history_folders)
    timings = {}
    step = time.perf_counter()
    pipeline.stream(lake)
    pipeline.ingest(lake)
    timings["history_batch_seconds"] = time.perf_counter() - step
    known = silver_event_ids(lake)
    merchant_version = ingested_merchant_version(lake)

    echo(f"serving {len(plan.requests):,} requests in event-time order")
    log = serve_days(lake, plan, known)
    write_log(log, options.work_dir / REPLAY_LOG_FILE)
    served_cards = sorted({record.card_id for record in log.records if record.outcome == SERVED})
    last_batch = last_batch_features(lake, served_cards)
    (options.work_dir / LAST_BATCH_FILE).write_text(json.dumps(last_batch))

    echo("delivering every later arrival hour to bronze, then a stream run")
    deliver(staged, lake, plan.later_folders)
    step = time.perf_counter()
    pipeline.stream(lake)
    timings["final_stream_seconds"] = time.perf_counter() - step
    timings["serve_seconds"] = log.seconds
    timings["serve_requests_per_second"] = len(log.records) / log.seconds if log.seconds else None
    facts = {
        "plan": plan_facts(options, plan, known_at_start=len(known)),
        "arguments": {key: str(value) for key, value in asdict(options).items()},
        "timings": timings,
        "merchant_snapshot_version": merchant_version,
    }
    (options.work_dir / RUN_FACTS_FILE).write_text(json.dumps(facts))
    results = compare_all(log, lake, last_batch, merchant_version=merchant_version) | facts
    timings["total_seconds"] = time.perf_counter() - started
    return results


def plan_facts(options: ConsistencyOptions, plan, *, known_at_start: int) -> dict:
    return {
        "split": dt.datetime.fromtimestamp(options.split_us / US_PER_SECOND, dt.UTC).isoformat(),
        "history_arrival_hours": len(plan.history_folders),
        "later_arrival_hours": len(plan.later_folders),
        "requests": len(plan.requests),
        "held_out_events": len(plan.held_out_event_ids),
        "late_history_lines": plan.late_history_lines,
        "unreadable_lines_not_served": plan.unreadable_lines,
        "unreadable_files_not_served": plan.unreadable_files,
        "events_known_at_start": known_at_start,
    }


def analyze_existing(work_dir: Path) -> dict:
    """The comparison again over a finished run's work dir (its lake, replay log and last-batch features)."""
    from devtools.serving_consistency.replay import read_log

    log = read_log(work_dir / REPLAY_LOG_FILE)
    last_batch = json.loads((work_dir / LAST_BATCH_FILE).read_text())
    facts_path = work_dir / RUN_FACTS_FILE
    facts = json.loads(facts_path.read_text()) if facts_path.exists() else {}
    lake = work_dir / "lake"
    return compare_all(log, lake, last_batch, merchant_version=facts.get("merchant_snapshot_version")) | facts


def window_sizes(records) -> dict:
    """How many state events the served requests' windows held (their own event included)."""
    sizes = sorted(len(record.state) for record in records if record.outcome == SERVED)
    if not sizes:
        return {}
    return {"mean": round(sum(sizes) / len(sizes), 2), "p99": sizes[int(0.99 * (len(sizes) - 1))], "max": sizes[-1]}


class MerchantTally:
    """The merchant features served vs gold/merchant_features' row of the event's (merchant, day) at the end:
    how many responses were flagged stale, and each mismatch explained or not.

    - A response whose event day is later than the published day P in force when it was served (the marker the
      server read; none: nothing published) MUST be flagged: unflagged, it fails the run
      (`unflagged_before_published_day`) whatever its values, because nothing told serving that day's snapshot.
    - A flagged response that differs: explained_by_stale_snapshot.
    - An unflagged response (event day <= P) that differs from the final table: explained_by_later_snapshot_change
      only when it equals the (merchant, event day) row of the table version ingestion published (late events or
      chargebacks changed that day after publication: the documented limit); otherwise unexplained (fails)."""

    FAILING = ("unflagged_before_published_day", "unexplained")

    def __init__(self) -> None:
        self.features = FeatureTally(MERCHANT_FEATURES)
        self.sources: Counter[str] = Counter()
        self.mismatches: Counter[str] = Counter()
        self.examples: list[dict] = []

    def add(self, record, truth: dict, at_ingest: dict) -> None:
        event_day = (dt.date(1970, 1, 1) + dt.timedelta(microseconds=record.ts_us)).isoformat()
        day, stale = record.merchant_snapshot_day, bool(record.merchant_snapshot_stale)
        published = record.merchant_published_day
        source = "stale" if stale else "absent" if day is None else "exact" if day == event_day else "terminal"
        self.sources[source] += 1
        matches = self.features.add(record.event_id, record.features, truth)
        if not stale and (published is None or event_day > published):  # ISO dates compare as text
            self._fail("unflagged_before_published_day", record, source)
            return
        if matches:
            return
        if stale:
            self.mismatches["explained_by_stale_snapshot"] += 1
        elif FeatureTally(MERCHANT_FEATURES).add(record.event_id, record.features, at_ingest):
            self.mismatches["explained_by_later_snapshot_change"] += 1
        else:
            self._fail("unexplained", record, source)

    def _fail(self, kind: str, record, source: str) -> None:
        self.mismatches[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(
                {
                    "kind": kind,
                    "event": record.event_id,
                    "merchant": record.merchant_id,
                    "source": source,
                    "published_day": record.merchant_published_day,
                }
            )

    def summary(self) -> dict:
        features = self.features.summary()
        return {
            "passed": all(self.mismatches[name] == 0 for name in self.FAILING),
            "responses": features["events"],
            "flagged_stale": self.sources["stale"],
            "by_source": dict(sorted(self.sources.items())),
            "served_equals_gold": features["events_all_features_match"],
            "mismatches": {
                name: self.mismatches[name]
                for name in (
                    "explained_by_stale_snapshot",
                    "explained_by_later_snapshot_change",
                    "unflagged_before_published_day",
                    "unexplained",
                )
            },
            "unexplained_examples": self.examples,
            "features": features["features"],
        }


def compare_all(
    log: ReplayLog, lake: Path, last_batch: dict[str, dict], *, merchant_version: int | None = None
) -> dict:
    """(a) served vs the reference over the logged state and the merchant snapshot the online store held,
    (b) served vs gold by affected/unaffected (card and event features) and vs gold/merchant_features (merchant
    features: stale-flagged and otherwise explained mismatches apart), and the last-batch online features vs
    gold; plus what happened to every request."""
    records = log.records
    gold = gold_rows(lake)
    reference = reference_features(records)
    ingested = merchant_snapshot_table(lake, merchant_version) if merchant_version is not None else None
    merchant_expected = merchant_reference(records, ingested)
    merchant_final = merchant_truth(records, merchant_snapshot_table(lake, None))
    merchant_at_ingest = merchant_truth(records, ingested)
    affected = affected_event_ids(records, log.known_at_start, gold)
    against_reference = FeatureTally()
    merchant_vs_gold = MerchantTally()
    served_vs_gold = {"unaffected": FeatureTally(CARD_FEATURES), "affected": FeatureTally(CARD_FEATURES)}
    last_vs_gold = {name: FeatureTally(CARD_FEATURES) for name in ("unaffected", "affected", "all")}
    first_features: dict[str, dict] = {}
    checks = Counter()
    rejected = Counter()
    for record in records:
        if record.outcome == REJECTED:
            rejected[record.reason] += 1
            continue
        if record.outcome == REPLAYED:
            checks["replayed"] += 1
            checks["replayed_same_features"] += record.features == first_features.get(record.event_id)
            continue
        checks["served"] += 1
        first_features[record.event_id] = record.features
        checks["own_event_in_state"] += any(item[0] == record.event_id for item in record.state)
        expected = merchant_expected.get(record.seq)
        card_reference = reference.get(record.seq)
        both = None if card_reference is None or expected is None else {**card_reference, **expected["features"]}
        against_reference.add(record.event_id, record.features, both)
        checks["merchant_flag_or_day_differs_from_reference"] += expected is None or (
            (bool(record.merchant_snapshot_stale), record.merchant_snapshot_day, record.merchant_published_day)
            != (expected["stale"], expected["snapshot_day"], expected["published_day"])
        )
        merchant_vs_gold.add(record, merchant_final[record.seq], merchant_at_ingest[record.seq])
        row = gold.get(record.event_id)
        if row is None:
            checks["served_not_in_gold"] += 1
        elif row["card_id"] != record.card_id or row["ts_us"] != record.ts_us:
            checks["card_or_ts_differs_from_gold"] += 1
        group = "affected" if record.event_id in affected else "unaffected"
        served_vs_gold[group].add(record.event_id, record.features, row)
        previous = last_batch.get(record.card_id)
        checks["no_last_batch_record"] += previous is None
        last_vs_gold[group].add(record.event_id, previous, row)
        last_vs_gold["all"].add(record.event_id, previous, row)
    never_served_in_gold = sum(
        1
        for record in records
        if record.outcome == REJECTED and record.event_id in gold and record.event_id not in first_features
    )
    checks["rejected_but_in_gold"] = never_served_in_gold
    reference_summary = against_reference.summary()
    unaffected = served_vs_gold["unaffected"].summary()
    passed_reference = (
        reference_summary["events_all_features_match"] == reference_summary["events"]
        and checks["merchant_flag_or_day_differs_from_reference"] == 0
    )
    passed_gold = unaffected["events_all_features_match"] == unaffected["events"] and checks["served_not_in_gold"] == 0
    merchant = merchant_vs_gold.summary()
    return {
        "passed": passed_reference and passed_gold and merchant["passed"],
        "merchant_served_vs_gold": merchant,
        "a_served_equals_reference": {"passed": passed_reference, **reference_summary},
        "b_served_equals_gold": {
            "passed_on_unaffected": passed_gold,
            "unaffected": unaffected,
            "affected": served_vs_gold["affected"].summary(),
        },
        "last_batch_online_vs_gold": {name: tally.summary() for name, tally in last_vs_gold.items()},
        "requests": {"total": len(records), **dict(checks), "rejected_by_reason": dict(sorted(rejected.items()))},
        "state_window_events": window_sizes(records),
        "affected_because": {
            "a_window_member_never_served": sum(affected.values()),
            "only_members_served_later": len(affected) - sum(affected.values()),
        },
    }
