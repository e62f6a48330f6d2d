"""Bronze contract v1: framing, every rule and reason, exact numbers, masking, and generated lines."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from spark_jobs.bronze_contract import (
    ACCEPTED_COLUMNS,
    CONTRACT_FIELDS,
    POS_MODES,
    QUARANTINE_REASONS,
    REJECTED_COLUMNS,
    TS_MAX_EXCLUSIVE,
    TS_MIN,
    BronzeFileParse,
    load_fx_rates,
    parse_bronze_file,
)
from spark_jobs.card_numbers import DEVELOPMENT_TOKEN_KEY_HEX, card_token, luhn_valid

REPO = Path(__file__).resolve().parents[1]
FX_RATES = load_fx_rates(REPO / "spark_jobs" / "reference_data" / "fx_rates.csv")
KEY = bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)
VISA = "4111111111111111"
ABSENT = object()


class Raw(str):
    """A JSON fragment written into a line as is (numbers exactly as typed, NaN, bad syntax)."""


BASE = {
    "event_id": "e-0001",
    "card_id": "card-1",
    "ts": Raw("1767225600.123456"),
    "merchant_id": "m-1",
    "amount": Raw("12.50"),
    "currency": "EUR",
    "country": "SG",
    "pos_mode": "chip",
    "card_number": VISA,
}


def line(**fields: object) -> str:
    """A compact JSON line: BASE with `fields` replaced (ABSENT removes a field, Raw writes text as is)."""
    merged = {**BASE, **fields}
    return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in merged.items() if v is not ABSENT) + "}"


def _json(value: object) -> str:
    return value if isinstance(value, Raw) else json.dumps(value, ensure_ascii=False)


def parse(*lines: str | bytes, end: bytes = b"\n", arrival: datetime | None = None) -> BronzeFileParse:
    data = b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + end for x in lines)
    return parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY, arrival=arrival)


def outcome(text: str | bytes, arrival: datetime | None = None) -> tuple:
    """("accepted", row) or (reason, detail) for a one-line file (arriving at `arrival`: see parse_bronze_file)."""
    result = parse(text, arrival=arrival)
    assert result.records_read == 1
    accepted, rejected = list(result.accepted_records()), list(result.rejected_records())
    assert len(accepted) + len(rejected) == 1
    return ("accepted", accepted[0]) if accepted else (rejected[0]["reason"], rejected[0]["detail"])


def all_output_text(result: BronzeFileParse) -> str:
    return repr([list(result.accepted_records()), list(result.rejected_records()), result.unreadable_reason])


# --- a valid line -----------------------------------------------------------------------------------


def test_valid_line_is_accepted_with_exact_values() -> None:
    status, row = outcome(line())
    assert status == "accepted"
    assert row == {
        "line_number": 1,
        "event_id": "e-0001",
        "card_id": "card-1",
        "ts": Decimal("1767225600.123456"),
        "ts_us": 1767225600123456,
        "merchant_id": "m-1",
        "amount": Decimal("12.5000"),
        "currency": "EUR",
        "amount_usd": Decimal("13.5"),
        "country": "SG",
        "pos_mode": "chip",
        "card_last4": "1111",
        "card_token": card_token(VISA, KEY),
    }
    assert str(row["ts"]) == "1767225600.123456" and str(row["amount"]) == "12.5000"
    assert list(row) == list(ACCEPTED_COLUMNS)


def test_card_number_is_optional_and_null_counts_as_absent() -> None:
    for text in (line(card_number=ABSENT), line(card_number=None)):
        status, row = outcome(text)
        assert status == "accepted"
        assert (row["card_last4"], row["card_token"]) == (None, None)


@pytest.mark.parametrize("pos_mode", POS_MODES)
@pytest.mark.parametrize("currency", sorted(FX_RATES))
def test_every_currency_and_pos_mode_is_accepted_and_converted_exactly(currency: str, pos_mode: str) -> None:
    status, row = outcome(line(currency=currency, pos_mode=pos_mode, amount=Raw("99999999999999.9999")))
    assert status == "accepted"
    assert row["amount_usd"] == Decimal("99999999999999.9999") * FX_RATES[currency]  # exact at this precision
    assert row["amount_usd"].as_tuple().exponent >= -10


def test_amount_usd_is_exact_where_a_float_is_not() -> None:
    status, row = outcome(line(amount=Raw("0.1"), currency="JPY"))
    assert status == "accepted"
    assert row["amount_usd"] == Decimal("0.00067")


def test_extra_fields_are_ignored_even_when_odd() -> None:
    text = line(note="x", nested=Raw('{"a":1,"a":[true,null,{"b":"' + VISA[:12] + '"}]}'), ts_us=Raw("5"))
    status, row = outcome(text)
    assert status == "accepted" and row["ts_us"] == 1767225600123456


def test_unicode_strings_are_kept_and_escapes_decoded() -> None:
    status, row = outcome(line(merchant_id="Café ☕ 東京 😀", card_id=Raw('"caf\\u00e9-\\ud83d\\ude00"')))
    assert status == "accepted"
    assert row["merchant_id"] == "Café ☕ 東京 😀" and row["card_id"] == "café-😀"


# --- framing ----------------------------------------------------------------------------------------


def test_line_numbers_blank_lines_crlf_and_bom() -> None:
    data = (
        b"\xef\xbb\xbf" + line(event_id="a").encode() + b"\r\n"  # BOM on the file, CRLF
        b"\r\n"  # empty after CR strip: blank
        b" \t \r\n"  # whitespace only: blank
        b"\xef\xbb\xbf" + line(event_id="b").encode() + b"\n"  # BOM on a later line (concatenated files)
        b"\n" + line(event_id="c").encode()  # last line without a newline still counts
    )
    result = parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY)
    assert (result.lines, result.blank_lines, result.records_read) == (6, 3, 3)
    assert result.accepted.line_number == [1, 4, 6]
    assert result.accepted.event_id == ["a", "b", "c"]
    assert not result.rejected.line_number


def test_trailing_newline_is_not_a_line_and_empty_file_has_none() -> None:
    assert parse(line()).lines == 1
    empty = parse_bronze_file(b"", fx_rates=FX_RATES, token_key=KEY)
    assert (empty.lines, empty.records_read, empty.unreadable_reason) == (0, 0, None)
    only_newlines = parse_bronze_file(b"\n\n", fx_rates=FX_RATES, token_key=KEY)
    assert (only_newlines.lines, only_newlines.blank_lines, only_newlines.records_read) == (2, 2, 0)


def test_gzip_is_detected_by_magic_whatever_the_name() -> None:
    plain = (line(event_id="a") + "\n\n" + line(event_id="b") + "\n").encode()
    for data in (gzip.compress(plain), gzip.compress(plain[:50]) + gzip.compress(plain[50:])):  # 1 or 2 members
        result = parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY)
        assert result.accepted.event_id == ["a", "b"]
        assert (result.lines, result.blank_lines) == (3, 1)


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(line().encode())[:-6],  # truncated
        gzip.compress(line().encode())[:12] + b"garbage" * 3,  # corrupt deflate stream
        b"\x1f\x8b" + line().encode(),  # gzip magic, then text
        gzip.compress(line().encode()) + b"trailing junk",
    ],
)
def test_corrupt_gzip_makes_the_whole_file_unreadable(data: bytes) -> None:
    result = parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY)
    assert result.unreadable_reason is not None and result.unreadable_reason.startswith("corrupt gzip: ")
    assert (result.lines, result.records_read, len(result.accepted), len(result.rejected)) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (line().encode("utf-16"), "UTF-16 or UTF-32 byte order mark"),
        (line().encode("utf-32"), "UTF-16 or UTF-32 byte order mark"),
        (line().encode("utf-16-be"), "NUL byte at offset 0"),
        (line().encode() + b"\n" + b'{"a":"\x00"}\n', "NUL byte at offset"),
    ],
)
def test_bad_encoding_makes_the_whole_file_unreadable(data: bytes, detail: str) -> None:
    result = parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY)
    assert result.unreadable_reason is not None and detail in result.unreadable_reason
    assert result.records_read == 0 and not result.accepted.line_number and not result.rejected.line_number


def test_invalid_utf8_spoils_only_its_own_line() -> None:
    bad = line(merchant_id="m-\udcff").encode("utf-8", "surrogateescape")  # a lone 0xFF byte
    result = parse(line(event_id="a"), bad, line(event_id="c"))
    assert result.accepted.event_id == ["a", "c"]
    [rejected] = list(result.rejected_records())
    assert rejected["line_number"] == 2 and rejected["reason"] == "malformed_json"
    assert rejected["detail"] == f"invalid UTF-8 at byte {bad.index(bytes([0xFF]))}"
    assert "\ufffd" in rejected["raw_record"] and VISA not in rejected["raw_record"]


# --- every reason, with its exact detail --------------------------------------------------------------

CASES = [
    # malformed_json
    ("not json", '{"event_id":', "malformed_json", "invalid JSON: Expecting value at column 13"),
    ("truncated", line()[:-1], "malformed_json", "invalid JSON: Expecting ',' delimiter at column 181"),
    ("array of objects", f"[{line()}]", "malformed_json", "not an object: array"),
    ("number", "42", "malformed_json", "not an object: number"),
    ("string", '"e-0001"', "malformed_json", "not an object: string"),
    ("null", "null", "malformed_json", "not an object: null"),
    ("boolean", "true", "malformed_json", "not an object: boolean"),
    ("duplicate key", line()[:-1] + ',"amount":1}', "malformed_json", 'duplicate key "amount"'),
    ("same key same value", line()[:-1] + ',"country":"SG"}', "malformed_json", 'duplicate key "country"'),
    ("trailing garbage", line() + " x", "malformed_json", "invalid JSON: Extra data at column 183"),
    ("two objects", line() + line(), "malformed_json", "invalid JSON: Extra data at column 182"),
    ("NaN", line(amount=Raw("NaN")), "malformed_json", "invalid JSON: non-standard number NaN"),
    ("Infinity", line(ts=Raw("Infinity")), "malformed_json", "invalid JSON: non-standard number Infinity"),
    ("-Infinity in extra", line(x=Raw("-Infinity")), "malformed_json", "invalid JSON: non-standard number -Infinity"),
    (
        "lone surrogate",
        line(merchant_id=Raw('"m-\\ud800"')),
        "malformed_json",
        "invalid JSON: lone surrogate escape (not encodable as UTF-8)",
    ),
    (
        "single quotes",
        "{'event_id':'e'}",
        "malformed_json",
        "invalid JSON: Expecting property name enclosed in double quotes at column 2",
    ),
    (
        "trailing comma",
        line()[:-1] + ",}",
        "malformed_json",
        "invalid JSON: Expecting property name enclosed in double quotes at column 182",
    ),
    (
        "raw control char",
        line(merchant_id=Raw('"m\t1"')),
        "malformed_json",
        "invalid JSON: Invalid control character at column 80",
    ),
    ("deep nesting", "[" * 5000 + "]" * 5000, "malformed_json", "invalid JSON: nesting too deep"),
    ("unterminated string", '{"a":"abc', "malformed_json", "invalid JSON: Unterminated string starting at column 6"),
    # missing_field: absent, null and empty string
    ("absent merchant_id", line(merchant_id=ABSENT), "missing_field", "field=merchant_id value=missing"),
    ("null card_id", line(card_id=None), "missing_field", "field=card_id value=null"),
    ("empty event_id", line(event_id=""), "missing_field", 'field=event_id value=""'),
    ("empty ts", line(ts=""), "missing_field", 'field=ts value=""'),
    ("empty pos_mode", line(pos_mode=""), "missing_field", 'field=pos_mode value=""'),
    ("case-sensitive key", line(event_id=ABSENT, Event_ID="e"), "missing_field", "field=event_id value=missing"),
    # bad_type
    ("amount as string", line(amount="12.50"), "bad_type", 'field=amount value="12.50"'),
    ("card_id as number", line(card_id=Raw("123")), "bad_type", "field=card_id value=123"),
    ("ts as string", line(ts="1767225600"), "bad_type", 'field=ts value="1767225600"'),
    ("ts as bool", line(ts=True), "bad_type", "field=ts value=true"),
    ("amount as bool", line(amount=False), "bad_type", "field=amount value=false"),
    ("event_id as bool", line(event_id=True), "bad_type", "field=event_id value=true"),
    ("country as array", line(country=["SG"]), "bad_type", 'field=country value=["SG"]'),
    ("pos_mode as object", line(pos_mode=Raw('{"a": 1.50}')), "bad_type", 'field=pos_mode value={"a":1.50}'),
    ("currency as number", line(currency=Raw("978")), "bad_type", "field=currency value=978"),
    ("merchant_id as float", line(merchant_id=Raw("1.0e3")), "bad_type", "field=merchant_id value=1.0e3"),
    ("card_number as number", line(card_number=Raw(VISA)), "bad_type", "field=card_number value=************1111"),
    ("card_number as bool", line(card_number=True), "bad_type", "field=card_number value=true"),
    (
        "deep array in card_id",
        line(card_id=Raw("[" * 900 + "]" * 900)),
        "bad_type",
        "field=card_id value=[[[[[[[[…]]]]]]]]",
    ),
    # out_of_range: ts
    ("ts below range", line(ts=Raw(str(TS_MIN - 1))), "out_of_range", f"field=ts value={TS_MIN - 1}"),
    ("ts at the end", line(ts=Raw(str(TS_MAX_EXCLUSIVE))), "out_of_range", f"field=ts value={TS_MAX_EXCLUSIVE}"),
    ("ts 7 places", line(ts=Raw("1767225600.1234567")), "out_of_range", "field=ts value=1767225600.1234567"),
    (
        "ts exponent 7 places",
        line(ts=Raw("1.7672256001234567e9")),
        "out_of_range",
        "field=ts value=1.7672256001234567e9",
    ),
    ("ts negative", line(ts=Raw("-1767225600")), "out_of_range", "field=ts value=-1767225600"),
    (
        "ts huge exponent",
        line(ts=Raw("1e999999999999999999999")),
        "out_of_range",
        "field=ts value=1e999999999999999999999",
    ),
    # out_of_range: amount
    ("amount 5 places", line(amount=Raw("12.34567")), "out_of_range", "field=amount value=12.34567"),
    ("amount 1e14", line(amount=Raw("100000000000000")), "out_of_range", "field=amount value=100000000000000"),
    ("amount 1E14", line(amount=Raw("1E14")), "out_of_range", "field=amount value=1E14"),
    ("amount tiny", line(amount=Raw("1e-5")), "out_of_range", "field=amount value=1e-5"),
    ("amount negative 5 places", line(amount=Raw("-0.00001")), "out_of_range", "field=amount value=-0.00001"),
    ("amount 40 digits", line(amount=Raw("1" * 40)), "out_of_range", "field=amount value=" + "1" * 40),
    # non_positive_amount
    ("amount zero", line(amount=Raw("0")), "non_positive_amount", "field=amount value=0"),
    ("amount -0", line(amount=Raw("-0")), "non_positive_amount", "field=amount value=-0"),
    ("amount 0.0000", line(amount=Raw("0.00000000")), "non_positive_amount", "field=amount value=0.00000000"),
    ("amount negative", line(amount=Raw("-12.5")), "non_positive_amount", "field=amount value=-12.5"),
    ("amount -1e20", line(amount=Raw("-1e20")), "non_positive_amount", "field=amount value=-1e20"),
    # unknown_currency: case-sensitive, never trimmed
    ("lower-case currency", line(currency="eur"), "unknown_currency", 'field=currency value="eur"'),
    ("padded currency", line(currency="EUR "), "unknown_currency", 'field=currency value="EUR "'),
    ("unlisted currency", line(currency="XAU"), "unknown_currency", 'field=currency value="XAU"'),
    # bad_enum
    ("lower-case country", line(country="sg"), "bad_enum", 'field=country value="sg"'),
    ("three-letter country", line(country="SGP"), "bad_enum", 'field=country value="SGP"'),
    ("padded country", line(country=" SG"), "bad_enum", 'field=country value=" SG"'),
    ("non-ASCII country", line(country="ÉS"), "bad_enum", 'field=country value="ÉS"'),
    ("digit country", line(country="S1"), "bad_enum", 'field=country value="S1"'),
    ("capitalised pos_mode", line(pos_mode="Chip"), "bad_enum", 'field=pos_mode value="Chip"'),
    ("unknown pos_mode", line(pos_mode="atm"), "bad_enum", 'field=pos_mode value="atm"'),
    # field_too_long: characters, not bytes; the value is not shown
    ("card_id 129 chars", line(card_id="é" * 129), "field_too_long", "field=card_id length=129 max=128"),
    ("pos_mode 17 chars", line(pos_mode="contactless-swipe"), "field_too_long", "field=pos_mode length=17 max=16"),
    # card_number_in_field: a card number in any string but the card_number value, masked in the detail
    ("card number as card_id", line(card_id=VISA), "card_number_in_field", 'field=card_id value="************1111"'),
    (
        "card number nested in an extra field",
        line(note=Raw('{"items":[1,"4111 1111 1111 1111"]}')),
        "card_number_in_field",
        'field=note value={"items":[1,"**** **** **** 1111"]}',
    ),
    (  # an unknown key is the producer's: shown like a value, masked then cut to DETAIL_VALUE_MAX_CHARS
        "card number in a 267-character extra key",
        line(**{f"{VISA} {'k' * 250}": 1}),
        "card_number_in_field",
        f"field=************1111 {'k' * 183}… value=1",
    ),
    # invalid_card_number
    ("empty card_number", line(card_number=""), "invalid_card_number", 'field=card_number value=""'),
    (
        "Luhn fails",
        line(card_number="4111111111111112"),
        "invalid_card_number",
        'field=card_number value="************1112"',  # the card_number value keeps only its last 4 digits
    ),
    ("11 digits", line(card_number="79927398713"), "invalid_card_number", 'field=card_number value="*******8713"'),
    (
        "20 digits",
        line(card_number="41111111111111111113"),
        "invalid_card_number",
        'field=card_number value="****************1113"',
    ),
    (
        "spaced digits",
        line(card_number="4111 1111 1111 1111"),
        "invalid_card_number",
        'field=card_number value="**** **** **** 1111"',
    ),
    (
        "Arabic-Indic digits",
        line(card_number="٤١١١١١١١١١١١١١١١"),
        "invalid_card_number",
        'field=card_number value="************١١١١"',
    ),
]


@pytest.mark.parametrize(("text", "reason", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_gives_its_reason_and_exact_detail(text: str, reason: str, detail: str) -> None:
    assert outcome(text) == (reason, detail)


def test_every_line_level_reason_is_covered_by_the_cases() -> None:
    # future_timestamp needs the file's arrival time (these cases pass none): tests/test_clocks.py covers it.
    # file_too_large is file-level; line_too_long needs a line over 1 MiB: tests/test_poison_files.py covers both.
    line_level = set(QUARANTINE_REASONS) - {
        "conflicting_duplicate",
        "unreadable_file",
        "future_timestamp",
        "file_too_large",
        "line_too_long",
    }
    assert {case[2] for case in CASES} == line_level


PRECEDENCE = [
    # several problems on one line: the first reason in priority order wins
    (line(merchant_id=ABSENT, amount="1"), "missing_field", "field=merchant_id value=missing"),
    (line(card_id=123, event_id=ABSENT), "missing_field", "field=event_id value=missing"),
    (line(pos_mode=None, country=""), "missing_field", 'field=country value=""'),
    (line(amount="1", ts=Raw("1")), "bad_type", 'field=amount value="1"'),
    (line(card_number=5, merchant_id=Raw("1")), "bad_type", "field=merchant_id value=1"),
    (line(ts=Raw("1"), amount=Raw("-5")), "out_of_range", "field=ts value=1"),
    (line(ts=Raw("1"), amount=Raw("1.00001")), "out_of_range", "field=ts value=1"),
    (line(amount=Raw("-5"), currency="XXX"), "non_positive_amount", "field=amount value=-5"),
    (line(currency="XXX", country="sg"), "unknown_currency", 'field=currency value="XXX"'),
    (line(pos_mode="atm", country="sg"), "bad_enum", 'field=country value="sg"'),
    (line(pos_mode="atm", card_number=""), "bad_enum", 'field=pos_mode value="atm"'),
    (line(amount="1", card_number="1"), "bad_type", 'field=amount value="1"'),
]


@pytest.mark.parametrize(("text", "reason", "detail"), PRECEDENCE)
def test_first_reason_in_priority_order_and_fields_in_table_order(text: str, reason: str, detail: str) -> None:
    assert outcome(text) == (reason, detail)


# --- numbers: exact decimal text, limits, exponents ---------------------------------------------------


@pytest.mark.parametrize(
    ("ts_text", "ts_us"),
    [
        (str(TS_MIN), TS_MIN * 1_000_000),
        (f"{TS_MAX_EXCLUSIVE - 1}.999999", TS_MAX_EXCLUSIVE * 1_000_000 - 1),
        ("1767225600.000001", 1767225600000001),
        ("1767225600.1234560000", 1767225600123456),  # trailing zeros do not count toward the 6 places
        ("1767225600.100000000000000000000000000000", 1767225600100000),
        ("1.7672256e9", 1767225600000000),
        ("1.767225600123456E+9", 1767225600123456),
        ("17672256001234560e-7", 1767225600123456),
        ("4102444799.999999", 4102444799999999),
    ],
)
def test_ts_us_is_exact_from_the_decimal_text(ts_text: str, ts_us: int) -> None:
    status, row = outcome(line(ts=Raw(ts_text)))
    assert status == "accepted"
    assert row["ts_us"] == ts_us
    assert row["ts"] == Decimal(ts_us).scaleb(-6) and row["ts"].as_tuple().exponent == -6


@pytest.mark.parametrize(
    ("amount_text", "amount"),
    [
        ("0.0001", "0.0001"),
        ("99999999999999.9999", "99999999999999.9999"),
        ("1.50000", "1.5000"),  # trailing zeros do not count
        ("12.34560000000000000000000000000000000000", "12.3456"),
        ("1.25E+2", "125.0000"),
        ("125e-2", "1.2500"),
        ("1e13", "10000000000000.0000"),
        ("7", "7.0000"),
    ],
)
def test_amount_limits_and_exponents(amount_text: str, amount: str) -> None:
    status, row = outcome(line(amount=Raw(amount_text)))
    assert status == "accepted"
    assert str(row["amount"]) == amount


# --- masking: no raw card number leaves the module --------------------------------------------------


def test_rejected_lines_mask_card_numbers_in_raw_record_and_detail() -> None:
    result = parse(
        line(country="sg"),
        line(card_number=Raw(VISA)),
        line(merchant_id=f"shop {VISA}", currency="XXX"),
        line()[:-1],
        f'{{"a":"{VISA}","a":1}}',
        f'{{"{VISA}":1,"{VISA}":2}}',
    )
    assert len(result.rejected) == 6
    assert VISA not in all_output_text(result)
    assert all("************1111" in raw for raw in result.rejected.raw_record)
    assert result.rejected.detail[-1] == 'duplicate key "************1111"'


def test_accepted_records_carry_only_last4_and_token() -> None:
    result = parse(line(), line(event_id="e-2", card_number="5555555555554444"))
    assert len(result.accepted) == 2
    assert VISA not in all_output_text(result) and "5555555555554444" not in all_output_text(result)
    assert result.accepted.card_last4 == ["1111", "4444"]


def test_long_detail_values_are_cut_after_masking() -> None:
    status, detail = outcome(line(card_id=["x" * 150, VISA, "y" * 100]))
    assert status == "bad_type"
    assert detail.startswith('field=card_id value=["xxx') and detail.endswith("…")
    assert VISA not in detail and len(detail) < 240


# --- fx rates -----------------------------------------------------------------------------------------


def test_sample_fx_rates_hold_exactly_the_contract_rates() -> None:
    assert {
        "USD": Decimal("1.0"),
        "EUR": Decimal("1.08"),
        "GBP": Decimal("1.27"),
        "SGD": Decimal("0.74"),
        "JPY": Decimal("0.0067"),
        "AUD": Decimal("0.66"),
        "CAD": Decimal("0.73"),
        "CHF": Decimal("1.13"),
    } == FX_RATES
    text = (REPO / "spark_jobs" / "reference_data" / "fx_rates.csv").read_text()
    assert (
        load_fx_rates(text)
        == load_fx_rates(text.encode())
        == load_fx_rates(str(REPO / "spark_jobs/reference_data/fx_rates.csv"))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("USD,1.0\nEUR,1.08\n", r"<fx rates text> line 1: expected the header 'currency,usd_rate'"),
        ("currency,rate\nUSD,1\n", r"line 1: expected the header"),
        (
            "currency,usd_rate\nUSD,1.0\nEUR,1.08\nUSD,1.0\n",
            r"line 4 field currency: duplicate currency 'USD' \(first on line 2\)",
        ),
        ("currency,usd_rate\nUSD,abc\n", r"line 2 field usd_rate: 'abc' is not a plain decimal number"),
        ("currency,usd_rate\nUSD,1e2\n", r"line 2 field usd_rate: '1e2' is not a plain decimal"),
        ("currency,usd_rate\nUSD,-1\n", r"line 2 field usd_rate: '-1' is not a plain decimal"),
        ("currency,usd_rate\nUSD,0.000\n", r"line 2 field usd_rate: '0.000' is not positive"),
        ("currency,usd_rate\nUSD,0.0000001\n", r"line 2 field usd_rate: '0.0000001' has more than 6 decimal places"),
        ("currency,usd_rate\nUSD,1000000\n", r"line 2 field usd_rate: '1000000' does not fit DECIMAL\(12,6\)"),
        ("currency,usd_rate\nUSD\n", r"line 2: expected 2 fields"),
        ("currency,usd_rate\n,1.0\n", r"line 2 field currency: '' is empty"),
        ("currency,usd_rate\n EUR,1.0\n", r"line 2 field currency: ' EUR' is empty or has surrounding spaces"),
        ("currency,usd_rate\n", r"no currencies after the header"),
        ("\n\n", r"empty file"),
    ],
)
def test_bad_fx_rate_files_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_fx_rates(text)


def test_fx_rates_accept_trailing_zeros_crlf_and_bom_and_name_a_file(tmp_path: Path) -> None:
    assert load_fx_rates("\ufeffcurrency,usd_rate\r\nUSD,1.0000000\r\n\r\n") == {"USD": Decimal("1.0000000")}
    bad = tmp_path / "rates.csv"
    bad.write_text("currency,usd_rate\nUSD,x\n")
    with pytest.raises(ValueError, match=re.escape(f"{bad} line 2 field usd_rate")):
        load_fx_rates(bad)


def test_parse_refuses_float_or_imprecise_rates() -> None:
    with pytest.raises(ValueError, match="positive finite Decimal"):
        parse_bronze_file(b"", fx_rates={"USD": 1.0}, token_key=KEY)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="DECIMAL"):
        parse_bronze_file(b"", fx_rates={"USD": Decimal("1.0000001")}, token_key=KEY)


def test_rows_helpers_match_the_columns() -> None:
    result = parse(line(), "[]")
    assert list(next(result.rejected_records())) == list(REJECTED_COLUMNS)
    assert len(result.accepted) == 1 and len(result.rejected) == 1


# --- generated lines (Hypothesis) ---------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def card_numbers_strategy() -> st.SearchStrategy[str]:
    def complete(body: str) -> str:
        return next(body + d for d in "0123456789" if luhn_valid(body + d))

    return st.text(alphabet="0123456789", min_size=11, max_size=18).map(complete)


def number_texts(low: Decimal, high: Decimal, places: int) -> st.SearchStrategy[Raw]:
    """Numbers near or inside [low, high] with up to `places` + 1 decimals, written in several JSON forms."""
    values = st.decimals(min_value=low, max_value=high, places=places) | st.decimals(
        min_value=low - 1, max_value=high + 1, places=places + 1
    )
    forms = st.sampled_from(["plain", "plain", "exponent", "zeros"])
    return st.tuples(values, forms).map(
        lambda vf: Raw(f"{vf[0]:e}" if vf[1] == "exponent" else f"{vf[0]}000" if vf[1] == "zeros" else str(vf[0]))
    )


FIELD_VALUES = {  # mostly valid values, and their near misses
    "event_id": st.text(min_size=1, max_size=12),
    "card_id": st.text(min_size=1, max_size=12),
    "ts": number_texts(Decimal(TS_MIN), Decimal(TS_MAX_EXCLUSIVE) - Decimal("0.000001"), 6),
    "merchant_id": st.text(min_size=1, max_size=12),
    "amount": number_texts(Decimal("0.0001"), Decimal("99999999999999.9999"), 4),
    "currency": st.sampled_from([*sorted(FX_RATES), "usd", "XXX"]),
    "country": st.sampled_from(["SG", "US", "GB", "JP", "sg", "S", "SGP"]),
    "pos_mode": st.sampled_from([*POS_MODES, "atm", "Chip"]),
    "card_number": card_numbers_strategy() | st.sampled_from(["", "4111111111111112", "4111 1111 1111 1111"]),
}


@st.composite
def generated_lines(draw: st.DrawFn) -> str:
    """One JSON object line: contract fields with 0-2 of them replaced by random JSON or removed, plus extras."""
    fields: dict[str, object] = {name: draw(FIELD_VALUES[name]) for name in CONTRACT_FIELDS}
    for name in draw(st.lists(st.sampled_from(CONTRACT_FIELDS), max_size=2, unique=True)):
        replacement = draw(st.none() | json_values)
        if replacement is None and draw(st.booleans()):
            del fields[name]
        else:
            fields[name] = replacement
    extras = draw(
        st.dictionaries(st.text(max_size=6).filter(lambda k: k not in CONTRACT_FIELDS), json_values, max_size=2)
    )
    fields.update(extras)
    items = list(fields.items())
    if draw(st.booleans()):
        items = draw(st.permutations(items))
    return "{" + ",".join(f"{json.dumps(k)}:{_any_json(v)}" for k, v in items) + "}"


def _any_json(value: object) -> str:
    if isinstance(value, Raw):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def assert_accounts_for_every_line(result: BronzeFileParse, data: bytes) -> None:
    if result.unreadable_reason is not None:
        assert result.records_read == 0 and not result.accepted.line_number and not result.rejected.line_number
        return
    accepted, rejected = result.accepted.line_number, result.rejected.line_number
    assert result.records_read == result.lines - result.blank_lines == len(accepted) + len(rejected)
    assert set(accepted).isdisjoint(rejected) and len(set(accepted) | set(rejected)) == result.records_read
    assert all(1 <= n <= result.lines for n in (*accepted, *rejected))
    assert set(result.rejected.reason) <= set(QUARANTINE_REASONS)
    for values in (getattr(result.accepted, c) for c in ACCEPTED_COLUMNS):
        assert len(values) == len(accepted)
    for column in (
        result.accepted.event_id,
        result.accepted.card_id,
        result.accepted.merchant_id,
        result.rejected.raw_record,
        result.rejected.detail,
    ):
        for text in column:
            text.encode("utf-8")  # Arrow and Delta need valid UTF-8: no lone surrogates


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(generated_lines() | st.sampled_from(["", "  ", "[]", "null", "{"]), min_size=1, max_size=3))
def test_generated_lines_are_each_accepted_or_quarantined_once(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    result = parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY)
    assert_accounts_for_every_line(result, data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=40) | st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"")), max_size=4),
    st.sampled_from([b"", line().encode(), b"\xef\xbb\xbf[1]\r"]),
)
def test_random_bytes_never_raise(chunks: list[bytes], known_line: bytes) -> None:
    data = b"\n".join([*chunks, known_line])
    for candidate in (data, gzip.compress(data), gzip.compress(data)[:-3]):
        assert_accounts_for_every_line(parse_bronze_file(candidate, fx_rates=FX_RATES, token_key=KEY), candidate)


@settings(max_examples=200, deadline=None)
@given(generated_lines(), card_numbers_strategy(), st.sampled_from(["", " ", "-"]))
def test_no_output_holds_a_card_number_from_the_input(text: str, number: str, separator: str) -> None:
    shown = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    assume(number not in text and number[:12] not in text)
    obj_text = text[:-1] + ("," if text != "{}" else "") + f'"card_number":"{shown}"}}'
    result = parse_bronze_file(obj_text.encode("utf-8", "surrogatepass"), fx_rates=FX_RATES, token_key=KEY)
    output = all_output_text(result)
    assert number not in output and shown not in output


@settings(max_examples=200, deadline=None)
@given(generated_lines())
def test_fast_path_and_full_judgement_agree(text: str) -> None:
    # A leading space makes the fast path step aside, so the same line is judged rule by rule.
    data = text.encode("utf-8", "surrogatepass")
    fast = parse_bronze_file(data, fx_rates=FX_RATES, token_key=KEY)
    judged = parse_bronze_file(b" " + data, fx_rates=FX_RATES, token_key=KEY)
    assert list(fast.accepted_records()) == list(judged.accepted_records())
    assert [(r["reason"], r["detail"]) for r in fast.rejected_records()] == [
        (r["reason"], r["detail"]) for r in judged.rejected_records()
    ]


def test_tokens_follow_the_key_across_calls() -> None:
    other_key = b"another key, 32 bytes long......"
    first = parse_bronze_file(line().encode(), fx_rates=FX_RATES, token_key=KEY)
    second = parse_bronze_file(line().encode(), fx_rates=FX_RATES, token_key=other_key)
    third = parse_bronze_file(line().encode(), fx_rates=FX_RATES, token_key=KEY)
    assert first.accepted.card_token == third.accepted.card_token == [card_token(VISA, KEY)]
    assert second.accepted.card_token == [card_token(VISA, other_key)]


def test_fx_rates_content_errors_name_the_given_source() -> None:
    with pytest.raises(ValueError, match=re.escape("s3://bucket/fx_rates.csv line 2 field usd_rate")):
        load_fx_rates(b"currency,usd_rate\nUSD,one\n", source="s3://bucket/fx_rates.csv")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_fx_rates(b"currency,usd_rate\nUSD,1\xff\n", source="s3://bucket/fx_rates.csv")


# --- the contract document ----------------------------------------------------------------------------

CONTRACT_DOC = REPO / "docs" / "contracts" / "bronze_card_authorization.md"
# The examples are judged as lines of a file in ingest_dt=2026/01/01/00 (the document says so): it arrived by
# 01:00 plus the Firehose buffering (5 minutes).
EXAMPLES_ARRIVAL = datetime(2026, 1, 1, 1, 5, tzinfo=UTC)
EXAMPLE_ROW = re.compile(r"^\| `(?P<reason>[a-z_]+)` \| `(?P<line>.+)` \| `(?P<detail>.+)` \|$")


def test_every_example_in_the_contract_document_holds() -> None:
    rows = [m for m in map(EXAMPLE_ROW.match, CONTRACT_DOC.read_text(encoding="utf-8").splitlines()) if m]
    assert len(rows) >= 25
    assert {m["reason"] for m in rows} >= {"accepted", *QUARANTINE_REASONS} - {
        "conflicting_duplicate",
        "unreadable_file",
        "file_too_large",
        "line_too_long",
    }
    for match in rows:
        status, value = outcome(match["line"], arrival=EXAMPLES_ARRIVAL)
        if status == "accepted":
            shown = (
                f"ts_us={value['ts_us']} amount={value['amount']} "
                f"amount_usd={format(value['amount_usd'].normalize(), 'f')} card_last4={value['card_last4']}"
            )
            assert ("accepted", shown) == (match["reason"], match["detail"]), match["line"]
        else:
            assert (status, value) == (match["reason"], match["detail"]), match["line"]
