"""The dev tools' typed options: the command lines build them, the libraries refuse bad values by name."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from devtools.demo import DemoOptions
from devtools.local_runner import DefinitionError, RunRequest, execution_input_for
from devtools.producer import GeneratedEvents, ProduceOptions
from scripts import demo, produce_events, run_pipeline


def test_run_request_execution_input():
    assert execution_input_for(RunRequest(mode="daily", lake_root="l", date="2026-01-02")) == {"date": "2026-01-02"}
    assert execution_input_for(RunRequest(mode="daily", lake_root="l", scheduled_time="T")) == {"scheduled_time": "T"}
    assert execution_input_for(RunRequest(mode="stream", lake_root="l")) == {}
    assert execution_input_for(RunRequest(mode="daily", lake_root="l", input_json='{"date": "x"}')) == {"date": "x"}
    with pytest.raises(DefinitionError, match="--input must be a JSON object"):
        execution_input_for(RunRequest(mode="daily", lake_root="l", input_json="[1]"))


def test_run_pipeline_command_line_builds_the_request(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"aws_region": "eu-west-1"}))
    arguments = ["--mode", "daily", "--lake-root", "lake", "--date", "2026-01-02", "--config", str(config)]
    request = run_pipeline.run_request(run_pipeline.parse_args([*arguments, "--online-store-path", "o.db"]))
    assert execution_input_for(request) == {"date": "2026-01-02"}
    assert dict(request.config_overrides) == {"aws_region": "eu-west-1", "online_store_path": "o.db"}
    assert request.definition_path is None and request.time_scale == 1.0 and not request.print_json


def test_demo_options():
    options = demo.parse_options(["--lake-root", "x", "--events", "10", "--start", "2026-02-01", "--arrivals", "2"])
    assert options == DemoOptions(lake_root=Path("x"), events=10, start=date(2026, 2, 1), arrivals=2)
    with pytest.raises(ValueError, match="arrivals and days must be >= 1"):
        DemoOptions(arrivals=0)
    with pytest.raises(SystemExit):
        demo.parse_options(["--days", "0"])


def test_produce_options():
    options = produce_events.parse_options(["--stream", "s", "--file", "a.ndjson", "--clean", "--start", "2026-03-01"])
    assert options.files == (Path("a.ndjson"),) and options.stream == "s"
    assert options.generated == GeneratedEvents(start=date(2026, 3, 1), clean=True)
    with pytest.raises(ValueError, match="max_attempts must be >= 1, got 0"):
        ProduceOptions(stream="s", max_attempts=0)
    with pytest.raises(SystemExit):
        produce_events.parse_options(["--stream", "s", "--start", "not-a-day"])
