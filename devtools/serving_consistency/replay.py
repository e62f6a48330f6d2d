"""Serve the planned requests one by one through `FeatureServer.serve` and log what each one saw.

The log is the measurement's evidence: per request its serve sequence number, the outcome (served,
replayed, rejected with the reason), the features returned and — read from the state right after the
serve, in the same single thread, so nothing else wrote in between — the card's window of state events
the computation had (the request's own event included, as written back), and its merchant features' source
(the merchant, the day of its snapshot record, the `merchant_snapshot_stale` flag, the published day P).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from devtools.serving_consistency.plan import BronzeLine

SERVED = "served"
REPLAYED = "replayed"
REJECTED = "rejected"


@dataclass
class ServeRecord:
    """One request of the replay log."""

    seq: int
    folder: str
    file: str
    line_number: int
    outcome: str  # SERVED, REPLAYED or REJECTED
    event_id: str | None = None  # the response's (or, when rejected, the line's claimed one)
    card_id: str | None = None
    ts_us: int | None = None
    reason: str | None = None
    features: dict[str, Any] | None = None
    # the card's state events in [ts_us - longest window, ts_us] as the computation saw them:
    # [event_id, ts_us, amount_usd (text), merchant_id, country, origin]
    state: list[list] = field(default_factory=list)
    # the merchant features' source: the merchant, its online record's day (None: no record), the stale flag
    merchant_id: str | None = None
    merchant_snapshot_day: str | None = None
    merchant_snapshot_stale: bool | None = None
    # P in force when it was served: the newest snapshot day published online (the marker; None: none)
    merchant_published_day: str | None = None


@dataclass
class ReplayLog:
    known_at_start: list[str]  # event ids in silver (and so in the synced state) before the first request
    records: list[ServeRecord]
    seconds: float = 0.0


def arrival_of(folder: str) -> datetime:
    """A line's arrival as silver bounds it: the end of its folder's hour plus the job's default buffering (its
    file's LastModified, when the lake was generated, is later)."""
    from spark_jobs.bronze_ledger import MAX_FIREHOSE_BUFFERING, hour_start

    return hour_start(folder.removeprefix("ingest_dt=")) + timedelta(hours=1) + MAX_FIREHOSE_BUFFERING


def serve_in_order(server, state, requests: Iterable[BronzeLine], *, window_us: int) -> list[ServeRecord]:
    """Serve each request with write-back, in the given order; return the log records."""
    from feature_store.serving import ServingRejected

    records = []
    for seq, line in enumerate(requests, start=1):
        record = ServeRecord(seq, line.folder, line.file, line.line_number, SERVED)
        try:
            # received when its file arrived, as silver judges the line (future_timestamp after it + the allowance)
            served = server.serve(line.body, received_at=arrival_of(line.folder))
        except ServingRejected as rejected:
            record.outcome, record.reason, record.event_id = REJECTED, rejected.reason, line.event_id
            records.append(record)
            continue
        record.event_id, record.card_id, record.ts_us = served.event_id, served.card_id, served.ts_us
        record.features = dict(served.features)
        merchant = served.as_json()
        record.merchant_id = served.merchant_id
        record.merchant_snapshot_day = merchant.get("merchant_snapshot_day")
        record.merchant_snapshot_stale = merchant.get("merchant_snapshot_stale")
        record.merchant_published_day = merchant.get("merchant_published_day")
        if served.replayed:
            record.outcome = REPLAYED
        else:
            seen = state.window(served.card_id, served.ts_us - window_us, served.ts_us)
            record.state = [
                [item.event_id, item.ts_us, str(item.amount_usd), item.merchant_id, item.country, item.origin]
                for item in seen
            ]
        records.append(record)
    return records


def _json_value(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def write_log(log: ReplayLog, path: Path) -> None:
    """The log as gzip JSON lines: a header with the event ids known at start, then one line per request."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"known_at_start": log.known_at_start, "seconds": log.seconds}) + "\n")
        for record in log.records:
            row = asdict(record)
            if row["features"] is not None:
                row["features"] = {name: _json_value(value) for name, value in row["features"].items()}
            handle.write(json.dumps(row, separators=(",", ":")) + "\n")


def timed_serve(server, state, requests: list[BronzeLine], *, window_us: int, known_at_start: list[str]) -> ReplayLog:
    started = time.perf_counter()
    records = serve_in_order(server, state, requests, window_us=window_us)
    return ReplayLog(known_at_start=known_at_start, records=records, seconds=time.perf_counter() - started)


def read_log(path: Path) -> ReplayLog:
    """A log written by `write_log` (features read back with decimals as text: compare by value)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = json.loads(handle.readline())
        records = [ServeRecord(**json.loads(line)) for line in handle]
    return ReplayLog(known_at_start=header["known_at_start"], records=records, seconds=header["seconds"])
