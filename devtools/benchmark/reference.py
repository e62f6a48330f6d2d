"""The benchmark's DuckDB reference: bronze → silver → gold card features without Spark.

A reference in the benchmark, not a product path. It does the work of `spark_jobs/silver_and_gold.py
--mode full` from the same bronze files, independently, so `scripts/benchmark.py` can time Spark against
it and check that both give the same gold:

1. **Frame** every bronze file (the contract's file rules: gzip by magic bytes, UTF-16/32 BOM or NUL →
   `unreadable_file`, split on `\\n`, trailing `\\r` and one leading BOM per line stripped, invalid UTF-8
   per line) in a thread pool with zlib and pyarrow, into Arrow (file, 1-based physical line, text). The job's
   default size caps apply: a file over 256 MiB stored or decompressed is `file_too_large` (decompression
   stops there), a line over 1 MiB is `line_too_long` (kept out of the validation).
2. **Validate** in DuckDB SQL with its JSON functions: `malformed_json`, `missing_field`, `bad_type`,
   `field_too_long` (the contract's `FIELD_MAX_CHARS`), `card_number_in_field` (SQL macros over every key and
   string value but the card_number value), `out_of_range`, `future_timestamp`, `non_positive_amount`,
   `unknown_currency`, `bad_enum`,
   `invalid_card_number`, in the contract's order. A file's arrival is the earlier of its `ingest_dt=` hour's end
   plus the job's default Firehose buffering (900 s) and its modification time; `ts` after it plus the job's
   default allowance (15 minutes) is `future_timestamp`. `ts` and `amount` are read from the number's decimal
   text (a regular expression over the line, never yyjson's double), so `ts_us` and `amount` are exact; FX is
   DECIMAL arithmetic
   (DECIMAL(18,4) × DECIMAL(12,6) = DECIMAL(30,10)); card tokens are HMAC-SHA256 in SQL.
3. **Corners SQL does not express** are judged by the contract's own Python (`parse_bronze_file` on that
   one line) and counted in the report (`judged_by_contract`): lines that are valid JSON objects but hold a
   backslash escape (escaped keys, surrogates), `NaN`/`Infinity` (yyjson accepts them), a nested value (`[`
   or a second `{`), a comma before `}` (yyjson accepts trailing commas), or a `ts`/`amount` written with an
   exponent. The generated lake hits them only with bad lines (about 0.1 % of lines); the benchmark also
   checks every quarantine reason against Spark's quarantine table.
4. **Deduplicate** valid records by event_id, first seen wins by (file URI, line number); a later equal
   payload is a duplicate, a different one `conflicting_duplicate`.
5. **Features** with DuckDB window functions over RANGE frames on `ts_us` (both ends inclusive, peers
   included; `1 PRECEDING` ends the strictly earlier frames), the definitions of
   `spark_jobs/feature_registry.py` and V2_DESIGN written out again here: every CARD_FEATURES column.
6. **The chargeback feed and the merchant snapshot** (`merchant_reference.py`): the feed's valid records read
   independently, the snapshot per (merchant, UTC day) in SQL.

Outputs (Parquet, zstd) under `--output-dir`: silver, duplicates, quarantine, gold, chargebacks,
merchant_features, plus `report.json` (timings per phase, counts). No raw card number is written (only
`card_last4` and `card_token`).

`verify` compares a reference output with Spark's tables: gold row for row (integers and decimals exactly,
doubles to a relative 1e-12, the z-score 1e-9), silver, duplicates and quarantine (file, line, reason)
exactly, silver/chargebacks' valid records, gold/merchant_features row for row and per silver event.

    python scripts/benchmark_reference.py build --lake-root LAKE --output-dir OUT
    python scripts/benchmark_reference.py verify --lake-root LAKE --output-dir OUT
"""

from __future__ import annotations

import gzip
import io
import json
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from devtools.benchmark import merchant_reference
from devtools.repo import REPO_ROOT
from spark_jobs.bronze_contract import FIELD_MAX_CHARS, MAX_FILE_BYTES, MAX_LINE_BYTES  # the job's default caps
from spark_jobs.card_numbers import CardTokenKeys, versioned_token
from spark_jobs.feature_registry import FEATURE_SET_VERSION

DEFAULT_FX_RATES = REPO_ROOT / "spark_jobs" / "reference_data" / "fx_rates.csv"
BRONZE_PREFIX = "bronze/streaming/card_authorization"

HOUR_US = 3_600_000_000
# silver_and_gold's defaults without --firehose-buffering-seconds and --future-allowance-minutes (the benchmark's)
FIREHOSE_BUFFERING_US = 900_000_000
FUTURE_ALLOWANCE_US = 900_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
MONTH_US = 30 * DAY_US
FEATURE_SET_VERSION_COLUMN = "feature_set_version"
DOUBLE_RELATIVE_TOLERANCE = 1e-12
# The z-score's variance is a difference of doubles (V2_DESIGN.md): agreement within 1e-9 relative, as designed.
RELATIVE_TOLERANCE = {"amount_zscore_30d": 1e-9}

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")

# Gold's columns by how they are compared (every CARD_FEATURES column; a test checks the registry is covered).
GOLD_INTEGERS = (
    "txn_count_1h",
    "txn_count_24h",
    "merchant_count_24h",
    "country_count_24h",
    "txn_count_30d",
    "merchant_seen_30d",
    "hour_of_day",
    "is_weekend",
    "is_night",
)
GOLD_DECIMALS = ("txn_amount_1h", "max_amount_24h")
GOLD_DOUBLES = ("avg_amount_7d", "amount_to_avg_7d", "secs_since_prev_txn", "avg_amount_30d", "amount_zscore_30d")
GOLD_KEYS = ("card_id", "merchant_id", "ts", "ts_us", "event_ts", "dt", "amount_usd")


# ------------------------------------------------------------------------------------------------ framing
@dataclass
class FramedBronzeFile:
    file_id: int
    uri: str
    lines: int = 0
    unreadable_reason: str | None = None
    file_reason: str | None = None  # unreadable_file or file_too_large: the whole file is quarantined
    too_long: list[int] = field(default_factory=list)  # numbers of the lines over MAX_LINE_BYTES
    batch: object = None  # pyarrow.RecordBatch (file_id, line_number, line, bad_utf8)


def list_bronze_files(lake_root: Path) -> list[tuple[str, Path]]:
    """Bronze files as the job's first listing sees them: every file in an `ingest_dt=` folder, no name
    starting with `_` or `.`, not empty; sorted by canonical URI (`file://` + absolute path)."""
    root = (lake_root / BRONZE_PREFIX).resolve()
    found = []
    if not root.exists():
        return found
    for folder, directories, files in os.walk(root):
        directories[:] = [name for name in directories if not name.startswith(("_", "."))]
        relative = Path(folder).relative_to(root).as_posix()
        if not relative.startswith("ingest_dt="):
            continue
        for name in files:
            if name.startswith(("_", ".")):
                continue
            path = Path(folder) / name
            if path.stat().st_size > 0:
                found.append(("file://" + str(path), path))
    found.sort(key=lambda item: item[0])
    return found


def latest_ts_us(path: Path) -> int:
    """The latest `ts` (µs) a record of this bronze file may carry: its arrival (the earlier of its `ingest_dt=`
    hour's end plus the buffering and its modification time) plus the allowance."""
    import datetime as dt
    import re

    arrival_us = path.stat().st_mtime_ns // 1000
    hour = re.search(r"/ingest_dt=(\d{4})/(\d{2})/(\d{2})/(\d{2})/", str(path))
    if hour:
        start = dt.datetime(*(int(part) for part in hour.groups()), tzinfo=dt.UTC)
        arrival_us = min(arrival_us, (int(start.timestamp()) + 3600) * 1_000_000 + FIREHOSE_BUFFERING_US)
    return arrival_us + FUTURE_ALLOWANCE_US


def _gunzip(data: bytes) -> bytes | None:
    """The decompressed bytes, or None past MAX_FILE_BYTES (never decompressing more than one byte past it)."""
    decompressor = zlib.decompressobj(31)
    out = decompressor.decompress(data, MAX_FILE_BYTES + 1)
    if not (decompressor.eof and not decompressor.unused_data):
        # several members, trailing bytes or a truncated stream (or the cap reached): the gzip module decides
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(MAX_FILE_BYTES + 1)
    return None if len(out) > MAX_FILE_BYTES else out


def frame_file(file_id: int, uri: str, path: Path) -> FramedBronzeFile:
    """One bronze file → an Arrow batch of its physical lines (vectorised; per-line Python only for a
    file that is not valid UTF-8)."""
    import pyarrow as pa

    framed = FramedBronzeFile(file_id, uri)
    data = _file_bytes(framed, path)
    if not data:  # quarantined whole (framed says why), or empty
        return framed
    lines, bad_utf8, sizes = _physical_lines(data)
    if len(data) > MAX_LINE_BYTES:  # else no line can be over the cap
        lines, bad_utf8 = _set_aside_too_long_lines(framed, lines, bad_utf8, sizes)
    count = len(lines)
    framed.lines = count
    framed.batch = pa.RecordBatch.from_arrays(
        [
            pa.array(np_full(count, file_id), type=pa.int32()),
            pa.array(np_arange(count), type=pa.int64()),
            lines,
            bad_utf8 if bad_utf8 is not None else pa.array(np_zeros_bool(count), type=pa.bool_()),
        ],
        names=["file_id", "line_number", "line", "bad_utf8"],
    )
    return framed


def _file_bytes(framed: FramedBronzeFile, path: Path) -> bytes | None:
    """The file's decompressed bytes, or None with `framed.file_reason` set (file_too_large, unreadable_file)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        framed.file_reason, framed.unreadable_reason = "file_too_large", "size over the cap"
        return None
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            data = _gunzip(data)
        except (OSError, EOFError, zlib.error) as error:
            framed.file_reason, framed.unreadable_reason = "unreadable_file", f"corrupt gzip: {error}"
            return None
        if data is None:
            framed.file_reason, framed.unreadable_reason = "file_too_large", "decompressed size over the cap"
            return None
    if data.startswith(WIDE_BOMS):
        framed.file_reason, framed.unreadable_reason = "unreadable_file", "bad encoding: UTF-16 or UTF-32 BOM"
        return None
    if b"\x00" in data:
        framed.file_reason, framed.unreadable_reason = "unreadable_file", "bad encoding: NUL byte"
        return None
    return data


def _physical_lines(data: bytes):
    """(lines, bad_utf8, sizes): the lines as Arrow strings (null where not UTF-8), the invalid-UTF-8 flags and
    the lines' byte sizes (both None for a file that is valid UTF-8)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = pc.split_pattern(pa.array([data], type=pa.large_binary()), pattern=b"\n").values
    if data.endswith(b"\n"):
        raw = raw.slice(0, len(raw) - 1)  # the empty string after the last newline is not a line
    try:
        lines = raw.cast(pa.large_string())
    except pa.ArrowInvalid:  # decode line by line, as the contract does
        texts, flags, sizes = [], [], []
        for item in raw.to_pylist():
            stripped = item.rstrip(b"\r").removeprefix(UTF8_BOM)
            sizes.append(len(stripped))
            try:
                texts.append(stripped.decode("utf-8"))
                flags.append(False)
            except UnicodeDecodeError:
                texts.append(None)
                flags.append(True)
        return pa.array(texts, type=pa.large_string()), pa.array(flags, type=pa.bool_()), sizes
    if b"\r" in data:
        lines = pc.utf8_rtrim(lines, characters="\r")
    if UTF8_BOM in data:
        lines = pc.replace_substring_regex(lines, pattern="^\ufeff", replacement="", max_replacements=1)
    return lines, None, None


def feed_lines(uri: str, path: Path) -> list[str | None]:
    """A feed file's physical lines by bronze's framing: text, or None for a line that is not UTF-8 or is over
    MAX_LINE_BYTES; no lines for a file quarantined whole."""
    data = _file_bytes(FramedBronzeFile(0, uri), path)
    if not data:
        return []
    lines, _, sizes = _physical_lines(data)
    texts = lines.to_pylist()
    for index, text in enumerate(texts):
        size = sizes[index] if sizes is not None else len(text.encode("utf-8"))
        if size > MAX_LINE_BYTES:
            texts[index] = None
    return texts


def _set_aside_too_long_lines(framed: FramedBronzeFile, lines, bad_utf8, sizes):
    """Lines over MAX_LINE_BYTES become blank for the validation and are listed in `framed.too_long`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sizes = pc.binary_length(lines) if sizes is None else pa.array(sizes, type=pa.int64())
    too_long = pc.greater(sizes, MAX_LINE_BYTES)
    if not pc.any(too_long).as_py():
        return lines, bad_utf8
    framed.too_long = [index + 1 for index, over in enumerate(too_long.to_pylist()) if over]
    lines = pc.if_else(too_long, pa.scalar("", pa.large_string()), lines)
    return lines, None if bad_utf8 is None else pc.and_(bad_utf8, pc.invert(too_long))


def np_full(count: int, value: int):
    import numpy as np

    return np.full(count, value, dtype=np.int32)


def np_arange(count: int):
    import numpy as np

    return np.arange(1, count + 1, dtype=np.int64)


def np_zeros_bool(count: int):
    import numpy as np

    return np.zeros(count, dtype=bool)


# ------------------------------------------------------------------------------------------------ SQL
# One row per non-blank line of a chunk of framed lines: `judge` marks the corners left to the contract's
# Python; otherwise `reason` is the quarantine reason before the card-number check (NULL: valid so far) and
# the typed values are set for valid rows. The card-number check runs once per distinct number afterwards.
NUMBER_TEXT = r"(-?[0-9][0-9.eE+-]*)"
STRING_FIELDS = (1, 2, 4, 6, 7, 8)  # positions in FIELD_PATHS of the required string fields
FIELD_PATHS = ("event_id", "card_id", "ts", "merchant_id", "amount", "currency", "country", "pos_mode", "card_number")


def _quoted(position: int) -> str:
    """The value of a JSON string element of `v` (no escapes: lines with a backslash are judged)."""
    return f"substr(v[{position}], 2, length(v[{position}]) - 2)"


def parse_sql(currencies: list[str]) -> str:
    paths = ", ".join(f"'$.{name}'" for name in FIELD_PATHS)
    missing = " OR ".join(f"v[{i}] IS NULL OR v[{i}] = 'null' OR v[{i}] = '\"\"'" for i in range(1, 9))
    not_string = " OR ".join(f"NOT starts_with(v[{i}], '\"')" for i in STRING_FIELDS)
    not_number = " OR ".join(
        f"left(v[{i}], 1) NOT IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')" for i in (3, 5)
    )
    currency_list = ", ".join("'" + code.replace("'", "''") + "'" for code in currencies)
    too_long = " OR ".join(
        f"length({_quoted(FIELD_PATHS.index(name) + 1)}) > {limit}" for name, limit in FIELD_MAX_CHARS.items()
    )
    return rf"""
WITH src AS (
    SELECT file_id, line_number, line, bad_utf8, a.latest_ts_us
    FROM chunk JOIN arrivals AS a USING (file_id)
    WHERE bad_utf8 OR CASE WHEN starts_with(line, '{{') THEN true ELSE trim(line, E' \t\r') <> '' END
),
keyed AS (
    -- json_keys fails on invalid JSON (TRY → NULL) and lists repeated top-level keys
    SELECT *, CASE WHEN NOT bad_utf8 THEN TRY(json_keys(line)) END AS keys
    FROM src
),
framed AS (
    SELECT *,
        CASE WHEN keys IS NULL THEN false
             WHEN starts_with(line, '{{') THEN true
             ELSE starts_with(ltrim(line, E' \t\r'), '{{') END AS is_object
    FROM keyed
),
objects AS (
    SELECT *,
        CASE WHEN is_object THEN regexp_matches(line, '[\\\[]|NaN|Infinity|,\s*}}|\{{.*\{{') END AS corner
    FROM framed
),
fields AS (
    -- Without a backslash no string can hold a quote, and without nesting every `"ts"` followed by `:` is
    -- the top-level key (unique, or the line is malformed): the expression finds the number's own text.
    SELECT file_id, line_number, line, bad_utf8, is_object, corner, keys, latest_ts_us,
        CASE WHEN is_object AND NOT corner THEN json_extract(line, [{paths}]) END AS v,
        CASE WHEN is_object AND NOT corner
            THEN regexp_extract(line, '"ts"\s*:\s*{NUMBER_TEXT}', 1) END AS ts_text,
        CASE WHEN is_object AND NOT corner
            THEN regexp_extract(line, '"amount"\s*:\s*{NUMBER_TEXT}', 1) END AS amount_text
    FROM objects
),
checked AS (
    SELECT file_id, line_number, line, bad_utf8, is_object, corner, ts_text, amount_text, latest_ts_us,
        len(keys) <> len(list_distinct(keys)) AS duplicate_key,
        {missing} AS missing,
        {not_string} OR (v[9] IS NOT NULL AND v[9] <> 'null' AND NOT starts_with(v[9], '"')) OR {not_number}
            AS bad_type,
        -- JSON numbers without an exponent (yyjson has checked the rest of their syntax)
        NOT regexp_matches(ts_text || amount_text, '[eE]') AS plain_numbers,
        {_quoted(1)} AS event_id,
        {_quoted(2)} AS card_id,
        {_quoted(4)} AS merchant_id,
        {_quoted(6)} AS currency,
        {_quoted(7)} AS country,
        {_quoted(8)} AS pos_mode,
        CASE WHEN v[9] IS NOT NULL AND v[9] <> 'null' THEN {_quoted(9)} END AS card_number,
        coalesce({too_long}, false) AS too_long,
        -- every key and string value but the card_number value (no backslash: quotes delimit strings)
        CASE WHEN is_object AND NOT corner THEN holds_card_number(array_to_string(regexp_extract_all(
            regexp_replace(line, '"card_number"\s*:\s*"[^"]*"', '"card_number":""'), '"[^"]*"'), ''))
        END AS card_number_elsewhere
    FROM fields
),
numbers AS (
    SELECT *,
        -- a JSON object whose typing SQL checked but whose numbers are not plain decimals (exponents)
        is_object AND (corner OR (NOT duplicate_key AND NOT missing AND NOT bad_type AND NOT plain_numbers))
            AS judge,
        starts_with(ts_text, '-') AS ts_negative,
        split_part(ltrim(ts_text, '-'), '.', 1) AS ts_int,
        rtrim(split_part(ltrim(ts_text, '-'), '.', 2), '0') AS ts_frac,
        starts_with(amount_text, '-') AS amount_negative,
        split_part(ltrim(amount_text, '-'), '.', 1) AS amount_int,
        rtrim(split_part(ltrim(amount_text, '-'), '.', 2), '0') AS amount_frac
    FROM checked
),
reasons AS (
    SELECT *,
        CASE
            WHEN judge THEN NULL
            WHEN bad_utf8 OR NOT is_object OR duplicate_key THEN 'malformed_json'
            WHEN missing THEN 'missing_field'
            WHEN bad_type THEN 'bad_type'
            WHEN too_long THEN 'field_too_long'
            WHEN card_number_elsewhere THEN 'card_number_in_field'
            WHEN ts_negative OR length(ts_int) > 10 OR TRY_CAST(ts_int AS BIGINT) < 946684800
                OR TRY_CAST(ts_int AS BIGINT) >= 4102444800 OR length(ts_frac) > 6 THEN 'out_of_range'
            WHEN TRY_CAST(ts_int AS BIGINT) * 1000000 + TRY_CAST(rpad(ts_frac, 6, '0') AS BIGINT) > latest_ts_us
                THEN 'future_timestamp'
            WHEN (NOT amount_negative AND length(amount_int) >= 15) OR length(amount_frac) > 4 THEN 'out_of_range'
            WHEN amount_negative OR (amount_int = '0' AND amount_frac = '') THEN 'non_positive_amount'
            WHEN currency NOT IN ({currency_list}) THEN 'unknown_currency'
            WHEN NOT regexp_full_match(country, '[A-Z][A-Z]') THEN 'bad_enum'
            WHEN pos_mode NOT IN ('chip', 'contactless', 'swipe', 'ecommerce', 'manual') THEN 'bad_enum'
        END AS reason
    FROM numbers
)
SELECT
    file_id,
    line_number,
    judge,
    CASE WHEN judge THEN line END AS judge_line,
    reason,
    CASE WHEN valid THEN event_id END AS event_id,
    CASE WHEN valid THEN card_id END AS card_id,
    CASE WHEN valid THEN TRY_CAST(ts_int || '.' || rpad(ts_frac, 6, '0') AS DECIMAL(16, 6)) END AS ts,
    CASE WHEN valid THEN TRY_CAST(ts_int AS BIGINT) * 1000000 + TRY_CAST(rpad(ts_frac, 6, '0') AS BIGINT) END
        AS ts_us,
    CASE WHEN valid THEN merchant_id END AS merchant_id,
    CASE WHEN valid THEN TRY_CAST(amount_int || '.' || rpad(amount_frac, 4, '0') AS DECIMAL(18, 4)) END AS amount,
    CASE WHEN valid THEN currency END AS currency,
    CASE WHEN valid THEN country END AS country,
    CASE WHEN valid THEN pos_mode END AS pos_mode,
    CASE WHEN valid THEN card_number END AS card_number
FROM (SELECT *, NOT judge AND reason IS NULL AS valid FROM reasons)
"""


JUDGED_VALUES = (
    "event_id",
    "card_id",
    "ts",
    "ts_us",
    "merchant_id",
    "amount",
    "currency",
    "country",
    "pos_mode",
    "card_last4",
    "card_token",
)

PARSED_COLUMNS = """
    file_id INTEGER, line_number BIGINT, judge BOOLEAN, judge_line VARCHAR, reason VARCHAR, event_id VARCHAR,
    card_id VARCHAR, ts DECIMAL(16, 6), ts_us BIGINT, merchant_id VARCHAR, amount DECIMAL(18, 4), currency VARCHAR,
    country VARCHAR, pos_mode VARCHAR, card_number VARCHAR
"""


def card_token_sql(keys: CardTokenKeys) -> str:
    """HMAC-SHA256 (RFC 2104) of the digits under the current key version as a DuckDB expression over
    `card_number`, in the stored form (bare hex for version 0, else "v<k>:" + hex; card_numbers.versioned_token)."""
    key = keys.current_key
    block = key if len(key) <= 64 else __import__("hashlib").sha256(key).digest()
    block = block.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in block).hex()
    outer = bytes(b ^ 0x5C for b in block).hex()
    prefix = versioned_token(keys.current, "")
    return f"'{prefix}' || sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode(card_number))))"


LUHN_MACRO = """
CREATE OR REPLACE MACRO luhn_valid(digits) AS
    list_sum([
        CASE WHEN i % 2 = 0
            THEN [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][TRY_CAST(substr(digits, length(digits) - i + 1, 1) AS INTEGER) + 1]
            ELSE TRY_CAST(substr(digits, length(digits) - i + 1, 1) AS INTEGER) END
        FOR i IN range(1, length(digits) + 1)
    ]) % 10 = 0
"""

# card_number_in_field, written again in SQL from the contract's words (spark_jobs/card_numbers.py has the Python):
# in a string, chains of letter-or-digit words joined by single spaces or dashes; in a chain, a run is the
# consecutive words of ASCII digits and dashes (a word glued to a letter through a dash is not one); a run holds
# a card number when a span of its whole digit groups has 13-19 digits and passes Luhn. The first pattern is
# only a prefilter (13 digits, single spaces or dashes between them).
CARD_NUMBER_MACROS = (
    r"""
CREATE OR REPLACE MACRO groups_hold_card_number(g) AS coalesce(list_bool_or([
    length(span) BETWEEN 13 AND 19 AND luhn_valid(span)
    FOR span IN flatten([[array_to_string(list_slice(g, i, j), '') FOR j IN range(i, len(g) + 1)]
                         FOR i IN range(1, len(g) + 1)])
]), false)
""",
    r"""
CREATE OR REPLACE MACRO chain_holds_card_number(chain) AS coalesce(list_bool_or([
    groups_hold_card_number(regexp_extract_all(run, '[0-9]+'))
    FOR run IN string_split(array_to_string([
        CASE WHEN regexp_full_match(word, '[0-9]+(-[0-9]+)*') THEN word ELSE '|' END
        FOR word IN string_split(chain, ' ')], ' '), '|')
]), false)
""",
    r"""
CREATE OR REPLACE MACRO holds_card_number(text) AS
    regexp_matches(text, '[0-9](?:[ -]?[0-9]){12}') AND coalesce(list_bool_or([
        chain_holds_card_number(chain)
        FOR chain IN regexp_extract_all(text, '[\p{L}\p{N}]+(?:[ -][\p{L}\p{N}]+)*')
        IF regexp_matches(chain, '[0-9](?:[ -]?[0-9]){12}')
    ]), false)
""",
)


# amount_zscore_30d (V2_DESIGN.md, with the rounding spark_jobs/feature_aggregations.py documents for both of its
# halves): over the strictly earlier 30 days, n = count, mean = double(exact decimal sum) / n; the exact sum of
# squares as three exact integer sums over U = amount * 10^10 = hi * 10^15 + lo (Σhi², Σhi·lo, Σlo²), each
# correctly rounded to double, then Σhi²·1e10 + (Σhi·lo·2)/1e5 + Σlo²/1e20; var = that / n − mean²;
# z = (double(amount) − mean) / sqrt(var); null when n < 2, min = max or var <= 0. Decimals and HUGEINTs reach
# double through their decimal text (DuckDB's direct casts of wide values may round twice; text → double is
# correctly rounded), so every double is the one Spark and Python compute.
def _double(expression: str) -> str:
    return f"CAST(CAST({expression} AS VARCHAR) AS DOUBLE)"


ZSCORE_SPLIT = 10**15
ZSCORE_SQUARE_PARTS_SQL = f"""
        unscaled_amount // {ZSCORE_SPLIT} * (unscaled_amount // {ZSCORE_SPLIT}) AS square_high_high,
        unscaled_amount // {ZSCORE_SPLIT} * (unscaled_amount % {ZSCORE_SPLIT}) AS square_high_low,
        unscaled_amount % {ZSCORE_SPLIT} * (unscaled_amount % {ZSCORE_SPLIT}) AS square_low_low"""
ZSCORE_INPUTS_SQL = """
        count(*) OVER earlier_month AS zscore_n,
        sum(amount_usd) OVER earlier_month AS zscore_sum,
        sum(square_high_high) OVER earlier_month AS zscore_high_high,
        sum(square_high_low) OVER earlier_month AS zscore_high_low,
        sum(square_low_low) OVER earlier_month AS zscore_low_low,
        min(amount_usd) OVER earlier_month AS zscore_min,
        max(amount_usd) OVER earlier_month AS zscore_max"""
ZSCORE_SQL = f"""
    CASE WHEN zscore_n >= 2 AND zscore_min <> zscore_max AND zscore_variance > 0
        THEN ({_double("amount_usd")} - zscore_mean) / sqrt(zscore_variance)
    END"""
ZSCORE_MEAN_AND_SQUARES_SQL = f"""
        {_double("zscore_sum")} / zscore_n AS zscore_mean,
        {_double("zscore_high_high")} * 1e10 + ({_double("zscore_high_low")} * 2.0) / 1e5
            + {_double("zscore_low_low")} / 1e20 AS zscore_squares"""


GOLD_SQL = f"""
SELECT
    event_id,
    card_id,
    merchant_id,
    ts,
    ts_us,
    make_timestamp(ts_us) AS event_ts,
    dt,
    amount_usd,
    txn_count_1h,
    txn_amount_1h,
    txn_count_24h,
    merchant_count_24h,
    country_count_24h,
    max_amount_24h,
    avg_amount_7d,
    amount_to_avg_7d,
    secs_since_prev_txn,
    txn_count_30d,
    avg_amount_30d,
    {ZSCORE_SQL} AS amount_zscore_30d,
    CASE WHEN earlier_at_merchant > 0 THEN 1 ELSE 0 END AS merchant_seen_30d,
    -- event features: UTC by integer arithmetic on ts_us (day 0, 1970-01-01, was a Thursday: weekday 3)
    (ts_us // {HOUR_US}) % 24 AS hour_of_day,
    CASE WHEN (ts_us // {DAY_US} + 3) % 7 >= 5 THEN 1 ELSE 0 END AS is_weekend,
    CASE WHEN (ts_us // {HOUR_US}) % 24 < 6 THEN 1 ELSE 0 END AS is_night,
    {FEATURE_SET_VERSION} AS {FEATURE_SET_VERSION_COLUMN}
FROM (SELECT *, zscore_squares / zscore_n - zscore_mean * zscore_mean AS zscore_variance FROM (
      SELECT *, {ZSCORE_MEAN_AND_SQUARES_SQL} FROM (
    SELECT
        event_id,
        card_id,
        merchant_id,
        ts,
        ts_us,
        dt,
        amount_usd,
        count(*) OVER hour AS txn_count_1h,
        sum(amount_usd) OVER hour AS txn_amount_1h,
        count(*) OVER day AS txn_count_24h,
        count(DISTINCT merchant_id) OVER day AS merchant_count_24h,
        count(DISTINCT country) OVER day AS country_count_24h,
        max(amount_usd) OVER day AS max_amount_24h,
        CAST(sum(amount_usd) OVER week AS DOUBLE) / count(*) OVER week AS avg_amount_7d,
        CAST(amount_usd AS DOUBLE) / (CAST(sum(amount_usd) OVER week AS DOUBLE) / count(*) OVER week)
            AS amount_to_avg_7d,
        (ts_us - max(ts_us) OVER before) / 1000000.0 AS secs_since_prev_txn,
        count(*) OVER month AS txn_count_30d,
        CAST(sum(amount_usd) OVER month AS DOUBLE) / count(*) OVER month AS avg_amount_30d,
        {ZSCORE_INPUTS_SQL},
        count(*) OVER (
            PARTITION BY card_id, merchant_id ORDER BY ts_us RANGE BETWEEN {MONTH_US} PRECEDING AND 1 PRECEDING
        ) AS earlier_at_merchant
    FROM (SELECT *, {ZSCORE_SQUARE_PARTS_SQL} FROM (
        SELECT *, CAST(amount_usd * 10000000000 AS HUGEINT) AS unscaled_amount FROM silver
    ))
    WINDOW
        hour AS (PARTITION BY card_id ORDER BY ts_us RANGE BETWEEN {HOUR_US} PRECEDING AND CURRENT ROW),
        day AS (PARTITION BY card_id ORDER BY ts_us RANGE BETWEEN {DAY_US} PRECEDING AND CURRENT ROW),
        week AS (PARTITION BY card_id ORDER BY ts_us RANGE BETWEEN {WEEK_US} PRECEDING AND CURRENT ROW),
        before AS (PARTITION BY card_id ORDER BY ts_us RANGE BETWEEN {WEEK_US} PRECEDING AND 1 PRECEDING),
        month AS (PARTITION BY card_id ORDER BY ts_us RANGE BETWEEN {MONTH_US} PRECEDING AND CURRENT ROW),
        earlier_month AS (PARTITION BY card_id ORDER BY ts_us RANGE BETWEEN {MONTH_US} PRECEDING AND 1 PRECEDING)
)))
"""


@dataclass
class BuildReport:
    phases: dict[str, float] = field(default_factory=dict)
    counts: dict[str, object] = field(default_factory=dict)

    def timed(self, name: str):
        report = self

        class _Timer:
            def __enter__(self):
                self.began = time.perf_counter()

            def __exit__(self, *exc):
                report.phases[name] = round(report.phases.get(name, 0.0) + time.perf_counter() - self.began, 3)

        return _Timer()


def token_key() -> CardTokenKeys:
    """The jobs' keys: LAKEHOUSE_CARD_TOKEN_KEY (either format), else the development key the benchmark's jobs
    are run with (--allow-development-token-key)."""
    from spark_jobs.card_numbers import DEVELOPMENT_TOKEN_KEYS, TOKEN_KEY_ENV, parse_token_keys

    value = os.environ.get(TOKEN_KEY_ENV)
    return parse_token_keys(value, f"environment variable {TOKEN_KEY_ENV}") if value else DEVELOPMENT_TOKEN_KEYS


def judge_lines(
    rows: list[tuple[int, int, str]],
    fx_rates_path: Path,
    key: CardTokenKeys,
    latest_ts: dict[int, int] | None = None,
):
    """The contract's verdict on corner lines: (file_id, line_number, reason or None, accepted values);
    `latest_ts` maps a file_id to `latest_ts_us` of its file (none: no future_timestamp check)."""
    import datetime as dt

    from spark_jobs.bronze_contract import load_fx_rates, parse_bronze_file
    from spark_jobs.card_numbers import token_candidates

    allowance = dt.timedelta(microseconds=FUTURE_ALLOWANCE_US)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    rates = load_fx_rates(fx_rates_path)
    verdicts = []
    for file_id, line_number, line in rows:
        # As a one-line file: framing would strip one leading BOM again, so give it one to strip.
        text = ("\ufeff" + line) if line.startswith("\ufeff") else line
        latest = (latest_ts or {}).get(file_id)
        arrival = None if latest is None else epoch + dt.timedelta(microseconds=latest) - allowance
        result = parse_bronze_file(
            text.encode("utf-8") + b"\n", fx_rates=rates, token_key=key, arrival=arrival, future_allowance=allowance
        )
        if len(result.accepted):
            row = next(result.accepted.rows())
            # The parser's card_token is every held version's token; silver stores the current one only.
            row["card_token"] = (token_candidates(row["card_token"]) or [None])[0]
            verdicts.append((file_id, line_number, None, row))
        elif len(result.rejected):
            verdicts.append((file_id, line_number, result.rejected.reason[0], None))
        else:  # cannot happen: the line is not blank
            raise RuntimeError(f"line {line_number} of file {file_id} judged blank")
    return verdicts


def build(
    lake_root: Path, output_dir: Path, *, fx_rates: Path, threads: int, chunk_files: int, now_us: int | None = None
) -> dict:
    """Bronze under `lake_root` → silver, duplicates, quarantine, gold, chargebacks and merchant_features Parquet
    files in `output_dir`. `now_us` (default: the clock) bounds the merchant snapshot's days as the job's run time
    does."""
    import duckdb
    import pyarrow as pa

    started = time.perf_counter()
    now_us = int(time.time() * 1_000_000) if now_us is None else now_us
    report = BuildReport()
    output_dir.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    connection.execute(f"SET threads = {threads}")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute(f"SET temp_directory = '{output_dir / '.duckdb_tmp'}'")
    key = token_key()
    connection.execute(LUHN_MACRO)
    for macro in CARD_NUMBER_MACROS:
        connection.execute(macro)
    connection.execute(
        "CREATE TABLE fx_rates AS SELECT currency, usd_rate FROM read_csv(?, header = true, "
        "columns = {'currency': 'VARCHAR', 'usd_rate': 'DECIMAL(12, 6)'}, auto_detect = false)",
        [str(fx_rates)],
    )
    with report.timed("list"):
        files = list_bronze_files(lake_root)
        latest_ts = {file_id: latest_ts_us(path) for file_id, (_, path) in enumerate(files)}
        arrivals = pa.table(  # noqa: F841 - DuckDB scans it by name
            {
                "file_id": pa.array(list(latest_ts), pa.int32()),
                "latest_ts_us": pa.array(list(latest_ts.values()), pa.int64()),
            }
        )
        connection.execute("CREATE TABLE arrivals AS SELECT * FROM arrivals")
    file_rows, framed_lines = _frame_and_parse(connection, files, report, threads=threads, chunk_files=chunk_files)
    with report.timed("card_numbers"):
        _card_numbers(connection, key)
    with report.timed("judge_corners"):
        judged = _judge_corners(connection, fx_rates, key, latest_ts)
    with report.timed("fx"):
        non_blank = _accept_and_reject(connection)
    with report.timed("deduplicate"):
        _deduplicate(connection)
    with report.timed("features"):
        connection.execute(f"CREATE TABLE gold AS {GOLD_SQL}")
    with report.timed("chargebacks"):
        merchant_reference.build_chargebacks(connection, lake_root, threads, feed_lines)
    with report.timed("merchant_features"):
        last_day = now_us // DAY_US  # the UTC day of the run's now
        connection.execute(
            f"CREATE TABLE merchant_features AS {merchant_reference.merchant_snapshot_sql(str(last_day))}"
        )
    with report.timed("write"):
        _write_outputs(connection, output_dir)
    seconds = time.perf_counter() - started

    quarantined = dict(
        connection.execute(
            f"SELECT reason, count(*) FROM read_parquet('{output_dir / 'quarantine.parquet'}') GROUP BY reason "
            "ORDER BY reason"
        ).fetchall()
    )
    unreadable = sum(1 for row in file_rows if row[3] is not None)
    counts = {
        "files": len(files),
        "unreadable_files": unreadable,
        "lines": int(framed_lines),
        "blank_lines": int(framed_lines - non_blank),
        "records_read": int(non_blank + unreadable),
        "judged_by_contract": judged,
        "accepted": connection.execute("SELECT count(*) FROM silver").fetchone()[0],
        "duplicates": connection.execute("SELECT count(*) FROM later WHERE same_payload").fetchone()[0],
        "quarantined": sum(quarantined.values()),
        "quarantined_by_reason": quarantined,
        "gold_rows": connection.execute("SELECT count(*) FROM gold").fetchone()[0],
        "chargebacks": connection.execute("SELECT count(*) FROM chargebacks").fetchone()[0],
        "merchant_feature_rows": connection.execute("SELECT count(*) FROM merchant_features").fetchone()[0],
    }
    document = {
        "engine": "duckdb",
        "duckdb_version": duckdb.__version__,
        "threads": threads,
        "seconds": round(seconds, 3),
        "phases": report.phases,
        "counts": counts,
    }
    (output_dir / "report.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


def _frame_and_parse(
    connection, files: list[tuple[str, Path]], report: BuildReport, *, threads: int, chunk_files: int
) -> tuple[list[tuple], int]:
    """Frame the files in chunks on a thread pool, parse and validate each chunk into the `parsed` table, and
    the `files` table; returns the files' rows (id, uri, lines, unreadable reason) and the framed lines."""
    import pyarrow as pa

    currencies = [row[0] for row in connection.execute("SELECT currency FROM fx_rates").fetchall()]
    insert_parsed = f"INSERT INTO parsed {parse_sql(currencies)}"
    connection.execute(f"CREATE TABLE parsed ({PARSED_COLUMNS})")
    file_rows: list[tuple] = []
    too_long_rows: list[tuple[int, int]] = []
    framed_lines = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(files), chunk_files):
            part = list(enumerate(files[start : start + chunk_files], start))
            with report.timed("frame"):
                framed = list(pool.map(lambda item: frame_file(item[0], *item[1]), part))
                file_rows += [
                    (item.file_id, item.uri, item.lines, item.unreadable_reason, item.file_reason) for item in framed
                ]
                too_long_rows += [(item.file_id, number) for item in framed for number in item.too_long]
                batches = [item.batch for item in framed if item.batch is not None and item.batch.num_rows]
            if not batches:
                continue
            chunk = pa.Table.from_batches(batches)  # DuckDB scans it by name
            framed_lines += chunk.num_rows
            with report.timed("validate"):
                connection.execute(insert_parsed)
            del chunk, batches, framed
    file_table = pa.table(  # noqa: F841 - DuckDB scans it by name
        {
            "file_id": pa.array([row[0] for row in file_rows], pa.int32()),
            "uri": pa.array([row[1] for row in file_rows], pa.string()),
            "lines": pa.array([row[2] for row in file_rows], pa.int64()),
            "unreadable": pa.array([row[3] for row in file_rows], pa.string()),
            "file_reason": pa.array([row[4] for row in file_rows], pa.string()),
        }
    )
    connection.execute("CREATE TABLE files AS SELECT * FROM file_table")
    too_long_table = pa.table(  # noqa: F841 - DuckDB scans it by name
        {
            "file_id": pa.array([row[0] for row in too_long_rows], pa.int32()),
            "line_number": pa.array([row[1] for row in too_long_rows], pa.int64()),
        }
    )
    connection.execute("CREATE TABLE too_long_lines AS SELECT * FROM too_long_table")
    return file_rows, framed_lines


def _card_numbers(connection, key: CardTokenKeys) -> None:
    """The `cards` table: each distinct card number's validity (digits and Luhn), last four digits and token."""
    connection.execute(
        f"""
        CREATE TABLE cards AS
        SELECT card_number,
               regexp_full_match(card_number, '[0-9]{{12,19}}') AND luhn_valid(card_number) AS valid,
               right(card_number, 4) AS card_last4,
               {card_token_sql(key)} AS card_token
        FROM (SELECT DISTINCT card_number FROM parsed WHERE card_number IS NOT NULL)
        """
    )


def _judge_corners(connection, fx_rates: Path, key: CardTokenKeys, latest_ts: dict[int, int]) -> int:
    """The `judged` table: the contract's own verdict on the lines SQL cannot judge; returns how many."""
    corner_rows = connection.execute(
        "SELECT file_id, line_number, judge_line FROM parsed WHERE judge ORDER BY file_id, line_number"
    ).fetchall()
    verdicts = judge_lines(corner_rows, fx_rates, key, latest_ts)
    connection.execute(
        "CREATE TABLE judged (file_id INTEGER, line_number BIGINT, reason VARCHAR, event_id VARCHAR, "
        "card_id VARCHAR, ts DECIMAL(16, 6), ts_us BIGINT, merchant_id VARCHAR, amount DECIMAL(18, 4), "
        "currency VARCHAR, country VARCHAR, pos_mode VARCHAR, card_last4 VARCHAR, card_token VARCHAR)"
    )
    if verdicts:
        connection.executemany(
            "INSERT INTO judged VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (file_id, line_number, reason, *(None if row is None else row[name] for name in JUDGED_VALUES))
                for file_id, line_number, reason, row in verdicts
            ],
        )
    return len(corner_rows)


def _accept_and_reject(connection) -> int:
    """The `valid` table (accepted records with USD amounts) and the `rejected` one; drops `parsed`. Returns the
    number of non-blank lines."""
    connection.execute(
        """
        CREATE TABLE valid AS
        WITH accepted AS (
            SELECT p.file_id, p.line_number, p.event_id, p.card_id, p.ts, p.ts_us, p.merchant_id, p.amount,
                   p.currency, p.country, p.pos_mode, c.card_last4, c.card_token
            FROM parsed AS p LEFT JOIN cards AS c USING (card_number)
            WHERE NOT p.judge AND p.reason IS NULL AND (p.card_number IS NULL OR c.valid)
            UNION ALL
            SELECT file_id, line_number, event_id, card_id, ts, ts_us, merchant_id, amount, currency, country,
                   pos_mode, card_last4, card_token
            FROM judged WHERE reason IS NULL
        )
        SELECT f.uri AS source_file, a.line_number, a.event_id, a.card_id, a.ts, a.ts_us, a.merchant_id,
               a.amount, a.currency,
               CAST(CAST(a.amount AS DECIMAL(24, 4)) * r.usd_rate AS DECIMAL(30, 10)) AS amount_usd,
               a.country, a.pos_mode, a.card_last4, a.card_token
        FROM accepted AS a JOIN files AS f USING (file_id) JOIN fx_rates AS r USING (currency)
        """
    )
    connection.execute(
        """
        CREATE TABLE rejected AS
        SELECT f.uri AS source_file, p.line_number,
               coalesce(p.reason, j.reason, 'invalid_card_number') AS reason
        FROM parsed AS p JOIN files AS f USING (file_id)
        LEFT JOIN judged AS j USING (file_id, line_number)
        LEFT JOIN cards AS c ON c.card_number = p.card_number AND NOT p.judge AND p.reason IS NULL
        WHERE p.reason IS NOT NULL OR j.reason IS NOT NULL OR NOT c.valid
        UNION ALL
        SELECT f.uri, t.line_number, 'line_too_long' FROM too_long_lines AS t JOIN files AS f USING (file_id)
        """
    )
    non_blank = connection.execute(
        "SELECT (SELECT count(*) FROM parsed) + (SELECT count(*) FROM too_long_lines)"
    ).fetchone()[0]
    connection.execute("DROP TABLE parsed")
    return non_blank


def _deduplicate(connection) -> None:
    """The `later` table (every later sighting of an event id, same payload or not) and `silver` (first seen)."""
    # Only event ids seen more than once need ranking; the rest are silver as they are.
    connection.execute(
        """
        CREATE TABLE repeated AS
        SELECT v.*,
               row_number() OVER (PARTITION BY event_id ORDER BY source_file, line_number) AS seen
        FROM valid AS v
        WHERE event_id IN (SELECT event_id FROM valid GROUP BY event_id HAVING count(*) > 1)
        """
    )
    connection.execute(
        """
        CREATE TABLE later AS
        SELECT l.source_file, l.line_number, l.event_id,
               l.card_id IS NOT DISTINCT FROM w.card_id AND l.ts_us IS NOT DISTINCT FROM w.ts_us
               AND l.merchant_id IS NOT DISTINCT FROM w.merchant_id AND l.amount IS NOT DISTINCT FROM w.amount
               AND l.currency IS NOT DISTINCT FROM w.currency AND l.country IS NOT DISTINCT FROM w.country
               AND l.pos_mode IS NOT DISTINCT FROM w.pos_mode
               AND l.card_last4 IS NOT DISTINCT FROM w.card_last4
               AND l.card_token IS NOT DISTINCT FROM w.card_token AS same_payload
        FROM repeated AS l JOIN repeated AS w ON w.event_id = l.event_id AND w.seen = 1
        WHERE l.seen > 1
        """
    )
    connection.execute(
        """
        CREATE TABLE silver AS
        SELECT v.event_id, v.card_id, v.ts, v.ts_us, make_timestamp(v.ts_us)::DATE AS dt, v.merchant_id,
               v.amount, v.currency, v.amount_usd, v.country, v.pos_mode, v.card_last4, v.card_token,
               v.source_file, v.line_number
        FROM valid AS v ANTI JOIN later AS l USING (source_file, line_number)
        """
    )
    connection.execute("DROP TABLE valid")
    connection.execute("DROP TABLE repeated")


def _write_outputs(connection, output_dir: Path) -> None:
    quarantine_sql = """
        SELECT source_file, line_number, reason FROM rejected
        UNION ALL
        SELECT uri, NULL, file_reason FROM files WHERE file_reason IS NOT NULL
        UNION ALL
        SELECT source_file, line_number, 'conflicting_duplicate' FROM later WHERE NOT same_payload
    """
    for table, query in (
        ("silver", "SELECT * FROM silver"),
        ("gold", "SELECT * FROM gold"),
        ("duplicates", "SELECT event_id, source_file, line_number FROM later WHERE same_payload"),
        ("quarantine", quarantine_sql),
        ("chargebacks", "SELECT * FROM chargebacks"),
        ("merchant_features", "SELECT * FROM merchant_features"),
    ):
        target = output_dir / f"{table}.parquet"
        connection.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")


# ------------------------------------------------------------------------------------------------ verify
def verify(lake_root: Path, output_dir: Path) -> dict:
    """Spark's tables against the reference: gold row for row, silver/quarantine/duplicates by key, the
    chargeback table's valid records and the merchant snapshot (merchant_reference.verify_merchant_half)."""
    import duckdb

    connection = duckdb.connect()
    _register_spark_tables(connection, lake_root)
    ref = {
        name: f"(SELECT * REPLACE ({_RELATIVE_SOURCE_FILE}) FROM read_parquet('{output_dir / (name + '.parquet')}'))"
        for name in ("gold", "silver", "quarantine", "duplicates")
    }
    ref["gold"] = f"read_parquet('{output_dir / 'gold.parquet'}')"
    result: dict[str, object] = {}
    result["spark_gold_rows"] = connection.execute("SELECT count(*) FROM gold").fetchone()[0]
    result["reference_gold_rows"] = connection.execute(f"SELECT count(*) FROM {ref['gold']}").fetchone()[0]
    result["spark_gold_distinct_events"] = connection.execute("SELECT count(DISTINCT event_id) FROM gold").fetchone()[0]
    gold_mismatches, worst = _gold_differences(connection, ref["gold"])
    result["gold_max_relative_difference"] = worst
    result["gold_mismatches"] = gold_mismatches
    result.update(_silver_differences(connection, ref))
    result["quarantine_by_reason"] = dict(
        connection.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY reason").fetchall()
    )
    result.update(merchant_reference.verify_merchant_half(connection, lake_root, output_dir))
    result["equal"] = (
        result["spark_gold_rows"] == result["reference_gold_rows"] == result["spark_gold_distinct_events"]
        and result["merchant_equal"]
        and not gold_mismatches
        and not result["silver_mismatches"]
        and not result["quarantine_mismatches"]
        and not result["duplicates_mismatches"]
    )
    return result


# Files are compared by their path below the bronze prefix, so two copies of one lake compare equal.
_RELATIVE_SOURCE_FILE = f"regexp_replace(source_file, '^.*/{BRONZE_PREFIX}/', '') AS source_file"


def _register_spark_tables(connection, lake_root: Path) -> None:
    """Spark's gold, silver, quarantine and duplicates (read with deltalake) as views, and the last three again
    with lake-relative file paths (`<name>_spark`)."""
    from deltalake import DeltaTable

    silver_columns = [
        "event_id",
        "card_id",
        "merchant_id",
        "ts_us",
        "amount",
        "amount_usd",
        "card_last4",
        "card_token",
        "source_file",
        "line_number",
    ]
    tables = {
        "gold": DeltaTable(str(lake_root / "gold" / "card_features")).to_pyarrow_table(),
        "silver": DeltaTable(str(lake_root / "silver" / "card_transactions")).to_pyarrow_table(columns=silver_columns),
        "quarantine": DeltaTable(str(lake_root / "silver" / "quarantine")).to_pyarrow_table(
            columns=["source_file", "line_number", "reason"]
        ),
        "duplicates": DeltaTable(str(lake_root / "silver" / "duplicates")).to_pyarrow_table(
            columns=["event_id", "source_file", "line_number"]
        ),
    }
    for name, table in tables.items():
        connection.register(name, table)
    for name in ("silver", "quarantine", "duplicates"):
        connection.execute(f"CREATE TEMP TABLE {name}_spark AS SELECT * REPLACE ({_RELATIVE_SOURCE_FILE}) FROM {name}")


def _gold_differences(connection, reference_gold: str) -> tuple[dict[str, int], dict[str, float]]:
    """Rows only on one side and mismatches per column (integers and decimals exactly, doubles to a relative
    1e-12, the z-score 1e-9), and each double's largest relative difference."""
    exact = [f"s.{name} IS NOT DISTINCT FROM r.{name}" for name in (*GOLD_KEYS, *GOLD_INTEGERS)]
    exact += [
        f"CAST(s.{name} AS DECIMAL(38, 10)) IS NOT DISTINCT FROM CAST(r.{name} AS DECIMAL(38, 10))"
        for name in GOLD_DECIMALS
    ]
    exact.append(f"s.{FEATURE_SET_VERSION_COLUMN} = r.{FEATURE_SET_VERSION_COLUMN}")
    close = [
        f"((s.{name} IS NULL AND r.{name} IS NULL) OR abs(s.{name} - r.{name}) <= "
        f"{RELATIVE_TOLERANCE.get(name, DOUBLE_RELATIVE_TOLERANCE)} * greatest(abs(s.{name}), abs(r.{name})))"
        for name in GOLD_DOUBLES
    ]
    mismatch_columns = ", ".join(
        f'count(*) FILTER (WHERE NOT coalesce({condition}, false)) AS "{name}"'
        for name, condition in zip(
            [*GOLD_KEYS, *GOLD_INTEGERS, *GOLD_DECIMALS, FEATURE_SET_VERSION_COLUMN, *GOLD_DOUBLES],
            [*exact, *close],
            strict=True,
        )
    )
    row = connection.execute(
        f"""
        SELECT count(*) FILTER (WHERE s.event_id IS NULL) AS only_reference,
               count(*) FILTER (WHERE r.event_id IS NULL) AS only_spark,
               {mismatch_columns}
        FROM gold AS s FULL OUTER JOIN {reference_gold} AS r USING (event_id)
        """
    ).fetchone()
    names = [
        "only_reference",
        "only_spark",
        *GOLD_KEYS,
        *GOLD_INTEGERS,
        *GOLD_DECIMALS,
        FEATURE_SET_VERSION_COLUMN,
        *GOLD_DOUBLES,
    ]
    gold_mismatches = {name: int(value) for name, value in zip(names, row, strict=True) if value}
    worst = connection.execute(
        "SELECT "
        + ", ".join(
            f"max(abs(s.{name} - r.{name}) / nullif(greatest(abs(s.{name}), abs(r.{name})), 0))"
            for name in GOLD_DOUBLES
        )
        + f" FROM gold AS s JOIN {reference_gold} AS r USING (event_id)"
    ).fetchone()
    return gold_mismatches, dict(zip(GOLD_DOUBLES, [float(x or 0.0) for x in worst], strict=True))


def _silver_differences(connection, ref: dict[str, str]) -> dict[str, dict[str, int]]:
    """Silver by event (every value), quarantine by (file, line) with its reason, duplicates by (file, line,
    event): rows only on one side and rows that differ."""
    result = {}
    silver_row = connection.execute(
        f"""
        SELECT count(*) FILTER (WHERE s.event_id IS NULL), count(*) FILTER (WHERE r.event_id IS NULL),
               count(*) FILTER (WHERE s.event_id IS NOT NULL AND r.event_id IS NOT NULL AND NOT (
                   s.card_id = r.card_id AND s.ts_us = r.ts_us AND s.amount = r.amount
                   AND s.amount_usd = r.amount_usd AND s.card_last4 IS NOT DISTINCT FROM r.card_last4
                   AND s.card_token IS NOT DISTINCT FROM r.card_token AND s.source_file = r.source_file
                   AND s.line_number = r.line_number))
        FROM silver_spark AS s FULL OUTER JOIN {ref["silver"]} AS r USING (event_id)
        """
    ).fetchone()
    result["silver_mismatches"] = {
        name: int(value)
        for name, value in zip(("only_reference", "only_spark", "values"), silver_row, strict=True)
        if value
    }
    quarantine_row = connection.execute(
        f"""
        SELECT count(*) FILTER (WHERE s.source_file IS NULL), count(*) FILTER (WHERE r.source_file IS NULL),
               count(*) FILTER (WHERE s.reason <> r.reason)
        FROM quarantine_spark AS s FULL OUTER JOIN {ref["quarantine"]} AS r
          ON s.source_file = r.source_file AND s.line_number IS NOT DISTINCT FROM r.line_number
        """
    ).fetchone()
    result["quarantine_mismatches"] = {
        name: int(value)
        for name, value in zip(("only_reference", "only_spark", "reason"), quarantine_row, strict=True)
        if value
    }
    duplicates_row = connection.execute(
        f"""
        SELECT count(*) FILTER (WHERE s.source_file IS NULL), count(*) FILTER (WHERE r.source_file IS NULL)
        FROM duplicates_spark AS s FULL OUTER JOIN {ref["duplicates"]} AS r
          ON s.source_file = r.source_file AND s.line_number = r.line_number AND s.event_id = r.event_id
        """
    ).fetchone()
    result["duplicates_mismatches"] = {
        name: int(value) for name, value in zip(("only_reference", "only_spark"), duplicates_row, strict=True) if value
    }
    return result
