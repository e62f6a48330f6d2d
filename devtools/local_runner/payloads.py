"""Payload templates (Parameters, ResultSelector): `"key.$"` fields whose value is a path or an intrinsic."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from devtools.local_runner.errors import DefinitionError
from devtools.local_runner.intrinsics import evaluate_intrinsic
from devtools.local_runner.paths import resolve


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
