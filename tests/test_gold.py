"""Gold features: hand-written boundary cases, a DuckDB differential test, stream vs full equivalence."""

from __future__ import annotations

import json
import math
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.generator import GeneratorConfig, generate_lake
from spark_jobs import gold, silver_and_gold
from spark_jobs.feature_registry import CARD_FEATURE_NAMES, CARD_FEATURES, DECIMAL, DOUBLE, INTEGER
from spark_jobs.lake import GOLD_TABLE
from tests.gold_reference import reference_features, zscore_tolerance
from tests.lake_helpers import BRONZE, event, fails_releasing_its_frames, table_rows, table_version, write_bronze

H = 3600
T0 = 1767225600  # 2026-01-01T00:00:00Z
EVENT_SCHEMA = (
    "event_id string, card_id string, ts decimal(16,6), ts_us long, event_ts timestamp, dt date, "
    "amount_usd decimal(30,10), merchant_id string, country string"
)


def _events(spark, rows):
    """rows: (event_id, card_id, ts_seconds as str, amount, merchant, country)."""
    data = []
    for event_id, card_id, ts_text, amount, merchant, country in rows:
        ts = Decimal(ts_text)
        ts_us = int(ts * 1_000_000)
        data.append((event_id, card_id, ts, ts_us, None, date(2026, 1, 1), Decimal(amount), merchant, country))
    frame = spark.createDataFrame(data, EVENT_SCHEMA)
    return frame.withColumn("event_ts", frame.ts_us.cast("long")).selectExpr(
        "event_id",
        "card_id",
        "ts",
        "ts_us",
        "timestamp_micros(ts_us) AS event_ts",
        "dt",
        "amount_usd",
        "merchant_id",
        "country",
    )


def _features(spark, rows) -> dict[str, dict]:
    result = gold.card_features(_events(spark, rows), computed_at="2026-01-01 00:00:00")
    return {row.event_id: row.asDict() for row in result.collect()}


def test_window_boundaries_are_inclusive_and_ties_are_peers(spark):
    features = _features(
        spark,
        [
            ("a", "c", str(T0), "10", "m1", "US"),
            ("b", "c", str(T0 + H), "20", "m2", "US"),  # exactly 1 h after a: a is in its 1 h window
            ("c", "c", str(T0 + H) + ".000001", "30", "m2", "FR"),  # 1 h + 1 µs after a: a is out
            ("d", "c", str(T0 + H) + ".000001", "40", "m3", "FR"),  # same-microsecond tie with c
            ("e", "c", str(T0 + 7 * 24 * H + H), "50", "m1", "US"),  # exactly 7 d after b
            ("z", "other", str(T0), "99", "m9", "JP"),  # another card never mixes in
        ],
    )
    assert features["a"]["txn_count_1h"] == 1 and features["a"]["secs_since_prev_txn"] is None
    assert features["b"]["txn_count_1h"] == 2 and features["b"]["secs_since_prev_txn"] == 3600.0
    # c and d are ties: each sees the other, whatever the order; a is 1 µs too old for 1 h.
    for tie in ("c", "d"):
        assert features[tie]["txn_count_1h"] == 3
        assert features[tie]["txn_amount_1h"] == Decimal("90.0000000000")
        assert features[tie]["merchant_count_24h"] == 3 and features[tie]["country_count_24h"] == 2
        assert math.isclose(features[tie]["secs_since_prev_txn"], 0.000001, rel_tol=1e-12)  # b, not the tie
    assert features["d"]["max_amount_24h"] == Decimal("40.0000000000")
    # e: b is exactly 7 d back (inside), a is outside; c and d are 1 µs inside.
    assert features["e"]["txn_count_24h"] == 1
    assert math.isclose(features["e"]["avg_amount_7d"], (20 + 30 + 40 + 50) / 4, rel_tol=1e-15)
    assert math.isclose(features["e"]["amount_to_avg_7d"], 50 / 35, rel_tol=1e-15)
    assert math.isclose(features["e"]["secs_since_prev_txn"], 7 * 24 * 3600 - 0.000001, rel_tol=1e-15)
    assert features["z"]["txn_count_24h"] == 1


def test_gap_longer_than_seven_days_resets_history(spark):
    features = _features(
        spark,
        [("a", "c", str(T0), "10", "m1", "US"), ("b", "c", str(T0 + 7 * 24 * H) + ".000001", "20", "m1", "US")],
    )
    assert features["b"]["secs_since_prev_txn"] is None
    assert features["b"]["avg_amount_7d"] == 20.0 and features["b"]["amount_to_avg_7d"] == 1.0


def test_gold_schema_follows_the_registry():
    names = gold.GOLD_SCHEMA.fieldNames()
    assert names[: len(gold.KEY_COLUMNS)] == list(gold.KEY_COLUMNS)
    assert names[len(gold.KEY_COLUMNS) : -2] == list(CARD_FEATURE_NAMES)  # no merchant feature: a daily snapshot
    assert "merchant_id" in gold.KEY_COLUMNS
    assert names[-2:] == ["feature_set_version", "computed_at"]


def test_daily_recompute_range_grows_with_the_longest_window():
    from spark_jobs.feature_registry import MAX_WINDOW
    from spark_jobs.gold_update import daily_recompute_range

    day_us = 86_400_000_000
    low, high = daily_recompute_range(date(2026, 1, 2))
    assert low == (T0 + 86400) * 1_000_000
    assert high - low == (MAX_WINDOW.days + 1) * day_us == 31 * day_us  # v1's 7-day windows: 8 days


def test_docs_features_tables_are_current():
    from spark_jobs.feature_registry import markdown_table, readme_table

    root = Path(__file__).resolve().parents[1]
    docs = root / "docs" / "features.md"
    assert docs.read_text() == markdown_table(), "docs/features.md is stale: python -m spark_jobs.feature_registry"
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- features:start -->\n", 1)[1].split("<!-- features:end -->", 1)[0]
    assert block == readme_table(), "README.md's feature table is stale: paste feature_registry.readme_table()"


# --- Through the real job ------------------------------------------------------------------------

D = 86400
A = T0 - 25 * D  # 2025-12-07: A + 30 d = T0 + 5 d, inside the generated lake's days
US = Decimal("0.000001")


def _ts(seconds) -> float:
    """A JSON ts with exactly these 6 places (the float's shortest repr is the decimal: checked)."""
    value = float(seconds)
    assert Decimal(repr(value)) == Decimal(seconds), seconds
    return value


# The v2 card and event features' edges (expected values in test_v2_boundary_values).
V2_BOUNDARY_EVENTS = [
    # merchant_seen_30d and the 30-day window: the earlier event exactly 30 d back (in), 30 d + 1 µs (out),
    # 30 d − 1 µs (in); each pair on its own card
    event("seen-in-1", card_id="card-seen-in", ts=A, merchant_id="m-a", amount=10),
    event("seen-in-2", card_id="card-seen-in", ts=A + 30 * D, merchant_id="m-a", amount=20),
    event("seen-out-1", card_id="card-seen-out", ts=A, merchant_id="m-a", amount=10),
    event("seen-out-2", card_id="card-seen-out", ts=_ts(A + 30 * D + US), merchant_id="m-a", amount=20),
    event("seen-near-1", card_id="card-seen-near", ts=A, merchant_id="m-a", amount=10),
    event("seen-near-2", card_id="card-seen-near", ts=_ts(A + 30 * D - US), merchant_id="m-a", amount=20),
    # peers only: two events at one ts, nothing earlier (z-score null, merchant not seen, both counted)
    event("peer-1", card_id="card-peers", ts=T0 + 3 * D, merchant_id="m-p", amount=10),
    event("peer-2", card_id="card-peers", ts=T0 + 3 * D, merchant_id="m-p", amount=30),
    event("peer-3", card_id="card-peers", ts=T0 + 3 * D + 60, merchant_id="m-q", amount=50),
    # the z-score: 0 and 1 earlier events (null), three equal earlier amounts (null), then one different
    event("z-1", card_id="card-z", ts=T0 + D, amount=5),
    event("z-2", card_id="card-z", ts=T0 + D + 60, amount=5),
    event("z-3", card_id="card-z", ts=T0 + D + 120, amount=5),
    event("z-4", card_id="card-z", ts=T0 + D + 180, amount=9),
    event("z-5", card_id="card-z", ts=T0 + D + 240, amount=1),
    # UTC day edges: Thursday 05:59:59.999999 / 06:00, Friday 23:59:59.999999 / Saturday 00:00,
    # Sunday 23:59:59.999999 / Monday 00:00 (2026-01-01 is a Thursday)
    event("day-thu-night", card_id="card-days", ts=_ts(T0 + 6 * 3600 - US)),
    event("day-thu-morning", card_id="card-days", ts=T0 + 6 * 3600),
    event("day-fri-last", card_id="card-days", ts=_ts(T0 + 2 * D - US)),
    event("day-sat-first", card_id="card-days", ts=T0 + 2 * D),
    event("day-sun-last", card_id="card-days", ts=_ts(T0 + 4 * D - US)),
    event("day-mon-first", card_id="card-days", ts=T0 + 4 * D),
]

BOUNDARY_EVENTS = [
    # One card with exact window boundaries, ties and fractional seconds, delivered with the generated data.
    event("bnd-1", card_id="card-boundary", ts=T0 + 2 * 86400, amount=10),
    event("bnd-2", card_id="card-boundary", ts=T0 + 2 * 86400 + 3600, amount=20.25, merchant_id="m-2"),
    event("bnd-3", card_id="card-boundary", ts=T0 + 2 * 86400 + 3600, amount=1, country="FR"),
    event("bnd-4", card_id="card-boundary", ts=T0 + 3 * 86400 + 3600, amount=5.5),
    event("bnd-5", card_id="card-boundary", ts=T0 + 9 * 86400 + 3600, amount=7),
    event("bnd-6", card_id="card-boundary", ts=T0 + 9 * 86400 + 3600.000001, amount=7.0001),
    *V2_BOUNDARY_EVENTS,
]


def _generate(lake: Path, seed: int = 11) -> None:
    generate_lake(
        GeneratorConfig(
            events=3000, cards=40, days=10, seed=seed, lake_root=lake, late_rate=0.1, late_max_hours=72, dup_rate=0.02
        )
    )
    write_bronze(lake, "2026/01/10/02", "boundaries.gz", BOUNDARY_EVENTS)


def run(lake: Path, mode: str, *extra: str) -> dict:
    silver_and_gold.main(["--mode", mode, "--allow-development-token-key", "--lake-root", str(lake), *extra])
    reports = sorted((lake / "_runs").glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
    return json.loads(reports[-1].read_text())


def assert_gold_matches_reference(spark, lake: Path) -> None:
    expected = reference_features(lake / "silver/card_transactions")
    actual = {row.event_id: row.asDict() for row in spark.read.format("delta").load(str(lake / GOLD_TABLE)).collect()}
    assert set(actual) == set(expected)
    mismatches = []
    for event_id, row in actual.items():
        for item in CARD_FEATURES:
            mine, theirs = row[item.name], expected[event_id][item.name]
            if item.dtype in (INTEGER, DECIMAL):
                same = mine == theirs
            else:
                assert item.dtype == DOUBLE
                # the z-score: DuckDB's stddev_pop is another algorithm than the design's E[x²] − mean²,
                # whose error grows with the conditioning (gold_reference.zscore_tolerance)
                zscore = item.name == "amount_zscore_30d"
                same = (mine is None and theirs is None) or (
                    mine is not None
                    and theirs is not None
                    and math.isclose(
                        mine,
                        theirs,
                        rel_tol=0.0 if zscore else 1e-12,
                        abs_tol=zscore_tolerance(expected[event_id]) if zscore else 1e-12,
                    )
                )
            if not same:
                mismatches.append((event_id, item.name, mine, theirs))
    assert mismatches == []


def test_zscore_tolerance_follows_the_conditioning():
    """Earlier amounts 999.99 and 1000.00, then 30.00: the design's E[x²] − mean² (what gold and the request-time
    half compute) is 1.5e-6 relative off DuckDB's stddev_pop, beyond a flat 1e-9, within zscore_tolerance; an
    error of 1e-3 relative is still caught, and a well-conditioned case keeps a tight tolerance."""
    import duckdb
    import pyarrow as pa

    from feature_store.online_state import SILVER, StateEvent
    from feature_store.request_features import compute_features
    from tests.gold_reference import REFERENCE_SQL

    def both(amounts: list[str]) -> tuple[float, dict]:
        ts = [1_767_225_600_000_000 + index * 3_600_000_000 for index in range(len(amounts))]
        silver = pa.table(
            {
                "event_id": [f"e{index}" for index in range(len(amounts))],
                "card_id": ["c"] * len(amounts),
                "ts_us": pa.array(ts, pa.int64()),
                "amount_usd": pa.array([Decimal(value) for value in amounts], pa.decimal128(38, 10)),
                "merchant_id": ["m"] * len(amounts),
                "country": ["US"] * len(amounts),
            }
        )
        connection = duckdb.connect()
        connection.register("silver", silver)
        cursor = connection.execute(REFERENCE_SQL)
        names = [column[0] for column in cursor.description]
        rows = {row["event_id"]: row for row in (dict(zip(names, values, strict=True)) for values in cursor.fetchall())}
        events = [
            StateEvent("c", f"e{index}", ts[index], Decimal(value), "m", "US", SILVER, "f" * 64)
            for index, value in enumerate(amounts)
        ]
        last = f"e{len(amounts) - 1}"
        return compute_features(events, events[-1])["amount_zscore_30d"], rows[last]

    gold_z, row = both(["999.99", "1000.00", "30.00"])
    reference_z = row["amount_zscore_30d"]
    assert not math.isclose(gold_z, reference_z, rel_tol=1e-9)  # the old flat tolerance failed here
    assert abs(gold_z - reference_z) <= zscore_tolerance(row)
    assert abs(gold_z * (1 + 1e-3) - reference_z) > zscore_tolerance(row)
    gold_z, row = both(["10.00", "20.00", "31.50", "50.00"])
    assert abs(gold_z - row["amount_zscore_30d"]) <= zscore_tolerance(row) < 1e-12


@pytest.fixture(scope="module")
def full_lake(spark, tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("gold_full") / "lake"
    _generate(lake)
    run(lake, "full")
    return lake


def test_gold_equals_duckdb_reference(spark, full_lake):
    assert_gold_matches_reference(spark, full_lake)
    frame = spark.read.format("delta").load(str(full_lake / GOLD_TABLE))
    assert frame.count() == spark.read.format("delta").load(str(full_lake / "silver/card_transactions")).count()
    assert frame.select("event_id").distinct().count() == frame.count()


def test_v2_boundary_values(spark, full_lake):
    """The edges by hand (the DuckDB reference agrees with gold on them too: test_gold_equals_duckdb_reference)."""
    rows = {row.event_id: row for row in spark.read.format("delta").load(str(full_lake / GOLD_TABLE)).collect()}
    assert (rows["seen-in-2"].merchant_seen_30d, rows["seen-in-2"].txn_count_30d) == (1, 2)
    assert (rows["seen-out-2"].merchant_seen_30d, rows["seen-out-2"].txn_count_30d) == (0, 1)
    assert (rows["seen-near-2"].merchant_seen_30d, rows["seen-near-2"].txn_count_30d) == (1, 2)
    assert rows["seen-in-2"].avg_amount_30d == pytest.approx(15 * 1.08, rel=1e-12)
    for peer in ("peer-1", "peer-2"):
        row = rows[peer]
        assert (row.txn_count_30d, row.merchant_seen_30d, row.amount_zscore_30d) == (2, 0, None)
    # peer-3: the two peers are its earlier events, amounts 10 and 30 (EUR): mean 20, std 10
    assert rows["peer-3"].amount_zscore_30d == pytest.approx((50 - 20) / 10, rel=1e-12)
    assert rows["peer-3"].merchant_seen_30d == 0
    assert [rows[f"z-{index}"].amount_zscore_30d for index in (1, 2, 3, 4)] == [None, None, None, None]
    earlier = [5, 5, 5, 9]
    mean = sum(earlier) / 4
    std = (sum((value - mean) ** 2 for value in earlier) / 4) ** 0.5
    assert rows["z-5"].amount_zscore_30d == pytest.approx((1 - mean) / std, rel=1e-12)
    assert rows["z-2"].merchant_seen_30d == 1  # same default merchant, 60 s earlier
    expected = {
        "day-thu-night": (5, 0, 1),
        "day-thu-morning": (6, 0, 0),
        "day-fri-last": (23, 0, 0),
        "day-sat-first": (0, 1, 1),
        "day-sun-last": (23, 1, 0),
        "day-mon-first": (0, 0, 1),
    }
    actual = {name: (rows[name].hour_of_day, rows[name].is_weekend, rows[name].is_night) for name in expected}
    assert actual == expected
    assert {row.feature_set_version for row in rows.values()} == {2}
    assert all(row.merchant_id for row in rows.values())


def test_v1_gold_is_migrated_and_a_full_run_recomputes_it(spark, full_lake, tmp_path):
    """A gold table of feature set v1 (no merchant_id, no v2 columns) gains the columns on the next run; its
    rows stay version 1 until `--mode full` recomputes them (docs/runbook.md)."""
    from pyspark.sql import functions as F

    from spark_jobs.feature_registry import V1_FEATURE_NAMES

    lake = tmp_path / "lake"
    shutil.copytree(full_lake, lake)
    path = str(lake / GOLD_TABLE)
    added = ["merchant_id", *(name for name in CARD_FEATURE_NAMES if name not in V1_FEATURE_NAMES)]
    v1 = spark.read.format("delta").load(path).drop(*added).withColumn("feature_set_version", F.lit(1).cast("int"))
    v1 = v1.localCheckpoint()
    v1.write.format("delta").mode("overwrite").option("partitionOverwriteMode", "static").option(
        "overwriteSchema", "true"
    ).partitionBy("dt").save(path)
    rows = v1.count()

    report = run(lake, "stream")  # silver unchanged: only the migration
    assert report["status"] == "succeeded"
    assert any("gold migrated to feature set v2" in note for note in report["gold"][0]["notes"])
    migrated = spark.read.format("delta").load(path)
    assert set(gold.GOLD_SCHEMA.fieldNames()) <= set(migrated.columns)
    assert migrated.where("feature_set_version = 1 AND merchant_id IS NULL AND txn_count_30d IS NULL").count() == rows

    report = run(lake, "full")
    assert report["counts"]["gold_rows_updated"] == rows and report["counts"]["gold_rows_inserted"] == 0
    assert_gold_matches_reference(spark, lake)
    assert spark.read.format("delta").load(path).where("feature_set_version <> 2 OR merchant_id IS NULL").count() == 0


def _arrival_hours(lake: Path) -> list[Path]:
    return sorted((lake / BRONZE).glob("ingest_dt=*/*/*/*"))


def test_stream_batches_with_late_events_equal_full_and_reruns_change_nothing(spark, full_lake, tmp_path):
    staged = tmp_path / "staged"
    _generate(staged)
    lake = tmp_path / "lake"
    hours = _arrival_hours(staged)
    batches = 4
    for index in range(batches):
        for hour in hours[index * len(hours) // batches : (index + 1) * len(hours) // batches]:
            target = lake / hour.relative_to(staged)
            shutil.copytree(hour, target)
        report = run(lake, "stream")
        gold_run = report["gold"][0]
        assert report["status"] == "succeeded"
        if index:
            assert gold_run["mode"] == "incremental" and gold_run["affected_cards"] > 0
            assert report["counts"]["gold_files_scanned"] > 0
    assert_gold_matches_reference(spark, lake)
    drop = ("run_id", "ingested_at", "computed_at", "source_file")
    assert table_rows(spark, lake / GOLD_TABLE, drop=drop) == table_rows(spark, full_lake / GOLD_TABLE, drop=drop)

    # A full recompute over the stream-built gold changes no row; a rerun writes nothing.
    version = table_version(spark, lake / GOLD_TABLE)
    report = run(lake, "full")
    assert (report["counts"]["gold_rows_inserted"], report["counts"]["gold_rows_updated"]) == (0, 0)
    report = run(lake, "stream")
    assert report["gold"][0]["notes"] == ["silver unchanged since the watermark"]
    assert table_version(spark, lake / GOLD_TABLE) - version <= 1  # at most an empty MERGE commit


def test_late_event_crash_before_watermark_and_daily_run(spark, full_lake, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    write_bronze(
        lake,
        "2026/01/08/00",
        "week.gz",
        [event(f"wk-{day}", card_id="card-late", ts=T0 + day * 86400, amount=10 + day) for day in range(1, 8)],
    )
    run(lake, "stream")
    # A late event on day 1 changes the card's features for the six days after it.
    write_bronze(
        lake, "2026/01/08/01", "late.gz", [event("wk-late", card_id="card-late", ts=T0 + 86400 + 60, amount=500)]
    )
    monkeypatch.setenv("LAKEHOUSE_FAIL_AT", "before_gold_watermark")
    with fails_releasing_its_frames(spark):
        run(lake, "stream")
    monkeypatch.delenv("LAKEHOUSE_FAIL_AT")
    # The crash came after the gold MERGE but before the watermark: the rerun re-derives the same rows.
    report = run(lake, "stream")
    gold_run = report["gold"][0]
    assert gold_run["mode"] == "incremental" and gold_run["affected_cards"] == 1
    assert report["counts"]["gold_rows_updated"] == 0  # already merged before the crash
    assert_gold_matches_reference(spark, lake)
    rows = {r.event_id: r for r in spark.read.format("delta").load(str(lake / GOLD_TABLE)).collect()}
    eur = 1.08  # event() amounts are EUR
    assert rows["wk-7"].avg_amount_7d == pytest.approx(
        (sum(10 + day for day in range(1, 8)) + 500) * eur / 8, rel=1e-12
    )
    assert rows["wk-1"].txn_count_1h == 1 and rows["wk-late"].secs_since_prev_txn == 60.0

    # A daily run over correct gold changes no row, and maintains the touched partitions.
    version = table_version(spark, lake / GOLD_TABLE)
    report = run(lake, "daily", "--date", "2026-01-02")
    assert (report["counts"]["gold_rows_inserted"], report["counts"]["gold_rows_updated"]) == (0, 0)
    # wk-1 .. wk-7 and wk-late lie in [D, D + MAX_WINDOW + 1 d) = [D, D + 31 d)
    assert report["gold"][1]["rows_recomputed"] == 8
    assert "2026-01-02" in report["maintenance"]["gold"]["changed_partitions"]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{lake / GOLD_TABLE}`").collect()
    changed = [row for row in history if row.version > version and row.operation in ("MERGE", "WRITE")]
    assert all(int(row.operationMetrics.get("numTargetRowsUpdated", "0")) == 0 for row in changed)
