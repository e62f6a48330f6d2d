"""The benchmark: the pipeline's Spark jobs timed against an independent DuckDB reference on generated lakes.

    runner      the stages (full build, stream increments, feature store ingest, online lookups), the targets,
                results.json and docs/benchmarks/README.md (make bench)
    reference   the DuckDB reference: bronze -> silver -> gold without Spark, and the equality verification
"""
