"""Bronze contract v1 for card authorizations: parse one bronze file into accepted and quarantined lines.

Pure Python with no Spark import. The silver job calls `parse_bronze_file` once per bronze file inside
its `mapInArrow` function and the benchmark's reference calls it too, so this is the hot path: one
precompiled JSON scanner, no exceptions on the happy path, columnar output that converts to Arrow
without per-row objects. The rules are written for producers and on-call in
docs/contracts/bronze_card_authorization.md; keep the two in step.

A raw card number never leaves this module: accepted records carry `card_last4` and `card_token`
only, and every quarantine `raw_record` and `detail` goes through `mask_card_numbers`.
"""

from __future__ import annotations

import csv
import decimal
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from spark_jobs.card_numbers import (
    DETECTABLE_STRETCH,
    DETECTABLE_STRETCH_TABLE,
    CardTokenKeys,
    contains_card_number,
    luhn_valid,
    mask_card_field,
    mask_card_numbers,
    record_tokenizer,
)

__all__ = [
    "ACCEPTED_COLUMNS",
    "AMOUNT_LIMIT_EXCLUSIVE",
    "CONTRACT_FIELDS",
    "FIELD_MAX_CHARS",
    "FILE_TOO_LARGE",
    "FUTURE_TS_ALLOWANCE",
    "LINE_TOO_LONG",
    "POS_MODES",
    "QUARANTINE_REASONS",
    "REJECTED_COLUMNS",
    "TS_MAX_EXCLUSIVE",
    "TS_MIN",
    "AcceptedColumns",
    "BronzeFileParse",
    "FramedFile",
    "FramingLimits",
    "JsonNumber",
    "RecordVerdict",
    "RejectedColumns",
    "TooLongLine",
    "decode_json_object",
    "frame_file",
    "judge_record",
    "load_fx_rates",
    "parse_bronze_file",
]

CONTRACT_FIELDS = (
    "event_id",
    "card_id",
    "ts",
    "merchant_id",
    "amount",
    "currency",
    "country",
    "pos_mode",
    "card_number",
)
REQUIRED_FIELDS = CONTRACT_FIELDS[:-1]
_CONTRACT_FIELD_SET = frozenset(CONTRACT_FIELDS)
STRING_FIELDS = frozenset({"event_id", "card_id", "merchant_id", "currency", "country", "pos_mode", "card_number"})
NUMBER_FIELDS = frozenset({"ts", "amount"})
# The longest value (in characters) of each string field; longer is field_too_long. Ids: 128 is 4x the longest
# id a producer sends today (32-hex event ids, 36-character UUIDs, "card_" + 6 hex) and far below what every store
# takes (a Feature Store record identifier may hold 358,400 characters; S3 keys 1,024 bytes); a 20 MB card_id
# would otherwise flow into silver, gold, Delta statistics and the online store. Codes: room for a wrong code to
# be named by its own reason (unknown_currency "EURO", bad_enum "contactless "). card_number: 19 digits plus
# separators a producer may have left in, so a long one is named by invalid_card_number up to this length.
FIELD_MAX_CHARS = {
    "event_id": 128,
    "card_id": 128,
    "merchant_id": 128,
    "currency": 16,
    "country": 16,
    "pos_mode": 16,
    "card_number": 64,
}
# The strings searched for card numbers by name first (table order), before the other fields in line order.
_ID_MAX_CHARS = 128  # FIELD_MAX_CHARS of event_id, card_id and merchant_id (the fast path checks one number)
_DETECTED_CONTRACT_FIELDS = ("event_id", "card_id", "merchant_id", "currency", "country", "pos_mode")
POS_MODES = ("chip", "contactless", "swipe", "ecommerce", "manual")

MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
BAD_TYPE = "bad_type"
FIELD_TOO_LONG = "field_too_long"
CARD_NUMBER_IN_FIELD = "card_number_in_field"
OUT_OF_RANGE = "out_of_range"
FUTURE_TIMESTAMP = "future_timestamp"
NON_POSITIVE_AMOUNT = "non_positive_amount"
UNKNOWN_CURRENCY = "unknown_currency"
BAD_ENUM = "bad_enum"
INVALID_CARD_NUMBER = "invalid_card_number"
CONFLICTING_DUPLICATE = "conflicting_duplicate"  # decided in silver, across files

# The accepted fields whose equality makes a re-delivery a duplicate rather than a conflicting_duplicate
# (compared by value): silver's dedupe and the serving path's replay check both use them. Here, not in
# silver.py, because the serving path must not import Spark.
PAYLOAD_FIELDS = (
    "card_id",
    "ts_us",
    "merchant_id",
    "amount",
    "currency",
    "country",
    "pos_mode",
    "card_last4",
    "card_token",
)
UNREADABLE_FILE = "unreadable_file"
FILE_TOO_LARGE = "file_too_large"  # whole file: over FramingLimits.max_file_bytes
LINE_TOO_LONG = "line_too_long"  # that line only: over FramingLimits.max_line_bytes
QUARANTINE_REASONS = (
    MALFORMED_JSON,
    MISSING_FIELD,
    BAD_TYPE,
    FIELD_TOO_LONG,
    CARD_NUMBER_IN_FIELD,
    OUT_OF_RANGE,
    FUTURE_TIMESTAMP,
    NON_POSITIVE_AMOUNT,
    UNKNOWN_CURRENCY,
    BAD_ENUM,
    INVALID_CARD_NUMBER,
    CONFLICTING_DUPLICATE,
    UNREADABLE_FILE,
    FILE_TOO_LARGE,
    LINE_TOO_LONG,
)

TS_MIN = 946684800  # 2000-01-01T00:00:00Z
TS_MAX_EXCLUSIVE = 4102444800  # 2100-01-01T00:00:00Z
TS_MAX_DECIMALS = 6
# How far an event's ts may lie after the record's arrival (future_timestamp beyond it): producer clocks
# (POS terminals, acquirer hosts) drift by seconds to minutes between syncs; 15 minutes tolerates that, while a
# future ts accepted into silver would hold its card's newest row (and online features) for at most that long.
FUTURE_TS_ALLOWANCE = timedelta(minutes=15)
AMOUNT_LIMIT_EXCLUSIVE = 10**14
AMOUNT_MAX_DECIMALS = 4
FX_RATE_MAX_DECIMALS = 6
FX_RATE_LIMIT_EXCLUSIVE = 10**6  # usd_rate is DECIMAL(12,6)
DETAIL_VALUE_MAX_CHARS = 200
# The framing caps' defaults (FramingLimits; the jobs' --max-file-bytes and --max-line-bytes). Firehose writes an
# object when its buffer reaches buffering_size_mb, at most 128 MiB measured before GZIP compression (and a hint
# it may overshoot a little), so a genuine bronze object decompresses to about 128 MiB at most: 256 MiB is twice
# that. A line is one Kinesis record plus the newline Firehose appends, and a record's data is at most 1 MiB (the
# stream's default MaxRecordSize; 10 MiB only if raised), so a longer line cannot be a record.
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
TOO_LONG_LINE_HEAD_CHARS = 200  # a line_too_long raw_record keeps this many characters of the line

# Output columns, in the order the silver job writes them.
ACCEPTED_COLUMNS = (
    "line_number",
    "event_id",
    "card_id",
    "ts",
    "ts_us",
    "merchant_id",
    "amount",
    "currency",
    "amount_usd",
    "country",
    "pos_mode",
    "card_last4",
    "card_token",
)
REJECTED_COLUMNS = ("line_number", "raw_record", "reason", "detail")

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # also the start of the UTF-32 BOMs
_JSON_WHITESPACE = " \t\r"  # "\n" cannot occur inside a line
_COUNTRIES = frozenset(chr(a) + chr(b) for a in range(65, 91) for b in range(65, 91))
_POS_MODES = frozenset(POS_MODES)
_CARD_LENGTHS = range(12, 20)

# Exact decimal arithmetic: every value that reaches an operation is bounded by the checks before it,
# so 60 digits never round; InvalidOperation still traps, so nothing silently turns into NaN.
_EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
_TS_MIN = Decimal(TS_MIN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TS_MAX_EXCLUSIVE = Decimal(TS_MAX_EXCLUSIVE)
_AMOUNT_LIMIT = Decimal(AMOUNT_LIMIT_EXCLUSIVE)
_ZERO = Decimal(0)
_TS_QUANTUM = Decimal("1e-6")
_AMOUNT_QUANTUM = Decimal("1e-4")
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class JsonNumber(str):
    """A JSON number kept as its exact source text (the slow path's `parse_int`/`parse_float`)."""

    __slots__ = ()


class _NonStandardConstantError(ValueError):
    """NaN, Infinity or -Infinity: accepted by Python's json module, not JSON."""


def _reject_constant(name: str) -> object:
    raise _NonStandardConstantError(name)


# Objects decode to tuples of (key, value) pairs, so a repeated key stays visible (a dict would keep the
# last value silently) and the hook stays in C; arrays stay lists. The fast scanner turns numbers into
# Decimal straight from their text; the judging scanner keeps the text itself, for exact details.
_SCAN_FAST = json.JSONDecoder(
    object_pairs_hook=tuple, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant, strict=True
).scan_once
_SCAN_TEXT = json.JSONDecoder(
    object_pairs_hook=tuple, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_reject_constant, strict=True
).scan_once


@dataclass(slots=True)
class AcceptedColumns:
    """Accepted records, one list per output column (all the same length), in line order."""

    line_number: list[int] = field(default_factory=list)
    event_id: list[str] = field(default_factory=list)
    card_id: list[str] = field(default_factory=list)
    ts: list[Decimal] = field(default_factory=list)  # quantized to 6 places: DECIMAL(16,6)
    ts_us: list[int] = field(default_factory=list)  # exact integer microseconds since the epoch
    merchant_id: list[str] = field(default_factory=list)
    amount: list[Decimal] = field(default_factory=list)  # quantized to 4 places: DECIMAL(18,4)
    currency: list[str] = field(default_factory=list)
    amount_usd: list[Decimal] = field(default_factory=list)  # exact amount x usd_rate, <= 10 places: DECIMAL(30,10)
    country: list[str] = field(default_factory=list)
    pos_mode: list[str] = field(default_factory=list)
    card_last4: list[str | None] = field(default_factory=list)
    card_token: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line_number)

    def rows(self) -> Iterator[dict[str, object]]:
        """Each accepted record as a plain dict keyed by ACCEPTED_COLUMNS (for tests and small tools)."""
        columns = [getattr(self, name) for name in ACCEPTED_COLUMNS]
        for values in zip(*columns, strict=True):
            yield dict(zip(ACCEPTED_COLUMNS, values, strict=True))


@dataclass(slots=True)
class RejectedColumns:
    """Quarantined lines, one list per column, in line order; `raw_record` and `detail` are masked."""

    line_number: list[int] = field(default_factory=list)
    raw_record: list[str] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)
    detail: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line_number)

    def rows(self) -> Iterator[dict[str, object]]:
        """Each quarantined line as a plain dict keyed by REJECTED_COLUMNS."""
        for values in zip(self.line_number, self.raw_record, self.reason, self.detail, strict=True):
            yield dict(zip(REJECTED_COLUMNS, values, strict=True))


@dataclass(slots=True)
class BronzeFileParse:
    """The outcome of one bronze file.

    `lines` counts physical lines of the decompressed file, `blank_lines` the whitespace-only ones and
    `records_read` the others; every record read is in exactly one of `accepted` and `rejected` (a line over
    the line cap is a rejected line_too_long, never blank). When the whole file is quarantined, `file_reason` is
    its reason (unreadable_file, or file_too_large over the decompressed-size cap), `unreadable_reason` the
    detail, and the counts are 0.
    """

    lines: int = 0
    blank_lines: int = 0
    records_read: int = 0
    unreadable_reason: str | None = None
    file_reason: str | None = None
    accepted: AcceptedColumns = field(default_factory=AcceptedColumns)
    rejected: RejectedColumns = field(default_factory=RejectedColumns)

    def accepted_records(self) -> Iterator[dict[str, object]]:
        return self.accepted.rows()

    def rejected_records(self) -> Iterator[dict[str, object]]:
        return self.rejected.rows()


def parse_bronze_file(
    data: bytes,
    *,
    fx_rates: Mapping[str, Decimal],
    token_key: bytes | CardTokenKeys,
    arrival: datetime | None = None,
    future_allowance: timedelta = FUTURE_TS_ALLOWANCE,
    limits: FramingLimits | None = None,
) -> BronzeFileParse:
    """Parse one bronze file (its raw bytes, gzip or not) under contract v1. Never raises on bad data.

    `fx_rates` maps currency code to usd_rate (see `load_fx_rates`); `token_key` is the card-token HMAC
    key, or every held key version (`spark_jobs.card_numbers.resolve_token_keys`; then `card_token` holds the
    record's token under each version, current first: `card_numbers.token_candidates`). `arrival` (UTC) is
    when the file's records had arrived at the latest (`bronze_ledger.arrival_time`): a ts later than it plus
    `future_allowance` is future_timestamp; None skips that rule. `limits` are the framing caps (file_too_large,
    line_too_long); None: the defaults.
    """
    rates = _checked_rates(fx_rates)
    future = _future_limit(arrival, future_allowance)
    result = BronzeFileParse()
    framed = frame_file(data, limits)
    if framed.file_reason is not None:
        result.file_reason, result.unreadable_reason = framed.file_reason, framed.unreadable_reason
        return result
    lines = framed.lines
    if not lines:
        return result
    result.lines = len(lines)
    # Decimal operators below run in the exact context: checks before each one bound its operands.
    with decimal.localcontext(_EXACT):
        result.blank_lines = _parse_lines(lines, result, rates, token_key, future)
    if framed.too_long:
        result.blank_lines -= len(framed.too_long)  # their "" placeholders were counted blank
        _add_too_long_lines(result.rejected, framed.too_long)
    result.records_read = result.lines - result.blank_lines
    return result


def _add_too_long_lines(rejected: RejectedColumns, too_long: tuple[TooLongLine, ...]) -> None:
    """Add a file's line_too_long rows to its rejected lines, keeping them in line order."""
    rows = sorted(
        [
            *zip(rejected.line_number, rejected.raw_record, rejected.reason, rejected.detail, strict=True),
            *((item.line_number, item.head, LINE_TOO_LONG, item.detail) for item in too_long),
        ],
        key=lambda row: row[0],
    )
    rejected.line_number[:], rejected.raw_record[:], rejected.reason[:], rejected.detail[:] = (
        [row[index] for row in rows] for index in range(4)
    )


@dataclass(frozen=True, slots=True)
class RecordVerdict:
    """One record under the per-record rules: `accepted` (ACCEPTED_COLUMNS but line_number) or the
    quarantine `reason` and its `detail` (card numbers masked)."""

    accepted: dict[str, object] | None
    reason: str | None = None
    detail: str | None = None


def judge_record(
    record: bytes | str,
    *,
    fx_rates: Mapping[str, Decimal],
    token_key: bytes | CardTokenKeys,
    received_at: datetime | None = None,
    future_allowance: timedelta = FUTURE_TS_ALLOWANCE,
) -> RecordVerdict:
    """Judge one record outside a file (e.g. an HTTP request body) by exactly the rules of a bronze line.

    The record is one NDJSON line: a trailing line break and a leading UTF-8 BOM are dropped as the framing
    drops them, then every per-record rule applies in the contract's order (invalid UTF-8, duplicate keys,
    NaN, exponents, types, ranges, currency, enums, card number). File-level rules (gzip, UTF-16, NUL
    bytes as `unreadable_file`) do not apply; a record holding a line break, or none at all, is
    malformed_json. `received_at` plays the file's arrival (future_timestamp after it plus
    `future_allowance`; None: no such check). Never raises on bad data.
    """
    rates = _checked_rates(fx_rates)
    future = _future_limit(received_at, future_allowance)
    raw = record.encode("utf-8", "surrogatepass") if isinstance(record, str) else bytes(record)
    raw = raw.removesuffix(b"\n")
    if b"\n" in raw:
        return RecordVerdict(None, MALFORMED_JSON, "more than one line (a record is one NDJSON line)")
    line = _decode_line(raw)
    with decimal.localcontext(_EXACT):
        outcome = _judge_line(line, rates, _CardInfo(token_key), future)
    if outcome is None:
        return RecordVerdict(None, MALFORMED_JSON, "blank record")
    if len(outcome) == 2:
        reason, detail = outcome
        return RecordVerdict(None, reason, mask_card_numbers(detail))
    return RecordVerdict(dict(zip(ACCEPTED_COLUMNS[1:], outcome, strict=True)))


@dataclass(frozen=True, slots=True)
class FramingLimits:
    """The framing caps: past them a file or a line is quarantined unread, so one poison file (a gzip bomb, a
    line of gigabytes) can neither exhaust a worker's memory nor block the batch. Sizes in bytes.

    `max_file_bytes`: a file whose size, or decompressed size, is over it is file_too_large (decompression
    stops there). `max_line_bytes`: a line whose UTF-8 bytes (without its line break, trailing CR and leading
    BOM) are over it is line_too_long; the file's other lines proceed.
    """

    max_file_bytes: int = MAX_FILE_BYTES
    max_line_bytes: int = MAX_LINE_BYTES

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_line_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")


DEFAULT_FRAMING_LIMITS = FramingLimits()


@dataclass(frozen=True, slots=True)
class TooLongLine:
    """A line over `max_line_bytes`: its number, its size and a masked head for the quarantine raw_record."""

    line_number: int
    size: int
    head: str
    detail: str


@dataclass(frozen=True, slots=True)
class FramedFile:
    """A file's physical lines under the bronze framing rules, or why the whole file is quarantined.

    `lines[i]` is physical line i + 1 of the decompressed file, without its line break, trailing CR or
    leading UTF-8 BOM; a line that is not valid UTF-8 stays `bytes` (`decode_json_object` names it). A line
    over the line cap is `""` in `lines` and described in `too_long` (a caller must quarantine it as
    line_too_long, not count it blank). When the whole file is quarantined, `file_reason` is unreadable_file
    or file_too_large, `unreadable_reason` the detail, and `lines` is empty.
    """

    lines: list[str | bytes]
    unreadable_reason: str | None = None
    file_reason: str | None = None
    too_long: tuple[TooLongLine, ...] = ()


def frame_file(data: bytes, limits: FramingLimits | None = None) -> FramedFile:
    """Split one file (raw bytes, gzip detected by its magic bytes, not its name) into physical lines.

    The framing half of the contract, shared by every NDJSON feed that follows it (the chargeback feed
    too): gzip by magic bytes, decompressed incrementally up to `limits.max_file_bytes` (one byte more, or
    a plain file over it, is `file_too_large`); a corrupt gzip stream, a UTF-16/UTF-32 byte order mark or a
    NUL byte make the whole file unreadable (`unreadable_file`); CRLF and a leading BOM are stripped; the
    empty string after the last newline is not a line; a line over `limits.max_line_bytes` is set aside
    (`FramedFile.too_long`). Never raises on bad data.
    """
    limits = limits or DEFAULT_FRAMING_LIMITS
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) > limits.max_file_bytes:  # its stored size (a reader stops one byte past the cap)
        return _unreadable(f"size over the {limits.max_file_bytes}-byte limit (--max-file-bytes)", FILE_TOO_LARGE)
    if data.startswith(_GZIP_MAGIC):
        try:
            decompressed = _gunzip(data, limits.max_file_bytes)
        except (OSError, EOFError, zlib.error) as error:
            return _unreadable(f"corrupt gzip: {error}")
        if decompressed is None:
            return _unreadable(
                f"decompressed size over the {limits.max_file_bytes}-byte limit (--max-file-bytes)", FILE_TOO_LARGE
            )
        data = decompressed
    if data.startswith(_UTF16_BOMS) or data.startswith(b"\x00\x00\xfe\xff"):
        return _unreadable("bad encoding: UTF-16 or UTF-32 byte order mark (bronze is UTF-8)")
    nul = data.find(b"\x00")
    if nul >= 0:
        return _unreadable(f"bad encoding: NUL byte at offset {nul} (bronze is UTF-8 text)")
    lines = _split_lines(data) if data else []
    # No line can be longer than the file: the per-line check runs only for a file over the line cap.
    too_long = _set_aside_too_long_lines(lines, limits.max_line_bytes) if len(data) > limits.max_line_bytes else ()
    return FramedFile(lines, too_long=too_long)


def _unreadable(detail: str, reason: str = UNREADABLE_FILE) -> FramedFile:
    return FramedFile([], detail, reason)


def _set_aside_too_long_lines(lines: list[str | bytes], max_line_bytes: int) -> tuple[TooLongLine, ...]:
    """Replace each line over `max_line_bytes` UTF-8 bytes by "" (in place) and describe it."""
    # A str of n characters is n to 4n UTF-8 bytes: only a line over max_line_bytes // 4 characters can be
    # too long, and the common file has none (one C-speed pass over the lengths).
    suspect = max_line_bytes // 4
    if max(map(len, lines), default=0) <= suspect:
        return ()
    found = []
    for index, line in enumerate(lines):
        if len(line) <= suspect:
            continue
        size = len(line) if isinstance(line, bytes) else len(line.encode("utf-8"))
        if size > max_line_bytes:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            # Mask a wider window than is kept, so the cut can never leave part of a card number unmasked.
            window = text[: TOO_LONG_LINE_HEAD_CHARS + 256]
            head = mask_card_numbers(window)[:TOO_LONG_LINE_HEAD_CHARS] + "…"
            detail = f"line is {size} bytes, over the {max_line_bytes}-byte limit (--max-line-bytes)"
            found.append(TooLongLine(index + 1, size, head, detail))
            lines[index] = ""
    return tuple(found)


def decode_json_object(line: str | bytes) -> tuple[dict | None, str | None]:
    """One line of `frame_file` as a JSON object, under the contract's malformed_json rules.

    Returns (None, None) for a blank (whitespace-only) line, (None, detail) for a malformed_json line
    (invalid UTF-8, invalid JSON, NaN/Infinity, not an object, a duplicate key, a lone surrogate escape),
    else (object, None): a dict whose numbers are `JsonNumber` (their exact source text, a str subclass),
    nested objects (key, value) tuples and arrays lists.
    """
    framed = _frame_line(line)
    if framed is None:
        return None, None
    if isinstance(framed, str):
        return None, framed
    pairs, obj = framed
    if "\\" in line and _LONE_SURROGATE_ESCAPE.search(line) and _has_lone_surrogate(pairs):
        return None, "invalid JSON: lone surrogate escape (not encodable as UTF-8)"
    return obj, None


# The per-line hot path of every bronze file: the common case stays inline in one loop (a call per line
# costs measurably at millions of lines), so it is longer and branchier than the house limit.
def _parse_lines(
    lines: list[str | bytes],
    result: BronzeFileParse,
    rates: dict[str, Decimal],
    token_key: bytes | CardTokenKeys,
    future: _FutureLimit | None = None,
) -> int:
    """Validate every line into result.accepted / result.rejected; returns the number of blank lines.

    The loop is a fast path that only ever accepts: a line that is not plainly valid goes to
    `_judge_line`, which applies every rule in order and has the last word (reject, accept or blank).
    """
    accepted = result.accepted
    rejected = result.rejected
    add_line = accepted.line_number.append
    add_event_id = accepted.event_id.append
    add_card_id = accepted.card_id.append
    add_ts = accepted.ts.append
    add_ts_us = accepted.ts_us.append
    add_merchant_id = accepted.merchant_id.append
    add_amount = accepted.amount.append
    add_currency = accepted.currency.append
    add_amount_usd = accepted.amount_usd.append
    add_country = accepted.country.append
    add_pos_mode = accepted.pos_mode.append
    add_last4 = accepted.card_last4.append
    add_token = accepted.card_token.append
    card_info = _CardInfo(token_key)
    cards = card_info.cache
    scan = _SCAN_FAST
    decimal_type = Decimal
    countries = _COUNTRIES
    pos_modes = _POS_MODES
    lone_surrogate = _LONE_SURROGATE_ESCAPE.search
    # card_number_in_field prefilter: a line without a stretch of 13 digits, spaces or dashes but its
    # card_number value, and without an escape, cannot hold a detectable card number anywhere else.
    stretch_table, thirteen = DETECTABLE_STRETCH_TABLE, DETECTABLE_STRETCH
    id_max = _ID_MAX_CHARS
    ts_min, ts_max, zero, amount_limit = _TS_MIN, _TS_MAX_EXCLUSIVE, _ZERO, _AMOUNT_LIMIT
    ts_latest = _TS_MAX_EXCLUSIVE if future is None else future.latest_ts  # ts <= it, else for _judge_line
    ts_quantum, amount_quantum = _TS_QUANTUM, _AMOUNT_QUANTUM
    blank_lines = 0

    for line_number, line in enumerate(lines, 1):
        try:
            pairs, end = scan(line, 0)
        except Exception:  # any failure is for _judge_line to name
            end = -1
        if end == len(line) and type(pairs) is tuple and ("\\" not in line or not lone_surrogate(line)):
            obj = dict(pairs)
            try:
                event_id = obj["event_id"]
                card_id = obj["card_id"]
                ts = obj["ts"]
                merchant_id = obj["merchant_id"]
                amount = obj["amount"]
                currency = obj["currency"]
                country = obj["country"]
                pos_mode = obj["pos_mode"]
            except KeyError:
                event_id = None
            card_number = obj.get("card_number")
            if (
                len(obj) == len(pairs)  # no repeated key
                and type(event_id) is str
                and 0 < len(event_id) <= id_max
                and type(card_id) is str
                and 0 < len(card_id) <= id_max
                and type(ts) is decimal_type
                and ts_min <= ts < ts_max
                and ts <= ts_latest
                and type(merchant_id) is str
                and 0 < len(merchant_id) <= id_max
                and type(amount) is decimal_type
                and zero < amount < amount_limit
                and type(currency) is str
                and currency in rates
                and type(country) is str
                and country in countries
                and type(pos_mode) is str
                and pos_mode in pos_modes
            ):
                ts_exact = ts.quantize(ts_quantum)
                amount_exact = amount.quantize(amount_quantum)
                if card_number is None:
                    card = _NO_CARD
                elif type(card_number) is str:
                    card = cards.get(card_number) or card_info(card_number)
                else:
                    card = None
                raw = line.encode()
                stretches = raw.translate(stretch_table)
                found = stretches.find(thirteen)
                if found >= 0 and type(card_number) is str:  # usually the card_number value itself: skip it
                    card_bytes = card_number.encode()
                    after = found + len(card_bytes)
                    if raw.startswith(card_bytes, found) and stretches[after : after + 1] != b"0":
                        found = stretches.find(thirteen, after)
                if (found >= 0 or "\\" in line) and _card_number_outside_card_field(obj):
                    card = None  # card_number_in_field: for _judge_line to name
                if ts_exact == ts and amount_exact == amount and card is not None:
                    add_line(line_number)
                    add_event_id(event_id)
                    add_card_id(card_id)
                    add_ts(ts_exact)
                    add_ts_us(int(ts_exact.scaleb(6)))
                    add_merchant_id(merchant_id)
                    add_amount(amount_exact)
                    add_currency(currency)
                    add_amount_usd(amount_exact * rates[currency])
                    add_country(country)
                    add_pos_mode(pos_mode)
                    add_last4(card[0])
                    add_token(card[1])
                    continue

        outcome = _judge_line(line, rates, card_info, future)
        if outcome is None:
            blank_lines += 1
        elif len(outcome) == 2:
            reason, detail = outcome
            text = line if isinstance(line, str) else line.decode("utf-8", "replace")
            rejected.line_number.append(line_number)
            rejected.raw_record.append(mask_card_numbers(text))
            rejected.reason.append(reason)
            rejected.detail.append(mask_card_numbers(detail))
        else:
            add_line(line_number)
            for column, value in zip(ACCEPTED_COLUMNS[1:], outcome, strict=True):
                getattr(accepted, column).append(value)
    return blank_lines


_NO_CARD = (None, None)


@dataclass(frozen=True, slots=True)
class _FutureLimit:
    """The latest ts a record may carry: its arrival plus the allowance (seconds, exact), and the detail's tail."""

    latest_ts: Decimal
    detail: str


def _future_limit(arrival: datetime | None, allowance: timedelta) -> _FutureLimit | None:
    if arrival is None:
        return None
    if arrival.tzinfo is None:
        raise ValueError(f"arrival {arrival!r} must be timezone-aware (UTC)")
    # Exact: whole microseconds since the epoch, as Decimal seconds.
    latest_us = (arrival + allowance - _EPOCH) // timedelta(microseconds=1)
    shown = arrival.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return _FutureLimit(Decimal(latest_us).scaleb(-6), f"arrival={shown} allowance={allowance.total_seconds():g}s")


CARD_CACHE_MAX_ENTRIES = 100_000


class _CardInfo:
    """card_number -> (card_last4, card_token) for valid card numbers; None for invalid ones.

    Valid cards are cached across files for one token key (a Spark Python worker parses many small
    Firehose files in turn, and the same cards recur); the cache is emptied when it reaches
    CARD_CACHE_MAX_ENTRIES (about 40 MB) or the key changes.
    """

    __slots__ = ("cache", "tokenize")
    _shared: tuple[bytes | CardTokenKeys, dict[str, tuple[str, str]], Callable[[str], str]] | None = None

    def __init__(self, token_key: bytes | CardTokenKeys) -> None:
        shared = _CardInfo._shared
        if shared is None or shared[0] != token_key:
            shared = _CardInfo._shared = (token_key, {}, record_tokenizer(token_key))
        elif len(shared[1]) >= CARD_CACHE_MAX_ENTRIES:
            shared[1].clear()
        _, self.cache, self.tokenize = shared

    def __call__(self, card_number: str) -> tuple[str, str] | None:
        card = self.cache.get(card_number)
        if card is None:
            if not (len(card_number) in _CARD_LENGTHS and luhn_valid(card_number)):
                return None
            card = self.cache[card_number] = (card_number[-4:], self.tokenize(card_number))
        return card


def _judge_line(  # noqa: PLR0911
    line: str | bytes, rates: dict[str, Decimal], card_info: _CardInfo, future: _FutureLimit | None = None
) -> tuple | None:
    """Every rule of the contract, in order, for one line.

    Returns None for a blank line, (reason, detail) for a quarantined one, or the accepted values in
    ACCEPTED_COLUMNS order without line_number. Decimal operations run in the caller's exact context.
    """
    obj, malformed = decode_json_object(line)
    if obj is None:
        return None if malformed is None else (MALFORMED_JSON, malformed)
    finding = _missing_or_bad_type(obj) or _field_too_long(obj) or _card_number_in_field(obj)
    if finding is not None:
        return finding

    ts, amount = obj["ts"], obj["amount"]
    # ts: in range, at most 6 decimal places (trailing zeros do not count)
    try:
        ts_value = Decimal(ts)
    except decimal.InvalidOperation:  # an exponent beyond what Decimal holds: far out of range
        return OUT_OF_RANGE, f"field=ts value={ts}"
    if not (_TS_MIN <= ts_value < _TS_MAX_EXCLUSIVE) or _decimal_places(ts_value) > TS_MAX_DECIMALS:
        return OUT_OF_RANGE, f"field=ts value={ts}"
    if future is not None and ts_value > future.latest_ts:
        return FUTURE_TIMESTAMP, f"field=ts value={ts} {future.detail}"
    # amount: below 1e14 with at most 4 decimal places (trailing zeros do not count), else out_of_range;
    # then > 0, else non_positive_amount
    try:
        amount_value = Decimal(amount)
    except decimal.InvalidOperation:
        return OUT_OF_RANGE, f"field=amount value={amount}"
    if amount_value >= _AMOUNT_LIMIT or _decimal_places(amount_value) > AMOUNT_MAX_DECIMALS:
        return OUT_OF_RANGE, f"field=amount value={amount}"
    if amount_value <= _ZERO:
        return NON_POSITIVE_AMOUNT, f"field=amount value={amount}"

    currency, country, pos_mode = obj["currency"], obj["country"], obj["pos_mode"]
    rate = rates.get(currency)
    if rate is None:
        return UNKNOWN_CURRENCY, f"field=currency value={_json_literal(currency)}"
    if country not in _COUNTRIES:
        return BAD_ENUM, f"field=country value={_json_literal(country)}"
    if pos_mode not in _POS_MODES:
        return BAD_ENUM, f"field=pos_mode value={_json_literal(pos_mode)}"
    card_number = obj.get("card_number")
    card = _NO_CARD if card_number is None else card_info(card_number)
    if card is None:
        return INVALID_CARD_NUMBER, f"field=card_number value={mask_card_field(_json_literal(card_number))}"

    ts_exact = ts_value.quantize(_TS_QUANTUM)
    amount_exact = amount_value.quantize(_AMOUNT_QUANTUM)
    return (
        obj["event_id"],
        obj["card_id"],
        ts_exact,
        int(ts_exact.scaleb(6)),
        obj["merchant_id"],
        amount_exact,
        currency,
        amount_exact * rate,
        country,
        pos_mode,
        card[0],
        card[1],
    )


_GUNZIP_STEP_BYTES = 8 * 1024 * 1024


def _gunzip(data: bytes, max_bytes: int) -> bytes | None:
    """Decompress gzip data (every member, as gzip.decompress does), or None once the output passes
    `max_bytes`: zlib's max_length bounds each step, so memory holds at most the cap plus one step."""
    parts: list[bytes] = []
    total = 0
    remaining = data
    while True:  # one gzip member per pass
        decompressor = zlib.decompressobj(31)
        pending = remaining
        while True:
            chunk = decompressor.decompress(pending, min(_GUNZIP_STEP_BYTES, max_bytes - total + 1))
            total += len(chunk)
            if total > max_bytes:
                return None
            parts.append(chunk)
            if decompressor.eof:
                break
            pending = decompressor.unconsumed_tail
            if not pending:  # all input used, below the cap, no end of stream
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        remaining = decompressor.unused_data.lstrip(b"\x00")  # zero padding after a member is allowed
        if not remaining:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if not remaining.startswith(_GZIP_MAGIC):
            raise gzip.BadGzipFile(f"Not a gzipped file ({remaining[:2]!r})")


def _split_lines(data: bytes) -> list[str | bytes]:
    """The physical lines of a decompressed file, trailing CRs and a leading BOM stripped; invalid UTF-8 stays bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        lines: list[str | bytes] = [_decode_line(raw) for raw in data.split(b"\n")]
        if lines[-1] == "":
            lines.pop()  # the empty string after the last "\n" is not a line
        return lines
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    if "\ufeff" in text:
        lines = [line[1:] if line.startswith("\ufeff") else line for line in lines]
    return lines


def _decode_line(raw: bytes) -> str | bytes:
    raw = raw.rstrip(b"\r")
    if raw.startswith(_UTF8_BOM):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _frame_line(line: str | bytes) -> tuple[tuple, dict] | str | None:  # noqa: PLR0911 - one return per finding
    """A line the fast path did not take: None when blank, the malformed_json detail, or (pairs, object)."""
    if isinstance(line, bytes):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            return f"invalid UTF-8 at byte {error.start}"
    body = line.strip(_JSON_WHITESPACE)
    if not body:
        return None
    try:
        pairs, end = _SCAN_TEXT(body, 0)
    except StopIteration as error:  # the scanner's way of saying "Expecting value" at error.value
        return f"invalid JSON: Expecting value at column {_column(line, error.value)}"
    except json.JSONDecodeError as error:
        return f"invalid JSON: {error.msg.removesuffix(' at')} at column {_column(line, error.pos)}"
    except _NonStandardConstantError as error:
        return f"invalid JSON: non-standard number {error.args[0]}"
    except RecursionError:
        return "invalid JSON: nesting too deep"
    if end != len(body):
        extra = body[end:]
        position = end + len(extra) - len(extra.lstrip(_JSON_WHITESPACE))
        return f"invalid JSON: Extra data at column {_column(line, position)}"
    if type(pairs) is not tuple:
        return f"not an object: {_json_type(pairs)}"
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        return f"duplicate key {json.dumps(duplicate, ensure_ascii=False)}"
    return pairs, obj


def _missing_or_bad_type(obj: dict) -> tuple[str, str] | None:
    """The missing_field or bad_type finding of a decoded (text-number) record, if any."""
    for name in REQUIRED_FIELDS:
        if name not in obj:
            return MISSING_FIELD, f"field={name} value=missing"
        value = obj[name]
        if value is None or value == "":  # an empty string is missing, whatever the field's type
            return MISSING_FIELD, f"field={name} value={_json_literal(value)}"
    for name in CONTRACT_FIELDS:
        value = obj.get(name)
        if value is None:
            continue  # only card_number can still be absent (or null) here
        expected = JsonNumber if name in NUMBER_FIELDS else str
        if type(value) is not expected:
            literal = _json_literal(value)
            return BAD_TYPE, f"field={name} value={mask_card_field(literal) if name == 'card_number' else literal}"
    return None


def _field_too_long(obj: dict) -> tuple[str, str] | None:
    """The field_too_long finding of a record whose fields have their types: the value is not shown."""
    for name, limit in FIELD_MAX_CHARS.items():
        value = obj.get(name)
        if value is not None and len(value) > limit:
            return FIELD_TOO_LONG, f"field={name} length={len(value)} max={limit}"
    return None


def _card_number_in_field(obj: dict) -> tuple[str, str] | None:
    """The card_number_in_field finding: a card number (`contains_card_number`) in a string other than the
    card_number field's value: contract fields in table order, then every other key and value in line order
    (nested ones included). The detail names the top-level field and shows its value (masked later)."""
    for name in _DETECTED_CONTRACT_FIELDS:
        if contains_card_number(obj[name]):
            return CARD_NUMBER_IN_FIELD, f"field={name} value={_json_literal(obj[name])}"
    for key, value in obj.items():
        if key in _CONTRACT_FIELD_SET:
            continue
        if contains_card_number(key) or _holds_card_number(value):
            return CARD_NUMBER_IN_FIELD, f"field={_detail_key(key)} value={_json_literal(value)}"
    return None


def _detail_key(key: str) -> str:
    """A producer's object key as a detail shows it: cut like a value (`_json_literal`), masked before the cut
    so a cut never leaves part of a card number unmasked."""
    if len(key) <= DETAIL_VALUE_MAX_CHARS:
        return key
    return mask_card_numbers(key)[:DETAIL_VALUE_MAX_CHARS] + "…"


def _holds_card_number(value: object) -> bool:
    """True when a decoded JSON value holds a card number in any string or object key, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is str:  # not JsonNumber (a str subclass): numbers are not strings
            if contains_card_number(item):
                return True
        elif type(item) is tuple:  # a decoded object: (key, value) pairs
            for key, inner in item:
                if contains_card_number(key):
                    return True
                pending.append(inner)
        elif type(item) is list:
            pending.extend(item)
    return False


def _card_number_outside_card_field(obj: dict) -> bool:
    """The fast path's exact check: a card number in any string of `obj` (contract fields or not, keys
    included) but the card_number field's own value."""
    for key, value in obj.items():
        if contains_card_number(key) or (key != "card_number" and _holds_card_number(value)):
            return True
    return False


def _decimal_places(value: Decimal) -> int:
    """Decimal places of `value` as written, not counting trailing zeros; exact for any exponent."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return 0
    significant = bytes(digits).rstrip(b"\x00")
    if not significant:
        return 0  # zero, however many zeros it was written with
    return max(0, -exponent - (len(digits) - len(significant)))


def _column(text: str, body_offset: int) -> int:
    """1-based character column in the line text of an offset into its whitespace-stripped body."""
    return len(text) - len(text.lstrip(_JSON_WHITESPACE)) + body_offset + 1


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "boolean"
    if type(value) is JsonNumber:
        return "number"
    if isinstance(value, str):
        return "string"
    if type(value) is tuple:
        return "object"
    return "array"


def _json_literal(value: object) -> str:
    """The JSON text of a parsed value: numbers exactly as written, strings re-escaped; long values cut."""
    parts: list[str] = []
    _render(value, parts, 0)
    literal = "".join(parts)
    if len(literal) > DETAIL_VALUE_MAX_CHARS:
        # mask before cutting, so a cut can never leave a partial card number unmasked
        literal = mask_card_numbers(literal)[:DETAIL_VALUE_MAX_CHARS] + "…"
    return literal


_RENDER_MAX_DEPTH = 8


def _render(value: object, parts: list[str], depth: int) -> None:
    if type(value) is JsonNumber:
        parts.append(value)
    elif isinstance(value, str):
        parts.append(json.dumps(value, ensure_ascii=False))
    elif value is None or type(value) is bool:
        parts.append(json.dumps(value))
    elif depth >= _RENDER_MAX_DEPTH or sum(map(len, parts)) > DETAIL_VALUE_MAX_CHARS:
        parts.append("…")
    elif type(value) is tuple:  # a decoded object: (key, value) pairs
        parts.append("{")
        for index, (key, item) in enumerate(value):
            parts.append("," if index else "")
            parts.append(json.dumps(key, ensure_ascii=False))
            parts.append(":")
            _render(item, parts, depth + 1)
        parts.append("}")
    else:
        parts.append("[")
        for index, item in enumerate(value):  # type: ignore[attr-defined]
            parts.append("," if index else "")
            _render(item, parts, depth + 1)
        parts.append("]")


def _has_lone_surrogate(obj: object) -> bool:
    """True when any string or key in `obj` holds an unpaired surrogate (cannot be encoded as UTF-8)."""
    pending = [obj]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not _encodes_as_utf8(value):
                return True
        elif type(value) is tuple:  # a decoded object: (key, value) pairs
            for key, item in value:
                if not _encodes_as_utf8(key):
                    return True
                pending.append(item)
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _encodes_as_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_last_checked_rates: tuple[tuple, dict[str, Decimal]] | None = None


def _checked_rates(fx_rates: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """A validated copy of `fx_rates`; the last one is reused, since every file of a run has the same rates."""
    global _last_checked_rates  # noqa: PLW0603 - a one-entry cache
    items = tuple(fx_rates.items())
    last = _last_checked_rates
    if last is not None and last[0] == items and all(type(rate) is Decimal for _, rate in items):
        return last[1]
    rates: dict[str, Decimal] = {}
    for currency, rate in fx_rates.items():
        if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
            raise ValueError(f"fx rate for {currency!r} must be a positive finite Decimal, got {rate!r}")
        if _decimal_places(rate) > FX_RATE_MAX_DECIMALS or rate >= FX_RATE_LIMIT_EXCLUSIVE:
            raise ValueError(f"fx rate for {currency!r} does not fit DECIMAL(12,6): {rate}")
        rates[currency] = rate
    _last_checked_rates = (items, rates)
    return rates


def load_fx_rates(path_or_text: str | Path | bytes, *, source: str | None = None) -> dict[str, Decimal]:
    """Read a `currency,usd_rate` CSV into {currency: usd_rate}.

    `path_or_text` is a path (Path, or str without a newline) or the file's content (bytes, or str with
    a newline). Raises ValueError naming the file, line and field on: a missing or different header,
    a row without exactly two fields, an empty or space-padded or duplicated currency, a usd_rate that is
    not a plain decimal (digits, optional fraction), not positive, with more than 6 decimal places
    (trailing zeros do not count) or of 1e6 or more (usd_rate is DECIMAL(12,6)), or no rows at all.
    Blank lines are skipped. `source` names the file in errors when its content is passed (e.g. the
    S3 URI it was read from).
    """
    text, source = _fx_rates_text(path_or_text, source)
    rates: dict[str, Decimal] = {}
    first_line_of: dict[str, int] = {}
    header_seen = False
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        line_number = reader.line_num
        if not row or row == [""]:
            continue
        where = f"{source} line {line_number}"
        if not header_seen:
            if row != ["currency", "usd_rate"]:
                raise ValueError(f"{where}: expected the header 'currency,usd_rate', found {','.join(row)!r}")
            header_seen = True
            continue
        if len(row) != 2:
            raise ValueError(f"{where}: expected 2 fields (currency,usd_rate), found {len(row)}")
        currency, rate_text = row
        if not currency or currency != currency.strip():
            raise ValueError(f"{where} field currency: {currency!r} is empty or has surrounding spaces")
        if currency in rates:
            raise ValueError(
                f"{where} field currency: duplicate currency {currency!r} (first on line {first_line_of[currency]})"
            )
        rates[currency] = _fx_rate(rate_text, where)
        first_line_of[currency] = line_number
    if not header_seen:
        raise ValueError(f"{source}: empty file, expected the header 'currency,usd_rate'")
    if not rates:
        raise ValueError(f"{source}: no currencies after the header")
    return rates


def _fx_rates_text(path_or_text: str | Path | bytes, source: str | None) -> tuple[str, str]:
    """The FX file's text and the name errors give it (see load_fx_rates)."""
    if isinstance(path_or_text, bytes):
        try:
            text = path_or_text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = path_or_text.count(b"\n", 0, error.start) + 1
            raise ValueError(
                f"{source or '<fx rates text>'} line {line}: not UTF-8 ({error.reason} at byte {error.start})"
            ) from None
    elif isinstance(path_or_text, str) and "\n" in path_or_text:
        text = path_or_text.removeprefix("\ufeff")
    else:
        source = source or str(path_or_text)
        text = Path(path_or_text).read_text(encoding="utf-8-sig")
    return text, source or "<fx rates text>"


def _fx_rate(rate_text: str, where: str) -> Decimal:
    """One usd_rate field: a plain positive decimal that fits DECIMAL(12,6), else ValueError at `where`."""
    if not _PLAIN_DECIMAL.fullmatch(rate_text):
        raise ValueError(f"{where} field usd_rate: {rate_text!r} is not a plain decimal number")
    rate = Decimal(rate_text)
    if rate <= 0:
        raise ValueError(f"{where} field usd_rate: {rate_text!r} is not positive")
    if _decimal_places(rate) > FX_RATE_MAX_DECIMALS:
        raise ValueError(
            f"{where} field usd_rate: {rate_text!r} has more than {FX_RATE_MAX_DECIMALS} decimal places "
            "(usd_rate is DECIMAL(12,6))"
        )
    if rate >= FX_RATE_LIMIT_EXCLUSIVE:
        raise ValueError(f"{where} field usd_rate: {rate_text!r} does not fit DECIMAL(12,6)")
    return rate
