"""The dataset and label transforms on small hand-written DataFrames: exact window boundaries, the
as-of cut for gold rows and chargebacks, the earliest report, the inference snapshot's ties, the label
quarantine rows, and the content-hash rule."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

import pytest

from spark_jobs import datasets, labels
from spark_jobs.datasets import INFERENCE_SCHEMA, TRAIN, VALIDATION, DatasetWindows, day_start_us

AS_OF = date(2026, 2, 5)
WINDOWS = DatasetWindows(AS_OF)  # T=14, V=7, D=7
A = day_start_us(AS_OF)
S = day_start_us(date(2026, 1, 8))  # A − D − V − T
V0 = day_start_us(date(2026, 1, 22))  # A − D − V
E = day_start_us(date(2026, 1, 29))  # A − D


def gold_rows(spark, rows):
    """rows: (event_id, card_id, ts_us); features are filled with simple values."""
    data = []
    for event_id, card_id, ts_us in rows:
        values = {
            "event_id": event_id,
            "card_id": card_id,
            "ts": Decimal(ts_us).scaleb(-6).quantize(Decimal("0.000001")),
            "ts_us": ts_us,
            "amount_usd": Decimal("12.5000000000"),
            "txn_count_1h": 1,
            "avg_amount_7d": 12.5,
        }
        data.append(tuple(values.get(name) for name in INFERENCE_SCHEMA.fieldNames()))
    return spark.createDataFrame(data, INFERENCE_SCHEMA)


def accepted_chargebacks(spark, rows):
    """rows: (event_id, reported_at_us, source_file) as parsed, accepted records."""
    data = [
        (
            "accepted",
            source,
            index + 1,
            event_id,
            reported,
            f'{{"event_id": "{event_id}"}}',
            None,
            None,
            None,
            None,
            None,
        )
        for index, (event_id, reported, source) in enumerate(rows)
    ]
    return spark.createDataFrame(data, labels.PARSED_SCHEMA)


def test_windows_are_whole_utc_days_before_the_as_of_date():
    assert (WINDOWS.train_start, WINDOWS.validation_start, WINDOWS.validation_end) == (
        date(2026, 1, 8),
        date(2026, 1, 22),
        date(2026, 1, 29),
    )
    assert WINDOWS.bounds_us(TRAIN) == (S, V0) and WINDOWS.bounds_us(VALIDATION) == (V0, E)
    assert WINDOWS.as_of_us == A == 1_770_249_600_000_000
    described = WINDOWS.describe()
    assert described["validation"] == {
        "start": "2026-01-22T00:00:00+00:00",
        "end": "2026-01-29T00:00:00+00:00",
        "days": 7,
    }
    assert described["label_cutoff"] == "2026-02-05T00:00:00+00:00"
    no_gap = DatasetWindows(AS_OF, train_days=1, validation_days=1, label_delay_days=0)
    assert no_gap.bounds_us(VALIDATION) == (A - datasets.US_PER_DAY, A)
    with pytest.raises(ValueError):
        DatasetWindows(AS_OF, train_days=0)


def test_split_bounds_at_the_exact_boundaries(spark):
    events = gold_rows(
        spark,
        [
            ("before-train", "c1", S - 1),
            ("train-first", "c1", S),
            ("train-last", "c1", V0 - 1),
            ("validation-first", "c1", V0),
            ("validation-last", "c1", E - 1),
            ("gap-first", "c1", E),
            ("gap-last", "c1", A - 1),
            ("at-as-of", "c1", A),
        ],
    )
    labelled = datasets.labelled_events(events, spark.createDataFrame([], "event_id string"))
    train = datasets.split_rows(labelled, WINDOWS, TRAIN).collect()
    validation = datasets.split_rows(labelled, WINDOWS, VALIDATION).collect()
    assert sorted(row.event_id for row in train) == ["train-first", "train-last"]
    assert sorted(row.event_id for row in validation) == ["validation-first", "validation-last"]
    assert max(row.ts_us for row in train) < min(row.ts_us for row in validation)  # train before validation
    assert {row.label for row in train + validation} == {0}
    assert list(train[0].asDict()) == list(datasets.TRAINING_COLUMNS)


def test_labels_use_only_reports_before_as_of_and_the_earliest_report_counts(spark):
    events = spark.createDataFrame(
        [("e1", V0), ("e2", V0), ("e3", V0), ("e4", V0 + 10), ("e5", A - 5), ("late", A)],
        "event_id string, ts_us long",
    )
    feed = "file:///lake/bronze/labels/chargebacks/reported_dt=2026/01/30/cb.jsonl.gz"
    parsed = accepted_chargebacks(
        spark,
        [
            ("e1", V0 + 3_000, feed),
            ("e1", V0 + 1_000, feed),  # the earliest of e1's reports counts
            ("e2", A, feed),  # exactly at the as-of time: not known yet
            ("e3", A - 1, feed),  # 1 µs before it: a label
            ("e4", V0 + 9, feed),  # before its event: quarantined
            ("e5", A - 5, feed),  # at the event's own ts: fine
            ("ghost", V0, feed),  # not in silver
            ("late", A - 1, feed),  # its event is at A: invisible, so unknown
        ],
    )
    classified = labels.classify_chargebacks(parsed, events, as_of_us=A)
    outcomes = sorted((row.event_id, row.reported_at_us - V0, row.outcome) for row in classified.collect())
    assert [(event_id, outcome) for event_id, _, outcome in outcomes] == [
        ("e1", labels.LABEL),
        ("e1", labels.LABEL),
        ("e2", labels.AFTER_AS_OF),
        ("e3", labels.LABEL),
        ("e4", labels.REPORTED_BEFORE_EVENT),
        ("e5", labels.LABEL),
        ("ghost", labels.UNKNOWN_EVENT),
        ("late", labels.UNKNOWN_EVENT),
    ]
    event_labels = {row.event_id: row for row in labels.event_labels(classified).collect()}
    assert set(event_labels) == {"e1", "e3", "e5"}
    assert (event_labels["e1"].first_reported_at_us, event_labels["e1"].reports) == (V0 + 1_000, 2)

    gold = gold_rows(
        spark,
        [
            (event_id, "c", ts)
            for event_id, ts in [("e1", V0), ("e2", V0), ("e3", V0), ("e4", V0 + 10), ("quiet", V0 + 20)]
        ],
    )
    labelled = datasets.labelled_events(gold, labels.event_labels(classified))
    assert {row.event_id: row.label for row in labelled.collect()} == {"e1": 1, "e2": 0, "e3": 1, "e4": 0, "quiet": 0}


def test_no_report_before_as_of_means_all_zero_labels(spark):
    events = spark.createDataFrame([("e1", V0), ("e2", V0 + 1)], "event_id string, ts_us long")
    feed = "file:///lake/bronze/labels/chargebacks/reported_dt=2026/02/05/cb.jsonl.gz"
    parsed = accepted_chargebacks(spark, [("e1", A, feed), ("e2", A + 86_400_000_000, feed)])
    classified = labels.classify_chargebacks(parsed, events, as_of_us=A)
    assert {row.outcome for row in classified.collect()} == {labels.AFTER_AS_OF}
    labelled = datasets.labelled_events(
        gold_rows(spark, [("e1", "c", V0), ("e2", "c", V0 + 1)]), labels.event_labels(classified)
    )
    assert [row.label for row in labelled.collect()] == [0, 0]


def test_inference_snapshot_is_each_cards_latest_row_before_as_of_with_ties_broken_by_event_id(spark):
    events = gold_rows(
        spark,
        [
            ("a-old", "card-a", V0),
            ("a-tie-1", "card-a", A - 1_000),
            ("a-tie-2", "card-a", A - 1_000),  # same ts: the greater event_id wins
            ("a-tie-0", "card-a", A - 1_000),
            ("a-at-as-of", "card-a", A),  # at A: never read
            ("b-last", "card-b", A - 1),
            ("b-first", "card-b", S - 86_400_000_000 * 30),  # long before the windows: still a card
            ("c-only-later", "card-c", A + 5),
        ],
    )
    snapshot = datasets.inference_snapshot(events, as_of_us=A).collect()
    assert sorted((row.card_id, row.event_id) for row in snapshot) == [("card-a", "a-tie-2"), ("card-b", "b-last")]
    assert list(snapshot[0].asDict()) == list(datasets.INFERENCE_COLUMNS)


def test_label_quarantine_rows_name_the_reason_and_report_day(spark):
    feed = "file:///lake/bronze/labels/chargebacks/reported_dt=2026/01/30/cb.jsonl.gz"
    parsed = spark.createDataFrame(
        [
            ("accepted", feed, 1, "e4", V0 + 9, '{"event_id": "e4"}', None, None, None, None, None),
            ("rejected", feed, 2, None, None, "null", "malformed_json", "not an object: null", None, None, None),
            ("file", feed, None, None, None, None, None, None, 2, 0, 2),
            ("file", "file:///lake/x.gz", None, None, None, None, "unreadable_file", "corrupt gzip: x", 0, 0, 1),
        ],
        labels.PARSED_SCHEMA,
    )
    events = spark.createDataFrame([("e4", V0 + 10)], "event_id string, ts_us long")
    classified = labels.classify_chargebacks(parsed, events, as_of_us=A)
    rows = labels.label_quarantine_rows(parsed, classified, run_id="run-1").collect()
    found = sorted((row.source_file, row.line_number or 0, row.reason, row.detail, row.reported_date) for row in rows)
    assert found == [
        (
            feed,
            1,
            "reported_before_event",
            "reported_at=1769040000.000009 is before the event's ts=1769040000.000010",
            date(2026, 1, 30),
        ),
        (feed, 2, "malformed_json", "not an object: null", date(2026, 1, 30)),
        ("file:///lake/x.gz", 0, "unreadable_file", "corrupt gzip: x", None),
    ]
    assert [field.name for field in labels.LABEL_QUARANTINE_SCHEMA.fields] == list(rows[0].asDict())


def test_content_hash_rule_is_the_documented_one():
    rows = [
        {
            "event_id": "b",
            "card_id": "c",
            "ts_us": 1,
            "ts": Decimal("0.000001"),
            "amount_usd": Decimal("1.5000000000"),
            "x": 0.1,
            "n": None,
        },
        {
            "event_id": "a",
            "card_id": "c",
            "ts_us": 2,
            "ts": Decimal("0.000002"),
            "amount_usd": Decimal("2.0000000000"),
            "x": 1e-7,
            "n": 3,
        },
    ]
    hasher = datasets.ContentHasher()
    digest = hasher.add_split(rows)
    hasher.add_split([])
    hasher.add_split(rows[1:])
    lines = [
        '{"amount_usd":"1.5000000000","card_id":"c","event_id":"b","n":null,"ts":"0.000001","ts_us":1,"x":0.1}',
        '{"amount_usd":"2.0000000000","card_id":"c","event_id":"a","n":3,"ts":"0.000002","ts_us":2,"x":1e-07}',
    ]
    assert [datasets.content_hash_line(row) for row in rows] == lines
    assert digest.sha256 == hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
    everything = "".join(line + "\n" for line in [*lines, lines[1]])
    assert hasher.hexdigest() == hashlib.sha256(everything.encode()).hexdigest()
    assert json.loads(lines[0])["x"] == 0.1
    with pytest.raises(ValueError, match="order"):
        datasets.ContentHasher().add_split(list(reversed(rows)))
