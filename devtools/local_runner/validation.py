"""Refuse what the runner cannot run, by name, before the first state runs."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from devtools.local_runner.choice_rules import CHOICE_OPERATORS
from devtools.local_runner.dynamodb import ConditionParser
from devtools.local_runner.emr import LOCAL_SPARK_SUBMIT_OPTIONS
from devtools.local_runner.errors import DefinitionError, StatesError, UnsupportedConstruct
from devtools.local_runner.intrinsics import parse_intrinsic
from devtools.local_runner.paths import parse_path
from devtools.local_runner.payloads import payload_expressions

STATE_FIELDS = {
    "Task": {
        "Type",
        "Comment",
        "Resource",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "InputPath",
        "OutputPath",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "Next",
        "End",
    },
    "Pass": {"Type", "Comment", "Result", "Parameters", "ResultPath", "InputPath", "OutputPath", "Next", "End"},
    "Choice": {"Type", "Comment", "Choices", "Default", "InputPath", "OutputPath"},
    "Wait": {
        "Type",
        "Comment",
        "Seconds",
        "SecondsPath",
        "Timestamp",
        "TimestampPath",
        "InputPath",
        "OutputPath",
        "Next",
        "End",
    },
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause"},
}
TOP_LEVEL_FIELDS = {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}
RETRIER_FIELDS = {
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Comment",
}
CATCHER_FIELDS = {"ErrorEquals", "Next", "ResultPath", "Comment"}


def _validate_paths_and_payloads(name: str, state: Mapping[str, Any]) -> None:
    for field_name in ("InputPath", "OutputPath", "ResultPath"):
        if state.get(field_name) is not None:
            parse_path(state[field_name])
    for field_name in ("Parameters", "ResultSelector"):
        for expression in payload_expressions(state.get(field_name)):
            if expression.startswith("States."):
                parse_intrinsic(expression)
            else:
                parse_path(expression)
    for field_name in ("SecondsPath", "TimestampPath"):
        if field_name in state:
            parse_path(state[field_name])


def _validate_choice_rule(name: str, rule: Mapping[str, Any], *, top: bool) -> None:
    for combinator in ("And", "Or"):
        if combinator in rule:
            for inner in rule[combinator]:
                _validate_choice_rule(name, inner, top=False)
            return
    if "Not" in rule:
        _validate_choice_rule(name, rule["Not"], top=False)
        return
    operators = [key for key in rule if key not in ("Variable", "Next", "Comment")]
    for operator in operators:
        if operator not in CHOICE_OPERATORS:
            raise UnsupportedConstruct(f"Choice operator {operator} in state {name!r}")
    if "Variable" in rule:
        parse_path(rule["Variable"])
    for operator in operators:
        if operator.endswith("Path"):
            parse_path(rule[operator])


def _validate_integration_parameters(name: str, resource: str, parameters: Mapping[str, Any]) -> None:
    """Static parts the local integrations interpret: DynamoDB condition expressions, SparkSubmitParameters."""
    expression = parameters.get("ConditionExpression")
    if resource.startswith("arn:aws:states:::dynamodb:") and isinstance(expression, str):
        names = parameters.get("ExpressionAttributeNames", {})
        values = {key: None for key in parameters.get("ExpressionAttributeValues", {})}
        try:
            ConditionParser(expression, names, values).parse()
        except StatesError as error:
            raise DefinitionError(f"state {name!r}: {error}") from error
    spark_submit = parameters.get("JobDriver", {}).get("SparkSubmit", {}) if isinstance(parameters, dict) else {}
    options = spark_submit.get("SparkSubmitParameters") if isinstance(spark_submit, dict) else None
    if isinstance(options, str):
        for option in shlex.split(options)[::2]:
            if option not in LOCAL_SPARK_SUBMIT_OPTIONS:
                raise UnsupportedConstruct(f"SparkSubmitParameters option {option} (state {name!r})")


def validate_definition(definition: Mapping[str, Any], supported_resources: Mapping[str, Any]) -> None:
    """Raise UnsupportedConstruct or DefinitionError, naming the construct, for anything the runner cannot run."""
    for key in definition:
        if key not in TOP_LEVEL_FIELDS:
            raise UnsupportedConstruct(f"top-level field {key}")
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise UnsupportedConstruct(f"QueryLanguage {definition['QueryLanguage']}")
    states = definition.get("States")
    if not isinstance(states, dict) or definition.get("StartAt") not in (states or {}):
        raise DefinitionError("the definition needs States and a StartAt naming one of them")
    for name, state in states.items():
        _validate_state(name, state, states, supported_resources)


def _validate_state(
    name: str, state: Mapping[str, Any], states: Mapping[str, Any], supported_resources: Mapping[str, Any]
) -> None:
    kind = state.get("Type")
    if kind not in STATE_FIELDS:
        raise UnsupportedConstruct(f"state type {kind} (state {name!r})")
    for key in state:
        if key not in STATE_FIELDS[kind]:
            raise UnsupportedConstruct(f"field {key} in {kind} state {name!r}")
    if state.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise UnsupportedConstruct(f"QueryLanguage {state['QueryLanguage']} (state {name!r})")
    targets = []
    if kind in ("Task", "Pass", "Wait"):
        if ("Next" in state) == bool(state.get("End")):
            raise DefinitionError(f"state {name!r} needs exactly one of Next and End")
        targets.append(state.get("Next"))
    if kind == "Task":
        targets += _validate_task(name, state, supported_resources)
    if kind == "Choice":
        targets += _choice_targets(name, state)
    wait_fields = ("Seconds", "SecondsPath", "Timestamp", "TimestampPath")
    if kind == "Wait" and sum(key in state for key in wait_fields) != 1:
        raise DefinitionError(f"Wait state {name!r} needs exactly one of {', '.join(wait_fields)}")
    for target in targets:
        if target is not None and target not in states:
            raise DefinitionError(f"state {name!r} goes to {target!r}, which does not exist")
    _validate_paths_and_payloads(name, state)


def _validate_task(name: str, state: Mapping[str, Any], supported_resources: Mapping[str, Any]) -> list[str | None]:
    """A Task's resource, parameters, retriers and catchers; returns the states its catchers go to."""
    resource = state.get("Resource")
    if resource not in supported_resources:
        raise UnsupportedConstruct(f"Task resource {resource} (state {name!r})")
    allowed = supported_resources[resource]
    for parameter in state.get("Parameters", {}):
        if parameter.removesuffix(".$") not in allowed:
            raise UnsupportedConstruct(f"parameter {parameter} of {resource} (state {name!r})")
    _validate_integration_parameters(name, resource, state.get("Parameters", {}))
    for retrier in state.get("Retry", []):
        for key in retrier:
            if key not in RETRIER_FIELDS:
                raise UnsupportedConstruct(f"Retry field {key} (state {name!r})")
        if retrier.get("JitterStrategy", "NONE") not in ("NONE", "FULL"):
            raise DefinitionError(f"JitterStrategy {retrier['JitterStrategy']} (state {name!r})")
    targets = []
    for catcher in state.get("Catch", []):
        for key in catcher:
            if key not in CATCHER_FIELDS:
                raise UnsupportedConstruct(f"Catch field {key} (state {name!r})")
        targets.append(catcher.get("Next"))
        if catcher.get("ResultPath") is not None:
            parse_path(catcher["ResultPath"])
    return targets


def _choice_targets(name: str, state: Mapping[str, Any]) -> list[str | None]:
    """A Choice state's rules, validated; returns the states its rules and its Default go to."""
    targets = []
    for rule in state.get("Choices", []):
        _validate_choice_rule(name, rule, top=True)
        targets.append(rule.get("Next"))
    if "Default" in state:
        targets.append(state["Default"])
    return targets
