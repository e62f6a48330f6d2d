"""dynamodb:putItem/getItem/deleteItem: a JSON file per table under the state directory, behind a file lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from devtools.local_runner.choice_rules import COMPARISONS
from devtools.local_runner.errors import StatesError, UnsupportedConstruct
from devtools.local_runner.paths import MISSING


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


def write_json_atomic(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


class ConditionParser:
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
        return lambda item: item.get(name, MISSING)

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
            if a is MISSING or b is MISSING:
                return operator == "<>" and not (a is MISSING and b is MISSING)
            if operator == "=":
                return a == b
            if operator == "<>":
                return a != b
            (type_a, value_a), (type_b, value_b) = next(iter(a.items())), next(iter(b.items()))
            if type_a != type_b or type_a not in ("S", "N"):
                return False
            if type_a == "N":
                value_a, value_b = float(value_a), float(value_b)
            return COMPARISONS[comparisons[operator]](value_a, value_b)

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
                write_json_atomic(path, items)

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
        condition = ConditionParser(
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
