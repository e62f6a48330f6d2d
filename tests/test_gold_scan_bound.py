"""The stream gold update reads silver per card and span of new events (issue 17, "clocks lie"): what it scans
grows with the changed events, never with the distance between two of them (a late event and a current one)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from spark_jobs import silver_and_gold
from spark_jobs.gold_update import MAX_WINDOW_US
from spark_jobs.lake import SILVER_TABLE
from tests.lake_helpers import event, write_bronze

T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86_400
SECOND_US = 1_000_000


def run(lake: Path, mode: str) -> dict:
    silver_and_gold.main(["--mode", mode, "--lake-root", str(lake), "--allow-development-token-key"])
    reports = sorted((lake / "_runs").glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
    return json.loads(reports[-1].read_text())


def hour_of(seconds: int) -> str:
    moment = date(1970, 1, 1) + timedelta(seconds=seconds)
    return f"{moment:%Y/%m/%d}/{(seconds % DAY) // 3600:02d}"


def test_spans_split_where_new_events_are_more_than_two_windows_apart(spark):
    from spark_jobs.gold_update import change_spans, span_days

    changes = spark.createDataFrame(
        [
            ("a", 0),
            ("a", 2 * MAX_WINDOW_US),  # exactly two windows later: the same span
            ("a", 4 * MAX_WINDOW_US + 1),  # more: a span of its own
            ("b", 100 * MAX_WINDOW_US),
        ],
        "card_id string, ts_us long",
    )
    spans = sorted(tuple(row) for row in change_spans(changes).collect())
    assert spans == [
        ("a", 0, 2 * MAX_WINDOW_US, 2),
        ("a", 4 * MAX_WINDOW_US + 1, 4 * MAX_WINDOW_US + 1, 1),
        ("b", 100 * MAX_WINDOW_US, 100 * MAX_WINDOW_US, 1),
    ]
    read, changed = span_days(change_spans(changes))
    w = MAX_WINDOW_US // (DAY * SECOND_US)  # 7 days
    epoch = date(1970, 1, 1)
    # [first - W, last + W] per span for the history, [first, last + W] for the changed rows; nothing between
    assert read == [epoch + timedelta(days=d) for d in sorted({*range(-w, 3 * w + 1), *range(3 * w, 5 * w + 1),
                                                                  *range(99 * w, 101 * w + 1)})]  # fmt: skip
    assert changed == [epoch + timedelta(days=d) for d in sorted({*range(0, 3 * w + 1), *range(4 * w, 5 * w + 1),
                                                                     *range(100 * w, 101 * w + 1)})]  # fmt: skip


def test_a_late_and_a_current_event_do_not_make_the_stream_update_read_the_days_between(spark, tmp_path):
    lake = tmp_path / "lake"
    window_days = MAX_WINDOW_US // (DAY * SECOND_US)
    # A busy card: one event a day (a silver partition each), long enough that a late event on day 1 and a current
    # one near the end are more than two windows apart (separate spans).
    days = 4 * window_days + 20
    current_day = days - 10
    for day in range(days):
        ts = T0 + day * DAY + 600
        write_bronze(lake, hour_of(ts), f"busy-{day}.gz", [event(f"busy-{day}", card_id="busy", ts=ts)])
    run(lake, "stream")
    silver_files = len(list((lake / SILVER_TABLE).rglob("*.parquet")))
    assert silver_files >= days
    # Then, in the next arrival hour: a late event of card a on day 1 and recent ones of cards b and busy.
    arrival = T0 + (days - 1) * DAY + 3600
    write_bronze(
        lake,
        hour_of(arrival),
        "late-and-current.gz",
        [
            event("a-late", card_id="a", ts=T0 + 1 * DAY + 60),
            event("b-now", card_id="b", ts=T0 + current_day * DAY + 60),
            event("busy-now", card_id="busy", ts=T0 + current_day * DAY + 120),
        ],
    )
    report = run(lake, "stream")
    (update,) = report["gold"]
    assert update["mode"] == "incremental" and update["affected_cards"] == 3
    # The silver days within a window of each new event (a file each), plus the change feed's files and the new
    # events' own; before the bound, every day between them was read (at least `days` files).
    near_late = len(range(0, 1 + window_days + 1))
    near_current = len(range(current_day - window_days, days))
    assert update["files_scanned"] <= near_late + near_current + 6 < days, update
    # and the result is what a full recompute gives
    full = run(lake, "full")
    assert (full["counts"]["gold_rows_inserted"], full["counts"]["gold_rows_updated"]) == (0, 0)
