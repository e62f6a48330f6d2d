"""devtools/emr_sizing.py: the arithmetic docs/scaling.md shows, on the committed results.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from devtools import emr_sizing

RESULTS = json.loads((Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "results.json").read_text())


def test_worker_memory_is_the_smallest_allowed_size_that_holds_the_need():
    assert emr_sizing.worker_memory_gb(4, 12.1) == 13
    assert emr_sizing.worker_memory_gb(4, 3.0) == 8  # a 4-vCPU worker has at least 8 GB
    assert emr_sizing.worker_memory_gb(8, 17.0) == 20  # 4 GB steps
    with pytest.raises(ValueError, match="does not fit a 1-vCPU worker"):
        emr_sizing.worker_memory_gb(1, 9)


def test_the_plan_follows_from_the_measured_rate():
    derived = emr_sizing.derived(RESULTS)
    rate = derived["events_per_core_second"]
    assert derived["stream_fixed_seconds"] + derived["stream_variable_seconds"] == pytest.approx(
        derived["stream_wall_seconds"]
    )
    for volume in emr_sizing.DAILY_VOLUMES:
        plan = emr_sizing.plan(RESULTS, volume)
        assert plan["batch_events"] * 144 == pytest.approx(volume)
        assert plan["full_cores"] == math.ceil(volume * 30 / (rate * 3600))
        assert plan["full_workers"] * emr_sizing.EXECUTOR_VCPU >= plan["full_cores"]
        assert plan["full_seconds"] <= emr_sizing.FULL_BUILD_DEADLINE_SECONDS
        assert plan["stream_seconds"] <= emr_sizing.STREAM_INTERVAL_SECONDS * emr_sizing.STREAM_DEADLINE_SHARE
    bigger = [emr_sizing.plan(RESULTS, volume)["full_workers"] for volume in emr_sizing.DAILY_VOLUMES]
    assert bigger == sorted(bigger) and bigger[0] < bigger[-1]


def test_the_benchmark_takes_the_standalone_cluster_option():
    from scripts.benchmark import parse_options

    assert parse_options(["--standalone-cluster"]).standalone_cluster is True
    assert parse_options([]).standalone_cluster is False
