"""The batch writer against botocore's Stubber on a real featurestore-runtime client: exact requests."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from feature_store.backends.sagemaker import runtime_client
from feature_store.batch_writer import FeatureStoreUnavailable, PendingRecord, WriterOptions, write_records
from feature_store.definitions import TtlDuration
from feature_store.records import event_time_text

GROUP = "card-features-v1"
T0_US = 1767225600 * 1_000_000
BOTH = ["OnlineStore", "OfflineStore"]
OFFLINE = ["OfflineStore"]
OK = {"Errors": [], "UnprocessedEntries": []}


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    runtime = runtime_client("eu-west-1")
    with Stubber(runtime) as stubber:
        runtime.stubber = stubber
        yield runtime
        stubber.assert_no_pending_responses()


def record(card: str, ts_us: int, count: int = 1) -> list[dict]:
    return [
        {"FeatureName": "card_id", "ValueAsString": card},
        {"FeatureName": "event_time", "ValueAsString": event_time_text(ts_us)},
        {"FeatureName": "txn_count_1h", "ValueAsString": str(count)},
    ]


def pending(card: str, ts_us: int, *, online: bool = False, count: int = 1) -> PendingRecord:
    return PendingRecord(record(card, ts_us, count), online=online, source={"event_id": f"{card}@{ts_us}"})


def entry(item: PendingRecord, ttl: dict | None = None) -> dict:
    value = {"FeatureGroupName": GROUP, "Record": item.record, "TargetStores": BOTH if item.online else OFFLINE}
    if ttl:
        value["TtlDuration"] = ttl
    return value


def options(**overrides) -> WriterOptions:
    sleeps = []
    values = {"feature_group": GROUP, "sleep": sleeps.append, "jitter": lambda: 0.5, "base_delay_seconds": 0.2}
    values.update(overrides)
    result = WriterOptions(**values)
    result.sleeps = sleeps
    return result


def expect_get(client, cards: list[str], stored: dict[str, int] | None = None) -> None:
    stored = stored or {}
    client.stubber.add_response(
        "batch_get_record",
        {
            "Records": [
                {
                    "FeatureGroupName": GROUP,
                    "RecordIdentifierValueAsString": card,
                    "Record": [{"FeatureName": "event_time", "ValueAsString": event_time_text(stored[card])}],
                }
                for card in cards
                if card in stored
            ],
            "Errors": [],
            "UnprocessedIdentifiers": [],
        },
        {
            "Identifiers": [
                {"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": cards, "FeatureNames": ["event_time"]}
            ]
        },
    )


def expect_write(client, entries: list[dict], response: dict | None = None) -> None:
    client.stubber.add_response("batch_write_record", response or OK, {"Entries": entries})


def test_batches_of_at_most_25_entries_and_the_online_offline_split(client):
    # Three cards; each card's last row is its newest gold row (online), the others are history.
    records = [pending(f"c{index % 3}", T0_US + index * 1_000_000, online=index >= 57) for index in range(60)]
    expect_get(client, ["c0", "c1", "c2"])
    offline_first = [item for item in records if not item.online] + [item for item in records if item.online]
    expected = [entry(item) for item in offline_first]
    for start in (0, 25, 50):
        expect_write(client, expected[start : start + 25])
    stats = write_records(client, records, options())
    assert stats.entries_per_call == {25: 2, 10: 1}
    assert stats.calls == {"BatchGetRecord": 1, "BatchWriteRecord": 3}
    assert (stats.written, stats.online_records, stats.offline_only_records) == (60, 3, 57)
    assert [item["TargetStores"] for item in expected[-3:]] == [BOTH] * 3
    assert all(item["TargetStores"] == OFFLINE for item in expected[:-3])
    assert stats.dead_letters == [] and stats.retries == 0


def test_online_entries_carry_the_record_level_ttl(client):
    items = [pending("c1", T0_US, online=True), pending("c1", T0_US - 1000)]
    expect_get(client, ["c1"])
    ttl = {"Unit": "Days", "Value": 30}
    expect_write(client, [entry(items[1]), entry(items[0], ttl)])
    write_records(client, items, options(ttl=TtlDuration("Days", 30)))


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 400), ("ServiceUnavailable", 503)])
def test_throttling_and_5xx_are_retried_with_exponential_backoff_and_jitter(client, code, status):
    items = [pending("c1", T0_US), pending("c2", T0_US)]
    for _ in range(2):
        client.stubber.add_client_error(
            "batch_write_record",
            service_error_code=code,
            service_message="slow down",
            http_status_code=status,
            expected_params={"Entries": [entry(item) for item in items]},
        )
    expect_write(client, [entry(item) for item in items])
    settings = options()
    stats = write_records(client, items, settings)
    assert stats.written == 2 and stats.dead_letters == []
    assert settings.sleeps == [0.5 * 0.2, 0.5 * 0.4]  # jitter × base × 2^(attempt-1)
    assert stats.calls["BatchWriteRecord"] == 3 and stats.error_codes[code] == 2


def test_backoff_is_capped_and_jittered():
    settings = WriterOptions(feature_group=GROUP, base_delay_seconds=1, max_delay_seconds=5, jitter=lambda: 0.999)
    assert [round(settings.backoff_seconds(attempt), 3) for attempt in (1, 2, 3, 4, 10)] == [
        0.999,
        1.998,
        3.996,
        4.995,
        4.995,
    ]
    assert WriterOptions(feature_group=GROUP, jitter=lambda: 0.0).backoff_seconds(5) == 0.0


def test_unprocessed_entries_are_rebatched_into_full_batches(client):
    items = [pending(f"c{index}", T0_US + index) for index in range(30)]
    entries = [entry(item) for item in items]
    expect_write(client, entries[:25], {"Errors": [], "UnprocessedEntries": entries[3:6]})
    expect_write(client, entries[25:], {"Errors": [], "UnprocessedEntries": [entries[27]]})
    expect_write(client, [*entries[3:6], entries[27]])  # one batch of the leftovers of both calls
    stats = write_records(client, items, options())
    assert stats.entries_per_call == {25: 1, 5: 1, 4: 1}
    assert stats.written == 30 and stats.dead_letters == [] and stats.retries == 4


def test_retryable_entry_errors_are_retried_and_validation_errors_are_not(client):
    items = [pending("bad", T0_US), pending("busy", T0_US), pending("fine", T0_US)]
    entries = [entry(item) for item in items]
    expect_write(
        client,
        entries,
        {
            "Errors": [
                {"Entry": entries[0], "ErrorCode": "ValidationError", "ErrorMessage": "txn_count_1h is not Integral"},
                {"Entry": entries[1], "ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
            ],
            "UnprocessedEntries": [],
        },
    )
    expect_write(client, [entries[1]])  # only the retryable one, never the ValidationError
    stats = write_records(client, items, options())
    assert stats.written == 2
    [letter] = stats.dead_letters
    assert (letter["card_id"], letter["error_code"], letter["stage"], letter["attempts"]) == (
        "bad",
        "ValidationError",
        "write",
        1,
    )
    assert letter["error_message"] == "txn_count_1h is not Integral" and letter["record"] == items[0].record
    assert letter["source"] == {"event_id": f"bad@{T0_US}"} and letter["feature_group"] == GROUP


def test_records_are_dead_lettered_after_the_last_attempt(client):
    items = [pending("c1", T0_US)]
    for _ in range(3):
        expect_write(client, [entry(items[0])], {"Errors": [], "UnprocessedEntries": [entry(items[0])]})
    stats = write_records(client, items, options(max_attempts=3))
    [letter] = stats.dead_letters
    assert (letter["error_code"], letter["attempts"]) == ("Unprocessed", 3)
    assert stats.written == 0


def test_a_call_level_validation_error_dead_letters_its_batch(client):
    items = [pending("c1", T0_US), pending("c2", T0_US)]
    client.stubber.add_client_error(
        "batch_write_record", service_error_code="ValidationError", service_message="bad request", http_status_code=400
    )
    stats = write_records(client, items, options())
    assert [letter["error_code"] for letter in stats.dead_letters] == ["ValidationError"] * 2


def test_errors_no_retry_can_fix_stop_the_run(client):
    client.stubber.add_client_error(
        "batch_write_record", service_error_code="AccessForbidden", service_message="no", http_status_code=403
    )
    with pytest.raises(FeatureStoreUnavailable, match="AccessForbidden"):
        write_records(client, [pending("c1", T0_US)], options())


def expect_get_record(client, card: str, stored_us: int | None, count: int = 1) -> None:
    response = {} if stored_us is None else {"Record": record(card, stored_us, count)}
    client.stubber.add_response(
        "get_record", response, {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": card}
    )


def expect_delete(client, card: str, stored_us: int) -> None:
    client.stubber.add_response(
        "delete_record",
        {},
        {
            "FeatureGroupName": GROUP,
            "RecordIdentifierValueAsString": card,
            "EventTime": event_time_text(stored_us + 1_000),
            "TargetStores": ["OnlineStore"],
            "DeletionMode": "HardDelete",
        },
    )


def test_late_data_correction_request_sequence(client):
    """A card whose online record has the same event time as its newest gold row: GetRecord (the record to
    restore if the write fails), DeleteRecord HardDelete on the online store at stored + 1 ms, then the write;
    the others only the write."""
    same = pending("same", T0_US + 5_000, online=True, count=2)  # late event changed the newest row
    older = pending("older", T0_US + 5_000, online=True)  # ordinary new event
    absent = pending("absent", T0_US, online=True)
    history = pending("same", T0_US + 1_000)  # the late event itself: offline only
    stored = {"same": T0_US + 5_999, "older": T0_US + 4_000}  # same ms as `same`
    expect_get(client, ["same", "older", "absent"], stored)
    expect_get_record(client, "same", stored["same"])
    expect_delete(client, "same", stored["same"])
    expect_write(client, [entry(history), entry(same), entry(older), entry(absent)])
    stats = write_records(client, [same, older, absent, history], options())
    assert stats.online_corrections == 1 and stats.written == 4
    assert event_time_text(stored["same"] + 1_000) == "2026-01-01T00:00:00.006Z"
    assert stats.calls == {"BatchGetRecord": 1, "GetRecord": 1, "DeleteRecord": 1, "BatchWriteRecord": 1}


def test_an_older_row_never_deletes_or_overwrites_a_newer_online_record(client):
    """The store holds a newer record than the row flagged online (a slower writer, an older gold version's
    replay): no DeleteRecord, the row goes to the offline store only."""
    older_row = pending("c1", T0_US, online=True)
    expect_get(client, ["c1"], {"c1": T0_US + 9_000})
    expect_write(client, [{"FeatureGroupName": GROUP, "Record": older_row.record, "TargetStores": OFFLINE}])
    stats = write_records(client, [older_row], options())
    assert "DeleteRecord" not in stats.calls
    assert (stats.online_skipped_older, stats.online_corrections, stats.written) == (1, 0, 1)


def test_a_record_newer_by_the_time_of_the_correction_is_kept(client):
    """Equal at the batch read, newer at the GetRecord just before the delete: no delete, offline only."""
    row = pending("c1", T0_US, online=True, count=2)
    expect_get(client, ["c1"], {"c1": T0_US})
    expect_get_record(client, "c1", T0_US + 5_000)
    expect_write(client, [{"FeatureGroupName": GROUP, "Record": row.record, "TargetStores": OFFLINE}])
    stats = write_records(client, [row], options())
    assert "DeleteRecord" not in stats.calls and stats.online_skipped_older == 1


def test_a_deleted_record_whose_write_fails_is_restored(client):
    """Correction deleted the online record, then the corrected write failed for good: the old record is put
    back (online store only) before write_records returns; the row is a dead letter for the replay."""
    row = pending("c1", T0_US, online=True, count=2)
    expect_get(client, ["c1"], {"c1": T0_US})
    expect_get_record(client, "c1", T0_US, count=1)
    expect_delete(client, "c1", T0_US)
    expect_write(
        client,
        [entry(row)],
        {
            "Errors": [
                {
                    "ErrorCode": "ValidationError",
                    "ErrorMessage": "bad",
                    "Entry": entry(row),
                }
            ],
            "UnprocessedEntries": [],
        },
    )
    restored = {"FeatureGroupName": GROUP, "Record": record("c1", T0_US, 1), "TargetStores": ["OnlineStore"]}
    expect_write(client, [restored])
    stats = write_records(client, [row], options())
    [letter] = stats.dead_letters
    assert (letter["stage"], letter["error_code"]) == ("write", "ValidationError")
    assert (stats.online_corrections, stats.online_restored, stats.written) == (1, 1, 0)


def test_a_failed_correction_dead_letters_the_record_instead_of_writing_it(client):
    item = pending("c1", T0_US, online=True)
    expect_get(client, ["c1"], {"c1": T0_US})
    expect_get_record(client, "c1", T0_US)
    client.stubber.add_client_error(
        "delete_record", service_error_code="ValidationError", service_message="EventTime", http_status_code=400
    )
    stats = write_records(client, [item], options())
    [letter] = stats.dead_letters
    assert (letter["stage"], letter["error_code"], letter["online"]) == ("delete", "ValidationError", True)
    assert stats.calls.get("BatchWriteRecord", 0) == 0


def test_online_reads_are_retried_and_batched_by_100(client):
    cards = [f"c{index:03d}" for index in range(120)]
    items = [pending(card, T0_US, online=True) for card in cards]
    client.stubber.add_client_error("batch_get_record", service_error_code="ThrottlingException", http_status_code=400)
    expect_get(client, cards[:100])
    client.stubber.add_response(
        "batch_get_record",
        {
            "Records": [],
            "Errors": [],
            "UnprocessedIdentifiers": [
                {
                    "FeatureGroupName": GROUP,
                    "RecordIdentifiersValueAsString": cards[100:102],
                    "FeatureNames": ["event_time"],
                }
            ],
        },
        {
            "Identifiers": [
                {
                    "FeatureGroupName": GROUP,
                    "RecordIdentifiersValueAsString": cards[100:],
                    "FeatureNames": ["event_time"],
                }
            ]
        },
    )
    expect_get(client, cards[100:102])
    for start in range(0, 120, 25):
        expect_write(client, [entry(item) for item in items[start : start + 25]])
    stats = write_records(client, items, options())
    assert stats.calls["BatchGetRecord"] == 4 and stats.written == 120


def test_response_entries_are_matched_loosely_and_never_lost(client):
    """An entry echoed back without some fields is still matched to what was sent; one that matches
    nothing sent becomes a dead letter rather than being counted as written."""
    items = [pending("c1", T0_US, online=True), pending("c2", T0_US)]
    expect_get(client, ["c1"])
    sent = [entry(items[1]), entry(items[0], {"Unit": "Days", "Value": 1})]
    echoed = {"FeatureGroupName": GROUP, "Record": items[0].record}  # no TargetStores, no TtlDuration
    stranger = {"FeatureGroupName": GROUP, "Record": record("c9", T0_US)}
    expect_write(
        client,
        sent,
        {
            "Errors": [
                {"Entry": echoed, "ErrorCode": "ValidationError", "ErrorMessage": "no"},
                {"Entry": stranger, "ErrorCode": "ValidationError", "ErrorMessage": "who?"},
            ],
            "UnprocessedEntries": [],
        },
    )
    stats = write_records(client, items, options(ttl=TtlDuration("Days", 1)))
    assert stats.written == 1
    assert [(letter["card_id"], letter["online"]) for letter in stats.dead_letters] == [("c1", True), ("c9", False)]
    assert "not matched" in stats.dead_letters[1]["error_message"]
