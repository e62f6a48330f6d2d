"""Files and bytes a query actually scanned, read from its executed plan's scan nodes.

Delta prunes partitions and skips files (min/max stats) while planning; the scan nodes' driver metrics
`numFiles` and `filesSize` then hold what was read. Call after the DataFrame has been materialized.
"""

from __future__ import annotations

from pyspark.sql import DataFrame


def scanned_files_and_bytes(frame: DataFrame) -> tuple[int, int]:
    files = size = 0
    root = _executed_plan(frame)
    pending = [root]
    while pending:
        plan = pending.pop()
        name = plan.getClass().getSimpleName()
        if name == "AdaptiveSparkPlanExec":
            pending.append(plan.executedPlan())
            continue
        if name.endswith("QueryStageExec"):
            pending.append(plan.plan())
            continue
        if name == "InMemoryTableScanExec":
            continue  # a cached input was counted where it was read from files
        metrics = plan.metrics()
        if metrics.contains("numFiles"):
            files += int(metrics.apply("numFiles").value())
            if metrics.contains("filesSize"):
                size += int(metrics.apply("filesSize").value())
        children = plan.children().iterator()
        while children.hasNext():
            pending.append(children.next())
    return files, size


def _executed_plan(frame: DataFrame):
    """The plan that read the files: for a persisted frame, the cache's plan (executed when the cache
    was filled), else the frame's own executed plan."""
    cache_manager = frame.sparkSession._jsparkSession.sharedState().cacheManager()
    cached = cache_manager.lookupCachedData(frame._jdf)
    if cached.isDefined():
        return cached.get().cachedRepresentation().cacheBuilder().cachedPlan()
    return frame._jdf.queryExecution().executedPlan()
