"""Run the Step Functions state machines locally: an interpreter of state_machines/*.asl.json.

    scripts/run_pipeline.py --mode stream --lake-root ./lake
    scripts/run_pipeline.py --mode daily --date 2026-02-14 --lake-root ./lake
    scripts/run_pipeline.py --mode stream --lake-root s3://bucket/prefix --endpoint-url http://127.0.0.1:5000

The same ASL files Terraform deploys are read, their `${placeholders}` filled from a local configuration
(feature store backend `local`), and walked state by state. The integrations the files use run locally:

  emr-serverless:startJobRun.sync   `spark-submit --master 'local[*]'` of the same entry point and arguments
  dynamodb:putItem/getItem/deleteItem  a JSON file per table under the state directory, behind a file lock
  aws-sdk:sfn:describeExecution     the runner's own registry of executions (a dead runner reads as ABORTED)
  sns:publish                       one JSON line per message in <lake-root>/_runs/alerts.log

Implemented: Task, Choice, Pass, Wait, Succeed, Fail; Retry (ErrorEquals with States.ALL and
States.TaskFailed, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy); Catch with
ResultPath; InputPath, Parameters, ResultSelector, ResultPath, OutputPath; the context object ($$.Execution,
$$.StateMachine, $$.State); the intrinsics States.Format, States.Hash, States.Array, States.JsonToString and
States.MathAdd; TimeoutSeconds of Task states and of the execution. Anything else (Map, Parallel, JSONata,
variables, other resources or intrinsics, JSONPath wildcards and filters) is refused, by name, before the
first state runs. `--time-scale` multiplies Wait and Retry delays (0 = no sleeping, for tests).
The runner itself is the library devtools/local_runner/; this file is its command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.local_runner import MODES, RunRequest, run_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_pipeline.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=MODES, required=True, help="which state machine: stream or daily")
    parser.add_argument("--lake-root", required=True, help="a local folder or s3://bucket/prefix")
    parser.add_argument("--endpoint-url", help="custom S3 endpoint (a moto server); passed on to every job")
    day = parser.add_mutually_exclusive_group()
    day.add_argument("--date", help='daily: the day to process, YYYY-MM-DD (input {"date": ...})')
    day.add_argument("--scheduled-time", help='daily: the schedule\'s time, ISO-8601 (input {"scheduled_time": ...})')
    day.add_argument("--input", help="the execution input as a JSON object")
    parser.add_argument(
        "--config", help="path of a JSON file whose object overrides placeholder values of the local configuration"
    )
    parser.add_argument("--online-store-path", help="local online store (default: <lake-root>/feature_store/online.db)")
    parser.add_argument("--state-dir", help="lease table, executions and job logs (default: <lake>/_orchestration)")
    parser.add_argument("--definition", help="another ASL file to run instead of state_machines/<mode>.asl.json")
    parser.add_argument("--execution-name", help="execution name (default: <mode>-<UTC time>-<random>)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply Wait and Retry delays (default 1)")
    parser.add_argument("--spark-master", default="local[*]", help="spark-submit --master (default: local[*])")
    parser.add_argument("--json", action="store_true", help="print the execution result as JSON at the end")
    parser.add_argument(
        "--single-writer-s3-lake",
        action="store_true",
        help="allow an s3:// --lake-root that nothing else writes (a moto server, a scratch bucket): the local "
        "runner has neither the DynamoDB lease nor Delta's S3DynamoDBLogStore, so it refuses a shared S3 lake",
    )
    args = parser.parse_args(argv)
    if args.mode == "stream" and (args.date or args.scheduled_time):
        parser.error("--date and --scheduled-time are for --mode daily")
    if args.time_scale < 0:
        parser.error("--time-scale must be >= 0")
    if args.date:
        try:
            datetime.strptime(args.date, "%Y-%m-%d")
        except ValueError:
            parser.error(f"--date {args.date!r}: expected YYYY-MM-DD")
    return args


def run_request(args: argparse.Namespace) -> RunRequest:
    overrides = json.loads(Path(args.config).read_text()) if args.config else {}
    if args.online_store_path:
        overrides["online_store_path"] = args.online_store_path
    return RunRequest(
        mode=args.mode,
        lake_root=args.lake_root,
        input_json=args.input,
        date=args.date,
        scheduled_time=args.scheduled_time,
        endpoint_url=args.endpoint_url,
        definition_path=Path(args.definition) if args.definition else None,
        state_dir=Path(args.state_dir) if args.state_dir else None,
        config_overrides=overrides,
        execution_name=args.execution_name,
        time_scale=args.time_scale,
        spark_master=args.spark_master,
        print_json=args.json,
        single_writer_s3_lake=args.single_writer_s3_lake,
    )


def main(argv: list[str] | None = None) -> int:
    return run_command(run_request(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
