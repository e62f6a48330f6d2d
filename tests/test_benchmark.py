"""The benchmark at a tiny size (the JSON's shape, the targets list, the equality verification) and the DuckDB
reference's validation against the bronze contract on hand-written nasty lines. No test asserts a time."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from devtools.benchmark import reference as benchmark_reference
from devtools.benchmark import report as benchmark_report
from spark_jobs.bronze_contract import load_fx_rates, parse_bronze_file
from spark_jobs.bronze_ledger import MAX_FIREHOSE_BUFFERING, BronzeFile, arrival_hour_of, arrival_time
from spark_jobs.card_numbers import DEVELOPMENT_TOKEN_KEY_HEX, card_token
from spark_jobs.storage import LocalStorage

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_NAMES = [
    "full_build_5m_vs_duckdb",
    "full_build_5m_peak_rss_gb",
    "stream_increment_2h_over_h",
    "records_per_batch_write",
    "online_lookup_p99_ms",
    "serving_compute_p99_ms",
    "serving_http_p99_ms",
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One tiny benchmark run (full build, feature store ingest and lookups; the stream stage needs four
    Spark jobs and is left to `make bench`)."""
    root = tmp_path_factory.mktemp("bench")
    output = root / "out"
    command = [
        sys.executable,
        str(REPO_ROOT / "scripts" / "benchmark.py"),
        "--events",
        "3000",
        "--days",
        "3",
        "--events-per-card",
        "30",
        "--repeat",
        "1",
        "--lookups",
        "300",
        "--serving-requests",
        "60",
        "--skip",
        "stream",
        "--spark-master",
        "local[2]",
        "--work-dir",
        str(root / "work"),
        "--output-dir",
        str(output),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {
        "root": root,
        "output": output,
        "stdout": result.stdout,
        "results": json.loads((output / "results.json").read_text()),
    }


@pytest.mark.slow
def test_results_json_has_the_targets_and_the_verification_passed(bench):
    results = bench["results"]
    assert results["schema_version"] == 1
    assert {"machine", "versions", "load_average", "settings", "full_build", "targets"} <= set(results)
    assert results["machine"]["logical_cores"] >= 1 and results["machine"]["memory_gib"] > 0
    assert results["versions"]["pyspark"] == "3.5.6"
    assert len(results["load_average"]["before"]) == 3

    assert [target["name"] for target in results["targets"]] == TARGET_NAMES
    for target in results["targets"]:
        assert set(target) == {"name", "value", "limit", "unit", "met"}
        assert isinstance(target["met"], bool)
    by_name = {target["name"]: target for target in results["targets"]}
    assert by_name["stream_increment_2h_over_h"]["value"] is None  # skipped stage: reported, not met
    assert by_name["stream_increment_2h_over_h"]["met"] is False
    for name in ("full_build_5m_vs_duckdb", "full_build_5m_peak_rss_gb", "records_per_batch_write"):
        assert by_name[name]["value"] > 0
    assert by_name["online_lookup_p99_ms"]["value"] > 0
    assert by_name["serving_compute_p99_ms"]["value"] > 0 and by_name["serving_http_p99_ms"]["value"] > 0

    (size,) = results["full_build"]["sizes"]
    assert size["events"] == 3000
    verification = size["verification"]
    assert verification["equal"] is True, verification
    assert verification["spark_gold_rows"] == verification["reference_gold_rows"] == 3000
    assert verification["counts_equal"] is True
    for engine in ("spark", "duckdb"):
        median = size[engine]["median"]
        assert median["wall_seconds"] > 0 and median["peak_rss_bytes"] > 0
    assert size["spark"]["median"]["startup_seconds"] > 0
    assert size["spark"]["median"]["wall_seconds_with_startup"] >= size["spark"]["median"]["wall_seconds"]

    ingest = results["feature_store_ingest"]
    assert ingest["mode"] == "initial" and ingest["records"] == 3000
    assert ingest["records_per_batch_write"] == pytest.approx(ingest["records"] / ingest["batch_write_calls"])
    assert results["online_lookup"]["lookups"] == 300
    assert "target full_build_5m_vs_duckdb" in bench["stdout"]


@pytest.mark.slow
def test_docs_keep_the_text_outside_the_markers(bench, tmp_path):
    (tmp_path / "README.md").write_text(
        f"# Benchmarks\n\nhand-written intro\n\n{benchmark_report.README_START}\nold\n{benchmark_report.README_END}\n"
        "\n## Tuning\nkept\n"
    )
    benchmark_report.write_docs(bench["results"], tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "hand-written intro" in text and "## Tuning\nkept" in text and "\nold\n" not in text
    assert "`full_build_5m_vs_duckdb`" in text and "| 3,000 |" in text
    assert (tmp_path / "scaling.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_verification_notices_a_changed_feature(bench, tmp_path):
    (size,) = bench["results"]["full_build"]["sizes"]
    reference = bench["root"] / "work" / "reference" / Path(size["run_root"]).name
    tampered = tmp_path / "reference"
    tampered.mkdir()
    connection = duckdb.connect()
    for name in ("silver", "duplicates", "quarantine"):
        connection.execute(
            f"COPY (SELECT * FROM read_parquet('{reference / name}.parquet')) TO '{tampered / name}.parquet'"
        )
    connection.execute(
        f"""COPY (SELECT * REPLACE (CASE WHEN row_number() OVER (ORDER BY event_id) = 1
                  THEN txn_count_24h + 1 ELSE txn_count_24h END AS txn_count_24h)
                  FROM read_parquet('{reference}/gold.parquet')) TO '{tampered}/gold.parquet'"""
    )
    result = benchmark_reference.verify(Path(size["run_root"]), tampered)
    assert result["equal"] is False
    assert result["gold_mismatches"] == {"txn_count_24h": 1}


# The reference's SQL validation against the contract ------------------------------------------------------

VALID = {  # raw JSON text of each value
    "event_id": '"e0"',
    "card_id": '"card_1"',
    "ts": "1767225600.5",
    "merchant_id": '"mer_1"',
    "amount": "12.50",
    "currency": '"EUR"',
    "country": '"DE"',
    "pos_mode": '"chip"',
}


def q(text: str) -> str:
    return f'"{text}"'


def line(event_id: str, **changes: str | None) -> str:
    """A record as JSON text: VALID with `changes` (raw JSON text; None drops the field)."""
    fields = {**VALID, "event_id": q(event_id), **changes}
    return "{" + ", ".join(f'"{key}": {value}' for key, value in fields.items() if value is not None) + "}"


# card_number_in_field and field_too_long, plain lines that the reference's SQL decides (no escape, no nesting)
PAN_AND_LENGTH_LINES = [
    line("p1", card_id=q("4111111111111111")),  # card_number_in_field
    line("p2", merchant_id=q("m 4111 1111 1111 1111")),  # card_number_in_field
    line("p3", note=q("paid 3782-822463-10005, thanks")),  # card_number_in_field: an extra field
    line("p4").replace('{"event_id"', '{"4111111111111111": 1, "event_id"'),  # card_number_in_field: a key
    line("p5", card_id=q("order-4111111111111111")),  # glued through a dash: valid
    line("p6", card_id=q("4111111111111112"), card_number=q("4111111111111111")),  # Luhn fails: valid
    line("p7", card_id=q("c" * 129)),  # field_too_long
    line("p8", currency=q("EUR" * 6)),  # field_too_long
    line("p9", card_id=q("é" * 128), merchant_id=q("🂡" * 128)),  # characters, not bytes: valid
    line("q1", card_id=q("4111111111111111"), amount="-5"),  # card_number_in_field before the amount rules
]
PAN_AND_LENGTH_REASONS = {"card_number_in_field": 5, "field_too_long": 2}

NASTY_LINES = [
    line("a1"),
    line("a2", card_number=q("4111111111111111")),
    line("a3", card_number=q("4111111111111112")),  # Luhn
    line("a4", card_number=q("")),
    line("a5", card_number="123"),  # a number: bad type
    line("a6", card_number="null"),
    line("a7", ts="1.7672256005e9"),  # exponents: judged by the contract
    line("a8", amount="1250e-2"),
    line("a9", ts="1.7672256001234567e9"),
    line("b1", ts="1767225600.1234560000"),
    line("b2", ts="1767225600.1234567"),
    line("b3", ts="946684799.999999"),
    line("b4", ts="946684800"),
    line("b5", ts="4102444799.999999"),
    line("b6", ts="4102444800"),
    # The lake's folder is ingest_dt=2026/01/01/00: arrival 01:15 (the job's default 900 s of buffering), plus
    # the 15-minute allowance, so ts 1767231000 (01:30) is the latest accepted (b5 above is future_timestamp).
    line("f1", ts="1767231000"),
    line("f2", ts="1767231000.000001"),
    line("f3", ts="1.7672310001e9"),  # an exponent: judged by the contract, with the file's arrival
    line("b7", ts="-1767225600"),
    line("b8", amount=q("12.50")),
    line("b9", amount="true"),
    line("c1", amount="NaN"),
    line("c2", amount="0.00"),
    line("c3", amount="-0.01"),
    line("c4", amount="-0"),
    line("c5", amount="-0.00001"),
    line("c6", amount="100000000000000"),
    line("c7", amount="99999999999999.9999"),
    line("c8", amount="0.12340"),
    line("c9", currency=q("usd")),
    line("d1", country=q("ÜS")),
    line("d2", pos_mode=q("chip ")),
    line("d3", country=q("us")),
    line("d4", merchant_id=q("")),
    line("d5", merchant_id="null"),
    line("d6", ts=None),
    line("d7", ts=q("")),
    line("d8", card_id="123"),
    line("d9", delivery_attempt="2"),
    line("e1", nested='{"ts": 5, "list": [1, 2]}'),
    line("e2", note=q("a,}b")),
    line("e3", merchant_id=q("caf\\u00e9")),
    line("e4", merchant_id=q("\\ud800")),
    line("e5")[:-1] + ', "amount": 3}',  # duplicate key
    line("e6")[:-1] + ", }",  # trailing comma
    "[" + line("e7") + "]",
    "42",
    "null",
    '"text"',
    "{}",
    "",
    "  \t ",
    "   " + line("e8") + "\t ",
    "\ufeff" + line("e9"),  # a BOM at the start of a line (stripped)
    "\ufeff\ufeff" + line("f1"),  # two: the second is not
    line("f2").replace('{"event_id"', '{"t\\u0073": 1, "event_id"'),  # an escaped extra key
    line("f3").replace('"ts": ', '"t\\u0073": '),  # the key ts, escaped
    line("f4", amount="1E+2"),
    line("f5", ts="1767225600", amount="7"),
    line("a1", amount="13.50"),  # a conflicting re-delivery of a1
    line("a2", card_number=q("4111111111111111")).replace(", ", ","),  # an exact one of a2
    "\x0c" + line("f6"),
    *PAN_AND_LENGTH_LINES,
]


def write_lake(root: Path) -> Path:
    folder = root / benchmark_reference.BRONZE_PREFIX / "ingest_dt=2026/01/01/00"
    folder.mkdir(parents=True)
    text = "\n".join(NASTY_LINES) + "\n"
    (folder / "a-plain").write_bytes(text.encode("utf-8"))
    (folder / "b-gzip-no-suffix").write_bytes(gzip.compress(text.replace("\n", "\r\n").encode("utf-8")))
    (folder / "c-invalid-utf8.gz").write_bytes(
        gzip.compress(line("g1").encode() + b"\n" + b'{"event_id": "\xff\xfe"}\n' + line("g2").encode())
    )
    (folder / "d-truncated.gz").write_bytes(gzip.compress(text.encode())[:-30])
    (folder / "e-nul").write_bytes(line("h1").encode() + b"\n\x00\n")
    (folder / "f-utf16").write_bytes("\ufeff".encode("utf-16-le") + line("h2").encode("utf-16-le"))
    (folder / ".ignored").write_bytes(line("h3").encode())
    (folder / "g-empty").write_bytes(b"")
    (root / benchmark_reference.BRONZE_PREFIX / "outside-hour-folders").write_bytes(line("h4").encode())
    return folder


def planned_file(path: Path) -> BronzeFile:
    """The file as the job's listing plans it (local storage: the mtime is its LastModified)."""
    uri = "file://" + str(path.resolve())
    stored = next(
        item for item in LocalStorage(str(path.parent)).list_files(f"file://{path.parent}") if item.uri == uri
    )
    return BronzeFile(uri, stored.size, stored.version, arrival_hour_of(uri), last_modified=stored.last_modified)


def test_reference_validation_matches_the_contract_line_for_line(tmp_path):
    folder = write_lake(tmp_path / "lake")
    output = tmp_path / "reference"
    report = benchmark_reference.build(
        tmp_path / "lake", output, fx_rates=benchmark_reference.DEFAULT_FX_RATES, threads=2, chunk_files=2
    )
    rates = load_fx_rates(benchmark_reference.DEFAULT_FX_RATES)
    key = bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)  # the benchmark's jobs run with --allow-development-token-key
    expected_reasons, expected_valid = {}, {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.stat().st_size == 0:
            continue
        uri = "file://" + str(path.resolve())
        arrival = arrival_time(planned_file(path), MAX_FIREHOSE_BUFFERING)  # the job's, without the flag
        result = parse_bronze_file(path.read_bytes(), fx_rates=rates, token_key=key, arrival=arrival)
        if result.unreadable_reason:
            expected_reasons[(uri, None)] = "unreadable_file"
        for row in result.rejected_records():
            expected_reasons[(uri, row["line_number"])] = row["reason"]
        for row in result.accepted_records():
            expected_valid[(uri, row["line_number"])] = row

    connection = duckdb.connect()
    quarantine = connection.execute(f"SELECT source_file, line_number, reason FROM '{output}/quarantine.parquet'")
    got_reasons = {(file, number): reason for file, number, reason in quarantine.fetchall()}
    conflicts = {place for place, reason in got_reasons.items() if reason == "conflicting_duplicate"}
    assert {place: reason for place, reason in got_reasons.items() if place not in conflicts} == expected_reasons
    # b5, f2 and f3 in the two readable copies of NASTY_LINES (plain and gzip)
    assert sum(reason == "future_timestamp" for reason in expected_reasons.values()) == 6
    for reason, count in PAN_AND_LENGTH_REASONS.items():
        assert sum(got == reason for got in expected_reasons.values()) == 2 * count, reason

    silver = connection.execute(
        f"SELECT source_file, line_number, event_id, ts_us, ts, amount, amount_usd, card_last4, card_token "
        f"FROM '{output}/silver.parquet'"
    ).fetchall()
    duplicates = {
        (file, number)
        for file, number in connection.execute(
            f"SELECT source_file, line_number FROM '{output}/duplicates.parquet'"
        ).fetchall()
    }
    assert {(file, number) for file, number, *_ in silver} | duplicates | conflicts == set(expected_valid)
    for file, number, event_id, ts_us, ts, amount, amount_usd, last4, token in silver:
        expected = expected_valid[(file, number)]
        assert (event_id, ts_us, ts, amount, amount_usd, last4, token) == (
            expected["event_id"],
            expected["ts_us"],
            expected["ts"],
            expected["amount"],
            expected["amount_usd"],
            expected["card_last4"],
            expected["card_token"],
        )
    # every event id once in silver; the first seen (file a, then b) wins; b's copies are duplicates/conflicts
    assert len({row[2] for row in silver}) == len(silver)
    assert all(file.endswith("/a-plain") for file, _, event_id, *_ in silver if event_id in {"a1", "a2", "e8"})
    a2 = next(row for row in silver if row[2] == "a2")
    assert a2[7:] == ("1111", card_token("4111111111111111", key))
    assert report["counts"]["judged_by_contract"] > 0
    assert report["counts"]["unreadable_files"] == 3
    assert next(row for row in silver if row[2] == "c7")[5] == Decimal("99999999999999.9999")


def test_reference_sql_decides_card_numbers_in_fields_and_lengths_itself(tmp_path):
    folder = tmp_path / "lake" / benchmark_reference.BRONZE_PREFIX / "ingest_dt=2026/01/01/00"
    folder.mkdir(parents=True)
    (folder / "pan-and-lengths").write_text("\n".join(PAN_AND_LENGTH_LINES) + "\n", encoding="utf-8")
    output = tmp_path / "reference"
    report = benchmark_reference.build(
        tmp_path / "lake", output, fx_rates=benchmark_reference.DEFAULT_FX_RATES, threads=1, chunk_files=1
    )
    assert report["counts"]["judged_by_contract"] == 0  # not one line handed to the Python contract
    reasons = dict(
        duckdb.connect()
        .execute(f"SELECT reason, count(*) FROM '{output}/quarantine.parquet' GROUP BY reason")
        .fetchall()
    )
    assert reasons == PAN_AND_LENGTH_REASONS
    assert report["counts"]["accepted"] == len(PAN_AND_LENGTH_LINES) - sum(PAN_AND_LENGTH_REASONS.values())


def test_reference_applies_the_size_caps_as_the_contract_does(tmp_path, monkeypatch):
    """A gzip bomb, long lines (valid and invalid UTF-8, blank) and files over the cap: the reference's framing
    gives the contract's file_too_large and line_too_long (caps lowered on both sides, as --max-*-bytes would)."""
    from spark_jobs.bronze_contract import FramingLimits

    limits = FramingLimits(max_file_bytes=64 * 1024, max_line_bytes=1024)
    monkeypatch.setattr(benchmark_reference, "MAX_FILE_BYTES", limits.max_file_bytes)
    monkeypatch.setattr(benchmark_reference, "MAX_LINE_BYTES", limits.max_line_bytes)
    folder = tmp_path / "lake" / benchmark_reference.BRONZE_PREFIX / "ingest_dt=2026/01/01/00"
    folder.mkdir(parents=True)
    long_text = "\n".join([line("l1"), line("l2", merchant_id=q("m" * 2000)), " " * 1500, line("l3")]) + "\n"
    (folder / "a-long-lines.gz").write_bytes(gzip.compress(long_text.encode()))
    (folder / "b-long-invalid-utf8").write_bytes(b"\xff" * 1500 + b"\n" + line("l4").encode() + b"\r\n")
    (folder / "c-bomb.gz").write_bytes(gzip.compress(b"\n" * (limits.max_file_bytes + 1)))
    (folder / "d-plain-too-large").write_bytes((line("l5") + "\n").encode() * 1000)
    (folder / "e-two-members.gz").write_bytes(gzip.compress(b"\n" * 40_000) + gzip.compress(b"\n" * 40_000))
    output = tmp_path / "reference"
    benchmark_reference.build(
        tmp_path / "lake", output, fx_rates=benchmark_reference.DEFAULT_FX_RATES, threads=2, chunk_files=2
    )
    rates = load_fx_rates(benchmark_reference.DEFAULT_FX_RATES)
    key = bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)
    expected = {}
    for path in sorted(folder.iterdir()):
        uri = "file://" + str(path.resolve())
        result = parse_bronze_file(path.read_bytes(), fx_rates=rates, token_key=key, limits=limits)
        if result.file_reason:
            expected[(uri, None)] = result.file_reason
        expected.update({(uri, row["line_number"]): row["reason"] for row in result.rejected_records()})
    got = duckdb.connect().execute(f"SELECT source_file, line_number, reason FROM '{output}/quarantine.parquet'")
    assert {(file, number): reason for file, number, reason in got.fetchall()} == expected
    assert sorted(expected.values()) == ["file_too_large"] * 3 + ["line_too_long"] * 3
