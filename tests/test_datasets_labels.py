"""The chargeback feed's contract (pure Python, no Spark): framing shared with bronze, every reason,
exact reported_at, and every line of a generated feed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.generator import GeneratorConfig, generate_lake, load_truth
from spark_jobs.labels import (
    BAD_TYPE,
    CARD_NUMBER_IN_FIELD,
    FIELD_TOO_LONG,
    LABEL_QUARANTINE_REASONS,
    MALFORMED_JSON,
    MISSING_FIELD,
    OUT_OF_RANGE,
    REPORTED_BEFORE_EVENT,
    UNREADABLE_FILE,
    parse_chargeback_file,
)

T0 = 1767225600  # 2026-01-01T00:00:00Z


def parse_text(text: str, *, compress: bool = True):
    data = text.encode("utf-8")
    return parse_chargeback_file(gzip.compress(data, mtime=0) if compress else data)


def test_valid_records_with_exact_reported_at_and_unknown_fields_ignored():
    result = parse_text(
        f'{{"event_id": "e1", "reported_at": {T0}}}\n'
        f'{{"reported_at": {T0}.000001, "event_id": "e2", "source": "visa"}}\n'
        f'{{"event_id": "e3", "reported_at": {T0}.5000000}}\n'  # trailing zeros do not count
        f'{{"event_id": "e4", "reported_at": 1.7672256e9}}\n'
    )
    assert [(row[0], row[1], row[2]) for row in result.accepted] == [
        (1, "e1", T0 * 1_000_000),
        (2, "e2", T0 * 1_000_000 + 1),
        (3, "e3", T0 * 1_000_000 + 500_000),
        (4, "e4", 1_767_225_600_000_000),
    ]
    assert result.rejected == [] and result.records_read == 4


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        ('{"event_id": "e1", "reported_at": 1767225600', MALFORMED_JSON, "invalid JSON"),
        ('[{"event_id": "e1", "reported_at": 1767225600}]', MALFORMED_JSON, "not an object: array"),
        ("null", MALFORMED_JSON, "not an object: null"),
        ('{"event_id": "e1", "event_id": "e2", "reported_at": 1767225600}', MALFORMED_JSON, 'duplicate key "event_id"'),
        ('{"event_id": "e1", "reported_at": NaN}', MALFORMED_JSON, "non-standard number NaN"),
        ('{"reported_at": 1767225600}', MISSING_FIELD, "field=event_id value=missing"),
        ('{"event_id": "", "reported_at": 1767225600}', MISSING_FIELD, 'field=event_id value=""'),
        ('{"event_id": null, "reported_at": 1767225600}', MISSING_FIELD, "field=event_id value=null"),
        ('{"event_id": "e1"}', MISSING_FIELD, "field=reported_at value=missing"),
        ('{"event_id": "e1", "reported_at": null}', MISSING_FIELD, "field=reported_at value=null"),
        ('{"event_id": 12345, "reported_at": 1767225600}', BAD_TYPE, "field=event_id value=12345"),
        ('{"event_id": "e1", "reported_at": "1767225600"}', BAD_TYPE, 'field=reported_at value="1767225600"'),
        ('{"event_id": "e1", "reported_at": true}', BAD_TYPE, "field=reported_at value=true"),
        ('{"event_id": ["e1"], "reported_at": 1767225600}', BAD_TYPE, 'field=event_id value=["e1"]'),
        ('{"event_id": "e1", "reported_at": 946684799}', OUT_OF_RANGE, "field=reported_at value=946684799"),
        ('{"event_id": "e1", "reported_at": 4102444800}', OUT_OF_RANGE, "field=reported_at value=4102444800"),
        ('{"event_id": "e1", "reported_at": 1767225600.0000001}', OUT_OF_RANGE, "value=1767225600.0000001"),
        ('{"event_id": "e1", "reported_at": -1}', OUT_OF_RANGE, "field=reported_at value=-1"),
        ('{"event_id": "e1", "reported_at": 1e999999999}', OUT_OF_RANGE, "value=1e999999999"),
    ],
)
def test_each_invalid_record_is_quarantined_with_its_reason(text, reason, detail):
    result = parse_text(text + "\n")
    assert result.accepted == []
    [(line_number, raw, found_reason, found_detail)] = result.rejected
    assert (line_number, raw, found_reason) == (1, text, reason)
    assert detail in found_detail


PAN = "4111111111111111"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"event_id": PAN, "reported_at": 1767225600}, "event_id"),
        ({"event_id": f"cb {PAN[:4]}-{PAN[4:8]}-{PAN[8:12]}-{PAN[12:]}", "reported_at": 1767225600}, "event_id"),
        ({"event_id": "e1", "reported_at": 1767225600, "note": f"pan {PAN}"}, "note"),
        ({"event_id": "e1", "reported_at": 1767225600, "extra": {"deep": [PAN]}}, "extra"),
        ({"event_id": "e1", "reported_at": 1767225600, PAN: True}, "************1111"),
    ],
)
def test_a_card_number_anywhere_is_card_number_in_field_with_the_line_masked(record, field):
    result = parse_text(json.dumps(record) + "\n")
    [(line_number, raw, reason, detail)] = result.rejected
    assert (line_number, reason) == (1, CARD_NUMBER_IN_FIELD) and result.accepted == []
    assert detail.startswith(f"field={field} ")
    for text in (raw, detail):
        assert PAN not in text.replace(" ", "").replace("-", "") and "1111" in text


def test_an_event_id_over_128_characters_is_field_too_long_before_any_card_number_check():
    result = parse_text(
        json.dumps({"event_id": "e" * 128, "reported_at": 1767225600})
        + "\n"
        + json.dumps({"event_id": PAN + "e" * 120, "reported_at": 1767225600})
        + "\n"
    )
    assert [row[1] for row in result.accepted] == ["e" * 128]
    [(line_number, raw, reason, detail)] = result.rejected
    assert (line_number, reason, detail) == (2, FIELD_TOO_LONG, "field=event_id length=136 max=128")
    assert PAN not in raw


def test_range_bounds_are_inclusive_at_2000_and_exclusive_at_2100():
    result = parse_text(
        '{"event_id": "a", "reported_at": 946684800}\n{"event_id": "b", "reported_at": 4102444799.999999}\n'
    )
    assert [row[1] for row in result.accepted] == ["a", "b"] and result.rejected == []


def test_framing_is_bronze_framing():
    """Blank lines count as physical lines, BOM and CRLF are stripped, plain (not gzip) files are read,
    invalid UTF-8 is malformed_json, and card numbers never reach the quarantine."""
    data = (
        b"\xef\xbb\xbf" + b'{"event_id": "e1", "reported_at": 1767225600}\r\n'
        b"\n"
        b"   \t\n"
        b'{"event_id": "e\xff", "reported_at": 1767225600}\n'
        b'{"event_id": "4111111111111111", "reported_at": true}\r\n'
        b'{"event_id": "e2", "reported_at": 1767225601}'  # no final newline
    )
    result = parse_chargeback_file(data)
    assert (result.lines, result.blank_lines, result.records_read) == (6, 2, 4)
    assert [(row[0], row[1]) for row in result.accepted] == [(1, "e1"), (6, "e2")]
    assert [(row[0], row[2]) for row in result.rejected] == [(4, MALFORMED_JSON), (5, BAD_TYPE)]
    assert "invalid UTF-8" in result.rejected[0][3]
    assert "4111111111111111" not in result.rejected[1][1] + result.rejected[1][3]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (gzip.compress(b'{"event_id": "e1", "reported_at": 1767225600}\n' * 50, mtime=0)[:40], "corrupt gzip"),
        ("\ufeff{}".encode("utf-16"), "bad encoding"),
        (b'{"event_id": "e1",\x00 "reported_at": 1767225600}\n', "NUL byte"),
    ],
)
def test_unreadable_files(data, reason):
    result = parse_chargeback_file(data)
    assert reason in result.unreadable_reason
    assert (result.lines, result.accepted, result.rejected) == (0, [], [])


def test_empty_file_has_no_records():
    result = parse_chargeback_file(b"")
    assert (result.lines, result.unreadable_reason, result.accepted, result.rejected) == (0, None, [], [])


def test_quarantine_reasons_are_the_bronze_ones_plus_reported_before_event():
    from spark_jobs.bronze_contract import QUARANTINE_REASONS

    assert set(LABEL_QUARANTINE_REASONS) - {REPORTED_BEFORE_EVENT} <= set(QUARANTINE_REASONS)
    assert {UNREADABLE_FILE, CARD_NUMBER_IN_FIELD, FIELD_TOO_LONG} <= set(LABEL_QUARANTINE_REASONS)


def test_every_line_of_a_generated_feed_has_its_intended_outcome(tmp_path: Path):
    """Generated chargebacks, repeated and unknown-event reports are accepted with the exact values;
    invalid lines are quarantined with the intended reason, except reported_before_event, which needs
    silver and is decided in Spark (see test_datasets_transforms)."""
    lake = tmp_path / "lake"
    generate_lake(GeneratorConfig(events=3000, cards=60, days=20, seed=3, bad_rate=0.05, lake_root=lake))
    truth = {(row["file"], row["line"]): row for row in load_truth(lake, "label_records")}
    seen = set()
    for path in sorted((lake / "bronze/labels/chargebacks").rglob("*.jsonl.gz")):
        relative = str(path.relative_to(lake))
        result = parse_chargeback_file(path.read_bytes())
        for line_number, event_id, reported_at_us, _raw in result.accepted:
            expected = truth[(relative, line_number)]
            seen.add((relative, line_number))
            if expected["class"] == "invalid":
                assert expected["reason"] == REPORTED_BEFORE_EVENT
            else:
                assert (event_id, reported_at_us) == (expected["event_id"], expected["reported_at"] * 1_000_000)
        for line_number, _raw, reason, _detail in result.rejected:
            seen.add((relative, line_number))
            assert truth[(relative, line_number)]["reason"] == reason
    assert seen == set(truth)
    reasons = {row.get("reason") for row in truth.values()}
    assert {MALFORMED_JSON, MISSING_FIELD, BAD_TYPE, REPORTED_BEFORE_EVENT} <= reasons


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["event_id", "reported_at", "other"]), json_values, max_size=3).map(json.dumps)
        | st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
        max_size=5,
    )
)
def test_every_line_is_accepted_blank_or_quarantined_with_a_reason(lines):
    result = parse_text("".join(line + "\n" for line in lines), compress=False)
    numbers = sorted([row[0] for row in result.accepted] + [row[0] for row in result.rejected])
    assert result.lines == len(lines)
    assert len(numbers) == result.records_read == len(lines) - result.blank_lines
    assert len(set(numbers)) == len(numbers)
    assert all(row[2] in LABEL_QUARANTINE_REASONS for row in result.rejected)
    assert all(isinstance(row[1], str) and row[1] and isinstance(row[2], int) for row in result.accepted)
