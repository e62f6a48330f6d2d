"""Layout and hygiene of the Terraform code: parses, four-file modules, typed and described variables."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.infra import infra_model as tf

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")


@pytest.mark.parametrize("path", tf.tf_files(), ids=lambda p: p.relative_to(tf.TERRAFORM_ROOT).as_posix())
def test_every_tf_file_parses(path):
    assert isinstance(tf.parsed(path), dict)


def test_the_expected_modules_exist():
    expected = {
        "s3_datalake",
        "kinesis_firehose",
        "network",
        "emr_serverless",
        "glue",
        "dynamodb",
        "sagemaker_featurestore",
        "step_functions",
        "eventbridge",
        "monitoring",
        "github_oidc",
    }
    assert expected <= {path.name for path in tf.module_dirs()}


@pytest.mark.parametrize("module_dir", tf.module_dirs(), ids=lambda p: p.name)
def test_every_module_has_the_four_files_and_a_readme(module_dir):
    missing = [name for name in MODULE_FILES if not (module_dir / name).is_file()]
    assert not missing, f"{module_dir.name} lacks {missing}"


@pytest.mark.parametrize("root", tf.ROOT_CONFIGS, ids=lambda p: p.relative_to(tf.TERRAFORM_ROOT).as_posix())
def test_every_root_has_its_files_and_a_tfvars_example(root):
    missing = [name for name in (*MODULE_FILES, "terraform.tfvars.example") if not (root / name).is_file()]
    assert not missing, f"{root.name} lacks {missing}"


def test_every_variable_has_a_type_and_a_description():
    problems = []
    for block in tf.blocks():
        if block.kind != "variable":
            continue
        if "type" not in block.body:
            problems.append(f"{block.address}: no type")
        description = tf.template(block.body.get("description", ""))
        if not description or not description.strip():
            problems.append(f"{block.address}: no description")
    assert not problems, "\n".join(problems)


def test_every_output_has_a_description():
    problems = [
        block.address
        for block in tf.blocks()
        if block.kind == "output" and not (tf.template(block.body.get("description", "")) or "").strip()
    ]
    assert not problems, f"outputs without description: {problems}"


def test_variables_that_take_names_arns_or_numbers_are_validated():
    """Free-form inputs (tags, booleans, maps of settings) may go unvalidated; identifiers and limits may not."""
    unvalidated = []
    for block in tf.blocks():
        if block.kind != "variable" or "validation" in block.body:
            continue
        type_ = str(block.body.get("type"))
        name = block.name
        if type_ in {"bool", "${bool}"} or name in {"tags", "state_machines_dir", "alarm_email"} or "object" in type_:
            continue
        if name.endswith(
            ("_arn", "_arns", "_id", "_ids", "_name", "_prefix", "_days", "_cidr", "_cidrs", "_region")
        ) or type_ in {
            "number",
            "${number}",
        }:
            unvalidated.append(block.address)
    assert not unvalidated, f"add a validation block to: {unvalidated}"


def test_single_resources_of_a_kind_are_named_this():
    problems = []
    for module_dir in tf.module_dirs():
        module = module_dir.relative_to(tf.TERRAFORM_ROOT).as_posix()
        kinds = Counter(block.type for block in tf.resources() if block.module == module)
        for block in tf.resources():
            if block.module == module and kinds[block.type] == 1 and block.name != "this":
                problems.append(f"{block.address} is the only {block.type} of the module: name it `this`")
    assert not problems, "\n".join(problems)


def test_versions_pin_terraform_and_the_aws_provider():
    for path in [*(d / "versions.tf" for d in tf.module_dirs()), *(r / "versions.tf" for r in tf.ROOT_CONFIGS)]:
        terraform = tf.parsed(path)["terraform"][0]
        assert tf.literal(terraform["required_version"]) == ">= 1.10", path
        aws = terraform["required_providers"][0]["aws"]
        assert tf.literal(aws["source"]) == "hashicorp/aws", path
        assert tf.literal(aws["version"]) == ">= 6.0, < 7.0", path


def _floor_table() -> list[tuple[list[str], str, list[str]]]:
    """infra/terraform/PROVIDER_FLOOR.md: (names used, first major.minor or major, module folders) per row."""
    text = (tf.TERRAFORM_ROOT / "PROVIDER_FLOOR.md").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1], re.findall(r"`(modules/[a-z_]+)`", cells[2])))
    return rows


def test_the_provider_floor_is_the_newest_argument_used():
    """The floor in every versions.tf is the highest "first in" version of PROVIDER_FLOOR.md, whose rows are all
    still used where they say; data.aws_region is read through `region` (6.0), never the deprecated `name`."""
    rows = _floor_table()
    assert rows, "PROVIDER_FLOOR.md has no table"
    floor = max((tuple(int(p) for p in first.split(".")) for _, first, _ in rows))
    assert floor == (6, 0)
    for path in [*(d / "versions.tf" for d in tf.module_dirs()), *(r / "versions.tf" for r in tf.ROOT_CONFIGS)]:
        aws = tf.parsed(path)["terraform"][0]["required_providers"][0]["aws"]
        assert tf.literal(aws["version"]) == f">= {floor[0]}.{floor[1]}, < {floor[0] + 1}.0", path
    for names, _, modules in rows:
        assert modules, f"row {names} names no module"
        for module in modules:
            code = "\n".join(p.read_text(encoding="utf-8") for p in (tf.TERRAFORM_ROOT / module).glob("*.tf"))
            for name in names:
                assert name.split(".")[-1] in code, f"PROVIDER_FLOOR.md: {name} is no longer used in {module}"
    code = "\n".join(p.read_text(encoding="utf-8") for p in tf.tf_files())
    assert "data.aws_region.current.region" in code
    assert not re.search(r"data\.aws_region\.\w+\.name\b", code), "aws_region.name is deprecated since 6.0"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_env_roots_use_the_s3_backend_with_lockfile(env):
    terraform = tf.parsed(tf.TERRAFORM_ROOT / "envs" / env / "versions.tf")["terraform"][0]
    backend = terraform["backend"][0]['"s3"']
    assert backend["use_lockfile"] is True
    assert backend["encrypt"] is True
    assert tf.literal(backend["key"]) == f"envs/{env}/terraform.tfstate"
    # Partial configuration: nothing account-specific in the repository.
    assert "bucket" not in backend and "dynamodb_table" not in backend


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_env_roots_are_thin(env):
    document = tf.parsed(tf.TERRAFORM_ROOT / "envs" / env / "main.tf")
    assert "resource" not in document, "env roots call modules only"
    assert [tf.name_of(name) for entry in document["module"] for name in entry] == ["platform"]


def test_no_secret_values_in_terraform():
    secret_like = re.compile(r"(secret_string|password|access_key|secret_key)\s*=", re.IGNORECASE)
    offenders = [str(p) for p in tf.tf_files() if secret_like.search(p.read_text(encoding="utf-8"))]
    assert not offenders, f"secret values must never be in Terraform code: {offenders}"


def test_tfvars_examples_hold_no_secrets():
    secret_setting = re.compile(r"^\s*\w*(secret|password|token|access_key)\w*\s*=", re.IGNORECASE | re.MULTILINE)
    for example in tf.TERRAFORM_ROOT.rglob("terraform.tfvars.example"):
        assert not secret_setting.search(example.read_text(encoding="utf-8")), example


def test_tfvars_examples_start_with_the_schedules_off_as_the_deploy_order_says():
    """docs/deploy.md: the first deploy runs with schedules_enabled = false (the card-token key's value and the
    feature groups come after terraform apply; a scheduled run before them fails and pages)."""
    deploy = (tf.REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "First deploy of a stack with `schedules_enabled = false`" in deploy
    setting = re.compile(r"^\s*schedules_enabled\s*=\s*(\w+)", re.MULTILINE)
    examples = sorted((tf.TERRAFORM_ROOT / "envs").glob("*/terraform.tfvars.example"))
    assert examples
    for example in examples:
        values = setting.findall(example.read_text(encoding="utf-8"))
        assert values == ["false"], f"{example.relative_to(tf.REPO_ROOT)} sets schedules_enabled = {values}"


# What docs/runbook.md and docs/deploy.md tell the on-call engineer and the deployer to read from `terraform output`.
OPERATOR_OUTPUTS = {
    "lake_root",
    "code_uri",
    "artifacts_bucket_name",
    "emr_application_id",
    "emr_job_role_arn",
    "lease_table_name",
    "delta_log_table_name",
    "log_group_names",
    "state_machine_arns",
    "alerts_topic_arn",
    "card_token_secret_name",
    "online_state_table_name",
    "event_id_index_table_name",
    "feature_serving",
}


def outputs_of(directory: str) -> dict[str, dict]:
    return {b.name: b.body for b in tf.blocks() if b.kind == "output" and b.module == directory}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_env_roots_output_what_operators_are_told_to_use(env):
    outputs = outputs_of(f"envs/{env}")
    missing = OPERATOR_OUTPUTS - set(outputs)
    assert not missing, f"envs/{env} lacks outputs {sorted(missing)}"
    platform = outputs_of("modules/platform")
    for name, body in outputs.items():
        assert body["value"] == f"${{module.platform.{name}}}", f"envs/{env}: output {name} passes the platform's"
        assert name in platform, f"modules/platform has no output {name}"


def test_env_roots_have_the_same_outputs():
    assert set(outputs_of("envs/dev")) == set(outputs_of("envs/prod"))


def test_bootstrap_state_is_per_account():
    """A partial local backend: the state path is given per account at init, never one file shared by accounts."""
    terraform = tf.parsed(tf.TERRAFORM_ROOT / "bootstrap" / "versions.tf")["terraform"][0]
    [backend] = terraform["backend"]
    assert set(backend) == {'"local"'}, "the bootstrap starts with local state (it creates the state bucket)"
    assert "path" not in backend['"local"'], "the path is per account: -backend-config=path=state/<account>/..."


def test_bootstrap_lets_the_deploy_role_into_the_allowed_regions_and_home_region():
    [call] = [b for b in tf.blocks() if b.kind == "module" and b.module == "bootstrap" and b.name == "github_oidc"]
    assert call.body["allowed_regions"] == "${local.allowed_regions}"
    allowed = tf.module_locals("bootstrap")["allowed_regions"]
    assert "var.aws_region" in allowed and "var.allowed_regions" in allowed, allowed
