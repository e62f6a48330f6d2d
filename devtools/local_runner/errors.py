"""What the runner raises (Step Functions errors, refusals, invalid definitions); the context object's timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

# Errors a States.ALL catcher or retrier cannot handle.
UNCATCHABLE_ERRORS = ("States.Runtime", "States.DataLimitExceeded")


class UnsupportedConstruct(Exception):
    """The definition uses something this runner does not implement; the message names it."""


class DefinitionError(Exception):
    """The definition (or the local configuration) is invalid."""


class StatesError(Exception):
    """An error as Step Functions reports it: an error name and a cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_millis(moment: datetime) -> str:
    """The context object's timestamp format: 2026-01-02T00:05:00.123Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
