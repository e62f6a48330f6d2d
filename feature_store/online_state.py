"""Online state for request-time features: each card's recent events, the input of every windowed feature.

The scoring path reads a card's events in [t − longest window, t], computes the registry's features for
the authorization at t (`feature_store/request_features.py`) and adds the authorization to the state
(write-back). The batch pipeline keeps the state in line with silver after each run
(`feature_store/online_state_sync.py`): silver wins where both hold an event, events the batch quarantined
are removed, and events older than the retention (relative to the card's newest event, never the wall
clock) are pruned.

Backends implement `OnlineStateStore`: SQLite under `<lake-root>/feature_store/` locally
(`SqliteOnlineState`), DynamoDB on AWS (`feature_store/online_state_dynamodb.py`). Both key an event by
(card_id, sort key), the sort key ordering by `ts_us` then `event_id`, and never read-modify-write a
card: two concurrent authorizations of one card both land.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from spark_jobs.bronze_contract import PAYLOAD_FIELDS
from spark_jobs.feature_registry import MAX_WINDOW

SILVER = "silver"  # the event is in silver (the batch pipeline put it there)
SERVED = "served"  # the event was scored and written back, not (yet) seen in silver
ORIGINS = (SILVER, SERVED)

TS_DIGITS = 20  # zero-padded ts_us in sort keys, so string order is time order


def sort_key(ts_us: int, event_id: str) -> str:
    """The state's sort key: ordered by ts_us, then event_id."""
    if ts_us < 0:
        raise ValueError(f"ts_us must be >= 0, got {ts_us}")
    return f"{ts_us:0{TS_DIGITS}d}#{event_id}"


@dataclass(frozen=True)
class StateEvent:
    """One of a card's events as the request-time features need it (no card number, ever)."""

    card_id: str
    event_id: str
    ts_us: int
    amount_usd: Decimal
    merchant_id: str
    country: str
    origin: str  # SILVER or SERVED
    payload_fingerprint: str  # hash of the contract payload fields: equal payload == equal fingerprint

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {self.origin!r}")

    @property
    def sort_key(self) -> str:
        return sort_key(self.ts_us, self.event_id)

    @classmethod
    def from_accepted(cls, row: Mapping[str, object], *, origin: str) -> StateEvent:
        """The state event of an accepted record or silver row (its fingerprint over silver's payload fields)."""
        return cls(
            card_id=row["card_id"],
            event_id=row["event_id"],
            ts_us=row["ts_us"],
            amount_usd=row["amount_usd"],
            merchant_id=row["merchant_id"],
            country=row["country"],
            origin=origin,
            payload_fingerprint=payload_fingerprint(row),
        )


class OnlineStateStore(Protocol):
    """The few operations serving and the sync need; every backend implements exactly these."""

    def window(self, card_id: str, low_us: int, high_us: int) -> list[StateEvent]:
        """The card's events with low_us <= ts_us <= high_us, ordered by (ts_us, event_id)."""
        ...

    def find(self, card_id: str, event_id: str) -> StateEvent | None:
        """The card's event with this event_id, whatever its ts_us, or None."""
        ...

    def add_served(self, event: StateEvent) -> StateEvent | None:
        """Create a served event unless the card already holds its event_id (a conditional create, never a
        read-modify-write). Returns None when written, else the event already stored (nothing written)."""
        ...

    def upsert_silver(self, events: Iterable[StateEvent]) -> int:
        """Put silver events, replacing a served copy of the same (card_id, event_id): silver wins.
        Returns the number of events written."""
        ...

    def remove(self, keys: Iterable[tuple[str, str]]) -> int:
        """Remove the (card_id, event_id) events, e.g. served events the batch quarantined. Returns the count."""
        ...

    def prune(self, card_id: str, keep_from_us: int) -> int:
        """Remove the card's events with ts_us < keep_from_us. Returns the count."""
        ...

    def close(self) -> None: ...


# --- retention, fingerprints, the local path -------------------------------------------------------------

# The stream job re-lists bronze this far back (`SilverIngestOptions.lookback_hours`): a served event may
# take that long to reach silver, so the state keeps it that much longer than the longest window.
STREAM_LOOKBACK = timedelta(hours=48)
STATE_RETENTION = MAX_WINDOW + STREAM_LOOKBACK

ONLINE_STATE_FILE = "feature_store/online_state.db"  # under the lake root (local runs)


def local_state_path(lake_root: str | Path) -> Path:
    """The local online state, `<lake-root>/feature_store/online_state.db`."""
    return Path(lake_root) / ONLINE_STATE_FILE


def _canonical_value(name: str, value: object) -> str:
    """One payload value as text that is equal exactly when silver's by-value comparison says equal."""
    if value is None:
        return "\x00null"  # distinct from every string, the empty one included
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"payload field {name} must be a finite decimal, got {value}")
        # by value: 12.5 and 12.5000 are equal in silver (DECIMAL(18,4)); normalize() drops trailing zeros
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"payload field {name} must be str, int or Decimal, got {type(value).__name__}")
    return str(value)


def payload_fingerprint(accepted_row: Mapping[str, object]) -> str:
    """sha256 (hex) over the PAYLOAD_FIELDS values of an accepted bronze record (a row of
    `AcceptedColumns.rows()`): two deliveries of an event_id have the same fingerprint exactly when silver
    would call the second a duplicate rather than a conflicting_duplicate."""
    missing = [name for name in PAYLOAD_FIELDS if name not in accepted_row]
    if missing:
        raise ValueError(f"accepted row lacks payload fields {missing}")
    digest = hashlib.sha256()
    for name in PAYLOAD_FIELDS:
        text = _canonical_value(name, accepted_row[name])
        digest.update(f"{name}={len(text)}:{text};".encode())  # length-prefixed: no two payloads join alike
    return digest.hexdigest()


# --- the local backend -----------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state_events (
    card_id TEXT NOT NULL,
    sk TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    amount_usd TEXT NOT NULL,  -- exact Decimal text: SQLite's REAL would round
    merchant_id TEXT NOT NULL,
    country TEXT NOT NULL,
    origin TEXT NOT NULL,
    payload_fingerprint TEXT NOT NULL,
    PRIMARY KEY (card_id, sk)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS state_events_by_event_id ON state_events (card_id, event_id);
"""
_COLUMNS = "card_id, event_id, ts_us, amount_usd, merchant_id, country, origin, payload_fingerprint"
_INSERT = f"INSERT INTO state_events (sk, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_UNLESS_PRESENT = _INSERT.replace("INSERT", "INSERT OR IGNORE", 1)
BUSY_TIMEOUT_SECONDS = 30.0


def _row_values(event: StateEvent) -> tuple:
    return (
        event.sort_key,
        event.card_id,
        event.event_id,
        event.ts_us,
        str(event.amount_usd),
        event.merchant_id,
        event.country,
        event.origin,
        event.payload_fingerprint,
    )


def _event(row: tuple) -> StateEvent:
    card_id, event_id, ts_us, amount_usd, merchant_id, country, origin, fingerprint = row
    return StateEvent(card_id, event_id, ts_us, Decimal(amount_usd), merchant_id, country, origin, fingerprint)


def _sk_floor(ts_us: int) -> str:
    """The smallest sort key at ts_us ('#' sorts before any event_id character that follows it)."""
    return f"{max(ts_us, 0):0{TS_DIGITS}d}#"


class SqliteOnlineState:
    """`OnlineStateStore` in one SQLite file (local runs, tests, the benchmark).

    WAL mode, so readers never wait for a writer nor block one; every write is one short transaction
    (BEGIN IMMEDIATE, then wait up to BUSY_TIMEOUT_SECONDS for another writer). Each thread gets its own
    connection, so threads and processes can share one file. Amounts are stored as their exact Decimal text.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._generation = 0  # bumped by close(), so no thread reuses a closed connection
        self._create_schema()

    # connections
    def _connection(self) -> sqlite3.Connection:
        generation, connection = getattr(self._local, "connection", (None, None))
        if connection is None or generation != self._generation:
            # isolation_level=None: autocommit, so reads run without a transaction and writes say BEGIN;
            # check_same_thread=False only so close() can close every thread's connection
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
            self._local.connection = (self._generation, connection)
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _create_schema(self) -> None:
        with self._write() as connection:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)

    # OnlineStateStore
    def window(self, card_id: str, low_us: int, high_us: int) -> list[StateEvent]:
        if high_us < low_us:
            return []
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM state_events WHERE card_id = ? AND sk >= ? AND sk < ? ORDER BY sk",
            (card_id, _sk_floor(low_us), _sk_floor(high_us + 1)),
        )
        return [_event(row) for row in rows]

    def find(self, card_id: str, event_id: str) -> StateEvent | None:
        row = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM state_events WHERE card_id = ? AND event_id = ?", (card_id, event_id))
            .fetchone()
        )
        return None if row is None else _event(row)

    def add_served(self, event: StateEvent) -> StateEvent | None:
        if event.origin != SERVED:
            raise ValueError(f"add_served takes served events, got origin {event.origin!r} ({event.event_id})")
        with self._write() as connection:
            # the unique index on (card_id, event_id) makes this the conditional create
            written = connection.execute(_INSERT_UNLESS_PRESENT, _row_values(event))
            if written.rowcount == 1:
                return None
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM state_events WHERE card_id = ? AND event_id = ?",
                (event.card_id, event.event_id),
            ).fetchone()
        return _event(row)

    def upsert_silver(self, events: Iterable[StateEvent]) -> int:
        by_key: dict[tuple[str, str], tuple] = {}
        for event in events:
            if event.origin != SILVER:
                raise ValueError(f"upsert_silver takes silver events, got origin {event.origin!r} ({event.event_id})")
            by_key[(event.card_id, event.event_id)] = _row_values(event)  # one row per event, the last given
        rows = list(by_key.values())
        with self._write() as connection:
            # delete first: a served copy may sit under another sort key (its ts_us differed from silver's)
            connection.executemany(
                "DELETE FROM state_events WHERE card_id = ? AND event_id = ?", [(row[1], row[2]) for row in rows]
            )
            connection.executemany(_INSERT, rows)
        return len(rows)

    def remove(self, keys: Iterable[tuple[str, str]]) -> int:
        keys = list(keys)
        with self._write() as connection:
            removed = 0
            for card_id, event_id in keys:
                removed += connection.execute(
                    "DELETE FROM state_events WHERE card_id = ? AND event_id = ?", (card_id, event_id)
                ).rowcount
        return removed

    def prune(self, card_id: str, keep_from_us: int) -> int:
        with self._write() as connection:
            return connection.execute(
                "DELETE FROM state_events WHERE card_id = ? AND sk < ?", (card_id, _sk_floor(keep_from_us))
            ).rowcount

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
            self._generation += 1
        for connection in connections:
            connection.close()

    def __enter__(self) -> SqliteOnlineState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
