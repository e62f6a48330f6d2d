"""aws-sdk:sfn:describeExecution: the runner's own registry of executions (a dead runner reads as ABORTED)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from devtools.local_runner.dynamodb import file_lock, write_json_atomic
from devtools.local_runner.errors import DefinitionError, StatesError, iso_millis, utc_now


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExecutionRegistry:
    """What `sfn:DescribeExecution` reads: one JSON file per execution. A RUNNING execution whose runner
    process is gone reads as ABORTED, as a stopped execution does on AWS."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, execution_arn: str) -> Path:
        parts = execution_arn.split(":")
        if len(parts) != 8 or parts[5] != "execution":
            raise StatesError("Sfn.InvalidArnException", f"Invalid Arn: '{execution_arn}'")
        return self.directory / parts[6] / f"{parts[7]}.json"

    def register(self, execution_arn: str, *, state_machine_arn: str, execution_input: Any) -> None:
        path = self._path(execution_arn)
        with file_lock(self.directory / "registry.lock"):
            if path.exists():
                raise DefinitionError(f"execution {execution_arn} already exists (execution names are unique)")
            write_json_atomic(
                path,
                {
                    "executionArn": execution_arn,
                    "stateMachineArn": state_machine_arn,
                    "name": execution_arn.rsplit(":", 1)[-1],
                    "status": "RUNNING",
                    "startDate": iso_millis(utc_now()),
                    "input": execution_input,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                },
            )

    def finish(self, execution_arn: str, status: str, **details: Any) -> None:
        path = self._path(execution_arn)
        with file_lock(self.directory / "registry.lock"):
            record = json.loads(path.read_text(encoding="utf-8"))
            record.update(status=status, stopDate=iso_millis(utc_now()), **details)
            write_json_atomic(path, record)

    def describe(self, execution_arn: str) -> dict:
        path = self._path(execution_arn)
        if not path.exists():
            raise StatesError("Sfn.ExecutionDoesNotExistException", f"Execution Does Not Exist: '{execution_arn}'")
        record = json.loads(path.read_text(encoding="utf-8"))
        status = record["status"]
        if status == "RUNNING" and (record.get("host") != socket.gethostname() or not _process_alive(record["pid"])):
            status = "ABORTED"
        response = {
            "ExecutionArn": record["executionArn"],
            "StateMachineArn": record["stateMachineArn"],
            "Name": record["name"],
            "Status": status,
            "StartDate": record["startDate"],
            "Input": json.dumps(record.get("input")),
        }
        if "stopDate" in record:
            response["StopDate"] = record["stopDate"]
        return response
