"""scripts/package.py: what EMR Serverless runs, built without the project's venv."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from cardfeat import cli
from tests.infra import infra_model as tf

SCRIPT = tf.REPO_ROOT / "scripts" / "package.py"


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    target = tmp_path_factory.mktemp("package") / "dist"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dist", str(target)], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target, result


def test_package_builds_code_image_context_and_manifest(dist):
    target, result = dist
    assert (target / "code" / "lakehouse.zip").is_file()
    assert (target / "image" / "Dockerfile").read_bytes() == (tf.REPO_ROOT / "infra/docker/emr/Dockerfile").read_bytes()
    assert (target / "image" / "requirements-emr.txt").is_file()
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest) >= {"entry_points", "missing_entry_points", "files", "git_commit"}
    assert "built" in result.stdout


def test_entry_points_that_exist_are_packaged_and_the_others_reported(dist):
    target, result = dist
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    expected = [
        "spark_jobs/silver_and_gold.py",
        "spark_jobs/build_datasets.py",
        "feature_store/ingest_features.py",
        "feature_store/register_feature_groups.py",
    ]
    assert sorted(manifest["entry_points"] + manifest["missing_entry_points"]) == sorted(expected)
    for entry_point in expected:
        exists = (tf.REPO_ROOT / entry_point).exists()
        assert (target / "code" / entry_point).exists() == exists
        assert (entry_point in result.stderr) == (not exists)


def test_lakehouse_zip_holds_the_packages_without_tests_or_caches(dist):
    target, _ = dist
    with zipfile.ZipFile(target / "code" / "lakehouse.zip") as archive:
        names = archive.namelist()
    assert "spark_jobs/__init__.py" in names
    assert all(name.split("/")[0] in {"spark_jobs", "feature_store"} for name in names)
    assert not [
        n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n or "test_" in n.split("/")[-1]
    ]


def test_lakehouse_zip_is_reproducible(dist, tmp_path):
    target, _ = dist
    again = tmp_path / "again"
    subprocess.run([sys.executable, str(SCRIPT), "--dist", str(again)], check=True, capture_output=True, timeout=120)
    assert (again / "code" / "lakehouse.zip").read_bytes() == (target / "code" / "lakehouse.zip").read_bytes()


def test_makefile_has_the_package_target():
    makefile = (tf.REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    # `cardfeat package` is the console script's door to scripts/package.py (cardfeat/cli.py).
    assert "package: ## Build dist/ for EMR Serverless\n\t$(VENV)/bin/cardfeat package" in makefile
    assert any(command.name == "package" and command.module == "scripts.package" for command in cli.COMMANDS)
