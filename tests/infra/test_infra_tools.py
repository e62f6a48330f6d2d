"""Linters over the infrastructure code: hadolint, actionlint, tofu fmt, tflint (tools from `make setup`)."""

from __future__ import annotations

import os
import subprocess

from tests.infra import infra_model as tf

DOCKERFILE = tf.REPO_ROOT / "infra" / "docker" / "emr" / "Dockerfile"
WORKFLOWS = tf.REPO_ROOT / ".github" / "workflows"


def run(command: list[str], cwd=tf.REPO_ROOT, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, check=False, capture_output=True, text=True, timeout=300, env=env)


def test_hadolint_is_clean_on_the_emr_dockerfile():
    result = run([tf.tool(tf.TOOLS_VENV_BIN / "hadolint"), str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_is_clean_on_the_workflows():
    workflows = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    assert workflows, "no workflows found"
    shellcheck = tf.tool(tf.TOOLS_VENV_BIN / "shellcheck")
    result = run([tf.tool(tf.TOOLS_BIN / "actionlint"), "-no-color", "-shellcheck", shellcheck, *workflows])
    assert result.returncode == 0, result.stdout + result.stderr


def test_tofu_fmt_is_clean():
    # An empty CLI config: formatting needs no providers and no registry.
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull}
    result = run(
        [tf.tool(tf.TOOLS_BIN / "tofu"), "fmt", "-check", "-diff", "-recursive", str(tf.TERRAFORM_ROOT)], env=env
    )
    assert result.returncode == 0, (
        "run `.tools/bin/tofu fmt -recursive infra/terraform`:\n" + result.stdout + result.stderr
    )


def test_tflint_is_clean():
    config = tf.TERRAFORM_ROOT / ".tflint.hcl"
    result = run([tf.tool(tf.TOOLS_BIN / "tflint"), "--recursive", "--config", str(config)], cwd=tf.TERRAFORM_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
