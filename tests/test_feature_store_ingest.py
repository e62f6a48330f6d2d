"""Ingestion from gold on a small generated lake (local backend): the online store equals each card's newest
gold row, also after a late event changes that row, and each merchant's newest snapshot day of
gold/merchant_features, also after a snapshot changes and a new day arrives; dead letters, the exit code, the
metric and the replay; the executor path of the sagemaker backend."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.generator import GeneratorConfig, generate_lake
from feature_store import get_features, ingest_features, ingestion, register_feature_groups
from feature_store.backends.local import LocalBackend
from feature_store.batch_writer import WriterOptions
from feature_store.definitions import feature_group_name, merchant_feature_group_name
from feature_store.get_features import OnlineFeatures
from feature_store.merchant_lookup import PUBLISHED_MARKER_ID, MerchantSnapshots, parse_merchant_record
from feature_store.records import event_time_text, record_value
from scripts import replay_dead_letters
from spark_jobs import silver_and_gold
from spark_jobs.feature_registry import (
    CARD_FEATURE_NAMES,
    CARD_FEATURES,
    DECIMAL,
    DOUBLE,
    INTEGER,
    MERCHANT_FEATURE_NAMES,
)
from spark_jobs.lake import FEATURE_STORE_DEAD_LETTERS, FEATURE_STORE_WATERMARK, GOLD_TABLE, MERCHANT_FEATURES_TABLE
from tests.lake_helpers import BRONZE, event, table_version, write_bronze

GROUP = feature_group_name()
MERCHANT_GROUP = merchant_feature_group_name()
OFFLINE_TABLE = f"feature_store/offline/{GROUP}"
MERCHANT_OFFLINE_TABLE = f"feature_store/offline/{MERCHANT_GROUP}"


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feature_store") / "lake"
    generate_lake(GeneratorConfig(events=3000, cards=40, days=10, seed=23, lake_root=root, late_rate=0.05))
    silver_and_gold.main(["--mode", "full", "--allow-development-token-key", "--lake-root", str(root)])
    ensure_merchant_snapshot(spark, root)
    assert register_feature_groups.main(["--lake-root", str(root)]) == 0
    return root


def ensure_merchant_snapshot(spark, root: Path) -> None:
    """gold/merchant_features as the pipeline writes it (spark_jobs/merchant_features.py); when this checkout's
    run did not build it, a stand-in with its schema and Change Data Feed: one row per (merchant, day of its
    gold rows), values made up (ingestion copies them, whatever they are)."""
    path = root / MERCHANT_FEATURES_TABLE
    if (path / "_delta_log").exists():
        return
    counts, rates = MERCHANT_FEATURE_NAMES[:3], MERCHANT_FEATURE_NAMES[3:]
    spark.sql(
        f"CREATE TABLE delta.`{path}` (merchant_id string NOT NULL, day date NOT NULL, snapshot_start_us bigint NOT "
        f"NULL, {', '.join(f'{name} bigint' for name in counts)}, {', '.join(f'{name} double' for name in rates)}, "
        "feature_set_version int, computed_at timestamp) USING delta "
        "TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')"
    )
    spark.sql(
        f"INSERT INTO delta.`{path}` SELECT merchant_id, dt, unix_micros(to_timestamp(dt)), count(*), count(*) * 2, "
        "count(*) * 3, CASE WHEN count(*) > 1 THEN 1.0 / count(*) END, 0.25, NULL, 2, current_timestamp() "
        f"FROM delta.`{root / GOLD_TABLE}` GROUP BY merchant_id, dt"
    )


def newest_merchant_rows(spark, lake: Path) -> dict[str, dict]:
    """merchant_id -> its newest snapshot row (greatest day), computed here independently."""
    newest: dict[str, dict] = {}
    for row in spark.read.format("delta").load(str(lake / MERCHANT_FEATURES_TABLE)).collect():
        if row.merchant_id not in newest or row.day > newest[row.merchant_id]["day"]:
            newest[row.merchant_id] = row.asDict()
    return newest


def assert_merchant_online_equals_newest_snapshot(spark, lake: Path) -> dict[str, dict]:
    newest = newest_merchant_rows(spark, lake)
    assert newest, "no merchant snapshot rows"
    snapshots = MerchantSnapshots.local(lake)
    try:
        mismatches = []
        for merchant_id, row in newest.items():
            record = snapshots.record(merchant_id)
            if record is None:
                mismatches.append((merchant_id, "no online record"))
                continue
            day, features = parse_merchant_record(record)
            if day != row["day"] or features != {name: row[name] for name in MERCHANT_FEATURE_NAMES}:
                mismatches.append((merchant_id, row["day"], day, features))
    finally:
        snapshots.close()
    assert mismatches == []
    return newest


def ingest(lake: Path, *extra: str) -> tuple[int, dict]:
    code = ingest_features.main(["--lake-root", str(lake), *extra])
    return code, latest_report(lake, "ingest_features")


def latest_report(lake: Path, job: str) -> dict:
    reports = [json.loads(path.read_text()) for path in (lake / "_runs").glob("*.json")]
    return max((item for item in reports if item["job"] == job), key=lambda item: item["started_at"])


def newest_gold_rows(spark, lake: Path) -> dict[str, dict]:
    """card_id -> its newest gold row (greatest (ts_us, event_id)), computed here independently."""
    newest: dict[str, dict] = {}
    for row in spark.read.format("delta").load(str(lake / GOLD_TABLE)).collect():
        current = newest.get(row.card_id)
        if current is None or (row.ts_us, row.event_id) > (current["ts_us"], current["event_id"]):
            newest[row.card_id] = row.asDict()
    return newest


def same_value(dtype: str, gold_value, online_value) -> bool:
    if gold_value is None or online_value is None:
        return gold_value is None and online_value is None
    if dtype == INTEGER:
        return online_value == gold_value
    if dtype == DECIMAL:
        return online_value == float(Decimal(gold_value))
    assert dtype == DOUBLE
    return online_value == gold_value  # shortest round-trip text: exact


def assert_online_equals_newest_gold(spark, lake: Path) -> dict[str, dict]:
    newest = newest_gold_rows(spark, lake)
    with OnlineFeatures.local(str(lake)) as reader:
        online = reader.get_many(sorted(newest))
    assert set(online) == set(newest)
    mismatches = []
    for card_id, row in newest.items():
        found = online[card_id]
        if found["event_time"] != event_time_text(row["ts_us"]):
            mismatches.append((card_id, "event_time", row["ts_us"], found["event_time"]))
        for item in CARD_FEATURES:
            if not same_value(item.dtype, row[item.name], found["features"][item.name]):
                mismatches.append((card_id, item.name, row[item.name], found["features"][item.name]))
    assert mismatches == []
    return newest


def offline_count(spark, lake: Path) -> int:
    return spark.read.format("delta").load(str(lake / OFFLINE_TABLE)).count()


def _last_arrival_hour(lake: Path) -> str:
    folders = sorted((lake / BRONZE).glob("ingest_dt=*/*/*/*"))
    year, month, day, hour = folders[-1].relative_to(lake / BRONZE).parts
    return f"{year.split('=')[1]}/{month}/{day}/{hour}"


def _ts_text(ts_us: int) -> str:
    return str(Decimal(ts_us).scaleb(-6))


def test_online_store_follows_gold_through_a_late_event(spark, lake, capsys):
    code, report = ingest(lake)
    details = report["feature_store"]
    assert (code, report["status"], details["mode"]) == (0, "succeeded", "initial")
    assert report["online_state"]["mode"] == "resync"  # the state synced after the feature writes
    assert report["counts"]["online_state_upserted"] == report["online_state"]["upserted"] > 0
    gold_count = spark.read.format("delta").load(str(lake / GOLD_TABLE)).count()
    assert details["writes"]["records"] == gold_count == offline_count(spark, lake)
    newest = assert_online_equals_newest_gold(spark, lake)
    assert details["writes"]["online_records"] == len(newest) == 40
    assert set(details["writes"]["entries_per_call"]) <= {str(size) for size in range(1, 26)}
    watermark = json.loads((lake / FEATURE_STORE_WATERMARK).read_text())
    assert watermark["groups"][GROUP]["version"] == table_version(spark, lake / GOLD_TABLE)
    _check_the_initial_merchant_ingest(spark, lake, report, gold_count, watermark)

    code, report = ingest(lake)  # nothing changed in gold: nothing written
    assert (code, report["feature_store"]["mode"], report["counts"]["records"]) == (0, "unchanged", 0)

    # get_features: JSON with numbers as numbers; an unknown card is "not found" with exit code 1.
    card = sorted(newest)[0]
    capsys.readouterr()
    assert get_features.main(["--card-id", card, "--lake-root", str(lake)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["card_id"] == card and printed["event_time"] == event_time_text(newest[card]["ts_us"])
    assert isinstance(printed["features"]["txn_count_24h"], int)
    assert isinstance(printed["features"]["avg_amount_7d"], float)
    assert get_features.main(["--card-id", "no-such-card", "--lake-root", str(lake)]) == 1
    assert "not found" in capsys.readouterr().err
    _check_get_features_of_a_merchant(spark, lake, capsys)

    # Late events: one 10 s before card A's newest event (the newest row changes, same event time), and one
    # tying card B's newest event to the microsecond with a greater event_id (a new newest row whose event
    # time equals the stored one). Neither could reach the online store by a plain write.
    card_a, card_b = sorted(newest)[1], sorted(newest)[2]
    row_a, row_b = newest[card_a], newest[card_b]
    lines = [
        json.dumps(event("late-a", card_id=card_a, ts=0, amount=12.5)).replace(
            '"ts": 0', f'"ts": {_ts_text(row_a["ts_us"] - 10_000_000)}'
        ),
        json.dumps(event(row_b["event_id"] + "~tie", card_id=card_b, ts=0, amount=3)).replace(
            '"ts": 0', f'"ts": {_ts_text(row_b["ts_us"])}'
        ),
    ]
    write_bronze(lake, _last_arrival_hour(lake), "late-events.gz", lines)
    silver_and_gold.main(["--mode", "stream", "--allow-development-token-key", "--lake-root", str(lake)])
    before = offline_count(spark, lake)
    code, report = ingest(lake)
    details = report["feature_store"]
    assert (code, details["mode"]) == (0, "incremental")
    assert (report["online_state"]["mode"], report["online_state"]["upserted"]) == ("incremental", 2)
    assert details["writes"]["online_corrections"] == 2
    assert offline_count(spark, lake) == before + details["writes"]["records"]
    assert_merchant_online_equals_newest_snapshot(spark, lake)
    corrected = assert_online_equals_newest_gold(spark, lake)
    assert corrected[card_a]["event_id"] == row_a["event_id"]  # same newest row, same event time ...
    assert corrected[card_a]["txn_count_1h"] == row_a["txn_count_1h"] + 1  # ... corrected features
    assert corrected[card_b]["event_id"] == row_b["event_id"] + "~tie"
    with OnlineFeatures.local(str(lake)) as reader:
        assert reader.get(card_a)["features"]["txn_count_1h"] == row_a["txn_count_1h"] + 1
        assert reader.get(card_b)["event_time"] == event_time_text(row_b["ts_us"])
    _compare_with_inference_snapshot(spark, lake, corrected)


def _check_get_features_of_a_merchant(spark, lake: Path, capsys) -> None:
    """--merchant-id: the merchant's newest online snapshot (its gold/merchant_features row) and the published day;
    an unknown merchant is "not found" with exit code 1, the marker's identifier a usage error (2)."""
    merchants = newest_merchant_rows(spark, lake)
    merchant_id = sorted(merchants)[0]
    capsys.readouterr()
    assert get_features.main(["--merchant-id", merchant_id, "--lake-root", str(lake)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["merchant_id"], printed["snapshot_day"]) == (merchant_id, merchants[merchant_id]["day"].isoformat())
    assert printed["published_day"] == newest_snapshot_day(spark, lake).isoformat()
    assert printed["features"] == {name: merchants[merchant_id][name] for name in MERCHANT_FEATURE_NAMES}
    assert get_features.main(["--merchant-id", "no-such-merchant", "--lake-root", str(lake)]) == 1
    assert "merchant 'no-such-merchant' not found" in capsys.readouterr().err
    # the published-day marker's identifier is not a merchant: a clear usage error, not its record or a traceback
    assert get_features.main(["--merchant-id", PUBLISHED_MARKER_ID, "--lake-root", str(lake)]) == 2
    assert "published-day marker" in capsys.readouterr().err


def _check_the_initial_merchant_ingest(spark, lake: Path, report: dict, gold_count: int, watermark: dict) -> None:
    """The merchant group, from gold/merchant_features: every snapshot row offline, each merchant's newest day
    online, its own watermark entry."""
    merchant = report["feature_store"]["merchant"]
    assert (merchant["feature_group"], merchant["mode"]) == (MERCHANT_GROUP, "initial")
    snapshot_rows = spark.read.format("delta").load(str(lake / MERCHANT_FEATURES_TABLE)).count()
    merchants = assert_merchant_online_equals_newest_snapshot(spark, lake)
    assert merchant["writes"]["records"] == report["counts"]["merchant_records"] == snapshot_rows
    assert merchant["writes"]["online_records"] == len(merchants)
    assert report["counts"]["records"] == gold_count + snapshot_rows
    assert spark.read.format("delta").load(str(lake / MERCHANT_OFFLINE_TABLE)).count() == snapshot_rows
    assert watermark["groups"][MERCHANT_GROUP]["version"] == table_version(spark, lake / MERCHANT_FEATURES_TABLE)
    # the published-day marker: online only (never in the offline store, so never in training), day = the newest
    newest_day = newest_snapshot_day(spark, lake)
    assert merchant["published_day"] == newest_day.isoformat()
    assert published_day_online(lake) == newest_day
    offline = spark.read.format("delta").load(str(lake / MERCHANT_OFFLINE_TABLE))
    assert offline.where(offline.merchant_id == PUBLISHED_MARKER_ID).count() == 0


def newest_snapshot_day(spark, lake: Path) -> date:
    return max(row.day for row in spark.read.format("delta").load(str(lake / MERCHANT_FEATURES_TABLE)).collect())


def published_day_online(lake: Path) -> date | None:
    """P as serving reads it (the marker, with any merchant's lookup)."""
    snapshots = MerchantSnapshots.local(lake)
    try:
        return snapshots.records("any-merchant")[1]
    finally:
        snapshots.close()


def _compare_with_inference_snapshot(spark, lake: Path, newest: dict[str, dict]) -> None:
    """The datasets issue's inference snapshot taken the day after the last event holds each card's newest
    gold row: it must agree with the online store (skipped until spark_jobs/build_datasets.py exists)."""
    try:
        from spark_jobs import build_datasets
    except ImportError:
        return
    as_of = date.fromordinal(max(row["dt"] for row in newest.values()).toordinal() + 1).isoformat()
    windows = ["--train-days", "1", "--validation-days", "1", "--label-delay-days", "0"]  # a 10-day lake
    assert build_datasets.main(["--lake-root", str(lake), "--as-of", as_of, *windows]) == 0
    snapshot = {
        row.card_id: row.asDict() for row in spark.read.parquet(str(lake / f"gold/inference/as_of={as_of}")).collect()
    }
    assert set(snapshot) == set(newest)
    with OnlineFeatures.local(str(lake)) as reader:
        online = reader.get_many(sorted(snapshot))
    for card_id, row in snapshot.items():
        assert row["event_id"] == newest[card_id]["event_id"]
        assert online[card_id]["event_time"] == event_time_text(row["ts_us"])
        for item in CARD_FEATURES:
            assert same_value(item.dtype, row[item.name], online[card_id]["features"][item.name]), (card_id, item.name)


def test_dead_letters_fail_the_run_move_the_watermark_and_replay(spark, lake, monkeypatch, capsys):
    if not (lake / FEATURE_STORE_WATERMARK).exists():
        assert ingest(lake)[0] == 0
    newest = newest_gold_rows(spark, lake)
    victim = sorted(newest)[3]
    backend = LocalBackend(str(lake / "feature_store/online.db"), "file://" + str(lake))
    # The victim's online record goes away, and every write of the victim's rows is rejected.
    backend.runtime.delete_record(
        FeatureGroupName=GROUP,
        RecordIdentifierValueAsString=victim,
        EventTime=event_time_text(newest[victim]["ts_us"] + 1000),
        TargetStores=["OnlineStore"],
        DeletionMode="HardDelete",
    )
    write = backend.runtime.batch_write_record

    def rejecting(*, Entries, TtlDuration=None):  # noqa: N803
        rejected = [entry for entry in Entries if record_value(entry["Record"], "card_id") == victim]
        accepted = [entry for entry in Entries if entry not in rejected]
        response = write(Entries=accepted) if accepted else {"Errors": [], "UnprocessedEntries": []}
        response["Errors"] += [
            {"Entry": entry, "ErrorCode": "ValidationError", "ErrorMessage": "rejected by the test"}
            for entry in rejected
        ]
        return response

    backend.runtime.batch_write_record = rejecting
    monkeypatch.setattr(ingestion, "open_backend", lambda options, lake_root_uri: backend)
    # Pretend VACUUM could have removed change files: the next commit to read is older than the retention.
    gold = lake / GOLD_TABLE
    spark.sql(
        f"ALTER TABLE delta.`{gold}` SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 0 seconds')"
    )
    capsys.readouterr()
    code, report = ingest(lake)
    out = capsys.readouterr().out
    details = report["feature_store"]
    assert code == ingestion.DEAD_LETTER_EXIT_CODE and report["status"] == "dead_lettered"
    assert details["mode"] == "resync" and "deleted-file retention" in details["reason"]
    victim_rows = spark.read.format("delta").load(str(gold)).where(f"card_id = '{victim}'").count()
    assert report["counts"]["dead_letters"] == victim_rows
    metrics = [json.loads(line) for line in out.splitlines() if '"FeatureStoreDeadLetters"' in line]
    assert metrics and metrics[-1]["FeatureStoreDeadLetters"] == victim_rows and metrics[-1]["Stage"] == "feature_store"
    letters = [
        json.loads(line) for line in Path(details["dead_letter_file"][len("file://") :]).read_text().splitlines()
    ]
    assert {(item["card_id"], item["error_code"], item["stage"]) for item in letters} == {
        (victim, "ValidationError", "write")
    }
    assert sum(item["online"] for item in letters) == 1
    watermark = json.loads((lake / FEATURE_STORE_WATERMARK).read_text())
    assert watermark["groups"][GROUP]["version"] == table_version(spark, gold)  # every record written or dead-lettered
    with OnlineFeatures.local(str(lake)) as reader:
        assert reader.get(victim) is None

    monkeypatch.undo()
    assert replay_dead_letters.main(["--lake-root", str(lake)]) == 0
    replay = latest_report(lake, "replay_dead_letters")
    assert replay["counts"]["records"] == victim_rows and replay["counts"]["dead_letters"] == 0
    assert not list((lake / FEATURE_STORE_DEAD_LETTERS).glob("*.jsonl"))
    assert len(list((lake / FEATURE_STORE_DEAD_LETTERS / "replayed").glob("*.jsonl"))) == 1
    assert_online_equals_newest_gold(spark, lake)


def test_merchant_snapshot_changes_are_ingested_incrementally_dead_lettered_and_replayed(spark, lake, monkeypatch):
    if not (lake / FEATURE_STORE_WATERMARK).exists():
        assert ingest(lake)[0] == 0
    path = lake / MERCHANT_FEATURES_TABLE
    newest = newest_merchant_rows(spark, lake)
    by_rows = spark.read.format("delta").load(str(path)).groupBy("merchant_id").count().collect()
    several = sorted(row.merchant_id for row in by_rows if row["count"] > 1)
    changed, grown, older = several[0], several[1], several[2]
    # the newest day of one merchant changes (a late event, a late chargeback); another merchant gets a new
    # day; an older day of a third changes (offline only: its newest day stays online)
    spark.sql(
        f"UPDATE delta.`{path}` SET {MERCHANT_FEATURE_NAMES[0]} = 999 "
        f"WHERE merchant_id = '{changed}' AND day = DATE'{newest[changed]['day']}'"
    )
    next_day = date.fromordinal(newest[grown]["day"].toordinal() + 1)
    spark.sql(
        f"INSERT INTO delta.`{path}` VALUES ('{grown}', DATE'{next_day}', "
        f"{(next_day.toordinal() - date(1970, 1, 1).toordinal()) * 86_400_000_000}, 0, 5, 7, NULL, 0.5, 0.125, 2, "
        "current_timestamp())"
    )
    spark.sql(
        f"UPDATE delta.`{path}` SET {MERCHANT_FEATURE_NAMES[5]} = 0.75 "
        f"WHERE merchant_id = '{older}' AND day < DATE'{newest[older]['day']}'"
    )
    older_rows = spark.read.format("delta").load(str(path)).where(f"merchant_id = '{older}'").count() - 1
    code, report = ingest(lake)
    merchant = report["feature_store"]["merchant"]
    assert (code, merchant["mode"]) == (0, "incremental")
    assert (merchant["writes"]["records"], merchant["writes"]["online_records"]) == (2 + older_rows, 2)
    assert_merchant_online_equals_newest_snapshot(spark, lake)
    published = newest_snapshot_day(spark, lake)
    assert merchant["published_day"] == published.isoformat() and published_day_online(lake) == published

    # Every write of the grown merchant's new row is rejected (the online-only restore of the record the
    # late-data correction deleted goes through): a dead letter naming the merchant group, the merchant and the
    # snapshot day; the watermark moves; the replay re-reads the row and corrects the record.
    spark.sql(
        f"UPDATE delta.`{path}` SET {MERCHANT_FEATURE_NAMES[1]} = 6 "
        f"WHERE merchant_id = '{grown}' AND day = DATE'{next_day}'"
    )
    backend = LocalBackend(str(lake / "feature_store/online.db"), "file://" + str(lake))
    write = backend.runtime.batch_write_record

    def rejecting(*, Entries, TtlDuration=None):  # noqa: N803
        rejected = [
            entry
            for entry in Entries
            if record_value(entry["Record"], "merchant_id") == grown and "OfflineStore" in entry["TargetStores"]
        ]
        accepted = [entry for entry in Entries if entry not in rejected]
        response = write(Entries=accepted) if accepted else {"Errors": [], "UnprocessedEntries": []}
        response["Errors"] += [
            {"Entry": entry, "ErrorCode": "ValidationError", "ErrorMessage": "rejected by the test"}
            for entry in rejected
        ]
        return response

    backend.runtime.batch_write_record = rejecting
    monkeypatch.setattr(ingestion, "open_backend", lambda options, lake_root_uri: backend)
    code, report = ingest(lake)
    assert report["counts"]["online_restored"] == 1  # the corrected write failed: the old record is back
    assert code == ingestion.DEAD_LETTER_EXIT_CODE and report["feature_store"]["merchant"]["mode"] == "incremental"
    # a run with merchant dead letters does not move the published day (its rows are not all online)
    assert report["feature_store"]["merchant"]["published_day"] is None
    letters = [
        json.loads(line)
        for line in Path(report["feature_store"]["dead_letter_file"][len("file://") :]).read_text().splitlines()
    ]
    assert [
        (item["feature_group"], item["merchant_id"], item["record_id"], item["source"]["day"], item["stage"])
        for item in letters
    ] == [(MERCHANT_GROUP, grown, grown, next_day.isoformat(), "write")]
    watermark = json.loads((lake / FEATURE_STORE_WATERMARK).read_text())
    assert watermark["groups"][MERCHANT_GROUP]["version"] == table_version(spark, path)
    snapshots = MerchantSnapshots.local(lake)
    assert parse_merchant_record(snapshots.record(grown))[1][MERCHANT_FEATURE_NAMES[1]] == 5  # not yet corrected
    snapshots.close()
    monkeypatch.undo()
    backend.close()
    assert replay_dead_letters.main(["--lake-root", str(lake)]) == 0
    replay = latest_report(lake, "replay_dead_letters")
    assert (replay["counts"]["records"], replay["counts"]["dead_letters"]) == (1, 0)
    assert (replay["replay"]["merchant_snapshots"], replay["replay"]["merchant_snapshots_not_found"]) == (1, 0)
    assert_merchant_online_equals_newest_snapshot(spark, lake)


# The sagemaker backend's executor path, with a recording stand-in for the runtime client ------------------


@dataclass(frozen=True)
class RecordingClientFactory:
    folder: str

    def __call__(self):
        return RecordingClient(Path(self.folder) / f"{uuid.uuid4().hex}.jsonl")


class RecordingClient:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _log(self, operation: str, **details) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps({"operation": operation, **details}) + "\n")

    def batch_get_record(self, *, Identifiers):  # noqa: N803
        self._log("BatchGetRecord", cards=Identifiers[0]["RecordIdentifiersValueAsString"])
        return {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}

    def batch_write_record(self, *, Entries):  # noqa: N803
        self._log(
            "BatchWriteRecord",
            cards=[record_value(entry["Record"], "card_id") for entry in Entries],
            targets=[entry["TargetStores"] for entry in Entries],
        )
        return {"Errors": [], "UnprocessedEntries": []}


def test_executors_write_with_one_client_per_partition_and_bounded_concurrency(spark, tmp_path):
    from feature_store.backends.sagemaker import write_on_executors
    from spark_jobs.gold import GOLD_SCHEMA

    fields = {field.name: field for field in GOLD_SCHEMA.fields}
    schema_text = ", ".join(
        f"{name} {fields[name].dataType.simpleString()}"
        for name in ("card_id", "event_id", "ts_us", "dt", *CARD_FEATURE_NAMES)
    )
    rows = [
        (
            f"card-{index % 7}",
            f"e{index:03d}",
            1767225600_000_000 + index * 1_000_000,
            date(2026, 1, 1),
            *[None] * len(CARD_FEATURES),
            index >= 63,
        )
        for index in range(70)
    ]
    frame = spark.createDataFrame(rows, f"{schema_text}, online boolean")
    stats = write_on_executors(
        frame, WriterOptions(feature_group=GROUP), RecordingClientFactory(str(tmp_path)), max_concurrency=3
    )
    assert (stats.records, stats.written, stats.online_records) == (70, 70, 7)
    logs = {path: [json.loads(line) for line in path.read_text().splitlines()] for path in tmp_path.glob("*.jsonl")}
    assert 1 <= len(logs) <= 3  # one client per (non-empty) partition, at most --max-concurrency of them
    cards_per_client = [
        {card for call in calls if call["operation"] == "BatchWriteRecord" for card in call["cards"]}
        for calls in logs.values()
    ]
    assert sum(len(cards) for cards in cards_per_client) == 7  # each card's rows stay with one client
    writes = [call for calls in logs.values() for call in calls if call["operation"] == "BatchWriteRecord"]
    assert all(len(call["cards"]) <= 25 for call in writes)
    assert sum(targets == ["OnlineStore", "OfflineStore"] for call in writes for targets in call["targets"]) == 7
