"""GitHub Actions workflows: actions pinned by commit, least permissions, OIDC only, the deploy flow's shape."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.infra import infra_model as tf

WORKFLOWS = tf.REPO_ROOT / ".github" / "workflows"
MY_WORKFLOWS = ("ci.yml", "deploy.yml", "destroy.yml")
# Each action's release commit, read from the action's repository tags (git rev-list -n1 <tag>).
PINNED_ACTIONS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/setup-go": ("b7ad1dad31e06c5925ef5d2fc7ad053ef454303e", "v7.0.0"),
    "actions/setup-node": ("820762786026740c76f36085b0efc47a31fe5020", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "hashicorp/setup-terraform": ("dfe3c3f87815947d99a8997f908cb6525fc44e9e", "v4.0.1"),
}
USES = re.compile(r"^\s*-?\s*uses:\s*(?P<action>[^@\s]+)@(?P<ref>\S+)(?:\s*#\s*(?P<comment>\S+))?\s*$")
READ_ONLY = {"contents": "read"}


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def triggers(workflow: dict) -> dict:
    # PyYAML reads the bare key `on` as True.
    return workflow.get("on", workflow.get(True))


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))


def test_my_workflows_exist():
    assert set(MY_WORKFLOWS) <= set(all_workflows())


@pytest.mark.parametrize("name", all_workflows())
def test_every_action_is_pinned_to_a_commit_with_its_version(name):
    for number, line in enumerate((WORKFLOWS / name).read_text(encoding="utf-8").splitlines(), start=1):
        match = USES.match(line)
        if not match or match["action"].startswith("./"):
            continue
        assert re.fullmatch(r"[0-9a-f]{40}", match["ref"]), f"{name}:{number}: pin {match['action']} to a commit sha"
        assert match["comment"] and re.fullmatch(r"v\d+\.\d+\.\d+", match["comment"]), f"{name}:{number}: add # vX.Y.Z"
        if match["action"] in PINNED_ACTIONS:
            assert (match["ref"], match["comment"]) == PINNED_ACTIONS[match["action"]], f"{name}:{number}"


@pytest.mark.parametrize("name", all_workflows())
def test_permissions_are_declared_and_least(name):
    workflow = load(name)
    assert workflow.get("permissions") == {}, f"{name}: start from `permissions: {{}}` at the top"
    assert "pull_request_target" not in (triggers(workflow) or {}), f"{name}: pull_request_target runs untrusted code"
    for job_name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name}/{job_name}: declare the job's permissions"
        extra = {k: v for k, v in permissions.items() if k != "id-token"}
        assert all(v in {"read", "none"} for v in extra.values()), f"{name}/{job_name}: only read access"
        assert set(extra) <= set(READ_ONLY), f"{name}/{job_name}: {extra}"
        uses_aws = any("configure-aws-credentials" in str(step.get("uses", "")) for step in job.get("steps", []))
        assert (permissions.get("id-token") == "write") == uses_aws, (
            f"{name}/{job_name}: id-token only to assume a role"
        )


@pytest.mark.parametrize("name", MY_WORKFLOWS)
def test_no_stored_aws_keys(name):
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text and "secrets." not in text


@pytest.mark.parametrize("name", MY_WORKFLOWS)
def test_checkouts_do_not_persist_credentials(name):
    for job in load(name)["jobs"].values():
        for step in job.get("steps", []):
            if "actions/checkout" in str(step.get("uses", "")):
                assert step.get("with", {}).get("persist-credentials") is False


def test_ci_runs_make_setup_and_make_test():
    steps = load("ci.yml")["jobs"]["test"]["steps"]
    runs = [step.get("run") for step in steps]
    assert "make setup" in runs and "make test" in runs
    assert set(triggers(load("ci.yml"))) == {"pull_request", "push"}


def test_deploy_plans_pull_requests_with_the_plan_role_and_keeps_the_plan_briefly():
    plan = load("deploy.yml")["jobs"]["plan"]
    assert "pull_request" in plan["if"]
    assert "environment" not in plan, "an environment would change the OIDC subject away from pull_request"
    roles = [s["with"]["role-to-assume"] for s in plan["steps"] if "configure-aws-credentials" in str(s.get("uses"))]
    assert roles == ["${{ vars[format('{0}_AWS_PLAN_ROLE_ARN', matrix.prefix)] }}"]
    uploads = [s for s in plan["steps"] if "upload-artifact" in str(s.get("uses"))]
    assert uploads and all(1 <= int(s["with"]["retention-days"]) <= 7 for s in uploads)


def test_deploy_runs_behind_environments_in_order():
    workflow = load("deploy.yml")
    deploy = workflow["jobs"]["deploy"]
    assert deploy["environment"] == "${{ matrix.environment }}"
    assert deploy["strategy"]["max-parallel"] == 1 and deploy["strategy"]["fail-fast"] is True
    assert "pull_request" in deploy["if"]  # github.event_name != 'pull_request'
    assert deploy["concurrency"]["cancel-in-progress"] is False
    select = workflow["jobs"]["stacks"]["steps"][0]["run"]
    assert '"$(entry prod production PROD)"' in select and '"$(entry dev dev DEV)"' in select
    names = [step.get("name", step.get("uses", "")) for step in deploy["steps"]]
    order = [
        "Create the artifact stores",
        "Build, check and push the EMR image",
        "Upload the code to s3://<artifacts>/code/<sha>/",
        "terraform apply",
        "Store the card-token key once",
        "Register the feature groups",
    ]
    assert [n for n in names if n in order] == order


def test_deploy_never_prints_or_passes_the_card_token_key_on_the_command_line():
    step = next(
        s for s in load("deploy.yml")["jobs"]["deploy"]["steps"] if s.get("name") == "Store the card-token key once"
    )
    assert "file://" in step["run"] and "umask 077" in step["run"] and "get-secret-value" not in step["run"]


def test_destroy_is_manual_and_typed():
    workflow = load("destroy.yml")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    inputs = triggers(workflow)["workflow_dispatch"]["inputs"]
    assert inputs["confirm"]["required"] is True
    first_step = workflow["jobs"]["destroy"]["steps"][0]
    assert first_step["name"] == "Check the confirmation" and "destroy-$STACK" in first_step["run"]
