"""The pipeline's run lease for work started by hand: replays and backfills take the lease the state machines take.

One DynamoDB item (`state_machines/README.md`, "One run at a time: the lease"): key `lease_id` =
`card-features-pipeline`, `holder` = who runs. The state machines write their execution ARN; a run by hand
writes `manual:<job>:<host>:<pid>:<start>` with `expires_at` (its start plus `hold_for`).

Taking it: a put conditioned on `attribute_not_exists(lease_id)`. When that fails, the holder is judged:
- an execution ARN is live while DescribeExecution says `RUNNING` or `PENDING_REDRIVE` (a redrive resumes the
  execution under the same ARN); any other status, or no such execution, is stale;
- a manual holder is live until its `expires_at`.
A stale item is deleted conditioned on that very holder, then the put is tried again; a live one raises
`LeaseHeldError` (exit 5, naming the holder). The state machines treat a manual holder as live (their
DescribeExecution of it fails with `Sfn.InvalidArnException`): stream runs skip, the daily run waits.

The lease keeps two runs apart while both respect it; a writer that outlives its lease (an EMR job still running
after Step Functions stopped waiting) is stopped by the create-only commits instead (storage.CreateOnlyLog).
The table and the execution lookup are given (`LeaseTable`, `describe_status`), so the same rules run against
DynamoDB (`DynamoDBLeaseTable`, here) and the local runner's file table (devtools/local_runner/lease.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

PIPELINE_LEASE_ID = "card-features-pipeline"
LIVE_EXECUTION_STATUSES = frozenset({"RUNNING", "PENDING_REDRIVE"})  # DescribeExecution's status enum, live part
MANUAL_PREFIX = "manual:"
DEFAULT_HOLD = timedelta(hours=12)

DescribeStatus = Callable[[str], str | None]  # execution ARN -> its status, None when there is no such execution


class LeaseHeldError(RuntimeError):
    """A live run holds the pipeline lease: this run did not start (exit 5)."""


class LeaseTable(Protocol):
    def put_if_absent(self, item: dict[str, Any]) -> bool:
        """Put the lease item unless one exists; False when one exists."""

    def get(self) -> dict[str, Any] | None:
        """The lease item (strongly consistent), or None."""

    def delete_if_holder(self, holder: str) -> bool:
        """Delete the lease item only if `holder` holds it; False when it does not."""


def manual_holder(job: str) -> str:
    moment = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{MANUAL_PREFIX}{job}:{socket.gethostname()}:{os.getpid()}:{moment}"


def lease_item(holder: str, *, now: datetime, hold_for: timedelta) -> dict[str, Any]:
    return {
        "lease_id": {"S": PIPELINE_LEASE_ID},
        "holder": {"S": holder},
        "state_machine": {"S": "manual"},
        "acquired_at": {"S": now.isoformat()},
        "expires_at": {"S": (now + hold_for).isoformat()},
    }


def holder_is_live(item: dict[str, Any], describe_status: DescribeStatus, *, now: datetime) -> bool:
    holder = item["holder"]["S"]
    if holder.startswith("arn:aws:states:"):
        return describe_status(holder) in LIVE_EXECUTION_STATUSES
    expires = item.get("expires_at", {}).get("S")
    return expires is None or now < datetime.fromisoformat(expires)


def acquire(
    table: LeaseTable,
    holder: str,
    describe_status: DescribeStatus,
    *,
    hold_for: timedelta = DEFAULT_HOLD,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    attempts: int = 5,
) -> None:
    """Take the lease for `holder`, clearing a stale holder; LeaseHeldError when a live run holds it."""
    for _ in range(attempts):
        moment = now()
        if table.put_if_absent(lease_item(holder, now=moment, hold_for=hold_for)):
            return
        current = table.get()
        if current is None:
            continue  # released meanwhile: try again
        other = current["holder"]["S"]
        if other == holder:
            return
        if holder_is_live(current, describe_status, now=moment):
            since = current.get("acquired_at", {}).get("S", "?")
            raise LeaseHeldError(
                f"the pipeline lease {PIPELINE_LEASE_ID} is held by {other} (since {since}), which is still running: "
                "wait for it, or pause the schedules first (docs/runbook.md, 'Replays and backfills take the lease')"
            )
        table.delete_if_holder(other)
    raise LeaseHeldError(f"the pipeline lease {PIPELINE_LEASE_ID} kept changing hands; try again")


@contextmanager
def held_lease(
    table: LeaseTable, holder: str, describe_status: DescribeStatus, *, hold_for: timedelta = DEFAULT_HOLD
) -> Iterator[str]:
    """Hold the lease for the block, released (conditioned on `holder`) however the block ends."""
    acquire(table, holder, describe_status, hold_for=hold_for)
    try:
        yield holder
    finally:
        table.delete_if_holder(holder)


class DynamoDBLeaseTable:
    """The lease table on AWS (Terraform's `lease_table_name`)."""

    def __init__(self, table_name: str, *, client: Any) -> None:
        self.table_name, self.client = table_name, client

    def _key(self) -> dict:
        return {"lease_id": {"S": PIPELINE_LEASE_ID}}

    def put_if_absent(self, item: dict[str, Any]) -> bool:
        return self._conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(lease_id)",
        )

    def get(self) -> dict[str, Any] | None:
        return self.client.get_item(TableName=self.table_name, Key=self._key(), ConsistentRead=True).get("Item")

    def delete_if_holder(self, holder: str) -> bool:
        return self._conditional(
            self.client.delete_item,
            TableName=self.table_name,
            Key=self._key(),
            ConditionExpression="#holder = :holder",
            ExpressionAttributeNames={"#holder": "holder"},
            ExpressionAttributeValues={":holder": {"S": holder}},
        )

    @staticmethod
    def _conditional(call: Callable[..., Any], **parameters: Any) -> bool:
        from botocore.exceptions import ClientError

        try:
            call(**parameters)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def sfn_describe_status(client: Any) -> DescribeStatus:
    """DescribeExecution through a boto3 `stepfunctions` client: the status, None for no such execution."""

    def describe(execution_arn: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return client.describe_execution(executionArn=execution_arn)["status"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise

    return describe


def add_lease_table_option(parser) -> None:
    """`--lease-table`: a job started by hand (a backfill, a drill; no `--execution-arn`) takes the lease."""
    parser.add_argument(
        "--lease-table",
        default=None,
        help="the pipeline's DynamoDB lease table: a run started by hand (no --execution-arn) takes the lease the "
        "state machines take, and refuses (exit 5) while a live run holds it (docs/runbook.md, Backfill)",
    )


def run_holding_job_lease(args, *, job: str, run: Callable[[], int]) -> int:
    """`run()` holding the pipeline lease when `--lease-table` is given and no state machine started the job
    (with `--execution-arn` the execution holds the lease already). Exit 5 with a message when it is held."""
    import sys

    from spark_jobs.exit_codes import PRECONDITION_FAILED

    if not getattr(args, "lease_table", None) or getattr(args, "execution_arn", None):
        return run()
    import boto3

    from spark_jobs.aws_region import aws_region

    region = aws_region(getattr(args, "region", None), needed_for=f"the lease table {args.lease_table}")
    endpoint = getattr(args, "endpoint_url", None)
    table = DynamoDBLeaseTable(
        args.lease_table, client=boto3.client("dynamodb", region_name=region, endpoint_url=endpoint)
    )
    describe = sfn_describe_status(boto3.client("stepfunctions", region_name=region, endpoint_url=endpoint))
    try:
        with held_lease(table, manual_holder(job), describe):
            return run()
    except LeaseHeldError as error:
        print(f"{job}.py: error: {error}", file=sys.stderr, flush=True)
        return PRECONDITION_FAILED
