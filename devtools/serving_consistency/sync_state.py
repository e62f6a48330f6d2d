"""Sync the lake's local online state from silver, for an ingestion job that does not (yet) do it itself.

    python -m devtools.serving_consistency.sync_state --lake-root DIR

The pipeline calls this only when the ingestion left no sync watermark (`_state/online_state_sync.json`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

SYNC_WATERMARK = "_state/online_state_sync.json"


def synced(lake: Path) -> bool:
    return (lake / SYNC_WATERMARK).exists()


def sync_local_state(spark, lake: Path) -> dict:
    """`feature_store.online_state_sync.sync_online_state` on the lake's SQLite state."""
    from feature_store.online_state import SqliteOnlineState, local_state_path
    from feature_store.online_state_sync import SyncOptions, sync_online_state
    from spark_jobs.storage import open_lake

    path = local_state_path(lake).resolve()
    is_new = not path.exists()
    state = SqliteOnlineState(path)
    try:
        options = SyncOptions(state_name=f"sqlite:{path}", full_resync=is_new)
        return sync_online_state(spark, open_lake(str(lake)), state, options, run_id="serving-consistency")
    finally:
        state.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake-root", type=Path, required=True, help="a local lake")
    args = parser.parse_args(argv)
    from spark_jobs.session import build_spark_session

    spark = build_spark_session("serving-consistency-sync")
    print(sync_local_state(spark, args.lake_root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
