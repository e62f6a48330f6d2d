"""Unit tests of the silver transforms on small hand-written DataFrames."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import functions as F

from spark_jobs import silver
from spark_jobs.bronze_contract import FramingLimits, load_fx_rates
from spark_jobs.card_numbers import DEVELOPMENT_TOKEN_KEY_HEX

PAYLOAD_SCHEMA = (
    "event_id string, card_id string, ts_us long, merchant_id string, amount decimal(18,4), currency string, "
    "country string, pos_mode string, card_last4 string, card_token string, source_file string, line_number long"
)


def _row(event_id, source_file, line_number, *, amount="10.0000", card_token=None, ts_us=1_767_225_600_000_000):
    return (
        event_id,
        "c1",
        ts_us,
        "m1",
        Decimal(amount),
        "EUR",
        "DE",
        "chip",
        None,
        card_token,
        source_file,
        line_number,
    )


def test_classify_first_seen_wins_and_compares_payload_by_value(spark):
    # e9 is only in silver: never part of the batch's outcomes.
    known = spark.createDataFrame([_row("e1", "s3://b/f0", 7), _row("e9", "s3://b/f0", 8)], PAYLOAD_SCHEMA)
    batch = spark.createDataFrame(
        [
            _row("e1", "s3://b/f0", 7),  # the silver row itself: a resumed batch
            _row("e1", "s3://b/f2", 1),  # same payload as silver: duplicate
            _row("e1", "s3://b/f2", 2, amount="11"),  # different amount: conflict
            _row("e2", "s3://b/f2", 5),  # first of e2 in (file, line) order
            _row("e2", "s3://b/f1", 9, card_token="t"),  # earlier file wins even with a later line number
            _row("e3", "s3://b/f3", 1, amount="10.5"),
            _row("e3", "s3://b/f3", 2, amount="10.5000"),  # equal by value
            _row("e4", "s3://b/f3", 3),  # seen once: inserted without ranking
        ],
        PAYLOAD_SCHEMA,
    )
    repeated = silver.repeated_event_ids(silver.event_id_counts(batch), known)
    assert sorted(r.event_id for r in repeated.collect()) == ["e1", "e2", "e3"]
    # Once in the batch and once in silver repeats too, whether silver's ids are broadcast or joined.
    once = batch.where("event_id = 'e1' AND line_number = 1")
    for broadcast_known in (True, False):
        repeated_once = silver.repeated_event_ids(silver.event_id_counts(once), known, broadcast_known=broadcast_known)
        assert [r.event_id for r in repeated_once.collect()] == ["e1"]
    ranked_all = silver.classify_valid_records(batch, known)
    ranked_repeated = silver.classify_valid_records(batch, known, repeated_ids=repeated)
    outcomes = {
        (r.event_id, r.source_file, r.line_number): (r.outcome, r.conflict_detail) for r in ranked_all.collect()
    }
    assert {
        (r.event_id, r.source_file, r.line_number): (r.outcome, r.conflict_detail) for r in ranked_repeated.collect()
    } == outcomes
    assert outcomes == {
        ("e1", "s3://b/f0", 7): ("noop", None),
        ("e1", "s3://b/f2", 1): ("duplicate", None),
        ("e1", "s3://b/f2", 2): ("conflicting_duplicate", "field=amount value=11.0000 first_seen=s3://b/f0:7"),
        ("e2", "s3://b/f1", 9): ("insert", None),
        ("e2", "s3://b/f2", 5): ("conflicting_duplicate", "field=card_token value=null first_seen=s3://b/f1:9"),
        ("e3", "s3://b/f3", 1): ("insert", None),
        ("e3", "s3://b/f3", 2): ("duplicate", None),
        ("e4", "s3://b/f3", 3): ("insert", None),
    }


def test_ingest_date_from_firehose_path(spark):
    frame = spark.createDataFrame(
        [("s3://b/p/bronze/streaming/card_authorization/ingest_dt=2026/01/31/23/f.gz",), ("s3://b/other/f.gz",)],
        "source_file string",
    )
    result = frame.select(silver.ingest_date_of(F.col("source_file")).alias("d")).collect()
    assert [row.d for row in result] == [date(2026, 1, 31), None]


def test_silver_rows_derive_event_time_and_day_in_utc(spark):
    batch = spark.createDataFrame([_row("e1", "s3://b/f", 1, ts_us=1_767_225_599_999_999)], PAYLOAD_SCHEMA).withColumns(
        {
            "ts": F.lit(Decimal("1767225599.999999")).cast("decimal(16,6)"),
            "amount_usd": F.lit(Decimal("10.8000000000")).cast("decimal(30,10)"),
        }
    )
    rows = silver.silver_rows(batch, run_id="r", ingested_at=datetime(2026, 1, 2))
    assert rows.schema.fieldNames() == silver.SILVER_SCHEMA.fieldNames()
    row = rows.collect()[0]
    assert row.dt == date(2025, 12, 31)  # 23:59:59.999999 UTC, whatever the machine's zone
    assert row.event_ts == datetime(2025, 12, 31, 23, 59, 59, 999999)


def test_parse_bronze_files_lays_out_accepted_rejected_and_file_rows(spark):
    content = b'{"event_id":"e1","card_id":"c","ts":1767225600.5,"merchant_id":"m","amount":1,"currency":"USD",'
    content += b'"country":"US","pos_mode":"chip","card_number":"4111111111111111"}\n\n[1]\n'
    files, read_file = planned_files(spark, {"file:///x/ingest_dt=2026/01/01/00/f": content})
    parsed = silver.parse_bronze_files(
        files,
        read_file=read_file,
        fx_rates=load_fx_rates("currency,usd_rate\nUSD,1.0\n"),
        token_key=bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX),
    )
    rows = {row.kind: row for row in parsed.collect()}
    assert rows["accepted"].source_file == "file:///x/ingest_dt=2026/01/01/00/f"
    assert rows["accepted"].ts_us == 1_767_225_600_500_000 and rows["accepted"].card_last4 == "1111"
    assert rows["rejected"].line_number == 3 and rows["rejected"].reason == "malformed_json"
    assert (rows["file"].file_lines, rows["file"].file_blank_lines, rows["file"].file_records_read) == (3, 1, 2)
    assert "4111111111111111" not in str(rows)


def planned_files(spark, contents: dict[str, bytes]):
    """PLANNED_FILE_SCHEMA rows of in-memory files, and a reader of them (LakeStorage.read_planned's signature)."""
    rows = [(uri, len(data), "v1", None) for uri, data in contents.items()]

    def read_file(uri: str, *, version: str | None, max_bytes: int) -> bytes:
        if uri not in contents:
            raise FileNotFoundError(2, "No such file or directory", uri)
        return contents[uri][: max_bytes + 1]

    return spark.createDataFrame(rows, silver.PLANNED_FILE_SCHEMA), read_file


def test_a_file_that_cannot_be_read_or_is_too_large_is_quarantined_whole_and_the_others_parse(spark):
    """Each file is read inside the Python worker: a read error or a cap is that file's outcome alone."""
    good = b'{"event_id":"e1","card_id":"c","ts":1767225600,"merchant_id":"m","amount":1,"currency":"USD",'
    good += b'"country":"US","pos_mode":"chip"}\n'
    files, read_file = planned_files(spark, {"file:///b/good": good, "file:///b/big": b"x" * 1000})
    files = files.unionByName(spark.createDataFrame([("file:///b/gone", 10, "v1", None)], silver.PLANNED_FILE_SCHEMA))
    parsed = silver.parse_bronze_files(
        files,
        read_file=read_file,
        fx_rates=load_fx_rates("currency,usd_rate\nUSD,1.0\n"),
        token_key=bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX),
        limits=FramingLimits(max_file_bytes=len(good), max_line_bytes=1024),
    )
    rows = {(row.source_file, row.kind): row for row in parsed.collect()}
    assert rows[("file:///b/good", "accepted")].event_id == "e1"
    gone, big = rows[("file:///b/gone", "file")], rows[("file:///b/big", "file")]
    assert (gone.reason, gone.detail) == (
        "unreadable_file",
        "cannot read the file: FileNotFoundError: No such file or directory",
    )
    assert big.reason == "file_too_large" and "--max-file-bytes" in big.detail
    assert gone.file_records_read == big.file_records_read == 1
    assert rows[("file:///b/good", "file")].reason is None


def test_rejected_lines_include_unreadable_files(spark):
    parsed = spark.createDataFrame(
        [("file", "f1", None, "unreadable_file", "corrupt gzip"), ("file", "f2", None, None, None)],
        "kind string, source_file string, line_number long, reason string, detail string",
    )
    for field in silver.PARSED_SCHEMA:
        if field.name not in parsed.columns:
            parsed = parsed.withColumn(field.name, F.lit(None).cast(field.dataType))
    expected = spark.createDataFrame(
        [("f1", None, None, "unreadable_file", "corrupt gzip")],
        "source_file string, line_number long, raw_record string, reason string, detail string",
    )
    assert_df_equality(silver.rejected_lines(parsed), expected, ignore_nullable=True)


def _parsed(spark, path: str, lines: list[str], token_key):
    """The accepted records of one bronze file as `silver.accepted_records` gives them (parsed by the contract)."""
    from spark_jobs.bronze_contract import parse_bronze_file

    content = "".join(line + "\n" for line in lines).encode()
    result = parse_bronze_file(content, fx_rates=load_fx_rates("currency,usd_rate\nUSD,1.0\n"), token_key=token_key)
    rows = [{"kind": silver.KIND_ACCEPTED, "source_file": path, **row} for row in result.accepted_records()]
    parsed = spark.createDataFrame(
        [tuple(row.get(field.name) for field in silver.PARSED_SCHEMA) for row in rows], silver.PARSED_SCHEMA
    )
    return silver.accepted_records(parsed)


def _authorization(event_id: str, *, amount: str = "1", card_number: str = "4111111111111111") -> str:
    return (
        f'{{"event_id":"{event_id}","card_id":"c","ts":1767225600.5,"merchant_id":"m","amount":{amount},'
        f'"currency":"USD","country":"US","pos_mode":"chip","card_number":"{card_number}"}}'
    )


def test_dedupe_after_a_key_rotation_compares_under_the_stored_rows_key_version(spark):
    """Silver holds e1..e3 tokenized under version 0; the key is rotated to version 1 (version 0 still held):
    an exact re-delivery stays a duplicate, a changed payload or another card is a conflicting_duplicate, and
    new rows are stored under version 1."""
    from spark_jobs.card_numbers import CardTokenKeys, token_version

    key_0, key_1 = bytes.fromhex("00" * 16 + "01" * 16), bytes.fromhex("11" * 32)
    stored = _parsed(
        spark,
        "file:/x/ingest_dt=2026/01/01/00/f1",
        [_authorization("e1"), _authorization("e2"), _authorization("e3")],
        CardTokenKeys.single(key_0),
    )
    known = stored.select("event_id", *silver.PAYLOAD_FIELDS, "source_file", "line_number")
    assert [token_version(row.card_token) for row in known.collect()] == [0, 0, 0]

    rotated = CardTokenKeys(current=1, keys=((0, key_0), (1, key_1)))
    batch = _parsed(
        spark,
        "file:/x/ingest_dt=2026/01/02/00/f2",
        [
            _authorization("e1"),  # exact re-delivery
            _authorization("e2", amount="2"),  # changed payload
            _authorization("e3", card_number="5555555555554444"),  # another card
            _authorization("e4"),  # new event
        ],
        rotated,
    )
    for classified in (
        silver.classify_valid_records(batch, known),
        silver.classify_valid_records(
            batch, known, repeated_ids=silver.repeated_event_ids(silver.event_id_counts(batch), known)
        ),
    ):
        outcomes = {row.event_id: (row.outcome, row.conflict_detail) for row in classified.collect()}
        assert outcomes["e1"] == ("duplicate", None)
        assert outcomes["e2"][0] == "conflicting_duplicate" and outcomes["e2"][1].startswith("field=amount")
        assert outcomes["e3"][0] == "conflicting_duplicate" and outcomes["e3"][1].startswith("field=card_last4")
        assert outcomes["e4"] == ("insert", None)
    inserted = silver.silver_rows(
        classified.where(F.col("outcome") == "insert"), run_id="r", ingested_at=datetime(2026, 1, 2)
    ).collect()
    assert [(row.event_id, row.card_token) for row in inserted] == [("e4", rotated.token("4111111111111111"))]
    assert inserted[0].card_token.startswith("v1:") and " " not in inserted[0].card_token
