"""Card numbers: the Luhn check, masking for anything shown outside bronze, and keyed tokens.

Pure Python with no Spark import, so the bronze contract (and through it the silver job's
`mapInArrow` function and the benchmark's reference) can call it on every line.

Masking rule (contract v1, docs/contracts/bronze_card_authorization.md):
every Luhn-valid run of 12-19 ASCII digits bounded by non-alphanumerics, where a single space or a
single dash may separate digit groups, keeps its last 4 digits and has every other digit replaced by
`*`; separators are kept. Precisely:

- A *digit word* is a maximal dash-joined chain of ASCII-digit groups (`4111-1111-1111-1111`) that is
  neither preceded nor followed by a letter or digit, nor by a dash glued to one. So a UUID, a hex token
  or an id like `order-4111111111111111` is one alphanumeric word and never masked, even when one of its
  dash-separated parts is 12+ digits.
- The digit groups of digit words that follow each other with exactly one space between them form a run
  (groups inside a word are joined by single dashes). Every span of whole consecutive groups of a run that
  holds 12-19 digits and passes Luhn is masked, overlapping spans included; so a card number followed by
  ` 2026` or `-01` is still masked, though the 20 or 18 digits as a whole are not a card number.
- "Alphanumeric" means Unicode letters and digits (`str.isalnum`); `_` and punctuation bound a number.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "DEVELOPMENT_TOKEN_KEY_HEX",
    "TOKEN_KEY_ENV",
    "card_token",
    "card_tokenizer",
    "luhn_valid",
    "mask_card_numbers",
    "resolve_token_key",
]

_log = logging.getLogger(__name__)

CARD_MIN_DIGITS = 12
CARD_MAX_DIGITS = 19

TOKEN_KEY_ENV = "LAKEHOUSE_CARD_TOKEN_KEY"
# The documented development default: the hex of the ASCII text b"development key - NOT A SECRET!!".
# It is public on purpose; tokens made with it are only good for local runs and tests.
DEVELOPMENT_TOKEN_KEY_HEX = b"development key - NOT A SECRET!!".hex()
TOKEN_KEY_MIN_BYTES = 16
_SHA256_BLOCK_BYTES = 64

# Luhn: digits at odd positions from the right (the check digit is position 1) are summed as they are,
# digits at even positions are doubled and their two decimal digits summed. Doubling then summing maps
# every digit to one digit, so a str.translate table does it in C.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")
_ASCII_ZERO = ord("0")

# Fast path: any maskable number holds 12 digits with at most one separator between neighbours.
_MAYBE_CARD = re.compile(r"[0-9](?:[ -]?[0-9]){11}")
# A digit word: dash-joined digit groups, not glued (directly or through a dash) to a letter or digit.
# `[^\W_]` is one Unicode letter or digit.
_DIGIT_WORD = re.compile(r"(?<![^\W_])(?<![^\W_]-)[0-9]+(?:-[0-9]+)*(?![^\W_])(?!-[^\W_])")
_DIGIT_GROUP = re.compile(r"[0-9]+")


def luhn_valid(digits: str) -> bool:
    """True when `digits` is a non-empty string of ASCII digits whose Luhn checksum is 0 mod 10."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    summed = digits[-1::-2] + digits[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(summed.encode("ascii")) - _ASCII_ZERO * len(summed)) % 10 == 0


def mask_card_numbers(text: str) -> str:
    """`text` with every card number masked (see the module docstring); unchanged text is returned as is."""
    if _MAYBE_CARD.search(text) is None:
        return text
    masked: set[int] = set()
    run: list[tuple[int, int]] = []  # (start, end) of digit groups joined by single spaces or dashes
    run_end = -2
    for match in _DIGIT_WORD.finditer(text):
        start = match.start()
        if not (start == run_end + 1 and text[run_end] == " "):
            _mask_spans_of_run(text, run, masked)
            run = []
        for group in _DIGIT_GROUP.finditer(text, start, match.end()):
            run.append(group.span())
        run_end = match.end()
    _mask_spans_of_run(text, run, masked)
    if not masked:
        return text
    chars = list(text)
    for position in masked:
        chars[position] = "*"
    return "".join(chars)


def _mask_spans_of_run(text: str, run: list[tuple[int, int]], masked: set[int]) -> None:
    """Add to `masked` the positions to hide for every Luhn-valid 12-19 digit span of whole groups of `run`."""
    for first in range(len(run)):
        digits = ""
        positions: list[int] = []
        for start, end in run[first:]:
            digits += text[start:end]
            positions.extend(range(start, end))
            if len(digits) > CARD_MAX_DIGITS:
                break
            if len(digits) >= CARD_MIN_DIGITS and luhn_valid(digits):
                masked.update(positions[:-4])


def card_token(digits: str, key: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the ASCII digits under `key`: a stable, non-reversible card identifier."""
    return hmac.digest(key, digits.encode("ascii"), "sha256").hex()


def card_tokenizer(key: bytes) -> Callable[[str], str]:
    """A function equal to `lambda digits: card_token(digits, key)`, faster for many calls with one key.

    It keeps the SHA-256 states after the HMAC key blocks (RFC 2104) and copies them per call instead of
    setting the key up again every time.
    """
    block = key if len(key) <= _SHA256_BLOCK_BYTES else hashlib.sha256(key).digest()
    block = block.ljust(_SHA256_BLOCK_BYTES, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def token(digits: str) -> str:
        inner_hash = inner.copy()
        inner_hash.update(digits.encode("ascii"))
        outer_hash = outer.copy()
        outer_hash.update(inner_hash.digest())
        return outer_hash.hexdigest()

    return token


_development_key_warned = False


def resolve_token_key(
    secret_id: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    secrets_client: Any = None,
    region: str | None = None,
) -> bytes:
    """The card-token HMAC key as bytes.

    Sources, first that applies: the AWS Secrets Manager secret `secret_id` (its SecretString, hex;
    `secrets_client` defaults to a Secrets Manager client in `region`, else AWS_REGION), else the environment variable
    LAKEHOUSE_CARD_TOKEN_KEY (hex), else the public development default (with a warning, logged once).
    Surrounding whitespace is ignored. A value that is empty, not hex, or shorter than 16 bytes raises
    ValueError naming the source; the key itself never appears in a message.
    """
    global _development_key_warned  # noqa: PLW0603 - warn once per process
    if secret_id is not None:
        if secrets_client is None:
            import boto3

            from spark_jobs.aws_region import aws_region

            region_name = aws_region(region, needed_for=f"the Secrets Manager secret {secret_id!r}")
            secrets_client = boto3.client("secretsmanager", region_name=region_name)
        response = secrets_client.get_secret_value(SecretId=secret_id)
        secret = response.get("SecretString")
        if secret is None:
            raise ValueError(
                f"card token key from Secrets Manager secret {secret_id!r}: the secret has no SecretString "
                "(store the key as a hex string)"
            )
        return _key_from_hex(secret, f"Secrets Manager secret {secret_id!r}")
    if TOKEN_KEY_ENV in environ:
        return _key_from_hex(environ[TOKEN_KEY_ENV], f"environment variable {TOKEN_KEY_ENV}")
    if not _development_key_warned:
        _development_key_warned = True
        _log.warning(
            "%s is not set and no Secrets Manager secret was given: card tokens use the public development "
            "key; never use such tokens outside local development",
            TOKEN_KEY_ENV,
        )
    return bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)


def _key_from_hex(value: str, source: str) -> bytes:
    text = value.strip()
    if not text:
        raise ValueError(f"card token key from {source} is empty")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(
            f"card token key from {source} is not valid hex ({len(text)} characters; expected an even number "
            "of characters 0-9a-f)"
        ) from None
    if len(key) < TOKEN_KEY_MIN_BYTES:
        raise ValueError(
            f"card token key from {source} is {len(key)} bytes; at least {TOKEN_KEY_MIN_BYTES} bytes "
            f"({2 * TOKEN_KEY_MIN_BYTES} hex characters) are required"
        )
    return key
