"""What `scripts/run_pipeline.py` does once its arguments are parsed: one execution, a summary, an exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devtools.local_runner.errors import DefinitionError, UnsupportedConstruct
from devtools.local_runner.pipeline import UnguardedLakeError, run_pipeline, summary_lines
from spark_jobs import exit_codes


@dataclass(frozen=True)
class RunRequest:
    """One execution as the command line asks for it. At most one of input_json, date and scheduled_time."""

    mode: str
    lake_root: str
    input_json: str | None = None
    date: str | None = None
    scheduled_time: str | None = None
    endpoint_url: str | None = None
    definition_path: Path | None = None
    state_dir: Path | None = None
    config_overrides: Mapping[str, str] = field(default_factory=dict)
    execution_name: str | None = None
    time_scale: float = 1.0
    spark_master: str = "local[*]"
    print_json: bool = False
    single_writer_s3_lake: bool = False  # --single-writer-s3-lake: nothing else writes that S3 lake


def execution_input_for(request: RunRequest) -> dict:
    """The execution input: --input as given, else {"date": ...} or {"scheduled_time": ...}, else {}."""
    if request.input_json is not None:
        value = json.loads(request.input_json)
        if not isinstance(value, dict):
            raise DefinitionError("--input must be a JSON object")
        return value
    if request.date:
        return {"date": request.date}
    if request.scheduled_time:
        return {"scheduled_time": request.scheduled_time}
    return {}


def run_command(request: RunRequest) -> int:
    """Run the execution, print its summary (and the result as JSON if asked): 0 succeeded, 1 failed, 4 an invalid
    definition, 5 no lake at a local --lake-root (a mistyped path would otherwise run on a new, empty lake) or an
    s3:// lake without --single-writer-s3-lake (pipeline.refuse_unguarded_s3_lake)."""
    if not request.lake_root.startswith(("s3://", "s3a://")) and not Path(request.lake_root).is_dir():
        print(
            f"run_pipeline: error: --lake-root {request.lake_root}: no lake there (not an existing folder); "
            "check the path, or write bronze into it first (cardfeat generate, or a producer)",
            file=sys.stderr,
        )
        return exit_codes.PRECONDITION_FAILED
    try:
        result = run_pipeline(
            mode=request.mode,
            lake_root=request.lake_root,
            execution_input=execution_input_for(request),
            endpoint_url=request.endpoint_url,
            definition_path=request.definition_path,
            state_dir=request.state_dir,
            config_overrides=dict(request.config_overrides),
            execution_name=request.execution_name,
            time_scale=request.time_scale,
            spark_master=request.spark_master,
            single_writer_s3_lake=request.single_writer_s3_lake,
        )
    except UnguardedLakeError as error:
        print(f"run_pipeline: error: {error}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    except (UnsupportedConstruct, DefinitionError) as error:
        kind = "unsupported" if isinstance(error, UnsupportedConstruct) else "invalid"
        print(f"run_pipeline: {kind}: {error}", file=sys.stderr)
        return exit_codes.INVALID_INPUT  # the ASL file is the input: usage errors alone exit 2
    for line in summary_lines(result):
        print(line, flush=True)
    if request.print_json:
        print(json.dumps(result.as_dict(), sort_keys=True, default=str))
    return exit_codes.OK if result.status == "SUCCEEDED" else exit_codes.FAILED
