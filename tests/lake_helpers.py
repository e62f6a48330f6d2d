"""Helpers for tests that build small bronze lakes and compare Delta tables."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
from pathlib import Path

from spark_jobs.lake import BRONZE_EVENTS_PREFIX

BRONZE = BRONZE_EVENTS_PREFIX
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


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


CARD_NUMBER_FIELD = re.compile(r'"card_number"\s*:\s*"([0-9 -]{12,40})"')


def card_numbers_in_bronze(lake: Path) -> set[str]:
    """The card numbers producers sent: every Luhn-valid 12–19 digit `card_number` value in any bronze line
    (valid or not, separators removed). These are the PANs that must never leave bronze."""
    numbers = set()
    for path in (lake / "bronze").rglob("*"):
        if path.is_file():
            for match in CARD_NUMBER_FIELD.finditer(_decoded_text(path)):
                digits = re.sub(r"[ -]", "", match.group(1))
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
        # One value per line: a separator between values must not glue two numbers into one digit run.
        return "\n".join(
            "" if value is None else str(value) for column in table.columns for value in column.to_pylist()
        )
    return data.decode("utf-8", errors="replace")


def files_containing_card_numbers(root: Path, numbers: set[str], *, skip: tuple[str, ...] = ("bronze",)) -> list:
    """(file, number) for every file under `root` outside `skip` whose decoded text holds one of `numbers`
    as a whole digit run, also when written with spaces or dashes between digit groups (a number inside a
    longer run of digits, such as a microsecond timestamp, is not that card number)."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or relative.parts[0] in skip:
            continue
        text = re.sub(r"(?<=\d)[ -](?=\d)", "", _decoded_text(path))
        runs = set(re.findall(r"\d{12,19}", text))
        found.extend((str(relative), number) for number in sorted(runs & numbers))
    return found


def frames_held(spark) -> dict[int, str]:
    """The persisted RDDs of the Spark context (Dataset caches and local checkpoints, by id and name), without
    Delta's own snapshot-state caches: what a job that fails must not leave behind in a process that lives on."""
    held = spark.sparkContext._jsc.getPersistentRDDs()
    names = {int(rdd_id): str(rdd.rdd().name() or rdd.rdd().toString()) for rdd_id, rdd in held.items()}
    return {rdd_id: name for rdd_id, name in names.items() if not name.startswith("Delta Table State")}


@contextlib.contextmanager
def fails_releasing_its_frames(spark):
    """The block must raise the injected fault, and leave no persisted RDD the context did not hold before it."""
    import pytest

    from spark_jobs.fault_injection import InjectedFault

    held_before = frames_held(spark)
    with pytest.raises(InjectedFault):
        yield
    assert frames_held(spark).keys() <= held_before.keys()  # the failed run released its caches and checkpoints
