"""The storage layer (local and S3 through moto) and the bronze ledger's planning rules."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from spark_jobs.bronze_ledger import BronzeLedger, arrival_hour_of, is_ignored_name
from spark_jobs.lake import BRONZE_EVENTS_PREFIX
from spark_jobs.storage import LocalStorage, S3Storage, canonical_uri, open_lake


def test_canonical_uri_forms(tmp_path):
    local = tmp_path / "a b" / "f.gz"
    assert canonical_uri(str(local)) == "file://" + str(local)
    assert canonical_uri("file:" + str(local)) == "file://" + str(local)
    assert canonical_uri("file:///x/ingest_dt%3D2026/a%20b") == "file:///x/ingest_dt=2026/a b"
    assert canonical_uri("s3a://bucket/key/x") == "s3://bucket/key/x"


def _exercise(storage):
    storage.write_json(storage.uri("_state", "x.json"), {"a": 1})
    assert storage.read_json(storage.uri("_state", "x.json")) == {"a": 1}
    assert storage.read_json(storage.uri("_state", "missing.json"), {"d": 0}) == {"d": 0}
    for hour in ("2026/01/01/23", "2026/01/02/00", "2026/01/02/01"):
        storage.write_bytes(storage.uri(BRONZE_EVENTS_PREFIX, f"ingest_dt={hour}", "f1.gz"), b"abc")
    prefix = storage.uri(BRONZE_EVENTS_PREFIX)
    listed = [item.uri for item in storage.list_files(prefix)]
    assert listed == sorted(listed) and len(listed) == 3
    after = [item.uri for item in storage.list_files(prefix, start_after=f"{prefix}/ingest_dt=2026/01/02/00")]
    assert [arrival_hour_of(uri) for uri in after] == ["2026/01/02/00", "2026/01/02/01"]
    storage.append_lines(storage.uri("_runs", "log.jsonl"), ["one", "two"])
    storage.append_lines(storage.uri("_runs", "log.jsonl"), ["three"])
    assert storage.read_text(storage.uri("_runs", "log.jsonl")) == "one\ntwo\nthree\n"
    storage.delete(storage.uri("_state", "x.json"))
    assert not storage.exists(storage.uri("_state", "x.json"))


def test_local_storage(tmp_path):
    storage = open_lake(str(tmp_path / "lake"), create=True)
    assert isinstance(storage, LocalStorage)
    _exercise(storage)


def test_s3_storage_with_moto():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="lake")
        _exercise(S3Storage("s3://lake/prefix", client=client))


def test_a_missing_local_lake_is_refused_unless_created(tmp_path):
    """A mistyped --lake-root must not become a new empty lake."""
    from spark_jobs.storage import LakeNotFoundError

    missing = tmp_path / "no-such-lake"
    with pytest.raises(LakeNotFoundError, match=f"--lake-root {missing}: no lake at {missing} .*--create-lake"):
        open_lake(str(missing))
    assert not missing.exists()
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LakeNotFoundError, match="is not a folder"):
        open_lake(str(tmp_path / "a-file"))
    assert isinstance(open_lake(str(missing), create=True), LocalStorage) and missing.is_dir()
    assert open_lake(str(missing)).root == f"file://{missing}"


def test_unsupported_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="only local folders and s3://"):
        open_lake("gs://bucket/x")


def test_ignored_names():
    prefix = "s3://b/bronze/streaming/card_authorization"
    assert is_ignored_name(f"{prefix}/ingest_dt=2026/01/01/00/_SUCCESS", prefix)
    assert is_ignored_name(f"{prefix}/ingest_dt=2026/01/01/00/.tmp-1.gz", prefix)
    assert is_ignored_name(f"{prefix}/_temporary/0/x.gz", prefix)
    assert not is_ignored_name(f"{prefix}/ingest_dt=2026/01/01/00/a_b.gz", prefix)


def _put(storage, hour, name, data=b"x"):
    storage.write_bytes(storage.uri(BRONZE_EVENTS_PREFIX, f"ingest_dt={hour}", name), data)


def test_ledger_plans_new_files_once_and_resumes_pending(tmp_path):
    storage = open_lake(str(tmp_path))
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/01/00", "b.gz")
    _put(storage, "2026/01/01/00", "a.gz")
    _put(storage, "2026/01/01/00", "_SUCCESS")
    storage.write_bytes(storage.uri(BRONZE_EVENTS_PREFIX, "manual", "c.gz"), b"x")

    listing = ledger.list_new_files(lookback_hours=48, full_scan=False)
    assert [item.uri.rsplit("/", 1)[1] for item in listing.new_files] == ["a.gz", "b.gz"]
    assert len(listing.ignored) == 1 and listing.outside_hour_folders == 1
    plan = ledger.plan("run-1", listing.new_files)
    assert plan.batch == 1

    # A crash before commit: the next run resumes the same batch, and lists the files as still new.
    resumed = ledger.pending()
    assert resumed and resumed.batch == 1 and resumed.files == plan.files and resumed.resumed
    ledger.commit(resumed)
    assert ledger.pending() is None
    assert ledger.committed()["high_water_hour"] == "2026/01/01/00"
    assert ledger.list_new_files(lookback_hours=48, full_scan=False).new_files == []

    # --full-scan finds the file outside the hour folders.
    full = ledger.list_new_files(lookback_hours=48, full_scan=True)
    assert [item.arrival_hour for item in full.new_files] == ["unpartitioned"]


def test_ledger_lists_only_from_high_water_minus_lookback(tmp_path):
    storage = open_lake(str(tmp_path))
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/01/00", "old.gz")
    _put(storage, "2026/01/03/00", "new.gz")
    ledger.commit(ledger.plan("run-1", ledger.list_new_files(lookback_hours=1, full_scan=False).new_files))
    # A late file lands in an old hour folder outside the lookback: not listed, found by a full scan.
    _put(storage, "2026/01/01/00", "late.gz")
    _put(storage, "2026/01/02/23", "recent.gz")
    listing = ledger.list_new_files(lookback_hours=1, full_scan=False)
    assert listing.listed_from == "2026/01/02/23"
    assert [item.uri.rsplit("/", 1)[1] for item in listing.new_files] == ["recent.gz"]
    assert listing.listed_files == 2  # recent.gz and new.gz: the old folder is never listed
    full = ledger.list_new_files(lookback_hours=1, full_scan=True)
    assert sorted(item.uri.rsplit("/", 1)[1] for item in full.new_files) == ["late.gz", "recent.gz"]


def test_ledger_reports_changed_files(tmp_path):
    storage = open_lake(str(tmp_path))
    ledger = BronzeLedger(storage)
    _put(storage, "2026/01/01/00", "a.gz", b"abc")
    ledger.commit(ledger.plan("run-1", ledger.list_new_files(lookback_hours=48, full_scan=False).new_files))
    _put(storage, "2026/01/01/00", "a.gz", b"abcdef")
    listing = ledger.list_new_files(lookback_hours=48, full_scan=False)
    assert listing.new_files == []
    assert listing.changed[0]["processed_size"] == 3 and listing.changed[0]["current_size"] == 6
