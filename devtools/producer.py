"""Send card-authorization events to the Kinesis data stream, as the card processor does.

    scripts/produce_events.py --stream card-authorization-stream                        generated events
    scripts/produce_events.py --stream card-authorization-stream --file events.ndjson   lines of NDJSON files
    scripts/produce_events.py --stream S --endpoint-url http://127.0.0.1:5000           a moto server

Generated events come from scripts/generate_transactions.py (same options, dirt included unless --clean),
sent in the order they arrive at Firehose. Each record is one JSON line without its trailing newline (the
delivery stream's AppendDelimiterToRecord processor adds it in S3), partition key `card_id` (a line without
a readable card_id is keyed by a hash of its bytes, so it still lands somewhere and silver quarantines it).

PutRecords limits (Kinesis Data Streams API reference): at most 500 records per request, at most 1 MiB per
record counting data and partition key, at most 5 MiB per request including partition keys. A record over
1 MiB is rejected here and counted. A response's failed records (those with an ErrorCode, e.g.
ProvisionedThroughputExceededException) and only those are sent again, with exponential backoff and full
jitter, up to --max-attempts; the last line counts what was sent, re-sent, failed and rejected. The exit
code is 0 only when every record was accepted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

MAX_RECORDS_PER_REQUEST = 500
MAX_RECORD_BYTES = 1024 * 1024  # data + partition key
MAX_REQUEST_BYTES = 5 * 1024 * 1024  # all data + partition keys of one request
MAX_PARTITION_KEY_CHARS = 256


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    data: bytes
    partition_key: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode("utf-8"))


@dataclass
class ProducerSummary:
    records: int = 0
    sent: int = 0
    bytes_sent: int = 0
    requests: int = 0
    resent: int = 0
    failed: int = 0
    rejected: int = 0
    error_codes: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def one_line(self, stream: str) -> str:
        codes = ", ".join(f"{code} ×{count}" for code, count in sorted(self.error_codes.items())) or "none"
        return (
            f"produce_events: {self.sent:,} of {self.records:,} records ({self.bytes_sent:,} bytes) sent to {stream} "
            f"in {self.requests:,} PutRecords requests; re-sent {self.resent:,} after partial failures (error codes: "
            f"{codes}); failed {self.failed:,}; rejected {self.rejected:,} over 1 MiB; {self.seconds:.1f}s"
        )


def record_for_line(line: str | bytes) -> KinesisRecord | None:
    """One NDJSON line → a record: no line terminator, partition key card_id. Blank lines give None."""
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    text = text.rstrip("\r\n").lstrip("\ufeff")
    if not text.strip():
        return None
    data = text.encode("utf-8")
    key = None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("card_id"), str) and value["card_id"]:
        key = value["card_id"][:MAX_PARTITION_KEY_CHARS]
    return KinesisRecord(data=data, partition_key=key or hashlib.md5(data).hexdigest())


def lines_of_file(path: Path) -> Iterator[bytes]:
    """Lines of an NDJSON file, gzip or plain (a .gz suffix is not required)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    yield from data.splitlines()


@dataclass(frozen=True)
class GeneratedEvents:
    """What to generate when no file is given (the generator's options; `clean`: no dirt at all)."""

    events: int = 1000
    cards: int = 100
    days: int = 1
    start: date = date(2026, 1, 1)
    seed: int = 42
    clean: bool = False


def generated_lines(options: GeneratedEvents) -> Iterator[bytes]:
    """Lines of a freshly generated bronze lake, in arrival order (Firehose's own folder and file order)."""
    from devtools.generator import GeneratorConfig, generate_lake

    rates = dict(bad_rate=0.0, dup_rate=0.0, conflict_rate=0.0, late_rate=0.0) if options.clean else {}
    with tempfile.TemporaryDirectory(prefix="produce-events-") as folder:
        config = GeneratorConfig(
            events=options.events,
            cards=options.cards,
            days=options.days,
            start=options.start,
            seed=options.seed,
            lake_root=Path(folder),
            **rates,
        )
        generate_lake(config)
        bronze = Path(folder) / "bronze" / "streaming" / "card_authorization"
        for path in sorted(p for p in bronze.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))):
            try:
                lines = list(lines_of_file(path))
            except (OSError, EOFError):  # the generator's deliberately truncated file: nothing to send
                continue
            # The generator's line_too_long lines (over 1 MiB) stand for what Firehose makes of records sent
            # without line breaks; no single Kinesis record can carry one, so they are not sent.
            yield from (line for line in lines if len(line) < MAX_RECORD_BYTES)


def request_batches(records: Iterable[KinesisRecord]) -> Iterator[list[KinesisRecord]]:
    """Consecutive records grouped within the per-request count and size limits."""
    batch: list[KinesisRecord] = []
    size = 0
    for record in records:
        if batch and (len(batch) == MAX_RECORDS_PER_REQUEST or size + record.size > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record.size
    if batch:
        yield batch


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base × 2^attempt)]."""
    return rng.uniform(0, min(cap, base * 2**attempt))


def put_records(
    client: Any,
    stream: str,
    records: Iterable[KinesisRecord],
    *,
    max_attempts: int = 8,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProducerSummary:
    """Send every record; re-send only the failed entries of a response, with backoff, up to max_attempts."""
    rng = rng or random.Random()
    summary = ProducerSummary()
    started = time.monotonic()
    target = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}

    def accepted(stream_records: Iterable[KinesisRecord]) -> Iterator[KinesisRecord]:
        for record in stream_records:
            summary.records += 1
            if record.size > MAX_RECORD_BYTES:
                summary.rejected += 1
                continue
            yield record

    for batch in request_batches(accepted(records)):
        pending = batch
        for attempt in range(max_attempts):
            response = client.put_records(
                Records=[{"Data": record.data, "PartitionKey": record.partition_key} for record in pending], **target
            )
            summary.requests += 1
            results = response["Records"]
            failed = [record for record, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
            summary.error_codes.update(result["ErrorCode"] for result in results if result.get("ErrorCode"))
            summary.sent += len(pending) - len(failed)
            summary.bytes_sent += sum(record.size for record in pending) - sum(record.size for record in failed)
            if not failed:
                break
            if attempt + 1 == max_attempts:
                summary.failed += len(failed)
                break
            summary.resent += len(failed)
            sleep(backoff_seconds(attempt, base=base_delay, cap=max_delay, rng=rng))
            pending = failed
        if progress and summary.requests % 50 == 0:
            progress(f"produce_events: {summary.sent:,} records sent")
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def kinesis_client(endpoint_url: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(retries={"mode": "standard", "max_attempts": 10}),
    )


@dataclass(frozen=True)
class ProduceOptions:
    """Where to send (stream name or ARN, endpoint, region) and what: the lines of `files`, else generated events."""

    stream: str
    endpoint_url: str | None = None
    region: str | None = None
    files: tuple[Path, ...] = ()
    generated: GeneratedEvents = field(default_factory=GeneratedEvents)
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")


def produce(options: ProduceOptions) -> int:
    """Send every record and print the summary line: 0 when every record was accepted, else 1."""
    if options.files:
        lines = (line for path in options.files for line in lines_of_file(path))
    else:
        lines = generated_lines(options.generated)
    records = (record for record in map(record_for_line, lines) if record is not None)
    summary = put_records(
        kinesis_client(options.endpoint_url, options.region),
        options.stream,
        records,
        max_attempts=options.max_attempts,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(summary.one_line(options.stream), flush=True)
    return 0 if summary.failed == 0 and summary.rejected == 0 else 1
