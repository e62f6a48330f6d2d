"""Every table, folder and state file of the lake, named once.

`<lake-root>` is a local folder or `s3://bucket/prefix` (see storage.open_lake). Below it:

    bronze/streaming/card_authorization/ingest_dt=YYYY/MM/DD/HH/   authorizations as producers deliver them
    bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/              chargeback reports
    silver/card_transactions     Delta   validated, deduplicated, masked events (silver.py)
    silver/duplicates            Delta   repeated deliveries of an event
    silver/quarantine            Delta   rejected lines and files, with their reason (never deleted)
    silver/quarantine_replays    Delta   what a quarantine replay did with each row it took out of quarantine
    silver/label_quarantine      Delta   rejected chargeback records (labels.py)
    silver/chargebacks           Delta   valid chargeback records, each feed line once (chargebacks.py)
    gold/card_features           Delta   point-in-time card and event features (gold.py)
    gold/merchant_features       Delta   merchant features as of each day's start (merchant_features.py)
    gold/training/as_of=A/       Parquet train/, validation/ and manifest.json (build_datasets.py)
    gold/inference/as_of=A/      Parquet the inference snapshot
    feature_store/online.db              local Feature Store backend: SQLite online store and groups
    feature_store/offline/<group>/ Delta local Feature Store backend: offline store
    _state/bronze_ledger/        which bronze files were processed (bronze_ledger.py)
    _state/<name>.commits/<N>.json   create-only commit records of each `_state/<name>.json` watermark
                                 (storage.CreateOnlyLog: two writers can never both make commit N)
    _state/chargeback_ledger/    which chargeback feed files were processed (chargebacks.py)
    _state/gold_watermark.json   the last silver version gold absorbed (gold_update.py)
    _state/merchant_features_watermark.json   the silver and chargeback versions the merchant snapshot absorbed
    _state/maintenance.json      table versions at the last maintenance (maintenance.py)
    _state/feature_store_ingest.json   the group and gold version last ingested (feature_store/ingest_features.py)
    _state/online_state_sync.json      the state, silver and quarantine versions last synced into the online
                                 state (feature_store/online_state_sync.py; the local state itself is
                                 feature_store/online_state.db, `online_state.local_state_path`)
    _state/event_id_index.sqlite event_id -> the silver day(s) holding it, the dedupe's exact lookup at any
                                 distance (event_id_index.py; DynamoDB on AWS)
    _runs/<run_id>.json          run reports (run_report.py)
    _dead_letter/feature_store/<run_id>.jsonl   records ingestion could not write; replayed/ after a replay

Naming rule. Constants are paths relative to the lake root. A function named `*_uri` returns a canonical URI
(`file:///abs/path` or `s3://bucket/key`), the form storage calls, ledgers, reports and manifests use. A
function named `*_path` returns what a library opens: `table_path` the location Spark and Delta are given
(`storage.spark_path` of the URI: local tables as plain absolute paths), `local_online_store_path` a SQLite
file on this machine.
"""

from __future__ import annotations

from datetime import date

from spark_jobs.storage import CreateOnlyLog, LakeStorage, canonical_uri, spark_path

# Inputs -----------------------------------------------------------------------------------------------------
BRONZE_EVENTS_PREFIX = "bronze/streaming/card_authorization"
LABELS_PREFIX = "bronze/labels/chargebacks"

# Delta tables -----------------------------------------------------------------------------------------------
SILVER_TABLE = "silver/card_transactions"
DUPLICATES_TABLE = "silver/duplicates"
QUARANTINE_TABLE = "silver/quarantine"
QUARANTINE_REPLAYS_TABLE = "silver/quarantine_replays"
LABEL_QUARANTINE_TABLE = "silver/label_quarantine"
CHARGEBACKS_TABLE = "silver/chargebacks"
GOLD_TABLE = "gold/card_features"
MERCHANT_FEATURES_TABLE = "gold/merchant_features"
# The tables silver_and_gold.py registers in the catalog (Glue on EMR).
CATALOG_TABLES = (
    SILVER_TABLE,
    DUPLICATES_TABLE,
    QUARANTINE_TABLE,
    QUARANTINE_REPLAYS_TABLE,
    CHARGEBACKS_TABLE,
    GOLD_TABLE,
    MERCHANT_FEATURES_TABLE,
)

# Datasets ---------------------------------------------------------------------------------------------------
TRAINING_PREFIX = "gold/training"
INFERENCE_PREFIX = "gold/inference"
DATASET_MANIFEST = "manifest.json"

# Local Feature Store backend --------------------------------------------------------------------------------
ONLINE_STORE_FILE = "feature_store/online.db"
OFFLINE_STORE_PREFIX = "feature_store/offline"

# Job state, run reports, dead letters -----------------------------------------------------------------------
BRONZE_LEDGER_PREFIX = "_state/bronze_ledger"
CHARGEBACK_LEDGER_PREFIX = "_state/chargeback_ledger"
GOLD_WATERMARK = "_state/gold_watermark.json"
MERCHANT_FEATURES_WATERMARK = "_state/merchant_features_watermark.json"
MAINTENANCE_STATE = "_state/maintenance.json"
FEATURE_STORE_WATERMARK = "_state/feature_store_ingest.json"
ONLINE_STATE_SYNC_WATERMARK = "_state/online_state_sync.json"
EVENT_ID_INDEX_FILE = "_state/event_id_index.sqlite"  # local lakes; DynamoDB on AWS (event_id_index.py)
RUNS_PREFIX = "_runs"
ALERTS_LOG = "_runs/alerts.log"
FEATURE_STORE_DEAD_LETTERS = "_dead_letter/feature_store"
REPLAYED_FOLDER = "replayed"


def table_uri(storage: LakeStorage, table: str) -> str:
    """The canonical URI of one of the lake's tables (a `*_TABLE` constant)."""
    return storage.uri(table)


def delta_commit_uri(table_uri: str, version: int) -> str:
    """The URI of one version's commit file in a Delta table's log (`table_uri`: its canonical URI). Log cleanup
    deletes the oldest of them first, so whether one exists says whether that version can still be read."""
    return f"{table_uri.rstrip('/')}/_delta_log/{version:020d}.json"


def table_path(storage: LakeStorage, table: str) -> str:
    """The location Spark and Delta are given for one of the lake's tables."""
    return spark_path(table_uri(storage, table))


def bronze_events_uri(storage: LakeStorage) -> str:
    return storage.uri(BRONZE_EVENTS_PREFIX)


def labels_uri(storage: LakeStorage) -> str:
    return storage.uri(LABELS_PREFIX)


def bronze_ledger_uri(storage: LakeStorage, *parts: str) -> str:
    """A file of the bronze ledger (`committed.json`, `pending.json`, `hours/<hour>.json`)."""
    return storage.uri(BRONZE_LEDGER_PREFIX, *parts)


def state_commit_log(storage: LakeStorage, pointer_uri: str, *, what: str) -> CreateOnlyLog:
    """The create-only commits behind a `_state/<name>.json` watermark: records in `_state/<name>.commits/`,
    the watermark file itself being the pointer (so it keeps its shape for every reader)."""
    records_uri = (
        pointer_uri[: -len(".json")] + ".commits" if pointer_uri.endswith(".json") else pointer_uri + ".commits"
    )
    return CreateOnlyLog(storage, records_uri=records_uri, pointer_uri=pointer_uri, sequence_key="sequence", what=what)


def gold_watermark_uri(storage: LakeStorage) -> str:
    return storage.uri(GOLD_WATERMARK)


def maintenance_state_uri(storage: LakeStorage) -> str:
    return storage.uri(MAINTENANCE_STATE)


def feature_store_watermark_uri(storage: LakeStorage) -> str:
    return storage.uri(FEATURE_STORE_WATERMARK)


def online_state_sync_watermark_uri(storage: LakeStorage) -> str:
    return storage.uri(ONLINE_STATE_SYNC_WATERMARK)


def run_report_uri(storage: LakeStorage, run_id: str) -> str:
    return storage.uri(RUNS_PREFIX, f"{run_id}.json")


def alerts_log_uri(storage: LakeStorage) -> str:
    return storage.uri(ALERTS_LOG)


def dead_letters_uri(storage: LakeStorage) -> str:
    """The folder of the Feature Store dead-letter files."""
    return storage.uri(FEATURE_STORE_DEAD_LETTERS)


def dead_letter_file_uri(storage: LakeStorage, run_id: str) -> str:
    """The dead letters of one ingestion or replay run."""
    return storage.uri(FEATURE_STORE_DEAD_LETTERS, f"{run_id}.jsonl")


def replayed_dead_letter_uri(storage: LakeStorage, file_name: str) -> str:
    """Where a dead-letter file goes once replayed."""
    return storage.uri(FEATURE_STORE_DEAD_LETTERS, REPLAYED_FOLDER, file_name)


def dataset_folder(as_of: date) -> str:
    return f"as_of={as_of.isoformat()}"


def training_split_prefix(as_of: date, split: str) -> str:
    """A training or validation split's folder, relative to the lake root (the manifest records it)."""
    return f"{TRAINING_PREFIX}/{dataset_folder(as_of)}/{split}"


def inference_prefix(as_of: date) -> str:
    """The inference snapshot's folder, relative to the lake root."""
    return f"{INFERENCE_PREFIX}/{dataset_folder(as_of)}"


def training_file_uri(storage: LakeStorage, as_of: date, name: str) -> str:
    """A file beside the splits of an as-of date: the manifest, or a baseline model's outputs."""
    return storage.uri(TRAINING_PREFIX, dataset_folder(as_of), name)


def offline_table_uri(lake_root_uri: str, group_name: str) -> str:
    """The local backend's offline store of one feature group: a Delta table below the lake root."""
    return f"{lake_root_uri.rstrip('/')}/{OFFLINE_STORE_PREFIX}/{group_name}"


def local_online_store_path(lake_root: str) -> str | None:
    """`<lake-root>/feature_store/online.db` for a local lake; None for S3 (the path must then be given)."""
    if lake_root.startswith(("s3://", "s3a://")):
        return None
    return spark_path(canonical_uri(lake_root)) + "/" + ONLINE_STORE_FILE
