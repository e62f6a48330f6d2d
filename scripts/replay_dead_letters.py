"""Re-send the records ingestion dead-lettered to the Feature Store.

    cardfeat replay-dead-letters --lake-root ./lake                      # every pending file
    cardfeat replay-dead-letters --lake-root s3://… --backend sagemaker --region eu-west-1 --dead-letter-run-id RUN

Reads `<lake-root>/_dead_letter/feature_store/<run_id>.jsonl`, looks the dead-lettered events up in gold at its
latest version and sends them through the ingestion's own path (feature_store/batch_writer.py): the row as
gold holds it now, to the online store too if it is still its card's newest row, with the same late-data
correction. Records still failing go to this replay's own dead-letter file (exit code 3); replayed files move
to `_dead_letter/feature_store/replayed/`. Run it while no ingestion runs (the state machines hold the run
lease), e.g. after fixing the cause. The library is feature_store/dead_letters.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.local_runner.lease import add_lease_option
from feature_store.cli_options import (
    add_backend_options,
    add_feature_group_option,
    add_writer_options,
    backend_options,
    resolve_backend_args,
    resolve_writer_args,
)
from spark_jobs.job_options import add_lake_options
from spark_jobs.run_trace import add_run_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="replay_dead_letters.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_backend_options(parser, writes=True)
    add_lake_options(parser)
    add_run_options(parser)
    parser.add_argument(  # not --run-id: that is this replay's own run id (add_run_options)
        "--dead-letter-run-id",
        action="append",
        default=None,
        help="replay only the dead letters of this ingestion run (repeatable; default: every file not yet replayed)",
    )
    add_feature_group_option(parser)
    add_writer_options(parser)
    add_lease_option(parser)
    args = parser.parse_args(argv)
    resolve_writer_args(parser, args)
    resolve_backend_args(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from devtools.local_runner.lease import run_holding_lease
    from feature_store.dead_letters import DeadLetterReplayOptions, run_dead_letter_replay
    from spark_jobs.job_run import JobSpec, run_job

    options = DeadLetterReplayOptions(
        run_ids=tuple(args.dead_letter_run_id or ()),
        feature_group=args.feature_group,
        max_attempts=args.max_attempts,
        ttl=args.ttl,
    )
    backend = backend_options(args)
    job = JobSpec(
        job="replay_dead_letters",
        mode="replay",
        lake_root=args.lake_root,
        endpoint_url=args.endpoint_url,
        arguments=vars(args),
    )
    # A replay writes the Feature Store: it holds the pipeline lease, as the scheduled runs do.
    return run_holding_lease(
        args,
        job="replay_dead_letters",
        run=lambda: run_job(
            job,
            lambda storage, report: run_dead_letter_replay(
                storage, report, options, backend, endpoint_url=args.endpoint_url
            ),
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
