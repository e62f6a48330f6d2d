"""The merchant snapshot (spark_jobs/merchant_features.py) against the independent DuckDB reference
(tests/gold_reference.py) over a lake with adversarial chargebacks; stream runs (late events, late chargebacks,
new snapshot days) end equal to a full recompute; the datasets' point-in-time join."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from spark_jobs import datasets, merchant_features
from spark_jobs.delta_tables import ensure_table
from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES
from spark_jobs.lake import CHARGEBACKS_TABLE, MERCHANT_FEATURES_TABLE, SILVER_TABLE
from spark_jobs.run_report import RunReport
from spark_jobs.storage import open_lake
from tests.gold_reference import reference_merchant_features, reference_merchant_snapshot
from tests.lake_helpers import fails_releasing_its_frames, table_rows

DAY_US = 86_400_000_000
SECOND_US = 1_000_000
B = (date(2026, 1, 1) - date(1970, 1, 1)).days  # day 0 of the test lake, as a day number

# silver's columns the snapshot reads, and dt (partitions); the real table has more, none of them read.
SILVER_COLUMNS = "event_id string not null, card_id string not null, merchant_id string not null, ts_us long not null"
# silver/chargebacks as V2_DESIGN.md declares it
CHARGEBACKS_SCHEMA = (
    "event_id string not null, reported_at_us long not null, reported_at decimal(16,6) not null, "
    "source_file string not null, line_number long not null, ingested_at timestamp not null, run_id string not null"
)


def at(day: int, seconds: int = 0, micros: int = 0) -> int:
    """ts_us of day `day` of the test lake + seconds + microseconds."""
    return (B + day) * DAY_US + seconds * SECOND_US + micros


def start(day: int) -> int:
    return at(day)


# Run 1 ------------------------------------------------------------------------------------------------------
# m-edge: probes on day 8 (S8 = start(8)): its 1 d rate denominator is day 0 ([S8 − L − 1 d, S8 − L)).
EVENTS_1 = [
    ("x1", "m-edge", at(0)),  # exactly S8 − L − W (W = 1 d): inside day 8's 1 d denominator
    ("x2", "m-edge", at(1)),  # exactly S8 − L: outside day 8's denominators, inside day 9's 1 d
    ("x3", "m-edge", at(0, 6 * 3600)),
    ("x4", "m-edge", at(0, 12 * 3600)),
    ("x5", "m-edge", at(0, 18 * 3600)),
    ("x6", "m-edge", at(0, 20 * 3600)),
    ("p8a", "m-edge", at(8)),  # at S8 itself: not in day 8's own counts
    ("p8b", "m-edge", at(9, 0, -1)),  # the last microsecond of day 8
    ("p9", "m-edge", at(9, 3600)),
    ("p13", "m-edge", at(13, 100)),
    ("p20", "m-edge", at(20, 100)),
    ("p40", "m-edge", at(40, 100)),
    ("n1", "m-new", at(8, 5000)),  # m-new's first day: no snapshot row, counts 0 and rates null
    ("n2", "m-new", at(9, 5000)),
    ("s1", "m-short", at(2, 77)),  # one event: rows on days 3 .. 40, the last one terminal (all 0/null)
]
CHARGEBACKS_1 = [
    ("x1", start(8) - 1),  # 1 µs before S8: known on day 8
    ("x3", start(8)),  # exactly S8: not known on day 8, known on day 9
    ("x4", start(8) + 1),  # 1 µs after S8: known on day 9
    ("x5", at(0, 18 * 3600) - 1),  # before its event: never a label
    ("x6", start(8) - 10 * SECOND_US),  # two reports of one event: counts once
    ("x6", start(13)),
    ("ghost", start(3)),  # an event silver does not hold
]
# Run 2: a chargeback arriving after the rows it changes, a late event and its chargeback, a merchant's event
# that moves silver's last day; the run's now caps the snapshot days at day 45.
EVENTS_2 = [
    ("late", "m-edge", at(2, 42)),
    ("y46", "m-other", at(46, 1)),
]
CHARGEBACKS_2 = [
    ("x2", at(12, 5 * 3600)),  # x2 (day 1) is in the 30 d denominators of days 9 .. 38: rates from day 13 change
    ("late", at(3)),
    ("p8a", at(9)),  # a chargeback reported a day after its event
]
NOW_1 = datetime(2026, 3, 30, tzinfo=UTC)  # later than silver's last day + 1
NOW_2 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=45, hours=3)  # day 45
NOW_3 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=60)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("merchant_lake")
    silver_schema = _schema(spark, SILVER_COLUMNS + ", dt date not null")
    ensure_table(spark, str(root / SILVER_TABLE), silver_schema, partition_by=("dt",), change_data_feed=True)
    ensure_table(spark, str(root / CHARGEBACKS_TABLE), _schema(spark, CHARGEBACKS_SCHEMA), change_data_feed=True)
    return root


def _schema(spark, ddl: str):
    return spark.createDataFrame([], ddl).schema


def append_events(spark, root: Path, events) -> None:
    frame = spark.createDataFrame([(e, f"card-{e}", m, ts) for e, m, ts in events], SILVER_COLUMNS)
    frame.selectExpr("*", "to_date(timestamp_micros(ts_us)) AS dt").write.format("delta").mode("append").save(
        str(root / SILVER_TABLE)
    )


def append_chargebacks(spark, root: Path, chargebacks, *, first_line: int) -> None:
    rows = [
        (event_id, reported, Decimal(reported).scaleb(-6), "feed.jsonl", first_line + index, datetime(2026, 3, 1), "r")
        for index, (event_id, reported) in enumerate(chargebacks)
    ]
    spark.createDataFrame(rows, CHARGEBACKS_SCHEMA).write.format("delta").mode("append").save(
        str(root / CHARGEBACKS_TABLE)
    )


def update(spark, root: Path, mode: str, now: datetime) -> RunReport:
    storage = open_lake(str(root))
    report = RunReport(storage=storage, job="silver_and_gold", mode=mode)
    merchant_features.update_merchant_features(
        spark, storage, report, mode=mode, computed_at=report.started_at, now=now
    )
    return report


def snapshot_table(spark, root: Path) -> dict[tuple[str, int], dict]:
    rows = spark.read.format("delta").load(str(root / MERCHANT_FEATURES_TABLE)).collect()
    return {(row.merchant_id, row.snapshot_start_us): row.asDict() for row in rows}


def assert_equal_to_reference(spark, root: Path, *, last_day: int) -> dict:
    table = snapshot_table(spark, root)
    expected = reference_merchant_snapshot(
        root / SILVER_TABLE, root / CHARGEBACKS_TABLE, last_day_start_us=start(last_day)
    )
    assert sorted(table) == sorted((row["merchant_id"], row["snapshot_start_us"]) for row in expected)
    for row in expected:
        stored = table[(row["merchant_id"], row["snapshot_start_us"])]
        assert stored["day"] == date(1970, 1, 1) + timedelta(microseconds=row["snapshot_start_us"])
        assert stored["feature_set_version"] == 2
        assert {name: stored[name] for name in MERCHANT_FEATURE_NAMES} == {
            name: row[name] for name in MERCHANT_FEATURE_NAMES
        }, (row["merchant_id"], stored["day"])
    return table


def dataset_rows(spark, root: Path) -> dict[str, dict]:
    """The datasets' rows of every silver event (gold's key columns, no card features needed here)."""
    silver = spark.read.format("delta").load(str(root / SILVER_TABLE))
    gold_like = silver.selectExpr(
        "event_id", "card_id", "merchant_id", "ts_us", "dt", "CAST(1.5 AS DECIMAL(30,10)) AS amount_usd"
    )
    merchant = spark.read.format("delta").load(str(root / MERCHANT_FEATURES_TABLE))
    joined = datasets.with_merchant_features(gold_like, merchant)
    return {row.event_id: {name: row[name] for name in MERCHANT_FEATURE_NAMES} for row in joined.collect()}


def test_stream_runs_with_late_chargebacks_equal_the_reference_and_a_full_recompute(spark, lake):
    append_events(spark, lake, EVENTS_1)
    append_chargebacks(spark, lake, CHARGEBACKS_1, first_line=1)
    first = update(spark, lake, "stream", NOW_1)
    assert "no merchant watermark" in " ".join(first.details["merchant_features"]["notes"])
    table = assert_equal_to_reference(spark, lake, last_day=41)  # silver's last day (40) + 1

    # The hand-checked corners, as the reference and the table must both see them.
    def features(day: int, merchant: str = "m-edge") -> dict:
        return table[(merchant, start(day))]

    assert features(8)["merchant_cb_rate_1d"] == 2 / 5  # x1 (S − 1 µs) and x6 known; x3, x4 not; x5 ignored
    assert features(8)["merchant_txn_count_1d"] == 0 and features(9)["merchant_txn_count_1d"] == 2  # p8a, p8b
    assert features(9)["merchant_cb_rate_1d"] == 0.0  # x2 alone, no chargeback yet
    assert features(9)["merchant_cb_rate_7d"] == 4 / 6  # x3 (at S8) and x4 (S8 + 1 µs) known now
    assert ("m-new", start(8)) not in table and features(9, "m-new")["merchant_txn_count_1d"] == 1
    terminal = features(40, "m-short")
    assert [terminal[name] for name in MERCHANT_FEATURE_NAMES] == [0, 0, 0, None, None, None]
    assert ("m-short", start(41)) not in table and ("m-short", start(39)) in table
    rate_before = features(20)["merchant_cb_rate_30d"]

    # Run 2: late chargebacks and a late event, after the rows they change were written.
    append_events(spark, lake, EVENTS_2)
    append_chargebacks(spark, lake, CHARGEBACKS_2, first_line=100)
    second = update(spark, lake, "stream", NOW_2)
    stats = second.details["merchant_features"]
    assert stats["mode"] == "stream" and stats["rows_updated"] > 0 and stats["last_snapshot_day"] == "2026-02-15"
    table = assert_equal_to_reference(spark, lake, last_day=45)  # now caps it: silver's last day + 1 is 47
    assert table[("m-edge", start(20))]["merchant_cb_rate_30d"] > rate_before
    # Run 3: nothing new in silver or the chargebacks, but the days up to silver's last day + 1 are due now.
    third = update(spark, lake, "daily", NOW_3)
    assert third.counts["merchant_days_recomputed"] == 2 and third.counts["merchant_rows_updated"] == 0
    streamed_rows = table_rows(spark, lake / MERCHANT_FEATURES_TABLE)
    streamed_dataset = dataset_rows(spark, lake)
    assert_equal_to_reference(spark, lake, last_day=47)

    # Every dataset row's merchant columns are the reference's for its event (first day: 0 and null).
    reference = reference_merchant_features(lake / SILVER_TABLE, lake / CHARGEBACKS_TABLE)
    assert streamed_dataset == reference
    assert reference["n1"] == dict.fromkeys(MERCHANT_FEATURE_NAMES[:3], 0) | dict.fromkeys(
        MERCHANT_FEATURE_NAMES[3:], None
    )

    # A full recompute changes nothing; so does a rerun of the stream.
    full = update(spark, lake, "full", NOW_3)
    assert full.counts["merchant_rows_inserted"] == full.counts["merchant_rows_updated"] == 0
    assert full.details["merchant_features"]["rows_deleted"] == 0
    assert table_rows(spark, lake / MERCHANT_FEATURES_TABLE) == streamed_rows
    assert dataset_rows(spark, lake) == streamed_dataset
    rerun = update(spark, lake, "stream", NOW_3)
    assert rerun.counts["merchant_days_recomputed"] == 0 and rerun.counts["merchant_rows_updated"] == 0
    assert table_rows(spark, lake / MERCHANT_FEATURES_TABLE) == streamed_rows

    # A run with an earlier now (a backfill with --now, clock skew: day 45 < the last run's 47) keeps the later
    # rows and recomputes them too: a late event changing days 45 .. 47 is absorbed whole, and a full recompute
    # with the same now changes (and deletes) nothing.
    append_events(spark, lake, [("late44", "m-other", at(44, 7))])
    backfill = update(spark, lake, "stream", NOW_2)
    assert_equal_to_reference(spark, lake, last_day=47)
    assert "are kept and recomputed" in " ".join(backfill.details["merchant_features"]["notes"])
    assert backfill.details["merchant_features"]["last_snapshot_day"] == "2026-02-17"
    streamed_rows = table_rows(spark, lake / MERCHANT_FEATURES_TABLE)
    full = update(spark, lake, "full", NOW_2)
    assert full.counts["merchant_rows_inserted"] == full.counts["merchant_rows_updated"] == 0
    assert full.details["merchant_features"]["rows_deleted"] == 0
    assert table_rows(spark, lake / MERCHANT_FEATURES_TABLE) == streamed_rows


def test_inference_snapshot_takes_the_merchant_row_of_the_latest_events_day(spark):
    schema = "event_id string, card_id string, merchant_id string, ts_us long, dt date"
    events = spark.createDataFrame(
        [("a", "c1", "m", start(5), date(2026, 1, 6)), ("b", "c1", "m", start(6), date(2026, 1, 7))], schema
    ).selectExpr("*", "CAST(ts_us / 1000000 AS DECIMAL(16,6)) AS ts", "CAST(2 AS DECIMAL(30,10)) AS amount_usd")
    snapshot = spark.createDataFrame(
        [("m", date(2026, 1, 7), start(6), 3, 4, 5, 0.5, None, 0.25, 2, datetime(2026, 1, 7))],
        merchant_features.MERCHANT_FEATURES_SCHEMA,
    )
    extra = [
        name for name in datasets.INFERENCE_COLUMNS if name not in events.columns and name not in MERCHANT_FEATURE_NAMES
    ]
    for name in extra:
        events = events.selectExpr(
            "*", f"CAST(NULL AS {datasets.INFERENCE_SCHEMA[name].dataType.simpleString()}) AS {name}"
        )
    rows = datasets.inference_snapshot(events, as_of_us=start(10), merchant_snapshot=snapshot).collect()
    assert [row.event_id for row in rows] == ["b"]
    assert [rows[0][name] for name in MERCHANT_FEATURE_NAMES] == [3, 4, 5, 0.5, None, 0.25]
    assert list(rows[0].asDict()) == list(datasets.INFERENCE_COLUMNS)


def test_a_watermark_older_than_the_kept_delta_log_recomputes_everything_and_says_so(spark, tmp_path):
    """Silver's log before a checkpoint cleaned up (as after delta.logRetentionDuration): the change feed since
    the watermark cannot be read, so the run recomputes the whole snapshot and the report names the table."""
    silver_schema = _schema(spark, SILVER_COLUMNS + ", dt date not null")
    silver = tmp_path / SILVER_TABLE
    ensure_table(
        spark,
        str(silver),
        silver_schema,
        partition_by=("dt",),
        change_data_feed=True,
        properties={"delta.checkpointInterval": "2"},
    )
    append_events(spark, tmp_path, [("a", "m", at(0, 5))])
    update(spark, tmp_path, "stream", NOW_1)  # the watermark: silver's version 1
    for index in range(1, 5):
        append_events(spark, tmp_path, [(f"b{index}", "m", at(index, 5))])
    log = silver / "_delta_log"
    checkpoint = max(int(path.name.split(".")[0]) for path in log.glob("*.checkpoint.parquet"))
    for path in log.glob("*.json"):
        if path.name[0].isdigit() and int(path.name.split(".")[0]) < checkpoint:
            path.unlink()
    report = update(spark, tmp_path, "stream", NOW_1)
    stats = report.details["merchant_features"]
    assert stats["mode"] == "recompute_all" and "older than the table's Change Data Feed retention" in stats["notes"][0]
    assert stats["notes"][0].startswith("silver version 2")
    assert_equal_to_reference(spark, tmp_path, last_day=5)


def test_a_crash_between_the_merge_and_the_watermark_is_healed_by_the_next_run(spark, tmp_path, monkeypatch):
    silver_schema = _schema(spark, SILVER_COLUMNS + ", dt date not null")
    ensure_table(spark, str(tmp_path / SILVER_TABLE), silver_schema, partition_by=("dt",), change_data_feed=True)
    append_events(spark, tmp_path, [("a", "m", at(0, 5)), ("b", "m", at(3, 5)), ("c", "m2", at(9, 5))])
    update(spark, tmp_path, "stream", NOW_1)
    append_events(spark, tmp_path, [("late", "m", at(1, 5))])
    monkeypatch.setenv("LAKEHOUSE_FAIL_AT", "after_merchant_merge")
    with fails_releasing_its_frames(spark):
        update(spark, tmp_path, "stream", NOW_1)
    monkeypatch.delenv("LAKEHOUSE_FAIL_AT")
    merged = table_rows(spark, tmp_path / MERCHANT_FEATURES_TABLE)
    rerun = update(spark, tmp_path, "stream", NOW_1)  # the same (merchant, day) rows again, all unchanged
    assert rerun.counts["merchant_days_recomputed"] > 0 and rerun.counts["merchant_rows_updated"] == 0
    assert table_rows(spark, tmp_path / MERCHANT_FEATURES_TABLE) == merged
    assert_equal_to_reference(spark, tmp_path, last_day=10)
