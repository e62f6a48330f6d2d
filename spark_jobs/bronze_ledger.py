"""Which bronze files a run processes: the ledger, the pending plan and bounded listing.

State lives under `<lake-root>/_state/bronze_ledger/` (through the storage layer):
- `commits/<N:012d>.json`: the commit of batch N, created only if absent (storage.CreateOnlyLog: S3
  `If-None-Match: *`, locally an exclusive create), so two writers can never both commit a batch; the loser
  gets CommitConflictError (exit 5) naming the batch and the winner's run. It holds `last_batch`,
  `high_water_hour`, `run_id` and the batch's `files`.
- `committed.json`: a pointer to a recent commit, `{"last_batch": N, "high_water_hour": "YYYY/MM/DD/HH"}`,
  written after the commit's hour entries; readers probe `commits/<N+1>.json`… from it, and a commit found
  beyond the pointer (its writer stopped in between) has its hour entries re-applied (rolled forward).
- `hours/<YYYY-MM-DD-HH>.json` (and `hours/unpartitioned.json` for files found by --full-scan outside
  `ingest_dt=` folders): `{uri: {"size", "version", "batch"}}` for every processed file of that arrival
  hour. Entries whose batch is above `last_batch` belong to an uncommitted batch and are ignored.
- `pending.json`: the batch being processed, written before any table is touched, so a crashed run's
  successor finishes exactly that batch (same files, same order) before planning a new one. It also holds the
  batch's `inputs` (the reference data's fingerprints: fx rates hash, card-token key versions, framing caps),
  so a resumed batch whose files or inputs changed since planning is re-planned (`replan_if_changed`) and
  reported, never left failing or silently mixed.

Listing does not grow with the lake: only arrival-hour folders from the high-water mark minus a lookback
are listed (S3 ListObjectsV2 StartAfter), and only their hour ledgers are read.

The same ledger serves the chargeback feed (chargebacks.py): `BronzeLedger(storage, prefix=lake.LABELS_PREFIX,
state_prefix=lake.CHARGEBACK_LEDGER_PREFIX, layout=REPORT_DAYS)` keeps its state under `_state/chargeback_ledger/`
and reads `reported_dt=YYYY/MM/DD/` day folders: a file's "arrival hour" is then its report day ("YYYY/MM/DD"),
its entries live in `days/<YYYY-MM-DD>.json`, and the mark and lookback move by days.

Clocks (docs/runbook.md, "Future folders and the high-water mark"): each run is given `now`. A folder that
starts later than now plus the allowance is in the future: its files are neither processed nor allowed to move
the mark (one such object would otherwise make every later listing start after it) until their time comes;
the listing reports them. A mark that an earlier version moved into the future does not hide new files in the
lookback before now, and `--full-scan` resets it to the latest folder that is not in the future.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

from spark_jobs import lake
from spark_jobs.bronze_contract import FUTURE_TS_ALLOWANCE
from spark_jobs.storage import CreateOnlyLog, LakeStorage, StoredFile

UNPARTITIONED = "unpartitioned"
# The version a re-plan gives a planned file that is gone: reading it quarantines it (unreadable_file), a later
# resume does not report it again, and should it reappear the ledger sees it as changed.
DELETED_VERSION = "deleted"
# Firehose's longest buffering interval: the bound on how long after its folder's hour a record may land when
# the deployment's own buffering is not given (--firehose-buffering-seconds).
MAX_FIREHOSE_BUFFERING = timedelta(seconds=900)
_HOUR_FORMAT = "%Y/%m/%d/%H"
_HOUR_FOLDER = re.compile(r"/ingest_dt=(\d{4})/(\d{2})/(\d{2})/(\d{2})/")


@dataclass(frozen=True, slots=True)
class FolderLayout:
    """How a feed names its time folders: `<key>=<format>/`, each spanning `span`; the ledger keeps one entries
    file per folder in `<entries_folder>/`."""

    key: str  # "ingest_dt"
    format: str  # strftime of a folder, e.g. "%Y/%m/%d/%H"
    pattern: re.Pattern
    span: timedelta
    entries_folder: str

    def folder_of(self, uri: str) -> str:
        """The folder ("YYYY/MM/DD/HH" or "YYYY/MM/DD") a file lies in, or UNPARTITIONED."""
        match = self.pattern.search(uri)
        return "/".join(match.groups()) if match else UNPARTITIONED

    def start(self, folder: str) -> datetime:
        return datetime.strptime(folder, self.format).replace(tzinfo=UTC)


ARRIVAL_HOURS = FolderLayout("ingest_dt", _HOUR_FORMAT, _HOUR_FOLDER, timedelta(hours=1), "hours")
REPORT_DAYS = FolderLayout(
    "reported_dt", "%Y/%m/%d", re.compile(r"/reported_dt=(\d{4})/(\d{2})/(\d{2})/"), timedelta(days=1), "days"
)


@dataclass(frozen=True, slots=True)
class BronzeFile:
    uri: str
    size: int
    version: str
    arrival_hour: str  # "YYYY/MM/DD/HH" ("YYYY/MM/DD" in a REPORT_DAYS ledger), or "unpartitioned" outside folders
    last_modified: str | None = None  # ISO-8601 UTC from the listing; None in plans written before it existed


@dataclass
class BatchPlan:
    batch: int
    run_id: str
    files: list[BronzeFile]
    resumed: bool = False
    inputs: dict | None = None  # what the batch's outcome depends on besides its files (see module docstring)


@dataclass
class InputChanges:
    """How a resumed batch's inputs differ from its plan: files with another size or version, files gone, and
    reference data ({name: {"planned": …, "now": …}}; "planned" None for a plan that did not record it)."""

    changed_files: list[str] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    changed_inputs: dict[str, dict] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changed_files or self.deleted_files or self.changed_inputs)


@dataclass
class ListingResult:
    new_files: list[BronzeFile] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)
    outside_hour_folders: int = 0
    listed_files: int = 0
    listed_from: str | None = None
    future_files: list[BronzeFile] = field(default_factory=list)  # in folders after now + allowance: deferred
    high_water_in_future: str | None = None  # the committed mark, when it lies after now + allowance
    repaired_high_water: tuple[str, str | None] | None = None  # --full-scan: (mark before, mark after)


def arrival_hour_of(uri: str) -> str:
    return ARRIVAL_HOURS.folder_of(uri)


def hour_start(arrival_hour: str) -> datetime:
    """The UTC start of an arrival-hour folder ("YYYY/MM/DD/HH")."""
    return datetime.strptime(arrival_hour, _HOUR_FORMAT).replace(tzinfo=UTC)


def arrival_time(file: BronzeFile, buffering: timedelta) -> datetime | None:
    """When the file's records had arrived at the latest: the earlier of its folder's hour end plus Firehose
    buffering (Firehose names the folder by the first record's arrival and flushes within the buffering
    interval) and the object's LastModified (nothing in it arrived after it was written). None when neither
    is known (a file outside ingest_dt= folders from a plan without last_modified): no future check."""
    bounds = []
    if file.arrival_hour != UNPARTITIONED:
        bounds.append(hour_start(file.arrival_hour) + timedelta(hours=1) + buffering)
    if file.last_modified:
        modified = datetime.fromisoformat(file.last_modified.replace("Z", "+00:00"))
        bounds.append(modified if modified.tzinfo else modified.replace(tzinfo=UTC))
    return min(bounds) if bounds else None


def _hour_key(arrival_hour: str) -> str:
    return arrival_hour.replace("/", "-")


def is_ignored_name(uri: str, prefix_uri: str) -> bool:
    """Files (or folders) whose name starts with `_` or `.` are never data (e.g. `_SUCCESS`, `.tmp`)."""
    relative = uri[len(prefix_uri) :].strip("/")
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


class BronzeLedger:
    def __init__(
        self,
        storage: LakeStorage,
        *,
        prefix: str = lake.BRONZE_EVENTS_PREFIX,
        state_prefix: str = lake.BRONZE_LEDGER_PREFIX,
        layout: FolderLayout = ARRIVAL_HOURS,
    ) -> None:
        self.storage = storage
        self.prefix_uri = storage.uri(prefix)
        self.state_prefix = state_prefix
        self.layout = layout

    # State files ---------------------------------------------------------------------------------
    def _state_uri(self, *parts: str) -> str:
        return self.storage.uri(self.state_prefix, *parts)

    def _commit_log(self) -> CreateOnlyLog:
        return CreateOnlyLog(
            self.storage,
            records_uri=self._state_uri("commits"),
            pointer_uri=self._state_uri("committed.json"),
            sequence_key="last_batch",
            what="bronze ledger batch" if self.state_prefix == lake.BRONZE_LEDGER_PREFIX else "chargeback ledger batch",
        )

    def committed(self) -> dict:
        """The latest commit (`last_batch`, `high_water_hour`): the pointer, rolled forward over commits made
        after it (their hour entries are re-applied, idempotently, before the pointer moves)."""
        log = self._commit_log()
        pointer = self.storage.read_json(log.pointer_uri) or {"last_batch": 0, "high_water_hour": None}
        latest = log.latest() or pointer
        if latest["last_batch"] > pointer["last_batch"]:
            for batch in range(pointer["last_batch"] + 1, latest["last_batch"] + 1):
                record = self.storage.read_json(log.record_uri(batch))
                if record is not None:
                    self._record_hour_entries(batch, [BronzeFile(**item) for item in record.get("files", [])])
            log.move_pointer(_pointer_of(latest))
        return _pointer_of(latest)

    def _hour_entries(self, arrival_hour: str, last_batch: int) -> dict[str, dict]:
        entries = self.storage.read_json(self._entries_uri(arrival_hour), {})
        return {uri: entry for uri, entry in entries.items() if entry["batch"] <= last_batch}

    def _entries_uri(self, folder: str) -> str:
        """The entries file of one folder: `hours/<YYYY-MM-DD-HH>.json` (`days/<YYYY-MM-DD>.json` by day)."""
        return self._state_uri(self.layout.entries_folder, f"{_hour_key(folder)}.json")

    def pending(self) -> BatchPlan | None:
        """The planned but uncommitted batch, if a previous run stopped before committing it."""
        document = self.storage.read_json(self._state_uri("pending.json"))
        if not document or document["batch"] <= self.committed()["last_batch"]:
            return None
        files = [BronzeFile(**item) for item in document["files"]]
        return BatchPlan(
            batch=document["batch"], run_id=document["run_id"], files=files, resumed=True, inputs=document.get("inputs")
        )

    def replan_if_changed(self, plan: BatchPlan, *, run_id: str, inputs: dict) -> tuple[BatchPlan, InputChanges | None]:
        """A resumed batch against its files as they are now and this run's `inputs`. Unchanged: the plan as it
        is, and None. Changed: the batch re-planned under the same number (an overwritten file at its current
        size and version; a deleted file kept with version DELETED_VERSION, so reading it quarantines it as
        unreadable_file; this run's inputs), persisted as the pending batch, and what changed (for the run
        report and its alarm)."""
        changes = InputChanges()
        now = self._current_files(plan.files)
        files = []
        for item in plan.files:
            current = now.get(item.uri)
            entry = item
            if current is None and item.version != DELETED_VERSION:
                changes.deleted_files.append(item.uri)
                entry = replace(item, version=DELETED_VERSION)
            elif current is not None and (current.size, current.version) != (item.size, item.version):
                changes.changed_files.append(item.uri)
                entry = replace(item, size=current.size, version=current.version, last_modified=current.last_modified)
            files.append(entry)
        planned = plan.inputs or {}
        for name, value in inputs.items():
            if planned.get(name) != value:
                changes.changed_inputs[name] = {"planned": planned.get(name), "now": value}
        if not changes:
            return plan, None
        replanned = BatchPlan(batch=plan.batch, run_id=run_id, files=files, resumed=True, inputs=inputs)
        self._write_pending(replanned)
        return replanned, changes

    def _current_files(self, files: list[BronzeFile]) -> dict[str, StoredFile]:
        """The listing entries of `files` now: one listing per arrival-hour folder, a stat for the others."""
        found: dict[str, StoredFile] = {}
        for hour in sorted({item.arrival_hour for item in files if item.arrival_hour != UNPARTITIONED}):
            found.update(
                (stored.uri, stored)
                for stored in self.storage.list_files(f"{self.prefix_uri}/{self.layout.key}={hour}")
            )
        for item in files:
            if item.arrival_hour == UNPARTITIONED:
                stored = self.storage.stat(item.uri)
                if stored is not None:
                    found[item.uri] = stored
        return found

    # Listing and planning ------------------------------------------------------------------------
    def list_new_files(
        self,
        *,
        lookback_hours: int,
        full_scan: bool,
        now: datetime | None = None,
        allowance: timedelta = FUTURE_TS_ALLOWANCE,
    ) -> ListingResult:
        """New files to process. Folders starting after `now` + `allowance` are deferred (`future_files`).
        A full scan that finds the mark in the future proposes its repair (`repaired_high_water`: the latest
        folder listed that is not in the future), which `repair_high_water` commits."""
        now = now or datetime.now(UTC)
        layout = self.layout
        latest_hour = (now + allowance).strftime(layout.format)  # the last folder that is not in the future
        committed = self.committed()
        last_batch = committed["last_batch"]
        result = ListingResult()
        mark = committed["high_water_hour"]
        if mark and mark > latest_hour:
            result.high_water_in_future = mark
        start_after = None
        if not full_scan and mark:
            # A mark in the future (moved by an earlier version) must not hide the folders before now.
            start = layout.start(min(mark, latest_hour)) - timedelta(hours=lookback_hours)
            start_hour = start.strftime(layout.format)
            # Keys of that hour's folder and later sort after ".../ingest_dt=YYYY/MM/DD/HH".
            start_after = f"{self.prefix_uri}/{layout.key}={start_hour}"
            result.listed_from = start_hour
        known: dict[str, dict[str, dict]] = {}
        latest_seen = None
        for stored in self.storage.list_files(self.prefix_uri, start_after=start_after):
            result.listed_files += 1
            if is_ignored_name(stored.uri, self.prefix_uri):
                result.ignored.append(stored.uri)
                continue
            hour = layout.folder_of(stored.uri)
            if hour == UNPARTITIONED and not full_scan:
                result.outside_hour_folders += 1
                continue
            if hour != UNPARTITIONED and hour > latest_hour:
                result.future_files.append(_bronze_file(stored, hour))
                continue
            if hour != UNPARTITIONED:
                latest_seen = max(latest_seen or hour, hour)
            if hour not in known:
                known[hour] = self._hour_entries(hour, last_batch)
            entry = known[hour].get(stored.uri)
            if entry is None:
                result.new_files.append(_bronze_file(stored, hour))
            elif entry["size"] != stored.size or entry["version"] != stored.version:
                result.changed.append({"uri": stored.uri, "processed_size": entry["size"], "current_size": stored.size})
        result.new_files.sort(key=lambda item: item.uri)
        if full_scan and result.high_water_in_future:
            result.repaired_high_water = (mark, latest_seen)
        return result

    def repair_high_water(self, run_id: str, listing: ListingResult) -> None:
        """Commit a full scan's repair of a mark found in the future (see `list_new_files`): an empty batch
        whose mark is the latest folder that is not in the future. Call it before planning the listed files."""
        if listing.repaired_high_water is not None:
            self.commit(self.plan(run_id, []), repair_mark=listing.repaired_high_water[1] or "")

    def plan(self, run_id: str, files: list[BronzeFile], *, inputs: dict | None = None) -> BatchPlan:
        """Persist the next batch before processing it, with the `inputs` it is processed under."""
        batch = max(self.committed()["last_batch"], self._pending_batch_number()) + 1
        plan = BatchPlan(batch=batch, run_id=run_id, files=sorted(files, key=lambda item: item.uri), inputs=inputs)
        self._write_pending(plan)
        return plan

    def _write_pending(self, plan: BatchPlan) -> None:
        self.storage.write_json(
            self._state_uri("pending.json"),
            {
                "batch": plan.batch,
                "run_id": plan.run_id,
                "files": [asdict(item) for item in plan.files],
                "inputs": plan.inputs,
            },
        )

    def _pending_batch_number(self) -> int:
        document = self.storage.read_json(self._state_uri("pending.json"))
        return document["batch"] if document else 0

    def commit(self, plan: BatchPlan, *, repair_mark: str | None = None, committed_by: str | None = None) -> None:
        """Record the batch's files, then move the commit point. The ledger commits last. The mark only
        moves forward, except for `repair_mark` (`repair_high_water`), which replaces it. The commit record is
        create-only (a second writer of the batch gets CommitConflictError before touching the hour entries);
        `committed_by` names the committing run (default: the planner's id, which a resumed plan keeps)."""
        committed = self.committed()
        hours = [item.arrival_hour for item in plan.files if item.arrival_hour != UNPARTITIONED]
        base = committed["high_water_hour"] or "" if repair_mark is None else repair_mark
        high_water = max([base, *hours]) or None
        run_id = committed_by or plan.run_id  # the committing run (a resumed plan keeps its planner's id)
        pointer = {"last_batch": plan.batch, "high_water_hour": high_water, "last_run_id": run_id}
        # The create-only commit record first: a second writer of this batch fails here, before it touches
        # the hour entries (CommitConflictError, exit 5).
        log = self._commit_log()
        record = pointer | {"run_id": run_id, "planned_by": plan.run_id, "files": [asdict(item) for item in plan.files]}
        log.create(record, run_id=run_id)
        self._record_hour_entries(plan.batch, plan.files)
        log.move_pointer(pointer)
        self.storage.delete(self._state_uri("pending.json"))

    def _record_hour_entries(self, batch: int, files: list[BronzeFile]) -> None:
        """Each file of a committed batch into its arrival hour's ledger (idempotent: a roll-forward repeats it)."""
        by_hour: dict[str, list[BronzeFile]] = {}
        for item in files:
            by_hour.setdefault(item.arrival_hour, []).append(item)
        for hour, hour_files in sorted(by_hour.items()):
            uri = self._entries_uri(hour)
            entries = self.storage.read_json(uri, {})
            for item in hour_files:
                entries[item.uri] = {"size": item.size, "version": item.version, "batch": batch}
            self.storage.write_json(uri, entries)


def _pointer_of(record: dict) -> dict:
    """committed.json's fields of a commit record (without its file list)."""
    return {key: value for key, value in record.items() if key not in ("files", "run_id", "planned_by")}


def _bronze_file(stored: StoredFile, hour: str) -> BronzeFile:
    return BronzeFile(
        uri=stored.uri,
        size=stored.size,
        version=stored.version,
        arrival_hour=hour,
        last_modified=stored.last_modified,
    )
