"""The whole platform locally, no AWS: a generated lake in arrivals, stream runs, daily, features, baseline (make demo).

The library is devtools/demo.py; this file is its command line (`--help` lists the options).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
