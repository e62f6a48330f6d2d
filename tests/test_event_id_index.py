"""Exactly once at any distance: the event-id index (spark_jobs/event_id_index.py) through the real jobs, its two
backends (SQLite; DynamoDB on moto), its backfill, and a crash between the index write and the silver commit."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import date
from pathlib import Path

import pytest

from spark_jobs import silver_and_gold
from spark_jobs.fault_injection import InjectedFault
from tests.lake_helpers import event, write_bronze

REPO_ROOT = Path(__file__).resolve().parents[1]
SILVER = "silver/card_transactions"
QUARANTINE = "silver/quarantine"
DUPLICATES = "silver/duplicates"
T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86_400


@pytest.fixture(autouse=True)
def token_key(monkeypatch):
    """A card-token key of the tests' own (the jobs refuse the public development key unless asked)."""
    monkeypatch.setenv("LAKEHOUSE_CARD_TOKEN_KEY", "5e" * 32)


def run_job(lake: Path, *extra: str) -> dict:
    silver_and_gold.main(["--mode", "stream", "--allow-development-token-key", "--lake-root", str(lake), *extra])
    return latest_report(lake)


def latest_report(lake: Path) -> dict:
    reports = sorted((lake / "_runs").glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
    return json.loads(reports[-1].read_text())


def silver_days(spark, lake: Path) -> dict[str, list[date]]:
    rows = spark.read.format("delta").load(str(lake / SILVER)).select("event_id", "dt").collect()
    days: dict[str, list[date]] = {}
    for row in rows:
        days.setdefault(row.event_id, []).append(row.dt)
    return days


def local_index(lake: Path):
    from spark_jobs.event_id_index import SqliteEventIdIndex, local_index_path

    return SqliteEventIdIndex(local_index_path(str(lake)))


# --- through the job ------------------------------------------------------------------------------------------


def test_redelivery_with_ts_moved_three_days_is_a_conflicting_duplicate(spark, tmp_path):
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/05/00", "part-1.gz", [event("e1", ts=T0 + 4 * DAY), event("e2", ts=T0 + 4 * DAY)])
    run_job(lake)
    # e1 again, its ts three days earlier (a producer's clock or a replayed record): silver's dt for the batch is
    # 2026-01-02, three days from the row already in silver at 2026-01-05
    write_bronze(lake, "2026/01/05/01", "part-2.gz", [event("e1", ts=T0 + DAY), event("e3", ts=T0 + DAY)])
    report = run_job(lake)
    counts = report["counts"]
    assert counts["quarantined_by_reason"] == {"conflicting_duplicate": 1}
    assert (counts["accepted"], counts["duplicates"]) == (1, 0)
    assert silver_days(spark, lake)["e1"] == [date(2026, 1, 5)]
    detail = spark.read.format("delta").load(str(lake / QUARANTINE)).collect()[0].detail
    assert detail.startswith("field=ts_us value=1767312000000000") and "first_seen=" in detail
    # The dedupe read silver only at the one day the index named for e1 (not at e3's or the batch's days).
    lookup = report["dedupe"][-1]["event_id_index"]
    assert (lookup["ids_looked_up"], lookup["ids_found"]) == (2, 1)
    assert lookup["indexed_days_read"] == ["2026-01-05"]
    assert counts["event_id_index_writes"] == 1  # e3 (e1 and e2 were added by the first run)


def test_exact_redelivery_ten_days_later_is_a_duplicate(spark, tmp_path):
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/01/00", "part-1.gz", [event("e1", ts=T0 + 60)])
    run_job(lake)
    write_bronze(lake, "2026/01/11/00", "part-2.gz", [event("e1", ts=T0 + 60), event("e2", ts=T0 + 10 * DAY)])
    counts = run_job(lake)["counts"]
    assert (counts["accepted"], counts["duplicates"], counts["quarantined"]) == (1, 1, 0)
    assert silver_days(spark, lake) == {"e1": [date(2026, 1, 1)], "e2": [date(2026, 1, 11)]}
    duplicates = spark.read.format("delta").load(str(lake / DUPLICATES)).collect()
    assert [(row.event_id, row.source_file.rsplit("/", 1)[1]) for row in duplicates] == [("e1", "part-2.gz")]


def test_a_batch_of_new_events_reads_no_silver_and_a_same_day_redelivery_is_still_found(spark, tmp_path):
    """The index knows none of a batch of new events: the dedupe reads no silver file. An exact re-delivery on
    the same day is found through the day the index names for it."""
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/01/00", "part-1.gz", [event("e1", ts=T0 + 60)])
    run_job(lake)
    write_bronze(lake, "2026/01/01/01", "part-2.gz", [event("e2", ts=T0 + 120), event("e3", ts=T0 + 180)])
    report = run_job(lake)
    counts = report["counts"]
    assert (counts["accepted"], counts["duplicates"], counts["dedupe_silver_files_read"]) == (2, 0, 0)
    assert report["dedupe"][-1]["event_id_index"]["indexed_days_read"] == []
    write_bronze(lake, "2026/01/01/02", "part-3.gz", [event("e2", ts=T0 + 120), event("e4", ts=T0 + 240)])
    report = run_job(lake)
    counts = report["counts"]
    assert (counts["accepted"], counts["duplicates"], counts["quarantined"]) == (1, 1, 0)
    assert counts["dedupe_silver_files_read"] >= 1
    assert report["dedupe"][-1]["event_id_index"]["indexed_days_read"] == ["2026-01-01"]
    assert silver_days(spark, lake) == {name: [date(2026, 1, 1)] for name in ("e1", "e2", "e3", "e4")}


def test_crash_between_index_write_and_silver_commit_then_rerun(spark, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/05/00", "part-1.gz", [event("e1", ts=T0 + 4 * DAY)])
    run_job(lake)
    write_bronze(lake, "2026/01/05/01", "part-2.gz", [event("e1", ts=T0 + DAY), event("e2", ts=T0 + DAY)])
    monkeypatch.setenv("LAKEHOUSE_FAIL_AT", "after_event_id_index_write")
    with pytest.raises(InjectedFault):
        run_job(lake)
    with local_index(lake) as index:  # the index already names e2's day; silver does not hold e2 yet
        assert index.days_of(["e1", "e2"]) == {"e1": {date(2026, 1, 5)}, "e2": {date(2026, 1, 2)}}
    assert "e2" not in silver_days(spark, lake)
    monkeypatch.delenv("LAKEHOUSE_FAIL_AT")
    counts = run_job(lake)["counts"]  # the pending batch, resumed: the index is a hint, silver decides
    assert counts["batches"] == 1
    assert (counts["accepted"], counts["quarantined_by_reason"]) == (1, {"conflicting_duplicate": 1})
    assert silver_days(spark, lake) == {"e1": [date(2026, 1, 5)], "e2": [date(2026, 1, 2)]}
    assert run_job(lake)["counts"]["files"] == 0


def test_quarantine_replay_reads_and_writes_the_index(spark, tmp_path):
    from scripts import replay_quarantine

    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/05/00", "part-1.gz", [event("r1", currency="NOK", ts=T0)])
    write_bronze(lake, "2026/01/05/01", "part-2.gz", [event("r2", ts=T0 + 4 * DAY)])
    # r2 again, ts three days earlier, with a currency not yet known: quarantined as unknown_currency for now
    write_bronze(lake, "2026/01/05/02", "part-3.gz", [event("r2", currency="NOK", ts=T0 + DAY)])
    assert run_job(lake)["counts"]["quarantined_by_reason"] == {"unknown_currency": 2}

    rates = tmp_path / "fx.csv"
    rates.write_text((REPO_ROOT / "spark_jobs/reference_data/fx_rates.csv").read_text() + "NOK,0.095\n")
    replay_quarantine.main(["--allow-development-token-key", "--lake-root", str(lake), "--fx-rates", str(rates)])
    counts = latest_report(lake)["counts"]
    # r1 moves to silver (and into the index); r2's far re-delivery is found through the index: a conflict (the
    # replayed lines' days, 2026-01-01 and -02, are three days from r2's silver day)
    assert (counts["moved_to_silver"], counts["still_quarantined"]) == (1, 1)
    reasons = [row.reason for row in spark.read.format("delta").load(str(lake / QUARANTINE)).collect()]
    assert reasons.count("conflicting_duplicate") == 1  # r2's line (r1's own row may stay: the retention rule)
    assert silver_days(spark, lake) == {"r1": [date(2026, 1, 1)], "r2": [date(2026, 1, 5)]}
    with local_index(lake) as index:
        assert index.days_of(["r1"]) == {"r1": {date(2026, 1, 1)}}

    # r1 re-delivered with its ts four days later after the replay: the index written by the replay finds it
    write_bronze(lake, "2026/01/05/03", "part-4.gz", [event("r1", currency="NOK", ts=T0 + 4 * DAY)])
    counts = run_job(lake, "--fx-rates", str(rates))["counts"]
    assert counts["quarantined_by_reason"] == {"conflicting_duplicate": 1}


def test_backfill_of_an_existing_lake(spark, tmp_path):
    from spark_jobs.event_id_index import local_index_path

    lake = tmp_path / "lake"
    write_bronze(lake, "2026/01/05/00", "part-1.gz", [event("e1", ts=T0 + 4 * DAY), event("e2", ts=T0 + 2 * DAY)])
    run_job(lake)
    Path(local_index_path(str(lake))).unlink()  # a lake built before the index existed

    report = run_job(lake, "--backfill-event-id-index")
    assert report["counts"]["event_id_index_backfilled"] == 2
    with local_index(lake) as index:
        assert index.is_complete()
        assert index.days_of(["e1", "e2", "e3"]) == {"e1": {date(2026, 1, 5)}, "e2": {date(2026, 1, 3)}}
    again = run_job(lake, "--backfill-event-id-index")  # idempotent: the same entries, nothing else
    assert again["counts"]["event_id_index_backfilled"] == 2
    with local_index(lake) as index:
        assert index.entry_count() == 2

    # Without the option, a lake whose index is missing or incomplete is backfilled before its first batch.
    Path(local_index_path(str(lake))).unlink()
    write_bronze(lake, "2026/01/05/01", "part-2.gz", [event("e1", ts=T0 + DAY)])
    counts = run_job(lake)["counts"]
    assert counts["event_id_index_backfilled"] == 2
    assert counts["quarantined_by_reason"] == {"conflicting_duplicate": 1}


# --- the backends ---------------------------------------------------------------------------------------------


def _exercise(index) -> None:
    """The contract every backend keeps: a superset of (event_id, day) pairs, exact lookups in bulk."""
    assert index.days_of(["a"]) == {}
    assert not index.is_complete()
    ids = [f"id-{number:05d}" for number in range(1234)]
    assert index.add([(event_id, date(2026, 1, 1)) for event_id in ids]) == 1234
    assert index.add([("id-00007", date(2026, 3, 9)), ("id-00007", date(2026, 3, 9))]) == 1
    assert index.add([("id-00007", date(2026, 1, 1))]) == 1  # idempotent: the pair is already there
    found = index.days_of([*ids, "absent", "id-00007"])
    assert len(found) == 1234 and "absent" not in found
    assert found["id-00007"] == {date(2026, 1, 1), date(2026, 3, 9)}
    assert found["id-01233"] == {date(2026, 1, 1)}
    index.mark_complete()
    assert index.is_complete()
    assert index.days_of([]) == {}


def test_sqlite_backend(tmp_path):
    from spark_jobs.event_id_index import SqliteEventIdIndex

    with SqliteEventIdIndex(tmp_path / "index.sqlite") as index:
        _exercise(index)
        assert index.entry_count() == 1235


def test_executor_writes_group_arrow_batches_into_chunks_of_at_least_the_chunk_size():
    """One SQLite transaction per chunk, not per 10,000-row Arrow batch (DynamoDB: a batch per call); no batch is
    lost or split, the last partial chunk included."""
    import pyarrow as pa

    from spark_jobs.event_id_index import EventIdIndexLocation, _chunks_of

    batches = [pa.RecordBatch.from_pydict({"n": list(range(size))}) for size in (4, 3, 0, 5, 1, 2)]
    chunks = list(_chunks_of(iter(batches), 7))
    assert [[batch.num_rows for batch in chunk] for chunk in chunks] == [[4, 3], [0, 5, 1, 2]]
    assert [[batch.num_rows for batch in chunk] for chunk in _chunks_of(iter(batches[:5]), 7)] == [[4, 3], [0, 5, 1]]
    assert list(_chunks_of(iter([]), 7)) == []
    assert [len(chunk) for chunk in _chunks_of(iter(batches), 1)] == [1, 1, 2, 1, 1]
    assert EventIdIndexLocation(sqlite_path="/tmp/x.sqlite").write_chunk_pairs == 200_000
    assert EventIdIndexLocation(dynamodb_table="t").write_chunk_pairs == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def moto_dynamodb(monkeypatch):
    """A moto server over HTTP (Spark's Python workers are other processes) with the Terraform table's keys."""
    import boto3
    from moto.server import ThreadedMotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-1")
    table = f"cardfeat-test-event-id-index-{uuid.uuid4().hex[:8]}"  # moto's tables outlive a server in-process
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
    )
    yield endpoint, table
    server.stop()


def test_dynamodb_backend(moto_dynamodb):
    from spark_jobs.event_id_index import EventIdIndexLocation

    endpoint, table = moto_dynamodb
    location = EventIdIndexLocation(dynamodb_table=table, region="eu-west-1", endpoint_url=endpoint)
    with location.open() as index:
        _exercise(index)


def test_spark_lookup_and_write_in_bulk_on_dynamodb(spark, moto_dynamodb, monkeypatch):
    """The executor-side helpers the jobs use, against DynamoDB: written in bulk, read back exactly."""
    from spark_jobs.event_id_index import EventIdIndexLocation, add_to_index, indexed_days

    endpoint, table = moto_dynamodb
    location = EventIdIndexLocation(dynamodb_table=table, region="eu-west-1", endpoint_url=endpoint)
    # Spark's Python workers get the session's environment, not this process's (monkeypatched) one.
    environment = spark.sparkContext.environment
    monkeypatch.setitem(environment, "AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setitem(environment, "AWS_SECRET_ACCESS_KEY", "testing")
    entries = spark.range(0, 3000).selectExpr(
        "concat('ev-', cast(id AS string)) AS event_id", "date_add(DATE'2026-01-01', cast(id % 40 AS int)) AS dt"
    )
    assert add_to_index(entries.repartition(3), location) == 3000
    probe = spark.range(2990, 3010).selectExpr("concat('ev-', cast(id AS string)) AS event_id")
    found = {(row.event_id, row.dt) for row in indexed_days(probe, location).collect()}
    assert found == {
        (f"ev-{number}", date.fromordinal(date(2026, 1, 1).toordinal() + number % 40)) for number in range(2990, 3000)
    }
