"""Render the Inputs/Outputs tables of every Terraform module README (a small terraform-docs).

    python infra/terraform/tfdocs.py          # rewrite the tables between the markers
    python infra/terraform/tfdocs.py --check  # exit 1 when a README is out of date (tests/infra runs this)

The tables sit between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`; the prose above them is written by hand.
Needs python-hcl2 (in requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import hcl2

TERRAFORM_ROOT = Path(__file__).resolve().parent
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"


def unquote(value: object) -> str:
    """python-hcl2 keeps string literals quoted and expressions as ${...}; show both the way HCL spells them."""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    heredoc = re.fullmatch(r"<<-?(\w+)\n(.*)\n\s*\1", text, flags=re.S)
    if heredoc:
        return heredoc.group(2)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    return text


def cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def blocks(path: Path, kind: str) -> list[tuple[str, dict]]:
    if not path.exists():
        return []
    parsed = hcl2.load(path.open(encoding="utf-8"))
    found = []
    for entry in parsed.get(kind, []):
        for name, body in entry.items():
            found.append((unquote(name), body))
    return found


def render(module_dir: Path) -> str:
    lines = ["## Inputs", ""]
    variables = blocks(module_dir / "variables.tf", "variable")
    if variables:
        lines += ["| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
        for name, body in variables:
            has_default = "default" in body
            default = "" if not has_default else f"`{cell(unquote(repr_default(body['default'])))}`"
            description = cell(unquote(body.get("description", "")))
            type_ = cell(unquote(body.get("type", "any")))
            lines.append(f"| `{name}` | {description} | `{type_}` | {default} | {'no' if has_default else 'yes'} |")
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    outputs = blocks(module_dir / "outputs.tf", "output")
    if outputs:
        lines += ["| Name | Description |", "|---|---|"]
        lines += [f"| `{name}` | {cell(unquote(body.get('description', '')))} |" for name, body in outputs]
    else:
        lines.append("No outputs.")
    return "\n".join(lines)


def repr_default(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        text = json.dumps(strip_markers(value))
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def strip_markers(value: object) -> object:
    if isinstance(value, dict):
        return {unquote(k): strip_markers(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [strip_markers(v) for v in value]
    return unquote(value) if isinstance(value, str) else value


def module_dirs() -> list[Path]:
    roots = [TERRAFORM_ROOT / "bootstrap", TERRAFORM_ROOT / "envs" / "dev", TERRAFORM_ROOT / "envs" / "prod"]
    return sorted(p for p in (TERRAFORM_ROOT / "modules").iterdir() if p.is_dir()) + roots


def updated_readme(module_dir: Path) -> tuple[str, str]:
    readme = module_dir / "README.md"
    current = readme.read_text(encoding="utf-8") if readme.exists() else f"# {module_dir.name}\n\n{BEGIN}\n{END}\n"
    if BEGIN not in current or END not in current:
        current = current.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return current, f"{head}{BEGIN}\n{render(module_dir)}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report READMEs whose tables are out of date")
    args = parser.parse_args()
    stale = []
    for module_dir in module_dirs():
        current, wanted = updated_readme(module_dir)
        if current != wanted:
            stale.append(module_dir.relative_to(TERRAFORM_ROOT))
            if not args.check:
                (module_dir / "README.md").write_text(wanted, encoding="utf-8")
    if args.check and stale:
        print("out of date (run `python infra/terraform/tfdocs.py`):", *stale, sep="\n  ")
        return 1
    for path in stale:
        print(f"updated {path}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
