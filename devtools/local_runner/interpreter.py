"""The interpreter: walks one execution of a JSONPath state machine, state by state."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devtools.local_runner.choice_rules import (
    choice_rule_matches,
    error_matches,
    is_number,
    parse_timestamp,
    retry_delay,
)
from devtools.local_runner.definition import LOCAL_ACCOUNT
from devtools.local_runner.errors import UNCATCHABLE_ERRORS, StatesError, iso_millis, utc_now
from devtools.local_runner.paths import apply_result_path, resolve
from devtools.local_runner.payloads import render_payload
from devtools.local_runner.validation import validate_definition


@dataclass
class StateRecord:
    name: str
    type: str
    seconds: float
    retries: int = 0
    outcome: str = "ok"


@dataclass
class ExecutionResult:
    execution_arn: str
    name: str
    status: str  # SUCCEEDED | FAILED | TIMED_OUT
    output: Any = None
    error: str | None = None
    cause: str | None = None
    seconds: float = 0.0
    states: list[StateRecord] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "execution_arn": self.execution_arn,
            "name": self.name,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "seconds": self.seconds,
            "states": [vars(record) for record in self.states],
            "jobs": self.jobs,
        }


class Interpreter:
    """Walks one execution of a JSONPath state machine."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        services: Any,
        *,
        state_machine_name: str,
        execution_name: str,
        region: str = "us-east-1",
        account: str = LOCAL_ACCOUNT,
        time_scale: float = 1.0,
        log: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_transitions: int = 10_000,
    ) -> None:
        resources = getattr(services, "RESOURCES", {})
        validate_definition(definition, resources)
        self.definition = definition
        self.services = services
        self.state_machine_arn = f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name}"
        self.state_machine_name = state_machine_name
        self.execution_name = execution_name
        self.execution_arn = f"arn:aws:states:{region}:{account}:execution:{state_machine_name}:{execution_name}"
        self.time_scale = time_scale
        self.log = log
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.max_transitions = max_transitions

    def _context(self, execution_input: Any, started: datetime, state: str, entered: datetime, retries: int) -> dict:
        return {
            "Execution": {
                "Id": self.execution_arn,
                "Name": self.execution_name,
                "StartTime": iso_millis(started),
                "Input": execution_input,
                "RoleArn": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local-state-machine",
                "RedriveCount": 0,  # the runner does not redrive executions
            },
            "StateMachine": {"Id": self.state_machine_arn, "Name": self.state_machine_name},
            "State": {"Name": state, "EnteredTime": iso_millis(entered), "RetryCount": retries},
        }

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.time_scale > 0:
            self.sleep(seconds * self.time_scale)

    def run(self, execution_input: Any) -> ExecutionResult:
        started_at, started = utc_now(), self.clock()
        states = self.definition["States"]
        execution_timeout = self.definition.get("TimeoutSeconds")
        result = ExecutionResult(self.execution_arn, self.execution_name, "RUNNING")
        name, data = self.definition["StartAt"], execution_input
        try:
            for _ in range(self.max_transitions):
                if execution_timeout is not None and self.clock() - started > execution_timeout:
                    result.status = "TIMED_OUT"
                    result.error, result.cause = "States.Timeout", f"the execution ran longer than {execution_timeout}s"
                    break
                state = states[name]
                entered_at, entered = utc_now(), self.clock()
                record = StateRecord(name, state["Type"], 0.0)
                result.states.append(record)
                self.log(f"[{self.execution_name}] {name} ({self._describe(state)})")
                context = self._context(execution_input, started_at, name, entered_at, 0)
                try:
                    data, following = self._run_state(name, state, data, context, record)
                finally:
                    record.seconds = round(self.clock() - entered, 3)
                if record.outcome != "ok":
                    self.log(f"[{self.execution_name}] {name}: {record.outcome}")
                if state["Type"] == "Fail":
                    result.status, result.error, result.cause = "FAILED", state.get("Error"), state.get("Cause")
                    break
                if following is None:
                    result.status, result.output = "SUCCEEDED", data
                    break
                name = following
            else:
                raise StatesError("States.Runtime", f"more than {self.max_transitions} state transitions")
        except StatesError as error:
            result.status, result.error, result.cause = "FAILED", error.error, error.cause
        result.seconds = round(self.clock() - started, 3)
        result.jobs = list(getattr(self.services, "jobs", []))
        return result

    @staticmethod
    def _describe(state: Mapping[str, Any]) -> str:
        if state["Type"] == "Task":
            return "Task " + state["Resource"].split(":::", 1)[-1]
        return state["Type"]

    def _run_state(self, name, state, raw_input, context, record):  # noqa: PLR0911
        kind = state["Type"]
        following = None if state.get("End") else state.get("Next")
        if kind == "Fail":
            return raw_input, None
        effective = self._input_path(state, raw_input, context)
        if kind == "Succeed":
            return self._output_path(state, effective, context), None
        if kind == "Choice":
            for rule in state.get("Choices", []):
                if choice_rule_matches(rule, effective, context):
                    return self._output_path(state, effective, context), rule["Next"]
            if "Default" in state:
                return self._output_path(state, effective, context), state["Default"]
            raise StatesError("States.NoChoiceMatched", f"no Choice rule of {name!r} matched and there is no Default")
        if kind == "Wait":
            self._wait(self._wait_seconds(state, effective, context))
            return self._output_path(state, effective, context), following
        if kind == "Pass":
            if "Parameters" in state:
                effective = render_payload(state["Parameters"], effective, context, where=f"{name}.Parameters")
            value = copy.deepcopy(state["Result"]) if "Result" in state else effective
            output = apply_result_path(raw_input, state.get("ResultPath", "$"), value)
            return self._output_path(state, output, context), following
        return self._run_task(name, state, raw_input, effective, context, record)

    def _input_path(self, state, data, context):
        if "InputPath" not in state:
            return data
        if state["InputPath"] is None:
            return {}
        return resolve(state["InputPath"], data, context, where="InputPath")

    def _output_path(self, state, data, context):
        if "OutputPath" not in state:
            return data
        if state["OutputPath"] is None:
            return {}
        return resolve(state["OutputPath"], data, context, where="OutputPath")

    def _wait_seconds(self, state, data, context) -> float:
        if "Seconds" in state:
            return float(state["Seconds"])
        if "SecondsPath" in state:
            seconds = resolve(state["SecondsPath"], data, context, where="SecondsPath")
            if not is_number(seconds) or seconds < 0:
                raise StatesError("States.Runtime", f"SecondsPath gave {seconds!r}, not a non-negative number")
            return float(seconds)
        timestamp = state.get("Timestamp")
        if timestamp is None:
            timestamp = resolve(state["TimestampPath"], data, context, where="TimestampPath")
        moment = parse_timestamp(timestamp)
        if moment is None:
            raise StatesError("States.Runtime", f"{timestamp!r} is not an RFC 3339 timestamp")
        return max(0.0, (moment - utc_now()).total_seconds())

    def _run_task(self, name, state, raw_input, effective, entry_context, record):
        retriers = state.get("Retry", [])
        attempts = [0] * len(retriers)
        retries = 0
        while True:
            context = copy.deepcopy(entry_context)
            context["State"]["RetryCount"] = retries
            try:
                parameters = (
                    render_payload(state["Parameters"], effective, context, where=f"{name}.Parameters")
                    if "Parameters" in state
                    else effective
                )
                task_result = self.services.invoke(
                    state["Resource"], parameters, timeout_seconds=state.get("TimeoutSeconds"), context=context
                )
                if "ResultSelector" in state:
                    task_result = render_payload(
                        state["ResultSelector"], task_result, context, where=f"{name}.ResultSelector"
                    )
                output = apply_result_path(raw_input, state.get("ResultPath", "$"), task_result)
                record.retries = retries
                return self._output_path(state, output, context), (None if state.get("End") else state["Next"])
            except StatesError as error:
                if error.error in UNCATCHABLE_ERRORS:
                    raise
                index = next((i for i, r in enumerate(retriers) if error_matches(r["ErrorEquals"], error.error)), None)
                if index is not None and attempts[index] < retriers[index].get("MaxAttempts", 3):
                    delay = retry_delay(retriers[index], attempts[index], self.rng)
                    attempts[index] += 1
                    retries += 1
                    self.log(f"[{self.execution_name}] {name}: {error.error}; retry {retries} in {delay:.1f}s")
                    self._wait(delay)
                    continue
                record.retries = retries
                for catcher in state.get("Catch", []):
                    if error_matches(catcher["ErrorEquals"], error.error):
                        record.outcome = f"caught {error.error} -> {catcher['Next']}"
                        error_output = {"Error": error.error, "Cause": error.cause}
                        output = apply_result_path(raw_input, catcher.get("ResultPath", "$"), error_output)
                        return output, catcher["Next"]
                record.outcome = f"failed {error.error}"
                raise
