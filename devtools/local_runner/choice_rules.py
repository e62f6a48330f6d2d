"""Choice rules (comparisons, type tests, And/Or/Not), and how an error is matched by a retrier or catcher."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from devtools.local_runner.errors import UNCATCHABLE_ERRORS, DefinitionError, StatesError, UnsupportedConstruct
from devtools.local_runner.paths import MISSING, lookup, resolve

COMPARISONS = {
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
        for comparison in COMPARISONS
        for suffix in ("", "Path")
    ]
    + ["BooleanEquals", "BooleanEqualsPath", "StringMatches", *_TYPE_TESTS]
)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def parse_timestamp(value: Any) -> datetime | None:
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


def choice_rule_matches(rule: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
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
        return (value is not MISSING) == expected
    if value is MISSING:
        raise StatesError("States.Runtime", f"Choice: the path {rule['Variable']!r} could not be found in the input")
    if operator in _TYPE_TESTS:
        return _type_test(operator, value) == expected
    if operator.endswith("Path"):
        expected = resolve(expected, data, context, where="Choice")
        operator = operator[: -len("Path")]
    return _comparison(operator, value, expected)


def _type_test(operator: str, value: Any) -> bool:
    """IsNull, IsNumeric, IsString, IsBoolean or IsTimestamp of a value that is present."""
    return {
        "IsNull": value is None,
        "IsNumeric": is_number(value),
        "IsString": isinstance(value, str),
        "IsBoolean": isinstance(value, bool),
        "IsTimestamp": parse_timestamp(value) is not None,
    }[operator]


def _comparison(operator: str, value: Any, expected: Any) -> bool:
    """StringMatches, BooleanEquals or a String/Numeric/Timestamp comparison; values of another type never match."""
    if operator == "StringMatches":
        return isinstance(value, str) and _string_matches(value, expected)
    if operator == "BooleanEquals":
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    kind = next(k for k in ("String", "Numeric", "Timestamp") if operator.startswith(k))
    compare = COMPARISONS[operator[len(kind) :]]
    if kind == "String":
        return isinstance(value, str) and isinstance(expected, str) and compare(value, expected)
    if kind == "Numeric":
        return is_number(value) and is_number(expected) and compare(value, expected)
    left, right = parse_timestamp(value), parse_timestamp(expected)
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
