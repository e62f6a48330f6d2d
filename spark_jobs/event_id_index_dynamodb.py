"""The event-id index on DynamoDB: the AWS backend of `EventIdIndex` (spark_jobs/event_id_index.py).

Table (infra/terraform/modules/dynamodb, `<prefix>-event-id-index`): partition key `event_id` (S), on-demand,
point-in-time recovery, encrypted with the project's DynamoDB key. One item per event id:

    {"event_id": "e-1", "days": {"SS": ["2026-01-05"]}}       the silver day(s) the id may be held at
    {"event_id": "#event-id-index", "complete_at": "..."}      the completeness marker (after a backfill)

Writes are `UpdateItem ADD days :day` — an atomic, idempotent set-add: a rerun, two writers or a retry never
lose a day, and nothing is read first. Lookups are `BatchGetItem` of up to 100 ids, strongly consistent, so a
run sees the previous run's writes. Unprocessed keys and throttling are retried with exponential backoff
(botocore's standard retries, then our own loop for UnprocessedKeys). Writes run on a small thread pool per
Spark task: one request per new event id, the batch's inserts only.

The marker's key is not an id the contract can tell apart from a real one, but it holds `complete_at`, not
`days`: a real event with that id would only share the item, and lookups read `days` alone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

from spark_jobs.event_id_index_errors import EventIdIndexError

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
WRITE_THREADS = 16  # concurrent UpdateItem calls per index object (one per Spark task)
MAX_ATTEMPTS = 8  # rounds of UnprocessedKeys per BatchGetItem call
MARKER_ID = "#event-id-index"


class DynamoDbEventIdIndex:
    """`EventIdIndex` on a DynamoDB table (see the module docstring for the item layout)."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not table_name:
            raise ValueError("the event-id index table name is empty")
        if client is None:
            import boto3
            from botocore.config import Config

            from spark_jobs.aws_region import aws_region

            client = boto3.client(
                "dynamodb",
                region_name=aws_region(region, needed_for=f"the event-id index table {table_name}"),
                endpoint_url=endpoint_url,
                config=Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=WRITE_THREADS),
            )
        self.table_name = table_name
        self.client = client
        self._sleep = sleep

    def days_of(self, event_ids: Sequence[str]) -> dict[str, set[date]]:
        unique = list(dict.fromkeys(event_ids))  # BatchGetItem refuses a key given twice
        found: dict[str, set[date]] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [{"event_id": {"S": event_id}} for event_id in unique[start : start + BATCH_GET_LIMIT]]
            for item in self._batch_get(keys):
                days = item.get("days", {}).get("SS", [])
                if days:
                    found[item["event_id"]["S"]] = {date.fromisoformat(day) for day in days}
        return found

    def _batch_get(self, keys: list[dict]) -> list[dict]:
        items: list[dict] = []
        request = {
            self.table_name: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "event_id, #days",
                "ExpressionAttributeNames": {"#days": "days"},
            }
        }
        for attempt in range(MAX_ATTEMPTS):
            response = self._call("BatchGetItem", self.client.batch_get_item, RequestItems=request)
            items += response.get("Responses", {}).get(self.table_name, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            self._sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise EventIdIndexError(
            f"event-id index {self.table_name}: BatchGetItem left keys unprocessed {MAX_ATTEMPTS} times"
        )

    def add(self, entries: Iterable[tuple[str, date]]) -> int:
        by_id: dict[str, set[str]] = {}
        for event_id, day in entries:
            by_id.setdefault(event_id, set()).add(day.isoformat())
        if not by_id:
            return 0

        def add_days(item: tuple[str, set[str]]) -> None:
            event_id, days = item
            self._call(
                "UpdateItem",
                self.client.update_item,
                TableName=self.table_name,
                Key={"event_id": {"S": event_id}},
                UpdateExpression="ADD #days :days",
                ExpressionAttributeNames={"#days": "days"},
                ExpressionAttributeValues={":days": {"SS": sorted(days)}},
            )

        with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, len(by_id))) as pool:
            list(pool.map(add_days, by_id.items()))  # list(): re-raises the first failure
        return sum(len(days) for days in by_id.values())

    def is_complete(self) -> bool:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"event_id": {"S": MARKER_ID}},
            ConsistentRead=True,
        )
        return "complete_at" in response.get("Item", {})

    def mark_complete(self) -> None:
        self._call(
            "UpdateItem",
            self.client.update_item,
            TableName=self.table_name,
            Key={"event_id": {"S": MARKER_ID}},
            UpdateExpression="SET complete_at = :now",
            ExpressionAttributeValues={":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")}},
        )

    def _call(self, operation: str, method: Callable[..., dict], **parameters: Any) -> dict:
        try:
            return method(**parameters)
        except Exception as error:  # botocore's ClientError or a connection error, after botocore's retries
            raise EventIdIndexError(f"event-id index {self.table_name}: {operation} failed: {error}") from error

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> DynamoDbEventIdIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
