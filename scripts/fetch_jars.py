"""Fetch the jars listed in spark_jobs/conf/jars.lock from Maven Central and render spark-defaults.conf.

Idempotent: a jar already present with the right SHA-256 is not downloaded again, so a second
`make setup` takes seconds. No Spark run downloads anything: every jar comes from here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = "https://repo1.maven.org/maven2"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_lock(lock_path: Path) -> list[tuple[str, str, bool]]:
    entries = []
    for number, raw_line in enumerate(lock_path.read_text().splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "optional"):
            sys.exit(f"{lock_path}:{number}: expected '<maven path> <sha256|-> [optional]', got {line!r}")
        entries.append((parts[0], parts[1], len(parts) == 3))
    return entries


def fetch(url: str, destination: Path) -> None:
    partial = destination.with_suffix(destination.suffix + ".part")
    with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
    partial.replace(destination)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--lock",
        type=Path,
        default=REPO_ROOT / "spark_jobs/conf/jars.lock",
        help="jar list: maven path, sha256 ('-' when unknown), optional flag",
    )
    parser.add_argument(
        "--jars-dir", type=Path, default=REPO_ROOT / ".spark/jars", help="where the jars go (git-ignored)"
    )
    parser.add_argument(
        "--conf-dir", type=Path, default=REPO_ROOT / ".spark/conf", help="where spark-defaults.conf is rendered"
    )
    parser.add_argument(
        "--mirror",
        default=os.environ.get("MAVEN_MIRROR", DEFAULT_MIRROR),
        help="Maven repository base URL (env MAVEN_MIRROR)",
    )
    args = parser.parse_args()

    args.jars_dir.mkdir(parents=True, exist_ok=True)
    present: list[Path] = []
    for maven_path, expected_sha, optional in read_lock(args.lock):
        target = args.jars_dir / Path(maven_path).name
        if target.exists() and (expected_sha == "-" or sha256_of(target) == expected_sha):
            present.append(target)
            continue
        url = f"{args.mirror}/{maven_path}"
        print(f"fetching {url}", flush=True)
        try:
            fetch(url, target)
        except (urllib.error.URLError, OSError) as error:
            if optional:
                print(
                    f"WARNING: optional jar {Path(maven_path).name} not available ({error}); "
                    "local runs do not need it (see README, 'S3 log store')",
                    flush=True,
                )
                continue
            sys.exit(f"could not fetch {url}: {error}")
        actual = sha256_of(target)
        if expected_sha not in ("-", actual):
            target.unlink()
            sys.exit(f"{url}: SHA-256 {actual} does not match the lock ({expected_sha})")
        present.append(target)

    template = (REPO_ROOT / "spark_jobs/conf/spark-defaults.conf.template").read_text()
    args.conf_dir.mkdir(parents=True, exist_ok=True)
    rendered = template.replace("@JARS@", ",".join(str(path) for path in present))
    (args.conf_dir / "spark-defaults.conf").write_text(rendered)
    print(f"jars ready in {args.jars_dir} ({len(present)}); conf in {args.conf_dir}/spark-defaults.conf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
