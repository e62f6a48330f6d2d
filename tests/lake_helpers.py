"""Helpers for tests that build small bronze lakes and compare Delta tables."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
from pathlib import Path

BRONZE = "bronze/streaming/card_authorization"
VOLATILE_COLUMNS = ("run_id", "ingested_at", "computed_at")


def event(event_id: str, **fields) -> dict:
    """A valid contract record; keyword arguments override or add fields."""
    record = {
        "event_id": event_id,
        "card_id": "card-1",
        "ts": 1767225600,
        "merchant_id": "m-1",
        "amount": 10.5,
        "currency": "EUR",
        "country": "DE",
        "pos_mode": "chip",
    }
    record.update(fields)
    return record


def write_bronze(lake: Path, hour: str, name: str, lines: list, *, compress: bool = True) -> Path:
    """Write one bronze file in the Firehose layout; dict lines become JSON, strings are written as is."""
    folder = lake / BRONZE / f"ingest_dt={hour}"
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    data = gzip.compress(text.encode("utf-8"), mtime=0) if compress else text.encode("utf-8")
    path = folder / name
    path.write_bytes(data)
    return path


def table_rows(spark, path: Path | str, *, drop=VOLATILE_COLUMNS) -> list[tuple]:
    """A Delta table's rows without run-specific columns, sorted: for equality between runs."""
    frame = spark.read.format("delta").load(str(path))
    frame = frame.drop(*[name for name in drop if name in frame.columns])
    return sort_rows(tuple(row) for row in frame.collect())


def sort_rows(rows) -> list[tuple]:
    """Sorted rows whose values may be None (None sorts first in each column)."""
    return sorted(rows, key=lambda row: [(value is not None, str(value)) for value in row])


def table_version(spark, path: Path | str) -> int:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, str(path)).history(1).collect()[0].version


LUHN_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(?:\d[ -]?){11,18}\d(?![0-9A-Za-z])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_numbers_in_bronze(lake: Path) -> set[str]:
    """Every Luhn-valid 12–19 digit run (separators removed) in any bronze line: the PANs to hunt for."""
    numbers = set()
    for path in (lake / "bronze").rglob("*"):
        if path.is_file():
            for match in LUHN_CANDIDATE.finditer(_decoded_text(path)):
                digits = re.sub(r"[ -]", "", match.group())
                if 12 <= len(digits) <= 19 and luhn_valid(digits):
                    numbers.add(digits)
    return numbers


def _decoded_text(path: Path) -> str:
    """A file's content as text, decoding what it can: gzip, Parquet (every column), else bytes as UTF-8."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            data = gzip.decompress(data)
    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return "\n".join(
            " ".join("" if value is None else str(value) for value in column.to_pylist()) for column in table.columns
        )
    return data.decode("utf-8", errors="replace")


def files_containing_card_numbers(root: Path, numbers: set[str], *, skip: tuple[str, ...] = ("bronze",)) -> list:
    """(file, number) for every file under `root` outside `skip` whose decoded text holds a number,
    also when it is written with spaces or dashes between digit groups."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or relative.parts[0] in skip:
            continue
        text = re.sub(r"(?<=\d)[ -](?=\d)", "", _decoded_text(path))
        found.extend((str(relative), number) for number in numbers if number in text)
    return found
