"""Writing Records to a feature group: the online/offline split, the late-data correction, batching,
retries and dead letters. The same function runs against SageMaker's featurestore-runtime client (on the
executors, one client per partition) and against the local backend (on the driver), so both backends see
the same request sequence. It writes either group (definitions.py): "card" below is the record identifier
(`card_id`, or `merchant_id` for the merchant group, whose newest row is the merchant's newest snapshot day).

For a chunk of records (see docs/feature_store.md, "Request sequence"):
1. BatchGetRecord (≤ 100 identifiers a call, only `event_time`) for the cards whose newest gold row is in
   the chunk: the event time the online store holds.
2. The online store never moves backward in event time. A card whose stored event time is newer than the
   new record's (a slower writer or a replay of an older gold version got there first): the row goes to the
   offline store only, nothing online is written or deleted. Equal (late data changed the record of the
   stored event time, which a write alone would not replace): GetRecord of the whole stored record, then
   DeleteRecord with DeletionMode=HardDelete, TargetStores=[OnlineStore] and EventTime = stored + 1 ms (the
   API requires a delete's EventTime to be later than the stored one, so a record written meanwhile with a
   later event time makes the delete fail instead of being removed), which removes the record completely.
3. BatchWriteRecord (≤ 25 entries a call): the newest row of a card with TargetStores=[OnlineStore,
   OfflineStore], every other row with TargetStores=[OfflineStore].
4. A card whose record step 2 deleted and whose corrected write then failed (a dead letter) gets its old
   record back (BatchWriteRecord, TargetStores=[OnlineStore]) before the chunk ends: never left without one.

Retries: throttling, 5xx and connection errors of a call, per-entry errors with a retryable code and
UnprocessedEntries are retried with exponential backoff and full jitter, re-batched into full batches;
ValidationError (and any other non-retryable entry error) is never retried. After the last attempt a record
becomes a dead letter (code, message, stage). A call failing with an error that no retry can fix
(AccessForbidden, ResourceNotFound, bad credentials) raises `FeatureStoreUnavailable`: the run stops
without moving its watermark.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feature_store.definitions import (
    EVENT_TIME_FEATURE,
    GROUP_ENTITIES,
    OFFLINE_STORE,
    ONLINE_STORE,
    RECORD_IDENTIFIER,
    TtlDuration,
)
from feature_store.records import RecordError, event_time_ms, event_time_text, record_value, to_record
from spark_jobs.feature_registry import CARD, MERCHANT

MAX_BATCH_WRITE_ENTRIES = 25  # BatchWriteRecord: Entries 1–25
MAX_BATCH_GET_IDENTIFIERS = 100  # BatchGetRecord: RecordIdentifiersValueAsString 1–100
DEFAULT_CHUNK_RECORDS = 500  # records planned together (one read, the deletes, then the writes)

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "ConnectionError",
        "Unprocessed",
    }
)
VALIDATION_ERROR = "ValidationError"
HARD_DELETE = "HardDelete"


class FeatureStoreUnavailable(RuntimeError):
    """A call failed with an error that retrying cannot fix (permissions, missing group, credentials)."""


@dataclass
class PendingRecord:
    """One row to write. `online`: it is its record identifier's newest row at the version read (a card's
    newest gold row, a merchant's newest snapshot day), so it goes to the online store too. `source` (gold:
    event_id, ts_us, dt; merchant snapshot: merchant_id, day) travels into dead letters for the replay."""

    record: list[dict[str, str]]
    online: bool
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def record_identifier(self) -> str:
        """The identifier's feature name (`card_id` or `merchant_id`)."""
        names = [value["FeatureName"] for value in self.record if value["FeatureName"] in GROUP_ENTITIES]
        return names[0] if names else RECORD_IDENTIFIER

    @property
    def card_id(self) -> str:
        """The record identifier's value (a card id, or a merchant id in the merchant group)."""
        return record_value(self.record, self.record_identifier) or ""

    record_id = card_id

    @property
    def event_time(self) -> str:
        return record_value(self.record, EVENT_TIME_FEATURE) or ""


@dataclass
class WriterOptions:
    feature_group: str
    max_attempts: int = 8
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 20.0
    ttl: TtlDuration | None = None  # record-level TtlDuration on online writes; None: the group's TTL
    chunk_records: int = DEFAULT_CHUNK_RECORDS
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] | None = None  # uniform in [0, 1); None: each process's own random.random
    entity: str = CARD  # which row kind the rows are (to_record): card_id (gold rows) or merchant_id (snapshots)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.entity not in GROUP_ENTITIES:
            raise ValueError(f"entity must be one of {', '.join(GROUP_ENTITIES)}, got {self.entity!r}")

    def backoff_seconds(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base × 2^(attempt-1)))."""
        draw = (self.jitter or random.random)()
        return draw * min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))


@dataclass
class WriteStats:
    records: int = 0
    online_records: int = 0
    offline_only_records: int = 0
    written: int = 0
    online_corrections: int = 0  # HardDelete + write (late data changed the stored event time's record)
    online_skipped_older: int = 0  # online rows older than the online record: offline only (never backward)
    online_restored: int = 0  # records a correction deleted whose write failed, put back (see _restore_online)
    retries: int = 0  # records or calls sent again
    calls: Counter = field(default_factory=Counter)  # operation -> calls
    entries_per_call: Counter = field(default_factory=Counter)  # BatchWriteRecord: entries in a call -> calls
    error_codes: Counter = field(default_factory=Counter)
    dead_letters: list[dict] = field(default_factory=list)

    def merge(self, other: WriteStats | dict) -> None:
        data = other if isinstance(other, dict) else other.as_dict()
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + data.get(name, 0))
        self.calls.update(data["calls"])
        self.entries_per_call.update({int(size): count for size, count in data["entries_per_call"].items()})
        self.error_codes.update(data["error_codes"])
        self.dead_letters.extend(data["dead_letters"])

    def as_dict(self) -> dict:
        return {
            "records": self.records,
            "online_records": self.online_records,
            "offline_only_records": self.offline_only_records,
            "written": self.written,
            "online_corrections": self.online_corrections,
            "online_skipped_older": self.online_skipped_older,
            "online_restored": self.online_restored,
            "retries": self.retries,
            "calls": dict(self.calls),
            "entries_per_call": {str(size): count for size, count in sorted(self.entries_per_call.items())},
            "error_codes": dict(self.error_codes),
            "dead_letters": self.dead_letters,
        }


_COUNTS = (
    "records",
    "online_records",
    "offline_only_records",
    "written",
    "online_corrections",
    "online_skipped_older",
    "online_restored",
    "retries",
)


def _error_code_and_message(error: Exception) -> tuple[str, str, int | None]:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return details.get("Code", "Unknown"), details.get("Message", str(error)), status
    return "ConnectionError", f"{type(error).__name__}: {error}", None


def _connection_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    return (ClientError, ConnectionError, HTTPClientError)


def is_retryable(code: str, status: int | None = None) -> bool:
    if code == VALIDATION_ERROR:
        return False
    return code in RETRYABLE_CODES or (status is not None and (status >= 500 or status == 429))


def _entry_key(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, default=str)


class _Attempted:
    """A record on its way through the writes: how often it was sent and the last error."""

    __slots__ = ("attempts", "entry", "last_error", "pending")

    def __init__(self, pending: PendingRecord, entry: dict) -> None:
        self.pending = pending
        self.entry = entry
        self.attempts = 0
        self.last_error: tuple[str, str] = ("", "")


def write_records(
    client: Any, records: Iterable[PendingRecord], options: WriterOptions, stats: WriteStats | None = None
) -> WriteStats:
    """Write every record (or dead-letter it); return what happened. `client` is a
    sagemaker-featurestore-runtime client or the local backend's `LocalFeatureStoreRuntime`."""
    stats = stats if stats is not None else WriteStats()
    for chunk in _chunks(iter(records), options.chunk_records):
        _write_chunk(client, chunk, options, stats)
    return stats


SOURCE_COLUMNS = ("event_id", "ts_us", "dt")
MERCHANT_SOURCE_COLUMNS = ("merchant_id", "day", "snapshot_start_us")
_DATE_COLUMNS = ("dt", "day")


def pending_from_rows(rows: Iterable[dict], options: WriterOptions, stats: WriteStats) -> Iterator[PendingRecord]:
    """Rows of the options' entity (gold rows or merchant snapshot rows, with `online`) as PendingRecords;
    a row `to_record` rejects becomes a dead letter."""
    columns = MERCHANT_SOURCE_COLUMNS if options.entity == MERCHANT else SOURCE_COLUMNS
    for row in rows:
        source = {name: (str(row[name]) if name in _DATE_COLUMNS else row[name]) for name in columns if name in row}
        try:
            record = to_record(row, options.entity)
        except RecordError as error:
            stats.records += 1
            broken = PendingRecord(
                record=[], online=bool(row.get("online")), source=source | {options.entity: row.get(options.entity)}
            )
            stats.dead_letters.append(
                dead_letter(broken, options, code="InvalidRecord", message=str(error), stage="serialize", attempts=0)
            )
            continue
        yield PendingRecord(record=record, online=bool(row["online"]), source=source)


def write_rows(client: Any, rows: Iterable[dict], options: WriterOptions) -> WriteStats:
    """`write_records` for rows of the options' entity (dicts with the gold or merchant snapshot columns and
    `online`)."""
    stats = WriteStats()
    return write_records(client, pending_from_rows(rows, options, stats), options, stats)


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dead_letter(pending: PendingRecord, options: WriterOptions, *, code: str, message: str, stage: str, attempts: int):
    identifier = pending.record_identifier if pending.record else options.entity
    record_id = pending.record_id or pending.source.get(identifier) or ""
    return {
        "feature_group": options.feature_group,
        # the record identifier under its own name (card_id or merchant_id), and as record_id for any group
        identifier: record_id,
        "record_id": record_id,
        "event_time": pending.event_time,
        "online": pending.online,
        "record": pending.record,
        "source": pending.source,
        "stage": stage,
        "error_code": code,
        "error_message": message,
        "attempts": attempts,
        "failed_at": datetime.now(UTC).isoformat(),
    }


def _write_chunk(client: Any, chunk: list[PendingRecord], options: WriterOptions, stats: WriteStats) -> None:
    stats.records += len(chunk)
    online = [item for item in chunk if item.online]
    stats.online_records += len(online)
    stats.offline_only_records += len(chunk) - len(online)
    stored, read_failures = read_online_event_times(client, [item.card_id for item in online], options, stats)
    to_write: list[PendingRecord] = [item for item in chunk if not item.online]
    deleted: dict[str, list[dict]] = {}  # card_id -> the online record a correction deleted (to restore)
    for item in online:
        if item.card_id in read_failures:
            code, message, attempts = read_failures[item.card_id]
            stats.dead_letters.append(
                dead_letter(item, options, code=code, message=message, stage="read", attempts=attempts)
            )
            continue
        try:
            new_ms = event_time_ms(item.event_time)
            stored_ms = _stored_ms(stored.get(item.card_id))
        except RecordError as error:
            stats.dead_letters.append(
                dead_letter(item, options, code="InvalidRecord", message=str(error), stage="plan", attempts=0)
            )
            continue
        if stored_ms is not None and stored_ms > new_ms:
            to_write.append(_offline_only(item, stats))  # never move the online store backward in event time
            continue
        if stored_ms == new_ms:
            outcome = _correct(client, item, new_ms, options, stats)
            if outcome == "newer":
                to_write.append(_offline_only(item, stats))
                continue
            if outcome is None:
                continue  # dead-lettered
            if outcome:
                deleted[item.card_id] = outcome
        to_write.append(item)
    letters_before = len(stats.dead_letters)
    _batch_write(client, to_write, options, stats)
    failed = {letter["record_id"] for letter in stats.dead_letters[letters_before:] if letter["online"]}
    _restore_online(client, {card: record for card, record in deleted.items() if card in failed}, options, stats)


def _stored_ms(event_time: str | None) -> int | None:
    return None if event_time is None else event_time_ms(event_time)


def _offline_only(item: PendingRecord, stats: WriteStats) -> PendingRecord:
    """The row for the offline store alone: the online store holds a newer record (a slower writer, a replay
    of an older gold version), which an older row must neither overwrite nor delete."""
    stats.online_skipped_older += 1
    return PendingRecord(record=item.record, online=False, source=item.source)


def _correct(client: Any, item: PendingRecord, new_ms: int, options: WriterOptions, stats: WriteStats):
    """The late-data correction of a card whose online record has the new row's event time: read the whole
    record (to restore it if the write then fails), then HardDelete it at stored + 1 ms. Returns the deleted
    record, [] when the record is gone meanwhile (nothing to delete), "newer" when a newer record was written
    meanwhile (never moved backward), None when dead-lettered."""
    current, failure = _get_online_record(client, item.card_id, options, stats)
    if failure is None and current is None:
        return []
    if failure is None:
        try:
            current_ms = event_time_ms(record_value(current, EVENT_TIME_FEATURE) or "")
        except RecordError as error:
            failure = ("InvalidRecord", f"stored record: {error}", 1)
        else:
            if current_ms > new_ms:
                return "newer"
            failure = _hard_delete_online(
                client, item.card_id, event_time_text((current_ms + 1) * 1000), options, stats
            )
            if failure is None:
                stats.online_corrections += 1
                return current
    code, message, attempts = failure
    stats.dead_letters.append(dead_letter(item, options, code=code, message=message, stage="delete", attempts=attempts))
    return None


def _get_online_record(
    client: Any, card_id: str, options: WriterOptions, stats: WriteStats
) -> tuple[list[dict] | None, tuple[str, str, int] | None]:
    """GetRecord of the whole online record: (record or None when absent, None) or (None, failure)."""
    response, failure = _call_with_retries(
        "GetRecord",
        lambda: client.get_record(FeatureGroupName=options.feature_group, RecordIdentifierValueAsString=card_id),
        options,
        stats,
    )
    if failure is not None:
        return None, failure
    return (response.get("Record") or None), None


def _call_with_retries(
    operation: str,
    call: Callable[[], Any],
    options: WriterOptions,
    stats: WriteStats,
    *,
    give_up_on: tuple[str, ...] = (),
) -> tuple[Any, tuple[str, str, int] | None]:
    """One single-record call under the writer's retry rules: (response, None) once it succeeds; (None, (code,
    message, attempts)) after the last retryable failure, or at once for a code in `give_up_on` (the record's
    own fault). A code no retry can fix (permissions, missing group) raises FeatureStoreUnavailable."""
    last = ("", "", 0)
    for attempt in range(1, options.max_attempts + 1):
        if attempt > 1:
            stats.retries += 1
            options.sleep(options.backoff_seconds(attempt - 1))
        stats.calls[operation] += 1
        try:
            return call(), None
        except _connection_errors() as error:
            code, message, status = _error_code_and_message(error)
            stats.error_codes[code] += 1
            if code in give_up_on:
                return None, (code, message, attempt)
            if not is_retryable(code, status):
                raise FeatureStoreUnavailable(f"{operation} on {options.feature_group}: {code}: {message}") from error
            last = (code, message, attempt)
    return None, last


def _restore_online(client: Any, deleted: dict[str, list[dict]], options: WriterOptions, stats: WriteStats) -> None:
    """Put back the online records a correction deleted whose corrected write then failed, so the run never
    leaves a card without its online record (the dead letter's replay corrects it later). The store is empty
    for the card, so the old record's event time is accepted. A restore that fails too is a dead letter."""
    if not deleted:
        return
    restores = [
        PendingRecord(record=record, online=True, source={"record_id": card, "restore": True})
        for card, record in deleted.items()
    ]
    letters_before = len(stats.dead_letters)
    written_before = stats.written
    _batch_write(client, restores, options, stats, online_only=True)
    stats.written = written_before  # restores are not new records
    for letter in stats.dead_letters[letters_before:]:
        letter["stage"] = "restore"
    stats.online_restored += len(restores) - (len(stats.dead_letters) - letters_before)


def read_online_event_times(
    client: Any, card_ids: list[str], options: WriterOptions, stats: WriteStats
) -> tuple[dict[str, str], dict[str, tuple[str, str, int]]]:
    """card_id -> the event time its online record holds (absent: no record), and the cards whose read
    failed for good: card_id -> (code, message, attempts)."""
    found: dict[str, str] = {}
    failed: dict[str, tuple[str, str, int]] = {}
    unique = list(dict.fromkeys(card_ids))
    for start in range(0, len(unique), MAX_BATCH_GET_IDENTIFIERS):
        pending = unique[start : start + MAX_BATCH_GET_IDENTIFIERS]
        attempt = 0
        last: dict[str, tuple[str, str]] = {}
        while pending:
            attempt += 1
            if attempt > 1:
                stats.retries += 1
                options.sleep(options.backoff_seconds(attempt - 1))
            retry = _get_event_times(
                client, pending, options, stats, attempt=attempt, found=found, failed=failed, last=last
            )
            if retry and attempt >= options.max_attempts:
                for card_id in retry:
                    code, message = last[card_id]
                    failed[card_id] = (code, message, attempt)
                retry = []
            pending = list(dict.fromkeys(retry))
    return found, failed


def _get_event_times(
    client: Any,
    card_ids: list[str],
    options: WriterOptions,
    stats: WriteStats,
    *,
    attempt: int,
    found: dict[str, str],
    failed: dict[str, tuple[str, str, int]],
    last: dict[str, tuple[str, str]],
) -> list[str]:
    """One BatchGetRecord of ≤ 100 cards: fills `found`, `failed` (for good) and `last` (each card's last
    error); returns the cards to ask again."""
    stats.calls["BatchGetRecord"] += 1
    try:
        response = client.batch_get_record(
            Identifiers=[
                {
                    "FeatureGroupName": options.feature_group,
                    "RecordIdentifiersValueAsString": card_ids,
                    "FeatureNames": [EVENT_TIME_FEATURE],
                }
            ]
        )
    except _connection_errors() as error:
        code, message, status = _error_code_and_message(error)
        stats.error_codes[code] += 1
        if not is_retryable(code, status):
            raise FeatureStoreUnavailable(f"BatchGetRecord on {options.feature_group}: {code}: {message}") from error
        last.update(dict.fromkeys(card_ids, (code, message)))
        return list(card_ids)
    retry: list[str] = []
    for result in response.get("Records", []):
        event_time = record_value(result["Record"], EVENT_TIME_FEATURE)
        if event_time is not None:
            found[result["RecordIdentifierValueAsString"]] = event_time
    for error in response.get("Errors", []):
        card_id, code = error["RecordIdentifierValueAsString"], error["ErrorCode"]
        stats.error_codes[code] += 1
        if code == "ResourceNotFound":  # no record for this identifier
            continue
        last[card_id] = (code, error.get("ErrorMessage", ""))
        if is_retryable(code):
            retry.append(card_id)
        else:
            failed[card_id] = (code, error.get("ErrorMessage", ""), attempt)
    for unprocessed in response.get("UnprocessedIdentifiers", []):
        for card_id in unprocessed["RecordIdentifiersValueAsString"]:
            retry.append(card_id)
            last[card_id] = ("Unprocessed", "returned in UnprocessedIdentifiers")
    return retry


def _hard_delete_online(
    client: Any, card_id: str, delete_event_time: str, options: WriterOptions, stats: WriteStats
) -> tuple[str, str, int] | None:
    """DeleteRecord HardDelete on the online store only; None when done, else (code, message, attempts)."""
    _, failure = _call_with_retries(
        "DeleteRecord",
        lambda: client.delete_record(
            FeatureGroupName=options.feature_group,
            RecordIdentifierValueAsString=card_id,
            EventTime=delete_event_time,
            TargetStores=[ONLINE_STORE],
            DeletionMode=HARD_DELETE,
        ),
        options,
        stats,
        give_up_on=(VALIDATION_ERROR,),
    )
    return failure


def _entry(item: PendingRecord, options: WriterOptions, *, online_only: bool = False) -> dict:
    stores = [ONLINE_STORE] if online_only else [ONLINE_STORE, OFFLINE_STORE] if item.online else [OFFLINE_STORE]
    entry: dict[str, Any] = {"FeatureGroupName": options.feature_group, "Record": item.record, "TargetStores": stores}
    if item.online and options.ttl is not None:
        entry["TtlDuration"] = options.ttl.as_api()
    return entry


def _batch_write(
    client: Any, items: list[PendingRecord], options: WriterOptions, stats: WriteStats, *, online_only: bool = False
) -> None:
    """Rounds of full batches: each round sends what is pending, the next resends what may be retried."""
    pending = [_Attempted(item, _entry(item, options, online_only=online_only)) for item in items]
    round_number = 0
    while pending:
        round_number += 1
        if round_number > 1:
            stats.retries += len(pending)
            options.sleep(options.backoff_seconds(round_number - 1))
        retry: list[_Attempted] = []
        for start in range(0, len(pending), MAX_BATCH_WRITE_ENTRIES):
            retry += _send_batch(client, pending[start : start + MAX_BATCH_WRITE_ENTRIES], options, stats)
        pending = []
        for attempted in retry:
            if attempted.attempts >= options.max_attempts:
                _give_up(attempted, options, stats, *attempted.last_error)
            else:
                pending.append(attempted)


def _send_batch(client: Any, batch: list[_Attempted], options: WriterOptions, stats: WriteStats) -> list[_Attempted]:
    """One BatchWriteRecord call; returns the entries to send again (each with its last error)."""
    for attempted in batch:
        attempted.attempts += 1
    stats.calls["BatchWriteRecord"] += 1
    stats.entries_per_call[len(batch)] += 1
    try:
        response = client.batch_write_record(Entries=[attempted.entry for attempted in batch])
    except _connection_errors() as error:
        code, message, status = _error_code_and_message(error)
        stats.error_codes[code] += 1
        if code == VALIDATION_ERROR:
            for attempted in batch:
                _give_up(attempted, options, stats, code, message)
            return []
        if not is_retryable(code, status):
            raise FeatureStoreUnavailable(f"BatchWriteRecord on {options.feature_group}: {code}: {message}") from error
        for attempted in batch:
            attempted.last_error = (code, message)
        return list(batch)
    retry: list[_Attempted] = []
    settled: set[int] = set()
    for error in response.get("Errors", []):
        code, message = error["ErrorCode"], error.get("ErrorMessage", "")
        stats.error_codes[code] += 1
        attempted = _claim(batch, settled, error["Entry"], options, stats, code, message)
        if attempted is None:
            continue
        if is_retryable(code):
            attempted.last_error = (code, message)
            retry.append(attempted)
        else:
            _give_up(attempted, options, stats, code, message)
    for entry in response.get("UnprocessedEntries", []):
        stats.error_codes["Unprocessed"] += 1
        message = "returned in UnprocessedEntries"
        attempted = _claim(batch, settled, entry, options, stats, "Unprocessed", message)
        if attempted is None:
            continue
        attempted.last_error = ("Unprocessed", message)
        retry.append(attempted)
    stats.written += sum(1 for attempted in batch if id(attempted) not in settled)
    return retry


def _match_keys(entry: dict) -> tuple:
    """From exact to loose: the whole entry; group, card, event time and stores; card and event time."""
    record = entry.get("Record") or []
    card = PendingRecord(record=record, online=False).record_id or None
    event_time = record_value(record, EVENT_TIME_FEATURE)
    return (
        _entry_key(entry),
        (entry.get("FeatureGroupName"), card, event_time, tuple(entry.get("TargetStores") or ())),
        (card, event_time),
    )


def _claim(
    batch: list[_Attempted],
    settled: set[int],
    entry: dict,
    options: WriterOptions,
    stats: WriteStats,
    code: str,
    message: str,
) -> _Attempted | None:
    """The sent entry a response entry (in Errors or UnprocessedEntries) stands for, matched exactly if
    possible, else on fewer fields. One that matches nothing we sent is dead-lettered as returned, so a
    reported failure is never counted as written."""
    wanted = _match_keys(entry)
    for level in range(len(wanted)):
        for attempted in batch:
            if id(attempted) not in settled and _match_keys(attempted.entry)[level] == wanted[level]:
                settled.add(id(attempted))
                return attempted
    stranger = PendingRecord(record=entry.get("Record") or [], online=ONLINE_STORE in (entry.get("TargetStores") or []))
    stats.dead_letters.append(
        dead_letter(
            stranger,
            options,
            code=code,
            message=f"{message} (entry not matched to a sent one)",
            stage="write",
            attempts=1,
        )
    )
    return None


def _give_up(attempted: _Attempted, options: WriterOptions, stats: WriteStats, code: str, message: str) -> None:
    stats.dead_letters.append(
        dead_letter(attempted.pending, options, code=code, message=message, stage="write", attempts=attempted.attempts)
    )
