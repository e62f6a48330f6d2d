"""Packaging for EMR Serverless (the library of scripts/package.py, whose docstring describes dist/):
the job entry points at their repository paths, a reproducible lakehouse.zip of the shipped packages with
spark_jobs/BUILD_INFO.json, and the EMR image's build context. Standard library only, so CI runs it without
the project's venv."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = (
    "spark_jobs/silver_and_gold.py",
    "spark_jobs/build_datasets.py",
    "feature_store/ingest_features.py",
    "feature_store/register_feature_groups.py",
)
PACKAGES = ("spark_jobs", "feature_store")
# Reference data the jobs read by path on EMR: the state machines pass
# --fx-rates ${code_uri}/spark_jobs/reference_data/fx_rates.csv.
REFERENCE_FILES = ("spark_jobs/reference_data/fx_rates.csv",)
IMAGE_FILES = {"infra/docker/emr/Dockerfile": "Dockerfile", "requirements-emr.txt": "requirements-emr.txt"}
EXCLUDED_DIRS = {"__pycache__", "tests", ".pytest_cache", ".ruff_cache", ".hypothesis"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
BUILD_INFO_NAME = "BUILD_INFO.json"  # spark_jobs.run_trace.BUILD_INFO_NAME (this script imports nothing of ours)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_files(package: str) -> list[Path]:
    """Every file of a package except tests and caches, in a stable order."""
    root = REPO_ROOT / package
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(REPO_ROOT)
        if not path.is_file() or EXCLUDED_DIRS.intersection(relative.parts) or path.suffix in EXCLUDED_SUFFIXES:
            continue
        if path.name.startswith("test_") or path.name == "conftest.py":
            continue
        files.append(path)
    return files


def build_zip(target: Path, packages: list[str], build_info: dict | None = None) -> list[str]:
    """The packages' files; `build_info` (the git commit) as spark_jobs/BUILD_INFO.json when spark_jobs is in."""
    contents = {
        path.relative_to(REPO_ROOT).as_posix(): path.read_bytes()
        for package in packages
        for path in package_files(package)
    }
    if build_info is not None and "spark_jobs" in packages:
        contents[f"spark_jobs/{BUILD_INFO_NAME}"] = (json.dumps(build_info, sort_keys=True) + "\n").encode()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return list(contents)


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def build(dist: Path) -> dict:
    if dist.exists():
        shutil.rmtree(dist)
    code_dir, image_dir = dist / "code", dist / "image"
    code_dir.mkdir(parents=True)
    image_dir.mkdir(parents=True)

    entry_points, missing = [], []
    for entry_point in ENTRY_POINTS:
        source = REPO_ROOT / entry_point
        if not source.exists():
            missing.append(entry_point)
            continue
        target = code_dir / entry_point
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        entry_points.append(entry_point)

    for reference in REFERENCE_FILES:
        target = code_dir / reference
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / reference, target)

    packages = [package for package in PACKAGES if (REPO_ROOT / package / "__init__.py").exists()]
    if not packages:
        raise SystemExit(
            f"none of {', '.join(PACKAGES)} is a package (no __init__.py): nothing to put in lakehouse.zip"
        )
    zip_members = build_zip(code_dir / "lakehouse.zip", packages, {"git_commit": git_commit()})

    for source, name in IMAGE_FILES.items():
        shutil.copyfile(REPO_ROOT / source, image_dir / name)

    files = {path.relative_to(dist).as_posix(): sha256(path) for path in sorted(dist.rglob("*")) if path.is_file()}
    manifest = {
        "git_commit": git_commit(),
        "entry_points": entry_points,
        "reference_files": list(REFERENCE_FILES),
        "missing_entry_points": missing,
        "packages": packages,
        "missing_packages": [package for package in PACKAGES if package not in packages],
        "lakehouse_zip_members": zip_members,
        "files": files,
    }
    (dist / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
