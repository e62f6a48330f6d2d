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
import pandas
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
    "stream_increment_10k_s",
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
    assert (by_name["stream_increment_10k_s"]["value"], by_name["stream_increment_10k_s"]["met"]) == (None, False)
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
    for name in ("silver", "duplicates", "quarantine", "chargebacks", "merchant_features"):
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


# Feature set v2 in the reference: brute force from the definitions, the feed, and verify's v2 checks ---------------

DAY = 86_400_000_000
HOUR = 3_600_000_000
START = 20_454 * DAY  # 2026-01-01 00:00 UTC, a Thursday


def v2_silver_rows() -> list[tuple[str, str, str, int, Decimal, str]]:
    """(event_id, card_id, merchant_id, ts_us, amount_usd, country): the nasty cases by hand, then random ones."""
    import random

    month = 30 * DAY
    rows = [
        # c1: peers at t, the 30-day boundary at exactly 30 d and 30 d + 1 µs, equal amounts (std 0), one merchant
        ("a1", "c1", "m1", START + 5 * HOUR, Decimal("10.0000000000"), "DE"),
        ("a2", "c1", "m1", START + 5 * HOUR, Decimal("10.0000000000"), "DE"),
        ("a3", "c1", "m2", START + 5 * HOUR + month, Decimal("10.0000000000"), "DE"),  # a1/a2 exactly 30 d back
        ("a4", "c1", "m1", START + 5 * HOUR + month + 1, Decimal("55.1234567890"), "FR"),  # a1/a2 out by 1 µs
        ("a5", "c1", "m1", START + 5 * HOUR + month + 1, Decimal("0.0000000001"), "FR"),  # a peer of a4
        # c2: n < 2, then two close amounts (a large mean over a tiny spread), midnight and 06:00 boundaries
        ("b1", "c2", "m3", START + 2 * DAY - 1, Decimal("100.0000000000"), "US"),
        ("b2", "c2", "m3", START + 2 * DAY, Decimal("100.0100000000"), "US"),
        ("b3", "c2", "m4", START + 2 * DAY + 6 * HOUR - 1, Decimal("100.0200000000"), "US"),
        ("b4", "c2", "m4", START + 2 * DAY + 6 * HOUR, Decimal("99999.9999999999"), "US"),
    ]
    rng = random.Random(19)
    for index in range(1500):
        amount = Decimal(rng.choice([rng.randint(1, 10**6), rng.randint(1, 10**13), 12_5000000000]))
        rows.append(
            (
                f"r{index}",
                f"k{rng.randint(1, 25)}",
                f"m{rng.randint(1, 12)}",
                START + rng.randint(0, 75) * DAY + rng.choice([0, 1, HOUR, rng.randint(0, DAY - 1)]),
                amount.scaleb(-10),
                rng.choice(["DE", "FR"]),
            )
        )
    return rows


def duckdb_silver(connection, rows) -> None:
    connection.execute(
        "CREATE TABLE silver (event_id VARCHAR, card_id VARCHAR, merchant_id VARCHAR, ts DECIMAL(16, 6), "
        "ts_us BIGINT, dt DATE, amount_usd DECIMAL(30, 10), country VARCHAR)"
    )
    connection.executemany(
        "INSERT INTO silver VALUES (?, ?, ?, CAST(? AS BIGINT) / 1000000, ?, make_timestamp(?)::DATE, ?, ?)",
        [(e, c, m, ts, ts, ts, amount, country) for e, c, m, ts, amount, country in rows],
    )


def brute_force_card_features(rows) -> dict[str, dict]:
    """V2_DESIGN.md's card and event features, event by event, straight from the words (and the z-score rounding
    documented in spark_jobs/feature_aggregations.py)."""
    import datetime as dt
    import math

    month = 30 * DAY
    expected = {}
    for event_id, card, merchant, t, amount, _ in rows:
        window = [row for row in rows if row[1] == card and t - month <= row[3] <= t]
        earlier = [row for row in window if row[3] < t]
        values = [row[4] for row in earlier]
        zscore = None
        if len(values) >= 2 and min(values) != max(values):
            n = float(len(values))
            mean = float(sum(values)) / n
            high_high = high_low = low_low = 0
            for value in values:
                high, low = divmod(int(value.scaleb(10)), 10**15)
                high_high, high_low, low_low = high_high + high * high, high_low + high * low, low_low + low * low
            squares = float(high_high) * 1e10 + (float(high_low) * 2.0) / 1e5 + float(low_low) / 1e20
            variance = squares / n - mean * mean
            zscore = (float(amount) - mean) / math.sqrt(variance) if variance > 0 else None
        moment = dt.datetime.fromtimestamp(t / 1e6, tz=dt.UTC)
        expected[event_id] = {
            "merchant_id": merchant,
            "txn_count_30d": len(window),
            "avg_amount_30d": float(sum(row[4] for row in window)) / len(window),
            "amount_zscore_30d": zscore,
            "merchant_seen_30d": int(any(row[2] == merchant for row in earlier)),
            "hour_of_day": moment.hour,
            "is_weekend": int(moment.weekday() >= 5),
            "is_night": int(moment.hour < 6),
        }
    return expected


def test_reference_card_features_v2_match_the_definitions():
    """The reference's gold SQL against a brute force of each v2 card/event feature: integers exactly, the
    z-score bit for bit (the same double operations), the 30-day mean within 1e-12."""
    from spark_jobs.feature_registry import CARD_FEATURE_NAMES

    rows = v2_silver_rows()
    connection = duckdb.connect()
    duckdb_silver(connection, rows)
    got = connection.execute(f"SELECT * FROM ({benchmark_reference.GOLD_SQL})").fetchdf().set_index("event_id")
    assert set(CARD_FEATURE_NAMES) <= set(got.columns)
    assert set(got["feature_set_version"]) == {2}
    expected = brute_force_card_features(rows)
    nulls = 0
    for event_id, features in expected.items():
        row = got.loc[event_id]
        for name, value in features.items():
            if name == "avg_amount_30d":
                assert row[name] == pytest.approx(value, rel=1e-12), (event_id, name)
            elif value is None:
                nulls += 1
                assert pandas.isna(row[name]), (event_id, name, row[name])
            else:
                assert row[name] == value, (event_id, name, row[name], value)
    assert nulls > 0 and got["amount_zscore_30d"].notna().sum() > 1000
    assert expected["a3"]["txn_count_30d"] == 3 and expected["a4"]["txn_count_30d"] == 3  # the boundary
    assert expected["a3"]["amount_zscore_30d"] is None  # std 0
    assert expected["a2"]["merchant_seen_30d"] == 0 and expected["a4"]["merchant_seen_30d"] == 0
    assert expected["b2"]["is_night"] == 1 and expected["b4"]["is_night"] == 0


def brute_force_merchant_snapshot(events, reports, last_day: int) -> dict[tuple[str, int], dict]:
    """V2_DESIGN.md's merchant snapshot, (merchant, day number) by (merchant, day number), from the words."""
    lookback, maturity = 38 * DAY, 7 * DAY
    first = min(ts // DAY for _, _, ts in events)
    last = min(max(ts // DAY for _, _, ts in events) + 1, last_day)
    rows = {}
    for merchant in sorted({m for _, m, _ in events}):
        own = [(event_id, ts) for event_id, m, ts in events if m == merchant]
        for day in range(first, last + 1):
            start = day * DAY
            if not any(start - lookback <= ts < start for _, ts in own):
                continue
            row = {}
            for window in (1, 7, 30):
                width = window * DAY
                row[f"merchant_txn_count_{window}d"] = sum(start - width <= ts < start for _, ts in own)
                matured = [(event_id, ts) for event_id, ts in own if start - maturity - width <= ts < start - maturity]
                known = sum(
                    any(e == event_id and ts <= reported < start for e, reported in reports) for event_id, ts in matured
                )
                row[f"merchant_cb_rate_{window}d"] = known / len(matured) if matured else None
            rows[(merchant, day)] = row
    return rows


def test_reference_merchant_snapshot_matches_the_definitions():
    """Report-time boundaries ±1 µs at the snapshot's start and at the event's ts, several reports for one event,
    a report before its event, a report for an unknown event, a merchant's first day and its terminal row."""
    import random

    from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES

    rng = random.Random(20)
    events = [(f"e{i}", f"m{rng.randint(1, 6)}", START + rng.randint(0, 50 * DAY)) for i in range(900)]
    events += [("lone", "m_lone", START + 3 * DAY + 5)]  # one event: rows through day + 38, then none
    reports = []
    for event_id, _, ts in rng.sample(events, 120):
        reports.append((event_id, ts + rng.choice([0, 1, DAY, rng.randint(0, 20 * DAY)])))
    for event_id, _, ts in rng.sample(events, 40):
        midnight = (ts // DAY + rng.randint(1, 12)) * DAY
        reports.append((event_id, midnight + rng.choice([-1, 0, 1])))  # known at that midnight or the next
        reports.append((event_id, ts - 1))  # before its event: never counts
    reports.append(("not-in-silver", START + DAY))
    last_day = START // DAY + 45  # the run's "now" cuts the snapshot days short of last day + 1
    connection = duckdb.connect()
    connection.execute("CREATE TABLE silver (event_id VARCHAR, merchant_id VARCHAR, ts_us BIGINT)")
    connection.executemany("INSERT INTO silver VALUES (?, ?, ?)", events)
    connection.execute("CREATE TABLE chargebacks (event_id VARCHAR, reported_at_us BIGINT)")
    connection.executemany("INSERT INTO chargebacks VALUES (?, ?)", reports)
    sql = benchmark_reference.merchant_reference.merchant_snapshot_sql(str(last_day))
    got = connection.execute(f"SELECT * FROM ({sql})").fetchdf()
    assert list(got.columns[3:9]) == list(MERCHANT_FEATURE_NAMES)
    expected = brute_force_merchant_snapshot(events, reports, last_day)
    got_rows = {}
    for record in got.to_dict("records"):
        day = record["snapshot_start_us"] // DAY
        assert record["day"].toordinal() - 719163 == day  # 1970-01-01 is ordinal 719163
        got_rows[(record["merchant_id"], day)] = {
            name: (None if pandas.isna(value) else value)
            for name, value in record.items()
            if name in MERCHANT_FEATURE_NAMES  # NaN: null
        }
    assert got_rows.keys() == expected.keys()
    for key, row in expected.items():
        for name, value in row.items():
            assert got_rows[key][name] == (pytest.approx(value, rel=1e-12) if value else value), (key, name)
    assert ("m_lone", START // DAY + 4) in got_rows and ("m_lone", START // DAY + 3) not in got_rows
    assert sum(value is not None and value > 0 for row in expected.values() for value in row.values()) > 100


CHARGEBACK_LINES = [  # (line, valid?)
    ('{"event_id": "e1", "reported_at": 1767225600}', True),
    ('{"event_id": "e2", "reported_at": 1767225600.123456, "note": "late"}', True),
    ('{"reported_at": 1.7672256e9, "event_id": "e3"}', True),  # an exponent: a number all the same
    ('  {"event_id": "e4", "reported_at": 946684800}\t', True),
    ('{"event_id": "e5", "reported_at": 4102444799.999999}', True),
    ('{"event_id": "caf\\u00e9", "reported_at": 1767225600}', True),
    ('{"event_id": "e6", "reported_at": 1767225600.1234567}', False),  # 7 decimal places
    ('{"event_id": "e7", "reported_at": 946684799.999999}', False),
    ('{"event_id": "e8", "reported_at": 4102444800}', False),
    ('{"event_id": "e9", "reported_at": "1767225600"}', False),
    ('{"event_id": "f1", "reported_at": true}', False),
    ('{"event_id": "f2", "reported_at": null}', False),
    ('{"event_id": "", "reported_at": 1767225600}', False),
    ('{"event_id": 17, "reported_at": 1767225600}', False),
    ('{"event_id": "f3", "event_id": "f3", "reported_at": 1767225600}', False),  # duplicate key
    ('{"event_id": "f4", "reported_at": NaN}', False),
    ('{"event_id": "\\ud800", "reported_at": 1767225600}', False),  # lone surrogate
    ('[{"event_id": "f5", "reported_at": 1767225600}]', False),
    ('{"event_id": "f6", "reported_at": 1767225600', False),
    ('{"event_id": "' + "x" * 129 + '", "reported_at": 1767225600}', False),  # field_too_long
    ('{"event_id": "' + "x" * 128 + '", "reported_at": 1767225600}', True),
    ('{"event_id": "4111111111111111", "reported_at": 1767225600}', False),  # card_number_in_field
    ('{"event_id": "f7", "reported_at": 1767225600, "memo": {"pan": "4111 1111 1111 1111"}}', False),
    ('{"event_id": "f8", "reported_at": 1767225600, "4111-1111-1111-1111": 1}', False),
    ('{"event_id": "f9", "reported_at": 1767225600, "memo": "4111111111111112"}', True),  # Luhn fails
    ('{"event_id": "g1", "reported_at": 1767225600, "memo": "order-4111111111111111"}', True),  # glued
    ("", False),
    ("null", False),
]


def write_chargeback_feed(root: Path) -> Path:
    folder = root / "bronze/labels/chargebacks/reported_dt=2026/01/01"
    folder.mkdir(parents=True)
    text = "\n".join(line for line, _ in CHARGEBACK_LINES) + "\n"
    (folder / "a.jsonl.gz").write_bytes(gzip.compress(text.encode("utf-8")))
    (folder / "b.jsonl").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))  # plain, CRLF
    (folder / "c-invalid-utf8").write_bytes(b'{"event_id": "\xff", "reported_at": 1767225600}\n')
    (folder / "_ignored").write_text(CHARGEBACK_LINES[0][0])
    (root / "bronze/labels/chargebacks/outside.jsonl").write_text(CHARGEBACK_LINES[0][0])
    return folder


def test_reference_reads_the_chargeback_feed_as_the_contract_does(tmp_path):
    """The reference's own reading of the feed keeps exactly the valid records: the hand-marked expectation,
    and spark_jobs/labels.py's contract (accepted lines), file by file."""
    from spark_jobs.labels import parse_chargeback_file

    folder = write_chargeback_feed(tmp_path)
    connection = duckdb.connect()
    connection.execute(benchmark_reference.LUHN_MACRO)
    for macro in benchmark_reference.CARD_NUMBER_MACROS:
        connection.execute(macro)
    benchmark_reference.merchant_reference.build_chargebacks(connection, tmp_path, 2, benchmark_reference.feed_lines)
    got = {
        (file.rsplit("/", 1)[1], line): (event_id, reported)
        for file, line, event_id, reported in connection.execute("SELECT * FROM chargebacks").fetchall()
    }
    valid_lines = [number for number, (_, valid) in enumerate(CHARGEBACK_LINES, 1) if valid]
    assert {key for key in got} == {(name, number) for name in ("a.jsonl.gz", "b.jsonl") for number in valid_lines}
    assert got[("a.jsonl.gz", 2)] == ("e2", 1767225600123456) and got[("b.jsonl", 3)] == ("e3", 1767225600000000)
    contract = {}
    for path in sorted(folder.iterdir()):
        if not path.name.startswith("_"):
            for line, event_id, reported, _ in parse_chargeback_file(path.read_bytes()).accepted:
                contract[(path.name, line)] = (event_id, reported)
    assert got == contract


@pytest.fixture(scope="module")
def v2_lake(tmp_path_factory):
    """A small generated lake (40 days: matured merchant rates), the reference built on it, and a fake "Spark"
    lake holding the reference's tables as Delta tables, so verify can be checked without Spark."""
    from devtools.generator import GeneratorConfig, generate_lake

    root = tmp_path_factory.mktemp("v2")
    lake = root / "lake"
    generate_lake(GeneratorConfig(events=4000, cards=80, days=40, seed=5, lake_root=lake, overwrite=True))
    reference = root / "reference"
    benchmark_reference.build(
        lake, reference, fx_rates=benchmark_reference.DEFAULT_FX_RATES, threads=2, chunk_files=200
    )
    return reference


SPARK_TABLES = {
    "gold": "gold/card_features",
    "silver": "silver/card_transactions",
    "quarantine": "silver/quarantine",
    "duplicates": "silver/duplicates",
    "chargebacks": "silver/chargebacks",
    "merchant_features": "gold/merchant_features",
}


def fake_spark_lake(reference: Path, target: Path, changes: dict[str, str] | None = None) -> Path:
    """The reference's outputs as the Delta tables Spark writes; `changes` maps a table to the SQL that replaces
    its rows (over `t`, the reference's rows)."""
    from deltalake import write_deltalake

    connection = duckdb.connect()
    for name, path in SPARK_TABLES.items():
        connection.execute(f"CREATE OR REPLACE VIEW t AS SELECT * FROM '{reference / name}.parquet'")
        query = (changes or {}).get(name, "SELECT * FROM t")
        if query is not None:
            write_deltalake(str(target / path), connection.sql(query).to_arrow_table())
    return target


def test_verify_passes_on_equal_v2_tables(v2_lake, tmp_path):
    reference = v2_lake
    result = benchmark_reference.verify(fake_spark_lake(reference, tmp_path / "spark"), reference)
    assert result["equal"] is True, result
    assert result["spark_chargebacks"] > 10
    assert result["merchant_features_rows"]["spark"] == result["merchant_features_rows"]["reference"] > 100


FIRST = "row_number() OVER (ORDER BY event_id) = 1"
FIRST_RATE = "row_number() OVER (ORDER BY merchant_cb_rate_30d IS NULL, merchant_id, day) = 1"  # a row with a rate
V2_CORRUPTIONS = {  # name: (table, SQL over t, what verify must report)
    "txn_count_30d": (
        "gold",
        f"SELECT * REPLACE (txn_count_30d + ({FIRST})::INT AS txn_count_30d) FROM t",
        ("gold_mismatches", {"txn_count_30d": 1}),
    ),
    "avg_amount_30d": (
        "gold",
        f"SELECT * REPLACE (CASE WHEN {FIRST} THEN avg_amount_30d * (1 + 1e-8) "
        "ELSE avg_amount_30d END AS avg_amount_30d) FROM t",
        ("gold_mismatches", {"avg_amount_30d": 1}),
    ),
    "amount_zscore_30d": (
        "gold",
        "SELECT * REPLACE (CASE WHEN row_number() OVER (ORDER BY amount_zscore_30d IS NULL, "
        "event_id) = 1 THEN NULL ELSE amount_zscore_30d END AS amount_zscore_30d) FROM t",
        ("gold_mismatches", {"amount_zscore_30d": 1}),
    ),
    "merchant_seen_30d": (
        "gold",
        f"SELECT * REPLACE (CASE WHEN {FIRST} THEN 1 - merchant_seen_30d "
        "ELSE merchant_seen_30d END AS merchant_seen_30d) FROM t",
        ("gold_mismatches", {"merchant_seen_30d": 1}),
    ),
    "hour_of_day": (
        "gold",
        f"SELECT * REPLACE ((hour_of_day + ({FIRST})::INT) % 24 AS hour_of_day) FROM t",
        ("gold_mismatches", {"hour_of_day": 1}),
    ),
    "is_weekend": (
        "gold",
        f"SELECT * REPLACE (CASE WHEN {FIRST} THEN 1 - is_weekend ELSE is_weekend END AS is_weekend) FROM t",
        ("gold_mismatches", {"is_weekend": 1}),
    ),
    "is_night": (
        "gold",
        f"SELECT * REPLACE (CASE WHEN {FIRST} THEN 1 - is_night ELSE is_night END AS is_night) FROM t",
        ("gold_mismatches", {"is_night": 1}),
    ),
    "gold merchant_id": (
        "gold",
        f"SELECT * REPLACE (CASE WHEN {FIRST} THEN 'other' ELSE merchant_id END AS merchant_id) FROM t",
        ("gold_mismatches", {"merchant_id": 1}),
    ),
    "chargeback time": (
        "chargebacks",
        "SELECT * REPLACE (reported_at_us + (row_number() OVER (ORDER BY source_file, "
        "line_number) = 1)::INT AS reported_at_us) FROM t",
        ("chargebacks_mismatches", {"values": 1}),
    ),
    "chargeback missing": (
        "chargebacks",
        "SELECT * FROM t ORDER BY source_file, line_number OFFSET 1",
        ("chargebacks_mismatches", {"only_reference": 1}),
    ),
    "merchant count": (
        "merchant_features",
        "SELECT * REPLACE (merchant_txn_count_7d + (row_number() OVER "
        "(ORDER BY merchant_id, day) = 1)::INT AS merchant_txn_count_7d) FROM t",
        ("merchant_features_mismatches", {"merchant_txn_count_7d": 1}),
    ),
    "merchant rate": (
        "merchant_features",
        f"SELECT * REPLACE (CASE WHEN {FIRST_RATE} THEN merchant_cb_rate_30d "
        "+ 1e-6 ELSE merchant_cb_rate_30d END AS merchant_cb_rate_30d) FROM t",
        ("merchant_features_mismatches", {"merchant_cb_rate_30d": 1}),
    ),
    "merchant row missing": (
        "merchant_features",
        "SELECT * FROM t ORDER BY merchant_id, day OFFSET 1",
        ("merchant_features_mismatches", {"only_reference": 1}),
    ),
    "merchant table missing": ("merchant_features", None, ("missing_spark_tables", ["gold/merchant_features"])),
}


@pytest.mark.parametrize("corruption", list(V2_CORRUPTIONS))
def test_verify_reports_a_wrong_v2_value(v2_lake, tmp_path, corruption):
    """One value of a v2 table changed (or a row/table missing): verify is not equal and names it."""
    reference = v2_lake
    table, query, (section, expected) = V2_CORRUPTIONS[corruption]
    spark_lake = fake_spark_lake(reference, tmp_path / "spark", {table: query})
    result = benchmark_reference.verify(spark_lake, reference)
    assert result["equal"] is False
    assert result[section] == expected, result


def test_reference_compares_every_v2_column():
    """Every card feature is one of gold's compared columns; every merchant feature is compared."""
    from spark_jobs.feature_registry import CARD_FEATURE_NAMES

    compared = {
        *benchmark_reference.GOLD_INTEGERS,
        *benchmark_reference.GOLD_DECIMALS,
        *benchmark_reference.GOLD_DOUBLES,
    }
    assert compared == set(CARD_FEATURE_NAMES)
    assert "merchant_id" in benchmark_reference.GOLD_KEYS


def test_cached_lakes_are_keyed_on_the_generator_version(tmp_path, monkeypatch):
    """A lake is reused only by the same arguments and the same generator code; a generator change regenerates."""
    from devtools.benchmark import lakes
    from devtools.benchmark.options import BenchmarkOptions

    code = tmp_path / "generator"
    code.mkdir()
    (code / "events.py").write_text("RATE = 1\n")
    monkeypatch.setattr(lakes, "GENERATOR_CODE", code)
    options = BenchmarkOptions(work_dir=tmp_path / "work", output_dir=tmp_path / "out")
    first_version = lakes.generator_version()
    root, first = lakes.generated_lake(options, events=300, cards=10, days=1)
    assert first["reused"] is False and first["generator_version"] == first_version
    assert (root / "_generator" / "complete").read_text().strip() == first_version
    _, again = lakes.generated_lake(options, events=300, cards=10, days=1)
    assert again["reused"] is True
    (code / "events.py").write_text("RATE = 2\n")  # the generator changed: the cached lake is stale
    assert lakes.generator_version() != first_version
    _, changed = lakes.generated_lake(options, events=300, cards=10, days=1)
    assert changed["reused"] is False and changed["generator_version"] == lakes.generator_version()


def test_comparison_divides_out_the_load_the_shared_steps_measure(tmp_path):
    """The v1/v2 comparison's verdict is on the load-normalized ratio: v1 ran under twice the load (its shared
    bronze → silver steps took twice as long), so v2's 150 s against v1's 200 s is 1.5x, not 0.75x."""
    from devtools.benchmark import compare
    from devtools.benchmark.options import BenchmarkOptions

    def run(wall: float, shared: float, gold: float) -> dict:
        steps = {"parse_bronze": shared / 2, "deduplicate": shared / 2, "gold_compute": gold}
        return {
            "wall_seconds": wall,
            "wall_seconds_with_startup": wall + 10,
            "cpu_seconds": wall,
            "peak_rss_bytes": 1,
            "startup_seconds": 10,
            "peak_pss_bytes": 1,
            "steps": steps,
        }

    result = {
        "runs": {"v1": [run(200, 160, 40)], "v2": [run(150, 80, 70)]},
        "limit": 1.3,
        "load_average": {"before": [0, 0, 0]},
    }
    compare._summarize(result, BenchmarkOptions(work_dir=tmp_path, output_dir=tmp_path))
    assert result["ratio"]["wall_seconds"] == 0.75
    assert result["load_calibration"]["baseline_over_this"] == 2.0
    assert result["ratio"]["wall_seconds_load_normalized"] == 1.5
    assert result["met"] is False
