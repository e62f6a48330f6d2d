"""judge_record: one record outside a file (a request body) gets exactly the verdict of a one-line bronze file."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from spark_jobs.bronze_contract import MALFORMED_JSON, judge_record
from tests.test_bronze_contract import CASES, FX_RATES, KEY, VISA, generated_lines, line, outcome


def verdict(record: str | bytes) -> tuple:
    judged = judge_record(record, fx_rates=FX_RATES, token_key=KEY)
    if judged.accepted is not None:
        assert judged.reason is None and judged.detail is None
        return ("accepted", {"line_number": 1, **judged.accepted})
    return (judged.reason, judged.detail)


@pytest.mark.parametrize(("text", "reason", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_per_record_rule_gives_the_files_verdict(text, reason, detail):
    assert verdict(text) == (reason, detail)
    assert verdict(text.encode("utf-8") if isinstance(text, str) else text) == (reason, detail)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_lines())
def test_generated_records_get_the_one_line_files_verdict(text):
    assert verdict(text) == outcome(text)


def test_an_accepted_record_has_token_and_last4_but_no_card_number():
    judged = judge_record(line(), fx_rates=FX_RATES, token_key=KEY)
    assert judged.accepted["card_last4"] == VISA[-4:]
    assert VISA not in repr(judged)


def test_framing_of_a_single_record():
    assert verdict(line() + "\r\n")[0] == "accepted"
    assert verdict(b"\xef\xbb\xbf" + line().encode())[0] == "accepted"
    assert verdict(line() + "\n" + line()) == (MALFORMED_JSON, "more than one line (a record is one NDJSON line)")
    assert verdict("  ") == (MALFORMED_JSON, "blank record")
    assert verdict(b"") == (MALFORMED_JSON, "blank record")


def test_file_level_findings_are_record_findings_here():
    # a NUL byte or a UTF-16 BOM make a whole file unreadable; in one record they are just bad JSON
    assert verdict(line().replace('"m-1"', '"m-\x00"'))[0] == MALFORMED_JSON
    assert verdict(b"\xff\xfe" + line().encode())[0] == MALFORMED_JSON


def test_rejected_details_mask_card_numbers():
    reason, detail = verdict(line(card_number="4111 1111 1111 1111"))
    assert reason == "invalid_card_number" and "4111 1111 1111 1111" not in detail
    reason, detail = verdict(line(currency=VISA))
    assert reason == "card_number_in_field" and VISA not in detail
    reason, detail = verdict(line(card_number="4111111111111112"))
    assert reason == "invalid_card_number" and "4111111111111112" not in detail
