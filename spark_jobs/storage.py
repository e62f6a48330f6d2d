"""One storage layer for everything a job writes besides Delta tables.

Run reports (`_runs/`), state and ledgers (`_state/`), dead letters (`_dead_letter/`) and bronze listings go
through `LakeStorage`, so `--lake-root` behaves the same for a local folder and for `s3://bucket/prefix`.
Writes are atomic: a reader sees the old object or the new one, never a torn file (local: write to a
temporary name, then rename; S3: a single PUT).

Commit points are create-only (`create_json`): the object is created only if no object has that name (local:
a hard link of a complete temporary file, which fails when the name exists; S3: PutObject with
`If-None-Match: *`, answered 412 PreconditionFailed when the key exists). Of two writers creating the same
name exactly one succeeds; the other gets `AlreadyCommittedError`. `CreateOnlyLog` builds a sequence of
commits on it (docs/architecture.md, "One writer").
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


class AlreadyCommittedError(FileExistsError):
    """A create-only object (a commit record) exists already: another writer committed first."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"{uri} exists already: another writer created it first")
        self.uri = uri


class FileChangedError(OSError):
    """A planned file is no longer the version its batch planned (overwritten since the listing)."""

    def __init__(self, uri: str, *, planned: str, found: str | None = None) -> None:
        now = f", found {found}" if found else ""
        super().__init__(f"{uri}: changed since the batch was planned (planned version {planned}{now})")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file under the lake: its canonical URI, size in bytes, a change marker (mtime or ETag) and when it was
    last written (ISO-8601 UTC: the local mtime, S3's LastModified; None where the listing does not say)."""

    uri: str
    size: int
    version: str
    last_modified: str | None = None


def canonical_uri(path_or_uri: str) -> str:
    """The form every ledger, report and table stores: `file:///abs/path` or `s3://bucket/key`.

    Accepts what Spark shows (`file:/abs/path`, `s3a://…`) and plain local paths.
    """
    if path_or_uri.startswith(("s3://", "s3a://", "s3n://")):
        return "s3://" + path_or_uri.split("://", 1)[1]
    if path_or_uri.startswith("file:"):
        return _file_uri(Path(unquote(urlparse(path_or_uri).path)))
    return _file_uri(Path(path_or_uri).resolve())


def spark_path(uri: str) -> str:
    """How to name a canonical URI to Spark and Delta: local files as plain absolute paths (Delta compares
    `file:/x` and `file:///x` as different locations), s3:// as is (see session.s3a_settings)."""
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _file_uri(path: Path) -> str:
    """`file://` + the absolute path, unescaped (Path.as_uri() would escape `=` in `ingest_dt=`)."""
    return "file://" + str(path)


class LakeStorage:
    """Operations on URIs below one lake root. Use `open_lake()` to get the right implementation."""

    root: str

    def uri(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *(part.strip("/") for part in parts)])

    # Implemented by subclasses -------------------------------------------------------------------
    def read_bytes(self, uri: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, uri: str, data: bytes) -> None:
        raise NotImplementedError

    def create_bytes(self, uri: str, data: bytes) -> None:
        """Create the object only if nothing has its name (atomic; whole content or nothing); else raise
        AlreadyCommittedError. Of concurrent creators exactly one succeeds."""
        raise NotImplementedError

    def exists(self, uri: str) -> bool:
        raise NotImplementedError

    def delete(self, uri: str) -> None:
        raise NotImplementedError

    def delete_tree(self, uri: str) -> None:
        raise NotImplementedError

    def stat(self, uri: str) -> StoredFile | None:
        """One file's listing entry (size, version, last_modified) as `list_files` gives it; None if it is gone."""
        raise NotImplementedError

    def read_planned(self, uri: str, *, version: str | None, max_bytes: int) -> bytes:
        """A bronze file's bytes as its batch planned them: at most `max_bytes` + 1 bytes (one more than a cap
        the caller enforces tells it the file is over), and with `version` (the listing's mtime or ETag) only
        that version. A file that cannot be read raises an OSError: FileNotFoundError (deleted since the
        listing), PermissionError (access denied), FileChangedError (another version) or another OSError;
        transient failures (S3 throttling, 5xx, the network) raise as they are, so the batch is retried."""
        raise NotImplementedError

    def list_files(self, prefix_uri: str, *, start_after: str | None = None) -> Iterator[StoredFile]:
        """Every file below `prefix_uri` (recursively) in lexicographic URI order, optionally only those
        whose URI sorts after `start_after` (so listing new arrival-hour folders costs what they hold)."""
        raise NotImplementedError

    # Shared helpers ------------------------------------------------------------------------------
    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def read_json(self, uri: str, default: Any = None) -> Any:
        if not self.exists(uri):
            return default
        return json.loads(self.read_text(uri))

    def write_json(self, uri: str, value: Any) -> None:
        self.write_text(uri, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")

    def create_json(self, uri: str, value: Any) -> None:
        """`write_json`, create-only: AlreadyCommittedError when the object exists (see `create_bytes`)."""
        self.create_bytes(uri, (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))

    def append_lines(self, uri: str, lines: list[str]) -> None:
        """Append text lines to an object (read-modify-write: for small, single-writer files)."""
        existing = self.read_text(uri) if self.exists(uri) else ""
        self.write_text(uri, existing + "".join(line.rstrip("\n") + "\n" for line in lines))


def _publish_whole(target: Path, data: bytes, publish: Callable[[str, Path], None]) -> None:
    """Write `data` to a synced temporary file beside `target`, then `publish(temporary, target)` (os.replace:
    overwrite; os.link: create only), so a reader never sees a partial file; the temporary name never stays."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        publish(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)  # gone already after os.replace; the second name after os.link


class LocalStorage(LakeStorage):
    def __init__(self, root: str) -> None:
        self.root = canonical_uri(root)

    @staticmethod
    def _path(uri: str) -> Path:
        return Path(uri[len("file://") :]) if uri.startswith("file://") else Path(uri)

    def read_bytes(self, uri: str) -> bytes:
        return self._path(uri).read_bytes()

    def stat(self, uri: str) -> StoredFile | None:
        try:
            status = self._path(uri).stat()
        except FileNotFoundError:
            return None
        return _local_stored_file(uri, status)

    def read_planned(self, uri: str, *, version: str | None, max_bytes: int) -> bytes:
        with open(self._path(uri), "rb") as handle:
            status = os.fstat(handle.fileno())
            if version is not None and str(status.st_mtime_ns) != version:
                raise FileChangedError(uri, planned=version, found=str(status.st_mtime_ns))
            return handle.read(min(max_bytes, status.st_size) + 1)

    def write_bytes(self, uri: str, data: bytes) -> None:
        _publish_whole(self._path(uri), data, os.replace)

    def create_bytes(self, uri: str, data: bytes) -> None:
        # link(2) fails with EEXIST when the name exists, so the name appears atomically with its whole content
        # and only once (O_EXCL alone would expose a partial file).
        try:
            _publish_whole(self._path(uri), data, os.link)
        except FileExistsError as error:
            raise AlreadyCommittedError(uri) from error

    def exists(self, uri: str) -> bool:
        return self._path(uri).exists()

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)

    def delete_tree(self, uri: str) -> None:
        shutil.rmtree(self._path(uri), ignore_errors=True)

    def list_files(self, prefix_uri: str, *, start_after: str | None = None) -> Iterator[StoredFile]:
        base = self._path(prefix_uri)
        if not base.is_dir():
            return

        def walk(folder: Path) -> Iterator[StoredFile]:
            for entry in sorted(os.scandir(folder), key=lambda item: item.name):
                uri = _file_uri(Path(entry.path))
                if entry.is_dir(follow_symlinks=False):
                    # Prune folders that sort entirely before start_after.
                    if start_after and not (uri + "/" > start_after or start_after.startswith(uri + "/")):
                        continue
                    yield from walk(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    if start_after and uri <= start_after:
                        continue
                    yield _local_stored_file(uri, entry.stat())

        yield from walk(base)


def _local_stored_file(uri: str, status: os.stat_result) -> StoredFile:
    modified = datetime.fromtimestamp(status.st_mtime_ns / 1e9, UTC).isoformat()
    return StoredFile(uri=uri, size=status.st_size, version=str(status.st_mtime_ns), last_modified=modified)


class S3Storage(LakeStorage):
    def __init__(
        self, root: str, *, endpoint_url: str | None = None, client: Any = None, region: str | None = None
    ) -> None:
        self.root = canonical_uri(root).rstrip("/")
        self._client, self._endpoint_url, self._region = client, endpoint_url, region

    @property
    def _s3(self) -> Any:
        """The S3 client, created on first use in an explicit region (spark_jobs/aws_region.py)."""
        if self._client is None:
            import boto3

            from spark_jobs.aws_region import aws_region

            region = aws_region(self._region, needed_for=f"the S3 lake {self.root}")
            self._client = boto3.client("s3", region_name=region, endpoint_url=self._endpoint_url)
        return self._client

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        bucket, _, key = uri.split("://", 1)[1].partition("/")
        return bucket, key

    def __getstate__(self) -> dict:
        # Spark ships the storage to its Python workers: a boto3 client does not pickle, each worker makes one.
        return self.__dict__ | {"_client": None}

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = self._split(uri)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def stat(self, uri: str) -> StoredFile | None:
        from botocore.exceptions import ClientError

        bucket, key = self._split(uri)
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredFile(
            uri=uri,
            size=int(head["ContentLength"]),
            version=head["ETag"].strip('"'),
            last_modified=head["LastModified"].astimezone(UTC).isoformat(),
        )

    def read_planned(self, uri: str, *, version: str | None, max_bytes: int) -> bytes:
        from botocore.exceptions import ClientError

        bucket, key = self._split(uri)
        # If-Match pins the planned ETag (412 when the object was overwritten); the range bounds the read.
        arguments = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{max_bytes}"}
        if version is not None:
            arguments["IfMatch"] = f'"{version}"'  # the listing's ETag, without its quotes
        try:
            return self._s3.get_object(**arguments)["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if status == 416 or code == "InvalidRange":  # an empty object has no byte 0
                return b""
            if status == 404 or code in ("NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"{uri}: no such object ({code or status})") from error
            if status == 412 or code == "PreconditionFailed":
                raise FileChangedError(uri, planned=str(version)) from error
            if status == 403 or code == "AccessDenied":
                raise PermissionError(f"{uri}: access denied ({code or status})") from error
            if 400 <= status < 500 and status not in (408, 429):  # about this object, not the service's state
                message = error.response.get("Error", {}).get("Message", "")
                raise OSError(f"{uri}: {code or status}: {message}") from error
            raise

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = self._split(uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=data)

    def create_bytes(self, uri: str, data: bytes, *, attempts: int = 5) -> None:
        """PutObject with `If-None-Match: *`: 412 PreconditionFailed means the key exists (another writer won);
        409 ConditionalRequestConflict means a concurrent conditional write to the key was in flight, and
        the S3 guide says to retry (the retry then gets 412 or succeeds)."""
        import time

        from botocore.exceptions import ClientError

        bucket, key = self._split(uri)
        for attempt in range(1, attempts + 1):
            try:
                self._s3.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
                return
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code == "PreconditionFailed" or status == 412:
                    # botocore may have resent a PUT whose first attempt succeeded: our own bytes are no rival.
                    if self.read_bytes(uri) == data:
                        return
                    raise AlreadyCommittedError(uri) from error
                if (code == "ConditionalRequestConflict" or status == 409) and attempt < attempts:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise

    def exists(self, uri: str) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = self._split(uri)
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, uri: str) -> None:
        bucket, key = self._split(uri)
        self._s3.delete_object(Bucket=bucket, Key=key)

    def delete_tree(self, uri: str) -> None:
        bucket, _ = self._split(uri)
        keys = [self._split(item.uri)[1] for item in self.list_files(uri)]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self._s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk]})

    def list_files(self, prefix_uri: str, *, start_after: str | None = None) -> Iterator[StoredFile]:
        bucket, prefix = self._split(prefix_uri.rstrip("/") + "/")
        arguments = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            after_bucket, after_key = self._split(start_after)
            if after_bucket == bucket and after_key > prefix:
                arguments["StartAfter"] = after_key
        for page in self._s3.get_paginator("list_objects_v2").paginate(**arguments):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue
                yield StoredFile(
                    uri=f"s3://{bucket}/{item['Key']}",
                    size=int(item["Size"]),
                    version=item["ETag"].strip('"'),
                    last_modified=item["LastModified"].astimezone(UTC).isoformat(),
                )


class CommitConflictError(RuntimeError):
    """Two writers committed the same sequence number of one commit log: this run lost (exit 5)."""

    def __init__(self, what: str, sequence: int, uri: str, *, run_id: str, winner: dict | None) -> None:
        other = (winner or {}).get("run_id") or "unknown"
        super().__init__(
            f"{what}: commit {sequence} was made by run {other} ({uri}), not by this run {run_id or '(no run id)'}: "
            "two writers ran at once (a job still running after its lease was released, or a run that skipped the "
            "lease). This run's commit was refused; see docs/runbook.md, 'Commit conflict'."
        )
        self.sequence, self.uri, self.winner_run_id = sequence, uri, other


class CreateOnlyLog:
    """A sequence of commits that no two writers can both make: record N is `<records>/<N:012d>.json`,
    created with `create_json`, and the latest commit is the highest N.

    Reads stay bounded: `pointer_uri` holds a copy of a recent record (written after its record, never
    ahead of it; last-writer-wins is harmless because it is only a hint), and the reader probes N+1, N+2, …
    from it, so a read costs the pointer plus one missing object, not a listing of every commit. A lake
    from before the log has only the pointer: its content is the starting commit.
    """

    def __init__(self, storage: LakeStorage, *, records_uri: str, pointer_uri: str, sequence_key: str, what: str):
        self.storage, self.records_uri, self.pointer_uri = storage, records_uri.rstrip("/"), pointer_uri
        self.sequence_key, self.what = sequence_key, what

    def record_uri(self, sequence: int) -> str:
        return f"{self.records_uri}/{sequence:012d}.json"

    def latest(self) -> dict | None:
        """The newest commit's record (None: nothing committed yet)."""
        record = self.storage.read_json(self.pointer_uri)
        sequence = int(record.get(self.sequence_key) or 0) if record else 0
        while True:
            following = self.storage.read_json(self.record_uri(sequence + 1))
            if following is None:
                return record
            record, sequence = following, sequence + 1

    def sequence(self, record: dict | None) -> int:
        return int(record.get(self.sequence_key) or 0) if record else 0

    def commit(self, record: dict, *, run_id: str) -> None:
        """Create the record of commit `record[sequence_key]`, then move the pointer to it. CommitConflictError
        when another writer made that commit first."""
        self.create(record, run_id=run_id)
        self.move_pointer(record)

    def create(self, record: dict, *, run_id: str) -> None:
        """Only the create-only record (a caller with more to do before the pointer moves calls move_pointer)."""
        sequence = self.sequence(record)
        uri = self.record_uri(sequence)
        try:
            self.storage.create_json(uri, record)
        except AlreadyCommittedError as error:
            winner = self.storage.read_json(uri)
            raise CommitConflictError(self.what, sequence, uri, run_id=run_id, winner=winner) from error

    def move_pointer(self, pointer: dict) -> None:
        if self.sequence(self.storage.read_json(self.pointer_uri)) < self.sequence(pointer):
            self.storage.write_json(self.pointer_uri, pointer)


class LakeNotFoundError(FileNotFoundError):
    """A local `--lake-root` that does not exist, and no `--create-lake`: most likely a mistyped path, which
    would otherwise become a new empty lake and a run that "succeeds" on nothing."""


def open_lake(
    lake_root: str, *, endpoint_url: str | None = None, create: bool = False, region: str | None = None
) -> LakeStorage:
    """The storage for a `--lake-root` value: an existing local folder or `s3://bucket/prefix`.

    A missing local folder raises LakeNotFoundError unless `create` (the command lines' `--create-lake`) asks
    for a new lake. An S3 prefix has no folder to check: an empty prefix is a new lake.
    """
    if lake_root.startswith(("s3://", "s3a://")):
        return S3Storage(lake_root, endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"), region=region)
    if "://" in lake_root and not lake_root.startswith("file:"):
        raise ValueError(f"--lake-root {lake_root!r}: only local folders and s3://bucket/prefix are supported")
    storage = LocalStorage(lake_root)
    folder = LocalStorage._path(storage.root)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise LakeNotFoundError(
            f"--lake-root {lake_root}: no lake at {folder} (it {what}); check the path, "
            "or pass --create-lake to start a new, empty lake there"
        )
    return storage


def open_file_bytes(path_or_uri: str, *, endpoint_url: str | None = None, region: str | None = None) -> bytes:
    """Read one file given as a local path, file:// URI or s3:// URI (reference data such as FX rates)."""
    if path_or_uri.startswith(("s3://", "s3a://")):
        uri = canonical_uri(path_or_uri)
        endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        storage = S3Storage(uri.rsplit("/", 1)[0], endpoint_url=endpoint_url, region=region)
        return storage.read_bytes(uri)
    try:
        return LocalStorage._path(path_or_uri).read_bytes()
    except OSError as error:
        raise FileNotFoundError(f"cannot read {path_or_uri}: {error.strerror}") from error
