"""The backend interface (feature_store/backends): each backend module implements every Protocol operation,
and the options choose and place the backend as the CLIs expect."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from feature_store import backends
from feature_store.backends import BackendOptions, GroupAdmin, IngestionBackend, RuntimeClient
from feature_store.backends.local import LocalBackend, LocalFeatureStoreRuntime, LocalGroups
from feature_store.backends.sagemaker import SageMakerBackend, SageMakerGroups
from feature_store.definitions import group_spec


def operations(protocol: type) -> set[str]:
    return {name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")}


@pytest.mark.parametrize(
    ("protocol", "implementations"),
    [
        (RuntimeClient, [LocalFeatureStoreRuntime]),
        (GroupAdmin, [LocalGroups, SageMakerGroups]),
        (IngestionBackend, [LocalBackend, SageMakerBackend]),
    ],
)
def test_every_backend_implements_every_operation_of_the_interface(protocol, implementations):
    wanted = operations(protocol)
    assert wanted  # the Protocol names its operations
    for implementation in implementations:
        missing = [name for name in sorted(wanted) if not callable(getattr(implementation, name, None))]
        assert missing == [], f"{implementation.__name__} lacks {missing}"
    if protocol is IngestionBackend:
        assert {implementation.name for implementation in implementations} == set(backends.BACKENDS)


def test_backend_options_refuse_an_unknown_backend_and_place_the_local_store(tmp_path: Path):
    with pytest.raises(ValueError, match="backend 'dynamo'"):
        BackendOptions("dynamo")
    with pytest.raises(ValueError, match="max_concurrency"):
        BackendOptions("sagemaker", max_concurrency=0)
    default = BackendOptions().local_store_path(str(tmp_path / "lake"))
    assert default == f"{(tmp_path / 'lake').resolve()}/feature_store/online.db"
    assert BackendOptions(online_store_path="/x/online.db").local_store_path("s3://b/lake") == "/x/online.db"
    with pytest.raises(ValueError, match="needs an online store path"):
        BackendOptions().local_store_path("s3://b/lake")


def test_open_functions_give_the_local_backend_its_store_and_release_it(tmp_path: Path):
    lake_root = str(tmp_path / "lake")
    options = BackendOptions()
    groups, release = backends.open_group_admin(options, lake_root)
    try:
        assert groups.create_if_missing(group_spec()) is True
        assert groups.create_if_missing(group_spec()) is False
    finally:
        release()
    client, release = backends.open_runtime_client(options, lake_root)
    try:
        response = client.batch_get_record(
            Identifiers=[{"FeatureGroupName": group_spec().name, "RecordIdentifiersValueAsString": ["card-1"]}]
        )
        assert response["Records"] == []
    finally:
        release()
    backend = backends.open_backend(options, "file://" + str((tmp_path / "lake").resolve()))
    try:
        assert isinstance(backend, LocalBackend) and backend.describe_group(group_spec().name) is not None
    finally:
        backend.close()
    with pytest.raises(FileNotFoundError, match="no local online store"):
        backends.open_runtime_client(options, str(tmp_path / "elsewhere"))
