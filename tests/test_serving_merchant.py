"""Merchant features at request time: the merchant group's online record of the authorization's merchant,
exact on its day, a stale earlier snapshot flagged, a terminal one not, none → counts 0 / rates null; the
local backend's online store and SageMaker's BatchGetRecord of the record and the published-day marker
(botocore Stubber, the exact request); nothing unflagged before the event's day is published."""

from __future__ import annotations

import json
from datetime import date

import boto3
import pytest
from botocore.stub import Stubber

from feature_store import serving_lambda
from feature_store.merchant_lookup import (
    PUBLISHED_MARKER_ID,
    MerchantSnapshots,
    absent_merchant_features,
    day_start_us,
    is_terminal,
    merchant_features_at,
    published_marker_record,
    utc_day,
)
from feature_store.records import to_record
from feature_store.serving import FeatureServer
from feature_store.serving_endpoints import ServingSetupError, local_server
from spark_jobs.feature_registry import FEATURE_NAMES, MERCHANT, MERCHANT_FEATURE_NAMES
from tests.serving_fixtures import MerchantRecords, authorization, register_merchant_group, state_lake

DAY = date(2026, 1, 1)  # the authorizations' UTC day (T0 = its midnight)
T0_US = day_start_us(DAY)
REGION = "eu-west-1"


def snapshot(merchant: str, day: date, counts=(3, 10, 40), rates=(0.5, 0.1, None)) -> dict:
    """A gold/merchant_features row."""
    row = {"merchant_id": merchant, "day": day, "snapshot_start_us": day_start_us(day)}
    row.update(zip(MERCHANT_FEATURE_NAMES[:3], counts, strict=True))
    row.update(zip(MERCHANT_FEATURE_NAMES[3:], rates, strict=True))
    return row


def expected_features(row: dict) -> dict:
    return {name: row[name] for name in MERCHANT_FEATURE_NAMES}


TERMINAL = {"counts": (0, 0, 0), "rates": (None, None, None)}


def test_the_rules_exact_stale_terminal_later_and_absent():
    at = T0_US + 3_600_000_000  # 01:00 on DAY; DAY is published (P = DAY) unless said otherwise
    exact = snapshot("m", DAY)
    served = merchant_features_at(to_record(exact, MERCHANT), at, DAY)
    assert (served.features, served.snapshot_day, served.stale) == (expected_features(exact), DAY, False)
    # DAY not published yet (P = the day before): the previous snapshot, flagged with its day
    previous = snapshot("m", date(2025, 12, 31))
    served = merchant_features_at(to_record(previous, MERCHANT), at, date(2025, 12, 31))
    assert (served.features, served.snapshot_day, served.stale) == (
        expected_features(previous),
        date(2025, 12, 31),
        True,
    )
    assert served.as_json() == {
        "merchant_snapshot_stale": True,
        "merchant_snapshot_day": "2025-12-31",
        "merchant_published_day": "2025-12-31",
    }
    # DAY published: an earlier record is the merchant's newest row up to DAY (terminal): not stale
    terminal = snapshot("m", date(2025, 12, 20), **TERMINAL)
    served = merchant_features_at(to_record(terminal, MERCHANT), at, DAY)
    assert is_terminal(served.features) and not served.stale and served.snapshot_day == date(2025, 12, 20)
    # a record of a later day than the authorization's (a replay of an old event): flagged, even if terminal
    later = snapshot("m", date(2026, 1, 2), **TERMINAL)
    assert merchant_features_at(to_record(later, MERCHANT), at, date(2026, 1, 2)).stale
    # DAY published but an earlier record that is not terminal (cannot come from a clean ingestion): flagged
    assert merchant_features_at(to_record(previous, MERCHANT), at, DAY).stale
    # a count of 0 with a rate is not terminal
    almost = snapshot("m", date(2025, 12, 31), counts=(0, 0, 0), rates=(None, None, 0.0))
    assert not is_terminal(expected_features(almost))
    assert merchant_features_at(to_record(almost, MERCHANT), at, DAY).stale
    # no record, DAY published: counts 0, rates null, no day, not stale
    served = merchant_features_at(None, at, date(2026, 1, 3))
    assert served.features == absent_merchant_features() and (served.snapshot_day, served.stale) == (None, False)
    assert absent_merchant_features() == dict(zip(MERCHANT_FEATURE_NAMES, (0, 0, 0, None, None, None), strict=True))
    # nothing published at all (no marker): flagged whatever the record
    for record in (to_record(exact, MERCHANT), to_record(terminal, MERCHANT), None):
        assert merchant_features_at(record, at, None).stale


def test_a_silent_merchant_before_its_day_is_published_is_flagged():
    """The review's counter-example: a merchant silent for 38+ days (terminal record) or brand new (no record)
    has an event on DAY - 1; a request on DAY before DAY's snapshot is ingested (P = DAY - 1) sees the old
    terminal record (or none) although DAY's true merchant_txn_count_1d is >= 1: served, but flagged."""
    at = T0_US + 60_000_000
    day_before = date(2025, 12, 31)
    terminal = snapshot("m-silent", date(2025, 11, 1), **TERMINAL)
    for record in (to_record(terminal, MERCHANT), None):
        served = merchant_features_at(record, at, day_before)
        assert served.stale and served.published_day == day_before
    # once DAY is published the same records are exact (the merchant had no event: ingestion wrote no newer row)
    assert not merchant_features_at(to_record(terminal, MERCHANT), at, DAY).stale
    assert not merchant_features_at(None, at, DAY).stale


def test_the_event_day_is_utc_by_integer_arithmetic():
    assert utc_day(T0_US) == DAY and utc_day(T0_US - 1) == date(2025, 12, 31)
    assert utc_day(T0_US + 86_400_000_000 - 1) == DAY
    assert utc_day(-1) == date(1969, 12, 31)


def test_doubles_come_back_bit_for_bit():
    row = snapshot("m", DAY, rates=(1 / 3, 2 / 7, 0.1 + 0.2))
    served = merchant_features_at(to_record(row, MERCHANT), T0_US, DAY)
    assert [served.features[name] for name in MERCHANT_FEATURE_NAMES[3:]] == [1 / 3, 2 / 7, 0.1 + 0.2]


def test_serving_reads_the_local_merchant_group(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_CARD_TOKEN_KEY", raising=False)
    lake = state_lake(tmp_path / "lake")
    exact, stale = snapshot("m-exact", DAY), snapshot("m-stale", date(2025, 12, 31), counts=(1, 2, 3))
    terminal = snapshot("m-terminal", date(2025, 12, 1), **TERMINAL)
    # the online store keeps each merchant's newest day: m-exact's older day is replaced by DAY
    register_merchant_group(lake, [snapshot("m-exact", date(2025, 12, 31), counts=(9, 9, 9)), exact, stale, terminal])
    with FeatureServer.local(lake, allow_dev_key=True) as server:
        answers = {
            merchant: server.serve(authorization(f"a-{merchant}", T0_US // 1_000_000 + 60, merchant_id=merchant))
            for merchant in ("m-exact", "m-stale", "m-terminal", "m-absent")
        }
    for merchant, row, stale_flag, day in (
        ("m-exact", exact, False, "2026-01-01"),
        ("m-stale", stale, True, "2025-12-31"),
        ("m-terminal", terminal, False, "2025-12-01"),
    ):
        body = answers[merchant].as_json()
        assert {name: body["features"][name] for name in MERCHANT_FEATURE_NAMES} == expected_features(row)
        assert (body["merchant_snapshot_stale"], body["merchant_snapshot_day"]) == (stale_flag, day), merchant
    absent = answers["m-absent"].as_json()
    assert {name: absent["features"][name] for name in MERCHANT_FEATURE_NAMES} == absent_merchant_features()
    assert (absent["merchant_snapshot_stale"], absent["merchant_snapshot_day"]) == (False, None)
    assert absent["merchant_published_day"] == "2026-01-01"
    # all 22 features, registry order; card and event features from the card's state (3 silver + 4 served)
    assert list(absent["features"]) == list(FEATURE_NAMES) and len(FEATURE_NAMES) == 22
    assert absent["features"]["txn_count_1h"] == 3 + 4 and absent["features"]["hour_of_day"] == 0
    json.dumps(absent)


def test_a_lake_without_the_merchant_group_is_a_clear_setup_error(tmp_path):
    from feature_store.online_state import SqliteOnlineState, local_state_path

    lake = tmp_path / "lake"
    SqliteOnlineState(local_state_path(lake)).close()  # the state, but no online store
    with pytest.raises(ServingSetupError, match="no local online store"):
        local_server(lake, allow_development_token_key=True)
    from feature_store.backends.local import LocalStore
    from feature_store.definitions import group_spec

    store = LocalStore(lake / "feature_store" / "online.db")
    store.create_group(group_spec())  # only the card group (a v1-era store)
    store.close()
    with pytest.raises(ServingSetupError, match="merchant-features-v2"):
        local_server(lake, allow_development_token_key=True)


def _stubbed_runtime():
    client = boto3.client(
        "sagemaker-featurestore-runtime",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def batch_request(merchant: str) -> dict:
    """The exact BatchGetRecord request of one lookup: the merchant's record and the marker, one group."""
    return {
        "Identifiers": [
            {
                "FeatureGroupName": "merchant-features-v2",
                "RecordIdentifiersValueAsString": [merchant, PUBLISHED_MARKER_ID],
            }
        ]
    }


def batch_response(merchant: str, record: list[dict] | None, published: date | None) -> dict:
    found = [] if record is None else [(merchant, record)]
    if published is not None:
        found.append((PUBLISHED_MARKER_ID, published_marker_record(published)))
    records = [
        {"FeatureGroupName": "merchant-features-v2", "RecordIdentifierValueAsString": key, "Record": value}
        for key, value in found
    ]
    return {"Records": records, "Errors": [], "UnprocessedIdentifiers": []}


def test_sagemaker_batch_get_record_is_the_exact_request():
    client, stubber = _stubbed_runtime()
    record = to_record(snapshot("m-1", DAY), MERCHANT)
    stubber.add_response("batch_get_record", batch_response("m-1", record, DAY), batch_request("m-1"))
    stubber.add_response("batch_get_record", batch_response("m-unknown", None, DAY), batch_request("m-unknown"))
    stubber.add_response("batch_get_record", batch_response("m-1", record, None), batch_request("m-1"))
    with stubber:
        snapshots = MerchantSnapshots(client)
        served = snapshots.features_at("m-1", T0_US + 1)
        missing = snapshots.features_at("m-unknown", T0_US + 1)
        unpublished = snapshots.features_at("m-1", T0_US + 1)
        stubber.assert_no_pending_responses()
    assert served.features == expected_features(snapshot("m-1", DAY)) and not served.stale
    assert served.published_day == DAY
    assert missing.features == absent_merchant_features() and missing.snapshot_day is None and not missing.stale
    assert unpublished.stale and unpublished.published_day is None


def test_a_failed_batch_read_is_an_error_not_a_missing_record():
    client, stubber = _stubbed_runtime()
    error = {
        "FeatureGroupName": "merchant-features-v2",
        "RecordIdentifierValueAsString": "m-1",
        "ErrorCode": "InternalFailure",
        "ErrorMessage": "boom",
    }
    stubber.add_response(
        "batch_get_record", {"Records": [], "Errors": [error], "UnprocessedIdentifiers": []}, batch_request("m-1")
    )
    with stubber, pytest.raises(RuntimeError, match="m-1"):
        MerchantSnapshots(client).features_at("m-1", T0_US)


def test_the_marker_id_can_never_be_a_merchant():
    from spark_jobs.bronze_contract import FIELD_MAX_CHARS

    assert len(PUBLISHED_MARKER_ID) == FIELD_MAX_CHARS["merchant_id"] + 1 == 129
    with pytest.raises(ValueError, match="marker"):
        MerchantSnapshots(MerchantRecords()).features_at(PUBLISHED_MARKER_ID, T0_US)


def test_the_local_store_reads_record_and_marker_in_one_query(tmp_path):
    """Locally the two records come from one SELECT (one committed state)."""
    from feature_store.backends.local import LocalFeatureStoreRuntime, LocalStore

    lake = register_merchant_group(tmp_path / "lake", [snapshot("m-1", DAY)], published_day=DAY)
    store = LocalStore(lake / "feature_store" / "online.db", read_only=True)
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    try:
        served = MerchantSnapshots(LocalFeatureStoreRuntime(store)).features_at("m-1", T0_US)
    finally:
        store.close()
    assert (served.snapshot_day, served.published_day, served.stale) == (DAY, DAY, False)
    reads = [sql for sql in statements if "online_records" in sql]
    assert len(reads) == 1 and "IN (" in reads[0], statements


def test_the_lambda_reads_merchant_features_with_batch_get_record(monkeypatch):
    """The Lambda's runtime wires the merchant group of MERCHANT_FEATURE_GROUP (default the registry's)."""
    from moto import mock_aws

    from feature_store.online_state_dynamodb import DynamoDbOnlineState, create_table

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client, stubber = _stubbed_runtime()
    stale = snapshot("m-9", date(2025, 12, 31))
    # DAY not published yet (P = the day before): the previous snapshot, flagged
    stubber.add_response(
        "batch_get_record",
        batch_response("m-9", to_record(stale, MERCHANT), date(2025, 12, 31)),
        batch_request("m-9"),
    )
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name=REGION), "state")
        boto3.client("secretsmanager", region_name=REGION).create_secret(Name="key", SecretString="5e" * 32)
        config = serving_lambda.LambdaConfig("state", "key", "spark_jobs/reference_data/fx_rates.csv", None)
        runtime = serving_lambda.build_runtime(config, featurestore_client=client)
        with stubber:
            response = serving_lambda.handle_event(runtime, {"body": authorization("a-1", T0_US // 1_000_000 + 5)})
            stubber.assert_no_pending_responses()
        assert isinstance(runtime.server.state, DynamoDbOnlineState)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert (body["merchant_snapshot_stale"], body["merchant_snapshot_day"]) == (True, "2025-12-31")
    assert {name: body["features"][name] for name in MERCHANT_FEATURE_NAMES} == expected_features(stale)


def test_the_lambda_configuration_names_the_merchant_group():
    env = {"ONLINE_STATE_TABLE": "t", "CARD_TOKEN_SECRET_ID": "s", "FX_RATES_URI": "f"}
    assert serving_lambda.LambdaConfig.from_env(env).merchant_feature_group is None  # the registry's
    named = serving_lambda.LambdaConfig.from_env({**env, "MERCHANT_FEATURE_GROUP": "merchant-features-v2"})
    assert named.merchant_feature_group == "merchant-features-v2"
    assert MerchantSnapshots(MerchantRecords(), named.merchant_feature_group).feature_group == "merchant-features-v2"


def test_the_sagemaker_backend_puts_the_marker_to_the_online_store_only():
    """Ingestion's marker write on AWS: one PutRecord, TargetStores ["OnlineStore"] (never the offline store)."""
    from feature_store.backends.sagemaker import SageMakerBackend

    client, stubber = _stubbed_runtime()
    marker = published_marker_record(DAY)
    stubber.add_response(
        "put_record",
        {},
        {"FeatureGroupName": "merchant-features-v2", "Record": marker, "TargetStores": ["OnlineStore"]},
    )
    with stubber:
        SageMakerBackend(REGION, 1, marker_client=client).put_online_only("merchant-features-v2", marker)
        stubber.assert_no_pending_responses()
    assert marker == [
        {"FeatureName": "merchant_id", "ValueAsString": PUBLISHED_MARKER_ID},
        {"FeatureName": "event_time", "ValueAsString": "2026-01-01T00:00:00.000Z"},
    ]


def test_the_local_backend_puts_the_marker_to_the_online_store_only(tmp_path):
    from feature_store.backends.local import LocalBackend

    lake = register_merchant_group(tmp_path / "lake", published_day=None)
    backend = LocalBackend(str(lake / "feature_store" / "online.db"), "file://" + str(lake))
    try:
        backend.put_online_only("merchant-features-v2", published_marker_record(DAY))
        assert backend.runtime.offline_rows == []  # nothing buffered for the offline store
    finally:
        backend.close()
    snapshots = MerchantSnapshots.local(lake)
    try:
        assert snapshots.records("m-1") == (None, DAY)
    finally:
        snapshots.close()
