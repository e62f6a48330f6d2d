"""sns:publish: one JSON line per message in <lake-root>/_runs/alerts.log."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools.local_runner.dynamodb import file_lock
from devtools.local_runner.errors import StatesError, iso_millis, utc_now
from spark_jobs.lake import alerts_log_uri


class LocalAlerts:
    """sns:Publish into `<lake-root>/_runs/alerts.log` (one JSON line per message), echoed on stderr."""

    def __init__(self, lake_root: str, *, endpoint_url: str | None, lock_path: Path) -> None:
        self.lake_root, self.endpoint_url, self.lock_path = lake_root, endpoint_url, lock_path

    def publish(self, parameters: Mapping[str, Any]) -> dict:
        from spark_jobs.storage import open_lake

        message = parameters.get("Message")
        if not isinstance(message, str):
            message = json.dumps(message)
        subject = parameters.get("Subject")
        if subject is not None and (len(subject) > 100 or not subject.isascii()):
            raise StatesError("SNS.InvalidParameterException", "Subject must be ASCII and at most 100 characters")
        message_id = str(uuid.uuid4())
        line = json.dumps(
            {
                "time": iso_millis(utc_now()),
                "topic": parameters.get("TopicArn"),
                "subject": subject,
                "message": message,
                "message_id": message_id,
            },
            sort_keys=True,
        )
        storage = open_lake(self.lake_root, endpoint_url=self.endpoint_url)
        with file_lock(self.lock_path):
            storage.append_lines(alerts_log_uri(storage), [line])
        print(f"ALERT {subject}: {message}", file=sys.stderr, flush=True)
        return {"MessageId": message_id}
