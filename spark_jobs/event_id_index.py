"""The event-id index: every event_id silver holds → the event day(s) (`dt`) it may be held at.

Why. Silver is partitioned by event day; the dedupe cannot read all of it for every batch. Reading only the
batch's days ± 1 misses a re-delivery whose `ts` moved further (it would land twice), and reads days of silver
for every batch (most of it new events). The index makes the lookup exact at any distance with reads that grow
with the batch's re-deliveries, not the lake: the dedupe reads silver at exactly the days the index names for
the batch's ids, and no silver at all when it names none (silver_ingest.known_silver_rows).

What it holds. A superset of silver's (event_id, dt) pairs: an id may name a day silver does not hold it at
(a crash after the index write, before the silver commit), never the reverse. So a hit is a hint the
dedupe verifies: it reads silver at the named day and only silver's rows decide (insert / duplicate /
conflicting_duplicate); a miss is trusted: the id is not in silver. Adding a pair is an idempotent set-add
(SQLite `INSERT OR IGNORE` on the (event_id, dt) key; DynamoDB `UpdateItem ADD` to a string set): a rerun or a
second delivery adds nothing, and no read-modify-write can drop a day.

Who writes it, and when. The silver ingestion (silver_ingest.write_batch) and the quarantine replay
(quarantine_replay.replay_quarantine) add the (event_id, dt) of every row they are about to insert, after the
classification and BEFORE the silver commit (fail point `after_event_id_index_write` sits between them). A
crash in between leaves pairs silver lacks: harmless, see above; the resumed batch inserts the rows.

Backfill. An index is complete once it has been filled from silver (`backfill_from_silver`: one scan of
silver's event_id and dt columns, idempotent) or started with an empty silver; the completeness marker is
written only after that. A job finding the marker missing (a lake built before the index, a lost index)
backfills before its first batch; `silver_and_gold.py --backfill-event-id-index` forces it.

Backends (`EventIdIndex`): SQLite `<lake-root>/_state/event_id_index.sqlite` for a local lake (or a path
given for an S3 lake run on this machine: the Spark workers must share the file); DynamoDB on AWS
(`event_id_index_dynamodb.py`, infra/terraform/modules/dynamodb). The Spark helpers `indexed_days`,
`add_to_index` and `backfill_from_silver` call the backend from the executors in chunks (mapInArrow), so
millions of ids never pass through the driver.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.event_id_index_errors import EventIdIndexError
from spark_jobs.lake import EVENT_ID_INDEX_FILE
from spark_jobs.storage import canonical_uri, spark_path

LOOKUP_SCHEMA = T.StructType(
    [T.StructField("event_id", T.StringType(), False), T.StructField("dt", T.DateType(), False)]
)
_WRITTEN_SCHEMA = T.StructType([T.StructField("written", T.LongType(), False)])
SQLITE_LOOKUP_CHUNK = 500  # ids per `IN (...)`: below SQLite's bound-parameter limit on every version
BUSY_TIMEOUT_SECONDS = 60.0  # Spark's Python workers write the local file concurrently; one waits for another
# Pairs per SQLite `add` from an executor (Arrow batches of 10,000 grouped). A transaction of random keys rewrites
# most of the B-tree pages it touches, so 10,000 pairs a transaction cost ~20 µs a pair at 3M entries: 145 s of the
# 5M-event full build. In transactions of 200,000 sorted pairs: ~4 µs. DynamoDB writes one item per id whatever the
# chunk, so it keeps one Arrow batch per call (its threads and futures would grow with a larger one).
SQLITE_WRITE_CHUNK_PAIRS = 200_000


class EventIdIndex(Protocol):
    """The few operations the jobs need; SQLite and DynamoDB implement exactly these."""

    def days_of(self, event_ids: Sequence[str]) -> dict[str, set[date]]:
        """The indexed days of each id found (ids not in the index are left out)."""
        ...

    def add(self, entries: Iterable[tuple[str, date]]) -> int:
        """Add (event_id, dt) pairs (an idempotent set-add). Returns the number of distinct pairs given."""
        ...

    def is_complete(self) -> bool:
        """Whether the index was filled from silver (or started with an empty silver)."""
        ...

    def mark_complete(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EventIdIndexLocation:
    """Where the index is, picklable (Spark ships it to the executors, which open it themselves)."""

    sqlite_path: str | None = None
    dynamodb_table: str | None = None
    region: str | None = None
    endpoint_url: str | None = None  # a DynamoDB endpoint (tests on moto); None: AWS itself

    def __post_init__(self) -> None:
        if bool(self.sqlite_path) == bool(self.dynamodb_table):
            raise ValueError("the event-id index is either a SQLite path or a DynamoDB table, exactly one")

    @property
    def write_chunk_pairs(self) -> int:
        """How many pairs an executor hands the backend's `add` at a time (1: every Arrow batch on its own)."""
        return SQLITE_WRITE_CHUNK_PAIRS if self.sqlite_path else 1

    def open(self) -> EventIdIndex:
        if self.sqlite_path:
            return SqliteEventIdIndex(self.sqlite_path)
        from spark_jobs.event_id_index_dynamodb import DynamoDbEventIdIndex

        return DynamoDbEventIdIndex(self.dynamodb_table, region=self.region, endpoint_url=self.endpoint_url)

    def describe(self) -> str:
        return f"sqlite:{self.sqlite_path}" if self.sqlite_path else f"dynamodb:{self.dynamodb_table}"


def local_index_path(lake_root: str) -> str:
    """`<lake-root>/_state/event_id_index.sqlite` of a local lake (a plain path)."""
    if lake_root.startswith(("s3://", "s3a://")):
        raise ValueError(f"an S3 lake ({lake_root}) has no local event-id index: give a DynamoDB table or a path")
    return spark_path(canonical_uri(lake_root)) + "/" + EVENT_ID_INDEX_FILE


def index_location(
    lake_root: str,
    *,
    table: str | None,
    path: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> EventIdIndexLocation:
    """The job options' index: the DynamoDB table when given, else the given SQLite path, else the local lake's
    own file. An S3 lake needs one of the first two (its Spark workers must share one index)."""
    if table:
        return EventIdIndexLocation(dynamodb_table=table, region=region, endpoint_url=endpoint_url)
    if path:
        return EventIdIndexLocation(sqlite_path=str(Path(path).resolve()))
    if lake_root.startswith(("s3://", "s3a://")):
        raise ValueError(
            f"--lake-root {lake_root} is on S3: pass --event-id-index-table (DynamoDB; the state machines do) or "
            "--event-id-index-path (a SQLite file on this machine, local Spark only)"
        )
    return EventIdIndexLocation(sqlite_path=local_index_path(lake_root))


# --- the local backend -----------------------------------------------------------------------------------------

_SCHEMA = (
    # one row per (event_id, dt) pair: the primary key makes adding a pair an idempotent set-add
    "CREATE TABLE IF NOT EXISTS event_days (event_id TEXT NOT NULL, dt TEXT NOT NULL, "
    "PRIMARY KEY (event_id, dt)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS index_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class SqliteEventIdIndex:
    """`EventIdIndex` in one SQLite file (local runs, tests, the benchmark). WAL: readers never wait for a
    writer; writers (Spark's Python workers) take turns, each write one transaction (about a second for
    SQLITE_WRITE_CHUNK_PAIRS pairs, far below BUSY_TIMEOUT_SECONDS)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
            for statement in _SCHEMA:
                self._connection.execute(statement)
        except sqlite3.Error as error:
            raise EventIdIndexError(f"event-id index {self.path}: {error}") from error

    def days_of(self, event_ids: Sequence[str]) -> dict[str, set[date]]:
        unique = list(dict.fromkeys(event_ids))
        found: dict[str, set[date]] = {}
        for start in range(0, len(unique), SQLITE_LOOKUP_CHUNK):
            chunk = unique[start : start + SQLITE_LOOKUP_CHUNK]
            rows = self._connection.execute(
                f"SELECT event_id, dt FROM event_days WHERE event_id IN ({','.join('?' * len(chunk))})", chunk
            )
            for event_id, day in rows:
                found.setdefault(event_id, set()).add(date.fromisoformat(day))
        return found

    def add(self, entries: Iterable[tuple[str, date]]) -> int:
        # in key order: consecutive inserts land on the same B-tree pages
        pairs = sorted({(event_id, day.isoformat()) for event_id, day in entries})
        if not pairs:
            return 0
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            self._connection.executemany("INSERT OR IGNORE INTO event_days (event_id, dt) VALUES (?, ?)", pairs)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")
        return len(pairs)

    def is_complete(self) -> bool:
        row = self._connection.execute("SELECT value FROM index_meta WHERE name = 'complete'").fetchone()
        return row is not None

    def mark_complete(self) -> None:
        self._connection.execute("INSERT OR REPLACE INTO index_meta (name, value) VALUES ('complete', 'true')")

    def entry_count(self) -> int:
        return self._connection.execute("SELECT count(*) FROM event_days").fetchone()[0]

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> SqliteEventIdIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- Spark: executor-side bulk lookups and writes ----------------------------------------------------------------


def indexed_days(event_ids: DataFrame, location: EventIdIndexLocation, *, ids_distinct: bool = False) -> DataFrame:
    """(event_id, dt) for every indexed day of the frame's distinct event_ids; each executor looks up its
    partition's ids in chunks (one Arrow batch: up to spark.sql.execution.arrow.maxRecordsPerBatch ids).
    `ids_distinct` says the frame's ids are distinct already (silver.event_id_counts): no second shuffle."""

    def lookup(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        index = location.open()
        try:
            for batch in batches:
                found = index.days_of(batch.column("event_id").to_pylist())
                pairs = [(event_id, day) for event_id, days in found.items() for day in sorted(days)]
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array([pair[0] for pair in pairs], pa.string()),
                        pa.array([pair[1] for pair in pairs], pa.date32()),
                    ],
                    names=["event_id", "dt"],
                )
        finally:
            index.close()

    ids = event_ids.select("event_id")
    return (ids if ids_distinct else ids.distinct()).mapInArrow(lookup, LOOKUP_SCHEMA)


def add_to_index(entries: DataFrame, location: EventIdIndexLocation) -> int:
    """Add the frame's (event_id, dt) pairs, executor-side in chunks (`location.write_chunk_pairs`). Returns the
    number of pairs written (distinct per chunk; a pair written twice is still one entry)."""
    chunk_pairs = location.write_chunk_pairs

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        index = location.open()
        try:
            for chunk in _chunks_of(batches, chunk_pairs):
                pairs = (  # a generator: the backend's own set is the chunk's only copy in Python
                    pair
                    for batch in chunk
                    for pair in zip(batch.column("event_id").to_pylist(), batch.column("dt").to_pylist(), strict=True)
                )
                written = index.add(pairs)
                yield pa.RecordBatch.from_arrays([pa.array([written], pa.int64())], names=["written"])
        finally:
            index.close()

    total = entries.select("event_id", "dt").mapInArrow(write, _WRITTEN_SCHEMA).agg(F.sum("written")).collect()[0][0]
    return int(total or 0)


def _chunks_of(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[list[pa.RecordBatch]]:
    """Consecutive batches grouped until a group holds at least `rows` rows (the last group may hold fewer)."""
    chunk: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        chunk.append(batch)
        held += batch.num_rows
        if held >= rows:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def backfill_from_silver(silver: DataFrame, location: EventIdIndexLocation) -> int:
    """Add every (event_id, dt) of silver (one scan of two columns; idempotent), then mark the index complete.
    The marker comes last: a crash mid-way leaves the index incomplete and the next run backfills again."""
    written = add_to_index(silver.select("event_id", "dt"), location)
    mark_index_complete(location)
    return written


def mark_index_complete(location: EventIdIndexLocation) -> None:
    index = location.open()
    try:
        index.mark_complete()
    finally:
        index.close()
