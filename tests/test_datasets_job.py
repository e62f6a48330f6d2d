"""build_datasets.py on a generated lake: windows at the exact boundaries, labels against the generator's
ground truth, nothing at or after the as-of date read, the inference snapshot, the label quarantine,
the manifest, hash stability across reruns, a lake whose chargebacks all arrive later, and the
too-little-history error.

One gold lake serves this module and tests/test_baseline.py (`datasets_lake`). It is generated, then its
bronze is regrouped into one file per arrival day (every line kept: the silver job's cost on this 2-core
machine is per file), boundary events and extra chargeback files are added, and silver_and_gold.py
builds silver and gold from it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devtools.generator import GeneratorConfig, generate_lake, load_truth
from spark_jobs import build_datasets, exit_codes, silver_and_gold
from spark_jobs.datasets import day_start_us
from spark_jobs.feature_registry import FEATURE_NAMES, FEATURE_SET_VERSION
from tests.lake_helpers import BRONZE, event

AS_OF = date(2026, 1, 31)  # the generated events span 2026-01-01 .. 2026-01-30
A = day_start_us(AS_OF)
S = day_start_us(date(2026, 1, 3))  # A − 7 − 7 − 14 days
V0 = day_start_us(date(2026, 1, 17))  # A − 7 − 7
E = day_start_us(date(2026, 1, 24))  # A − 7
US = 1_000_000
LABELS = "bronze/labels/chargebacks"
CARD = "card-boundary"
FEED_FILE = f"{LABELS}/reported_dt=2026/01/30/extra-chargebacks.jsonl.gz"
UNREAD_FILE = f"{LABELS}/reported_dt=2026/01/31/at-as-of.jsonl.gz"

# Boundary events of one card: (event_id, ts_us); ts is written with exactly 6 decimals.
BOUNDARY_EVENTS = [
    ("bnd-before-train", S - 1),
    ("bnd-train-first", S),
    ("bnd-train-last", V0 - 1),
    ("bnd-validation-first", V0),
    ("bnd-validation-last", E - 1),
    ("bnd-gap-first", E),
    ("bnd-tie-b", A - 1),
    ("bnd-tie-a", A - 1),
    ("bnd-at-as-of", A),
]
EXPECTED_SPLIT = {
    "bnd-train-first": "train",
    "bnd-train-last": "train",
    "bnd-validation-first": "validation",
    "bnd-validation-last": "validation",
}
EXPECTED_LABEL = {"bnd-train-first": 1, "bnd-train-last": 0, "bnd-validation-first": 1, "bnd-validation-last": 0}


def seconds(ts_us: int) -> str:
    return f"{ts_us // US}.{ts_us % US:06d}"


def _regroup_bronze(generated: Path, lake: Path) -> None:
    """One bronze file per arrival day holding every line of that day's files, in order."""
    by_day: dict[Path, list[bytes]] = {}
    for path in sorted((generated / BRONZE).rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            text = gzip.decompress(path.read_bytes())
        except (OSError, EOFError):  # the generator's deliberately corrupt file: keep it as it is
            target = lake / path.relative_to(generated)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            continue
        by_day.setdefault(path.parent.parent, []).append(text if text.endswith(b"\n") else text + b"\n")
    for day, parts in by_day.items():
        target = lake / day.relative_to(generated) / "23" / "day.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(b"".join(parts), mtime=0))


def _write_gz(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def _add_boundary_events_and_chargebacks(lake: Path) -> None:
    lines = []
    for event_id, ts_us in BOUNDARY_EVENTS:
        record = json.dumps(event(event_id, card_id=CARD, ts=0, currency="USD", country="US", amount=25))
        lines.append(record.replace('"ts": 0', f'"ts": {seconds(ts_us)}'))
    _write_gz(lake / BRONZE / "ingest_dt=2026/01/30/23" / "boundaries.gz", "\n".join(lines) + "\n")
    feed = [
        f'{{"event_id": "bnd-validation-first", "reported_at": {A // US - 1}}}',  # 1 s before A: a label
        f'{{"event_id": "bnd-validation-last", "reported_at": {A // US}}}',  # exactly A (misfiled): unused
        f'{{"event_id": "bnd-train-first", "reported_at": {S // US + 2 * 86400}}}',
        f'{{"event_id": "bnd-train-first", "reported_at": {S // US + 86400}}}',  # repeated report
        f'{{"event_id": "bnd-train-last", "reported_at": {seconds(V0 - 1 - US)}}}',  # before its event
        '{"event_id": "no-such-event", "reported_at": 1769000000}',
        "",
        '{"event_id": 5, "reported_at": 1769000000}',
        '{"event_id": "x", "reported_at": 1769000000.1234567}',
        '{"event_id": "x", "reported_at": 1769000000',
    ]
    _write_gz(lake / FEED_FILE, "\n".join(feed) + "\n")
    (lake / LABELS / "reported_dt=2026/01/20" / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08garbage")
    _write_gz(lake / LABELS / "reported_dt=2026/01/20" / ".tmp-in-flight.jsonl.gz", "not json\n")
    # At the as-of date: ingested into the chargeback table (its garbage line quarantined), but its label (reported
    # at exactly A) is never used.
    _write_gz(lake / UNREAD_FILE, '{"event_id": "bnd-gap-first", "reported_at": 1769817600}\n{broken\n')


def build_lake(root: Path) -> Path:
    generated, lake = root / "generated", root / "lake"
    generate_lake(
        GeneratorConfig(
            events=12000, cards=400, days=30, seed=21, fraud_rate=0.03, files_per_hour=1, lake_root=generated
        )
    )
    _regroup_bronze(generated, lake)
    shutil.copytree(generated / LABELS, lake / LABELS)
    shutil.copytree(generated / "_generator", lake / "_generator")
    _add_boundary_events_and_chargebacks(lake)
    silver_and_gold.main(["--mode", "full", "--allow-development-token-key", "--lake-root", str(lake)])
    return lake


_BUILT: dict[str, Path] = {}


def datasets_lake(tmp_path_factory) -> Path:
    """The gold lake with datasets built for AS_OF, built once per test session (shared with
    tests/test_baseline.py)."""
    if "lake" not in _BUILT:
        lake = build_lake(tmp_path_factory.mktemp("datasets"))
        assert run_job(lake) == 0
        _BUILT["lake"] = lake
    return _BUILT["lake"]


def run_job(lake: Path, *extra: str) -> int:
    return build_datasets.main(["--as-of", AS_OF.isoformat(), "--lake-root", str(lake), *extra])


def read_manifest(lake: Path) -> dict:
    return json.loads((lake / f"gold/training/as_of={AS_OF}/manifest.json").read_text())


def read_split(lake: Path, relative: str) -> list[dict]:
    table = pq.read_table(lake / relative)
    return sorted(table.to_pylist(), key=lambda row: (row["ts_us"], row["event_id"]))


def latest_report(lake: Path) -> dict:
    reports = sorted((lake / "_runs").glob("datasets-*.json"), key=lambda path: path.stat().st_mtime_ns)
    return json.loads(reports[-1].read_text())


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return datasets_lake(tmp_path_factory)


@pytest.fixture(scope="module")
def splits(lake) -> dict[str, list[dict]]:
    manifest = read_manifest(lake)
    return {name: read_split(lake, entry["path"]) for name, entry in manifest["splits"].items()}


def test_manifest_states_windows_counts_features_sources_and_hash(lake, splits):
    manifest = read_manifest(lake)
    assert manifest["as_of"] == "2026-01-31" and manifest["label_cutoff"] == "2026-01-31T00:00:00+00:00"
    assert manifest["parameters"] == {"train_days": 14, "validation_days": 7, "label_delay_days": 7}
    assert manifest["windows"]["train"] == {
        "start": "2026-01-03T00:00:00+00:00",
        "end": "2026-01-17T00:00:00+00:00",
        "days": 14,
    }
    assert manifest["windows"]["validation"]["start"] == "2026-01-17T00:00:00+00:00"
    assert manifest["windows"]["label_maturity_gap"]["start"] == "2026-01-24T00:00:00+00:00"
    assert manifest["features"] == list(FEATURE_NAMES) and manifest["feature_set_version"] == FEATURE_SET_VERSION
    assert manifest["splits"]["train"]["path"] == "gold/training/as_of=2026-01-31/train"
    assert manifest["splits"]["inference"]["path"] == "gold/inference/as_of=2026-01-31"
    for name in ("train", "validation"):
        entry, rows = manifest["splits"][name], splits[name]
        assert entry["rows"] == len(rows) > 500 and entry["frauds"] == sum(row["label"] for row in rows) > 20
        assert entry["fraud_rate"] == round(entry["frauds"] / entry["rows"], 6)
        assert list(rows[0]) == [column["name"] for column in manifest["columns"]["train_and_validation"]]
    assert list(splits["inference"][0]) == [column["name"] for column in manifest["columns"]["inference"]]
    assert manifest["sources"]["gold"]["delta_version"] >= 0 and manifest["sources"]["silver"]["first_date"] == (
        "2026-01-01"
    )
    assert manifest["sources"]["silver"]["last_date_before_as_of"] == "2026-01-30"
    assert len(manifest["content_hash"]) == 64
    report = latest_report(lake)
    assert report["status"] == "succeeded" and report["counts"]["train_rows"] == manifest["splits"]["train"]["rows"]


def test_merchant_columns_are_the_snapshot_of_the_events_day_as_the_duckdb_reference_computes_it(lake, splits):
    """Every row's merchant features (gold/merchant_features joined on (merchant_id, dt)) equal the independent
    reference over silver and silver/chargebacks; the manifest pins the snapshot's version."""
    from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES
    from spark_jobs.lake import CHARGEBACKS_TABLE, MERCHANT_FEATURES_TABLE, SILVER_TABLE
    from tests.gold_reference import reference_merchant_features

    source = read_manifest(lake)["sources"]["merchant_features"]
    assert source["table"] == MERCHANT_FEATURES_TABLE and source["delta_version"] >= 0
    reference = reference_merchant_features(lake / SILVER_TABLE, lake / CHARGEBACKS_TABLE)
    rows = [row for name in ("train", "validation", "inference") for row in splits[name]]
    for row in rows:
        assert {name: row[name] for name in MERCHANT_FEATURE_NAMES} == reference[row["event_id"]], row["event_id"]
    # the lake exercises every case: rates above 0, rates of 0, no matured events (null), counts of 0
    rates = [row["merchant_cb_rate_30d"] for row in rows]
    assert any(rate for rate in rates) and 0.0 in rates and None in rates
    assert any(row["merchant_txn_count_1d"] == 0 for row in rows)


def test_train_is_before_validation_disjoint_and_nothing_is_at_or_after_as_of(splits):
    train, validation, inference = splits["train"], splits["validation"], splits["inference"]
    assert train[0]["ts_us"] >= S and train[-1]["ts_us"] < V0 <= validation[0]["ts_us"] and validation[-1]["ts_us"] < E
    assert not {row["event_id"] for row in train} & {row["event_id"] for row in validation}
    assert max(row["ts_us"] for row in inference) < A
    assert all(row["ts"] == Decimal(row["ts_us"]).scaleb(-6) for row in train[:50])


def test_boundary_events_land_in_the_right_split_with_the_right_label(splits):
    placed = {
        row["event_id"]: (name, row["label"])
        for name in ("train", "validation")
        for row in splits[name]
        if row["card_id"] == CARD
    }
    assert placed == {event_id: (EXPECTED_SPLIT[event_id], EXPECTED_LABEL[event_id]) for event_id in EXPECTED_SPLIT}
    [snapshot] = [row for row in splits["inference"] if row["card_id"] == CARD]
    assert snapshot["event_id"] == "bnd-tie-b"  # ties on ts: the greater event_id; bnd-at-as-of is not read


def test_labels_are_the_ground_truth_of_chargebacks_reported_before_as_of(lake, splits):
    fraud = {row["event_id"]: row for row in load_truth(lake, "fraud_events")}
    mismatches = []
    for name in ("train", "validation"):
        for row in splits[name]:
            if row["card_id"] == CARD:
                continue
            truth = fraud.get(row["event_id"])
            expected = int(truth is not None and truth["reported_at"] is not None and truth["reported_at"] * US < A)
            if row["label"] != expected:
                mismatches.append((name, row["event_id"], row["label"], truth))
    assert mismatches == []
    # Reported frauds of the validation window whose chargeback came at or after A stay 0: label delay.
    late = [
        row
        for row in splits["validation"]
        if row["event_id"] in fraud and (fraud[row["event_id"]]["reported_at"] or 0) * US >= A
    ]
    assert late and {row["label"] for row in late} == {0}


def test_inference_is_every_cards_latest_gold_row_before_as_of(spark, lake, splits):
    gold = spark.read.format("delta").load(str(lake / "gold/card_features")).select("card_id", "event_id", "ts_us")
    latest: dict[str, tuple] = {}
    for row in gold.collect():
        if row.ts_us < A:
            latest[row.card_id] = max(latest.get(row.card_id, (0, "")), (row.ts_us, row.event_id))
    assert {row["card_id"]: (row["ts_us"], row["event_id"]) for row in splits["inference"]} == latest


def test_label_quarantine_and_label_counts(spark, lake):
    quarantine = spark.read.format("delta").load(str(lake / "silver/label_quarantine")).collect()
    by_reason: dict[str, int] = {}
    for row in quarantine:
        by_reason[row.reason] = by_reason.get(row.reason, 0) + 1
    extra = [row for row in quarantine if row.source_file.endswith(FEED_FILE)]
    assert sorted((row.line_number, row.reason) for row in extra) == [
        (5, "reported_before_event"),
        (8, "bad_type"),
        (9, "out_of_range"),
        (10, "malformed_json"),
    ]
    assert all(row.reported_date == date(2026, 1, 30) for row in extra)
    assert [row.reason for row in quarantine if row.source_file.endswith("broken.jsonl.gz")] == ["unreadable_file"]
    # the feed is ingested whole: the garbage line in the folder of day A is quarantined by the ingestion
    assert [(row.line_number, row.reason) for row in quarantine if row.source_file.endswith(UNREAD_FILE)] == [
        (2, "malformed_json")
    ]
    assert not [row for row in quarantine if ".tmp-" in row.source_file]
    # every invalid record the generator wrote is there with its reason (reported_before_event: all of them
    # are reports before A of events before A)
    root = f"file://{lake.resolve()}/"
    found = {(row.source_file.removeprefix(root), row.line_number): row.reason for row in quarantine}
    generated = [row for row in load_truth(lake, "label_records") if row["class"] == "invalid"]
    assert generated and {found[(row["file"], row["line"])] for row in generated} == {
        row["reason"] for row in generated
    }
    assert all(found[(row["file"], row["line"])] == row["reason"] for row in generated)

    labels = read_manifest(lake)["labels"]
    assert labels["quarantined"] == len(quarantine)
    assert labels["quarantined_by_reason"] == {
        reason: by_reason.get(reason, 0) for reason in labels["quarantined_by_reason"]
    }
    # the table's valid records reported at or after A (the misfiled one at exactly A, the one in day A's folder
    # and the generator's late reports), counted from the feed files by the contract in pure Python
    feed = feed_records(lake)
    assert labels["reported_at_or_after_as_of"] == sum(reported >= A for _event_id, reported in feed.values()) > 2
    assert (
        labels["valid_records"] == len(feed) and labels["reported_before_event"] == by_reason["reported_before_event"]
    )
    assert labels["unknown_event_ids"] >= 1 and labels["repeated_reports"] >= 1
    source = read_manifest(lake)["sources"]["chargebacks"]
    assert source["table"] == "silver/chargebacks" and source["delta_version"] >= 0
    assert source["rows"] == len(feed) and source["rows_reported_before_as_of"] == sum(
        reported < A for _event_id, reported in feed.values()
    )
    table = spark.read.format("delta").load(str(lake / "silver/chargebacks"))
    assert table.where("source_file LIKE '%.tmp-%'").count() == 0


def feed_records(lake: Path) -> dict[tuple[str, int], tuple[str, int]]:
    """Every valid record of the feed files, by the contract in pure Python (labels.parse_chargeback_file, the
    path the datasets job read before the chargeback table existed): {(file, line): (event_id, reported_at_us)}."""
    from spark_jobs.bronze_ledger import is_ignored_name
    from spark_jobs.labels import parse_chargeback_file

    records = {}
    prefix = lake / LABELS
    for path in sorted(prefix.rglob("*")):
        if path.is_file() and not is_ignored_name(str(path), str(prefix)):
            for line_number, event_id, reported_at_us, _raw in parse_chargeback_file(path.read_bytes()).accepted:
                records[(str(path.relative_to(lake)), line_number)] = (event_id, reported_at_us)
    return records


def test_labels_from_the_chargeback_table_equal_the_labels_of_the_feed_read_directly(spark, lake, splits):
    """The old path: the feed's valid records in the report-day folders from the day before the training window
    to the day before A, reported before A and not before their silver event, label their events."""
    events = {
        row.event_id: row.ts_us
        for row in spark.read.format("delta").load(str(lake / "silver/card_transactions")).collect()
        if row.ts_us < A
    }
    old_labels = {
        event_id
        for (file, _line), (event_id, reported) in feed_records(lake).items()
        if "2026/01/02" <= re.search(r"reported_dt=([\d/]{10})", file)[1] < "2026/01/31"
        and reported < A
        and event_id in events
        and reported >= events[event_id]
    }
    for name in ("train", "validation"):
        rows = splits[name]
        assert {row["event_id"] for row in rows if row["label"]} == {row["event_id"] for row in rows} & old_labels
    assert old_labels


def test_content_hash_recomputed_independently_from_the_parquet_files(lake):
    """The documented rule, written out again here from pyarrow's rows."""
    manifest = read_manifest(lake)
    total = hashlib.sha256()
    for name in ("train", "validation", "inference"):
        split = hashlib.sha256()
        for row in read_split(lake, manifest["splits"][name]["path"]):
            line = json.dumps(
                {key: str(value) if isinstance(value, Decimal) else value for key, value in row.items()},
                sort_keys=True,
                separators=(",", ":"),
            )
            split.update(line.encode() + b"\n")
            total.update(line.encode() + b"\n")
        assert split.hexdigest() == manifest["splits"][name]["sha256"]
    assert total.hexdigest() == manifest["content_hash"]


def _parquet_bytes(lake: Path) -> list[bytes]:
    training = lake / f"gold/training/as_of={AS_OF}"
    folders = [training / "train", training / "validation", lake / f"gold/inference/as_of={AS_OF}"]
    return sorted(path.read_bytes() for folder in folders for path in folder.glob("*.parquet"))


def test_rerun_replaces_the_datasets_with_the_same_content_and_hash(spark, lake):
    before, files_before = read_manifest(lake), _parquet_bytes(lake)
    quarantine_rows = spark.read.format("delta").load(str(lake / "silver/label_quarantine")).count()
    assert run_job(lake) == 0
    after = read_manifest(lake)
    assert after["content_hash"] == before["content_hash"] and after["run_id"] != before["run_id"]
    assert after["splits"] == before["splits"]
    assert _parquet_bytes(lake) == files_before
    assert spark.read.format("delta").load(str(lake / "silver/label_quarantine")).count() == quarantine_rows


def test_too_little_history_names_the_first_and_last_dates(lake, capsys):
    assert build_datasets.main(["--as-of", "2026-01-20", "--lake-root", str(lake)]) == exit_codes.PRECONDITION_FAILED
    error = capsys.readouterr().err
    assert "too little history" in error and "2025-12-23" in error
    assert "2026-01-01 to 2026-01-19" in error and "--as-of 2026-01-29 or later" in error
    report = latest_report(lake)
    assert report["status"] == "failed" and "too little history" in report["error"]
    assert not (lake / "gold/training/as_of=2026-01-20").exists()


def test_a_scheduled_run_on_too_little_history_is_skipped_with_a_metric(lake, capsys):
    """The daily schedule on a young lake: exit 0, report `skipped` with the reason, DatasetsSkipped=1."""
    arguments = [
        "--scheduled-time",
        "2026-01-20T01:30:00Z",
        "--lake-root",
        str(lake),
        "--run-id",
        "exec-1.BuildDatasets.0.0",
    ]
    assert build_datasets.main(arguments) == exit_codes.OK
    out, err = capsys.readouterr()
    report = json.loads((lake / "_runs" / "exec-1.BuildDatasets.0.0.json").read_text())
    assert report["status"] == "skipped" and report["failed_step"] is None
    assert report["reason"].startswith("too little history") and "2025-12-23" in report["reason"]
    metrics = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert [(metric["Stage"], metric["DatasetsSkipped"]) for metric in metrics] == [("datasets", 1)]
    assert "skipped: too little history" in err
    assert not (lake / "gold/training/as_of=2026-01-20").exists()


def test_a_lake_whose_chargebacks_all_arrive_after_as_of_has_all_zero_labels(spark, lake, tmp_path):
    """Same silver and gold; every fraud reported on or after A: in folders at A or misfiled in an earlier
    folder, all ingested into the chargeback table and none used."""
    from spark_jobs.chargebacks import ingest_chargebacks
    from spark_jobs.run_report import RunReport
    from spark_jobs.storage import open_lake

    copy = tmp_path / "late_lake"
    for table in ("silver/card_transactions", "gold/card_features", "gold/merchant_features"):
        if (lake / table).exists():  # the merchant snapshot since feature set v2
            shutil.copytree(lake / table, copy / table)
    reports = [
        f'{{"event_id": "{row["event_id"]}", "reported_at": {A // US + index}}}'
        for index, row in enumerate(load_truth(lake, "fraud_events"))
    ]
    _write_gz(copy / LABELS / "reported_dt=2026/01/31/cb.jsonl.gz", "\n".join(reports) + "\n")
    _write_gz(copy / LABELS / "reported_dt=2026/01/25/misfiled.jsonl.gz", "\n".join(reports[:25]) + "\n")
    assert (
        build_datasets.main(["--as-of", AS_OF.isoformat(), "--lake-root", str(copy)]) == exit_codes.PRECONDITION_FAILED
    )
    storage = open_lake(str(copy))
    report = RunReport(storage=storage, job="silver_and_gold", mode="stream")
    ingest_chargebacks(spark, storage, report, ingested_at=report.started_at)
    assert report.counts["chargebacks_ingested"] == len(reports) + 25
    assert run_job(copy) == 0
    manifest = json.loads((copy / f"gold/training/as_of={AS_OF}/manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] > 0 and manifest["splits"]["validation"]["rows"] > 0
    assert manifest["splits"]["train"]["frauds"] == manifest["splits"]["validation"]["frauds"] == 0
    assert manifest["labels"]["reported_at_or_after_as_of"] == len(reports) + 25
    assert manifest["labels"]["chargebacks_used"] == 0
    for name in ("train", "validation"):
        assert {row["label"] for row in read_split(copy, manifest["splits"][name]["path"])} == {0}


def test_scheduled_time_sets_as_of_to_its_utc_date(capsys):
    args = build_datasets.parse_args(["--scheduled-time", "2026-02-01T00:05:00Z", "--lake-root", "x"])
    assert args.as_of == date(2026, 2, 1) and args.scheduled_time == datetime(2026, 2, 1, 0, 5, tzinfo=UTC)
    assert build_datasets.parse_args(["--scheduled-time", "2026-01-31T23:30:00-02:00"]).as_of == date(2026, 2, 1)
    for bad in (["--as-of", "2026-02-01", "--scheduled-time", "2026-02-01T00:00:00Z"], [], ["--as-of", "x"]):
        with pytest.raises(SystemExit):
            build_datasets.parse_args(bad)
    with pytest.raises(SystemExit):
        build_datasets.parse_args(["--as-of", "2026-02-01", "--train-days", "0"])
    capsys.readouterr()
