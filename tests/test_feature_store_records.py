"""Feature group definitions from the registry, the one Record serialiser, and the resync decision."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from feature_store.change_feed import parse_interval
from feature_store.definitions import (
    OFFLINE_ONLY_COLUMNS,
    TtlDuration,
    entity_of_group,
    feature_group_name,
    group_spec,
    group_specs,
    merchant_feature_group_name,
)
from feature_store.ingestion import plan_read
from feature_store.records import RecordError, event_time_ms, event_time_text, parse_features, to_record
from spark_jobs.feature_registry import (
    CARD_FEATURES,
    DECIMAL,
    DOUBLE,
    FEATURE_SET_VERSION,
    FEATURES,
    INTEGER,
    MERCHANT,
    MERCHANT_FEATURES,
    Feature,
)
from spark_jobs.storage import open_lake

T0_US = 1767225600 * 1_000_000  # 2026-01-01T00:00:00Z


def test_group_follows_the_registry():
    spec = group_spec()
    assert spec.name == feature_group_name() == f"card-features-v{FEATURE_SET_VERSION}"
    assert spec.record_identifier == "card_id" and spec.event_time_feature == "event_time"
    assert spec.definitions[:2] == (("card_id", "String"), ("event_time", "String"))
    expected = {INTEGER: "Integral", DECIMAL: "Fractional", DOUBLE: "Fractional"}
    # the card group holds the card and event features (16), in registry order; no merchant feature
    assert list(spec.definitions[2:]) == [(item.name, expected[item.dtype]) for item in CARD_FEATURES]
    assert len(CARD_FEATURES) == 16 and not set(spec.types) & {item.name for item in MERCHANT_FEATURES}
    assert not set(spec.types) & set(OFFLINE_ONLY_COLUMNS)


def test_merchant_group_follows_the_registry():
    spec = group_spec(entity=MERCHANT)
    assert spec.name == merchant_feature_group_name() == f"merchant-features-v{FEATURE_SET_VERSION}"
    assert spec.name == "merchant-features-v2" and group_spec().name == "card-features-v2"
    assert spec.record_identifier == "merchant_id" and spec.event_time_feature == "event_time"
    assert spec.definitions == (
        ("merchant_id", "String"),
        ("event_time", "String"),
        ("merchant_txn_count_1d", "Integral"),
        ("merchant_txn_count_7d", "Integral"),
        ("merchant_txn_count_30d", "Integral"),
        ("merchant_cb_rate_1d", "Fractional"),
        ("merchant_cb_rate_7d", "Fractional"),
        ("merchant_cb_rate_30d", "Fractional"),
    )
    assert [item.name for item in group_specs()] == ["card-features-v2", "merchant-features-v2"]
    assert entity_of_group("merchant-features-v2") == MERCHANT and entity_of_group("card-features-v1") == "card_id"
    with pytest.raises(ValueError, match="not a feature group"):
        entity_of_group("other-v2")


def test_merchant_record_has_the_snapshot_day_start_as_event_time():
    from datetime import date

    row = {
        "merchant_id": "m-7",
        "day": date(2026, 1, 5),
        "snapshot_start_us": T0_US + 4 * 86_400_000_000,
        "merchant_txn_count_1d": 0,
        "merchant_txn_count_7d": 12,
        "merchant_txn_count_30d": 40,
        "merchant_cb_rate_1d": None,  # no event in the maturity-lagged day: null, omitted
        "merchant_cb_rate_7d": 0.25,
        "merchant_cb_rate_30d": 0.0,
        "txn_count_1h": 99,  # a card feature is not the merchant group's: never in its record
    }
    record = to_record(row, MERCHANT)
    assert record == [
        {"FeatureName": "merchant_id", "ValueAsString": "m-7"},
        {"FeatureName": "event_time", "ValueAsString": "2026-01-05T00:00:00.000Z"},
        {"FeatureName": "merchant_txn_count_1d", "ValueAsString": "0"},
        {"FeatureName": "merchant_txn_count_7d", "ValueAsString": "12"},
        {"FeatureName": "merchant_txn_count_30d", "ValueAsString": "40"},
        {"FeatureName": "merchant_cb_rate_7d", "ValueAsString": "0.25"},
        {"FeatureName": "merchant_cb_rate_30d", "ValueAsString": "0"},
    ]
    # without snapshot_start_us, the day's midnight UTC
    assert to_record({**row, "snapshot_start_us": None}, MERCHANT)[1] == record[1]
    parsed = parse_features(record, MERCHANT_FEATURES)
    assert parsed == {
        "merchant_txn_count_1d": 0,
        "merchant_txn_count_7d": 12,
        "merchant_txn_count_30d": 40,
        "merchant_cb_rate_1d": None,
        "merchant_cb_rate_7d": 0.25,
        "merchant_cb_rate_30d": 0.0,
    }
    with pytest.raises(RecordError, match="merchant_id"):
        to_record({**row, "merchant_id": ""}, MERCHANT)


def test_reserved_feature_names_are_refused():
    reserved = Feature("write_time", INTEGER, "count", timedelta(hours=1), "clashes with the offline store")
    with pytest.raises(ValueError, match="reserved"):
        group_spec((*FEATURES, reserved))


def test_ttl_duration():
    assert TtlDuration("Days", 7).seconds == 7 * 86400
    assert TtlDuration.from_api({"Unit": "Hours", "Value": 3}) == TtlDuration("Hours", 3)
    with pytest.raises(ValueError):
        TtlDuration("Months", 1)
    with pytest.raises(ValueError):
        TtlDuration("Days", 0)


@pytest.mark.parametrize(
    ("ts_us", "text"),
    [
        (T0_US, "2026-01-01T00:00:00.000Z"),
        (T0_US + 123_456, "2026-01-01T00:00:00.123Z"),  # truncated, not rounded
        (T0_US + 999_999, "2026-01-01T00:00:00.999Z"),
        (T0_US + 86_399_999_999, "2026-01-01T23:59:59.999Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),  # floor for times before the epoch
    ],
)
def test_event_time_format(ts_us, text):
    assert event_time_text(ts_us) == text
    assert event_time_ms(text) == ts_us // 1000


def test_event_time_parsing_accepts_both_api_formats_only():
    assert event_time_ms("2026-01-01T00:00:01Z") == (T0_US // 1000) + 1000
    for bad in ("2026-01-01T00:00:01.12Z", "2026-01-01 00:00:01Z", "2026-01-01T00:00:01.123", "garbage"):
        with pytest.raises(RecordError):
            event_time_ms(bad)


def _row(**values):
    row = {"card_id": "card-ü-1", "event_id": "e1", "ts_us": T0_US + 1_500, "dt": "2026-01-01"}
    row.update({item.name: None for item in FEATURES})
    row.update(values)
    return row


def test_record_serialises_every_feature_type_and_omits_nulls():
    row = _row(
        txn_count_1h=3,  # integer
        txn_amount_1h=Decimal("90.2500000000"),  # decimal(38,10): trailing zeros dropped, exact
        max_amount_24h=Decimal("100.0000000000"),  # no exponent for integral decimals
        txn_count_24h=0,
        avg_amount_7d=1 / 3,  # double: shortest round-trip digits
        amount_to_avg_7d=1e-7,  # no exponent notation
        secs_since_prev_txn=None,  # null: omitted
    )
    record = to_record(row)
    assert record == [
        {"FeatureName": "card_id", "ValueAsString": "card-ü-1"},
        {"FeatureName": "event_time", "ValueAsString": "2026-01-01T00:00:00.001Z"},
        {"FeatureName": "txn_count_1h", "ValueAsString": "3"},
        {"FeatureName": "txn_amount_1h", "ValueAsString": "90.25"},
        {"FeatureName": "txn_count_24h", "ValueAsString": "0"},
        {"FeatureName": "max_amount_24h", "ValueAsString": "100"},
        {"FeatureName": "avg_amount_7d", "ValueAsString": "0.3333333333333333"},
        {"FeatureName": "amount_to_avg_7d", "ValueAsString": "0.0000001"},
    ]
    parsed = parse_features(record)
    assert parsed["txn_count_1h"] == 3 and isinstance(parsed["txn_count_1h"], int)
    assert parsed["txn_amount_1h"] == 90.25 and parsed["avg_amount_7d"] == 1 / 3
    assert parsed["amount_to_avg_7d"] == 1e-7 and parsed["secs_since_prev_txn"] is None
    json.dumps(record)  # plain strings only


def test_record_event_time_from_event_ts_when_ts_us_is_absent():
    row = _row(ts_us=None, event_ts=datetime(2026, 1, 1, 0, 0, 0, 2_999))  # naive: UTC
    assert to_record(row)[1]["ValueAsString"] == "2026-01-01T00:00:00.002Z"
    aware = _row(ts_us=None, event_ts=datetime(2026, 1, 1, 1, 0, tzinfo=UTC) + timedelta(hours=0))
    assert to_record(aware)[1]["ValueAsString"] == "2026-01-01T01:00:00.000Z"


@pytest.mark.parametrize(
    "values",
    [
        {"card_id": None},
        {"card_id": ""},
        {"avg_amount_7d": float("nan")},
        {"amount_to_avg_7d": float("inf")},
        {"txn_count_1h": 1.5},
        {"ts_us": None},
    ],
)
def test_rows_that_cannot_be_records_are_rejected(values):
    with pytest.raises(RecordError):
        to_record(_row(**values))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interval 1 week", timedelta(days=7)),
        ("interval 7 days", timedelta(days=7)),
        ("INTERVAL 2 days 12 hours", timedelta(days=2, hours=12)),
        ("168 hours", timedelta(days=7)),
        ("interval 30 minutes", timedelta(minutes=30)),
    ],
)
def test_retention_interval(text, expected):
    assert parse_interval(text) == expected


def test_retention_interval_rejects_garbage():
    for text in ("", "interval", "interval one week", "interval 3 fortnights"):
        with pytest.raises(ValueError):
            parse_interval(text)


def _log(lake, versions: dict[int, datetime]) -> str:
    """A fake gold `_delta_log` with a commitInfo timestamp per version."""
    folder = lake / "gold/card_features/_delta_log"
    folder.mkdir(parents=True)
    for version, moment in versions.items():
        info = {"commitInfo": {"timestamp": int(moment.timestamp() * 1000), "operation": "MERGE"}}
        (folder / f"{version:020d}.json").write_text(json.dumps({"protocol": {}}) + "\n" + json.dumps(info) + "\n")
    return str(lake / "gold/card_features")


def test_plan_read_decides_between_incremental_and_resync(tmp_path):
    now = datetime(2026, 3, 1, tzinfo=UTC)
    week = timedelta(days=7)
    lake = tmp_path / "lake"
    gold = "file://" + _log(
        lake, {4: now - timedelta(days=10), 5: now - timedelta(days=6), 6: now - timedelta(hours=1)}
    )
    storage = open_lake(str(lake))
    group = "card-features-v1"

    def plan(watermark, **kwargs):
        return plan_read(
            storage, gold, watermark, feature_group=group, current_version=6, retention=week, now=now, **kwargs
        )

    assert plan(None).mode == "initial"
    assert plan({"feature_group": "card-features-v0", "gold_version": 6}).mode == "initial"
    assert plan({"feature_group": group, "gold_version": 6}).mode == "unchanged"
    incremental = plan({"feature_group": group, "gold_version": 4})
    # Version 4 (the watermark) is 10 days old, but the first version read (5) is 6 days old: still complete.
    assert (incremental.mode, incremental.since_version, incremental.until_version) == ("incremental", 5, 6)
    # The first version to read is older than the deleted-file retention: its change files may be vacuumed.
    old = plan({"feature_group": group, "gold_version": 3})
    assert old.mode == "resync" and "deleted-file retention" in old.reason
    # The first version to read is no longer in the log.
    cleaned = plan({"feature_group": group, "gold_version": 1})
    assert cleaned.mode == "resync" and "no longer in _delta_log" in cleaned.reason
    assert plan({"feature_group": group, "gold_version": 9}).mode == "resync"  # gold recreated
    assert plan({"feature_group": group, "gold_version": 5}, force_resync=True).mode == "resync"


def test_the_watermark_holds_one_entry_per_group_and_a_v1_watermark_resyncs_the_v2_groups(tmp_path):
    now = datetime(2026, 3, 1, tzinfo=UTC)
    lake = tmp_path / "lake"
    gold = "file://" + _log(lake, {5: now - timedelta(days=1), 6: now - timedelta(hours=1)})
    storage = open_lake(str(lake))
    card, merchant = feature_group_name(), merchant_feature_group_name()

    def plan(watermark, group, **kwargs):
        return plan_read(
            storage, gold, watermark, feature_group=group, current_version=6, retention=timedelta(days=7), now=now
        )

    v2 = {"sequence": 3, "groups": {card: {"version": 4}, merchant: {"version": 6}}}
    incremental = plan(v2, card)
    assert (incremental.mode, incremental.since_version) == ("incremental", 5)
    assert plan(v2, merchant).mode == "unchanged"
    # The watermark the v1 ingestion left (one group, card-features-v1): both v2 groups start with a full load.
    v1 = {"sequence": 9, "feature_group": "card-features-v1", "gold_version": 6}
    for group in (card, merchant):
        initial = plan(v1, group)
        assert initial.mode == "initial" and "'card-features-v1'" in initial.reason and group in initial.reason
    # A v2 watermark without the merchant group's entry (its table did not exist yet): a full load of it.
    assert plan({"sequence": 1, "groups": {card: {"version": 6}}}, merchant).mode == "initial"


def test_job_arguments_as_the_state_machines_and_the_deploy_workflow_pass_them():
    from feature_store import ingest_features, register_feature_groups

    # state_machines/*.asl.json on AWS: no online store path, the DynamoDB online state table.
    on_aws = ["--backend", "sagemaker", "--lake-root", "s3://lake/root", "--online-state-table", "online-state"]
    args = ingest_features.parse_args([*on_aws, "--region", "eu-west-1"])
    assert (args.backend, args.online_store_path, args.region, args.max_concurrency) == (
        "sagemaker",
        None,
        "eu-west-1",
        4,
    )
    local = ingest_features.parse_args(["--lake-root", "lake", "--online-store-path", ""])
    assert local.backend == "local" and local.online_store_path.endswith("/lake/feature_store/online.db")
    with pytest.raises(SystemExit):
        ingest_features.parse_args(["--lake-root", "s3://lake/root"])  # local backend, S3 lake: path required
    # .github/workflows/deploy.yml: no --backend, the role and store settings → SageMaker.
    deploy = register_feature_groups.parse_args(
        [
            "--region",
            "eu-west-1",
            "--role-arn",
            "arn:aws:iam::123456789012:role/r",
            "--offline-store-s3-uri",
            "s3://lake/root/feature_store/offline",
            "--offline-store-kms-key-id",
            "arn:aws:kms:eu-west-1:123456789012:key/lake",
            "--online-store-kms-key-id",
            "arn:aws:kms:eu-west-1:123456789012:key/online",
            "--glue-database",
            "cardfeat_dev_feature_store",
        ]
    )
    assert deploy.backend == "sagemaker" and deploy.ttl is None
    assert register_feature_groups.parse_args(["--lake-root", "lake"]).backend == "local"
