"""The benchmark (make bench): the pipeline's Spark jobs timed against an independent DuckDB reference on the
same generated lakes, with the targets checked.

- options: BenchmarkOptions (every setting, validated) and SparkRunSettings
- processes: each engine in its own process tree, peak RSS sampled, output lines timed; spark_submit()
- lakes: generated lakes reused per arguments, run folders with hard-linked bronze, the stream batch
- stages: full builds against the reference, stream increments on H and 2H, feature store ingest, lookups
- report: the targets, results.json's tables in docs/benchmarks/README.md, the scaling plot, the summary
- stats: medians, the machine, the versions, the Spark settings
- runner: run_benchmark(options)
- reference: the DuckDB reference (build, verify), also run on its own by scripts/benchmark_reference.py
"""
