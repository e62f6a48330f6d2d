"""A read-only model of the Terraform code under infra/terraform, parsed with python-hcl2 (no terraform binary).

python-hcl2 keeps string literals quoted (`'"abc"'`) and expressions wrapped (`'${var.x}'`); the helpers below
turn that into plain values where they can and say "unresolved" where only Terraform could know.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ROOT = REPO_ROOT / "infra" / "terraform"
MODULES_ROOT = TERRAFORM_ROOT / "modules"
ROOT_CONFIGS = (TERRAFORM_ROOT / "bootstrap", TERRAFORM_ROOT / "envs" / "dev", TERRAFORM_ROOT / "envs" / "prod")
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
TOOLS_VENV_BIN = REPO_ROOT / ".venv-tools" / "bin"


def unquote(value: object) -> object:
    """'"abc"' -> 'abc'; other values unchanged."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def is_expression(value: object) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def literal(value: object) -> str | None:
    """The string if `value` is a plain literal (no interpolation), else None."""
    if not isinstance(value, str) or is_expression(value):
        return None
    text = unquote(value)
    return None if "${" in text else text


def template(value: object) -> str | None:
    """The text of a quoted string, interpolations kept (e.g. 'repo:${var.owner}/...'), else None."""
    if isinstance(value, str) and not is_expression(value):
        return unquote(value)
    return None


def name_of(key: str) -> str:
    return str(unquote(key))


@dataclass
class Block:
    module: str  # directory relative to infra/terraform, e.g. "modules/s3_datalake"
    file: str  # path relative to infra/terraform
    kind: str  # resource | data | module | variable | output
    type: str  # e.g. aws_s3_bucket ("" for module/variable/output)
    name: str
    body: dict

    @property
    def address(self) -> str:
        return f"{self.module}:{self.type + '.' if self.type else ''}{self.name}"


@dataclass
class Statement:
    module: str
    document: str
    sid: str  # "<dynamic>" for dynamic statements
    effect: str
    actions: list[str] | None  # None: not resolvable statically
    action_source: str
    resources: list[object]
    not_resources: list[object]
    principals: list[dict]
    conditions: list[dict] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.module, self.document, self.sid)


@functools.cache
def tf_files() -> tuple[Path, ...]:
    return tuple(
        sorted(
            path
            for path in TERRAFORM_ROOT.rglob("*.tf")
            if ".terraform" not in path.parts
            and not any(part.startswith(".") for part in path.relative_to(TERRAFORM_ROOT).parts[:-1])
        )
    )


@functools.cache
def parsed(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES_ROOT.iterdir() if p.is_dir())


@functools.cache
def blocks() -> tuple[Block, ...]:
    found = []
    for path in tf_files():
        module = path.parent.relative_to(TERRAFORM_ROOT).as_posix()
        file = path.relative_to(TERRAFORM_ROOT).as_posix()
        document = parsed(path)
        for kind in ("resource", "data"):
            for entry in document.get(kind, []):
                for type_key, named in entry.items():
                    for name_key, body in named.items():
                        found.append(Block(module, file, kind, name_of(type_key), name_of(name_key), body))
        for kind in ("module", "variable", "output"):
            for entry in document.get(kind, []):
                for name_key, body in entry.items():
                    found.append(Block(module, file, kind, "", name_of(name_key), body))
    return tuple(found)


def resources(type_: str | None = None) -> list[Block]:
    return [b for b in blocks() if b.kind == "resource" and (type_ is None or b.type == type_)]


def data_sources(type_: str | None = None) -> list[Block]:
    return [b for b in blocks() if b.kind == "data" and (type_ is None or b.type == type_)]


@functools.cache
def module_locals(module: str) -> dict:
    merged: dict = {}
    for path in tf_files():
        if path.parent.relative_to(TERRAFORM_ROOT).as_posix() != module:
            continue
        for entry in parsed(path).get("locals", []):
            merged.update({k: v for k, v in entry.items() if not k.startswith("__")})
    return merged


def resolve_string_list(module: str, value: object) -> list[str] | None:
    """A list of plain strings from a literal list or a `local.x` reference, else None."""
    if isinstance(value, list):
        items = [literal(item) for item in value]
        return None if any(item is None for item in items) else items
    if is_expression(value):
        match = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        if match and match.group(1) in module_locals(module):
            return resolve_string_list(module, module_locals(module)[match.group(1)])
    return None


def _statement(module: str, document: str, body: dict, dynamic: bool) -> Statement:
    actions = resolve_string_list(module, body.get("actions", []))
    return Statement(
        module=module,
        document=document,
        sid="<dynamic>" if dynamic else (literal(body.get("sid", '""')) or ""),
        effect=literal(body.get("effect", '"Allow"')) or "Allow",
        actions=actions,
        action_source=str(body.get("actions")),
        resources=list(body.get("resources", []))
        if isinstance(body.get("resources", []), list)
        else [body["resources"]],
        not_resources=list(body.get("not_resources", [])),
        principals=list(body.get("principals", [])),
        conditions=list(body.get("condition", [])),
    )


@functools.cache
def statements() -> tuple[Statement, ...]:
    found = []
    for block in data_sources("aws_iam_policy_document"):
        for body in block.body.get("statement", []):
            found.append(_statement(block.module, block.name, body, dynamic=False))
        for dynamic in block.body.get("dynamic", []):
            for label, spec in dynamic.items():
                if name_of(label) == "statement":
                    for content in spec.get("content", []):
                        found.append(_statement(block.module, block.name, content, dynamic=True))
    return tuple(found)


def condition_values(statement: Statement, variable: str) -> list[tuple[str, object]]:
    """(test, values) of every condition on `variable` (compared literally, e.g. 'iam:PassedToService')."""
    found = []
    for condition in statement.conditions:
        if template(condition.get("variable")) == variable or str(condition.get("variable")).endswith(variable + '"'):
            found.append((literal(condition.get("test")) or "", condition.get("values")))
    return found


def referenced_document(value: object) -> str | None:
    """'${data.aws_iam_policy_document.x.json}' -> 'x'."""
    if not is_expression(value):
        return None
    match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)(?:\[[^\]]+\])?\.json\}", value)
    return match.group(1) if match else None


def tool(path: Path, hint: str = "run `make setup`") -> str:
    """Absolute path of a required tool; a missing tool is a failure, never a skip."""
    import pytest

    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing: {hint} to install it", pytrace=False)
    return str(path)
