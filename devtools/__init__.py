"""Developer tools, not shipped (scripts/package.py ships spark_jobs/ and feature_store/ only): the local
runner of the state machines, the lake generator, the benchmark and its DuckDB reference, the demo and the
Kinesis producer. Each is a library; the files in scripts/ are their command lines."""
