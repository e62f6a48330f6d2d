"""The exit codes of every command line in this repository (the jobs, the `cardfeat` commands, the scripts),
one convention, explained in docs/cli.md.

EMR Serverless marks a job run FAILED on any non-zero exit, and the state machines retry or alert on that, so
0 is the only code a scheduled step may end with when nothing is wrong, including when it had nothing to do
(its run report's status says `skipped`). The other codes tell a person at a terminal, or a wrapper script,
what kind of failure it was without reading the traceback.
"""

from __future__ import annotations

OK = 0
"""Done, or nothing to do (a scheduled step whose run report says `skipped`, e.g. too little history)."""

FAILED = 1
"""The run failed: an unexpected error (with its traceback), or a check that found a difference."""

NOT_FOUND = 1
"""A lookup found nothing (get-features for a card the online store does not hold); same code as FAILED,
since a lookup CLI has no other way to fail without a traceback."""

USAGE = 2
"""Bad or missing arguments, reported by argparse (`<prog>: error: …` after the usage line). Only argparse
exits 2."""

DEAD_LETTERS = 3
"""The run finished but some records went to dead letters (Feature Store ingestion and its replay)."""

INVALID_INPUT = 4
"""The input data is refused: a file that is not what it claims to be (a damaged model artifact, a malformed
request or configuration)."""

PRECONDITION_FAILED = 5
"""Something has to run first, or the lake cannot give what was asked: no lake, no gold table, no online store,
no datasets for the as-of date, too little history for a date asked by hand, an incompatible feature group.
The message says what to run first."""

FAULT_INJECTED = 86
"""The failure drill (`LAKEHOUSE_FAIL_AT`, spark_jobs/fault_injection.py) killed the process on purpose."""

CODES: dict[int, str] = {
    OK: "ok (or skipped: nothing to do)",
    FAILED: "failed (unexpected error, failed check) or not found (a lookup)",
    USAGE: "usage error (argparse)",
    DEAD_LETTERS: "finished with dead letters",
    INVALID_INPUT: "invalid input data",
    PRECONDITION_FAILED: "failed precondition (run something first)",
    FAULT_INJECTED: "failure drill (LAKEHOUSE_FAIL_AT)",
}
