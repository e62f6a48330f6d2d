"""Crash points for recovery tests.

`LAKEHOUSE_FAIL_AT=<point>` makes the real job fail at that point: by raising (the default, for
in-process tests) or, with `LAKEHOUSE_FAIL_MODE=exit`, by ending the process at once with exit code 86,
like a killed container. Unset in production, so `fail_point()` costs one dictionary lookup.
"""

from __future__ import annotations

import os

from spark_jobs import exit_codes

EXIT_CODE = exit_codes.FAULT_INJECTED


class InjectedFault(RuntimeError):
    """Raised at the configured fail point."""


def fail_point(name: str) -> None:
    if os.environ.get("LAKEHOUSE_FAIL_AT") != name:
        return
    if os.environ.get("LAKEHOUSE_FAIL_MODE") == "exit":
        os._exit(EXIT_CODE)
    raise InjectedFault(f"injected fault at {name} (LAKEHOUSE_FAIL_AT)")
