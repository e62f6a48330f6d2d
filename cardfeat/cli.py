"""`cardfeat <command> [options]`: every command line of the project behind one console script.

Each command is an existing command line (a job's entry point, a Feature Store CLI or a script's door) and
keeps its own parser: `cardfeat <command> --help` is that program's help, and its options are the same as
with `python <file>` or `spark-submit <file>`. Nothing here defines an option of its own.

The commands that run Spark jobs (`silver-and-gold`, `build-datasets`, `ingest`, `replay-quarantine`,
`replay-dead-letters`) are started with the venv's `spark-submit --master local[*]` of the same file EMR
Serverless runs, with the repository's Spark configuration (devtools/spark_submit.py); set
CARDFEAT_SPARK_MASTER for another master. Their arguments are checked by the job's parser first, so a usage
error never starts a JVM. The other commands run in this process.

Exit codes follow spark_jobs/exit_codes.py (docs/cli.md): 0 ok or skipped, 1 failed or not found, 2 usage,
3 dead letters, 4 invalid input, 5 failed precondition.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spark_jobs import exit_codes

PROG = "cardfeat"
SPARK_MASTER_VARIABLE = "CARDFEAT_SPARK_MASTER"


@dataclass(frozen=True)
class Command:
    """A subcommand: the module whose parser and main() it is, and how it runs."""

    name: str
    module: str  # e.g. "spark_jobs.silver_and_gold"
    summary: str
    parse: str = "parse_args"  # the module's function that parses argv with its own parser (or "build_parser")
    spark: bool = False  # run with spark-submit of the module's file, as on EMR

    @property
    def path(self) -> str:
        """The module's file in the repository (what `python`/`spark-submit` would be given)."""
        return self.module.replace(".", "/") + ".py"


COMMANDS: tuple[Command, ...] = (
    Command("generate", "scripts.generate_transactions", "generate a synthetic lake (bronze + chargebacks)",
            parse="build_parser"),
    Command("silver-and-gold", "spark_jobs.silver_and_gold", "bronze → silver → gold (stream, daily, full)",
            spark=True),
    Command("build-datasets", "spark_jobs.build_datasets", "training/validation/inference datasets for an as-of date",
            spark=True),
    Command("register", "feature_store.register_feature_groups", "register the feature group (local or SageMaker)"),
    Command("ingest", "feature_store.ingest_features", "gold → the Feature Store (online + offline)", spark=True),
    Command("get-features", "feature_store.get_features", "a card's online features as JSON"),
    Command("serve", "feature_store.serve_features", "request-time features: replay NDJSON or the HTTP service",
            parse="parse_options"),
    Command("run-pipeline", "scripts.run_pipeline", "run the stream or daily state machine locally"),
    Command("replay-quarantine", "scripts.replay_quarantine", "re-validate quarantined bronze lines", spark=True),
    Command("replay-dead-letters", "scripts.replay_dead_letters", "re-send dead-lettered Feature Store records",
            spark=True),
    Command("train-baseline", "scripts.train_baseline", "baseline fraud model on a day's datasets"),
    Command("demo", "scripts.demo", "the whole platform locally (what `make demo` runs)", parse="parse_options"),
    Command("bench", "scripts.benchmark", "benchmark Spark against the DuckDB reference (`make bench`)",
            parse="parse_options"),
    Command("bench-reference", "scripts.benchmark_reference", "the DuckDB reference build alone"),
    Command("stream-equivalence", "scripts.stream_equivalence", "stream runs vs a full recompute",
            parse="parse_options"),
    Command("serving-consistency", "scripts.serving_consistency", "request-time vs batch features"),
    Command("produce", "scripts.produce_events", "put generated events on the Kinesis stream",
            parse="parse_options"),
    Command("package", "scripts.package", "build dist/ for EMR Serverless (`make package`)", parse="build_parser"),
)  # fmt: skip

BY_NAME = {command.name: command for command in COMMANDS}


def command_named(name: str) -> Command:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown command {name!r}: expected one of {', '.join(BY_NAME)}") from None


def parse_command(command: Command, argv: Sequence[str]) -> Any:
    """Parse argv with the command's own parser (and its checks); argparse exits 2 on a usage error."""
    module = importlib.import_module(command.module)
    parse = getattr(module, command.parse)
    if command.parse == "build_parser":
        return parse().parse_args(list(argv))
    return parse(list(argv))


def run_command(command: Command, argv: Sequence[str]) -> int:
    """Run the command as its own program would: in this process, or with spark-submit for a Spark job."""
    if not command.spark:
        return importlib.import_module(command.module).main(list(argv))
    parse_command(command, argv)  # usage errors (and --help) before a JVM starts
    from devtools.spark_submit import SparkSetupMissing, spark_submit_command, spark_submit_environment

    try:
        master = os.environ.get(SPARK_MASTER_VARIABLE) or "local[*]"
        launch = spark_submit_command(command.path, list(argv), master=master)
        environment = spark_submit_environment()
    except SparkSetupMissing as error:
        print(f"{PROG} {command.name}: error: {error}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    return subprocess.run(launch, env=environment, check=False).returncode


def build_parser() -> argparse.ArgumentParser:
    """The top level: the command's name, then everything after it is the command's own arguments."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {c.name:<21}{c.summary} ({c.path})" for c in COMMANDS),
    )
    parser.add_argument("command", choices=list(BY_NAME), metavar="command", help="one of the commands below")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's own options (see its --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    return run_command(BY_NAME[args.command], args.arguments)


if __name__ == "__main__":
    raise SystemExit(main())
