"""The local Feature Store backend: the featurestore-runtime API on disk, so local runs use the same code path
as AWS (see backends/__init__.py for the interface).

- Online store: SQLite (`<lake-root>/feature_store/online.db` by default). One row per (group, record
  identifier) holding the Record as the API returns it. A write replaces the stored record only when its
  event time is strictly newer (the API reference's rule; see docs/feature_store.md for the developer
  guide's "greater than or equal" wording and why the ingestion does not depend on either). An expired
  record (ExpiresAt = EventTime + TtlDuration, record-level TtlDuration over the group's) is treated as
  absent, as the online store hard-deletes it; the clock is injectable.
- DeleteRecord: EventTime must be later than the stored record's. HardDelete removes the record (an equal
  or older EventTime is a ValidationError, nothing changes); SoftDelete keeps a record holding only the
  identifier and the delete's EventTime (not returned by reads, still blocking older writes). With
  OfflineStore among TargetStores a deleted-record marker (is_deleted = true) goes to the offline store.
- Offline store: a Delta table `<lake-root>/feature_store/offline/card-features-v{N}` with the features
  plus event_time, write_time, api_invocation_time and is_deleted. Rows are buffered and appended from the
  driver by `flush_offline(spark)`.
- Groups (`register_feature_groups.py --backend local`) live in the same SQLite file (`LocalGroups`).

`LocalFeatureStoreRuntime` has the client methods the platform calls (batch_write_record, delete_record,
get_record, batch_get_record) with the API's request and response shapes and errors (botocore ClientError
with the API's error codes). `LocalBackend` is what ingestion writes through: it streams the rows to the
driver and flushes the offline rows to Delta every `FLUSH_EVERY_ROWS`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feature_store.definitions import (
    FRACTIONAL,
    INTEGRAL,
    OFFLINE_STORE,
    ONLINE_STORE,
    STRING,
    GroupSpec,
    TtlDuration,
)
from feature_store.records import RecordError, event_time_ms

SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_groups (
    name TEXT PRIMARY KEY,
    record_identifier TEXT NOT NULL,
    event_time_feature TEXT NOT NULL,
    definitions TEXT NOT NULL,          -- JSON [{"FeatureName", "FeatureType"}]
    ttl TEXT,                           -- JSON {"Unit", "Value"} or NULL
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS online_records (
    feature_group TEXT NOT NULL,
    record_id TEXT NOT NULL,
    event_time TEXT NOT NULL,
    event_time_ms INTEGER NOT NULL,
    record TEXT NOT NULL,               -- JSON Record as the API returns it
    expires_at_ms INTEGER,              -- NULL: no TTL
    soft_deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (feature_group, record_id)
);
"""

Clock = Callable[[], datetime]


def utc_clock() -> datetime:
    return datetime.now(UTC)


def _client_error(operation: str, code: str, message: str, status: int = 400):
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _expires_at(record_time_ms: int, ttl: TtlDuration | None) -> int | None:
    return None if ttl is None else record_time_ms + ttl.seconds * 1000


def _iso_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class LocalStore:
    """The SQLite file shared by the group registry and the online store."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            # Readers (serving, get_features): SQLite's read-only mode, so nothing they do can take the write
            # lock; in WAL mode they read the last committed state while the ingestion writes.
            self.db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self):
        """One SQLite transaction (nested uses join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    # Groups -----------------------------------------------------------------------------------------
    def describe_group(self, name: str) -> dict | None:
        """The group in DescribeFeatureGroup's shape, or None."""
        row = self.db.execute(
            "SELECT name, record_identifier, event_time_feature, definitions, ttl, description, created_at "
            "FROM feature_groups WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        online = {"EnableOnlineStore": True}
        if row[4]:
            online["TtlDuration"] = json.loads(row[4])
        return {
            "FeatureGroupName": row[0],
            "RecordIdentifierFeatureName": row[1],
            "EventTimeFeatureName": row[2],
            "FeatureDefinitions": json.loads(row[3]),
            "OnlineStoreConfig": online,
            "FeatureGroupStatus": "Created",
            "LastUpdateStatus": {"Status": "Successful"},
            "Description": row[5] or "",
            "CreationTime": row[6],
        }

    def create_group(self, spec: GroupSpec) -> None:
        now = utc_clock().isoformat()
        try:
            self.db.execute(
                "INSERT INTO feature_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    spec.name,
                    spec.record_identifier,
                    spec.event_time_feature,
                    json.dumps(spec.as_api()),
                    json.dumps(spec.ttl.as_api()) if spec.ttl else None,
                    spec.description,
                    now,
                    now,
                ),
            )
        except sqlite3.IntegrityError as error:
            raise _client_error("CreateFeatureGroup", "ResourceInUse", f"FeatureGroup {spec.name} exists") from error

    def add_features(self, name: str, additions: list[dict]) -> None:
        group = self.describe_group(name)
        if group is None:
            raise _client_error("UpdateFeatureGroup", "ResourceNotFound", f"FeatureGroup {name} not found", 404)
        definitions = group["FeatureDefinitions"] + additions
        self.db.execute(
            "UPDATE feature_groups SET definitions = ?, updated_at = ? WHERE name = ?",
            (json.dumps(definitions), utc_clock().isoformat(), name),
        )

    def set_ttl(self, name: str, ttl: TtlDuration | None) -> None:
        self.db.execute(
            "UPDATE feature_groups SET ttl = ?, updated_at = ? WHERE name = ?",
            (json.dumps(ttl.as_api()) if ttl else None, utc_clock().isoformat(), name),
        )


class LocalFeatureStoreRuntime:
    """The featurestore-runtime client, emulated on a `LocalStore`. Offline rows are buffered in
    `offline_rows` until `flush_offline(spark, lake_root_uri)`."""

    def __init__(self, store: LocalStore, *, clock: Clock = utc_clock) -> None:
        self.store = store
        self.clock = clock
        self.offline_rows: list[dict] = []
        self._groups: dict[str, dict] = {}

    # Helpers ----------------------------------------------------------------------------------------
    def _group(self, name: str, operation: str) -> dict:
        if name not in self._groups:
            group = self.store.describe_group(name)
            if group is None:
                raise _client_error(operation, "ResourceNotFound", f"Resource not found: FeatureGroup {name}", 404)
            self._groups[name] = group
        return self._groups[name]

    def _validate(self, group: dict, record: list[dict]) -> tuple[str, str, int]:
        """(record id, event time, event time ms) of a valid record; RecordError otherwise."""
        types = {item["FeatureName"]: item["FeatureType"] for item in group["FeatureDefinitions"]}
        seen = set()
        for value in record:
            name, text = value.get("FeatureName"), value.get("ValueAsString")
            if name not in types:
                raise RecordError(f"feature {name!r} is not defined in the feature group")
            if name in seen:
                raise RecordError(f"feature {name!r} appears twice")
            seen.add(name)
            if text is None:
                raise RecordError(f"feature {name!r} has no ValueAsString")
            try:
                if types[name] == INTEGRAL:
                    int(text)
                elif types[name] == FRACTIONAL:
                    float(text)
            except ValueError as error:
                raise RecordError(f"feature {name!r}: {text!r} is not {types[name]}") from error
        values = {value["FeatureName"]: value["ValueAsString"] for value in record}
        identifier, event_name = group["RecordIdentifierFeatureName"], group["EventTimeFeatureName"]
        if identifier not in values or event_name not in values:
            raise RecordError(f"a record needs {identifier} and {event_name}")
        return values[identifier], values[event_name], event_time_ms(values[event_name])

    def _stored(self, group_name: str, record_id: str, now_ms: int, *, purge_expired: bool = True) -> tuple | None:
        """(event_time_ms, record JSON, soft_deleted) of the live stored record, None if absent or expired.
        Writers (inside their transaction) purge an expired row; readers only skip it, so a read never
        writes and never waits for a writer's lock."""
        row = self.store.db.execute(
            "SELECT event_time_ms, record, soft_deleted, expires_at_ms FROM online_records "
            "WHERE feature_group = ? AND record_id = ?",
            (group_name, record_id),
        ).fetchone()
        if row is None:
            return None
        if row[3] is not None and now_ms >= row[3]:
            if purge_expired:
                self.store.db.execute(
                    "DELETE FROM online_records WHERE feature_group = ? AND record_id = ?", (group_name, record_id)
                )
            return None
        return row[0], row[1], bool(row[2])

    def _offline_row(self, group: dict, record: list[dict], *, deleted: bool, event_time: str, now: datetime) -> dict:
        types = {item["FeatureName"]: item["FeatureType"] for item in group["FeatureDefinitions"]}
        values = {value["FeatureName"]: value["ValueAsString"] for value in record}
        row: dict[str, Any] = {}
        for name, kind in types.items():
            text = values.get(name)
            if text is None:
                row[name] = None
            elif kind == INTEGRAL:
                row[name] = int(text)
            elif kind == FRACTIONAL:
                row[name] = float(text)
            else:
                row[name] = text
        row[group["EventTimeFeatureName"]] = event_time
        row.update({"write_time": now, "api_invocation_time": now, "is_deleted": deleted})
        return {"feature_group": group["FeatureGroupName"], "row": row}

    # The API ----------------------------------------------------------------------------------------
    def batch_write_record(self, *, Entries: list[dict], TtlDuration: dict | None = None) -> dict:  # noqa: N803
        if not 1 <= len(Entries) <= 25:
            raise _client_error("BatchWriteRecord", "ValidationError", "Entries must hold 1 to 25 entries")
        from botocore.exceptions import ClientError

        errors = []
        now = self.clock()
        with self.store.transaction():  # one transaction per call
            for entry in Entries:
                try:
                    group = self._group(entry["FeatureGroupName"], "BatchWriteRecord")
                except ClientError as error:  # ResourceNotFound is a per-entry error in a batch
                    errors.append({"Entry": entry, "ErrorCode": "ResourceNotFound", "ErrorMessage": str(error)})
                    continue
                ttl = entry.get("TtlDuration") or TtlDuration
                try:
                    self._put(group, entry["Record"], entry.get("TargetStores"), ttl, now)
                except RecordError as error:
                    errors.append({"Entry": entry, "ErrorCode": "ValidationError", "ErrorMessage": str(error)})
        return {"Errors": errors, "UnprocessedEntries": []}

    def _put(self, group: dict, record: list[dict], targets, ttl: dict | None, now: datetime) -> None:
        record_id, event_time, record_ms = self._validate(group, record)
        targets = targets or [ONLINE_STORE, OFFLINE_STORE]
        if ONLINE_STORE in targets:
            stored = self._stored(group["FeatureGroupName"], record_id, _ms(now))
            if stored is None or record_ms > stored[0]:  # strictly newer only
                effective_ttl = _ttl_from_api(ttl) or _ttl_from_api(group["OnlineStoreConfig"].get("TtlDuration"))
                self.store.db.execute(
                    "INSERT OR REPLACE INTO online_records VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (
                        group["FeatureGroupName"],
                        record_id,
                        event_time,
                        record_ms,
                        json.dumps(record),
                        _expires_at(record_ms, effective_ttl),
                    ),
                )
        if OFFLINE_STORE in targets:
            self.offline_rows.append(self._offline_row(group, record, deleted=False, event_time=event_time, now=now))

    def delete_record(
        self,
        *,
        FeatureGroupName: str,  # noqa: N803
        RecordIdentifierValueAsString: str,  # noqa: N803
        EventTime: str,  # noqa: N803
        TargetStores: list[str] | None = None,  # noqa: N803
        DeletionMode: str = "SoftDelete",  # noqa: N803
    ) -> dict:
        group = self._group(FeatureGroupName, "DeleteRecord")
        try:
            delete_ms = event_time_ms(EventTime)
        except RecordError as error:
            raise _client_error("DeleteRecord", "ValidationError", str(error)) from error
        targets = TargetStores or [ONLINE_STORE, OFFLINE_STORE]
        now = self.clock()
        write_marker = OFFLINE_STORE in targets
        with self.store.transaction():
            if ONLINE_STORE in targets:
                stored = self._stored(FeatureGroupName, RecordIdentifierValueAsString, _ms(now))
                later = stored is None or delete_ms > stored[0]
                if DeletionMode == "HardDelete":
                    if not later:
                        raise _client_error(
                            "DeleteRecord",
                            "ValidationError",
                            f"EventTime {EventTime} must be later than the stored record's EventTime",
                        )
                    self.store.db.execute(
                        "DELETE FROM online_records WHERE feature_group = ? AND record_id = ?",
                        (FeatureGroupName, RecordIdentifierValueAsString),
                    )
                elif later:
                    tombstone = [
                        {
                            "FeatureName": group["RecordIdentifierFeatureName"],
                            "ValueAsString": RecordIdentifierValueAsString,
                        },
                        {"FeatureName": group["EventTimeFeatureName"], "ValueAsString": EventTime},
                    ]
                    self.store.db.execute(
                        "INSERT OR REPLACE INTO online_records VALUES (?, ?, ?, ?, ?, NULL, 1)",
                        (FeatureGroupName, RecordIdentifierValueAsString, EventTime, delete_ms, json.dumps(tombstone)),
                    )
            if write_marker:
                marker = [
                    {
                        "FeatureName": group["RecordIdentifierFeatureName"],
                        "ValueAsString": RecordIdentifierValueAsString,
                    }
                ]
                self.offline_rows.append(self._offline_row(group, marker, deleted=True, event_time=EventTime, now=now))
        return {}

    def get_record(
        self,
        *,
        FeatureGroupName: str,  # noqa: N803
        RecordIdentifierValueAsString: str,  # noqa: N803
        FeatureNames: list[str] | None = None,  # noqa: N803
        ExpirationTimeResponse: str = "Disabled",  # noqa: N803
    ) -> dict:
        self._group(FeatureGroupName, "GetRecord")
        found = self._read(FeatureGroupName, RecordIdentifierValueAsString, FeatureNames, ExpirationTimeResponse)
        return found or {}

    def batch_get_record(self, *, Identifiers: list[dict], ExpirationTimeResponse: str = "Disabled") -> dict:  # noqa: N803
        from botocore.exceptions import ClientError

        records, errors = [], []
        for identifier in Identifiers:
            name = identifier["FeatureGroupName"]
            try:
                self._group(name, "BatchGetRecord")
            except ClientError as error:
                for record_id in identifier["RecordIdentifiersValueAsString"]:
                    errors.append(
                        {
                            "FeatureGroupName": name,
                            "RecordIdentifierValueAsString": record_id,
                            "ErrorCode": "ResourceNotFound",
                            "ErrorMessage": str(error),
                        }
                    )
                continue
            # one SELECT per group: the records of one identifier list come from one committed state (serving
            # reads a merchant's record and the published-day marker together: merchant_lookup.py)
            found = self._read_many(
                name,
                identifier["RecordIdentifiersValueAsString"],
                identifier.get("FeatureNames"),
                ExpirationTimeResponse,
            )
            for record_id in identifier["RecordIdentifiersValueAsString"]:
                if record_id in found:
                    records.append(
                        {"FeatureGroupName": name, "RecordIdentifierValueAsString": record_id, **found[record_id]}
                    )
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}

    def _read_many(self, group_name: str, record_ids: list[str], names, expiration: str) -> dict[str, dict]:
        """record id -> {"Record", "ExpiresAt"?} of the live records among `record_ids`, in one SQL query."""
        if not record_ids:
            return {}
        now_ms = _ms(self.clock())
        rows = self.store.db.execute(
            "SELECT record_id, record, soft_deleted, expires_at_ms FROM online_records "
            f"WHERE feature_group = ? AND record_id IN ({', '.join('?' * len(record_ids))})",
            (group_name, *record_ids),
        ).fetchall()
        found = {}
        for record_id, text, soft_deleted, expires_at_ms in rows:
            if soft_deleted or (expires_at_ms is not None and now_ms >= expires_at_ms):
                continue  # a soft-deleted or expired record is absent (readers never purge)
            record = json.loads(text)
            if names:
                record = [value for value in record if value["FeatureName"] in names]
            result: dict[str, Any] = {"Record": record}
            if expiration == "Enabled" and expires_at_ms is not None:
                result["ExpiresAt"] = _iso_ms(expires_at_ms)
            found[record_id] = result
        return found

    def _read(self, group_name: str, record_id: str, names, expiration: str) -> dict | None:
        # A plain SELECT (autocommit, WAL): readers see the last committed state while a writer holds its
        # BEGIN IMMEDIATE transaction, never taking or waiting for the write lock.
        stored = self._stored(group_name, record_id, _ms(self.clock()), purge_expired=False)
        if stored is None or stored[2]:
            return None
        record = json.loads(stored[1])
        if names:
            record = [value for value in record if value["FeatureName"] in names]
        result: dict[str, Any] = {"Record": record}
        if expiration == "Enabled":
            row = self.store.db.execute(
                "SELECT expires_at_ms FROM online_records WHERE feature_group = ? AND record_id = ?",
                (group_name, record_id),
            ).fetchone()
            if row and row[0] is not None:
                result["ExpiresAt"] = _iso_ms(row[0])
        return result

    # Offline store ----------------------------------------------------------------------------------
    def flush_offline(self, spark, lake_root_uri: str) -> int:
        """Append the buffered offline rows to each group's Delta table (created or widened as needed)."""
        from spark_jobs.lake import offline_table_uri
        from spark_jobs.storage import spark_path

        written = 0
        by_group: dict[str, list[dict]] = {}
        for item in self.offline_rows:
            by_group.setdefault(item["feature_group"], []).append(item["row"])
        for name, rows in by_group.items():
            group = self._group(name, "BatchWriteRecord")
            schema = offline_schema(group)
            frame = spark.createDataFrame([tuple(row.get(field.name) for field in schema) for row in rows], schema)
            (
                frame.write.format("delta")
                .mode("append")
                .option("mergeSchema", "true")
                .save(spark_path(offline_table_uri(lake_root_uri, name)))
            )
            written += len(rows)
        self.offline_rows.clear()
        return written


def _ttl_from_api(value: dict | None) -> TtlDuration | None:
    return TtlDuration.from_api(value)


def offline_schema(group: dict):
    """The offline store's columns: every feature (Integral bigint, Fractional double, String string),
    then write_time, api_invocation_time, is_deleted."""
    from pyspark.sql import types as T

    spark_types = {INTEGRAL: T.LongType(), FRACTIONAL: T.DoubleType(), STRING: T.StringType()}
    fields = [
        T.StructField(item["FeatureName"], spark_types[item["FeatureType"]], True)
        for item in group["FeatureDefinitions"]
    ]
    fields += [
        T.StructField("write_time", T.TimestampType(), False),
        T.StructField("api_invocation_time", T.TimestampType(), False),
        T.StructField("is_deleted", T.BooleanType(), False),
    ]
    return T.StructType(fields)


class LocalGroups:
    """The local backend's groups (in the online store's SQLite file); creation is immediate."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def create_if_missing(self, spec: GroupSpec, settings: Any = None) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.store.create_group(spec)
        except ClientError:
            return False
        return True

    def describe(self, name: str) -> dict:
        return self.store.describe_group(name)

    def wait_until_created(self, name: str) -> None:
        return None

    def add_features(self, name: str, additions: list[dict]) -> None:
        self.store.add_features(name, additions)

    def set_ttl(self, name: str, ttl: TtlDuration) -> None:
        self.store.set_ttl(name, ttl)


class LocalBackend:
    """Ingestion into the local store: SQLite online store + Delta offline store, written from the driver."""

    name = "local"
    FLUSH_EVERY_ROWS = 100_000  # offline rows buffered in the driver before an append to Delta

    def __init__(self, online_store_path: str, lake_root_uri: str, *, clock: Clock | None = None) -> None:
        self.store = LocalStore(online_store_path)
        self.runtime = LocalFeatureStoreRuntime(self.store, clock=clock or utc_clock)
        self.lake_root_uri = lake_root_uri

    def describe_group(self, name: str) -> dict | None:
        return self.store.describe_group(name)

    def write(self, spark, frame, options):
        from itertools import islice

        from feature_store.batch_writer import WriteStats, write_rows

        total = WriteStats()
        rows = (row.asDict() for row in frame.toLocalIterator())
        while batch := list(islice(rows, self.FLUSH_EVERY_ROWS)):
            total.merge(write_rows(self.runtime, batch, options))
            self.runtime.flush_offline(spark, self.lake_root_uri)
        return total

    def put_online_only(self, feature_group: str, record: list[dict]) -> None:
        entry = {"FeatureGroupName": feature_group, "Record": record, "TargetStores": [ONLINE_STORE]}
        _raise_on_batch_errors(self.runtime.batch_write_record(Entries=[entry]), feature_group)

    def close(self) -> None:
        self.store.close()


def _raise_on_batch_errors(response: dict, feature_group: str) -> None:
    failed = response.get("Errors") or response.get("UnprocessedEntries")
    if failed:
        raise RuntimeError(f"the online-only write to {feature_group} failed: {failed}")
