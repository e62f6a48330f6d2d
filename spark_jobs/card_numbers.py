"""Card numbers: the Luhn check, masking for anything shown outside bronze, and keyed tokens.

Pure Python with no Spark import, so the bronze contract (and through it the silver job's
`mapInArrow` function and the benchmark's reference) can call it on every line.

Two rules (contract v1, docs/contracts/bronze_card_authorization.md, "Card numbers"):

- **Detection** (`contains_card_number`; quarantine reason card_number_in_field, for strings other than the
  card_number field): a *run* is ASCII-digit groups joined by single spaces or single dashes, not glued to a
  letter or digit (`str.isalnum`), directly or through a dash (so a UUID or `order-4111111111111111` is one
  alphanumeric word). A run holds a card number when a span of its whole consecutive groups holds 13-19
  digits and passes Luhn (`4111111111111111 2026` holds one).
- **Masking** (`mask_card_numbers`; everything shown outside bronze) is broader, since a false positive costs
  nothing there. In the value of a `"card_number"` field every digit but the last 4 becomes `*`, whatever the
  value is (any separators, JSON escapes, a JSON number, a Luhn failure). Elsewhere every span of whole
  consecutive groups of a run holding 12-19 digits and passing Luhn keeps its last 4 digits, the others
  become `*`; here a run's groups are joined by one of space, dash, dot, slash, underscore or no-break space,
  and letters or digits around it do not matter. A dot that is the only dot of its run is a decimal point,
  not a separator (`1767225639.209` is a timestamp). JSON escapes of digits and separators (`\\u0034`) read as
  the characters they stand for; a masked escape becomes one `*`.

Whatever detection finds, masking masks (tests/test_card_number_detection.py checks it), so a quarantined
record never shows the number that put it there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALLOW_DEVELOPMENT_KEY_FLAG",
    "DETECTABLE_STRETCH",
    "DETECTABLE_STRETCH_TABLE",
    "DEVELOPMENT_TOKEN_KEY_HEX",
    "MAYBE_DETECTABLE",
    "TOKEN_KEY_ENV",
    "CardTokenKeys",
    "TokenKeyError",
    "card_token",
    "card_tokenizer",
    "contains_card_number",
    "luhn_valid",
    "mask_card_field",
    "mask_card_numbers",
    "record_tokenizer",
    "resolve_token_keys",
    "token_candidates",
    "token_version",
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

# --- masking: anything shown outside bronze ---------------------------------------------------------------
# Separators that may sit between the digit groups of a masked number ("elsewhere" rule).
MASK_SEPARATORS = " -./_\u00a0"
# Fast path: any maskable number holds 12 digits with at most one separator between neighbours.
_MAYBE_MASKABLE = re.compile(r"[0-9](?:[ \-./_\u00a0]?[0-9]){11}")
# A run: digit groups joined by single separators (letters or digits around it do not matter).
_MASK_RUN = re.compile(r"[0-9]+(?:[ \-./_\u00a0][0-9]+)*")
_DIGIT_GROUP = re.compile(r"[0-9]+")
# Text with a JSON escape that may stand for a digit or separator (`\uXXXX`, `\/`, `\\`) is read escape by
# escape: the hex digits of `\u00e9` are not digits, `\u0034` is one, `\/` is a slash. (An escaped backslash
# is read first, so `\\u0034` is a backslash and "u0034".) An escaped backslash right before a separator
# belongs to it: `\\\/` and `\\/` are a slash escaped once more, as in JSON inside a JSON string. A backslash
# that starts no JSON escape (`C:\4111...`) is a plain character and does not hide the digit after it.
_MAYBE_JSON_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|[/\\])")
_JSON_ESCAPE = re.compile(
    r"(?:\\\\)*\\(?:u([0-9a-fA-F]{4})|(/))"  # \uXXXX or \/, maybe after escaped backslashes
    r"|(?:\\\\)+([ \-./_\u00a0])"  # escaped backslashes before a plain separator
    r"|\\[\"\\bfnrt]"  # any other JSON escape: a character that is neither digit nor separator
)
# The value after a `"card_number":` key in JSON-like text, whatever it is: a string (maybe unterminated), an
# array or object (up to its first closing bracket), or a bare token (a number in any notation, or junk).
_FIELD_VALUE = r"(\"(?:[^\"\\]|\\.)*\"?|\[[^\]]*\]?|\{[^}]*\}?|[^,}\]]*)"
_CARD_FIELD = re.compile(r"\"card_number\"\s*:\s*" + _FIELD_VALUE)
_ESCAPED_KEY_FIELD = re.compile(r"\"((?:[^\"\\]|\\.)*\\(?:[^\"\\]|\\.)*)\"\s*:\s*" + _FIELD_VALUE)
_ANY_DIGIT = re.compile(r"\d")  # Unicode decimal digits: the card_number field hides every kind
CARD_FIELD_SHOWN_DIGITS = 4

# --- detection: card numbers in fields other than card_number (quarantine reason card_number_in_field) -----
DETECTED_MIN_DIGITS = 13
# Fast path: a detectable number holds 13 digits with at most one space or dash between neighbours. Callers
# (the bronze fast path) may search with it first: no match means `contains_card_number` is False.
MAYBE_DETECTABLE = re.compile(r"[0-9](?:[ -]?[0-9]){12}")
# The bronze fast path's cheaper form (a regex search costs microseconds per line, this a fraction): in the
# UTF-8 of a text translated by DETECTABLE_STRETCH_TABLE (ASCII digits, spaces and dashes to "0", every other
# byte to "x"), a detectable number lies inside a stretch of DETECTABLE_STRETCH.
DETECTABLE_STRETCH_TABLE = bytes(0x30 if byte in b"0123456789 -" else 0x78 for byte in range(256))
DETECTABLE_STRETCH = b"0" * DETECTED_MIN_DIGITS
# Words of letters and digits (`[^\W_]` is str.isalnum) joined by single dashes, chained by single spaces.
_WORD_CHAIN = re.compile(r"[^\W_]+(?:[ -][^\W_]+)*")
_DIGIT_WORD = re.compile(r"[0-9]+(?:-[0-9]+)*")


def luhn_valid(digits: str) -> bool:
    """True when `digits` is a non-empty string of ASCII digits whose Luhn checksum is 0 mod 10."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    summed = digits[-1::-2] + digits[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(summed.encode("ascii")) - _ASCII_ZERO * len(summed)) % 10 == 0


def contains_card_number(text: str) -> bool:
    """True when `text` holds a card number by the detection rule (see the module docstring).

    The rule: a run of ASCII-digit groups joined by single spaces or single dashes, not glued to a letter or
    digit (directly or through a dash), one span of whole consecutive groups of which holds 13-19 digits and
    passes Luhn.
    """
    if MAYBE_DETECTABLE.search(text) is None:
        return False
    for chain in _WORD_CHAIN.finditer(text):
        chain_text = chain.group()
        if MAYBE_DETECTABLE.search(chain_text) is None:
            continue
        groups: list[str] = []  # the run so far: digit groups of consecutive digit-only words
        for word in chain_text.split(" "):
            if _DIGIT_WORD.fullmatch(word):
                groups.extend(word.split("-"))
                continue
            if _luhn_span(groups, DETECTED_MIN_DIGITS):
                return True
            groups = []
        if _luhn_span(groups, DETECTED_MIN_DIGITS):
            return True
    return False


def _luhn_span(groups: list[str], min_digits: int) -> bool:
    """True when consecutive whole `groups` join to min_digits-19 digits passing Luhn."""
    for first in range(len(groups)):
        digits = ""
        for group in groups[first:]:
            digits += group
            if len(digits) > CARD_MAX_DIGITS:
                break
            if len(digits) >= min_digits and luhn_valid(digits):
                return True
    return False


def mask_card_numbers(text: str) -> str:
    """`text` with every card number masked (see the module docstring); unchanged text is returned as is.

    First the value of every `"card_number":` field keeps only its last 4 digits (`mask_card_field`), then
    every Luhn-valid 12-19 digit span elsewhere is masked, JSON escapes of digits and separators included.
    """
    if '"card_number"' in text or "\\" in text:
        text = _mask_card_fields(text)
    # Until nothing changes: the 4 digits a mask keeps are a group of their own afterwards and may join the next
    # groups into a new Luhn-valid span; masking that too makes the result idempotent and free of detectable
    # numbers. (A second pass runs only when the first masked something.)
    while True:
        escaped = "\\" in text and _MAYBE_JSON_ESCAPE.search(text) is not None
        masked = _mask_escaped_runs(text) if escaped else _mask_runs(text)
        if masked is text:
            return text
        text = masked


def mask_card_field(value: str) -> str:
    """The text of a card_number value with every digit (any script) but the last 4 replaced by `*`."""
    positions = [match.start() for match in _ANY_DIGIT.finditer(value)]
    if len(positions) <= CARD_FIELD_SHOWN_DIGITS:
        return value
    chars = list(value)
    for position in positions[:-CARD_FIELD_SHOWN_DIGITS]:
        chars[position] = "*"
    return "".join(chars)


def _mask_card_fields(text: str) -> str:
    """`text` with the value after every `"card_number":` key (also written with JSON escapes) masked."""
    spans = [match.span(1) for match in _CARD_FIELD.finditer(text)]
    if "\\" in text:
        for match in _ESCAPED_KEY_FIELD.finditer(text):
            try:
                key = json.loads(f'"{match.group(1)}"')
            except ValueError:
                continue
            if key == "card_number":
                spans.append(match.span(2))
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if start < position:
            continue
        pieces.append(text[position:start])
        pieces.append(mask_card_field(text[start:end]))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _mask_runs(text: str) -> str:
    """`text` with every Luhn-valid 12-19 digit span of whole groups of a run masked (the last 4 kept)."""
    if _MAYBE_MASKABLE.search(text) is None:
        return text
    masked: list[int] = []
    for run in _MASK_RUN.finditer(text):
        if run.end() - run.start() < CARD_MIN_DIGITS:
            continue
        groups = [group.span() for group in _DIGIT_GROUP.finditer(text, run.start(), run.end())]
        separators = [text[end] for _, end in groups[:-1]]
        if separators.count(".") == 1:  # a lone dot is a decimal point (1767225639.209), not a separator
            cut = separators.index(".") + 1
            _mask_spans_of_run(text, groups[:cut], masked)
            _mask_spans_of_run(text, groups[cut:], masked)
        else:
            _mask_spans_of_run(text, groups, masked)
    if not masked:
        return text
    chars = list(text)
    for position in masked:
        chars[position] = "*"
    return "".join(chars)


def _mask_spans_of_run(text: str, run: list[tuple[int, int]], masked: list[int]) -> None:
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
                masked.extend(positions[:-4])


def _mask_escaped_runs(text: str) -> str:
    """`_mask_runs` reading each JSON escape of a digit or separator as that character; a masked escape
    becomes one `*`. (An escape of anything else reads as a character that is neither.)"""
    segments: list[str] = []  # the source text of each character of `view`
    view_chars: list[str] = []
    position = 0
    for match in _JSON_ESCAPE.finditer(text):
        plain = text[position : match.start()]
        segments.extend(plain)
        view_chars.extend(plain)
        code, slash, separator = match.groups()
        char = chr(int(code, 16)) if code else (slash or separator or "")
        segments.append(match.group())
        view_chars.append(char if ("0" <= char <= "9" or char in MASK_SEPARATORS) and char else "\x00")
        position = match.end()
    plain = text[position:]
    segments.extend(plain)
    view_chars.extend(plain)
    view = "".join(view_chars)
    masked_view = _mask_runs(view)
    if masked_view is view:
        return text
    return "".join(
        "*" if shown != original else segment
        for segment, original, shown in zip(segments, view, masked_view, strict=True)
    )


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


# --- key versions ------------------------------------------------------------------------------------------
# A token names the key version it was made with: version 0 (every token made before versions existed) is the
# bare 64-character hex, so existing tokens stay byte-identical; version k > 0 is "v<k>:" + hex. No schema
# change anywhere (silver, the online state), and a reader can tell tokens of different keys apart.
TOKEN_VERSION_PREFIX = "v"
TOKEN_VERSION_SEPARATOR = ":"
# The parser's `card_token` for comparison: the record's token under every held version, current first,
# joined by single spaces (hex and "v<k>:" never hold a space). Silver and serving split it
# (`token_candidates`): they store the first and compare a stored token with any of them, so a re-delivery
# after a rotation is compared under the stored row's own key version.
TOKEN_CANDIDATE_SEPARATOR = " "
ALLOW_DEVELOPMENT_KEY_FLAG = "--allow-development-token-key"


class TokenKeyError(ValueError):
    """The card-token key cannot be used: unreadable, malformed, or the public development key where it is
    refused. The message names the source and what to pass; a key never appears in it."""


def versioned_token(version: int, token_hex: str) -> str:
    """The stored form of a token made with key `version`: bare hex for 0, else "v<version>:<hex>"."""
    return token_hex if version == 0 else f"{TOKEN_VERSION_PREFIX}{version}{TOKEN_VERSION_SEPARATOR}{token_hex}"


def token_version(token: str) -> int:
    """The key version a stored token was made with (0 for a bare hex token)."""
    if token.startswith(TOKEN_VERSION_PREFIX):
        return int(token[len(TOKEN_VERSION_PREFIX) : token.index(TOKEN_VERSION_SEPARATOR)])
    return 0


def token_candidates(parsed_token: str | None) -> list[str]:
    """The tokens of a parser `card_token` (current version first); [] for a record without a card."""
    return parsed_token.split(TOKEN_CANDIDATE_SEPARATOR) if parsed_token else []


@dataclass(frozen=True)
class CardTokenKeys:
    """Every held card-token HMAC key by version; new tokens use `current`, older versions stay for comparing
    re-deliveries of events stored under them (see docs/runbook.md, "Rotating the card-token key")."""

    current: int
    keys: tuple[tuple[int, bytes], ...] = field(repr=False)  # (version, key), ascending version

    def __post_init__(self) -> None:
        versions = [version for version, _ in self.keys]
        if self.current not in versions:
            raise TokenKeyError(f"card token keys: current version {self.current} is not among {versions}")
        if versions != sorted(set(versions)) or versions[0] < 0:
            raise TokenKeyError(f"card token keys: versions {versions} must be distinct and >= 0")

    @classmethod
    def single(cls, key: bytes) -> CardTokenKeys:
        """One key, version 0 (the format of every secret before key versions)."""
        return cls(current=0, keys=((0, key),))

    @property
    def versions(self) -> list[int]:
        return [version for version, _ in self.keys]

    @property
    def current_key(self) -> bytes:
        return dict(self.keys)[self.current]

    def token(self, digits: str, version: int | None = None) -> str:
        """The stored token of `digits` under `version` (default: the current one)."""
        version = self.current if version is None else version
        return versioned_token(version, card_token(digits, dict(self.keys)[version]))

    def record_tokenizer(self) -> Callable[[str], str]:
        """digits -> the parser's `card_token`: the current version's token, then every older held version's
        (TOKEN_CANDIDATE_SEPARATOR between them). With one held version it is exactly that version's token."""
        ordered = [self.current, *sorted((v for v in self.versions if v != self.current), reverse=True)]
        keyed = dict(self.keys)
        tokenizers = [(version, card_tokenizer(keyed[version])) for version in ordered]
        if len(tokenizers) == 1:
            version, tokenize = tokenizers[0]
            return tokenize if version == 0 else lambda digits: versioned_token(version, tokenize(digits))
        return lambda digits: TOKEN_CANDIDATE_SEPARATOR.join(
            versioned_token(version, tokenize(digits)) for version, tokenize in tokenizers
        )

    def is_development(self) -> bool:
        """Whether new tokens would be made with the public development key."""
        return self.current_key == bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX)


def record_tokenizer(token_key: bytes | CardTokenKeys) -> Callable[[str], str]:
    """The parser's tokenizer for a key (bytes: one key, version 0) or held key versions."""
    if isinstance(token_key, CardTokenKeys):
        return token_key.record_tokenizer()
    return card_tokenizer(token_key)


DEVELOPMENT_TOKEN_KEYS = CardTokenKeys.single(bytes.fromhex(DEVELOPMENT_TOKEN_KEY_HEX))

_development_key_warned = False


def resolve_token_keys(
    secret_id: str | None = None,
    *,
    allow_development_key: bool = False,
    lake_root: str | None = None,
    environ: Mapping[str, str] = os.environ,
    secrets_client: Any = None,
    region: str | None = None,
) -> CardTokenKeys:
    """The card-token keys (every held version).

    Sources, first that applies: the AWS Secrets Manager secret `secret_id` (its SecretString; `secrets_client`
    defaults to a Secrets Manager client in `region`, else AWS_REGION), else the environment variable
    LAKEHOUSE_CARD_TOKEN_KEY, else the public development key. A value is either one hex key (version 0, the
    format before key versions) or JSON `{"current": 2, "keys": {"0": "<hex>", "1": "<hex>", "2": "<hex>"}}`;
    surrounding whitespace is ignored; each key is hex of at least 16 bytes.

    The public development key (as the fallback, or as the current key of a secret or the environment) is
    refused with TokenKeyError unless `allow_development_key` (the jobs' --allow-development-token-key), and
    always for an `s3://` `lake_root`. Errors name the source and what to pass; a key never appears in one.
    """
    keys, source = _token_keys_from_sources(secret_id, environ, secrets_client, region)
    if keys is not None and not keys.is_development():
        return keys
    on_s3 = lake_root is not None and lake_root.startswith(("s3://", "s3a://"))
    what = (
        f"the card-token key from {source} is the public development key"
        if keys
        else (
            f"no card-token key was given (neither --card-token-secret-id nor the environment variable {TOKEN_KEY_ENV})"
        )
    )
    if on_s3:
        raise TokenKeyError(
            f"{what}, which is refused for the s3:// lake {lake_root}: pass --card-token-secret-id <secret> "
            "(the deployed secret, `terraform output -raw card_token_secret_name`) holding a key of your own"
        )
    if not allow_development_key:
        raise TokenKeyError(
            f"{what}: pass --card-token-secret-id <secret> or set {TOKEN_KEY_ENV}; for a local development "
            f"lake only, pass {ALLOW_DEVELOPMENT_KEY_FLAG} to use the public development key"
        )
    global _development_key_warned  # noqa: PLW0603 - warn once per process
    if not _development_key_warned:
        _development_key_warned = True
        _log.warning(
            "card tokens use the public development key (%s); never use such tokens outside local development",
            ALLOW_DEVELOPMENT_KEY_FLAG,
        )
    return keys or DEVELOPMENT_TOKEN_KEYS


def _token_keys_from_sources(
    secret_id: str | None, environ: Mapping[str, str], secrets_client: Any, region: str | None
) -> tuple[CardTokenKeys | None, str]:
    """The keys and a description of where they came from; (None, "the default") when no source is set."""
    if secret_id is not None:
        source = f"Secrets Manager secret {secret_id!r}"
        if secrets_client is None:
            import boto3

            from spark_jobs.aws_region import aws_region

            region_name = aws_region(region, needed_for=f"the Secrets Manager secret {secret_id!r}")
            secrets_client = boto3.client("secretsmanager", region_name=region_name)
        response = secrets_client.get_secret_value(SecretId=secret_id)
        secret = response.get("SecretString")
        if secret is None:
            raise TokenKeyError(
                f"card token key from {source}: the secret has no SecretString (store the key as a hex string, "
                'or the key versions as JSON {"current": 1, "keys": {"0": "<hex>", "1": "<hex>"}})'
            )
        return parse_token_keys(secret, source), source
    if TOKEN_KEY_ENV in environ:
        source = f"environment variable {TOKEN_KEY_ENV}"
        return parse_token_keys(environ[TOKEN_KEY_ENV], source), source
    return None, "the default"


def parse_token_keys(value: str, source: str) -> CardTokenKeys:
    """A secret's or the environment's value: one hex key (version 0) or the JSON of every version."""
    text = value.strip()
    if not text.startswith("{"):
        return CardTokenKeys.single(_key_from_hex(text, source))
    try:
        document = json.loads(text)
    except ValueError:
        raise TokenKeyError(f"card token keys from {source} are not valid JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    current = document.get("current") if isinstance(document, dict) else None
    if not isinstance(keys, dict) or not keys or type(current) is not int:
        raise TokenKeyError(
            f'card token keys from {source}: expected {{"current": <version>, "keys": {{"<version>": "<hex>", ...}}}} '
            "with an integer current version and at least one key"
        )
    versions: list[tuple[int, bytes]] = []
    for name, hex_key in keys.items():
        if not (isinstance(name, str) and name.isascii() and name.isdigit()) or not isinstance(hex_key, str):
            raise TokenKeyError(
                f"card token keys from {source}: version {name!r} must be a decimal number with a hex key"
            )
        versions.append((int(name), _key_from_hex(hex_key, f"{source}, version {int(name)}")))
    try:
        return CardTokenKeys(current=current, keys=tuple(sorted(versions)))
    except TokenKeyError as error:
        raise TokenKeyError(f"{error} (from {source})") from None


def _key_from_hex(value: str, source: str) -> bytes:
    text = value.strip()
    if not text:
        raise TokenKeyError(f"card token key from {source} is empty")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise TokenKeyError(
            f"card token key from {source} is not valid hex ({len(text)} characters; expected an even number "
            "of characters 0-9a-f)"
        ) from None
    if len(key) < TOKEN_KEY_MIN_BYTES:
        raise TokenKeyError(
            f"card token key from {source} is {len(key)} bytes; at least {TOKEN_KEY_MIN_BYTES} bytes "
            f"({2 * TOKEN_KEY_MIN_BYTES} hex characters) are required"
        )
    return key
