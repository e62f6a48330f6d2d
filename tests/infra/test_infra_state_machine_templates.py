"""templatefile() variables of the step_functions module versus the ${...} placeholders of the ASL files."""

from __future__ import annotations

import re

import pytest

from tests.infra import infra_model as tf

STATE_MACHINES_DIR = tf.REPO_ROOT / "state_machines"
MODULE = "modules/step_functions"
AGREED_VARIABLES = {
    "aws_region",
    "emr_application_id",
    "emr_job_role_arn",
    "lake_root",
    "code_uri",
    "lease_table_name",
    "alerts_topic_arn",
    "feature_store_backend",
    "delta_log_table_name",
    "glue_database",
    "card_token_secret_id",
    "log_group_name",
    "online_state_table",
    "bronze_lookback_hours",
    "firehose_buffering_seconds",
    "stream_retention_hours",
    "event_id_index_table",
}
# templatefile() syntax: ${name} interpolations; $${ is a literal "${".
PLACEHOLDER = re.compile(r"(?<!\$)\$\{\s*([^}]*?)\s*\}")


def template_variables() -> dict:
    value = tf.module_locals(MODULE)["template_variables"]
    return {k: v for k, v in value.items() if not k.startswith("__")}


def asl_files() -> list:
    return sorted(STATE_MACHINES_DIR.glob("*.asl.json"))


def test_module_passes_exactly_the_agreed_variables():
    variables = template_variables()
    assert set(variables) == AGREED_VARIABLES
    assert tf.literal(variables["feature_store_backend"]) == "sagemaker"
    assert "online_store_path" not in variables  # the local runner adds --online-store-path itself


def test_no_job_argument_is_empty_as_terraform_renders_the_state_machines():
    """EMR drops an empty argument, so `'--option', ''` would make the next option this one's value. Variables
    Terraform sets to a literal are rendered with it; the others come from validated, non-empty variables."""
    values = {name: tf.literal(value) for name, value in template_variables().items()}
    empty_arguments = re.compile(r"'(--[a-z-]+)', ''")
    for path in asl_files():
        text = path.read_text(encoding="utf-8")
        rendered = PLACEHOLDER.sub(
            lambda match: f"<{match.group(1)}>" if values.get(match.group(1)) is None else values[match.group(1)], text
        )
        assert not empty_arguments.findall(rendered), (
            f"{path.name} passes an empty argument on AWS after {empty_arguments.findall(rendered)}"
        )


def test_state_machines_are_rendered_with_templatefile():
    [machine] = tf.resources("aws_sfn_state_machine")
    assert (
        machine.body["definition"]
        == '${templatefile("${var.definitions_dir}/${each.key}.asl.json", local.template_variables)}'
    )


def test_template_variables_equal_the_asl_placeholders():
    files = asl_files()
    if not files:
        pytest.skip(
            "state_machines/*.asl.json do not exist yet (written by the orchestration issue); "
            "this test compares their ${...} placeholders with the templatefile() variables once they do"
        )
    variables = set(template_variables())
    used = set()
    for path in files:
        placeholders = set(PLACEHOLDER.findall(path.read_text(encoding="utf-8")))
        unknown = placeholders - variables
        assert not unknown, f"{path.name} uses placeholders templatefile() does not pass: {sorted(unknown)}"
        used |= placeholders
    assert used == variables, f"templatefile() passes variables no ASL file uses: {sorted(variables - used)}"


def test_every_state_machine_the_module_creates_has_its_asl_file():
    files = asl_files()
    if not files:
        pytest.skip("state_machines/*.asl.json do not exist yet (written by the orchestration issue)")
    [names] = [
        b for b in tf.blocks() if b.kind == "variable" and b.module == MODULE and b.name == "state_machine_names"
    ]
    expected = {tf.literal(n) for n in names.body["default"]}
    assert expected <= {p.name.removesuffix(".asl.json") for p in files}
