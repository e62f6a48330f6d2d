"""JSONPath reference paths: `$.a.b[0]['c d']` into the input, `$$.Execution.Id` into the context object."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from devtools.local_runner.errors import DefinitionError, StatesError, UnsupportedConstruct

_PATH_STEP = re.compile(r"\.([A-Za-z_$][\w$-]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]")
MISSING = object()


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
    """The value at `path` in `data` (or in the context object for `$$`), or MISSING."""
    root, steps = parse_path(path)
    value: Any = context if root == "$$" else data
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return MISSING
            value = value[step]
    return value


def resolve(path: str, data: Any, context: Mapping[str, Any], *, where: str) -> Any:
    value = lookup(path, data, context)
    if value is MISSING:
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
