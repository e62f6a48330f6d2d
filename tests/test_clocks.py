"""Clocks lie (issue 17): event times after their arrival, future arrival-hour folders, the ledger's high-water
mark, files that change after processing, and the lookback checked against the stream's retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from spark_jobs.bronze_contract import QUARANTINE_REASONS, judge_record, parse_bronze_file
from spark_jobs.bronze_ledger import BronzeFile, BronzeLedger
from spark_jobs.lake import BRONZE_EVENTS_PREFIX
from spark_jobs.storage import open_lake
from tests.test_bronze_contract import FX_RATES, KEY, Raw, line

FUTURE_TIMESTAMP = "future_timestamp"
ARRIVAL = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)  # 1767226200
ALLOWANCE = timedelta(minutes=15)
LATEST_ACCEPTED = 1767226200 + 15 * 60  # arrival + allowance


def parse_at(*texts: str, arrival=ARRIVAL):
    data = "".join(text + "\n" for text in texts).encode()
    return parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY, arrival=arrival, future_allowance=ALLOWANCE)


def test_future_timestamp_is_a_quarantine_reason():
    from spark_jobs import bronze_contract

    assert bronze_contract.FUTURE_TIMESTAMP == FUTURE_TIMESTAMP and FUTURE_TIMESTAMP in QUARANTINE_REASONS


def test_ts_after_arrival_plus_allowance_is_quarantined_on_the_fast_path():
    result = parse_at(
        line(ts=Raw(str(LATEST_ACCEPTED))),  # exactly arrival + allowance: accepted
        line(event_id="late", ts=Raw("1767225600")),  # before its arrival: a late event, accepted
        line(event_id="future", ts=Raw(f"{LATEST_ACCEPTED}.000001")),
        line(event_id="2099", ts=Raw("4070908800")),  # 2099-01-01: in range, far in the future
    )
    assert [row["event_id"] for row in result.accepted_records()] == ["e-0001", "late"]
    rejected = list(result.rejected_records())
    assert [(row["line_number"], row["reason"]) for row in rejected] == [(3, FUTURE_TIMESTAMP), (4, FUTURE_TIMESTAMP)]
    assert rejected[0]["detail"] == (
        f"field=ts value={LATEST_ACCEPTED}.000001 arrival=2026-01-01T00:10:00Z allowance=900s"
    )


def test_ts_after_arrival_is_quarantined_on_the_judge_path_after_out_of_range():
    # A leading space sends the line to _judge_line (the fast path only takes plain lines).
    result = parse_at(" " + line(ts=Raw("4070908800")), " " + line(ts=Raw("4102444800")), " " + line(amount=-1))
    assert [row["reason"] for row in result.rejected_records()] == [
        FUTURE_TIMESTAMP,
        "out_of_range",
        "non_positive_amount",
    ]
    # future_timestamp comes before the amount rules
    result = parse_at(line(ts=Raw("4070908800"), amount=-1))
    assert [row["reason"] for row in result.rejected_records()] == [FUTURE_TIMESTAMP]


def test_without_an_arrival_there_is_no_future_check():
    result = parse_bronze_file((line(ts=Raw("4070908800")) + "\n").encode(), fx_rates=FX_RATES, token_key=KEY)
    assert len(result.accepted) == 1


def test_judge_record_uses_the_receive_time():
    record = line(ts=Raw(str(LATEST_ACCEPTED + 1)))
    judged = judge_record(record, fx_rates=FX_RATES, token_key=KEY, received_at=ARRIVAL, future_allowance=ALLOWANCE)
    assert judged.reason == FUTURE_TIMESTAMP
    later = ARRIVAL + timedelta(seconds=1)
    assert judge_record(record, fx_rates=FX_RATES, token_key=KEY, received_at=later).accepted is not None


def test_arrival_is_the_earlier_of_hour_end_plus_buffering_and_last_modified():
    from spark_jobs.bronze_ledger import arrival_time

    buffering = timedelta(seconds=300)
    uri = "s3://b/bronze/streaming/card_authorization/ingest_dt=2026/01/01/00/f.gz"
    plain = BronzeFile(uri=uri, size=1, version="v", arrival_hour="2026/01/01/00")
    assert arrival_time(plain, buffering) == datetime(2026, 1, 1, 1, 5, tzinfo=UTC)
    early = BronzeFile(uri, 1, "v", "2026/01/01/00", last_modified="2026-01-01T00:20:00+00:00")
    assert arrival_time(early, buffering) == datetime(2026, 1, 1, 0, 20, tzinfo=UTC)
    late = BronzeFile(uri, 1, "v", "2026/01/01/00", last_modified="2026-03-01T00:00:00Z")
    assert arrival_time(late, buffering) == datetime(2026, 1, 1, 1, 5, tzinfo=UTC)
    outside = BronzeFile(uri="s3://b/x.gz", size=1, version="v", arrival_hour="unpartitioned")
    assert arrival_time(outside, buffering) is None
    # a pending.json written before last_modified existed still loads
    assert BronzeFile(uri=uri, size=1, version="v", arrival_hour="2026/01/01/00").last_modified is None


# The ledger ------------------------------------------------------------------------------------------------
NOW = datetime(2026, 1, 3, 12, 7, tzinfo=UTC)


def _put(storage, hour, name, data=b"x"):
    storage.write_bytes(storage.uri(BRONZE_EVENTS_PREFIX, f"ingest_dt={hour}", name), data)


def _names(files) -> list[str]:
    return [item.uri.rsplit("/", 1)[1] for item in files]


def _run(ledger, *, now=NOW, lookback_hours=2, full_scan=False):
    listing = ledger.list_new_files(lookback_hours=lookback_hours, full_scan=full_scan, now=now, allowance=ALLOWANCE)
    ledger.repair_high_water("run", listing)
    if listing.new_files:
        ledger.commit(ledger.plan("run", listing.new_files))
    return listing


def test_a_future_ingest_folder_does_not_move_the_mark_and_later_files_are_still_processed(tmp_path):
    storage = open_lake(str(tmp_path), create=True)
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/03/11", "a.gz")
    _put(storage, "2099/01/01/00", "poison.gz")  # an object under a folder 73 years ahead
    _put(storage, "2026/01/03/12", "b.gz")  # the current hour: not in the future
    listing = _run(ledger)
    assert _names(listing.new_files) == ["a.gz", "b.gz"]
    assert _names(listing.future_files) == ["poison.gz"]
    assert ledger.committed()["high_water_hour"] == "2026/01/03/12"
    _put(storage, "2026/01/03/13", "c.gz")
    listing = _run(ledger, now=NOW + timedelta(hours=1))
    assert _names(listing.new_files) == ["c.gz"] and _names(listing.future_files) == ["poison.gz"]
    # The folder's time comes: it is processed then.
    listing = _run(ledger, now=datetime(2099, 1, 1, 0, 1, tzinfo=UTC), lookback_hours=48)
    assert _names(listing.new_files) == ["poison.gz"] and listing.future_files == []


def test_a_folder_within_the_allowance_is_not_in_the_future(tmp_path):
    storage = open_lake(str(tmp_path), create=True)
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/03/12", "now.gz")
    _put(storage, "2026/01/03/13", "soon.gz")  # starts at 13:00
    listing = _run(ledger, now=datetime(2026, 1, 3, 12, 44, 59, tzinfo=UTC))  # + 15 min = 12:59:59
    assert _names(listing.new_files) == ["now.gz"] and _names(listing.future_files) == ["soon.gz"]
    listing = _run(ledger, now=datetime(2026, 1, 3, 12, 45, tzinfo=UTC))  # + 15 min = the folder's start
    assert _names(listing.new_files) == ["soon.gz"] and listing.future_files == []


def _commit_as_before_the_fix(ledger) -> None:
    """What 363dd11 did with every file: the 2099 folder is processed and its hour becomes the mark."""
    everything = ledger.list_new_files(lookback_hours=2, full_scan=True, now=datetime(2100, 1, 1, tzinfo=UTC))
    ledger.commit(ledger.plan("old-version", everything.new_files))


def test_full_scan_repairs_a_moved_mark(tmp_path):
    """A mark moved to 2099 by an earlier version: later files are never listed until --full-scan resets it."""
    storage = open_lake(str(tmp_path), create=True)
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/01/00", "a.gz")
    _put(storage, "2099/01/01/00", "poison.gz")
    _commit_as_before_the_fix(ledger)
    assert ledger.committed()["high_water_hour"] == "2099/01/01/00"  # what the old code did
    _put(storage, "2026/01/02/00", "b.gz")  # more than the lookback before NOW
    listing = _run(ledger)
    assert listing.new_files == [] and listing.high_water_in_future == "2099/01/01/00"
    listing = _run(ledger, full_scan=True)
    assert _names(listing.new_files) == ["b.gz"]
    assert listing.repaired_high_water == ("2099/01/01/00", "2026/01/02/00")
    assert ledger.committed()["high_water_hour"] == "2026/01/02/00"
    _put(storage, "2026/01/03/11", "c.gz")
    assert _names(_run(ledger).new_files) == ["c.gz"]


def test_full_scan_repairs_the_mark_even_without_new_files(tmp_path):
    storage = open_lake(str(tmp_path), create=True)
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/01/00", "a.gz")
    _put(storage, "2099/01/01/00", "poison.gz")
    _commit_as_before_the_fix(ledger)
    listing = _run(ledger, full_scan=True)
    assert listing.new_files == [] and listing.repaired_high_water == ("2099/01/01/00", "2026/01/01/00")
    assert ledger.committed()["high_water_hour"] == "2026/01/01/00"
    assert ledger.committed()["last_batch"] == 2  # the repair is a commit of its own (an empty batch)


def test_new_files_carry_last_modified(tmp_path):
    storage = open_lake(str(tmp_path), create=True)
    _put(storage, "2026/01/03/11", "a.gz")
    (item,) = BronzeLedger(storage).list_new_files(lookback_hours=2, full_scan=False, now=NOW).new_files
    assert datetime.fromisoformat(item.last_modified) > datetime(2026, 1, 1, tzinfo=UTC)
    # and survive the pending plan
    ledger = BronzeLedger(storage)
    ledger.plan("run", [item])
    assert ledger.pending().files == [item]


def test_a_pending_plan_without_last_modified_still_loads(tmp_path):
    storage = open_lake(str(tmp_path), create=True)
    ledger = BronzeLedger(storage)
    uri = storage.uri(BRONZE_EVENTS_PREFIX, "ingest_dt=2026/01/01/00", "a.gz")
    old = {
        "batch": 1,
        "run_id": "r",
        "files": [{"uri": uri, "size": 1, "version": "1", "arrival_hour": "2026/01/01/00"}],
    }
    storage.write_text(storage.uri("_state", "bronze_ledger", "pending.json"), json.dumps(old))
    assert ledger.pending().files[0].last_modified is None


# The run report and metrics --------------------------------------------------------------------------------
def test_listing_counts_changed_and_future_files_as_metrics(tmp_path):
    from spark_jobs.run_report import RunReport
    from spark_jobs.silver_and_gold import silver_metrics
    from spark_jobs.silver_ingest import SilverOptions, list_bronze

    storage = open_lake(str(tmp_path), create=True)
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/03/11", "a.gz", b"abc")
    _run(ledger)
    _put(storage, "2026/01/03/11", "a.gz", b"abcdef")  # grown after processing
    _put(storage, "2099/01/01/00", "poison.gz")
    options = SilverOptions(fx_rates=FX_RATES, token_key=KEY, lookback_hours=2, now=NOW)
    report = RunReport(storage=storage, job="silver_and_gold", mode="stream")
    listing = list_bronze(ledger, options, report)
    assert listing.new_files == []
    assert report.counts["changed_files"] == 1 and report.counts["future_folder_files"] == 1
    assert report.details["bronze_listing"]["changed_files"][0]["current_size"] == 6
    assert report.details["bronze_listing"]["future_files"][0].endswith("poison.gz")
    metrics = silver_metrics({**_zero_counts(), "changed_files": 1, "future_folder_files": 1})
    assert metrics["ChangedBronzeFiles"] == 1 and metrics["FutureFolderFiles"] == 1


def _zero_counts() -> dict:
    names = ("records_read", "accepted", "duplicates", "quarantined", "files", "bytes_scanned")
    return dict.fromkeys(names, 0)


# Command line ----------------------------------------------------------------------------------------------
def test_now_defaults_to_the_clock_and_parses_iso(monkeypatch):
    from spark_jobs.silver_and_gold import parse_args

    assert parse_args(["--now", "2026-01-02T00:05:00Z"]).now == datetime(2026, 1, 2, 0, 5, tzinfo=UTC)
    before = datetime.now(UTC)
    assert parse_args([]).now >= before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--lookback-hours", "0", "--firehose-buffering-seconds", "300"], "shorter than the Firehose buffering"),
        (["--lookback-hours", "48", "--stream-retention-hours", "24"], "longer than the stream retention"),
    ],
)
def test_lookback_is_checked_against_buffering_and_retention(arguments, message, capsys):
    from spark_jobs.silver_and_gold import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args(arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_lookback_within_buffering_and_retention_is_accepted():
    from spark_jobs.silver_and_gold import parse_args

    args = parse_args(
        ["--lookback-hours", "24", "--stream-retention-hours", "24", "--firehose-buffering-seconds", "900"]
    )
    assert (args.lookback_hours, args.firehose_buffering_seconds) == (24, 900)


def test_serving_judges_ts_against_the_requests_receive_time(tmp_path):
    from feature_store.serving import FeatureServer, ServingRejected
    from tests.serving_fixtures import register_merchant_group

    # serving reads merchant features from the lake's online store: the groups must be registered there
    server = FeatureServer.local(register_merchant_group(tmp_path), allow_dev_key=True)
    record = line(event_id="served-future", ts=Raw(str(LATEST_ACCEPTED + 1)))
    with pytest.raises(ServingRejected) as rejected:
        server.serve(record, received_at=ARRIVAL)
    assert rejected.value.reason == FUTURE_TIMESTAMP
    served = server.serve(line(event_id="served-now", ts=Raw(str(LATEST_ACCEPTED))), received_at=ARRIVAL)
    assert served.event_id == "served-now"
    with pytest.raises(ServingRejected) as rejected:  # default: received now
        server.serve(line(event_id="served-2099", ts=Raw("4070908800")))
    assert rejected.value.reason == FUTURE_TIMESTAMP
