"""checkov over infra/terraform: zero failed checks, and every skip inline, reasoned, listed and needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.infra import infra_model as tf

SKIPS_MD = tf.TERRAFORM_ROOT / "CHECKOV_SKIPS.md"
INLINE_SKIP = re.compile(r"#\s*checkov:skip=(?P<check>CKV2?_[A-Z0-9]+_\d+)(?::(?P<reason>.*))?$")
MD_ROW = re.compile(
    r"^\|\s*`(?P<check>CKV2?_[A-Z0-9]+_\d+)`\s*\|\s*`(?P<file>[^`]+)`\s*\|\s*`(?P<resource>[^`]+)`\s*\|(?P<reason>.+)\|\s*$"
)


def run_checkov(directory) -> dict:
    checkov = tf.tool(tf.TOOLS_VENV_BIN / "checkov")
    env = {**os.environ, "LOG_LEVEL": "ERROR", "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run(
        [checkov, "-d", str(directory), "--framework", "terraform", "--compact", "-o", "json", "--skip-download"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert terraform, f"no terraform report from checkov: {result.stdout[:500]}"
    return terraform[0]


def key(check: dict) -> tuple[str, str, str]:
    """(check id, file under infra/terraform, resource as written in that file) - module instances collapse."""
    local_resource = ".".join(check["resource"].split(".")[-2:])
    return (check["check_id"], check["file_path"].lstrip("/"), local_resource)


@pytest.fixture(scope="module")
def report() -> dict:
    return run_checkov(tf.TERRAFORM_ROOT)


@pytest.fixture(scope="module")
def documented() -> dict[tuple[str, str, str], str]:
    assert SKIPS_MD.exists(), f"{SKIPS_MD} is missing"
    rows = {}
    for line in SKIPS_MD.read_text(encoding="utf-8").splitlines():
        match = MD_ROW.match(line)
        if match:
            rows[(match["check"], match["file"], match["resource"])] = match["reason"].strip()
    return rows


def inline_skips() -> list[tuple[str, str, str]]:
    found = []
    for path in tf.tf_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = INLINE_SKIP.search(line.strip())
            if match:
                found.append(
                    (match["check"], path.relative_to(tf.TERRAFORM_ROOT).as_posix(), (match["reason"] or "").strip())
                )
    return found


def test_checkov_reports_no_failed_check(report):
    failed = sorted({key(check) for check in report["results"].get("failed_checks", [])})
    assert report["summary"]["parsing_errors"] == 0
    assert not failed, "checkov failures:\n" + "\n".join(map(str, failed))
    print(f"checkov summary: {report['summary']}")


def test_every_inline_skip_gives_a_reason():
    short = [(check, file) for check, file, reason in inline_skips() if len(reason) < 20]
    assert not short, f"skips without a real reason (#checkov:skip=ID:reason): {short}"


def test_skips_are_listed_in_checkov_skips_md(report, documented):
    skipped = {key(check) for check in report["results"].get("skipped_checks", [])}
    assert skipped == set(documented), (
        f"in the code but not in {SKIPS_MD.name}: {sorted(skipped - set(documented))}\n"
        f"in {SKIPS_MD.name} but not skipped in the code: {sorted(set(documented) - skipped)}"
    )
    inline = {(check, file) for check, file, _ in inline_skips()}
    assert inline == {(check, file) for check, file, _ in documented}
    assert all(len(reason) >= 20 for reason in documented.values()), "every row needs its reason"


def test_every_skip_is_needed(tmp_path, documented):
    """Without the skip comments checkov fails exactly the documented checks: no skip hides nothing."""
    copy = tmp_path / "terraform"
    shutil.copytree(tf.TERRAFORM_ROOT, copy, ignore=shutil.ignore_patterns(".terraform", "*.md"))
    for path in copy.rglob("*.tf"):
        text = path.read_text(encoding="utf-8")
        path.write_text("\n".join(line for line in text.splitlines() if not INLINE_SKIP.search(line.strip())) + "\n")
    unskipped = run_checkov(copy)
    failed = {key(check) for check in unskipped["results"].get("failed_checks", [])}
    assert failed == set(documented), (
        f"skips that hide no failure (remove them): {sorted(set(documented) - failed)}\n"
        f"failures not covered: {sorted(failed - set(documented))}"
    )
