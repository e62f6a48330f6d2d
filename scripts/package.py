"""Build dist/ for EMR Serverless: the job entry points, lakehouse.zip and the custom image's build context.

    python scripts/package.py [--dist DIR]       (make package)

dist/code/ is uploaded as is to s3://<artifacts bucket>/code/<git sha>/ by the deploy workflow, so the state
machines find `<code_uri>/spark_jobs/silver_and_gold.py`, `<code_uri>/lakehouse.zip` and so on:

    dist/code/spark_jobs/silver_and_gold.py      entry points, at their repository paths
    dist/code/spark_jobs/build_datasets.py
    dist/code/feature_store/ingest_features.py
    dist/code/feature_store/register_feature_groups.py
    dist/code/lakehouse.zip                      packages spark_jobs/ and feature_store/ (--py-files), and
                                                 spark_jobs/BUILD_INFO.json: the git commit, which every run
                                                 report records as its code_version (spark_jobs/run_trace.py)
    dist/image/Dockerfile                        build context of infra/docker/emr/Dockerfile
    dist/image/requirements-emr.txt
    dist/manifest.json                           every file with its sha256, and the git commit

Entry points not yet in the repository are reported and skipped. The zip is reproducible: sorted entries,
fixed timestamps, no tests or caches. Standard library only, so CI runs it without the project's venv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (the deploy workflow, without the venv): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.packaging import REPO_ROOT, build


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="package.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dist", type=Path, default=REPO_ROOT / "dist", help="output directory (default: dist/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    dist = args.dist.resolve()
    manifest = build(dist)
    print(f"built {dist} (git commit {manifest['git_commit'] or 'unknown'})")
    for name, digest in manifest["files"].items():
        print(f"  {name}  sha256:{digest[:16]}")
    print(f"lakehouse.zip: {len(manifest['lakehouse_zip_members'])} files from {', '.join(manifest['packages'])}")
    for entry_point in manifest["missing_entry_points"]:
        print(f"not packaged (not in the repository yet): {entry_point}", file=sys.stderr)
    for package in manifest["missing_packages"]:
        print(f"not in lakehouse.zip (no {package}/__init__.py yet): {package}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
