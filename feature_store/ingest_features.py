"""Gold → SageMaker Feature Store (or the local backend), both groups of the running feature set:
gold/card_features → `card-features-v{N}` (online = each card's newest row) and gold/merchant_features →
`merchant-features-v{N}` (online = each merchant's newest snapshot day); offline = history.

    spark-submit --master 'local[*]' feature_store/ingest_features.py --lake-root ./lake
    (EMR Serverless: --backend sagemaker --lake-root s3://bucket/prefix --region eu-west-1)

Each run, for each group from its own table:
1. Reads the watermark `<lake-root>/_state/feature_store_ingest.json` (per group: the last table version
   fully ingested) and the table's latest version.
2. Decides whether the table's Change Data Feed since the group's entry is still readable: the first commit
   to read must still be in `_delta_log`, and younger than the table's `delta.deletedFileRetentionDuration`
   (default 1 week; VACUUM may have deleted the change files of older commits). If not, or without a
   watermark entry for the group (a v1 watermark names only card-features-v1), it resyncs: every row at the
   latest version. The run report says which and why. Missing files are never ignored: a read that still
   meets one fails.
3. Every changed row goes to the offline store; a card's newest gold row at the version read (greatest
   (ts_us, event_id)) or a merchant's newest snapshot day, when it is among the changed rows, also to the
   online store, with the late-data correction (see feature_store/batch_writer.py and docs/feature_store.md).
4. Writes dead letters to `<lake-root>/_dead_letter/feature_store/<run_id>.jsonl`, then moves the watermark:
   only when every record was written or dead-lettered. Any dead letter makes the exit code 3 and shows
   in the EMF metric FeatureStoreDeadLetters (namespace CardFeatures, Stage=feature_store).
5. Syncs the online state of request-time features with silver (feature_store/online_state_sync.py): the
   DynamoDB table --online-state-table (the state machines pass it), else the local SQLite state
   `<lake-root>/feature_store/online_state.db`; its mode and counts go into the run report.

The library is feature_store/ingestion.py; the backends are in feature_store/backends/. The sagemaker
backend writes from the executors (one runtime client per partition, at most
--max-concurrency partitions at once); the local backend writes from the driver into SQLite and Delta.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.cli_options import (
    add_backend_options,
    add_feature_group_option,
    add_writer_options,
    backend_options,
    resolve_backend_args,
    resolve_writer_args,
)
from feature_store.ingestion import FAILURE_METRICS, FeatureGroupNotReady, IngestOptions, run_ingestion
from feature_store.online_state_sync import add_online_state_options, online_state_options
from spark_jobs.job_options import add_lake_options
from spark_jobs.run_trace import add_run_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ingest_features.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_backend_options(parser, writes=True)
    add_lake_options(parser)
    add_run_options(parser)
    add_feature_group_option(parser, what="card feature group to write (the merchant group: merchant-features-vN)")
    add_writer_options(parser)
    parser.add_argument(
        "--full-resync",
        action="store_true",
        help="ignore the watermark and write every row of gold and gold/merchant_features at their latest version "
        "(newest per card and per merchant online)",
    )
    add_online_state_options(parser)
    args = parser.parse_args(argv)
    resolve_writer_args(parser, args)
    resolve_backend_args(parser, args)
    args.online_state = online_state_options(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from spark_jobs.job_run import JobSpec, run_job

    options = IngestOptions(
        feature_group=args.feature_group, max_attempts=args.max_attempts, ttl=args.ttl, full_resync=args.full_resync
    )
    backend = backend_options(args)
    online_state = args.online_state
    job = JobSpec(
        job="ingest_features",
        mode=backend.backend,
        lake_root=args.lake_root,
        endpoint_url=args.endpoint_url,
        arguments={key: value for key, value in vars(args).items() if key != "online_state"},
        failure_metrics=FAILURE_METRICS,
        input_errors=(FeatureGroupNotReady,),
    )
    return run_job(
        job,
        lambda storage, report: run_ingestion(
            storage, report, options, backend, endpoint_url=args.endpoint_url, online_state=online_state
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
