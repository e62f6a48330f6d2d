"""The local runner's interpreter on small synthetic state machines: every construct it implements, and the
refusal, by name, of what it does not."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from devtools.local_runner import (
    DefinitionError,
    Interpreter,
    JobRequest,
    SparkSubmitLauncher,
    StatesError,
    UnsupportedConstruct,
    error_matches,
    evaluate_intrinsic,
    fill_template,
    template_placeholders,
)

TASK = "arn:aws:states:::test:task"


class ScriptedServices:
    """One Task resource whose outcomes are scripted: a list of results or StatesErrors, consumed in order."""

    RESOURCES = {TASK: {"Value", "Token", "Attempt"}}  # noqa: RUF012

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    def invoke(self, resource, parameters, *, timeout_seconds, context):
        self.calls.append({"parameters": parameters, "retry_count": context["State"]["RetryCount"]})
        outcome = self.outcomes.pop(0) if self.outcomes else {"ok": True}
        if isinstance(outcome, StatesError):
            raise outcome
        return outcome


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    def __call__(self):
        return self.now


def machine(states: dict, start: str | None = None, **top) -> dict:
    return {"StartAt": start or next(iter(states)), "States": states, **top}


def run(definition, execution_input=None, services=None, *, clock=None, time_scale=1.0):
    clock = clock or FakeClock()
    interpreter = Interpreter(
        definition,
        services or ScriptedServices(),
        state_machine_name="test-machine",
        execution_name="exec-1",
        time_scale=time_scale,
        log=lambda line: None,
        sleep=clock.sleep,
        clock=clock,
    )
    return interpreter.run(execution_input if execution_input is not None else {})


# Pass, paths and payload templates --------------------------------------------------------------------


def test_pass_with_parameters_result_path_input_path_and_output_path():
    result = run(
        machine(
            {
                "Shape": {
                    "Type": "Pass",
                    "InputPath": "$.order",
                    "Parameters": {
                        "id.$": "$.id",
                        "first_item.$": "$.items[0]",
                        "quoted.$": "$['odd key']",
                        "execution.$": "$$.Execution.Name",
                        "state.$": "$$.State.Name",
                        "machine.$": "$$.StateMachine.Name",
                        "label.$": "States.Format('order {} of {}', $.id, $$.Execution.Name)",
                        "static": {"nested": [1, 2]},
                    },
                    "ResultPath": "$.shaped.deeper",
                    "OutputPath": "$.shaped",
                    "Next": "Constant",
                },
                "Constant": {"Type": "Pass", "Result": {"fixed": True}, "ResultPath": "$.constant", "End": True},
            }
        ),
        {"order": {"id": 7, "items": ["a", "b"], "odd key": "x"}},
    )
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "deeper": {
            "id": 7,
            "first_item": "a",
            "quoted": "x",
            "execution": "exec-1",
            "state": "Shape",
            "machine": "test-machine",
            "label": "order 7 of exec-1",
            "static": {"nested": [1, 2]},
        },
        "constant": {"fixed": True},
    }


def test_result_path_null_keeps_the_input_and_dollar_replaces_it():
    states = {
        "Discard": {"Type": "Pass", "Result": "dropped", "ResultPath": None, "Next": "Replace"},
        "Replace": {"Type": "Pass", "Result": {"replaced": 1}, "End": True},
    }
    assert run(machine(states), {"keep": 1}).output == {"replaced": 1}
    states["Replace"]["ResultPath"] = "$.added"
    assert run(machine(states), {"keep": 1}).output == {"keep": 1, "added": {"replaced": 1}}


def test_missing_path_is_a_runtime_error_that_states_all_cannot_catch():
    result = run(
        machine(
            {
                "Work": {
                    "Type": "Task",
                    "Resource": TASK,
                    "Parameters": {"Value.$": "$.absent"},
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                    "End": True,
                },
                "Caught": {"Type": "Succeed"},
            }
        )
    )
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "$.absent" in result.cause


# Choice ------------------------------------------------------------------------------------------------

CHOICE_CASES = [
    ({"Variable": "$.s", "StringEquals": "abc"}, True),
    ({"Variable": "$.s", "StringEquals": "abd"}, False),
    ({"Variable": "$.s", "StringLessThan": "abd"}, True),
    ({"Variable": "$.s", "StringGreaterThanEquals": "abc"}, True),
    ({"Variable": "$.s", "StringMatches": "a*c"}, True),
    ({"Variable": "$.s", "StringMatches": "a\\*c"}, False),
    ({"Variable": "$.s", "StringEqualsPath": "$.same"}, True),
    ({"Variable": "$.n", "NumericEquals": 3}, True),
    ({"Variable": "$.n", "NumericGreaterThan": 2.5}, True),
    ({"Variable": "$.n", "NumericLessThanEquals": 2}, False),
    ({"Variable": "$.n", "NumericLessThanPath": "$.ten"}, True),
    ({"Variable": "$.s", "NumericEquals": 3}, False),  # a type mismatch never matches
    ({"Variable": "$.b", "BooleanEquals": True}, True),
    ({"Variable": "$.n", "BooleanEquals": True}, False),
    ({"Variable": "$.t", "TimestampLessThan": "2026-01-02T00:00:00Z"}, True),
    ({"Variable": "$.t", "TimestampEquals": "2026-01-01T01:00:00+01:00"}, True),
    ({"Variable": "$.t", "IsTimestamp": True}, True),
    ({"Variable": "$.nothing", "IsNull": True}, True),
    ({"Variable": "$.absent", "IsPresent": False}, True),
    ({"Variable": "$.s", "IsString": True}, True),
    ({"Variable": "$.n", "IsNumeric": True}, True),
    ({"Variable": "$.b", "IsBoolean": False}, False),
    ({"And": [{"Variable": "$.n", "NumericEquals": 3}, {"Variable": "$.s", "StringEquals": "abc"}]}, True),
    ({"Or": [{"Variable": "$.n", "NumericEquals": 4}, {"Variable": "$.s", "StringEquals": "abc"}]}, True),
    ({"Not": {"Variable": "$.n", "NumericEquals": 3}}, False),
]


@pytest.mark.parametrize(("rule", "matches"), CHOICE_CASES)
def test_choice_rules(rule, matches):
    data = {"s": "abc", "same": "abc", "n": 3, "ten": 10, "b": True, "t": "2026-01-01T00:00:00Z", "nothing": None}
    result = run(
        machine(
            {
                "Decide": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
                "Yes": {"Type": "Pass", "Result": "yes", "End": True},
                "No": {"Type": "Pass", "Result": "no", "End": True},
            }
        ),
        data,
    )
    assert result.output == ("yes" if matches else "no")


def test_choice_without_a_match_or_default_fails_and_a_missing_variable_is_a_runtime_error():
    states = {
        "Decide": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "Done"}]},
        "Done": {"Type": "Succeed"},
    }
    assert run(machine(states), {"n": 2}).error == "States.NoChoiceMatched"
    assert run(machine(states), {}).error == "States.Runtime"


# Wait, Succeed, Fail, execution timeout -------------------------------------------------------------------


def test_wait_seconds_and_seconds_path_scaled_by_the_time_scale():
    clock = FakeClock()
    result = run(
        machine(
            {
                "Fixed": {"Type": "Wait", "Seconds": 300, "Next": "FromInput"},
                "FromInput": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Done"},
                "Done": {"Type": "Succeed", "OutputPath": "$.delay"},
            }
        ),
        {"delay": 20},
        clock=clock,
        time_scale=0.01,
    )
    assert result.status == "SUCCEEDED" and result.output == 20
    assert clock.sleeps == [3.0, 0.2]
    clock = FakeClock()
    run(machine({"Fixed": {"Type": "Wait", "Seconds": 300, "End": True}}), clock=clock, time_scale=0)
    assert clock.sleeps == []


def test_fail_state_and_execution_timeout():
    result = run(machine({"Stop": {"Type": "Fail", "Error": "Custom.Error", "Cause": "because"}}))
    assert (result.status, result.error, result.cause) == ("FAILED", "Custom.Error", "because")
    slow = machine(
        {
            "Long": {"Type": "Wait", "Seconds": 30, "Next": "Again"},
            "Again": {"Type": "Wait", "Seconds": 30, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
        TimeoutSeconds=45,
    )
    result = run(slow)
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert [record.name for record in result.states] == ["Long", "Again"]


# Task, ResultSelector, Retry and Catch -------------------------------------------------------------------


def test_task_result_selector_result_path_and_output_path():
    services = ScriptedServices({"Payload": {"count": 3}, "Noise": "x"})
    result = run(
        machine(
            {
                "Work": {
                    "Type": "Task",
                    "Resource": TASK,
                    "Parameters": {"Value.$": "$.value"},
                    "ResultSelector": {"count.$": "$.Payload.count"},
                    "ResultPath": "$.work",
                    "OutputPath": "$.work",
                    "End": True,
                }
            }
        ),
        {"value": 41},
        services,
    )
    assert result.output == {"count": 3}
    assert services.calls[0]["parameters"] == {"Value": 41}


def test_retry_backoff_max_delay_and_retry_count():
    services = ScriptedServices(
        StatesError("Service.Throttled", "slow down"),
        StatesError("Service.Throttled", "slow down"),
        StatesError("Service.Throttled", "slow down"),
        {"done": True},
    )
    clock = FakeClock()
    result = run(
        machine(
            {
                "Work": {
                    "Type": "Task",
                    "Resource": TASK,
                    "Parameters": {
                        "Attempt.$": "$$.State.RetryCount",
                        "Token.$": (
                            "States.Hash(States.Format('{}/{}/{}', $$.Execution.Name, $$.State.Name, "
                            "$$.State.RetryCount), 'MD5')"
                        ),
                    },
                    "Retry": [
                        {"ErrorEquals": ["Other.Error"], "MaxAttempts": 5},
                        {
                            "ErrorEquals": ["Service.Throttled"],
                            "IntervalSeconds": 2,
                            "BackoffRate": 3,
                            "MaxAttempts": 3,
                            "MaxDelaySeconds": 10,
                        },
                    ],
                    "End": True,
                }
            }
        ),
        services=services,
        clock=clock,
    )
    assert result.status == "SUCCEEDED"
    assert clock.sleeps == [2, 6, 10]  # 2 × 3^n, capped at 10
    assert [call["retry_count"] for call in services.calls] == [0, 1, 2, 3]
    tokens = [call["parameters"]["Token"] for call in services.calls]
    assert tokens == [hashlib.md5(f"exec-1/Work/{n}".encode()).hexdigest() for n in range(4)]
    assert result.states[0].retries == 3


def test_retries_exhausted_then_catch_with_result_path():
    services = ScriptedServices(*[StatesError("Service.Broken", "no")] * 3)
    result = run(
        machine(
            {
                "Work": {
                    "Type": "Task",
                    "Resource": TASK,
                    "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                    "Catch": [
                        {"ErrorEquals": ["Service.Other"], "Next": "Wrong"},
                        {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Handled"},
                    ],
                    "End": True,
                },
                "Wrong": {"Type": "Fail", "Error": "Wrong"},
                "Handled": {"Type": "Pass", "End": True},
            }
        ),
        {"keep": 1},
        services,
    )
    assert len(services.calls) == 3
    assert result.output == {"keep": 1, "error": {"Error": "Service.Broken", "Cause": "no"}}


def test_max_attempts_zero_and_catch_default_result_path():
    services = ScriptedServices(StatesError("Service.Broken", "no"))
    result = run(
        machine(
            {
                "Work": {
                    "Type": "Task",
                    "Resource": TASK,
                    "Retry": [{"ErrorEquals": ["Service.Broken"], "MaxAttempts": 0}],
                    "Catch": [{"ErrorEquals": ["Service.Broken"], "Next": "Handled"}],
                    "End": True,
                },
                "Handled": {"Type": "Succeed"},
            }
        ),
        {"lost": True},
        services,
    )
    assert len(services.calls) == 1
    assert result.output == {"Error": "Service.Broken", "Cause": "no"}


def test_uncaught_task_error_fails_the_execution():
    result = run(
        machine({"Work": {"Type": "Task", "Resource": TASK, "End": True}}),
        services=ScriptedServices(StatesError("Service.Broken", "no")),
    )
    assert (result.status, result.error, result.cause) == ("FAILED", "Service.Broken", "no")


def test_error_name_matching():
    assert error_matches(["States.ALL"], "Anything.AtAll")
    assert error_matches(["States.ALL"], "States.Timeout")
    assert not error_matches(["States.ALL"], "States.Runtime")
    assert error_matches(["States.TaskFailed"], "DynamoDB.ConditionalCheckFailedException")
    assert error_matches(["States.TaskFailed"], "States.TaskFailed")
    assert not error_matches(["States.TaskFailed"], "States.Timeout")
    assert error_matches(["A.B", "C.D"], "C.D") and not error_matches(["A.B"], "a.b")


# Intrinsics and templates ------------------------------------------------------------------------------


def test_intrinsics():
    data = {"name": "x", "n": 41, "obj": {"a": [1, "b"]}}
    context = {"Execution": {"Name": "e"}, "State": {"Name": "S", "RetryCount": 2}}
    assert evaluate_intrinsic("States.Format('{}-{}', $.name, $.n)", data, context) == "x-41"
    assert evaluate_intrinsic("States.Format('\\{{}\\} it\\'s', $.name)", data, context) == "{x} it's"
    assert evaluate_intrinsic("States.Hash('abc', 'SHA-256')", data, context) == hashlib.sha256(b"abc").hexdigest()
    assert evaluate_intrinsic("States.Array('--a', $.n, true, null, States.MathAdd($.n, 1))", data, context) == [
        "--a", 41, True, None, 42,
    ]  # fmt: skip
    assert evaluate_intrinsic("States.JsonToString($.obj)", data, context) == '{"a":[1,"b"]}'
    token = evaluate_intrinsic(
        "States.Hash(States.Format('{}/{}/{}', $$.Execution.Name, $$.State.Name, $$.State.RetryCount), 'MD5')",
        data,
        context,
    )
    assert token == hashlib.md5(b"e/S/2").hexdigest()
    with pytest.raises(StatesError, match="MathAdd"):
        evaluate_intrinsic("States.MathAdd($.name, 1)", data, context)


def test_template_filling_is_templatefile():
    text = '{"a": "${lake_root}/x", "b": "$${literal}", "c": "${quote}"}'
    assert template_placeholders(text) == {"lake_root", "quote"}
    filled = json.loads(fill_template(text, {"lake_root": "s3://b/p", "quote": 'say "hi"'}))
    assert filled == {"a": "s3://b/p/x", "b": "${literal}", "c": 'say "hi"'}
    with pytest.raises(DefinitionError, match=r"\$\{quote\}"):
        fill_template(text, {"lake_root": "x"})
    with pytest.raises(UnsupportedConstruct, match="directive"):
        fill_template('{"a": "%{ if x }y%{ endif }"}', {})


# Refusals ----------------------------------------------------------------------------------------------

REFUSED = [
    ({"Type": "Map", "ItemsPath": "$.items", "End": True}, "state type Map"),
    ({"Type": "Parallel", "Branches": [], "End": True}, "state type Parallel"),
    ({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}, "lambda:invoke"),
    ({"Type": "Task", "Resource": TASK, "HeartbeatSeconds": 5, "End": True}, "HeartbeatSeconds"),
    ({"Type": "Task", "Resource": TASK, "Arguments": {}, "End": True}, "field Arguments"),
    ({"Type": "Pass", "Assign": {"x": 1}, "End": True}, "field Assign"),
    ({"Type": "Pass", "QueryLanguage": "JSONata", "End": True}, "field QueryLanguage"),
    ({"Type": "Pass", "Parameters": {"id.$": "States.UUID()"}, "End": True}, "States.UUID"),
    ({"Type": "Pass", "Parameters": {"all.$": "$.items[*].id"}, "End": True}, "wildcards"),
    ({"Type": "Pass", "Parameters": {"deep.$": "$..id"}, "End": True}, "recursive descent"),
    ({"Type": "Pass", "InputPath": "$.items[?(@.x)]", "End": True}, "filters"),
    ({"Type": "Task", "Resource": TASK, "Parameters": {"Unknown": 1}, "End": True}, "parameter Unknown"),
    ({"Type": "Task", "Resource": TASK, "Retry": [{"ErrorEquals": ["X"], "Jitter": 1}], "End": True}, "Jitter"),
    ({"Type": "Choice", "Choices": [{"Variable": "$.a", "StringContains": "x", "Next": "S"}]}, "StringContains"),
]


@pytest.mark.parametrize(("state", "named"), REFUSED)
def test_unsupported_constructs_are_refused_by_name_before_anything_runs(state, named):
    services = ScriptedServices()
    definition = machine({"S": state}) if state["Type"] != "Choice" else machine({"C": state, "S": {"Type": "Succeed"}})
    with pytest.raises(UnsupportedConstruct, match=named.replace("[", r"\[").replace("*", r"\*")):
        run(definition, services=services)
    assert services.calls == []


def test_query_language_jsonata_at_the_top_level_is_refused():
    with pytest.raises(UnsupportedConstruct, match="QueryLanguage JSONata"):
        run(machine({"S": {"Type": "Succeed"}}, QueryLanguage="JSONata"))


def test_broken_definitions_are_rejected():
    with pytest.raises(DefinitionError, match="does not exist"):
        run(machine({"S": {"Type": "Pass", "Next": "Nowhere"}}))
    with pytest.raises(DefinitionError, match="StartAt"):
        run({"StartAt": "Missing", "States": {"S": {"Type": "Succeed"}}})


def test_local_integrations_refuse_what_they_do_not_interpret(tmp_path):
    from devtools.local_runner import LocalServices, validate_definition

    condition = {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:deleteItem",
        "Parameters": {"TableName": "t", "Key": {}, "ConditionExpression": "begins_with(holder, :p)"},
        "End": True,
    }
    with pytest.raises(UnsupportedConstruct, match="condition function begins_with"):
        validate_definition(machine({"S": condition}), LocalServices.RESOURCES)
    job = {
        "Type": "Task",
        "Resource": "arn:aws:states:::emr-serverless:startJobRun.sync",
        "Parameters": {"JobDriver": {"SparkSubmit": {"EntryPoint": "x", "SparkSubmitParameters": "--jars a.jar"}}},
        "End": True,
    }
    with pytest.raises(UnsupportedConstruct, match="option --jars"):
        validate_definition(machine({"S": job}), LocalServices.RESOURCES)


# The spark-submit launcher (with a plain Python process standing in for spark-submit) -------------------


class PythonLauncher(SparkSubmitLauncher):
    def command(self, job: JobRequest) -> list[str]:
        return [sys.executable, str(job.entry_point), *job.arguments]


def job_request(tmp_path: Path, body: str, **timeouts) -> JobRequest:
    script = tmp_path / "job.py"
    script.write_text(body)
    return JobRequest(
        name="job",
        entry_point=script,
        arguments=["--x", "1"],
        spark_conf={},
        execution_timeout_seconds=timeouts.get("execution"),
        state_timeout_seconds=timeouts.get("state"),
        log_path=tmp_path / "logs" / "job.log",
    )


def test_launcher_success_failure_and_timeouts(tmp_path):
    echoed = []
    launcher = PythonLauncher(echo=echoed.append)
    summary = "job stream succeeded: run_id=r-1 duration=1.0s report=file:///r.json"
    ok = launcher(job_request(tmp_path, f"import sys; print('step one'); print({summary!r})"))
    assert ok["RunReport"] == "file:///r.json"
    assert "    | step one" in echoed
    with pytest.raises(StatesError) as failed:
        launcher(job_request(tmp_path, "import sys; print('boom happened', file=sys.stderr); sys.exit(3)"))
    assert failed.value.error == "States.TaskFailed"
    assert "exited with 3" in failed.value.cause and "boom happened" in failed.value.cause
    with pytest.raises(StatesError) as cancelled:
        launcher(job_request(tmp_path, "import time; time.sleep(30)", execution=0.5, state=5))
    assert cancelled.value.error == "States.TaskFailed" and "CANCELLED" in cancelled.value.cause
    with pytest.raises(StatesError) as timed_out:
        launcher(job_request(tmp_path, "import time; time.sleep(30)", execution=5, state=0.5))
    assert timed_out.value.error == "States.Timeout"
    assert "$ " in (tmp_path / "logs" / "job.log").read_text()
