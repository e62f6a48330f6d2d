"""The demo's delivery plan (scripts/demo.py): the staged lake reaches bronze in time order, every bronze file
exactly once, and chargebacks only once they have been reported."""

from __future__ import annotations

from datetime import date, timedelta

from devtools.demo import BRONZE, LABELS, arrival_hour, deliver, plan_arrivals, reported_day
from devtools.generator import GeneratorConfig, generate_lake


def test_arrivals_deliver_every_bronze_file_once_in_time_order(tmp_path):
    staging, lake = tmp_path / "staging", tmp_path / "lake"
    generate_lake(GeneratorConfig(events=600, cards=40, days=10, seed=3, lake_root=staging))
    plan = plan_arrivals(staging, date(2026, 1, 1), 10, 4)

    staged = sorted(p for p in (staging / BRONZE).rglob("*") if p.is_file())
    delivered = [path for arrival in plan for path in arrival["files"]]
    assert sorted(delivered) == staged and len(set(delivered)) == len(delivered)
    latest = [max(arrival_hour(p, staging / BRONZE) for p in arrival["files"]) for arrival in plan]
    earliest = [min(arrival_hour(p, staging / BRONZE) for p in arrival["files"]) for arrival in plan]
    assert all(latest[i] < earliest[i + 1] for i in range(len(plan) - 1))
    assert all(latest[i] < plan[i]["cutoff"] for i in range(len(plan) - 1))
    assert plan[-1]["cutoff"].date() == date(2026, 1, 11)
    # late events arrive after the window: the last arrival takes them
    assert latest[-1] >= plan[-1]["cutoff"] - timedelta(hours=1)

    labels = [path for arrival in plan for path in arrival["labels"]]
    assert len(set(labels)) == len(labels)
    for arrival in plan:
        assert all(reported_day(p, staging / LABELS) < arrival["cutoff"].date() for p in arrival["labels"])
    staged_labels = sorted(p for p in (staging / LABELS).rglob("*") if p.is_file())
    later = [p for p in staged_labels if reported_day(p, staging / LABELS) >= date(2026, 1, 11)]
    assert sorted(labels + later) == staged_labels  # reported after the demo's last day: never delivered

    size = deliver(plan[0], staging, lake)
    assert size > 0
    assert sorted(p.relative_to(lake) for p in lake.rglob("*") if p.is_file()) == sorted(
        p.relative_to(staging) for p in plan[0]["files"] + plan[0]["labels"]
    )
