"""Card numbers: Luhn, masking (what is and is not a card number), tokens and the token key."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs import card_numbers
from spark_jobs.card_numbers import (
    DEVELOPMENT_TOKEN_KEY_HEX,
    TOKEN_KEY_ENV,
    card_token,
    card_tokenizer,
    luhn_valid,
    mask_card_numbers,
    resolve_token_key,
)

VISA = "4111111111111111"
AMEX = "378282246310005"
MASTERCARD = "5555555555554444"
KEY = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)


def luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it Luhn-valid."""
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


def luhn_break(number: str) -> str:
    """`number` with its check digit changed, so it fails Luhn."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# --- Luhn -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [VISA, AMEX, MASTERCARD, "79927398713", "0" * 12, "4012888888881881"])
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "text",
    [luhn_break(VISA), luhn_break(AMEX), "79927398710", "", "4111-1111-1111-1111", "4111 1111 1111 1111", "٤١١١"],
)
def test_luhn_rejects_invalid_numbers_and_non_ascii_digits(text: str) -> None:
    assert not luhn_valid(text)


def test_luhn_matches_the_textbook_algorithm() -> None:
    def textbook(number: str) -> bool:
        total = 0
        for index, char in enumerate(reversed(number)):
            digit = int(char)
            if index % 2:
                digit = digit * 2 - 9 if digit > 4 else digit * 2
            total += digit
        return total % 10 == 0

    for body in range(100_000, 101_000):
        number = f"{body:06d}4111222"
        assert luhn_valid(number) == textbook(number), number


# --- masking ----------------------------------------------------------------------------------------

TWELVE = luhn_complete("12345678901")
NINETEEN = luhn_complete("623456789012345678")
ELEVEN = luhn_complete("1234567890")
TWENTY = luhn_complete("6234567890123456789")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VISA, "************1111"),
        (f'{{"card_number":"{VISA}"}}', '{"card_number":"************1111"}'),
        (f"card {AMEX}.", "card ***********0005."),
        ("4111 1111 1111 1111", "**** **** **** 1111"),
        ("4111-1111-1111-1111", "****-****-****-1111"),
        ("4111-1111 1111-1111", "****-**** ****-1111"),
        (TWELVE, "********" + TWELVE[-4:]),
        (NINETEEN, "*" * 15 + NINETEEN[-4:]),
        (f"paid with {VISA} exp 12 2026", "paid with ************1111 exp 12 2026"),
        (f"{VISA} 2026", "************1111 2026"),  # 20 digits in all, but the card is bounded by the space
        (f"{VISA}-01", "************1111-01"),
        (f"_{VISA}_", "_************1111_"),  # "_" is not alphanumeric
        (f"{VISA},{MASTERCARD};{AMEX}", "************1111,************4444;***********0005"),
        (f"value={VISA}", "value=************1111"),
    ],
)
def test_masks_card_numbers_keeping_separators_and_the_last_four(text: str, expected: str) -> None:
    assert mask_card_numbers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        ELEVEN,  # too short
        TWENTY,  # too long, and one run: no 12-19 digit part of it is bounded
        luhn_break(VISA),  # not Luhn-valid
        "4111  1111 1111 1111",  # a double space ends the run
        "4111--1111-1111-1111",  # so does a double dash
        f"123e4567-e89b-12d3-a456-{TWELVE}",  # a UUID whose last group is a Luhn-valid 12 digits
        f"deadbeef{VISA}cafe",  # a hex token holding 16 digits
        f"tok_{VISA}a",  # glued to a letter on the right
        f"card{VISA}",  # glued to a letter on the left
        f"order-{VISA}",  # an alphanumeric id joined by a dash
        f"é{VISA}",  # Unicode letters are alphanumeric too
        "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits are not ASCII digits
        "ts=1767225600.123456 amount=12.50",
    ],
)
def test_leaves_non_card_numbers_alone(text: str) -> None:
    assert mask_card_numbers(text) == text


def test_fast_path_returns_the_same_object_when_nothing_can_be_a_card() -> None:
    text = '{"event_id":"3f2a9c0d1e4b5a69","ts":1767225600.5,"amount":12.5}'
    assert mask_card_numbers(text) is text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 -ab_é*"), max_size=60))
def test_masking_only_stars_digits_and_is_idempotent(text: str) -> None:
    masked = mask_card_numbers(text)
    assert len(masked) == len(text)
    for before, after in zip(text, masked, strict=True):
        assert after == before or (before.isdigit() and after == "*")
    assert mask_card_numbers(masked) == masked


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=11, max_size=18),
    st.sampled_from(["", " ", "-", "\t", '"', "=", ":"]),
    st.sampled_from(["", " ", "-", ",", '"', "}", "."]),
)
def test_any_bounded_card_number_is_masked(body: str, before: str, after: str) -> None:
    number = luhn_complete(body)
    masked = mask_card_numbers(f"({before}{number}{after})")
    assert number not in masked
    assert masked == f"({before}{'*' * (len(number) - 4)}{number[-4:]}{after})"


# --- tokens -----------------------------------------------------------------------------------------


def test_token_is_lowercase_hex_hmac_sha256_of_the_digits() -> None:
    expected = hmac.new(KEY, VISA.encode("ascii"), hashlib.sha256).hexdigest()
    assert card_token(VISA, KEY) == expected
    assert len(expected) == 64 and expected == expected.lower()


def test_token_is_deterministic_and_depends_on_key_and_number() -> None:
    assert card_token(VISA, KEY) == card_token(VISA, KEY)
    assert card_token(VISA, KEY) != card_token(MASTERCARD, KEY)
    assert card_token(VISA, KEY) != card_token(VISA, KEY[::-1])


@pytest.mark.parametrize("key", [b"k" * 16, KEY, b"x" * 64, b"long key " * 20])
def test_tokenizer_equals_card_token_for_any_key_length(key: bytes) -> None:
    tokenize = card_tokenizer(key)
    for number in (VISA, AMEX, MASTERCARD, TWELVE, NINETEEN):
        assert tokenize(number) == card_token(number, key)


def test_development_key_is_the_documented_public_text() -> None:
    assert len(DEVELOPMENT_TOKEN_KEY_HEX) == 64
    assert bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX) == b"development key - NOT A SECRET!!"


# --- token key resolution ---------------------------------------------------------------------------


def test_key_from_environment_hex_with_surrounding_whitespace() -> None:
    assert resolve_token_key(environ={TOKEN_KEY_ENV: f"  {KEY.hex().upper()}\n"}) == KEY


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("zz" * 32, "not valid hex"),
        ("abc", "not valid hex"),
        ("", "is empty"),
        ("  ", "is empty"),
        ("ab" * 8, "at least"),
    ],
)
def test_bad_environment_key_names_the_source_and_hides_the_value(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        resolve_token_key(environ={TOKEN_KEY_ENV: value})
    assert TOKEN_KEY_ENV in str(raised.value)
    if value.strip():
        assert value.strip() not in str(raised.value)


def test_development_default_warns_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(card_numbers, "_development_key_warned", False)
    with caplog.at_level(logging.WARNING, logger="spark_jobs.card_numbers"):
        first = resolve_token_key(environ={})
        second = resolve_token_key(environ={})
    assert first == second == bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)
    warnings = [r for r in caplog.records if TOKEN_KEY_ENV in r.getMessage()]
    assert len(warnings) == 1


class FakeSecretsManager:
    def __init__(self, response: dict) -> None:
        self.response = response
        self.calls: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict:  # noqa: N803 - boto3's parameter name
        self.calls.append(SecretId)
        return self.response


def test_secret_id_reads_secrets_manager_before_the_environment() -> None:
    client = FakeSecretsManager({"SecretString": KEY.hex() + "\n"})
    key = resolve_token_key("lakehouse/card-token-key", environ={TOKEN_KEY_ENV: "ff" * 32}, secrets_client=client)
    assert key == KEY
    assert client.calls == ["lakehouse/card-token-key"]


def test_bad_secret_names_the_secret_and_hides_the_value() -> None:
    with pytest.raises(ValueError, match=r"Secrets Manager secret 'prod/key'.*not valid hex") as raised:
        resolve_token_key("prod/key", secrets_client=FakeSecretsManager({"SecretString": "not-hex-secret-value"}))
    assert "not-hex-secret-value" not in str(raised.value)
    with pytest.raises(ValueError, match="no SecretString"):
        resolve_token_key("prod/key", secrets_client=FakeSecretsManager({"SecretBinary": b"\x01"}))


def test_secret_id_uses_boto3_secretsmanager(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        boto3.client("secretsmanager").create_secret(Name="lakehouse/card-token-key", SecretString=KEY.hex())
        assert resolve_token_key("lakehouse/card-token-key", environ={}) == KEY
