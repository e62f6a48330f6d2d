"""Card numbers: Luhn, masking (what is and is not a card number), tokens and the token key."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs import card_numbers
from spark_jobs.card_numbers import (
    ALLOW_DEVELOPMENT_KEY_FLAG,
    DEVELOPMENT_TOKEN_KEY_HEX,
    TOKEN_KEY_ENV,
    TokenKeyError,
    card_token,
    card_tokenizer,
    luhn_valid,
    mask_card_numbers,
    record_tokenizer,
    resolve_token_keys,
    token_candidates,
    token_version,
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
        # (digits glued to letters are masked too: tests/test_card_number_detection.py)
        "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits are not ASCII digits
        "ts=1767225600.123456 amount=12.50",
    ],
)
def test_leaves_non_card_numbers_alone(text: str) -> None:
    assert mask_card_numbers(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # JSON may escape a slash as `\/` (json.dumps does not, other producers do): it is a slash
        ('{"x":"4111\\/1111\\/1111\\/1111"}', '{"x":"****\\/****\\/****\\/1111"}'),
        ('{"x":"4111\\u002f1111\\u002f1111\\u002f1111"}', '{"x":"****\\u002f****\\u002f****\\u002f1111"}'),
        # an escaped slash next to an escaped digit
        ('{"x":"\\u0034111\\/1111\\/1111\\/1111"}', '{"x":"****\\/****\\/****\\/1111"}'),  # \u0034 -> one *
        # JSON inside a JSON string: the escaped backslash before a separator belongs to that separator
        ('"4111\\\\\\/1111\\\\\\/1111\\\\\\/1111"', '"****\\\\\\/****\\\\\\/****\\\\\\/1111"'),
        ('"4111\\\\/1111\\\\/1111\\\\/1111"', '"****\\\\/****\\\\/****\\\\/1111"'),
        ('"4111\\\\-1111\\\\-1111\\\\-1111"', '"****\\\\-****\\\\-****\\\\-1111"'),
    ],
)
def test_masks_numbers_whose_separators_are_json_escapes(text: str, expected: str) -> None:
    assert mask_card_numbers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # an escaped backslash on its own is a backslash, not a separator, and `\\u0034` is no escape
        '"4111\\\\1111\\\\1111\\\\1111"',
        '"\\\\u0034111111111111111"',
        # a lone backslash before a digit is not a JSON escape: it does not swallow the digit
        "C:\\4111 x \\u00e9",
    ],
)
def test_backslashes_that_are_not_escaped_separators_do_not_join_groups(text: str) -> None:
    assert mask_card_numbers(text) == text


def test_a_lone_backslash_does_not_hide_the_digit_after_it() -> None:
    assert mask_card_numbers(f"C:\\{VISA} \\u00e9") == "C:\\************1111 \\u00e9"


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


def resolve_token_key(secret_id=None, **kwargs) -> bytes:
    """The current key of `resolve_token_keys` (these tests are about sources and formats)."""
    return resolve_token_keys(secret_id, **kwargs).current_key


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


def test_development_key_only_when_asked_for_and_then_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(card_numbers, "_development_key_warned", False)
    with caplog.at_level(logging.WARNING, logger="spark_jobs.card_numbers"):
        first = resolve_token_key(environ={}, allow_development_key=True, lake_root="/tmp/lake")
        second = resolve_token_key(environ={}, allow_development_key=True)
    assert first == second == bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)
    warnings = [r for r in caplog.records if "public development key" in r.getMessage()]
    assert len(warnings) == 1


def test_development_key_is_refused_without_the_flag_naming_what_to_pass() -> None:
    with pytest.raises(TokenKeyError, match="no card-token key was given") as raised:
        resolve_token_keys(environ={}, lake_root="/tmp/lake")
    message = str(raised.value)
    assert "--card-token-secret-id" in message and ALLOW_DEVELOPMENT_KEY_FLAG in message and TOKEN_KEY_ENV in message
    # The public key given explicitly (environment or secret) is the same public key: refused as well.
    with pytest.raises(TokenKeyError, match="is the public development key"):
        resolve_token_keys(environ={TOKEN_KEY_ENV: DEVELOPMENT_TOKEN_KEY_HEX})


@pytest.mark.parametrize("lake_root", ["s3://bucket/lake", "s3a://bucket/lake"])
def test_development_key_is_always_refused_for_an_s3_lake(lake_root: str) -> None:
    with pytest.raises(TokenKeyError, match="refused for the s3:// lake") as raised:
        resolve_token_keys(environ={}, allow_development_key=True, lake_root=lake_root)
    assert "--card-token-secret-id" in str(raised.value) and ALLOW_DEVELOPMENT_KEY_FLAG not in str(raised.value)
    client = FakeSecretsManager({"SecretString": DEVELOPMENT_TOKEN_KEY_HEX})
    with pytest.raises(TokenKeyError, match="Secrets Manager secret 'prod/key' is the public development key"):
        resolve_token_keys("prod/key", allow_development_key=True, lake_root=lake_root, secrets_client=client)
    # A key of one's own is fine on S3.
    assert resolve_token_key(environ={TOKEN_KEY_ENV: KEY.hex()}, lake_root=lake_root) == KEY


# --- key versions -----------------------------------------------------------------------------------

KEY_1 = bytes.fromhex("11" * 32)
KEY_2 = bytes.fromhex("22" * 32)
VERSIONED_SECRET = json.dumps({"current": 2, "keys": {"0": KEY.hex(), "1": KEY_1.hex(), "2": KEY_2.hex()}})


def test_old_single_key_secret_is_version_0_and_its_tokens_are_unchanged() -> None:
    keys = resolve_token_keys("prod/key", secrets_client=FakeSecretsManager({"SecretString": KEY.hex() + "\n"}))
    assert (keys.current, keys.versions) == (0, [0])
    # Version 0 tokens are the bare hex every existing silver row holds.
    assert keys.token(VISA) == card_token(VISA, KEY) == record_tokenizer(keys)(VISA)
    assert token_version(keys.token(VISA)) == 0


def test_versioned_secret_holds_every_version_and_tokens_name_theirs() -> None:
    keys = resolve_token_keys("prod/key", secrets_client=FakeSecretsManager({"SecretString": VERSIONED_SECRET}))
    assert (keys.current, keys.versions, keys.current_key) == (2, [0, 1, 2], KEY_2)
    assert keys.token(VISA) == "v2:" + card_token(VISA, KEY_2)
    assert keys.token(VISA, 0) == card_token(VISA, KEY)
    assert [token_version(keys.token(VISA, v)) for v in (0, 1, 2)] == [0, 1, 2]
    # The parser's token: the current version first, then every older one, for comparisons only.
    assert token_candidates(record_tokenizer(keys)(VISA)) == [
        keys.token(VISA, 2),
        keys.token(VISA, 1),
        keys.token(VISA, 0),
    ]
    assert token_candidates(None) == []
    assert KEY.hex() not in repr(keys)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (json.dumps({"current": 1, "keys": {"0": KEY.hex()}}), "current version 1 is not among"),
        (json.dumps({"current": "1", "keys": {"1": KEY.hex()}}), "integer current version"),
        ('{"current": 0, "keys": {}}', "at least one key"),
        (json.dumps({"current": 0, "keys": {"x": KEY.hex()}}), "version 'x' must be a decimal number"),
        ('{"current": 0, "keys": {"0": "abcd"}}', "version 0 is not valid hex|version 0 is 2 bytes"),
        ('{"current": 0, "keys": ', "not valid JSON"),
    ],
)
def test_bad_versioned_secret_names_the_problem_and_hides_keys(secret: str, message: str) -> None:
    with pytest.raises(TokenKeyError, match=message) as raised:
        resolve_token_keys("prod/key", secrets_client=FakeSecretsManager({"SecretString": secret}))
    assert "prod/key" in str(raised.value) and KEY.hex() not in str(raised.value)


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
