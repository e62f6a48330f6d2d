"""The online state sync through real stream runs: silver's window events, silver wins, quarantined served
copies removed, retention by event time, resync == incremental, idempotent reruns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from feature_store.online_state import SERVED, SILVER, STATE_RETENTION, SqliteOnlineState, StateEvent
from feature_store.online_state_sync import (
    SyncOptions,
    quarantine_files_added,
    state_event,
    sync_online_state,
)
from spark_jobs import silver_and_gold
from spark_jobs.lake import ONLINE_STATE_SYNC_WATERMARK, SILVER_TABLE, online_state_sync_watermark_uri
from spark_jobs.storage import open_lake
from tests.lake_helpers import event, write_bronze

T0 = 1767225600  # 2026-01-01T00:00:00Z
SECOND = 1_000_000
DAY = 86_400
RETENTION_S = int(STATE_RETENTION.total_seconds())  # the longest window + the stream lookback (32 days in v2)
RETENTION_US = RETENTION_S * SECOND
CARDS = ("card-1", "card-2", "card-3")


def hour_folder(seconds: int) -> str:
    """The bronze arrival folder (YYYY/MM/DD/HH) of an instant in Unix seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y/%m/%d/%H")


def served(event_id: str, ts: float, card_id: str = "card-1") -> StateEvent:
    return StateEvent(card_id, event_id, int(ts * SECOND), Decimal("9.9900000000"), "m-s", "US", SERVED, "served")


# What a scoring service wrote back before the first sync.
SERVED_EVENTS = (
    served("a2", T0 + 61),  # silver holds a2 at T0+60: silver's copy replaces it
    served("s-recent", T0 + 90),  # never reaches bronze: stays until its card's retention passes it
    served("s-old", T0 - RETENTION_S + 120 - 1),  # older than card-1's newest − retention at the first sync: pruned
    served("x", T0 + 200, card_id="card-2"),  # bronze later delivers it as a conflicting_duplicate
    served("s-only", T0, card_id="card-3"),  # a card silver never saw: untouched
)


def stream(lake: Path) -> None:
    silver_and_gold.main(["--mode", "stream", "--allow-development-token-key", "--lake-root", str(lake)])


def sync(spark, lake: Path, state, *, resync: bool = False, name: str = "sqlite:test", workers: int = 8) -> dict:
    options = SyncOptions(state_name=name, full_resync=resync, call_workers=workers)
    return sync_online_state(spark, open_lake(str(lake)), state, options, run_id="test-run")


def snapshot(state) -> dict[str, list[StateEvent]]:
    return {card: state.window(card, 0, 10**19) for card in CARDS}


def ids(state, card: str) -> list[tuple[str, str]]:
    return [(item.event_id, item.origin) for item in state.window(card, 0, 10**19)]


def silver_window(spark, lake: Path) -> dict[str, list[StateEvent]]:
    """Silver's events within each card's retention window, computed here from the whole table."""
    rows = [row.asDict() for row in spark.read.format("delta").load(str(lake / SILVER_TABLE)).collect()]
    newest = {}
    for row in rows:
        newest[row["card_id"]] = max(newest.get(row["card_id"], 0), row["ts_us"])
    kept = [state_event(row) for row in rows if row["ts_us"] >= newest[row["card_id"]] - RETENTION_US]
    return {
        card: sorted((item for item in kept if item.card_id == card), key=lambda item: item.sort_key) for card in CARDS
    }


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("online_state_sync") / "lake"
    write_bronze(
        root,
        "2026/01/01/00",
        "part-1.gz",
        [
            event("a1", ts=T0),
            event("a2", ts=T0 + 60, amount=20),
            event("x", ts=T0 + 120, amount=7.25),
            event("old1", ts=T0 - RETENTION_S - DAY),  # older than card-1's retention window: never synced
            event("b1", card_id="card-2", ts=T0 + 30),
        ],
    )
    stream(root)
    return root


def test_sync_follows_silver_through_stream_runs(spark, lake, tmp_path):
    (lake / ONLINE_STATE_SYNC_WATERMARK).unlink(missing_ok=True)  # another test's sync may have run first
    state = SqliteOnlineState(tmp_path / "state.db")
    for item in SERVED_EVENTS:
        assert state.add_served(item) is None

    summary = sync(spark, lake, state)
    assert (summary["mode"], summary["upserted"], summary["pruned"]) == ("resync", 4, 1)
    assert "no sync watermark" in summary["reason"]
    assert ids(state, "card-1") == [("a1", SILVER), ("a2", SILVER), ("s-recent", SERVED), ("x", SILVER)]
    assert state.find("card-1", "a2").ts_us == (T0 + 60) * SECOND  # silver wins, its ts too
    assert state.find("card-1", "a2").amount_usd == silver_window(spark, lake)["card-1"][1].amount_usd
    assert ids(state, "card-2") == [("b1", SILVER), ("x", SERVED)]
    assert ids(state, "card-3") == [("s-only", SERVED)]

    # The next arrival: a conflicting re-delivery of x under card-2 (silver has x under card-1) and one of b1
    # (silver's b1 stays), and card-1's newest moves the retention + 70 s on: its events before T0+70 age out.
    # They arrive on c1's day (an event cannot be newer than its arrival: future_timestamp), the others late.
    write_bronze(
        lake,
        hour_folder(T0 + RETENTION_S + 70),
        "part-2.gz",
        [
            event("x", card_id="card-2", ts=T0 + 200),
            event("b1", card_id="card-2", ts=T0 + 30, amount=99),
            event("c1", ts=T0 + RETENTION_S + 70),
            event("b2", card_id="card-2", ts=T0 + 40),
        ],
    )
    stream(lake)
    summary = sync(spark, lake, state)
    assert (summary["mode"], summary["upserted"]) == ("incremental", 2)
    assert (summary["quarantined_keys"], summary["removed_quarantined"], summary["pruned"]) == (2, 1, 2)
    assert ids(state, "card-1") == [("s-recent", SERVED), ("x", SILVER), ("c1", SILVER)]
    assert ids(state, "card-2") == [("b1", SILVER), ("b2", SILVER)]
    assert ids(state, "card-3") == [("s-only", SERVED)]

    # The silver events of the state are exactly silver's window events.
    expected = silver_window(spark, lake)
    assert {
        card: [item for item in events if item.origin == SILVER] for card, events in snapshot(state).items()
    } == expected

    # Idempotent: nothing new, nothing changes; a rerun with the watermark of the previous run repeats the work
    # and ends in the same state.
    incremental = snapshot(state)
    storage = open_lake(str(lake))
    summary = sync(spark, lake, state)
    assert (summary["mode"], summary["upserted"], summary["pruned"], summary["removed_quarantined"]) == (
        "unchanged",
        0,
        0,
        0,
    )
    assert snapshot(state) == incremental
    # The watermark is the pointer of create-only commits: a rewritten pointer counts while no commit follows it.
    watermark = storage.read_json(online_state_sync_watermark_uri(storage))
    storage.write_json(
        online_state_sync_watermark_uri(storage), {**watermark, "silver_version": watermark["silver_version"] - 1}
    )
    sync(spark, lake, state)
    assert snapshot(state) == incremental

    # A new deployment: the served events written back to a fresh state, then a resync, ends where the
    # incremental syncs did.
    fresh = SqliteOnlineState(tmp_path / "fresh.db")
    for item in SERVED_EVENTS:
        fresh.add_served(item)
    summary = sync(spark, lake, fresh, name="sqlite:fresh")
    assert summary["mode"] == "resync" and "not 'sqlite:fresh'" in summary["reason"]
    assert snapshot(fresh) == incremental
    state.close()
    fresh.close()


def test_resync_into_dynamodb_equals_sqlite(spark, lake, tmp_path, monkeypatch):
    """The AWS backend through the same sync: a resync of the lake into DynamoDB (moto) and into SQLite hold
    the same events."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from feature_store.online_state_dynamodb import DynamoDbOnlineState, create_table

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    local = SqliteOnlineState(tmp_path / "state.db")
    with moto.mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        create_table(client, "online-state")
        remote = DynamoDbOnlineState("online-state", client=client)
        for store, name in ((local, "sqlite:local"), (remote, "dynamodb:online-state")):
            for item in SERVED_EVENTS:
                store.add_served(item)
            # one call at a time: moto's in-process DynamoDB is not thread-safe
            assert sync(spark, lake, store, resync=True, name=name, workers=1)["mode"] == "resync"
        assert snapshot(remote) == snapshot(local)
        assert any(events for events in snapshot(remote).values())
    local.close()


def test_quarantine_files_added_reads_the_commits_add_actions(tmp_path):
    storage = open_lake(str(tmp_path))
    log = tmp_path / "q" / "_delta_log"
    log.mkdir(parents=True)
    actions = [
        {"commitInfo": {"timestamp": 1}},
        {"add": {"path": "ingest_date=2026-01-01/part-1.parquet", "dataChange": True}},
        {"add": {"path": "ingest_date=__HIVE_DEFAULT_PARTITION__/part%202.parquet", "dataChange": True}},
        {"add": {"path": "ingest_date=2026-01-01/compacted.parquet", "dataChange": False}},
        {"remove": {"path": "ingest_date=2026-01-01/part-0.parquet"}},
    ]
    (log / f"{1:020d}.json").write_text("\n".join(json.dumps(item) for item in actions))
    (log / f"{2:020d}.json").write_text(json.dumps({"add": {"path": "part-3.parquet", "dataChange": True}}))
    uri = storage.uri("q")
    assert quarantine_files_added(storage, uri, 0, 2) == {"part-1.parquet", "part 2.parquet", "part-3.parquet"}
    assert quarantine_files_added(storage, uri, 1, 2) == {"part-3.parquet"}
    assert quarantine_files_added(storage, uri, 2, 3) is None  # version 3's entry is gone: read everything


def test_online_state_options_from_arguments(tmp_path):
    import argparse

    from feature_store.online_state_sync import add_online_state_options, online_state_options

    parser = argparse.ArgumentParser()
    parser.add_argument("--lake-root")
    parser.add_argument("--online-store-path", default=None)
    parser.add_argument("--region", default=None)
    add_online_state_options(parser)

    def options(*argv: str):
        return online_state_options(parser, parser.parse_args(list(argv)))

    local = options("--lake-root", str(tmp_path / "lake"))
    assert (local.table, local.local_path, local.resync) == (
        None,
        str((tmp_path / "lake" / "feature_store" / "online_state.db").resolve()),
        False,
    )
    remote = options(
        "--lake-root", "s3://b/l", "--online-state-table", "t", "--region", "eu-west-1", "--online-state-resync"
    )
    assert (remote.table, remote.local_path, remote.region, remote.resync) == ("t", None, "eu-west-1", True)
    beside = options("--lake-root", "s3://b/l", "--online-store-path", "/x/online.db", "--online-state-table", "")
    assert (beside.table, beside.local_path) == (None, "/x/online_state.db")
    with pytest.raises(SystemExit):
        options("--lake-root", "s3://b/l")


def test_remove_served_keeps_silver_and_prune_counts_a_newer_served_event(tmp_path):
    from feature_store.online_state_sync import prune_cards, remove_served

    state = SqliteOnlineState(tmp_path / "state.db")
    state.upsert_silver([StateEvent("card-1", "s1", 10 * SECOND, Decimal("1"), "m", "US", SILVER, "f")])
    state.add_served(served("q1", 11))
    state.add_served(served("q2", 12, card_id="card-2"))
    keys = [("card-1", "s1"), ("card-1", "q1"), ("card-2", "q2"), ("card-2", "missing")]
    assert remove_served(state, keys, workers=4) == 2
    assert ids(state, "card-1") == [("s1", SILVER)] and ids(state, "card-2") == []

    # Silver's newest is at 10 s, a served event at 10 s + retention: the served one is the card's newest.
    state.add_served(served("late", 10 + STATE_RETENTION.total_seconds()))
    assert prune_cards(state, {"card-1": 10 * SECOND}, STATE_RETENTION, workers=2) == 0  # s1 sits on the bound
    state.add_served(served("later", 11 + STATE_RETENTION.total_seconds()))
    assert prune_cards(state, {"card-1": 10 * SECOND}, STATE_RETENTION) == 1
    assert ids(state, "card-1") == [("late", SERVED), ("later", SERVED)]
    state.close()
