"""The jobs' log lines: levels, the run id on every line, no card number ever.

Two forms, chosen by LAKEHOUSE_LOG_FORMAT (`json` or `text`); the default is `json` on EMR Serverless (the
driver carries SERVERLESS_EMR_JOB_ID) and `text` elsewhere:

    json   {"time": "2026-01-02T00:05:01.123Z", "level": "info", "logger": "lakehouse.job",
            "message": "silver_prepare ...", "run_id": "…", "job": "silver_and_gold", "mode": "stream",
            "step": "silver_prepare"}
    text   [<run_id>] silver_prepare ...          (INFO; other levels: [<run_id>] WARNING: …)

One JSON object a line, the same keys as the serving logs, so CloudWatch Logs Insights discovers the fields:

    fields @timestamp, level, run_id, step, message
    | filter run_id = "<run id>" and level in ["warning", "error"]

Every message and string field goes through spark_jobs.card_numbers.mask_card_numbers. Untouched by this
module: the embedded-metric lines and the run's summary line (spark_jobs/run_report.py prints both as
they are, since CloudWatch and the tools parse them), and Spark's own log4j output.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from spark_jobs.card_numbers import mask_card_numbers
from spark_jobs.run_trace import EMR_JOB_RUN_ID_ENV

LOG_FORMAT_ENV = "LAKEHOUSE_LOG_FORMAT"
LOG_FORMATS = ("json", "text")
LOGGER_NAME = "lakehouse.job"

log = logging.getLogger(LOGGER_NAME)


def log_format() -> str:
    chosen = os.environ.get(LOG_FORMAT_ENV, "").strip().lower()
    if not chosen:
        return "json" if os.environ.get(EMR_JOB_RUN_ID_ENV) else "text"
    if chosen not in LOG_FORMATS:
        raise ValueError(f"{LOG_FORMAT_ENV}={chosen!r}: expected one of {', '.join(LOG_FORMATS)}")
    return chosen


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fixed `run_fields` (a job's run id; none
    for the serving service) and the record's `fields`; every text masked for card numbers, so no log line
    can carry one. The jobs and the serving service (feature_store/serving_endpoints.py) share it."""

    def __init__(self, run_fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.run_fields = dict(run_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.run_fields,
        }
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # The whole line is masked, so nested field values (a dict, a list) and keys are too; masking reads
        # the JSON escapes json.dumps writes (control characters), and `*` needs none.
        return mask_card_numbers(json.dumps(line, ensure_ascii=False, default=str))


JsonLogFormatter.converter = time.gmtime  # UTC timestamps, matching the trailing Z


class JobTextFormatter(logging.Formatter):
    """`[<run_id>] message`, the level named unless INFO (the local runner and the benchmark read these)."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
        text = f"[{self.run_id}] {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return mask_card_numbers(text)


@contextmanager
def run_logging(run_id: str, job: str, mode: str, *, stream=None) -> Iterator[logging.Logger]:
    """Route the `lakehouse.job` logger to stdout (or `stream`) for one run, tagged with its run id."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    if log_format() == "json":
        handler.setFormatter(JsonLogFormatter({"run_id": run_id, "job": job, "mode": mode}))
    else:
        handler.setFormatter(JobTextFormatter(run_id))
    previous = (list(log.handlers), log.level, log.propagate)
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False  # Spark's or pytest's root handlers would print every line twice
    try:
        yield log
    finally:
        handler.flush()
        log.handlers[:], log.level, log.propagate = previous
