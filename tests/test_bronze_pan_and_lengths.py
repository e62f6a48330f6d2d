"""Bronze contract: card numbers outside `card_number` (card_number_in_field) and string length limits
(field_too_long), through parse_bronze_file (fast path and judge) and judge_record (the serving path)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs.bronze_contract import (
    FIELD_MAX_CHARS,
    QUARANTINE_REASONS,
    STRING_FIELDS,
    judge_record,
    parse_bronze_file,
)
from spark_jobs.card_numbers import contains_card_number
from tests.test_bronze_contract import ABSENT, FX_RATES, KEY, VISA, Raw, line, outcome

AMEX = "378282246310005"
PAN_IN_FIELD = "card_number_in_field"
TOO_LONG = "field_too_long"


def judged(text: str) -> tuple:
    verdict = judge_record(text, fx_rates=FX_RATES, token_key=KEY)
    return ("accepted", None) if verdict.accepted is not None else (verdict.reason, verdict.detail)


def test_both_reasons_are_contract_reasons_in_the_agreed_order() -> None:
    order = list(QUARANTINE_REASONS)
    assert order.index("bad_type") < order.index(TOO_LONG) < order.index(PAN_IN_FIELD) < order.index("out_of_range")


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (line(card_id=VISA), 'field=card_id value="************1111"'),
        (line(merchant_id="4111 1111 1111 1111"), 'field=merchant_id value="**** **** **** 1111"'),
        (line(event_id=f"evt {AMEX}"), 'field=event_id value="evt ***********0005"'),
        (line(card_id=f"card_{VISA}"), 'field=card_id value="card_************1111"'),
        (line(note=f"paid with 4111-1111-1111-1111 on {1}"), 'field=note value="paid with ****-****-****-1111 on 1"'),
        (line(extra={"a": ["x", VISA]}), 'field=extra value={"a":["x","************1111"]}'),
        (line(meta={VISA: 1}), 'field=meta value={"************1111":1}'),
        (line(**{VISA: "x"}), 'field=************1111 value="x"'),
        (line(payment={"card_number": VISA}), 'field=payment value={"card_number":"************1111"}'),
        # written with JSON escapes: the decoded value is what would be stored
        (line(card_id=Raw('"\\u0034111111111111111"')), 'field=card_id value="************1111"'),
        # a card number is found first in the contract fields, in table order, then in the others in line order
        (line(note=VISA, merchant_id=AMEX), 'field=merchant_id value="***********0005"'),
    ],
)
def test_a_card_number_in_any_other_string_is_quarantined_with_a_masked_detail(text: str, detail: str) -> None:
    assert outcome(text) == (PAN_IN_FIELD, detail)
    assert judged(text) == (PAN_IN_FIELD, detail)
    result = parse_bronze_file(text.encode() + b"\n", fx_rates=FX_RATES, token_key=KEY)
    assert VISA not in result.rejected.raw_record[0] and AMEX not in result.rejected.raw_record[0]


@pytest.mark.parametrize(
    "text",
    [
        line(),  # the card_number field itself is the place for a card number
        line(card_id=f"card{VISA}"),  # glued to letters
        line(card_id=f"order-{VISA}"),  # glued through a dash (the UUID rule)
        line(card_id="4111111111111112"),  # fails Luhn
        line(card_id="411111111111"),  # 12 digits
        line(card_id="4111.1111.1111.1111"),  # dots do not group
        line(note=Raw(VISA)),  # a number, not a string
        line(event_id="123e4567-e89b-12d3-a456-426614174000"),
        line(card_number=ABSENT, note="1767225600.123456"),
    ],
)
def test_what_is_not_a_bounded_card_number_in_a_string_is_accepted(text: str) -> None:
    assert outcome(text)[0] == "accepted"
    assert judged(text)[0] == "accepted"


PRECEDENCE = [
    (line(card_id=VISA, merchant_id=ABSENT), "missing_field", "field=merchant_id value=missing"),
    (line(card_id=VISA, amount="1"), "bad_type", 'field=amount value="1"'),
    (line(card_id=VISA, merchant_id="m" * 129), TOO_LONG, "field=merchant_id length=129 max=128"),
    (line(card_id=VISA, ts=Raw("1")), PAN_IN_FIELD, 'field=card_id value="************1111"'),
    (line(card_id=VISA, currency="XXX"), PAN_IN_FIELD, 'field=card_id value="************1111"'),
    (line(card_id=VISA, card_number="1"), PAN_IN_FIELD, 'field=card_id value="************1111"'),
]


@pytest.mark.parametrize(("text", "reason", "detail"), PRECEDENCE)
def test_rule_order(text: str, reason: str, detail: str) -> None:
    assert outcome(text) == (reason, detail)
    assert judged(text) == (reason, detail)


# --- length limits ----------------------------------------------------------------------------------


def test_every_string_field_has_a_limit_documented_in_one_table() -> None:
    assert set(FIELD_MAX_CHARS) == set(STRING_FIELDS)
    assert FIELD_MAX_CHARS["card_id"] == FIELD_MAX_CHARS["event_id"] == FIELD_MAX_CHARS["merchant_id"] == 128


@pytest.mark.parametrize("name", ["event_id", "card_id", "merchant_id", "currency", "country", "pos_mode"])
def test_a_string_over_its_limit_is_field_too_long(name: str) -> None:
    limit = FIELD_MAX_CHARS[name]
    text = line(**{name: "é" * (limit + 1)})
    expected = (TOO_LONG, f"field={name} length={limit + 1} max={limit}")
    assert outcome(text) == expected
    assert judged(text) == expected


def test_limits_count_characters_not_bytes_and_the_limit_itself_is_fine() -> None:
    assert outcome(line(card_id="é" * 128))[0] == "accepted"
    assert outcome(line(card_id="🂡" * 128, merchant_id="m" * 128, event_id="e" * 128))[0] == "accepted"


def test_a_card_number_field_over_its_limit() -> None:
    limit = FIELD_MAX_CHARS["card_number"]
    assert outcome(line(card_number="4" * (limit + 1))) == (
        TOO_LONG,
        f"field=card_number length={limit + 1} max={limit}",
    )


def test_a_huge_card_id_is_rejected_quickly_without_echoing_it() -> None:
    # (a file line over the framing's line cap is line_too_long before any field is read)
    big = "x" * 500_000
    started = time.perf_counter()
    result = parse_bronze_file(line(card_id=big).encode() + b"\n", fx_rates=FX_RATES, token_key=KEY)
    assert result.rejected.reason == [TOO_LONG]
    assert result.rejected.detail == [f"field=card_id length={len(big)} max=128"]
    assert len(result.accepted) == 0
    huge = "x" * 20_000_000
    assert judged(line(card_id=huge)) == (TOO_LONG, f"field=card_id length={len(huge)} max=128")
    assert time.perf_counter() - started < 20


# --- the fast path agrees with the judge ---------------------------------------------------------------

PIECES = st.sampled_from(["", " ", "-", "x", "_", "1", VISA, "4111 1111 1111 1111", AMEX, "é", "\\u0034", "12 "])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=4), st.sampled_from(["card_id", "merchant_id", "event_id", "note"]))
def test_fast_path_and_judge_agree_on_strings_holding_digits(pieces: list[str], name: str) -> None:
    value = "".join(pieces) or "v"
    text = line(**{name: Raw(json.dumps(value).replace("\\\\u0034", "\\u0034"))})
    fast = parse_bronze_file(text.encode() + b"\n", fx_rates=FX_RATES, token_key=KEY)
    slow = parse_bronze_file(b" " + text.encode() + b"\n", fx_rates=FX_RATES, token_key=KEY)
    assert list(fast.accepted_records()) == list(slow.accepted_records())
    assert fast.rejected.reason == slow.rejected.reason and fast.rejected.detail == slow.rejected.detail
    if fast.rejected.reason:
        # what put the record in quarantine is masked wherever it is shown (read as JSON: escapes decoded)
        shown_raw = json.dumps(json.loads(fast.rejected.raw_record[0]), ensure_ascii=False)
        assert not contains_card_number(shown_raw) and not contains_card_number(fast.rejected.detail[0])
