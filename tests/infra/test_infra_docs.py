"""Module READMEs: generated sections current (terraform-docs) and a hand-written usage example that fits."""

from __future__ import annotations

import io
import re
import subprocess

import hcl2
import pytest

from tests.infra import infra_model as tf

CONFIG = tf.TERRAFORM_ROOT / ".terraform-docs.yml"
DOCUMENTED_DIRS = [*tf.module_dirs(), *tf.ROOT_CONFIGS]
GENERATED_SECTIONS = ("## Requirements", "## Providers", "## Inputs", "## Outputs")
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"
RUNBOOK = tf.REPO_ROOT / "docs" / "runbook.md"


def dir_id(path) -> str:
    return path.relative_to(tf.TERRAFORM_ROOT).as_posix()


@pytest.mark.parametrize("directory", DOCUMENTED_DIRS, ids=dir_id)
def test_readme_is_what_terraform_docs_generates(directory):
    terraform_docs = tf.tool(tf.TOOLS_BIN / "terraform-docs")
    result = subprocess.run(
        [terraform_docs, "-c", str(CONFIG), "--output-check", str(directory)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"run `make tfdocs`:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("directory", DOCUMENTED_DIRS, ids=dir_id)
def test_readme_has_the_generated_sections_between_the_markers(directory):
    text = (directory / "README.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{dir_id(directory)}: one pair of markers"
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0]
    missing = [section for section in GENERATED_SECTIONS if section not in generated]
    assert not missing, f"{dir_id(directory)}/README.md lacks {missing}"


def usage_calls(module_dir) -> list[dict]:
    """The `module` blocks of the README's usage section that call this module."""
    text = (module_dir / "README.md").read_text(encoding="utf-8").split(BEGIN, 1)[0]
    assert "## Usage" in text, f"{module_dir.name}/README.md: no `## Usage` section above the generated part"
    usage = text.split("## Usage", 1)[1]
    calls = []
    for snippet in re.findall(r"```hcl\n(.*?)```", usage, flags=re.S):
        for entry in hcl2.load(io.StringIO(snippet)).get("module", []):
            for body in entry.values():
                if str(tf.literal(body.get("source"))).rstrip("/").endswith("/" + module_dir.name):
                    calls.append(body)
    return calls


@pytest.mark.parametrize("module_dir", tf.module_dirs(), ids=lambda p: p.name)
def test_usage_example_passes_every_required_input_and_no_unknown_one(module_dir):
    variables = {b.name: b for b in tf.blocks() if b.kind == "variable" and b.module == dir_id(module_dir)}
    required = {name for name, block in variables.items() if "default" not in block.body}
    calls = usage_calls(module_dir)
    assert calls, (
        f"{module_dir.name}/README.md: the usage example must call the module (source ending /{module_dir.name})"
    )
    for call in calls:
        arguments = {k for k in call if not k.startswith("__")} - {"source", "providers", "depends_on"}
        assert not arguments - set(variables), (
            f"{module_dir.name}: usage passes unknown inputs {arguments - set(variables)}"
        )
        assert not required - arguments, f"{module_dir.name}: usage lacks required inputs {required - arguments}"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def test_every_alarm_links_to_its_runbook_section():
    runbook = RUNBOOK.read_text(encoding="utf-8")
    anchors = {github_anchor(line.lstrip("#").strip()) for line in runbook.splitlines() if line.startswith("#")}
    problems = []
    for alarm in tf.resources("aws_cloudwatch_metric_alarm"):
        description = str(alarm.body.get("alarm_description"))
        if "#prefix-${each.key}" in description:  # one alarm per key of the for_each map: one section per key
            for key in _for_each_keys(alarm):
                if f"prefix-{key}" not in anchors:
                    problems.append(f"{alarm.address}[{key}]: docs/runbook.md has no section #prefix-{key}")
            continue
        links = re.findall(r"\$\{var\.runbook_url\}#([a-z0-9_-]+)", description)
        if len(links) != 1:
            problems.append(f"{alarm.address}: the description must end with 'Runbook: ${{var.runbook_url}}#<section>'")
        elif links[0] not in anchors:
            problems.append(f"{alarm.address}: docs/runbook.md has no section #{links[0]}")
    assert not problems, "\n".join(problems)


def _for_each_keys(alarm) -> list[str]:
    """The keys of the local map an alarm's for_each iterates (`for_each = local.<name>`)."""
    match = re.fullmatch(r"\$\{local\.(\w+)\}", str(alarm.body.get("for_each")))
    assert match, f"{alarm.address}: its description uses each.key but for_each is not a local map"
    keys = [str(tf.unquote(key)) for key in tf.module_locals(alarm.module)[match.group(1)]]
    assert keys, f"{alarm.address}: local.{match.group(1)} has no keys"
    return keys
