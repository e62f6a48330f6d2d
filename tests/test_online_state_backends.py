"""The OnlineStateStore contract, run against every backend: SQLite (local) and DynamoDB (moto).

One suite, so the two cannot drift apart; DynamoDB-only behaviour (item layout, pagination, retries of
unprocessed items, cancelled transactions) follows at the end.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from feature_store.online_state import SERVED, SILVER, STATE_RETENTION, SqliteOnlineState, StateEvent, sort_key

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from feature_store.online_state_dynamodb import (  # noqa: E402 - after the importorskips
    EXPIRY_MARGIN,
    DynamoDbOnlineState,
    OnlineStateWriteError,
    create_table,
    marker_key,
)

REGION = "eu-west-1"
TABLE = "card-online-state"


def event(event_id, ts_us, *, card_id="card-1", amount="12.5000000000", origin=SERVED, fp="f", merchant="m-1"):
    return StateEvent(card_id, event_id, ts_us, Decimal(amount), merchant, "US", origin, fp)


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with moto.mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE)
        yield client


class SerializedClient:
    """moto's in-process DynamoDB is not thread-safe (a transaction deep-copies the table while another
    thread writes it); the real service serializes conflicting writes itself. One call at a time here, so
    threads still interleave their calls in any order."""

    def __init__(self, client) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def serialized(*args, **kwargs):
            with self._lock:
                return attribute(*args, **kwargs)

        return serialized


@pytest.fixture(params=["sqlite", "dynamodb"])
def state(request, tmp_path):
    if request.param == "sqlite":
        store = SqliteOnlineState(tmp_path / "online_state.db")
    else:
        store = DynamoDbOnlineState(TABLE, client=SerializedClient(request.getfixturevalue("aws")))
    yield store
    store.close()


def ids(events):
    return [item.event_id for item in events]


# The contract -----------------------------------------------------------------------------------------


def test_window_is_inclusive_and_ordered_by_ts_then_event_id(state):
    for item in [event("b", 100), event("a", 100), event("c", 99), event("d", 201), event("e", 200), event("f", 0)]:
        assert state.add_served(item) is None
    assert ids(state.window("card-1", 100, 200)) == ["a", "b", "e"]
    assert ids(state.window("card-1", 99, 99)) == ["c"]
    assert ids(state.window("card-1", 0, 10**15)) == ["f", "c", "a", "b", "e", "d"]
    assert ids(state.window("card-1", -5, 0)) == ["f"]
    assert state.window("card-1", 201, 200) == []
    assert state.window("card-2", 0, 10**15) == []


def test_event_ids_that_sort_oddly_stay_in_their_ts(state):
    """'#', '$', '~' and non-ASCII in an event_id must not move it out of its ts's key range."""
    for item in [event("$x", 100), event("#y", 100), event("~z", 100), event("é", 100), event("a", 101)]:
        state.add_served(item)
    assert ids(state.window("card-1", 100, 100)) == sorted(["$x", "#y", "~z", "é"])
    assert ids(state.window("card-1", 101, 101)) == ["a"]


def test_fields_and_amounts_round_trip_exactly(state):
    amount = "123456789012345678.1234567891"
    stored = event("x", 1_700_000_000_123_456, amount=amount, fp="abc", merchant="mérchant")
    state.add_served(stored)
    found = state.find("card-1", "x")
    assert found == stored and str(found.amount_usd) == amount
    assert state.window("card-1", stored.ts_us, stored.ts_us) == [stored]


def test_add_served_is_a_conditional_create(state):
    first = event("x", 5, fp="one")
    assert state.add_served(first) is None
    assert state.add_served(first) == first  # a replay: nothing written
    assert state.add_served(event("x", 9, fp="two")) == first  # same event_id, another ts and payload
    assert state.window("card-1", 0, 100) == [first]
    assert state.find("card-1", "x") == first and state.find("card-1", "y") is None
    assert state.add_served(event("x", 5, card_id="card-2")) is None  # event_ids are per card
    with pytest.raises(ValueError, match="served events"):
        state.add_served(event("z", 5, origin=SILVER))


def test_two_concurrent_add_served_of_one_event_one_wins(state):
    start = threading.Barrier(2)
    results = {}

    def serve(fingerprint: str, ts_us: int) -> None:
        start.wait()
        results[fingerprint] = state.add_served(event("x", ts_us, fp=fingerprint))

    threads = [threading.Thread(target=serve, args=args) for args in (("one", 5), ("two", 7))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [fp for fp, stored in results.items() if stored is None]
    assert len(winners) == 1
    loser = "two" if winners == ["one"] else "one"
    assert results[loser].payload_fingerprint == winners[0]
    assert [item.payload_fingerprint for item in state.window("card-1", 0, 100)] == winners


def test_concurrent_authorizations_of_one_card_all_land(state):
    start = threading.Barrier(4)

    def serve(index: int) -> None:
        start.wait()
        for offset in range(10):
            assert state.add_served(event(f"e{index}-{offset}", 1_000 + offset)) is None

    threads = [threading.Thread(target=serve, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(state.window("card-1", 0, 10**6)) == 40


def test_silver_wins_over_a_served_copy(state):
    state.add_served(event("x", 5, fp="served"))
    state.add_served(event("y", 7))
    silver_x = event("x", 6, origin=SILVER, fp="silver")  # silver's ts differs: the served copy goes
    assert state.upsert_silver([silver_x, event("z", 1, origin=SILVER)]) == 2
    window = state.window("card-1", 0, 10)
    assert [(item.event_id, item.origin) for item in window] == [("z", SILVER), ("x", SILVER), ("y", SERVED)]
    assert state.find("card-1", "x") == silver_x
    assert state.add_served(event("x", 5)) == silver_x  # a later serve of it sees silver's
    assert state.upsert_silver([silver_x]) == 1  # idempotent
    assert state.window("card-1", 0, 10) == window
    assert state.upsert_silver([]) == 0
    with pytest.raises(ValueError, match="silver events"):
        state.upsert_silver([event("q", 1)])


def test_upsert_silver_same_ts_replaces_in_place_and_last_of_a_batch_wins(state):
    state.add_served(event("x", 5, fp="served"))
    assert state.upsert_silver([event("x", 5, origin=SILVER, fp="a"), event("x", 5, origin=SILVER, fp="b")]) == 1
    assert state.window("card-1", 0, 10) == [event("x", 5, origin=SILVER, fp="b")]


def test_remove(state):
    state.add_served(event("x", 5))
    state.add_served(event("y", 7))
    state.upsert_silver([event("z", 6, origin=SILVER)])
    assert state.remove([("card-1", "y"), ("card-1", "missing"), ("card-2", "x")]) == 1
    assert ids(state.window("card-1", 0, 10)) == ["x", "z"]
    assert state.find("card-1", "y") is None
    assert state.add_served(event("y", 8)) is None  # removed ids can be served again
    assert state.remove([]) == 0


def test_prune_by_event_time(state):
    for ts in (1, 2, 3, 4):
        state.add_served(event(f"e{ts}", ts))
    state.add_served(event("other-card", 1, card_id="card-2"))
    assert state.prune("card-1", 3) == 2
    assert ids(state.window("card-1", 0, 10)) == ["e3", "e4"]
    assert state.find("card-1", "e1") is None and state.find("card-1", "e3") is not None
    assert state.prune("card-1", 3) == 0
    assert state.prune("card-1", 0) == 0
    assert ids(state.window("card-2", 0, 10)) == ["other-card"]
    assert state.add_served(event("e1", 1)) is None  # a pruned id is unknown again


def test_many_events_of_one_card(state):
    """More items than one DynamoDB batch call (25 writes, 100 reads) in each operation."""
    silver = [event(f"s{index:03d}", 1_000 + index, origin=SILVER) for index in range(130)]
    assert state.upsert_silver(silver) == 130
    assert state.window("card-1", 0, 10**6) == silver
    assert state.prune("card-1", 1_060) == 60
    assert state.remove([("card-1", item.event_id) for item in silver[60:120]]) == 60
    assert state.window("card-1", 0, 10**6) == silver[120:]


# DynamoDB only ------------------------------------------------------------------------------------------


class PagingClient:
    """A DynamoDB client whose queries return `page_size` items a page and whose first `unprocessed` batch
    calls leave half their items unprocessed: the backend must page and retry."""

    def __init__(self, client, *, page_size: int = 2, unprocessed: int = 2) -> None:
        self._client = client
        self.page_size = page_size
        self.unprocessed_writes = unprocessed
        self.unprocessed_reads = unprocessed
        self.calls: dict[str, int] = {}

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def query(self, **request):
        self._count("query")
        return self._client.query(**request, Limit=self.page_size)

    def batch_write_item(self, RequestItems):  # noqa: N803 - boto3's parameter name
        self._count("batch_write_item")
        ((table, requests),) = RequestItems.items()
        if self.unprocessed_writes > 0 and len(requests) > 1:
            self.unprocessed_writes -= 1
            half = len(requests) // 2
            self._client.batch_write_item(RequestItems={table: requests[:half]})
            return {"UnprocessedItems": {table: requests[half:]}}
        return self._client.batch_write_item(RequestItems=RequestItems)

    def batch_get_item(self, RequestItems):  # noqa: N803
        self._count("batch_get_item")
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        if self.unprocessed_reads > 0 and len(keys) > 1:
            self.unprocessed_reads -= 1
            half = len(keys) // 2
            response = self._client.batch_get_item(RequestItems={table: {**request, "Keys": keys[:half]}})
            return {**response, "UnprocessedKeys": {table: {**request, "Keys": keys[half:]}}}
        return self._client.batch_get_item(RequestItems=RequestItems)


def test_dynamodb_pages_queries_and_retries_unprocessed_items(aws):
    client = PagingClient(aws)
    state = DynamoDbOnlineState(TABLE, client=client, sleep=lambda _: None)
    events = [event(f"e{index}", 100 + index, origin=SILVER) for index in range(9)]
    state.upsert_silver(events)
    assert state.window("card-1", 0, 1_000) == events
    assert client.calls["query"] >= 5  # 9 items, 2 a page
    assert state.prune("card-1", 105) == 5
    assert state.window("card-1", 0, 1_000) == events[5:]
    assert client.unprocessed_writes == client.unprocessed_reads == 0
    assert client.calls["batch_write_item"] == 4 and client.calls["batch_get_item"] == 4  # 2 + 2 retries


def test_dynamodb_gives_up_on_items_that_stay_unprocessed(aws):
    class Throttled:
        def __getattr__(self, name):
            return getattr(aws, name)

        def batch_write_item(self, RequestItems):  # noqa: N803
            return {"UnprocessedItems": RequestItems}

    state = DynamoDbOnlineState(TABLE, client=Throttled(), sleep=lambda _: None)
    with pytest.raises(OnlineStateWriteError, match="unprocessed"):
        state.upsert_silver([event("x", 1, origin=SILVER), event("y", 2, origin=SILVER)])


def test_dynamodb_item_layout(aws):
    state = DynamoDbOnlineState(TABLE, client=aws)
    served = event("x", 1_700_000_000_000_000)
    state.add_served(served)
    items = aws.scan(TableName=TABLE)["Items"]
    keys = sorted(item["sk"]["S"] for item in items)
    assert keys == [sort_key(served.ts_us, "x"), marker_key("x")]
    stored = next(item for item in items if item["sk"]["S"] == sort_key(served.ts_us, "x"))
    assert stored["amount_usd"] == {"S": "12.5000000000"}
    assert stored["ts_us"] == {"N": str(served.ts_us)}
    expected_expiry = 1_700_000_000 + int((STATE_RETENTION + EXPIRY_MARGIN).total_seconds())
    assert stored["expires_at"] == {"N": str(expected_expiry)}
    assert "card_number" not in stored
    ttl = aws.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"


def test_dynamodb_marker_without_event_is_not_a_window_event(aws):
    """A marker sorts after every event key: a wide window never returns it."""
    state = DynamoDbOnlineState(TABLE, client=aws)
    state.add_served(event("x", 5))
    assert ids(state.window("card-1", 0, 10**20)) == ["x"]


def test_dynamodb_retries_a_transaction_conflict(aws):
    class ConflictOnce:
        def __init__(self) -> None:
            self.conflicts = 1

        def __getattr__(self, name):
            return getattr(aws, name)

        def transact_write_items(self, **request):
            if self.conflicts:
                self.conflicts -= 1
                raise aws.exceptions.TransactionCanceledException(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                        "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                    },
                    "TransactWriteItems",
                )
            return aws.transact_write_items(**request)

    client = ConflictOnce()
    state = DynamoDbOnlineState(TABLE, client=client, sleep=lambda _: None)
    assert state.add_served(event("x", 5)) is None
    assert client.conflicts == 0 and state.find("card-1", "x") == event("x", 5)


def test_dynamodb_needs_a_region_and_a_table(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ValueError, match="region"):
        DynamoDbOnlineState(TABLE)
    with pytest.raises(ValueError, match="table name"):
        DynamoDbOnlineState("", client=object())


def test_dynamodb_prune_keeps_a_marker_that_points_at_a_newer_copy(aws):
    """An orphan old event item (a crash between an upsert's put and delete) is pruned; the marker of the
    event's current copy stays."""
    state = DynamoDbOnlineState(TABLE, client=aws)
    state.upsert_silver([event("x", 50, origin=SILVER)])
    orphan = state._event_item(event("x", 5, origin=SILVER))
    aws.put_item(TableName=TABLE, Item=orphan)
    assert state.prune("card-1", 10) == 1
    assert state.find("card-1", "x") == event("x", 50, origin=SILVER)
