"""Re-send the records ingestion dead-lettered to the Feature Store.

    python scripts/replay_dead_letters.py --lake-root ./lake                      # every pending file
    python scripts/replay_dead_letters.py --lake-root s3://… --backend sagemaker --region eu-west-1 --run-id local-…

Reads `<lake-root>/_dead_letter/feature_store/<run_id>.jsonl`, looks the dead-lettered events up in gold at its
latest version and sends them through the ingestion's own path (feature_store/batch_writer.py): the row as
gold holds it now, to the online store too if it is still its card's newest row, with the same late-data
correction. Re-reading gold rather than re-sending the stored Record means a replay can never put an older
version of a card's features online after a later run wrote a newer one. Records still failing go to this
replay's own dead-letter file (exit code 3); replayed files move to `_dead_letter/feature_store/replayed/`.
Run it while no ingestion runs (the state machines hold the run lease), e.g. after fixing the cause.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.definitions import feature_group_name
from feature_store.ingest_features import DEAD_LETTER_EXIT_CODE, DEAD_LETTERS, METRIC_STAGE
from feature_store.register_feature_groups import add_ttl_options, default_online_store_path, ttl_from_args
from spark_jobs.job_options import add_lake_options

REPLAYED = "replayed"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="replay_dead_letters.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("local", "sagemaker"), default="local", help="(default: local)")
    add_lake_options(parser)
    parser.add_argument(
        "--run-id",
        action="append",
        default=None,
        help="replay only this run's dead letters (repeatable; default: every file not yet replayed)",
    )
    parser.add_argument(
        "--online-store-path",
        default=None,
        help="local backend: SQLite file (default: <lake-root>/feature_store/online.db)",
    )
    parser.add_argument(
        "--feature-group", default=feature_group_name(), help=f"feature group (default: {feature_group_name()})"
    )
    parser.add_argument("--region", default=None, help="sagemaker backend: AWS region (default: AWS_REGION)")
    parser.add_argument("--max-concurrency", type=int, default=4, help="sagemaker backend: partitions written at once")
    parser.add_argument("--max-attempts", type=int, default=8, help="attempts per record before it is dead-lettered")
    add_ttl_options(parser, what="record-level TTL of online writes, overriding the group's")
    args = parser.parse_args(argv)
    args.ttl = ttl_from_args(parser, args)
    args.full_resync = False
    args.online_store_path = args.online_store_path or None  # the state machines pass "" on AWS
    if args.backend == "local" and args.online_store_path is None:
        args.online_store_path = default_online_store_path(args.lake_root)
        if args.online_store_path is None:
            parser.error("--online-store-path is required for the local backend when --lake-root is on S3")
    return args


def pending_files(storage, run_ids: list[str] | None) -> list[str]:
    prefix = storage.uri(DEAD_LETTERS)
    if run_ids:
        uris = [storage.uri(DEAD_LETTERS, f"{run_id}.jsonl") for run_id in run_ids]
        missing = [uri for uri in uris if not storage.exists(uri)]
        if missing:
            raise FileNotFoundError(f"no dead-letter file {', '.join(missing)}")
        return uris
    return [
        item.uri
        for item in storage.list_files(prefix)
        if item.uri.endswith(".jsonl") and f"/{REPLAYED}/" not in item.uri[len(prefix) :]
    ]


def read_dead_letters(storage, uris: list[str]) -> list[dict]:
    return [json.loads(line) for uri in uris for line in storage.read_text(uri).splitlines() if line.strip()]


def replay(spark, storage, backend, report, args: argparse.Namespace) -> dict:
    """Re-send the dead letters of the chosen files; returns the summary (also in the report)."""
    from pyspark.sql import functions as F

    from feature_store.batch_writer import WriterOptions, WriteStats
    from feature_store.ingest_features import check_group, with_online_flag
    from spark_jobs.gold import GOLD_TABLE
    from spark_jobs.storage import spark_path

    uris = pending_files(storage, args.run_id)
    letters = read_dead_letters(storage, uris)
    other_groups = sorted({item["feature_group"] for item in letters} - {args.feature_group})
    if other_groups:
        raise ValueError(f"dead letters of {', '.join(other_groups)} found: pass --feature-group and --run-id")
    summary = {"files": uris, "dead_letters_read": len(letters), "feature_group": args.feature_group}
    report.details["replay"] = summary
    stats = WriteStats()
    events = sorted({item["source"]["event_id"] for item in letters if item.get("source", {}).get("event_id")})
    if events:
        check_group(backend.describe_group(args.feature_group), args.feature_group)
        days = sorted({item["source"]["dt"] for item in letters if item.get("source", {}).get("dt")})
        gold = spark.read.format("delta").load(spark_path(storage.uri(GOLD_TABLE)))
        changed = gold.where(F.col("dt").isin(days)).where(F.col("event_id").isin(events))
        rows = with_online_flag(changed, gold.where(F.col("dt") >= F.lit(days[0])))
        options = WriterOptions(feature_group=args.feature_group, max_attempts=args.max_attempts, ttl=args.ttl)
        with report.step("write"):
            stats = backend.write(spark, rows, options)
    summary["events"] = len(events)
    summary["events_not_in_gold"] = max(0, len(events) - stats.records)
    if stats.dead_letters:
        uri = storage.uri(DEAD_LETTERS, f"{report.run_id}.jsonl")
        storage.append_lines(
            uri, [json.dumps({**item, "run_id": report.run_id}, sort_keys=True) for item in stats.dead_letters]
        )
        summary["dead_letter_file"] = uri
    for uri in uris:
        name = uri.rsplit("/", 1)[1]
        storage.write_text(storage.uri(DEAD_LETTERS, REPLAYED, name), storage.read_text(uri))
        storage.delete(uri)
    report.add(
        records=stats.records,
        written=stats.written,
        online_records=stats.online_records,
        online_corrections=stats.online_corrections,
        dead_letters=len(stats.dead_letters),
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from feature_store.ingest_features import open_backend
    from spark_jobs.run_report import RunReport
    from spark_jobs.session import build_spark_session
    from spark_jobs.storage import open_lake

    storage = open_lake(args.lake_root, endpoint_url=args.endpoint_url)
    report = RunReport(storage, job="replay_dead_letters", mode="replay")
    report.arguments = {key: str(value) for key, value in vars(args).items() if value is not None}
    backend = None
    try:
        backend = open_backend(args, storage)
        spark = build_spark_session("replay_dead_letters", s3_endpoint_url=args.endpoint_url)
        replay(spark, storage, backend, report, args)
    except Exception as error:
        report.finish("failed", error=error)
        raise
    finally:
        if backend is not None:
            backend.close()
    dead = report.counts.get("dead_letters", 0)
    report.finish("dead_lettered" if dead else "succeeded", metrics={METRIC_STAGE: {"FeatureStoreDeadLetters": dead}})
    return DEAD_LETTER_EXIT_CODE if dead else 0


if __name__ == "__main__":
    raise SystemExit(main())
