"""The benchmark's DuckDB reference: build bronze -> silver -> gold without Spark, or verify Spark's tables against it.

The library is devtools/benchmark/reference.py; this file is its command line (`--help` lists the options).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.benchmark.reference import main

if __name__ == "__main__":
    raise SystemExit(main())
