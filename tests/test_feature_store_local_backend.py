"""The local backend's online store rules (ordering, equal event times, deletes, TTL) and the same late-data
sequence the SageMaker writes use, run against it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from feature_store.backends.local import LocalFeatureStoreRuntime, LocalStore
from feature_store.batch_writer import PendingRecord, WriterOptions, write_records
from feature_store.definitions import TtlDuration, group_spec
from feature_store.get_features import OnlineFeatures
from feature_store.records import event_time_text

GROUP = group_spec().name
T0_US = 1767225600 * 1_000_000
BOTH = ["OnlineStore", "OfflineStore"]


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(datetime(2026, 1, 1, 12, tzinfo=UTC))


@pytest.fixture
def store(tmp_path):
    local = LocalStore(tmp_path / "online.db")
    local.create_group(group_spec())
    yield local
    local.close()


@pytest.fixture
def runtime(store, clock):
    return LocalFeatureStoreRuntime(store, clock=clock)


def record(card: str, ts_us: int, count: int) -> list[dict]:
    return [
        {"FeatureName": "card_id", "ValueAsString": card},
        {"FeatureName": "event_time", "ValueAsString": event_time_text(ts_us)},
        {"FeatureName": "txn_count_1h", "ValueAsString": str(count)},
    ]


def put(runtime, card, ts_us, count, *, targets=BOTH, ttl=None):
    entry = {"FeatureGroupName": GROUP, "Record": record(card, ts_us, count), "TargetStores": targets}
    if ttl:
        entry["TtlDuration"] = ttl
    return runtime.batch_write_record(Entries=[entry])


def online_count(runtime, card):
    found = OnlineFeatures(runtime).get(card)
    return None if found is None else found["features"]["txn_count_1h"]


def test_only_a_strictly_newer_event_time_replaces_the_online_record(runtime):
    put(runtime, "c1", T0_US + 2_000, 1)
    put(runtime, "c1", T0_US + 1_000, 2)  # older: offline only
    assert online_count(runtime, "c1") == 1
    put(runtime, "c1", T0_US + 2_999, 3)  # same millisecond = equal event time: kept as is
    assert online_count(runtime, "c1") == 1
    put(runtime, "c1", T0_US + 3_000, 4)  # strictly newer
    assert online_count(runtime, "c1") == 4
    assert len(runtime.offline_rows) == 4  # the offline store keeps every write
    assert [row["row"]["txn_count_1h"] for row in runtime.offline_rows] == [1, 2, 3, 4]
    assert all(row["row"]["is_deleted"] is False for row in runtime.offline_rows)


def test_target_stores_are_honoured(runtime):
    put(runtime, "c1", T0_US, 1, targets=["OfflineStore"])
    assert online_count(runtime, "c1") is None and len(runtime.offline_rows) == 1
    put(runtime, "c1", T0_US, 2, targets=["OnlineStore"])
    assert online_count(runtime, "c1") == 2 and len(runtime.offline_rows) == 1


def test_invalid_records_are_per_entry_validation_errors(runtime):
    bad = [*record("c1", T0_US, 1), {"FeatureName": "not_a_feature", "ValueAsString": "1"}]
    wrong_type = [*record("c2", T0_US, 1)[:2], {"FeatureName": "txn_count_1h", "ValueAsString": "1.5"}]
    response = runtime.batch_write_record(
        Entries=[
            {"FeatureGroupName": GROUP, "Record": bad},
            {"FeatureGroupName": GROUP, "Record": wrong_type},
            {"FeatureGroupName": GROUP, "Record": record("c3", T0_US, 1)},
            {"FeatureGroupName": "no-such-group", "Record": record("c4", T0_US, 1)},
        ]
    )
    assert [error["ErrorCode"] for error in response["Errors"]] == [
        "ValidationError",
        "ValidationError",
        "ResourceNotFound",
    ]
    assert online_count(runtime, "c3") == 1
    with pytest.raises(ClientError, match="ValidationError"):
        runtime.batch_write_record(Entries=[{"FeatureGroupName": GROUP, "Record": record("c", T0_US, 1)}] * 26)


def test_hard_delete_needs_a_later_event_time_and_removes_the_record(runtime):
    put(runtime, "c1", T0_US, 1)
    with pytest.raises(ClientError, match="ValidationError"):
        runtime.delete_record(
            FeatureGroupName=GROUP,
            RecordIdentifierValueAsString="c1",
            EventTime=event_time_text(T0_US),
            TargetStores=["OnlineStore"],
            DeletionMode="HardDelete",
        )
    assert online_count(runtime, "c1") == 1
    runtime.delete_record(
        FeatureGroupName=GROUP,
        RecordIdentifierValueAsString="c1",
        EventTime=event_time_text(T0_US + 1_000),
        TargetStores=["OnlineStore"],
        DeletionMode="HardDelete",
    )
    assert online_count(runtime, "c1") is None
    assert len(runtime.offline_rows) == 1  # TargetStores=[OnlineStore]: no deleted-record marker
    put(runtime, "c1", T0_US - 5_000, 7)  # nothing stored any more: even an older record is taken
    assert online_count(runtime, "c1") == 7


def test_soft_delete_keeps_blocking_older_writes_and_marks_the_offline_store(runtime):
    put(runtime, "c1", T0_US, 1)
    runtime.delete_record(
        FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1", EventTime=event_time_text(T0_US + 1_000)
    )
    assert online_count(runtime, "c1") is None
    marker = runtime.offline_rows[-1]["row"]
    assert marker["is_deleted"] is True and marker["event_time"] == event_time_text(T0_US + 1_000)
    assert marker["txn_count_1h"] is None
    put(runtime, "c1", T0_US + 500, 2)  # older than the delete: not online
    assert online_count(runtime, "c1") is None
    put(runtime, "c1", T0_US + 2_000, 3)
    assert online_count(runtime, "c1") == 3


def test_ttl_expires_records_with_the_injected_clock(store, runtime, clock):
    event = datetime(2026, 1, 1, 12, tzinfo=UTC)
    ts_us = int(event.timestamp() * 1_000_000)
    put(runtime, "record-ttl", ts_us, 1, ttl={"Unit": "Hours", "Value": 1})
    store.set_ttl(GROUP, TtlDuration("Days", 1))  # the group's TTL, for records without their own
    group_ttl = LocalFeatureStoreRuntime(store, clock=clock)
    put(group_ttl, "group-ttl", ts_us, 1)
    clock.now = event + timedelta(minutes=59, seconds=59)
    assert online_count(group_ttl, "record-ttl") == 1
    found = group_ttl.get_record(
        FeatureGroupName=GROUP, RecordIdentifierValueAsString="record-ttl", ExpirationTimeResponse="Enabled"
    )
    assert found["ExpiresAt"] == "2026-01-01T13:00:00.000Z"
    clock.now = event + timedelta(hours=1)  # ExpiresAt = EventTime + TtlDuration: gone
    assert online_count(group_ttl, "record-ttl") is None
    assert online_count(group_ttl, "group-ttl") == 1  # the record-level TTL overrode the group's only there
    clock.now = event + timedelta(days=1)
    assert online_count(group_ttl, "group-ttl") is None
    put(group_ttl, "record-ttl", ts_us - 1_000_000, 2)  # an expired record no longer blocks older writes
    assert online_count(group_ttl, "record-ttl") is None  # ... but this one is already expired itself
    clock.now = event
    put(group_ttl, "fresh", ts_us, 3)
    assert online_count(group_ttl, "fresh") == 3


def test_without_the_correction_a_late_event_never_reaches_the_online_store(runtime):
    """Why the correction exists: gold's newest row changed (a late event) but kept its event time."""
    put(runtime, "c1", T0_US + 5_000, 1)
    put(runtime, "c1", T0_US + 5_000, 2)  # a plain rewrite with the same event time is ignored
    assert online_count(runtime, "c1") == 1


def test_the_late_data_sequence_corrects_the_local_online_store(runtime):
    """The writer's sequence (BatchGetRecord → GetRecord → DeleteRecord HardDelete → BatchWriteRecord) on the
    local backend: an equal stored event time is corrected, a newer one is kept (the online store never moves
    backward; the older row goes offline only), the late row itself goes offline only."""
    options = WriterOptions(feature_group=GROUP, sleep=lambda _: None)
    write_records(
        runtime,
        [
            PendingRecord(record("c1", T0_US + 5_000, 1), online=True),
            PendingRecord(record("c2", T0_US + 9_000, 1), True),
        ],
        options,
    )
    stats = write_records(
        runtime,
        [
            PendingRecord(record("c1", T0_US + 1_000, 1), online=False),  # the late event
            PendingRecord(record("c1", T0_US + 5_000, 2), online=True),  # newest row, recomputed
            PendingRecord(record("c2", T0_US + 8_000, 5), online=True),  # gold's newest is older than stored
        ],
        options,
    )
    assert stats.online_corrections == 1 and stats.online_skipped_older == 1 and stats.dead_letters == []
    assert online_count(runtime, "c1") == 2 and online_count(runtime, "c2") == 1
    reader = OnlineFeatures(runtime)
    assert reader.get("c1")["event_time"] == event_time_text(T0_US + 5_000)
    assert set(reader.get_many(["c1", "c2", "unknown"])) == {"c1", "c2"}
    assert reader.get("unknown") is None
    offline = [
        (row["row"]["card_id"], row["row"]["txn_count_1h"], row["row"]["is_deleted"]) for row in runtime.offline_rows
    ]
    assert offline == [("c1", 1, False), ("c2", 1, False), ("c1", 1, False), ("c1", 2, False), ("c2", 5, False)]


def test_group_registry_in_sqlite(store):
    described = store.describe_group(GROUP)
    assert described["FeatureGroupStatus"] == "Created"
    assert described["FeatureDefinitions"] == group_spec().as_api()
    with pytest.raises(ClientError, match="ResourceInUse"):
        store.create_group(group_spec())
    assert store.describe_group("card-features-v99") is None


def test_a_read_proceeds_while_a_writer_holds_the_write_lock(tmp_path, store, clock):
    """Local online-store reads never take (or wait for) SQLite's write lock: a serving read and the writer's
    own BatchGetRecord both answer while another connection holds BEGIN IMMEDIATE."""
    import sqlite3
    import time

    put(LocalFeatureStoreRuntime(store, clock=clock), "c1", T0_US, 7)
    writer = sqlite3.connect(store.path, isolation_level=None, timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE online_records SET record = record")  # an uncommitted write in flight
    try:
        for read_only in (False, True):  # the ingestion's own reads, then serving's read-only store
            reader_store = LocalStore(store.path, read_only=True) if read_only else LocalStore(store.path)
            reader_store.db.execute("PRAGMA busy_timeout = 100")
            started = time.monotonic()
            assert online_count(LocalFeatureStoreRuntime(reader_store, clock=clock), "c1") == 7
            assert time.monotonic() - started < 1.0
            reader_store.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
