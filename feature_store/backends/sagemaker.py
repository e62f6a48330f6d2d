"""The SageMaker Feature Store backend: runtime clients for the executors, and the feature groups through the
SDK (see backends/__init__.py for the interface).

Runtime (ingestion, reads): boto3's `sagemaker-featurestore-runtime` client, BatchWriteRecord from
botocore 1.43.37 (this project pins 1.44.8). The writer owns the retries (exponential backoff with full
jitter, re-batching), so the client is built with botocore's retries off (`total_max_attempts = 1`):
every attempt is then visible and counted.

Groups (registration): the `sagemaker` SDK (3.27, `sagemaker.core.resources.FeatureGroup`) covers
CreateFeatureGroup (`create`), DescribeFeatureGroup (`get`, `refresh`), UpdateFeatureGroup (`update`) and
waiting for FeatureGroupStatus (`wait_for_status`, raising with FailureReason on CreateFailed). It has no
waiter for LastUpdateStatus after an update (UpdateFeatureGroup is asynchronous), so that wait is our own
loop over `refresh()`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from feature_store.batch_writer import WriterOptions, WriteStats, write_rows
from feature_store.definitions import GroupSpec, TtlDuration

RUNTIME_SERVICE = "sagemaker-featurestore-runtime"


def default_region(region: str | None) -> str:
    value = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not value:
        raise ValueError("no AWS region: pass --region or set AWS_REGION")
    return value


def runtime_client(region: str | None = None, *, endpoint_url: str | None = None, retries: bool = False):
    """A featurestore-runtime client; `retries=False` (the writer's) leaves every retry to the caller."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"} if not retries else {"mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=4,
    )
    return boto3.client(RUNTIME_SERVICE, region_name=default_region(region), endpoint_url=endpoint_url, config=config)


@dataclass(frozen=True)
class RuntimeClientFactory:
    """Picklable: each executor partition calls it once (one client per partition)."""

    region: str
    endpoint_url: str | None = None

    def __call__(self):
        return runtime_client(self.region, endpoint_url=self.endpoint_url)


def write_on_executors(
    frame, options: WriterOptions, client_factory: Callable[[], Any], *, max_concurrency: int
) -> WriteStats:
    """Write the rows of `frame` (gold or merchant snapshot columns + `online`) from the executors.

    Rows are hash-partitioned by the record identifier (`options.entity`: card_id or merchant_id) into
    `max_concurrency` partitions: at most that many tasks (so clients, each sending one request at a time) run
    at once, and a card's (merchant's) rows, including the online correction sequence of its newest row, stay
    inside one task.
    """

    def write_partition(rows):
        client = client_factory()
        stats = write_rows(client, (row.asDict() for row in rows), options)
        yield json.dumps(stats.as_dict())

    results = frame.repartition(max_concurrency, options.entity).rdd.mapPartitions(write_partition).collect()
    total = WriteStats()
    for result in results:
        total.merge(json.loads(result))
    return total


class SageMakerBackend:
    """Ingestion into SageMaker Feature Store; writes from the executors."""

    name = "sagemaker"

    def __init__(self, region: str | None, max_concurrency: int, *, client_factory=None, marker_client=None) -> None:
        self.region = default_region(region)
        self.max_concurrency = max_concurrency
        self.client_factory = client_factory or RuntimeClientFactory(self.region)
        self.marker_client = marker_client  # None: a runtime client with the SDK's retries (tests inject one)

    def describe_group(self, name: str) -> dict | None:
        return describe_group(self.region, name)

    def write(self, spark, frame, options: WriterOptions) -> WriteStats:
        return write_on_executors(frame, options, self.client_factory, max_concurrency=self.max_concurrency)

    def put_online_only(self, feature_group: str, record: list[dict]) -> None:
        """PutRecord to the online store only, from the driver, with the SDK's standard retries (one record)."""
        from feature_store.definitions import ONLINE_STORE

        client = self.marker_client or runtime_client(self.region, retries=True)
        client.put_record(FeatureGroupName=feature_group, Record=record, TargetStores=[ONLINE_STORE])

    def close(self) -> None:
        return None


def describe_group(region: str, name: str, *, client: Any = None) -> dict | None:
    """DescribeFeatureGroup with boto3 (the job checks the group before writing), None if missing."""
    import boto3
    from botocore.exceptions import ClientError

    client = client or boto3.client("sagemaker", region_name=region)
    try:
        return client.describe_feature_group(FeatureGroupName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
            return None
        raise


# Groups through the SDK ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreSettings:
    """What Terraform provides for a group: the role, keys, offline location and Glue database."""

    role_arn: str
    offline_store_s3_uri: str
    glue_database: str
    glue_table: str
    online_store_kms_key_id: str | None = None
    offline_store_kms_key_id: str | None = None
    table_format: str = "Glue"


class GroupRegistrationError(RuntimeError):
    """The group could not reach a usable state (CreateFailed, a failed update, a timeout)."""


def _is_set(value: Any) -> bool:
    from sagemaker.core.utils.utils import Unassigned

    return value is not None and not isinstance(value, Unassigned)


def _as_api(group) -> dict:
    """The SDK resource as DescribeFeatureGroup's response fields the registration compares."""
    online: dict[str, Any] = {}
    if _is_set(group.online_store_config):
        ttl = group.online_store_config.ttl_duration
        if _is_set(ttl) and _is_set(ttl.unit) and _is_set(ttl.value):
            online["TtlDuration"] = {"Unit": ttl.unit, "Value": ttl.value}
    last_update = None
    if _is_set(group.last_update_status):
        last_update = {"Status": group.last_update_status.status}
        if _is_set(group.last_update_status.failure_reason):
            last_update["FailureReason"] = group.last_update_status.failure_reason
    return {
        "FeatureGroupName": group.feature_group_name,
        "RecordIdentifierFeatureName": group.record_identifier_feature_name,
        "EventTimeFeatureName": group.event_time_feature_name,
        "FeatureDefinitions": [
            {"FeatureName": item.feature_name, "FeatureType": item.feature_type} for item in group.feature_definitions
        ],
        "OnlineStoreConfig": online,
        "FeatureGroupStatus": group.feature_group_status,
        "FailureReason": group.failure_reason if _is_set(group.failure_reason) else None,
        "LastUpdateStatus": last_update,
    }


class SageMakerGroups:
    """Feature groups through `sagemaker.core.resources.FeatureGroup`."""

    def __init__(
        self,
        *,
        region: str,
        session: Any = None,
        wait_timeout_seconds: int = 900,
        poll_seconds: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import boto3

        self.region = region
        self.session = session or boto3.Session(region_name=region)
        self.wait_timeout_seconds = wait_timeout_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.clock = clock

    def _get(self, name: str):
        from sagemaker.core.resources import FeatureGroup

        return FeatureGroup.get(feature_group_name=name, session=self.session, region=self.region)

    def create_if_missing(self, spec: GroupSpec, settings: StoreSettings) -> bool:
        """CreateFeatureGroup; True if this call created it (then waits for Created), False if it exists.

        Create first, describe on ResourceInUse: one call when the group is new, and a concurrent deploy
        that wins the race ends up in the same compare path as an existing group.
        """
        from botocore.exceptions import ClientError
        from sagemaker.core.resources import FeatureGroup
        from sagemaker.core.shapes import (
            DataCatalogConfig,
            FeatureDefinition,
            OfflineStoreConfig,
            OnlineStoreConfig,
            OnlineStoreSecurityConfig,
            S3StorageConfig,
        )
        from sagemaker.core.shapes import TtlDuration as SdkTtl

        online = {"enable_online_store": True}
        if settings.online_store_kms_key_id:
            online["security_config"] = OnlineStoreSecurityConfig(kms_key_id=settings.online_store_kms_key_id)
        if spec.ttl is not None:
            online["ttl_duration"] = SdkTtl(unit=spec.ttl.unit, value=spec.ttl.value)
        s3 = {"s3_uri": settings.offline_store_s3_uri}
        if settings.offline_store_kms_key_id:
            s3["kms_key_id"] = settings.offline_store_kms_key_id
        offline = OfflineStoreConfig(
            s3_storage_config=S3StorageConfig(**s3),
            data_catalog_config=DataCatalogConfig(
                table_name=settings.glue_table, catalog="AwsDataCatalog", database=settings.glue_database
            ),
            table_format=settings.table_format,
        )
        try:
            group = FeatureGroup.create(
                feature_group_name=spec.name,
                record_identifier_feature_name=spec.record_identifier,
                event_time_feature_name=spec.event_time_feature,
                feature_definitions=[FeatureDefinition(feature_name=n, feature_type=t) for n, t in spec.definitions],
                online_store_config=OnlineStoreConfig(**online),
                offline_store_config=offline,
                role_arn=settings.role_arn,
                description=spec.description,
                session=self.session,
                region=self.region,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("ResourceInUse", "ResourceInUseException"):
                return False
            raise
        self._wait_created(group)
        return True

    def describe(self, name: str) -> dict:
        return _as_api(self._get(name))

    def wait_until_created(self, name: str) -> None:
        self._wait_created(self._get(name))

    def _wait_created(self, group) -> None:
        from sagemaker.core.utils.exceptions import FailedStatusError, TimeoutExceededError

        try:
            group.wait_for_status("Created", poll=self.poll_seconds, timeout=self.wait_timeout_seconds)
        except FailedStatusError as error:
            raise GroupRegistrationError(
                f"feature group {group.feature_group_name} is {group.feature_group_status}: "
                f"FailureReason: {group.failure_reason if _is_set(group.failure_reason) else 'none given'}"
            ) from error
        except TimeoutExceededError as error:
            raise GroupRegistrationError(
                f"feature group {group.feature_group_name} is still {group.feature_group_status} after "
                f"{self.wait_timeout_seconds} s (raise --wait-timeout-seconds, or check the console)"
            ) from error

    def add_features(self, name: str, additions: list[dict]) -> None:
        """UpdateFeatureGroup FeatureAdditions (≤ 100 a call), each time waiting for LastUpdateStatus."""
        from sagemaker.core.shapes import FeatureDefinition

        group = self._get(name)
        for start in range(0, len(additions), 100):
            chunk = additions[start : start + 100]
            group.update(
                feature_additions=[
                    FeatureDefinition(feature_name=item["FeatureName"], feature_type=item["FeatureType"])
                    for item in chunk
                ]
            )
            self._wait_updated(group)

    def set_ttl(self, name: str, ttl: TtlDuration) -> None:
        from sagemaker.core.shapes import OnlineStoreConfigUpdate
        from sagemaker.core.shapes import TtlDuration as SdkTtl

        group = self._get(name)
        group.update(online_store_config=OnlineStoreConfigUpdate(ttl_duration=SdkTtl(unit=ttl.unit, value=ttl.value)))
        self._wait_updated(group)

    def _wait_updated(self, group) -> None:
        """Poll DescribeFeatureGroup until LastUpdateStatus leaves InProgress (the SDK has no waiter)."""
        deadline = self.clock() + self.wait_timeout_seconds
        while True:
            status = group.last_update_status
            state = status.status if _is_set(status) else "Successful"
            if state == "Successful":
                return
            if state == "Failed":
                reason = status.failure_reason if _is_set(status.failure_reason) else "none given"
                raise GroupRegistrationError(
                    f"UpdateFeatureGroup on {group.feature_group_name} failed: FailureReason: {reason}"
                )
            if self.clock() >= deadline:
                raise GroupRegistrationError(
                    f"UpdateFeatureGroup on {group.feature_group_name} still {state} after "
                    f"{self.wait_timeout_seconds} s"
                )
            self.sleep(self.poll_seconds)
            group.refresh()
