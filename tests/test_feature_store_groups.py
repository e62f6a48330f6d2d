"""Registering the feature group: moto for create/describe through the sagemaker SDK, Stubber for what moto
cannot do (CreateFailed, timeouts, UpdateFeatureGroup and LastUpdateStatus), and the local backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from feature_store import groups as group_registration
from feature_store import register_feature_groups as registration
from feature_store.backends.local import LocalStore
from feature_store.backends.sagemaker import GroupRegistrationError, SageMakerGroups, StoreSettings
from feature_store.definitions import TtlDuration, group_spec
from spark_jobs import exit_codes
from spark_jobs.feature_registry import CARD_FEATURES, INTEGER, MERCHANT, Feature

REGION = "eu-west-1"
ACCOUNT = "123456789012"
SETTINGS = StoreSettings(
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/cardfeat-dev-feature-store",
    offline_store_s3_uri="s3://cardfeat-dev-lake/lake/feature_store/offline",
    glue_database="cardfeat_dev_feature_store",
    glue_table="card_features_v1",
    online_store_kms_key_id=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/online",
    offline_store_kms_key_id=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake",
)
NEW_FEATURE = Feature("txn_count_6h", INTEGER, "count", timedelta(hours=6), "Transactions in the last 6 hours.")


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_create_then_leave_alone_with_moto():
    from moto import mock_aws

    with mock_aws():
        session = boto3.Session(region_name=REGION)
        groups = SageMakerGroups(region=REGION, session=session, poll_seconds=1, wait_timeout_seconds=5)
        spec = group_spec()
        assert group_registration.register(spec, groups, SETTINGS)["action"] == "created"
        described = boto3.client("sagemaker", region_name=REGION).describe_feature_group(FeatureGroupName=spec.name)
        assert described["FeatureGroupStatus"] == "Created"
        assert described["RecordIdentifierFeatureName"] == "card_id"
        assert described["EventTimeFeatureName"] == "event_time"
        assert described["FeatureDefinitions"] == spec.as_api()
        assert described["RoleArn"] == SETTINGS.role_arn
        assert described["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == SETTINGS.offline_store_s3_uri
        assert described["OfflineStoreConfig"]["S3StorageConfig"]["KmsKeyId"] == SETTINGS.offline_store_kms_key_id
        # A second deploy: CreateFeatureGroup answers ResourceInUse, the definitions match, nothing changes.
        again = group_registration.register(spec, groups, SETTINGS)
        assert again == {"feature_group": spec.name, "action": "unchanged", "added": [], "ttl": None}


def _stubbed_groups(**kwargs):
    from sagemaker.core.utils.utils import SageMakerClient

    session = boto3.Session(region_name=REGION)
    client = SageMakerClient(session=session, region_name=REGION).sagemaker_client  # the SDK's cached client
    sleeps = []
    groups = SageMakerGroups(region=REGION, session=session, sleep=sleeps.append, **kwargs)
    return groups, Stubber(client), sleeps


def _described(status="Created", definitions=None, **extra):
    spec = group_spec()
    response = {
        "FeatureGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/{spec.name}",
        "FeatureGroupName": spec.name,
        "RecordIdentifierFeatureName": "card_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": definitions if definitions is not None else spec.as_api(),
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "FeatureGroupStatus": status,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        "NextToken": "",
    }
    response.update(extra)
    return response


def _create_ok(stubber):
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/{group_spec().name}"
    stubber.add_response("create_feature_group", {"FeatureGroupArn": arn}, _create_request())


def _create_request():
    spec = group_spec()
    return {
        "FeatureGroupName": spec.name,
        "RecordIdentifierFeatureName": "card_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": spec.as_api(),
        "OnlineStoreConfig": {
            "EnableOnlineStore": True,
            "SecurityConfig": {"KmsKeyId": SETTINGS.online_store_kms_key_id},
        },
        "OfflineStoreConfig": {
            "S3StorageConfig": {"S3Uri": SETTINGS.offline_store_s3_uri, "KmsKeyId": SETTINGS.offline_store_kms_key_id},
            "DataCatalogConfig": {
                "TableName": "card_features_v1",
                "Catalog": "AwsDataCatalog",
                "Database": "cardfeat_dev_feature_store",
            },
            "TableFormat": "Glue",
        },
        "RoleArn": SETTINGS.role_arn,
        "Description": spec.description,
    }


def _exists(stubber):
    stubber.add_client_error(
        "create_feature_group", service_error_code="ResourceInUse", service_message="exists", http_status_code=400
    )


def test_create_failed_is_a_clear_error_quoting_the_failure_reason():
    groups, stubber, _ = _stubbed_groups(poll_seconds=0, wait_timeout_seconds=60)
    reason = "The KMS key arn:aws:kms:eu-west-1:123456789012:key/online is not accessible"
    with stubber:
        _create_ok(stubber)
        stubber.add_response("describe_feature_group", _described("Creating"))
        stubber.add_response("describe_feature_group", _described("CreateFailed", FailureReason=reason))
        with pytest.raises(GroupRegistrationError, match="CreateFailed: FailureReason: The KMS key"):
            group_registration.register(group_spec(), groups, SETTINGS)
        stubber.assert_no_pending_responses()


def test_waiting_for_created_times_out():
    groups, stubber, _ = _stubbed_groups(poll_seconds=0, wait_timeout_seconds=0)
    with stubber:
        _create_ok(stubber)
        stubber.add_response("describe_feature_group", _described("Creating"))
        stubber.add_response("describe_feature_group", _described("Creating"))
        with pytest.raises(GroupRegistrationError, match="still Creating after 0 s"):
            group_registration.register(group_spec(), groups, SETTINGS)


def test_the_merchant_group_is_created_with_moto():
    from moto import mock_aws

    with mock_aws():
        groups = SageMakerGroups(region=REGION, session=boto3.Session(region_name=REGION), poll_seconds=1)
        spec = group_spec(entity=MERCHANT)
        assert group_registration.register(spec, groups, SETTINGS)["action"] == "created"
        described = boto3.client("sagemaker", region_name=REGION).describe_feature_group(FeatureGroupName=spec.name)
        assert (described["FeatureGroupName"], described["RecordIdentifierFeatureName"]) == (
            "merchant-features-v2",
            "merchant_id",
        )
        assert described["EventTimeFeatureName"] == "event_time"
        assert [item["FeatureName"] for item in described["FeatureDefinitions"]] == [
            "merchant_id",
            "event_time",
            "merchant_txn_count_1d",
            "merchant_txn_count_7d",
            "merchant_txn_count_30d",
            "merchant_cb_rate_1d",
            "merchant_cb_rate_7d",
            "merchant_cb_rate_30d",
        ]


def test_new_registry_features_are_added_and_the_update_is_awaited():
    spec = group_spec((*CARD_FEATURES, NEW_FEATURE))
    groups, stubber, sleeps = _stubbed_groups(poll_seconds=3, wait_timeout_seconds=60)
    with stubber:
        _exists(stubber)
        stubber.add_response("describe_feature_group", _described())  # the compare
        stubber.add_response("describe_feature_group", _described())  # add_features' get
        stubber.add_response(
            "update_feature_group",
            {"FeatureGroupArn": _described()["FeatureGroupArn"]},
            {
                "FeatureGroupName": spec.name,
                "FeatureAdditions": [{"FeatureName": "txn_count_6h", "FeatureType": "Integral"}],
            },
        )
        stubber.add_response("describe_feature_group", _described(LastUpdateStatus={"Status": "InProgress"}))
        stubber.add_response("describe_feature_group", _described(LastUpdateStatus={"Status": "InProgress"}))
        stubber.add_response("describe_feature_group", _described(LastUpdateStatus={"Status": "Successful"}))
        result = group_registration.register(spec, groups, SETTINGS)
        stubber.assert_no_pending_responses()
    assert result == {"feature_group": spec.name, "action": "updated", "added": ["txn_count_6h"], "ttl": None}
    assert sleeps == [3, 3]


def test_a_failed_update_quotes_its_failure_reason():
    spec = group_spec((*CARD_FEATURES, NEW_FEATURE))
    groups, stubber, _ = _stubbed_groups(poll_seconds=0, wait_timeout_seconds=60)
    with stubber:
        _exists(stubber)
        stubber.add_response("describe_feature_group", _described())
        stubber.add_response("describe_feature_group", _described())
        stubber.add_response("update_feature_group", {"FeatureGroupArn": _described()["FeatureGroupArn"]})
        stubber.add_response(
            "describe_feature_group",
            _described(LastUpdateStatus={"Status": "Failed", "FailureReason": "Glue table update denied"}),
        )
        with pytest.raises(GroupRegistrationError, match="FailureReason: Glue table update denied"):
            group_registration.register(spec, groups, SETTINGS)


def test_a_ttl_change_is_an_online_store_update():
    spec = group_spec(ttl=TtlDuration("Days", 30))
    groups, stubber, _ = _stubbed_groups(poll_seconds=0, wait_timeout_seconds=60)
    with stubber:
        _exists(stubber)
        stubber.add_response("describe_feature_group", _described())
        stubber.add_response("describe_feature_group", _described())
        stubber.add_response(
            "update_feature_group",
            {"FeatureGroupArn": _described()["FeatureGroupArn"]},
            {"FeatureGroupName": spec.name, "OnlineStoreConfig": {"TtlDuration": {"Unit": "Days", "Value": 30}}},
        )
        stubber.add_response("describe_feature_group", _described(LastUpdateStatus={"Status": "Successful"}))
        assert group_registration.register(spec, groups, SETTINGS)["ttl"] == "30 Days"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda defs: [d | {"FeatureType": "Fractional"} if d["FeatureName"] == "txn_count_1h" else d for d in defs],
            "'txn_count_1h' is Fractional in the group, Integral in the registry",
        ),
        (
            lambda defs: [*defs, {"FeatureName": "retired_feature", "FeatureType": "Integral"}],
            "'retired_feature' (Integral) is no longer in the registry",
        ),
    ],
)
def test_type_changes_and_removals_are_refused_with_the_n_plus_1_explanation(change, message):
    groups, stubber, _ = _stubbed_groups(poll_seconds=0, wait_timeout_seconds=60)
    with stubber:
        _exists(stubber)
        stubber.add_response("describe_feature_group", _described(definitions=change(group_spec().as_api())))
        with pytest.raises(group_registration.IncompatibleFeatureGroup) as raised:
            group_registration.register(group_spec(), groups, SETTINGS)
    assert message in str(raised.value)
    assert "card-features-v2" in str(raised.value) and "FEATURE_SET_VERSION" in str(raised.value)


def test_the_refusal_names_the_next_version_of_the_same_group():
    merchant = group_spec(entity=MERCHANT)
    described = {
        "RecordIdentifierFeatureName": "merchant_id",
        "EventTimeFeatureName": "event_time",
        # a merchant group whose rate was Integral: Feature Store cannot change a type
        "FeatureDefinitions": [
            {**item, "FeatureType": "Integral"} if item["FeatureName"] == "merchant_cb_rate_7d" else item
            for item in merchant.as_api()
        ],
    }
    with pytest.raises(group_registration.IncompatibleFeatureGroup) as raised:
        group_registration.plan_changes(merchant, described)
    message = str(raised.value)
    assert "feature group merchant-features-v2 cannot be updated" in message
    assert "'merchant_cb_rate_7d' is Integral in the group, Fractional in the registry" in message
    assert "registers merchant-features-v3 beside this group" in message and "card-features-v3" not in message
    assert "gold/merchant_features" in message and "docs/feature_store.md" in message


def test_plan_changes_refuses_a_different_identifier():
    described = _described()
    described["RecordIdentifierFeatureName"] = "account_id"
    with pytest.raises(group_registration.IncompatibleFeatureGroup, match="record identifier"):
        group_registration.plan_changes(group_spec(), described)


def test_local_registration_command(tmp_path, capsys):
    lake = tmp_path / "lake"
    assert registration.main(["--lake-root", str(lake)]) == exit_codes.PRECONDITION_FAILED  # no lake there
    assert f"--lake-root {lake}: no lake at {lake}" in capsys.readouterr().err and not lake.exists()
    assert registration.main(["--lake-root", str(lake), "--create-lake"]) == 0
    created = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # both groups of the feature set, one JSON line each, card first
    assert [(item["feature_group"], item["action"]) for item in created] == [
        ("card-features-v2", "created"),
        ("merchant-features-v2", "created"),
    ]
    store = LocalStore(lake / "feature_store/online.db")
    for entity in ("card_id", MERCHANT):
        spec = group_spec(entity=entity)
        described = store.describe_group(spec.name)
        assert described["RecordIdentifierFeatureName"] == entity
        assert described["FeatureDefinitions"] == spec.as_api()
    store.close()
    assert registration.main(["--lake-root", str(lake), "--ttl-value", "7"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"action": "updated", "added": [], "feature_group": name, "ttl": "7 Days"}
        for name in ("card-features-v2", "merchant-features-v2")
    ]
    store = LocalStore(lake / "feature_store/online.db")
    assert store.describe_group("card-features-v2")["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Days", "Value": 7}
    # A group whose types differ is refused (exit 5, a failed precondition), and left as it was.
    store.db.execute("UPDATE feature_groups SET definitions = replace(definitions, 'Integral', 'Fractional')")
    store.close()
    assert registration.main(["--lake-root", str(lake)]) == exit_codes.PRECONDITION_FAILED
    assert "FEATURE_SET_VERSION" in capsys.readouterr().err


def test_sagemaker_options_are_required():
    with pytest.raises(SystemExit):
        registration.parse_args(["--backend", "sagemaker", "--role-arn", SETTINGS.role_arn])
    with pytest.raises(SystemExit):
        registration.parse_args(["--lake-root", "s3://bucket/lake"])  # local backend needs a local SQLite path
