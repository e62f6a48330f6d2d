"""A poison file never blocks the pipeline (issue 17): decompressed-size and line-length caps in the framing,
per-file read failures as quarantine outcomes, and a resumed batch whose inputs changed is re-planned.

Pure Python (no Spark): the framing caps through `parse_bronze_file`, reading a planned file through the storage
layer, and the ledger's re-plan. The Spark job's side is in tests/test_silver_job.py.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from spark_jobs.bronze_contract import (
    FILE_TOO_LARGE,
    LINE_TOO_LONG,
    QUARANTINE_REASONS,
    FramingLimits,
    frame_file,
    load_fx_rates,
    parse_bronze_file,
)
from spark_jobs.bronze_ledger import DELETED_VERSION, BronzeLedger
from spark_jobs.card_numbers import DEVELOPMENT_TOKEN_KEY_HEX
from spark_jobs.lake import BRONZE_EVENTS_PREFIX
from spark_jobs.storage import FileChangedError, S3Storage, open_lake

REPO = Path(__file__).resolve().parents[1]
FX_RATES = load_fx_rates(REPO / "spark_jobs" / "reference_data" / "fx_rates.csv")
KEY = bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)
MIB = 1024 * 1024


def record(event_id: str, **fields: object) -> str:
    values = {
        "event_id": event_id,
        "card_id": "card-1",
        "ts": 1767225600,
        "merchant_id": "m-1",
        "amount": 12.5,
        "currency": "EUR",
        "country": "SG",
        "pos_mode": "chip",
    }
    return json.dumps(values | fields, ensure_ascii=False)


def gzip_bomb(decompressed_bytes: int, fill: bytes = b"\n") -> bytes:
    """A gzip member of `decompressed_bytes` repeated `fill` bytes, compressed in chunks (never held whole)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = fill * (MIB // len(fill))
    parts = [compressor.compress(chunk) for _ in range(decompressed_bytes // len(chunk))]
    return b"".join([*parts, compressor.flush()])


def parse(data: bytes, limits: FramingLimits | None = None):
    return parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY, limits=limits)


# --- decompressed-size cap ---------------------------------------------------------------------------------


def test_the_new_reasons_are_contract_reasons():
    assert {FILE_TOO_LARGE, LINE_TOO_LONG} <= set(QUARANTINE_REASONS)
    assert (FILE_TOO_LARGE, LINE_TOO_LONG) == ("file_too_large", "line_too_long")


def test_a_gzip_bomb_is_file_too_large_and_decompression_stops_at_the_cap():
    bomb = gzip_bomb(50 * MIB)  # 50 MiB of newlines in about 50 KB
    assert len(bomb) < 100_000
    limits = FramingLimits(max_file_bytes=MIB, max_line_bytes=64 * 1024)
    tracemalloc.start()
    try:
        result = parse(bomb, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.file_reason, result.records_read, result.lines) == (FILE_TOO_LARGE, 0, 0)
    assert "over the 1048576-byte limit" in result.unreadable_reason and "--max-file-bytes" in result.unreadable_reason
    assert peak < 4 * MIB, f"decompression materialized {peak} bytes for a 1 MiB cap"


def test_a_gzip_bomb_over_the_default_cap_is_file_too_large():
    """With the default limits (no argument): 300 MiB of NUL bytes is refused for its size, in bounded memory."""
    bomb = gzip_bomb(300 * MIB, fill=b"\0")
    tracemalloc.start()
    try:
        result = parse_bronze_file(bomb, fx_rates=FX_RATES, token_key=KEY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.file_reason == FILE_TOO_LARGE, result.unreadable_reason
    assert peak <= FramingLimits().max_file_bytes + 16 * MIB


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_file_at_the_cap_is_read_and_one_byte_more_is_too_large(compress):
    text = (record("a") + "\n").encode()
    limits = FramingLimits(max_file_bytes=len(text), max_line_bytes=1024)
    for data, expected in ((text, None), (text + b"\n", FILE_TOO_LARGE)):
        payload = gzip.compress(data) if compress else data
        result = parse(payload, limits)
        assert result.file_reason == expected
        assert result.accepted.event_id == ([] if expected else ["a"])


def test_multi_member_gzip_counts_every_member_against_the_cap():
    member = gzip.compress((record("a") + "\n").encode())
    size = len(gzip.decompress(member))
    limits = FramingLimits(max_file_bytes=3 * size, max_line_bytes=1024)
    assert parse(member * 3, limits).records_read == 3
    assert parse(member * 3 + b"\0" * 8, limits).records_read == 3  # zero padding after the last member
    assert parse(member * 4, limits).file_reason == FILE_TOO_LARGE
    assert parse(member + b"junk", limits).unreadable_reason.startswith("corrupt gzip: ")
    assert parse(member[:-4], limits).unreadable_reason.startswith("corrupt gzip: ")


def test_framing_reports_the_cap_for_the_chargeback_feed_too():
    framed = frame_file(gzip_bomb(4 * MIB), FramingLimits(max_file_bytes=MIB, max_line_bytes=1024))
    assert (framed.file_reason, framed.lines) == (FILE_TOO_LARGE, [])


# --- line-length cap ----------------------------------------------------------------------------------------


def test_a_line_over_the_cap_is_line_too_long_and_the_rest_of_the_file_proceeds():
    limits = FramingLimits(max_file_bytes=MIB, max_line_bytes=400)
    long_line = record("long", merchant_id="m" * 300 + " 4111111111111111 " + "x" * 200)
    data = "\n".join([record("a"), long_line, "", record("b", currency="XXX"), record("c")]).encode()
    result = parse(data, limits)
    assert result.accepted.event_id == ["a", "c"]
    assert (result.lines, result.blank_lines, result.records_read) == (5, 1, 4)
    rows = list(result.rejected_records())
    assert [(row["line_number"], row["reason"]) for row in rows] == [(2, LINE_TOO_LONG), (4, "unknown_currency")]
    too_long = rows[0]
    assert too_long["detail"] == f"line is {len(long_line.encode())} bytes, over the 400-byte limit (--max-line-bytes)"
    assert too_long["raw_record"].startswith('{"event_id": "long"') and too_long["raw_record"].endswith("…")
    assert len(too_long["raw_record"]) <= 201
    assert "4111111111111111" not in json.dumps(rows)


def test_the_line_cap_counts_utf8_bytes_without_the_line_break_cr_and_bom():
    text = record("é", merchant_id="€" * 10)
    size = len(text.encode())
    assert size > len(text)
    at_cap = FramingLimits(max_file_bytes=MIB, max_line_bytes=size)
    assert parse(b"\xef\xbb\xbf" + text.encode() + b"\r\n", at_cap).accepted.event_id == ["é"]
    below = FramingLimits(max_file_bytes=MIB, max_line_bytes=size - 1)
    assert [row["reason"] for row in parse(text.encode() + b"\n", below).rejected_records()] == [LINE_TOO_LONG]


def test_a_long_line_of_invalid_utf8_or_whitespace_is_line_too_long_too():
    limits = FramingLimits(max_file_bytes=MIB, max_line_bytes=300)
    data = b"\xff" * 301 + b"\n" + b" " * 301 + b"\n" + record("a").encode()
    result = parse(data, limits)
    assert result.accepted.event_id == ["a"]
    assert [(row["line_number"], row["reason"]) for row in result.rejected_records()] == [
        (1, LINE_TOO_LONG),
        (2, LINE_TOO_LONG),
    ]
    assert (result.blank_lines, result.records_read) == (0, 3)


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_line_bytes"):
        FramingLimits(max_file_bytes=10, max_line_bytes=0)
    with pytest.raises(ValueError, match="max_file_bytes"):
        FramingLimits(max_file_bytes=0, max_line_bytes=10)


# --- reading a planned file through the storage layer --------------------------------------------------------


def _bronze(storage, hour: str, name: str, data: bytes) -> str:
    uri = storage.uri(BRONZE_EVENTS_PREFIX, f"ingest_dt={hour}", name)
    storage.write_bytes(uri, data)
    return uri


def test_local_planned_read_refuses_a_deleted_or_changed_file(tmp_path):
    storage = open_lake(str(tmp_path), create=True)
    uri = _bronze(storage, "2026/01/01/00", "a.gz", b"abc")
    [planned] = storage.list_files(storage.uri(BRONZE_EVENTS_PREFIX))
    assert storage.read_planned(uri, version=planned.version, max_bytes=10) == b"abc"
    assert storage.read_planned(uri, version=None, max_bytes=1) == b"ab"  # at most max_bytes + 1
    Path(uri[len("file://") :]).write_bytes(b"abcd")
    with pytest.raises(FileChangedError, match="changed since the batch was planned"):
        storage.read_planned(uri, version=planned.version, max_bytes=10)
    storage.delete(uri)
    with pytest.raises(FileNotFoundError):
        storage.read_planned(uri, version=planned.version, max_bytes=10)


def test_s3_planned_read_pins_the_planned_etag():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="lake")
        storage = S3Storage("s3://lake/prefix", client=client)
        uri = _bronze(storage, "2026/01/01/00", "a.gz", b"abc")
        [planned] = storage.list_files(storage.uri(BRONZE_EVENTS_PREFIX))
        assert storage.read_planned(uri, version=planned.version, max_bytes=10) == b"abc"
        assert storage.read_planned(uri, version=None, max_bytes=1) == b"ab"
        storage.write_bytes(uri, b"other bytes")
        with pytest.raises(FileChangedError, match="changed since the batch was planned"):
            storage.read_planned(uri, version=planned.version, max_bytes=100)
        storage.delete(uri)
        with pytest.raises(FileNotFoundError):
            storage.read_planned(uri, version=planned.version, max_bytes=10)


def test_s3_storage_pickles_without_its_client():
    """Spark ships the storage to its Python workers: the boto3 client stays behind and is made again there."""
    import pickle

    storage = S3Storage("s3://lake/prefix", client=object(), endpoint_url="http://x", region="eu-west-1")
    copy = pickle.loads(pickle.dumps(storage))
    assert (copy.root, copy._endpoint_url, copy._region, copy._client) == (
        "s3://lake/prefix",
        "http://x",
        "eu-west-1",
        None,
    )


# --- a resumed batch whose inputs changed is re-planned ----------------------------------------------------


def _planned_ledger(tmp_path, inputs: dict):
    storage = open_lake(str(tmp_path), create=True)
    ledger = BronzeLedger(storage)
    for name in ("a.gz", "b.gz", "c.gz"):
        _bronze(storage, "2026/01/01/00", name, name.encode())
    listing = ledger.list_new_files(lookback_hours=48, full_scan=False)
    plan = ledger.plan("run-1", listing.new_files, inputs=inputs)
    return storage, ledger, plan


INPUTS = {"fx_rates_sha256": "aaa", "token_key_id": "k0", "framing_limits": {"max_file_bytes": 1, "max_line_bytes": 1}}


def test_a_resumed_batch_with_unchanged_inputs_is_resumed_as_planned(tmp_path):
    _, ledger, plan = _planned_ledger(tmp_path, INPUTS)
    pending = ledger.pending()
    assert pending.inputs == INPUTS
    resumed, changes = ledger.replan_if_changed(pending, run_id="run-2", inputs=INPUTS)
    assert changes is None and resumed.files == plan.files and resumed.batch == plan.batch


def test_a_resumed_batch_whose_files_or_reference_data_changed_is_re_planned(tmp_path):
    storage, ledger, plan = _planned_ledger(tmp_path, INPUTS)
    by_name = {item.uri.rsplit("/", 1)[1]: item for item in plan.files}
    _bronze(storage, "2026/01/01/00", "a.gz", b"a new object version")  # overwritten
    storage.delete(by_name["b.gz"].uri)  # deleted
    new_inputs = INPUTS | {"fx_rates_sha256": "bbb"}

    replanned, changes = ledger.replan_if_changed(ledger.pending(), run_id="run-2", inputs=new_inputs)
    assert changes is not None
    assert changes.changed_files == [by_name["a.gz"].uri] and changes.deleted_files == [by_name["b.gz"].uri]
    assert changes.changed_inputs == {"fx_rates_sha256": {"planned": "aaa", "now": "bbb"}}
    assert replanned.batch == plan.batch and replanned.run_id == "run-2" and replanned.resumed
    now = {item.uri.rsplit("/", 1)[1]: item for item in replanned.files}
    assert now["a.gz"].size == len(b"a new object version") and now["a.gz"].version != by_name["a.gz"].version
    # kept, marked deleted: reading it quarantines it (unreadable_file), a later resume does not report it again
    assert now["b.gz"] == replace(by_name["b.gz"], version=DELETED_VERSION)
    assert now["c.gz"] == by_name["c.gz"]
    # The re-plan is persisted: the next resume sees no change.
    again = ledger.pending()
    assert again.inputs == new_inputs and again.files == replanned.files
    assert ledger.replan_if_changed(again, run_id="run-3", inputs=new_inputs)[1] is None


def test_a_pending_batch_from_before_the_inputs_were_recorded_is_re_planned_once(tmp_path):
    storage, ledger, plan = _planned_ledger(tmp_path, INPUTS)
    pending_uri = ledger._state_uri("pending.json")
    document = storage.read_json(pending_uri)
    del document["inputs"]
    storage.write_json(pending_uri, document)
    replanned, changes = ledger.replan_if_changed(ledger.pending(), run_id="run-2", inputs=INPUTS)
    assert changes is not None and changes.changed_inputs == {
        name: {"planned": None, "now": INPUTS[name]} for name in INPUTS
    }
    assert replanned.files == plan.files
    assert ledger.replan_if_changed(ledger.pending(), run_id="run-3", inputs=INPUTS)[1] is None
