"""The pipeline lease for the commands run by hand (replays, backfills): the local runner's file table for a
local lake, the DynamoDB lease table for an S3 lake (spark_jobs/run_lease.py holds the rules).

    with pipeline_lease(lake_root, lease_table=…, region=…, endpoint_url=…, job="replay_quarantine"):
        ...

A local lake's lease is the one `cardfeat run-pipeline` uses (`<lake>/_orchestration/dynamodb/local-run-lease.json`,
its execution registry judging the holders). An `s3://` lake needs `--lease-table`: a lease in a file on this
machine would not keep the deployed state machines (or another machine) out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devtools.local_runner.definition import LEASE_TABLE_KEY
from devtools.local_runner.dynamodb import LocalDynamoDB
from devtools.local_runner.errors import StatesError
from devtools.local_runner.executions import ExecutionRegistry
from devtools.local_runner.pipeline import default_state_dir
from spark_jobs.run_lease import (
    PIPELINE_LEASE_ID,
    DescribeStatus,
    DynamoDBLeaseTable,
    LeaseTable,
    held_lease,
    manual_holder,
    sfn_describe_status,
)

LOCAL_LEASE_TABLE = "local-run-lease"  # the local runner's `lease_table_name` (pipeline.local_config)


class LeaseConfigurationError(ValueError):
    """The command cannot take the lease as configured (an S3 lake without --lease-table)."""


class LocalLeaseTable:
    """The local runner's lease table (a JSON file behind a file lock) as a run_lease.LeaseTable."""

    def __init__(self, state_dir: Path) -> None:
        self.dynamodb = LocalDynamoDB(state_dir / "dynamodb", {LOCAL_LEASE_TABLE: (LEASE_TABLE_KEY,)})

    def _conditional(self, call, parameters: dict[str, Any]) -> bool:
        try:
            call(parameters)
        except StatesError as error:
            if error.error == "DynamoDB.ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_if_absent(self, item: dict[str, Any]) -> bool:
        parameters = {
            "TableName": LOCAL_LEASE_TABLE,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(lease_id)",
        }
        return self._conditional(self.dynamodb.put_item, parameters)

    def get(self) -> dict[str, Any] | None:
        key = {LEASE_TABLE_KEY: {"S": PIPELINE_LEASE_ID}}
        return self.dynamodb.get_item({"TableName": LOCAL_LEASE_TABLE, "Key": key}).get("Item")

    def delete_if_holder(self, holder: str) -> bool:
        parameters = {
            "TableName": LOCAL_LEASE_TABLE,
            "Key": {LEASE_TABLE_KEY: {"S": PIPELINE_LEASE_ID}},
            "ConditionExpression": "#holder = :holder",
            "ExpressionAttributeNames": {"#holder": "holder"},
            "ExpressionAttributeValues": {":holder": {"S": holder}},
        }
        return self._conditional(self.dynamodb.delete_item, parameters)


def local_describe_status(state_dir: Path) -> DescribeStatus:
    """DescribeExecution on the local runner's registry (a RUNNING execution whose runner died reads ABORTED)."""
    registry = ExecutionRegistry(state_dir / "executions")

    def describe(execution_arn: str) -> str | None:
        try:
            return registry.describe(execution_arn)["Status"]
        except StatesError as error:
            if error.error == "Sfn.ExecutionDoesNotExistException":
                return None
            raise

    return describe


def lease_for_lake(
    lake_root: str, *, lease_table: str | None, region: str | None, endpoint_url: str | None
) -> tuple[LeaseTable, DescribeStatus] | None:
    """The lease table and execution lookup for a lake; None for a local lake that does not exist (the job then
    refuses the lake itself, and taking the lease must not create it)."""
    if lease_table:
        import boto3

        from spark_jobs.aws_region import aws_region

        region = aws_region(region, needed_for=f"the lease table {lease_table}")
        dynamodb = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
        sfn = boto3.client("stepfunctions", region_name=region, endpoint_url=endpoint_url)
        return DynamoDBLeaseTable(lease_table, client=dynamodb), sfn_describe_status(sfn)
    if lake_root.startswith(("s3://", "s3a://")):
        raise LeaseConfigurationError(
            f"--lake-root {lake_root}: an S3 lake needs --lease-table <the pipeline's DynamoDB lease table> (a lease "
            "in a file on this machine would not keep the deployed state machines out)"
        )
    if not Path(lake_root).is_dir():
        return None
    state_dir = default_state_dir(lake_root)
    return LocalLeaseTable(state_dir), local_describe_status(state_dir)


@contextmanager
def pipeline_lease(
    lake_root: str, *, lease_table: str | None, region: str | None, endpoint_url: str | None, job: str
) -> Iterator[str | None]:
    """Hold the pipeline lease while the block runs (LeaseHeldError when a live run holds it)."""
    lease = lease_for_lake(lake_root, lease_table=lease_table, region=region, endpoint_url=endpoint_url)
    if lease is None:
        yield None
        return
    table, describe = lease
    with held_lease(table, manual_holder(job), describe) as holder:
        yield holder


def add_lease_option(parser) -> None:
    parser.add_argument(
        "--lease-table",
        default=None,
        help="the pipeline's DynamoDB lease table (required for an s3:// lake; a local lake uses the local runner's "
        "lease): this command holds the lease the state machines take, so no scheduled run writes meanwhile",
    )


def run_holding_lease(args, *, job: str, run) -> int:
    """`run()` (a job's run_job call) while holding the pipeline lease; exit 5 with a message when the lease is
    held by a live run or cannot be taken as configured."""
    import sys

    from spark_jobs.exit_codes import PRECONDITION_FAILED
    from spark_jobs.run_lease import LeaseHeldError

    try:
        with pipeline_lease(
            args.lake_root,
            lease_table=args.lease_table,
            region=getattr(args, "region", None),
            endpoint_url=getattr(args, "endpoint_url", None),
            job=job,
        ):
            return run()
    except (LeaseHeldError, LeaseConfigurationError) as error:
        print(f"{job}.py: error: {error}", file=sys.stderr, flush=True)
        return PRECONDITION_FAILED
