"""One storage layer for everything a job writes besides Delta tables.

Run reports (`_runs/`), state and ledgers (`_state/`), dead letters (`_dead_letter/`) and bronze listings go
through `LakeStorage`, so `--lake-root` behaves the same for a local folder and for `s3://bucket/prefix`.
Writes are atomic: a reader sees the old object or the new one, never a torn file (local: write to a
temporary name, then rename; S3: a single PUT).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file under the lake: its canonical URI, size in bytes and a change marker (mtime or ETag)."""

    uri: str
    size: int
    version: str


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

    def exists(self, uri: str) -> bool:
        raise NotImplementedError

    def delete(self, uri: str) -> None:
        raise NotImplementedError

    def delete_tree(self, uri: str) -> None:
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

    def append_lines(self, uri: str, lines: list[str]) -> None:
        """Append text lines to an object (read-modify-write: for small, single-writer files)."""
        existing = self.read_text(uri) if self.exists(uri) else ""
        self.write_text(uri, existing + "".join(line.rstrip("\n") + "\n" for line in lines))


class LocalStorage(LakeStorage):
    def __init__(self, root: str) -> None:
        self.root = canonical_uri(root)

    @staticmethod
    def _path(uri: str) -> Path:
        return Path(uri[len("file://") :]) if uri.startswith("file://") else Path(uri)

    def read_bytes(self, uri: str) -> bytes:
        return self._path(uri).read_bytes()

    def write_bytes(self, uri: str, data: bytes) -> None:
        target = self._path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

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
                    stat = entry.stat()
                    yield StoredFile(uri=uri, size=stat.st_size, version=str(stat.st_mtime_ns))

        yield from walk(base)


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

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = self._split(uri)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = self._split(uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=data)

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
                    uri=f"s3://{bucket}/{item['Key']}", size=int(item["Size"]), version=item["ETag"].strip('"')
                )


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
