"""Run the Step Functions state machines locally: an interpreter of state_machines/*.asl.json.

    scripts/run_pipeline.py --mode stream --lake-root ./lake
    scripts/run_pipeline.py --mode daily --date 2026-02-14 --lake-root ./lake
    scripts/run_pipeline.py --mode stream --lake-root s3://bucket/prefix --endpoint-url http://127.0.0.1:5000

The same ASL files Terraform deploys are read, their `${placeholders}` filled from a local configuration
(feature store backend `local`), and walked state by state. The integrations the files use run locally:

  emr-serverless:startJobRun.sync   `spark-submit --master 'local[*]'` of the same entry point and arguments
  dynamodb:putItem/getItem/deleteItem  a JSON file per table under the state directory, behind a file lock
  aws-sdk:sfn:describeExecution     the runner's own registry of executions (a dead runner reads as ABORTED)
  sns:publish                       one JSON line per message in <lake-root>/_runs/alerts.log

Implemented: Task, Choice, Pass, Wait, Succeed, Fail; Retry (ErrorEquals with States.ALL and
States.TaskFailed, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy); Catch with
ResultPath; InputPath, Parameters, ResultSelector, ResultPath, OutputPath; the context object ($$.Execution,
$$.StateMachine, $$.State); the intrinsics States.Format, States.Hash, States.Array, States.JsonToString and
States.MathAdd; TimeoutSeconds of Task states and of the execution. Anything else (Map, Parallel, JSONata,
variables, other resources or intrinsics, JSONPath wildcards and filters) is refused, by name, before the
first state runs. `--time-scale` multiplies Wait and Retry delays (0 = no sleeping, for tests).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(REPO_ROOT))

STATE_MACHINES_DIR = REPO_ROOT / "state_machines"
MODES = ("stream", "daily")

# Exactly the variables infra/terraform/modules/step_functions passes to templatefile().
PLACEHOLDERS = (
    "aws_region",
    "emr_application_id",
    "emr_job_role_arn",
    "lake_root",
    "code_uri",
    "lease_table_name",
    "alerts_topic_arn",
    "feature_store_backend",
    "online_store_path",
    "delta_log_table_name",
    "glue_database",
    "card_token_secret_id",
    "log_group_name",
)
LOCAL_ACCOUNT = "000000000000"
LEASE_TABLE_KEY = "lease_id"

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


# ---------------------------------------------------------------------------------------------------
# Templates: the placeholders Terraform's templatefile() fills
# ---------------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def template_placeholders(text: str) -> set[str]:
    """Every `${name}` of a template (`$${` is templatefile's escape for a literal `${`)."""
    return {match.group(1) for part in text.split("$${") for match in _PLACEHOLDER.finditer(part)}


def fill_template(text: str, variables: Mapping[str, str]) -> str:
    """What templatefile() does to an ASL file, with each value JSON-escaped so the result stays JSON."""
    if "%{" in text:
        raise UnsupportedConstruct("template directive %{...} (only ${name} placeholders are supported)")

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise DefinitionError(f"placeholder ${{{name}}} has no value in the local configuration")
        return json.dumps(str(variables[name]))[1:-1]

    return "${".join(_PLACEHOLDER.sub(replace, part) for part in text.split("$${"))


def load_definition(path: Path, variables: Mapping[str, str]) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DefinitionError(f"cannot read the definition {path}: {error.strerror}") from error
    try:
        return json.loads(fill_template(text, variables))
    except json.JSONDecodeError as error:
        raise DefinitionError(f"{path}: not valid JSON after filling the placeholders: {error}") from error


# ---------------------------------------------------------------------------------------------------
# JSONPath (reference paths) and payload templates
# ---------------------------------------------------------------------------------------------------

_PATH_STEP = re.compile(r"\.([A-Za-z_$][\w$-]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]")
_MISSING = object()


def parse_path(path: str) -> tuple[str, list[str | int]]:
    """`$.a.b[0]['c d']` → ('$', ['a', 'b', 0, 'c d']); `$$.Execution.Id` → ('$$', [...])."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise DefinitionError(f"{path!r} is not a path (paths start with $)")
    root = "$$" if path.startswith("$$") else "$"
    rest = path[len(root) :]
    steps: list[str | int] = []
    position = 0
    while position < len(rest):
        match = _PATH_STEP.match(rest, position)
        if not match:
            fragment = rest[position:]
            for token, name in (("..", "recursive descent (..)"), ("*", "wildcards (*)"), ("?(", "filters ?(...)")):
                if token in fragment:
                    raise UnsupportedConstruct(f"JSONPath {name} in {path!r}")
            if ":" in fragment and "[" in fragment:
                raise UnsupportedConstruct(f"JSONPath slices in {path!r}")
            raise DefinitionError(f"invalid path {path!r} at {fragment!r}")
        name, quoted, index = match.groups()
        if name is not None:
            steps.append(name)
        elif quoted is not None:
            steps.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            steps.append(int(index))
        position = match.end()
    return root, steps


def lookup(path: str, data: Any, context: Mapping[str, Any]) -> Any:
    """The value at `path` in `data` (or in the context object for `$$`), or _MISSING."""
    root, steps = parse_path(path)
    value: Any = context if root == "$$" else data
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
    return value


def resolve(path: str, data: Any, context: Mapping[str, Any], *, where: str) -> Any:
    value = lookup(path, data, context)
    if value is _MISSING:
        raise StatesError("States.Runtime", f"{where}: the path {path!r} could not be found in the input")
    return value


def apply_result_path(raw_input: Any, result_path: str | None, result: Any) -> Any:
    """Merge a result into the state's raw input as ResultPath says (null discards the result)."""
    if result_path is None:
        return raw_input
    root, steps = parse_path(result_path)
    if root == "$$":
        raise DefinitionError(f"ResultPath {result_path!r} cannot point into the context object")
    if not steps:
        return result
    if any(isinstance(step, int) for step in steps):
        raise UnsupportedConstruct(f"array indexes in ResultPath {result_path!r}")
    output = copy.deepcopy(raw_input)
    if not isinstance(output, dict):
        raise StatesError("States.ResultPathMatchFailure", f"ResultPath {result_path!r} needs an object input")
    node = output
    for step in steps[:-1]:
        child = node.setdefault(step, {})
        if not isinstance(child, dict):
            raise StatesError("States.ResultPathMatchFailure", f"ResultPath {result_path!r}: {step!r} is not an object")
        node = child
    node[steps[-1]] = result
    return output


def render_payload(template: Any, data: Any, context: Mapping[str, Any], *, where: str) -> Any:
    """A Parameters/ResultSelector template: keys ending in `.$` take a path's value or an intrinsic's."""
    if isinstance(template, dict):
        rendered = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise DefinitionError(f"{where}: the value of {key!r} must be a path or an intrinsic function")
                rendered[key[:-2]] = evaluate_expression(value, data, context, where=where)
            else:
                rendered[key] = render_payload(value, data, context, where=where)
        return rendered
    if isinstance(template, list):
        return [render_payload(item, data, context, where=where) for item in template]
    return template


def evaluate_expression(expression: str, data: Any, context: Mapping[str, Any], *, where: str) -> Any:
    if expression.startswith("States."):
        return evaluate_intrinsic(expression, data, context, where=where)
    if expression.startswith("$"):
        return resolve(expression, data, context, where=where)
    raise DefinitionError(f"{where}: {expression!r} is neither a path nor an intrinsic function")


def payload_expressions(template: Any) -> Iterator[str]:
    """Every `.$` value of a payload template (for validating them before the run)."""
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                yield value
            else:
                yield from payload_expressions(value)
    elif isinstance(template, list):
        for item in template:
            yield from payload_expressions(item)


# ---------------------------------------------------------------------------------------------------
# Intrinsic functions
# ---------------------------------------------------------------------------------------------------

HASH_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


@dataclass(frozen=True)
class _Literal:
    raw: str  # as written between the quotes, escapes included

    @property
    def value(self) -> str:
        return re.sub(r"\\(.)", r"\1", self.raw)


@dataclass(frozen=True)
class _Call:
    name: str
    arguments: tuple


@dataclass(frozen=True)
class _PathArgument:
    path: str


class _IntrinsicParser:
    _NAME = re.compile(r"States\.[A-Za-z]+")
    _NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def error(self, message: str) -> DefinitionError:
        return DefinitionError(f"intrinsic {self.text!r}: {message} at position {self.position}")

    def skip_spaces(self) -> None:
        while self.position < len(self.text) and self.text[self.position] == " ":
            self.position += 1

    def parse(self) -> _Call:
        call = self.call()
        self.skip_spaces()
        if self.position != len(self.text):
            raise self.error("unexpected text after the call")
        return call

    def call(self) -> _Call:
        match = self._NAME.match(self.text, self.position)
        if not match:
            raise self.error("expected States.<Function>(")
        self.position = match.end()
        if self.text[self.position : self.position + 1] != "(":
            raise self.error("expected (")
        self.position += 1
        arguments = []
        self.skip_spaces()
        if self.text[self.position : self.position + 1] == ")":
            self.position += 1
            return _Call(match.group(), tuple(arguments))
        while True:
            self.skip_spaces()
            arguments.append(self.argument())
            self.skip_spaces()
            character = self.text[self.position : self.position + 1]
            self.position += 1
            if character == ")":
                return _Call(match.group(), tuple(arguments))
            if character != ",":
                raise self.error("expected , or )")

    def argument(self) -> Any:
        text, start = self.text, self.position
        if text.startswith("States.", start):
            return self.call()
        if text[start : start + 1] == "'":
            position = start + 1
            while position < len(text):
                if text[position] == "\\":
                    position += 2
                    continue
                if text[position] == "'":
                    self.position = position + 1
                    return _Literal(text[start + 1 : position])
                position += 1
            raise self.error("unterminated string literal")
        if text[start : start + 1] == "$":
            depth, position = 0, start
            while position < len(text):
                character = text[position]
                if character == "[":
                    depth += 1
                elif character == "]":
                    depth -= 1
                elif character in ",)" and depth == 0:
                    break
                position += 1
            self.position = position
            return _PathArgument(text[start:position].strip())
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, start):
                self.position = start + len(word)
                return value
        match = self._NUMBER.match(text, start)
        if match:
            self.position = match.end()
            number = match.group()
            return float(number) if any(c in number for c in ".eE") else int(number)
        raise self.error("expected an argument")


def _argument_value(argument: Any, data: Any, context: Mapping[str, Any], where: str) -> Any:
    if isinstance(argument, _Literal):
        return argument.value
    if isinstance(argument, _PathArgument):
        return resolve(argument.path, data, context, where=where)
    if isinstance(argument, _Call):
        return _call_intrinsic(argument, data, context, where)
    return argument


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        raise StatesError("States.IntrinsicFailure", "States.Format accepts strings, numbers, booleans and null only")
    return json.dumps(value)


def _format(template: Any, values: list[Any]) -> str:
    """States.Format: `{}` is replaced by the next value; `\\{` and `\\}` are literal braces."""
    raw = template.raw if isinstance(template, _Literal) else str(template)
    pieces, count, position = [], 0, 0
    while position < len(raw):
        character = raw[position]
        if character == "\\" and position + 1 < len(raw) and isinstance(template, _Literal):
            pieces.append(raw[position + 1])
            position += 2
            continue
        if raw.startswith("{}", position):
            if count >= len(values):
                raise StatesError("States.IntrinsicFailure", "States.Format has more {} than arguments")
            pieces.append(_format_value(values[count]))
            count += 1
            position += 2
            continue
        pieces.append(character)
        position += 1
    if count != len(values):
        raise StatesError("States.IntrinsicFailure", "States.Format has more arguments than {}")
    return "".join(pieces)


def _call_intrinsic(call: _Call, data: Any, context: Mapping[str, Any], where: str) -> Any:
    name = call.name
    if name == "States.Format":
        if not call.arguments:
            raise StatesError("States.IntrinsicFailure", "States.Format needs a template")
        template = call.arguments[0]
        if not isinstance(template, _Literal):
            template = _argument_value(template, data, context, where)
        values = [_argument_value(argument, data, context, where) for argument in call.arguments[1:]]
        return _format(template, values)
    values = [_argument_value(argument, data, context, where) for argument in call.arguments]
    if name == "States.Hash":
        if len(values) != 2 or not isinstance(values[0], str) or values[1] not in HASH_ALGORITHMS:
            raise StatesError(
                "States.IntrinsicFailure", f"States.Hash(string, algorithm) with algorithm in {sorted(HASH_ALGORITHMS)}"
            )
        return hashlib.new(HASH_ALGORITHMS[values[1]], values[0].encode("utf-8")).hexdigest()
    if name == "States.Array":
        return values
    if name == "States.JsonToString":
        if len(values) != 1:
            raise StatesError("States.IntrinsicFailure", "States.JsonToString takes one argument")
        return json.dumps(values[0], separators=(",", ":"), ensure_ascii=False)
    if name == "States.MathAdd":
        if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise StatesError("States.IntrinsicFailure", "States.MathAdd takes two integers")
        return values[0] + values[1]
    raise UnsupportedConstruct(f"intrinsic function {name}")


SUPPORTED_INTRINSICS = ("States.Format", "States.Hash", "States.Array", "States.JsonToString", "States.MathAdd")


def parse_intrinsic(text: str) -> _Call:
    """Parse an intrinsic expression and refuse functions the runner does not implement."""
    call = _IntrinsicParser(text).parse()
    pending = [call]
    while pending:
        current = pending.pop()
        if current.name not in SUPPORTED_INTRINSICS:
            raise UnsupportedConstruct(f"intrinsic function {current.name}")
        for argument in current.arguments:
            if isinstance(argument, _Call):
                pending.append(argument)
            elif isinstance(argument, _PathArgument):
                parse_path(argument.path)
    return call


def evaluate_intrinsic(text: str, data: Any, context: Mapping[str, Any], *, where: str = "intrinsic") -> Any:
    return _call_intrinsic(parse_intrinsic(text), data, context, where)


# ---------------------------------------------------------------------------------------------------
# Choice rules
# ---------------------------------------------------------------------------------------------------

_COMPARISONS = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}
_TYPE_TESTS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
CHOICE_OPERATORS = frozenset(
    [
        f"{kind}{comparison}{suffix}"
        for kind in ("String", "Numeric", "Timestamp")
        for comparison in _COMPARISONS
        for suffix in ("", "Path")
    ]
    + ["BooleanEquals", "BooleanEqualsPath", "StringMatches", *_TYPE_TESTS]
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _string_matches(value: str, pattern: str) -> bool:
    """`*` matches any run of characters; `\\*` and `\\\\` are a literal star and backslash."""
    expression, position = [], 0
    while position < len(pattern):
        character = pattern[position]
        if character == "\\" and position + 1 < len(pattern):
            expression.append(re.escape(pattern[position + 1]))
            position += 2
            continue
        expression.append(".*" if character == "*" else re.escape(character))
        position += 1
    return re.fullmatch("".join(expression), value, flags=re.DOTALL) is not None


def choice_rule_matches(rule: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> bool:  # noqa: PLR0911
    if "And" in rule:
        return all(choice_rule_matches(inner, data, context) for inner in rule["And"])
    if "Or" in rule:
        return any(choice_rule_matches(inner, data, context) for inner in rule["Or"])
    if "Not" in rule:
        return not choice_rule_matches(rule["Not"], data, context)
    operators = [key for key in rule if key not in ("Variable", "Next", "Comment")]
    if "Variable" not in rule or len(operators) != 1:
        raise DefinitionError(f"Choice rule {rule!r} needs a Variable and exactly one comparison")
    operator, expected = operators[0], rule[operators[0]]
    if operator not in CHOICE_OPERATORS:
        raise UnsupportedConstruct(f"Choice operator {operator}")
    value = lookup(rule["Variable"], data, context)
    if operator == "IsPresent":
        return (value is not _MISSING) == expected
    if value is _MISSING:
        raise StatesError("States.Runtime", f"Choice: the path {rule['Variable']!r} could not be found in the input")
    if operator in _TYPE_TESTS:
        actual = {
            "IsNull": value is None,
            "IsNumeric": _is_number(value),
            "IsString": isinstance(value, str),
            "IsBoolean": isinstance(value, bool),
            "IsTimestamp": _parse_timestamp(value) is not None,
        }[operator]
        return actual == expected
    if operator.endswith("Path"):
        expected = resolve(expected, data, context, where="Choice")
        operator = operator[: -len("Path")]
    if operator == "StringMatches":
        return isinstance(value, str) and _string_matches(value, expected)
    if operator == "BooleanEquals":
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    kind = next(k for k in ("String", "Numeric", "Timestamp") if operator.startswith(k))
    compare = _COMPARISONS[operator[len(kind) :]]
    if kind == "String":
        return isinstance(value, str) and isinstance(expected, str) and compare(value, expected)
    if kind == "Numeric":
        return _is_number(value) and _is_number(expected) and compare(value, expected)
    left, right = _parse_timestamp(value), _parse_timestamp(expected)
    return left is not None and right is not None and compare(left, right)


# ---------------------------------------------------------------------------------------------------
# Errors, retriers and catchers
# ---------------------------------------------------------------------------------------------------


def error_matches(error_equals: list[str], error: str) -> bool:
    """States.ALL matches every error except the uncatchable ones; States.TaskFailed matches itself and every
    error whose name does not start with `States.` (so not States.Timeout)."""
    for name in error_equals:
        if name == "States.ALL" and error not in UNCATCHABLE_ERRORS:
            return True
        if name == "States.TaskFailed" and (error == name or not error.startswith("States.")):
            return True
        if name == error:
            return True
    return False


def retry_delay(retrier: Mapping[str, Any], attempt: int, rng: random.Random) -> float:
    """Seconds before retry number `attempt + 1`: IntervalSeconds × BackoffRate^attempt, capped, jittered."""
    delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** attempt
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, retrier["MaxDelaySeconds"])
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        delay = rng.uniform(0, delay)
    return delay


# ---------------------------------------------------------------------------------------------------
# Definition validation: refuse what the runner cannot run, before running anything
# ---------------------------------------------------------------------------------------------------

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
            _ConditionParser(expression, names, values).parse()
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
            for catcher in state.get("Catch", []):
                for key in catcher:
                    if key not in CATCHER_FIELDS:
                        raise UnsupportedConstruct(f"Catch field {key} (state {name!r})")
                targets.append(catcher.get("Next"))
                if catcher.get("ResultPath") is not None:
                    parse_path(catcher["ResultPath"])
        if kind == "Choice":
            for rule in state.get("Choices", []):
                _validate_choice_rule(name, rule, top=True)
                targets.append(rule.get("Next"))
            if "Default" in state:
                targets.append(state["Default"])
        wait_fields = ("Seconds", "SecondsPath", "Timestamp", "TimestampPath")
        if kind == "Wait" and sum(key in state for key in wait_fields) != 1:
            raise DefinitionError(f"Wait state {name!r} needs exactly one of {', '.join(wait_fields)}")
        for target in targets:
            if target is not None and target not in states:
                raise DefinitionError(f"state {name!r} goes to {target!r}, which does not exist")
        _validate_paths_and_payloads(name, state)


# ---------------------------------------------------------------------------------------------------
# Local stand-ins for the integrations
# ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if missing), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_json_atomic(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


class _ConditionParser:
    """DynamoDB condition expressions: comparisons (= <> < <= > >=), attribute_exists/attribute_not_exists,
    AND, OR, NOT and parentheses. Other functions are refused by name."""

    _TOKEN = re.compile(r"\s*(<>|<=|>=|=|<|>|\(|\)|,|[#:]?[A-Za-z_][\w.]*)")

    def __init__(self, expression: str, names: Mapping[str, str], values: Mapping[str, Any]) -> None:
        self.tokens, position = [], 0
        while position < len(expression):
            match = self._TOKEN.match(expression, position)
            if not match:
                if expression[position:].strip() == "":
                    break
                raise StatesError("DynamoDB.ValidationException", f"invalid ConditionExpression {expression!r}")
            self.tokens.append(match.group(1))
            position = match.end()
        self.index, self.names, self.values = 0, names, values

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise StatesError("DynamoDB.ValidationException", "ConditionExpression ends too early")
        self.index += 1
        return token

    def parse(self) -> Callable[[dict], bool]:
        condition = self.disjunction()
        if self.peek() is not None:
            raise StatesError("DynamoDB.ValidationException", f"unexpected {self.peek()!r} in ConditionExpression")
        return condition

    def disjunction(self):
        left = self.conjunction()
        while (self.peek() or "").upper() == "OR":
            self.take()
            right, previous = self.conjunction(), left
            left = lambda item, a=previous, b=right: a(item) or b(item)  # noqa: E731
        return left

    def conjunction(self):
        left = self.negation()
        while (self.peek() or "").upper() == "AND":
            self.take()
            right, previous = self.negation(), left
            left = lambda item, a=previous, b=right: a(item) and b(item)  # noqa: E731
        return left

    def negation(self):
        if (self.peek() or "").upper() == "NOT":
            self.take()
            inner = self.negation()
            return lambda item: not inner(item)
        return self.primary()

    def attribute_name(self, token: str) -> str:
        if token.startswith("#"):
            if token not in self.names:
                raise StatesError("DynamoDB.ValidationException", f"{token} is not in ExpressionAttributeNames")
            return self.names[token]
        return token

    def operand(self):
        token = self.take()
        if token.startswith(":"):
            if token not in self.values:
                raise StatesError("DynamoDB.ValidationException", f"{token} is not in ExpressionAttributeValues")
            value = self.values[token]
            return lambda item: value
        name = self.attribute_name(token)
        return lambda item: item.get(name, _MISSING)

    def primary(self):
        token = self.peek()
        if token == "(":
            self.take()
            inner = self.disjunction()
            if self.take() != ")":
                raise StatesError("DynamoDB.ValidationException", "missing ) in ConditionExpression")
            return inner
        if token in ("attribute_exists", "attribute_not_exists"):
            self.take()
            if self.take() != "(":
                raise StatesError("DynamoDB.ValidationException", f"{token} needs (")
            name = self.attribute_name(self.take())
            if self.take() != ")":
                raise StatesError("DynamoDB.ValidationException", f"{token} takes one attribute")
            exists = token == "attribute_exists"
            return lambda item: (name in item) == exists
        if token is not None and self.index + 1 < len(self.tokens) and self.tokens[self.index + 1] == "(":
            raise UnsupportedConstruct(f"DynamoDB condition function {token}")
        left = self.operand()
        operator = self.take()
        if operator.upper() in ("BETWEEN", "IN"):
            raise UnsupportedConstruct(f"DynamoDB condition operator {operator.upper()}")
        comparisons = {
            "=": "Equals",
            "<>": "NotEquals",
            "<": "LessThan",
            ">": "GreaterThan",
            "<=": "LessThanEquals",
            ">=": "GreaterThanEquals",
        }
        if operator not in comparisons:
            raise StatesError("DynamoDB.ValidationException", f"unexpected {operator!r} in ConditionExpression")
        right = self.operand()

        def compare(item: dict) -> bool:
            a, b = left(item), right(item)
            if a is _MISSING or b is _MISSING:
                return operator == "<>" and not (a is _MISSING and b is _MISSING)
            if operator == "=":
                return a == b
            if operator == "<>":
                return a != b
            (type_a, value_a), (type_b, value_b) = next(iter(a.items())), next(iter(b.items()))
            if type_a != type_b or type_a not in ("S", "N"):
                return False
            if type_a == "N":
                value_a, value_b = float(value_a), float(value_b)
            return _COMPARISONS[comparisons[operator]](value_a, value_b)

        return compare


class LocalDynamoDB:
    """Tables as JSON files; every call holds a file lock, so concurrent runners see one consistent table."""

    def __init__(self, directory: Path, key_schema: Mapping[str, tuple[str, ...]]) -> None:
        self.directory = directory
        self.key_schema = dict(key_schema)

    @contextlib.contextmanager
    def _table(self, name: str) -> Iterator[dict]:
        if name not in self.key_schema:
            raise StatesError("DynamoDB.ResourceNotFoundException", f"Requested resource not found: Table: {name}")
        path = self.directory / f"{name}.json"
        with file_lock(self.directory / f"{name}.lock"):
            items = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            before = json.dumps(items, sort_keys=True)
            yield items
            if json.dumps(items, sort_keys=True) != before:
                _write_json_atomic(path, items)

    def _key(self, table: str, key: Mapping[str, Any], *, exact: bool) -> str:
        attributes = self.key_schema[table]
        if any(name not in key for name in attributes) or (exact and set(key) != set(attributes)):
            raise StatesError("DynamoDB.ValidationException", "The provided key element does not match the schema")
        return json.dumps({name: key[name] for name in attributes}, sort_keys=True)

    @staticmethod
    def _check(parameters: Mapping[str, Any], item: dict | None) -> None:
        expression = parameters.get("ConditionExpression")
        if expression is None:
            return
        condition = _ConditionParser(
            expression, parameters.get("ExpressionAttributeNames", {}), parameters.get("ExpressionAttributeValues", {})
        ).parse()
        if not condition(item or {}):
            raise StatesError("DynamoDB.ConditionalCheckFailedException", "The conditional request failed")

    def put_item(self, parameters: Mapping[str, Any]) -> dict:
        table, item = parameters["TableName"], parameters["Item"]
        with self._table(table) as items:
            key = self._key(table, item, exact=False)
            self._check(parameters, items.get(key))
            items[key] = item
        return {}

    def get_item(self, parameters: Mapping[str, Any]) -> dict:
        table = parameters["TableName"]
        with self._table(table) as items:
            item = items.get(self._key(table, parameters["Key"], exact=True))
        return {"Item": item} if item is not None else {}

    def delete_item(self, parameters: Mapping[str, Any]) -> dict:
        table = parameters["TableName"]
        with self._table(table) as items:
            key = self._key(table, parameters["Key"], exact=True)
            self._check(parameters, items.get(key))
            items.pop(key, None)
        return {}


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
            _write_json_atomic(
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
            _write_json_atomic(path, record)

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
            storage.append_lines(storage.uri("_runs", "alerts.log"), [line])
        print(f"ALERT {subject}: {message}", file=sys.stderr, flush=True)
        return {"MessageId": message_id}


@dataclass
class JobRequest:
    """One EMR Serverless job run, translated for a local spark-submit."""

    name: str
    entry_point: Path
    arguments: list[str]
    spark_conf: dict[str, str]
    execution_timeout_seconds: float | None  # EMR cancels the run: States.TaskFailed
    state_timeout_seconds: float | None  # Step Functions stops waiting: States.Timeout
    log_path: Path


LOCAL_SPARK_SUBMIT_OPTIONS = ("--conf", "--py-files")
# The S3DynamoDBLogStore settings stay on AWS: locally (and against moto) Delta uses its default log store,
# since that log store cannot be pointed at a custom endpoint.
LOCAL_DROPPED_CONF_PREFIXES = ("spark.delta.logStore.", "spark.io.delta.storage.S3DynamoDBLogStore.")
EMR_PARAMETERS = {
    "ApplicationId",
    "ExecutionRoleArn",
    "Name",
    "ClientToken",
    "ExecutionTimeoutMinutes",
    "JobDriver",
    "ConfigurationOverrides",
    "Tags",
}


class SparkSubmitLauncher:
    """Runs a job as `spark-submit --master <master>` with the venv's spark-submit and the repo's Spark conf."""

    def __init__(self, *, master: str = "local[*]", echo: Callable[[str], None] | None = None) -> None:
        self.master = master
        self.echo = echo or (lambda line: print(line, flush=True))

    def command(self, job: JobRequest) -> list[str]:
        spark_submit = Path(sys.executable).parent / "spark-submit"
        if not spark_submit.exists():
            raise DefinitionError(f"{spark_submit} is missing: run `make setup`")
        conf = [argument for key, value in job.spark_conf.items() for argument in ("--conf", f"{key}={value}")]
        return [str(spark_submit), "--master", self.master, *conf, str(job.entry_point), *job.arguments]

    def environment(self) -> dict[str, str]:
        conf_dir = REPO_ROOT / ".spark" / "conf"
        if not (conf_dir / "spark-defaults.conf").exists():
            raise DefinitionError(f"{conf_dir / 'spark-defaults.conf'} is missing: run `make setup`")
        environment = dict(os.environ)
        python_path = [str(REPO_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
        environment.update(
            SPARK_CONF_DIR=str(conf_dir),
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
            PYTHONPATH=os.pathsep.join(python_path),
        )
        return environment

    def __call__(self, job: JobRequest) -> dict:
        command = self.command(job)
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        report_uri = None
        with open(job.log_path, "w", encoding="utf-8") as log:
            log.write("$ " + shlex.join(command) + "\n")
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
            )
            lock = threading.Lock()
            stdout_tail: list[str] = []  # spark-submit merges the Python driver's stderr into stdout
            stderr_tail: list[str] = []  # the JVM's log

            def pump(stream, is_stdout: bool) -> None:
                nonlocal report_uri
                for line in stream:
                    with lock:
                        log.write(line)
                    text = line.rstrip("\n")
                    if is_stdout:
                        found = re.search(r" report=(\S+)", text)
                        if found:
                            report_uri = found.group(1)
                        if not text.startswith('{"'):  # EMF metric lines go to the log only
                            self.echo(f"    | {text}")
                            stdout_tail.append(text)
                            del stdout_tail[:-40]
                    else:
                        stderr_tail.append(text)
                        del stderr_tail[:-40]

            readers = [
                threading.Thread(target=pump, args=(process.stdout, True), daemon=True),
                threading.Thread(target=pump, args=(process.stderr, False), daemon=True),
            ]
            for reader in readers:
                reader.start()
            limits = [(job.execution_timeout_seconds, "TaskFailed"), (job.state_timeout_seconds, "Timeout")]
            limits = [(seconds, kind) for seconds, kind in limits if seconds]
            deadline, kind = min(limits) if limits else (None, None)
            try:
                return_code = process.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                for reader in readers:
                    reader.join(timeout=5)
                if kind == "Timeout":
                    raise StatesError(
                        "States.Timeout", f"job {job.name} ran longer than the state's TimeoutSeconds"
                    ) from None
                raise StatesError(
                    "States.TaskFailed",
                    json.dumps(
                        {
                            "Name": job.name,
                            "State": "CANCELLED",
                            "StateDetails": "Job run exceeded ExecutionTimeoutMinutes and was cancelled",
                        }
                    ),
                ) from None
            for reader in readers:
                reader.join(timeout=30)
        seconds = round(time.monotonic() - started, 1)
        if return_code != 0:
            jvm_errors = [line for line in stderr_tail if " ERROR " in line or "Error" in line or "Exception" in line]
            jvm_errors = jvm_errors or stderr_tail[-5:]
            details = "\n".join(stdout_tail[-25:] + jvm_errors[-10:])[-6000:]
            raise StatesError(
                "States.TaskFailed",
                json.dumps(
                    {
                        "Name": job.name,
                        "State": "FAILED",
                        "LocalLog": str(job.log_path),
                        "StateDetails": f"spark-submit exited with {return_code}: {details}",
                    }
                ),
            )
        return {"DurationSeconds": seconds, "RunReport": report_uri}


class LocalServices:
    """The Task resources the runner implements, keyed by Resource ARN, with their allowed parameters."""

    RESOURCES: ClassVar[dict[str, set[str]]] = {
        "arn:aws:states:::emr-serverless:startJobRun.sync": EMR_PARAMETERS,
        "arn:aws:states:::dynamodb:putItem": {
            "TableName",
            "Item",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        },
        "arn:aws:states:::dynamodb:getItem": {"TableName", "Key", "ConsistentRead"},
        "arn:aws:states:::dynamodb:deleteItem": {
            "TableName",
            "Key",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        },
        "arn:aws:states:::aws-sdk:sfn:describeExecution": {"ExecutionArn"},
        "arn:aws:states:::sns:publish": {"TopicArn", "Message", "Subject"},
    }

    def __init__(
        self,
        *,
        state_dir: Path,
        config: Mapping[str, str],
        alerts: LocalAlerts,
        job_launcher: Callable[[JobRequest], dict],
        endpoint_url: str | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.config = dict(config)
        self.alerts = alerts
        self.job_launcher = job_launcher
        self.endpoint_url = endpoint_url
        self.log = log
        self.dynamodb = LocalDynamoDB(self.state_dir / "dynamodb", {config["lease_table_name"]: (LEASE_TABLE_KEY,)})
        self.executions = ExecutionRegistry(self.state_dir / "executions")
        self.jobs: list[dict] = []

    def invoke(self, resource: str, parameters: Any, *, timeout_seconds: float | None, context: Mapping) -> Any:
        if not isinstance(parameters, dict):
            raise StatesError("States.Runtime", f"{resource} needs an object of parameters")
        action = resource.rsplit(":", 1)[-1]
        if action == "startJobRun.sync":
            return self.start_job_run(parameters, timeout_seconds=timeout_seconds, context=context)
        if action == "putItem":
            return self.dynamodb.put_item(parameters)
        if action == "getItem":
            return self.dynamodb.get_item(parameters)
        if action == "deleteItem":
            return self.dynamodb.delete_item(parameters)
        if action == "describeExecution":
            if "ExecutionArn" not in parameters:
                raise StatesError("Sfn.InvalidArnException", "ExecutionArn is required")
            return self.executions.describe(parameters["ExecutionArn"])
        if action == "publish":
            return self.alerts.publish(parameters)
        raise UnsupportedConstruct(f"Task resource {resource}")

    # EMR Serverless ------------------------------------------------------------------------------
    def _validate_job_parameters(self, parameters: Mapping[str, Any]) -> None:
        def invalid(message: str) -> StatesError:
            return StatesError("EMRServerless.ValidationException", message)

        if not re.fullmatch(r"[0-9a-z]{1,64}", str(parameters.get("ApplicationId", ""))):
            raise invalid("ApplicationId must be 1-64 characters of [0-9a-z]")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", str(parameters.get("ClientToken", ""))):
            raise invalid(f"ClientToken {parameters.get('ClientToken')!r} must be 1-64 characters of [A-Za-z0-9._-]")
        if not str(parameters.get("ExecutionRoleArn", "")).startswith("arn:"):
            raise invalid("ExecutionRoleArn must be an IAM role ARN")
        if len(str(parameters.get("Name", ""))) > 256:
            raise invalid("Name is at most 256 characters")
        timeout = parameters.get("ExecutionTimeoutMinutes")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0):
            raise invalid("ExecutionTimeoutMinutes must be a non-negative integer")
        driver = parameters.get("JobDriver")
        if not isinstance(driver, dict) or set(driver) != {"SparkSubmit"}:
            raise invalid("JobDriver must hold exactly SparkSubmit")
        spark_submit = driver["SparkSubmit"]
        if "EntryPoint" not in spark_submit:
            raise invalid("JobDriver.SparkSubmit.EntryPoint is required")
        unknown = set(spark_submit) - {"EntryPoint", "EntryPointArguments", "SparkSubmitParameters"}
        if unknown:
            raise invalid(f"unknown JobDriver.SparkSubmit fields {sorted(unknown)}")
        arguments = spark_submit.get("EntryPointArguments", [])
        if not isinstance(arguments, list) or not all(isinstance(argument, str) for argument in arguments):
            raise invalid("EntryPointArguments must be a list of strings")

    def _local_path(self, uri: str, what: str) -> Path:
        prefix = self.config["code_uri"].rstrip("/") + "/"
        if not uri.startswith(prefix):
            raise StatesError("EMRServerless.ValidationException", f"{what} {uri} is not under code_uri {prefix}")
        return REPO_ROOT / uri[len(prefix) :]

    def _local_conf(self, spark_submit_parameters: str) -> dict[str, str]:
        """--conf key=value pairs to keep locally; --py-files points into code_uri, i.e. this repository."""
        words, conf, position = shlex.split(spark_submit_parameters or ""), {}, 0
        while position < len(words):
            option = words[position]
            value = words[position + 1] if position + 1 < len(words) else None
            if value is None:
                raise StatesError("EMRServerless.ValidationException", f"SparkSubmitParameters: {option} needs a value")
            if option == "--py-files":
                for path in value.split(","):
                    self._local_path(path, "--py-files")
            elif option == "--conf":
                key, _, conf_value = value.partition("=")
                if not key.startswith(LOCAL_DROPPED_CONF_PREFIXES):
                    conf[key] = conf_value
            else:
                raise UnsupportedConstruct(f"SparkSubmitParameters option {option}")
            position += 2
        return conf

    @staticmethod
    def _local_arguments(arguments: list[str], endpoint_url: str | None) -> list[str]:
        """Options whose value is empty are left out (the local configuration leaves glue_database and
        card_token_secret_id empty: no catalog, the development token key); --endpoint-url is added."""
        kept, position = [], 0
        while position < len(arguments):
            argument = arguments[position]
            following = arguments[position + 1] if position + 1 < len(arguments) else None
            if argument.startswith("--") and following == "":
                position += 2
                continue
            kept.append(argument)
            position += 1
        if endpoint_url:
            kept += ["--endpoint-url", endpoint_url]
        return kept

    def start_job_run(self, parameters: Mapping[str, Any], *, timeout_seconds: float | None, context: Mapping) -> dict:
        self._validate_job_parameters(parameters)
        spark_submit = parameters["JobDriver"]["SparkSubmit"]
        entry_point = self._local_path(spark_submit["EntryPoint"], "EntryPoint")
        job_run_id = "local" + uuid.uuid4().hex[:12]
        name = parameters.get("Name") or entry_point.stem
        if not entry_point.is_file():
            raise StatesError(
                "States.TaskFailed",
                json.dumps(
                    {
                        "Name": name,
                        "State": "FAILED",
                        "StateDetails": f"entry point {spark_submit['EntryPoint']} does not exist",
                    }
                ),
            )
        minutes = parameters.get("ExecutionTimeoutMinutes")
        execution_name = context["Execution"]["Name"]
        job = JobRequest(
            name=name,
            entry_point=entry_point,
            arguments=self._local_arguments(list(spark_submit.get("EntryPointArguments", [])), self.endpoint_url),
            spark_conf=self._local_conf(spark_submit.get("SparkSubmitParameters", "")),
            execution_timeout_seconds=minutes * 60 if minutes else None,
            state_timeout_seconds=timeout_seconds,
            log_path=self.state_dir / "logs" / execution_name / f"{context['State']['Name']}-{job_run_id}.log",
        )
        self.log(
            f"  spark-submit {entry_point.relative_to(REPO_ROOT)} {shlex.join(job.arguments)}"
            f"  (job run {job_run_id}, log {job.log_path})"
        )
        record = {"state": context["State"]["Name"], "job_run_id": job_run_id, "entry_point": str(entry_point)}
        try:
            local = self.job_launcher(job)
        except StatesError as error:
            self.jobs.append({**record, "status": "FAILED", "error": error.error})
            raise
        self.jobs.append({**record, "status": "SUCCESS", **{k.lower(): v for k, v in (local or {}).items()}})
        return {
            "ApplicationId": parameters["ApplicationId"],
            "JobRunId": job_run_id,
            "Name": name,
            "State": "SUCCESS",
            "ClientToken": parameters["ClientToken"],
            **{f"Local{key}": value for key, value in (local or {}).items()},
        }


# ---------------------------------------------------------------------------------------------------
# The interpreter
# ---------------------------------------------------------------------------------------------------


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
            if not _is_number(seconds) or seconds < 0:
                raise StatesError("States.Runtime", f"SecondsPath gave {seconds!r}, not a non-negative number")
            return float(seconds)
        timestamp = state.get("Timestamp")
        if timestamp is None:
            timestamp = resolve(state["TimestampPath"], data, context, where="TimestampPath")
        moment = _parse_timestamp(timestamp)
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


# ---------------------------------------------------------------------------------------------------
# Local configuration and the command line
# ---------------------------------------------------------------------------------------------------


def default_state_dir(lake_root: str) -> Path:
    """Lease table, execution registry and job logs: inside a local lake, else a per-lake folder on this machine."""
    if lake_root.startswith(("s3://", "s3a://")):
        digest = hashlib.sha256(lake_root.rstrip("/").encode()).hexdigest()[:12]
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return cache / "card-features-runner" / digest
    return Path(lake_root).resolve() / "_orchestration"


def local_config(lake_root: str, state_dir: Path, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Values for every placeholder, as Terraform passes them, but local: backend `local`, code_uri = this repo."""
    lake = lake_root.rstrip("/") if lake_root.startswith(("s3://", "s3a://")) else str(Path(lake_root).resolve())
    # feature_store/ingest_features.py's own default for a local lake; an S3 lake keeps it on this machine.
    online_store = (
        str(state_dir / "online.db") if lake_root.startswith(("s3://", "s3a://")) else f"{lake}/feature_store/online.db"
    )
    config = {
        "aws_region": "us-east-1",
        "emr_application_id": "local",
        "emr_job_role_arn": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local-emr-job",
        "lake_root": lake,
        "code_uri": "file://" + str(REPO_ROOT),
        "lease_table_name": "local-run-lease",
        "alerts_topic_arn": f"arn:aws:sns:us-east-1:{LOCAL_ACCOUNT}:local-alerts",
        "feature_store_backend": "local",
        "online_store_path": online_store,
        "delta_log_table_name": "local-delta-log",
        "glue_database": "",
        "card_token_secret_id": "",
        "log_group_name": "/local/emr-serverless",
    }
    for key, value in (overrides or {}).items():
        if key not in config:
            raise DefinitionError(f"unknown configuration key {key!r}; known: {', '.join(PLACEHOLDERS)}")
        config[key] = str(value)
    return config


def execution_input_for(args: argparse.Namespace) -> dict:
    if args.input is not None:
        value = json.loads(args.input)
        if not isinstance(value, dict):
            raise DefinitionError("--input must be a JSON object")
        return value
    if args.date:
        return {"date": args.date}
    if args.scheduled_time:
        return {"scheduled_time": args.scheduled_time}
    return {}


def run_pipeline(
    *,
    mode: str,
    lake_root: str,
    execution_input: dict | None = None,
    endpoint_url: str | None = None,
    definition_path: Path | None = None,
    state_dir: Path | None = None,
    config_overrides: Mapping[str, str] | None = None,
    execution_name: str | None = None,
    time_scale: float = 1.0,
    spark_master: str = "local[*]",
    job_launcher: Callable[[JobRequest], dict] | None = None,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    register_feature_group: bool | None = None,
) -> ExecutionResult:
    """Run one execution of state_machines/<mode>.asl.json (or `definition_path`) locally.

    With the local feature store backend, the feature group is registered first (idempotent), as the deploy
    workflow does on AWS; by default only when the jobs really run (no `job_launcher` stub).
    """
    state_dir = Path(state_dir) if state_dir else default_state_dir(lake_root)
    config = local_config(lake_root, state_dir, config_overrides)
    definition_path = definition_path or STATE_MACHINES_DIR / f"{mode}.asl.json"
    definition = load_definition(definition_path, config)
    if register_feature_group is None:
        register_feature_group = job_launcher is None
    if register_feature_group and config["feature_store_backend"] == "local":
        register_local_feature_group(config, endpoint_url=endpoint_url, log=log)
    started = utc_now()
    execution_name = execution_name or f"{mode}-{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    services = LocalServices(
        state_dir=state_dir,
        config=config,
        alerts=LocalAlerts(lake_root, endpoint_url=endpoint_url, lock_path=state_dir / "alerts.lock"),
        job_launcher=job_launcher or SparkSubmitLauncher(master=spark_master, echo=log),
        endpoint_url=endpoint_url,
        log=log,
    )
    interpreter = Interpreter(
        definition,
        services,
        state_machine_name=f"local-{definition_path.name.removesuffix('.asl.json')}",
        execution_name=execution_name,
        region=config["aws_region"],
        time_scale=time_scale,
        log=log,
        sleep=sleep,
    )
    execution_input = execution_input or {}
    services.executions.register(
        interpreter.execution_arn, state_machine_arn=interpreter.state_machine_arn, execution_input=execution_input
    )
    result = ExecutionResult(interpreter.execution_arn, execution_name, "FAILED")
    try:
        result = interpreter.run(execution_input)
    finally:
        services.executions.finish(
            interpreter.execution_arn, result.status, output=result.output, error=result.error, cause=result.cause
        )
    return result


def register_local_feature_group(
    config: Mapping[str, str], *, endpoint_url: str | None, log: Callable[[str], None]
) -> None:
    """The local stand-in of the deploy step that creates the feature group (idempotent)."""
    command = [
        sys.executable,
        str(REPO_ROOT / "feature_store" / "register_feature_groups.py"),
        "--backend",
        "local",
        "--lake-root",
        config["lake_root"],
        "--online-store-path",
        config["online_store_path"],
    ]
    if endpoint_url:
        command += ["--endpoint-url", endpoint_url]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise DefinitionError(f"registering the local feature group failed: {(result.stdout + result.stderr)[-2000:]}")
    log(f"local setup: feature group registered in {config['online_store_path']} (the deploy workflow's step on AWS)")


def summary_lines(result: ExecutionResult) -> list[str]:
    lines = [f"execution {result.name}: {result.status} in {result.seconds:.1f}s"]
    if result.error:
        lines.append(f"  error {result.error}: {result.cause}")
    slow = sorted(
        (r for r in result.states if r.seconds >= 0.05 or r.retries or r.outcome != "ok"), key=lambda r: -r.seconds
    )
    for record in slow:
        extra = f", {record.retries} retries" if record.retries else ""
        outcome = "" if record.outcome == "ok" else f", {record.outcome}"
        lines.append(f"  {record.name:<28} {record.seconds:8.1f}s{extra}{outcome}")
    lines.append(f"  states visited: {' -> '.join(r.name for r in result.states)}")
    for job in result.jobs:
        report = f" report {job['runreport']}" if job.get("runreport") else ""
        seconds = f" {job['durationseconds']}s" if "durationseconds" in job else ""
        lines.append(f"  job {job['state']}: {job['status']}{seconds}{report}")
    lines.append(f"  output: {json.dumps(result.output, sort_keys=True)[:2000]}")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_pipeline.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=MODES, required=True, help="which state machine: stream or daily")
    parser.add_argument("--lake-root", required=True, help="a local folder or s3://bucket/prefix")
    parser.add_argument("--endpoint-url", help="custom S3 endpoint (a moto server); passed on to every job")
    day = parser.add_mutually_exclusive_group()
    day.add_argument("--date", help='daily: the day to process, YYYY-MM-DD (input {"date": ...})')
    day.add_argument("--scheduled-time", help='daily: the schedule\'s time, ISO-8601 (input {"scheduled_time": ...})')
    day.add_argument("--input", help="the execution input as a JSON object")
    parser.add_argument("--config", help="JSON object overriding placeholder values of the local configuration")
    parser.add_argument("--online-store-path", help="local online store (default: <lake-root>/feature_store/online.db)")
    parser.add_argument("--state-dir", help="lease table, executions and job logs (default: <lake>/_orchestration)")
    parser.add_argument("--definition", help="another ASL file to run instead of state_machines/<mode>.asl.json")
    parser.add_argument("--execution-name", help="execution name (default: <mode>-<UTC time>-<random>)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply Wait and Retry delays (default 1)")
    parser.add_argument("--spark-master", default="local[*]", help="spark-submit --master (default: local[*])")
    parser.add_argument("--json", action="store_true", help="print the execution result as JSON at the end")
    args = parser.parse_args(argv)
    if args.mode == "stream" and (args.date or args.scheduled_time):
        parser.error("--date and --scheduled-time are for --mode daily")
    if args.time_scale < 0:
        parser.error("--time-scale must be >= 0")
    if args.date:
        try:
            datetime.strptime(args.date, "%Y-%m-%d")
        except ValueError:
            parser.error(f"--date {args.date!r}: expected YYYY-MM-DD")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = json.loads(Path(args.config).read_text()) if args.config else {}
    if args.online_store_path:
        overrides["online_store_path"] = args.online_store_path
    try:
        result = run_pipeline(
            mode=args.mode,
            lake_root=args.lake_root,
            execution_input=execution_input_for(args),
            endpoint_url=args.endpoint_url,
            definition_path=Path(args.definition) if args.definition else None,
            state_dir=Path(args.state_dir) if args.state_dir else None,
            config_overrides=overrides,
            execution_name=args.execution_name,
            time_scale=args.time_scale,
            spark_master=args.spark_master,
        )
    except (UnsupportedConstruct, DefinitionError) as error:
        kind = "unsupported" if isinstance(error, UnsupportedConstruct) else "invalid"
        print(f"run_pipeline: {kind}: {error}", file=sys.stderr)
        return 2
    for line in summary_lines(result):
        print(line, flush=True)
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True, default=str))
    return 0 if result.status == "SUCCEEDED" else 1


if __name__ == "__main__":
    raise SystemExit(main())
