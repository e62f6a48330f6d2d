"""The intrinsic functions the runner implements: States.Format, States.Hash, States.Array, States.JsonToString,
States.MathAdd."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devtools.local_runner.errors import DefinitionError, StatesError, UnsupportedConstruct
from devtools.local_runner.paths import parse_path, resolve

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

    def string_literal(self) -> _Literal:
        """A quoted 'string', kept as written between the quotes (\\-escapes included)."""
        text, start = self.text, self.position
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

    def path_argument(self) -> _PathArgument:
        """A path argument: up to the next , or ) outside brackets."""
        text, start = self.text, self.position
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

    def argument(self) -> Any:
        text, start = self.text, self.position
        if text.startswith("States.", start):
            return self.call()
        if text[start : start + 1] == "'":
            return self.string_literal()
        if text[start : start + 1] == "$":
            return self.path_argument()
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
