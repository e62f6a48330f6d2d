"""The online state on DynamoDB: the AWS backend of `OnlineStateStore` (feature_store/online_state.py).

Table: partition key `card_id` (S), sort key `sk` (S), on-demand, TTL on `expires_at` (infra/terraform).
Two kinds of items per card:

    event    sk = sort_key(ts_us, event_id)   "00000001700000000000000#e-1"   what `window` reads
    marker   sk = "id#" + event_id             "id#e-1"                       what `find` reads

A marker holds the whole event plus `event_sk` (the event item's sort key), so `find` is one GetItem and
`add_served` is one TransactWriteItems creating both items only if neither exists: a conditional create,
never a read-modify-write, so two concurrent authorizations of one card both land and two deliveries of
one event_id cannot both win. Marker keys ("i…") sort after every event key (digits), so a range on
event keys never meets a marker.

`expires_at` (epoch seconds) = the event's ts + the state retention + a margin. TTL is only a cleanup of
events nobody prunes (a served event of a card that goes quiet): retention is by event time, enforced by
the sync's `prune`, and reads select by the ts range of the key, never relying on TTL (it deletes late).

Every read is strongly consistent. Batch writes retry UnprocessedItems with exponential backoff. Writes
outside `add_served` (the sync's) are idempotent puts and deletes, so a rerun after a crash repairs a
half-written batch.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from feature_store.online_state import SERVED, SILVER, TS_DIGITS, StateEvent

MARKER_PREFIX = "id#"
EXPIRY_MARGIN = timedelta(days=1)  # TTL deletes up to ~2 days late anyway; never before retention ends
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
MAX_ATTEMPTS = 8  # per batch call (unprocessed items, throttling) and per transaction (conflicts)
_MAX_TS_US = 10**TS_DIGITS - 1
_EVENT_FIELDS = ("event_id", "ts_us", "amount_usd", "merchant_id", "country", "origin", "payload_fingerprint")


class OnlineStateWriteError(RuntimeError):
    """DynamoDB kept refusing a write after every retry."""


def marker_key(event_id: str) -> str:
    return MARKER_PREFIX + event_id


def _first_key_at(ts_us: int) -> str:
    """Lower bound of every event key with this ts_us ('#' precedes any event_id)."""
    return f"{min(max(ts_us, 0), _MAX_TS_US):0{TS_DIGITS}d}#"


def _past_keys_at(ts_us: int) -> str:
    """Upper bound of every event key with this ts_us: '$' sorts right after '#'."""
    return f"{min(max(ts_us, 0), _MAX_TS_US):0{TS_DIGITS}d}$"


def default_region(region: str | None) -> str:
    value = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not value:
        raise ValueError("no AWS region for the online state table: pass region= or set AWS_REGION")
    return value


def _default_retention() -> timedelta:
    from feature_store.online_state import STATE_RETENTION

    return STATE_RETENTION


class DynamoDbOnlineState:
    """`OnlineStateStore` on a DynamoDB table (see the module docstring for the item layout)."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        region: str | None = None,
        retention: timedelta | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not table_name:
            raise ValueError("the online state table name is empty")
        if client is None:
            import boto3

            client = boto3.client("dynamodb", region_name=default_region(region))
        self.table_name = table_name
        self.client = client
        self.retention = retention if retention is not None else _default_retention()
        self._sleep = sleep

    # Items ----------------------------------------------------------------------------------------------

    def _expires_at(self, ts_us: int) -> int:
        return ts_us // 1_000_000 + int((self.retention + EXPIRY_MARGIN).total_seconds())

    def _event_item(self, event: StateEvent) -> dict:
        return {
            "card_id": {"S": event.card_id},
            "sk": {"S": event.sort_key},
            "event_id": {"S": event.event_id},
            "ts_us": {"N": str(event.ts_us)},
            "amount_usd": {"S": str(event.amount_usd)},  # exact decimal text, never a float
            "merchant_id": {"S": event.merchant_id},
            "country": {"S": event.country},
            "origin": {"S": event.origin},
            "payload_fingerprint": {"S": event.payload_fingerprint},
            "expires_at": {"N": str(self._expires_at(event.ts_us))},
        }

    def _marker_item(self, event: StateEvent) -> dict:
        return {**self._event_item(event), "sk": {"S": marker_key(event.event_id)}, "event_sk": {"S": event.sort_key}}

    @staticmethod
    def _event_of(item: dict) -> StateEvent:
        return StateEvent(
            card_id=item["card_id"]["S"],
            event_id=item["event_id"]["S"],
            ts_us=int(item["ts_us"]["N"]),
            amount_usd=Decimal(item["amount_usd"]["S"]),
            merchant_id=item["merchant_id"]["S"],
            country=item["country"]["S"],
            origin=item["origin"]["S"],
            payload_fingerprint=item["payload_fingerprint"]["S"],
        )

    def _key(self, card_id: str, sk: str) -> dict:
        return {"card_id": {"S": card_id}, "sk": {"S": sk}}

    # Reads ----------------------------------------------------------------------------------------------

    def window(self, card_id: str, low_us: int, high_us: int) -> list[StateEvent]:
        """The card's events with low_us <= ts_us <= high_us, ordered by (ts_us, event_id)."""
        if high_us < low_us or high_us < 0:
            return []
        return [
            self._event_of(item)
            for item in self._query(
                "card_id = :card AND sk BETWEEN :low AND :high",
                {":card": {"S": card_id}, ":low": {"S": _first_key_at(low_us)}, ":high": {"S": _past_keys_at(high_us)}},
            )
        ]

    def find(self, card_id: str, event_id: str) -> StateEvent | None:
        """The card's event with this event_id, whatever its ts_us, or None (one GetItem on the marker)."""
        response = self.client.get_item(
            TableName=self.table_name, Key=self._key(card_id, marker_key(event_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._event_of(item)

    def _query(self, condition: str, values: dict, projection: str | None = None) -> Iterator[dict]:
        """Every item of a key condition, page by page (1 MB each), strongly consistent."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if projection:
            request["ProjectionExpression"] = projection
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _markers(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """The marker items of (card_id, event_id) pairs that have one, by BatchGetItem."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], dict] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            pending: list[dict] = [
                self._key(card, marker_key(event_id)) for card, event_id in wanted[start : start + BATCH_GET_LIMIT]
            ]
            for attempt in range(1, MAX_ATTEMPTS + 1):
                response = self.client.batch_get_item(
                    RequestItems={self.table_name: {"Keys": pending, "ConsistentRead": True}}
                )
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[(item["card_id"]["S"], item["event_id"]["S"])] = item
                pending = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
                if not pending:
                    break
                if attempt == MAX_ATTEMPTS:
                    raise OnlineStateWriteError(
                        f"{len(pending)} marker reads still unprocessed after {attempt} attempts"
                    )
                self._backoff(attempt)
        return found

    # Writes ---------------------------------------------------------------------------------------------

    def add_served(self, event: StateEvent) -> StateEvent | None:
        """Create a served event and its marker unless the card holds the event_id: None when written, else
        the stored event (nothing written)."""
        if event.origin != SERVED:
            raise ValueError(f"add_served takes served events, got origin {event.origin!r} ({event.event_id})")
        must_be_new = "attribute_not_exists(sk)"
        transaction = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._event_item(event),
                    "ConditionExpression": must_be_new,
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._marker_item(event),
                    "ConditionExpression": must_be_new,
                }
            },
        ]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                self.client.transact_write_items(TransactItems=transaction)
                return None
            except self.client.exceptions.TransactionCanceledException as error:
                codes = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in codes:
                    stored = self.find(event.card_id, event.event_id)
                    if stored is not None:
                        return stored
                    # The event key existed without a marker (a prune or removal between the two): retry.
                if attempt == MAX_ATTEMPTS:
                    raise OnlineStateWriteError(
                        f"add_served of event {event.event_id} kept being cancelled ({codes}) after {attempt} attempts"
                    ) from error
                self._backoff(attempt)  # TransactionConflict: another transaction held one of the items
        raise AssertionError("unreachable")

    def upsert_silver(self, events: Iterable[StateEvent]) -> int:
        """Put silver events and their markers (silver wins); a copy of the same event_id under another sort
        key (another ts_us) is deleted. Returns the number of events written."""
        latest: dict[tuple[str, str], StateEvent] = {}
        for event in events:
            if event.origin != SILVER:
                raise ValueError(f"upsert_silver takes silver events, got origin {event.origin!r} ({event.event_id})")
            latest[(event.card_id, event.event_id)] = event
        if not latest:
            return 0
        markers = self._markers(latest)
        requests: list[dict] = []
        for key, event in latest.items():
            requests.append({"PutRequest": {"Item": self._event_item(event)}})
            requests.append({"PutRequest": {"Item": self._marker_item(event)}})
            stored_sk = markers.get(key, {}).get("event_sk", {}).get("S")
            if stored_sk is not None and stored_sk != event.sort_key:
                requests.append({"DeleteRequest": {"Key": self._key(event.card_id, stored_sk)}})
        self._batch_write(requests)
        return len(latest)

    def remove(self, keys: Iterable[tuple[str, str]]) -> int:
        """Remove the (card_id, event_id) events and their markers. Returns how many existed."""
        markers = self._markers(keys)
        requests: list[dict] = []
        for (card_id, event_id), marker in markers.items():
            requests.append({"DeleteRequest": {"Key": self._key(card_id, marker["event_sk"]["S"])}})
            requests.append({"DeleteRequest": {"Key": self._key(card_id, marker_key(event_id))}})
        self._batch_write(requests)
        return len(markers)

    def prune(self, card_id: str, keep_from_us: int) -> int:
        """Remove the card's events with ts_us < keep_from_us (and the markers pointing at them)."""
        if keep_from_us <= 0:
            return 0
        old = [
            (item["sk"]["S"], item["event_id"]["S"])
            for item in self._query(
                "card_id = :card AND sk < :keep",
                {":card": {"S": card_id}, ":keep": {"S": _first_key_at(keep_from_us)}},
                projection="sk, event_id",
            )
        ]
        if not old:
            return 0
        markers = self._markers((card_id, event_id) for _, event_id in old)
        requests = [{"DeleteRequest": {"Key": self._key(card_id, sk)}} for sk, _ in old]
        for sk, event_id in old:
            # A marker pointing at another (newer) copy of the event_id stays.
            if markers.get((card_id, event_id), {}).get("event_sk", {}).get("S") == sk:
                requests.append({"DeleteRequest": {"Key": self._key(card_id, marker_key(event_id))}})
        self._batch_write(requests)
        return len(old)

    def close(self) -> None:
        return None  # boto3 clients hold no resources that need releasing

    def __enter__(self) -> DynamoDbOnlineState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Batches --------------------------------------------------------------------------------------------

    def _batch_write(self, requests: Sequence[dict]) -> None:
        """BatchWriteItem in groups of 25, retrying UnprocessedItems with backoff; raises when they remain."""
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending = list(requests[start : start + BATCH_WRITE_LIMIT])
            for attempt in range(1, MAX_ATTEMPTS + 1):
                response = self.client.batch_write_item(RequestItems={self.table_name: pending})
                pending = response.get("UnprocessedItems", {}).get(self.table_name, [])
                if not pending:
                    break
                if attempt == MAX_ATTEMPTS:
                    raise OnlineStateWriteError(
                        f"{len(pending)} write(s) to {self.table_name} still unprocessed after {attempt} attempts"
                    )
                self._backoff(attempt)

    def _backoff(self, attempt: int) -> None:
        """Exponential backoff with full jitter: 0..50 ms × 2^(attempt−1), capped at 5 s."""
        self._sleep(random.uniform(0, min(5.0, 0.05 * 2 ** (attempt - 1))))


def create_table(client: Any, table_name: str) -> None:
    """Create the table as Terraform does (keys, on-demand) and enable TTL: for tests and local tools."""
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "card_id", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "card_id", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
