"""Benchmark the pipeline against the DuckDB reference on generated lakes (make bench).

The library is devtools/benchmark/runner.py; this file is its command line (`--help` lists the options).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.benchmark.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
