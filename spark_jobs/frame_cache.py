"""Cached frames and local checkpoints, released however the work that holds them ends.

A failed job ends its Spark application, which frees everything; a process that lives on after a failure (the
test suite's one session, a caller that catches the error and retries) would otherwise keep the failed run's
parsed batch and checkpoints in executor memory until it exits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class FrameCache(ExitStack):
    """An ExitStack of cache releases: `persist` and `checkpoint` return the cached frame and register its
    release, run in reverse order when the block ends, normally or by an exception."""

    def persist(self, frame: DataFrame) -> DataFrame:
        """`frame` persisted MEMORY_AND_DISK until the block ends."""
        from pyspark import StorageLevel

        cached = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self.callback(_quietly, cached.unpersist)
        return cached

    def checkpoint(self, frame: DataFrame, *, eager: bool = True) -> DataFrame:
        """`frame` as a local checkpoint (a plan that no longer reads its tables, so a commit to them cannot
        invalidate it), materialized now or, not `eager`, by the first job that reads it; its blocks are freed
        when the block ends."""
        saved = frame.localCheckpoint(eager=eager)
        self.callback(_quietly, release_checkpoint, saved)
        return saved


def release_checkpoint(frame: DataFrame) -> None:
    """Free a local checkpoint's blocks now (DataFrame.unpersist does not know them)."""
    plan = frame._jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)


def _quietly(release: Callable, *args) -> None:
    """Run a release; a failure is printed, never raised: it must not hide the error that ended the block (a
    Spark context that died with the job cannot unpersist anything)."""
    try:
        release(*args)
    except Exception as error:
        print(f"warning: could not release a cached frame: {type(error).__name__}: {error}", file=sys.stderr)
