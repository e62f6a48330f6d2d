"""Card numbers outside the card_number field: detection (quarantined) and masking (anything shown), both ways.

Detection (`contains_card_number`) decides which records never reach silver; masking (`mask_card_numbers`)
is what every outward text goes through, and is broader on purpose. The must-not-mask table of
docs/contracts/bronze_card_authorization.md is `MUST_NOT_MASK` below, run row by row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs.card_numbers import contains_card_number, luhn_valid, mask_card_field, mask_card_numbers

VISA = "4111111111111111"
AMEX = "378282246310005"
CONTRACT_DOC = Path(__file__).resolve().parents[1] / "docs" / "contracts" / "bronze_card_authorization.md"


def luhn_complete(body: str) -> str:
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


def luhn_break(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


THIRTEEN = luhn_complete("411111111111")
TWELVE = luhn_complete("12345678901")
# A ts whose 13 digits (decimal point removed) pass Luhn: only the decimal-point rule keeps it unmasked.
TS_LUHN = next(
    f"17672256{n:02d}.{m:03d}" for n in range(100) for m in range(1000) if luhn_valid(f"17672256{n:02d}{m:03d}")
)
AMOUNT_LUHN = next(f"12345678{n:03d}.25" for n in range(1000) if luhn_valid(f"12345678{n:03d}25"))


# --- detection --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        VISA,
        AMEX,
        THIRTEEN,
        luhn_complete("623456789012345678"),  # 19 digits
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        f"card {VISA} exp 12/26",
        f"{VISA} 2026",  # a span of whole groups is enough
        f"12 {VISA}",
        f"_{VISA}_",  # "_" is not alphanumeric
        f"x--{VISA}",  # a double dash does not glue
        f"pan:{VISA};",
        f"{VISA}.",
    ],
)
def test_detects_a_bounded_card_number(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        TWELVE,  # 12 digits: masked, not detected
        luhn_break(VISA),
        luhn_complete("6234567890123456789"),  # 20 digits
        f"card{VISA}",  # glued to a letter
        f"{VISA}x",
        f"é{VISA}",
        f"order-{VISA}",  # a dash glues (the UUID rule)
        f"{VISA}-ab",
        "4111  1111 1111 1111",  # a double space ends the run
        "4111.1111.1111.1111",  # dots do not group for detection (they do for masking)
        "٤١١١١١١١١١١١١١١١",
        "123e4567-e89b-12d3-a456-426614174000",
        "mer_0a1b2",
        "1767225600.123456",
    ],
)
def test_does_not_detect_what_is_not_a_bounded_card_number(text: str) -> None:
    assert not contains_card_number(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 -._/ab"), max_size=40))
def test_whatever_is_detected_is_masked(text: str) -> None:
    if contains_card_number(text):
        masked = mask_card_numbers(text)
        assert masked != text
        assert not contains_card_number(masked)


# --- masking elsewhere --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"tok{VISA}", "tok************1111"),  # glued or not
        (f"order-{VISA}", "order-************1111"),
        (f"deadbeef{VISA}cafe", "deadbeef************1111cafe"),
        ("4111.1111.1111.1111", "****.****.****.1111"),
        ("4111/1111/1111/1111", "****/****/****/1111"),
        ("4111_1111_1111_1111", "****_****_****_1111"),
        ("4111\u00a01111\u00a01111\u00a01111", "****\u00a0****\u00a0****\u00a01111"),
        (TWELVE, "********" + TWELVE[-4:]),
        (f"{VISA}.5", "************1111.5"),  # a lone dot is a decimal point: the card before it is masked
        # JSON escapes of digits and separators are read as what they stand for
        ('"\\u0034111111111111111"', '"************1111"'),
    ],
)
def test_masks_runs_with_common_separators_glued_or_not(text: str, expected: str) -> None:
    assert mask_card_numbers(text) == expected


def test_a_card_number_written_with_escapes_is_masked_escapes_and_all() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in VISA[:12]) + VISA[12:]
    masked = mask_card_numbers(f'{{"card_id":"{escaped}"}}')
    assert json.loads(masked)["card_id"] == "*" * 12 + "1111"


# The must-not-mask table: (what, text). docs/contracts/bronze_card_authorization.md lists the same rows.
MUST_NOT_MASK = [
    ("ts with a decimal point", TS_LUHN),
    ("ts with 6 decimals", "1767225600.123456"),
    ("ts in a JSON line", f'{{"ts":{TS_LUHN},"amount":12.5}}'),
    ("amount below 1e11", "99999999999.9999"),
    ("amount with a Luhn-valid digit string", AMOUNT_LUHN),
    ("hex event id without a 12-digit run", "9f3c2e7a41b04d2c8e1f5a6b7c8d9e0f"),
    ("UUID without a 12-digit run", "3f2a9c0d-1e4b-4a69-8b7c-5d6e7f8a9b0c"),
    ("ISO timestamp", "2026-01-01T12:34:56.123456Z"),
    ("date and time", "2026-01-01 12:34:56"),
    ("Luhn-invalid run", luhn_break(VISA)),
    ("11 digits", luhn_complete("1234567890")),
    ("20 digits", luhn_complete("6234567890123456789")),
    ("Arabic-Indic digits", "٤١١١١١١١١١١١١١١١"),
    ("card_last4 and token", "card_last4=1111 card_token=5f1c0e0d7b2a3c4d"),
]


@pytest.mark.parametrize(("what", "text"), MUST_NOT_MASK, ids=[row[0] for row in MUST_NOT_MASK])
def test_must_not_mask(what: str, text: str) -> None:
    assert mask_card_numbers(text) == text, what


def test_the_must_not_mask_table_is_documented() -> None:
    doc = CONTRACT_DOC.read_text(encoding="utf-8")
    assert "### Must not mask" in doc
    section = doc.split("### Must not mask", 1)[1].split("\n## ", 1)[0]
    for what, _ in MUST_NOT_MASK:
        assert what in section, what


# --- masking the card_number field --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f'"{VISA}"', '"************1111"'),
        (f'"{luhn_break(VISA)}"', '"************1112"'),  # a Luhn failure too
        ('"4111 1111 1111 1111"', '"**** **** **** 1111"'),
        ('"4111+1111+1111+1111"', '"****+****+****+1111"'),  # any separator
        ('"4111  1111--1111..1111"', '"****  ****--****..1111"'),
        (VISA, "************1111"),  # a JSON number
        ("4.111111111111111e15", "*." + "*" * 13 + "11e15"),
        ("-4111111111111111", "-************1111"),
        ('"\\u0034\\u0031\\u0031\\u0031111111111111"', '"\\u****\\u****\\u****\\u************1111"'),
        ('["4111","1111","1111","1111"]', '["****","****","****","1111"]'),
        ('"41111111"', '"****1111"'),  # short: still only the last four
        ('"12"', '"12"'),
    ],
)
def test_card_number_field_keeps_only_the_last_four_digits_whatever_its_form(value: str, expected: str) -> None:
    line = f'{{"event_id":"e1","card_number":{value},"ts":1767225600.5}}'
    masked = mask_card_numbers(line)
    assert masked == f'{{"event_id":"e1","card_number":{expected},"ts":1767225600.5}}'
    assert mask_card_field(value) == expected


def test_card_number_field_with_an_escaped_key_and_spaces() -> None:
    line = '{"card\\u005fnumber" :  "4111 1111 1111 1112", "amount": 1}'
    assert mask_card_numbers(line) == '{"card\\u005fnumber" :  "**** **** **** 1112", "amount": 1}'


def test_card_number_field_in_a_truncated_line() -> None:
    assert mask_card_numbers('{"card_number":"41111111111') == '{"card_number":"*******1111'


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 -._/+eE"), min_size=0, max_size=30))
def test_card_number_field_never_shows_more_than_four_digits(value: str) -> None:
    masked = mask_card_numbers(json.dumps({"card_number": value}))
    assert len(re.findall(r"[0-9]", masked)) <= 4


def test_fast_path_still_returns_the_same_object() -> None:
    text = '{"event_id":"3f2a9c0d1e4b5a69","ts":1767225600.5,"amount":12.5}'
    assert mask_card_numbers(text) is text


# --- outward text paths -----------------------------------------------------------------------------------


def test_json_log_lines_mask_nested_field_values_and_keys() -> None:
    import logging

    from spark_jobs.job_log import JsonLogFormatter

    record = logging.LogRecord("lakehouse.job", logging.WARNING, __file__, 1, "card %s", (f"tok{VISA}",), None)
    record.fields = {"record": {"card_id": VISA, VISA: [AMEX]}, "count": 3}
    line = JsonLogFormatter({"run_id": "r1"}).format(record)
    assert VISA not in line and AMEX not in line
    parsed = json.loads(line)
    assert parsed["message"] == "card tok************1111"
    assert parsed["record"]["card_id"] == "************1111" and parsed["count"] == 3
