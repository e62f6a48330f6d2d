"""The Feature Store backends behind one small interface; one module per backend.

- `local.py`: the featurestore-runtime API emulated on SQLite (online store, groups) and Delta (offline
  store) under the lake, writing from the driver.
- `sagemaker.py`: SageMaker Feature Store: boto3 runtime clients on the executors, groups through the SDK.

What the platform needs of a backend, as Protocols (structural: boto3's client satisfies `RuntimeClient`):

- `RuntimeClient`: the runtime operations the writer (batch_writer.py) and the online reads
  (get_features.py) call, with the API's request and response shapes.
- `GroupAdmin`: the group operations registration (groups.py) calls: create, describe, wait, update.
- `IngestionBackend`: what ingestion and the dead-letter replay call: check the group, write a DataFrame
  of gold rows through the writer, write one record online only (the merchant group's published-day
  marker), close.

`open_backend`, `open_group_admin` and `open_runtime_client` choose the module by `BackendOptions.backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from feature_store.batch_writer import WriterOptions, WriteStats
from feature_store.definitions import GroupSpec, TtlDuration

BACKENDS = ("local", "sagemaker")


class RuntimeClient(Protocol):
    """The featurestore-runtime operations the platform uses (keyword arguments as in the API)."""

    def batch_write_record(self, *, Entries: list[dict], **optional: Any) -> dict: ...  # noqa: N803

    def batch_get_record(self, *, Identifiers: list[dict], **optional: Any) -> dict: ...  # noqa: N803

    def get_record(self, *, FeatureGroupName: str, RecordIdentifierValueAsString: str, **optional: Any) -> dict: ...  # noqa: N803

    def delete_record(
        self,
        *,
        FeatureGroupName: str,  # noqa: N803
        RecordIdentifierValueAsString: str,  # noqa: N803
        EventTime: str,  # noqa: N803
        **optional: Any,
    ) -> dict: ...


class GroupAdmin(Protocol):
    """Feature group administration, in DescribeFeatureGroup's shapes."""

    def create_if_missing(self, spec: GroupSpec, settings: Any = None) -> bool:
        """Create the group; True if this call created it, False if it existed."""
        ...

    def describe(self, name: str) -> dict: ...

    def wait_until_created(self, name: str) -> None: ...

    def add_features(self, name: str, additions: list[dict]) -> None: ...

    def set_ttl(self, name: str, ttl: TtlDuration) -> None: ...


class IngestionBackend(Protocol):
    """Where ingestion writes: the group's description, a write of gold rows (+ `online`), close."""

    name: str  # the BackendOptions.backend that opened it

    def describe_group(self, name: str) -> dict | None: ...

    def write(self, spark: Any, frame: Any, options: WriterOptions) -> WriteStats: ...

    def put_online_only(self, feature_group: str, record: list[dict]) -> None:
        """Write one record to the group's online store only (TargetStores ["OnlineStore"]); raise on failure."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendOptions:
    """Which backend, and where it is."""

    backend: str = "local"  # local | sagemaker
    online_store_path: str | None = None  # local: the SQLite file; None: <lake-root>/feature_store/online.db
    region: str | None = None  # sagemaker: AWS region; None: AWS_REGION
    max_concurrency: int = 4  # sagemaker: partitions (one client each) written at once

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")

    def local_store_path(self, lake_root: str) -> str:
        """The local backend's SQLite file: the one given, else `<lake-root>/feature_store/online.db`."""
        from spark_jobs.lake import local_online_store_path

        path = self.online_store_path or local_online_store_path(lake_root)
        if path is None:
            raise ValueError(f"the local backend needs an online store path for the lake {lake_root} (on S3)")
        return path


def open_backend(options: BackendOptions, lake_root_uri: str) -> IngestionBackend:
    """The ingestion backend for a lake (its canonical root URI, e.g. `LakeStorage.root`)."""
    if options.backend == "local":
        from feature_store.backends.local import LocalBackend

        return LocalBackend(options.local_store_path(lake_root_uri), lake_root_uri)
    from feature_store.backends.sagemaker import SageMakerBackend

    return SageMakerBackend(options.region, options.max_concurrency)


def open_group_admin(
    options: BackendOptions, lake_root: str, *, wait_timeout_seconds: int = 900, poll_seconds: int = 10
) -> tuple[GroupAdmin, Callable[[], None]]:
    """The group administration of a backend, and the function that releases it."""
    if options.backend == "local":
        from feature_store.backends.local import LocalGroups, LocalStore

        store = LocalStore(options.local_store_path(lake_root))
        return LocalGroups(store), store.close
    from feature_store.backends.sagemaker import SageMakerGroups, default_region

    groups = SageMakerGroups(
        region=default_region(options.region), wait_timeout_seconds=wait_timeout_seconds, poll_seconds=poll_seconds
    )
    return groups, lambda: None


def open_runtime_client(options: BackendOptions, lake_root: str) -> tuple[RuntimeClient, Callable[[], None]]:
    """A runtime client for online reads (with the SDK's own retries), and the function that releases it."""
    if options.backend == "local":
        from pathlib import Path

        from feature_store.backends.local import LocalFeatureStoreRuntime, LocalStore

        path = options.local_store_path(lake_root)
        if not Path(path).exists():
            raise FileNotFoundError(f"no local online store at {path}: run register_feature_groups.py and ingest")
        store = LocalStore(path, read_only=True)  # reads never take the write lock
        return LocalFeatureStoreRuntime(store), store.close
    from feature_store.backends.sagemaker import runtime_client

    return runtime_client(options.region, retries=True), lambda: None
