"""docs/runbook.md against the code and the Terraform it describes: the quarantine reasons, the failure-drill
points, the `terraform output` values, the links between its sections. (That every alarm links to an existing
section is tests/infra/test_infra_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spark_jobs import bronze_contract

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
RUNBOOK = (DOCS / "runbook.md").read_text(encoding="utf-8")
ENV_ROOTS = sorted((REPO_ROOT / "infra" / "terraform" / "envs").iterdir())


def section(markdown: str, heading: str) -> str:
    """The text under the heading line starting with `heading`, up to the next heading of any level."""
    start = next(match.end() for match in re.finditer(r"^#+ (.*)$", markdown, re.M) if match[1].startswith(heading))
    following = re.search(r"^#+ ", markdown[start:], re.M)
    return markdown[start : start + following.start()] if following else markdown[start:]


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    outside_code = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    return {github_anchor(match[1].strip()) for match in re.finditer(r"^#+ (.*)$", outside_code, re.M)}


def test_the_quarantine_reasons_listed_are_the_pipelines():
    listed = section(RUNBOOK, "`<prefix>-quarantine-rate`")
    bullets = re.findall(r"^- (.*?):", listed, re.M)
    named = {reason for bullet in bullets for reason in re.findall(r"`([a-z_]+)`", bullet)}
    silver = (REPO_ROOT / "spark_jobs" / "silver.py").read_text(encoding="utf-8")
    silver_reasons = set(re.findall(r'F\.lit\("([a-z_]+)"\)\.alias\("reason"\)', silver))
    assert silver_reasons == {"conflicting_duplicate"}  # the pattern still finds silver's own (file reasons are
    # the contract's: unreadable_file, file_too_large)
    assert named == set(bronze_contract.QUARANTINE_REASONS) | silver_reasons


def test_the_failure_drill_points_listed_are_the_codes():
    code = "".join(
        path.read_text(encoding="utf-8")
        for package in ("spark_jobs", "feature_store")
        for path in (REPO_ROOT / package).rglob("*.py")
    )
    points = set(re.findall(r'fail_point\("([a-z_]+)"\)', code))
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", section(RUNBOOK, "Failure drills"), re.M))
    assert points and listed == points
    assert "LAKEHOUSE_FAIL_AT" in section(RUNBOOK, "Failure drills")


@pytest.mark.parametrize("env_root", ENV_ROOTS, ids=lambda path: path.name)
def test_every_terraform_output_the_runbook_names_exists(env_root):
    outputs = set(re.findall(r'^output "([a-z0-9_]+)"', (env_root / "outputs.tf").read_text(encoding="utf-8"), re.M))
    named = set(re.findall(r"terraform output(?: -raw| -json)* ([a-z][a-z0-9_]*)", RUNBOOK))
    assert {"lake_root", "lease_table_name", "delta_log_table_name", "emr_job_role_arn", "log_group_names"} <= named
    assert not named - outputs, f"{env_root.name}/outputs.tf lacks {sorted(named - outputs)}"


def test_links_between_sections_and_docs_land_on_a_heading():
    problems = []
    for doc in DOCS.glob("*.md"):
        text = doc.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([a-z_]*\.md)?#([a-z0-9_-]+)\)", text):
            linked = (DOCS / target).read_text(encoding="utf-8") if target else text
            if anchor not in anchors(linked):
                problems.append(f"{doc.name}: #{anchor} ({target or 'same file'}) is not a heading")
    assert not problems, "\n".join(problems)


def test_every_terraform_output_the_deploy_guide_names_exists():
    """docs/deploy.md reads the bootstrap's outputs and the env roots'; each name exists in one of them."""
    terraform = REPO_ROOT / "infra" / "terraform"
    outputs = set()
    for root in [terraform / "bootstrap", *ENV_ROOTS]:
        outputs |= set(re.findall(r'^output "([a-z0-9_]+)"', (root / "outputs.tf").read_text(encoding="utf-8"), re.M))
    guide = (DOCS / "deploy.md").read_text(encoding="utf-8")
    named = set(re.findall(r"terraform(?: -chdir=\S+)? output(?: -raw| -json)* ([a-z][a-z0-9_]*)", guide))
    assert {"backend_config", "card_token_secret_name", "state_machine_arns"} <= named
    assert not named - outputs, f"no root outputs {sorted(named - outputs)}"
