"""Re-validate quarantined bronze lines with today's contract and reference data; move what passes.

Reads each quarantined (source_file, line_number) again from bronze, validates it against the current
contract and FX rates (e.g. after a currency was added), and moves lines that now pass into silver (or
the duplicates log); their quarantine rows stay, with a record of the outcome in silver/quarantine_replays (later
replays skip them). The next stream run carries them into gold. Writes a run report `_runs/replay-….json`.

Example: scripts/replay_quarantine.py --lake-root ./lake --reason unknown_currency --fx-rates new_rates.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.local_runner.lease import add_lease_option
from spark_jobs.bronze_contract import QUARANTINE_REASONS
from spark_jobs.job_options import (
    REPO_ROOT_FX_RATES,
    add_event_id_index_options,
    add_framing_options,
    add_lake_options,
    add_region_option,
    add_token_key_options,
    check_event_id_index_options,
    check_token_key_options,
    framing_limits,
    parse_day,
)
from spark_jobs.run_trace import add_run_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="replay_quarantine.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_lake_options(parser)
    add_run_options(parser)
    parser.add_argument(
        "--reason",
        action="append",
        choices=QUARANTINE_REASONS,
        help="only lines quarantined for this reason (repeatable; default: every reason)",
    )
    parser.add_argument("--since", type=parse_day, help="only lines whose bronze arrival date is on or after this day")
    parser.add_argument(
        "--fx-rates", default=None, help=f"currency,usd_rate CSV to validate with (default: {REPO_ROOT_FX_RATES})"
    )
    add_token_key_options(parser)
    add_framing_options(parser)
    add_event_id_index_options(parser)
    add_region_option(parser)
    add_lease_option(parser)
    args = parser.parse_args(argv)
    check_token_key_options(parser, args)
    check_event_id_index_options(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from devtools.local_runner.lease import run_holding_lease
    from spark_jobs.card_numbers import TokenKeyError
    from spark_jobs.job_run import JobSpec, run_job
    from spark_jobs.quarantine_replay import QuarantineReplayOptions, run_quarantine_replay

    options = QuarantineReplayOptions(
        reasons=tuple(args.reason or ()),
        since=args.since,
        fx_rates=args.fx_rates,
        card_token_secret_id=args.card_token_secret_id,
        allow_development_token_key=args.allow_development_token_key,
        endpoint_url=args.endpoint_url,
        event_id_index_table=args.event_id_index_table,
        event_id_index_path=args.event_id_index_path,
        region=args.region,
        limits=framing_limits(args),
    )
    job = JobSpec(
        job="replay_quarantine",
        mode="replay",
        lake_root=args.lake_root,
        endpoint_url=args.endpoint_url,
        arguments=vars(args),
        input_errors=(TokenKeyError,),
    )
    # A replay writes silver and quarantine: it holds the pipeline lease, as the scheduled runs do.
    return run_holding_lease(
        args,
        job="replay_quarantine",
        run=lambda: run_job(job, lambda storage, report: run_quarantine_replay(storage, report, options)),
    )


if __name__ == "__main__":
    raise SystemExit(main())
