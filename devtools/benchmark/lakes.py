"""The benchmark's lakes: generated once per arguments and reused, run folders with hard-linked bronze, the
stream stage's new batch."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from decimal import Decimal
from pathlib import Path

from devtools.benchmark.options import BenchmarkOptions
from devtools.repo import REPO_ROOT
from spark_jobs.lake import BRONZE_EVENTS_PREFIX

BRONZE_PREFIX = BRONZE_EVENTS_PREFIX
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
GENERATOR_CODE = REPO_ROOT / "devtools" / "generator"


def lake_tag(events: int, cards: int, days: int, seed: int) -> str:
    return f"e{events}-c{cards}-d{days}-s{seed}"


def generator_version() -> str:
    """The generator's version for the lake cache: a hash of its code (every .py file of devtools/generator/),
    so any change to the generator, even one nobody thought changes the output, makes a fresh lake."""
    digest = hashlib.sha256()
    for path in sorted(GENERATOR_CODE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def generated_lake(options: BenchmarkOptions, *, events: int, cards: int, days: int) -> tuple[Path, dict]:
    """A pristine generated lake (bronze only), generated once per arguments and generator version and reused:
    the `_generator/complete` marker, written last, holds the generator version that wrote the lake."""
    from devtools.generator import GeneratorConfig, generate_lake, load_manifest

    root = options.work_dir / "lakes" / lake_tag(events, cards, days, options.seed)
    config = GeneratorConfig(events=events, cards=cards, days=days, seed=options.seed, lake_root=root, overwrite=True)
    version = generator_version()
    manifest_path = root / "_generator" / "manifest.json"
    marker = root / "_generator" / "complete"
    if manifest_path.exists() and marker.exists():
        manifest = load_manifest(root)
        if manifest["arguments"] == config.arguments() and marker.read_text().strip() == version:
            counts = _lake_counts(manifest)
            return root, {"generated_seconds": None, "reused": True, "generator_version": version, "counts": counts}
    started = time.perf_counter()
    summary = generate_lake(config)
    marker.write_text(version + "\n")
    return root, {
        "generated_seconds": round(time.perf_counter() - started, 3),
        "reused": False,
        "generator_version": version,
        "counts": _lake_counts(load_manifest(root)) | {"generator_seconds": summary.seconds},
    }


def _lake_counts(manifest: dict) -> dict:
    counts = manifest["counts"]
    return {
        name: counts[name]
        for name in ("events", "cards_with_events", "bronze_files", "bronze_bytes", "lines", "records", "late_events")
        if name in counts
    }


def fresh_run_root(pristine: Path, run_root: Path) -> Path:
    """An empty run folder whose bronze is hard-linked from the pristine lake (no copy, same bytes)."""
    if run_root.exists():
        shutil.rmtree(run_root)
    run_root.mkdir(parents=True)
    shutil.copytree(pristine / "bronze", run_root / "bronze", copy_function=os.link)
    return run_root


def copy_lake(source: Path, target: Path) -> None:
    """A copy of a run folder at another path: bronze hard-linked (never written), the rest copied."""
    if target.exists():
        shutil.rmtree(target)
    bronze = (source / "bronze").resolve()

    def copy(src: str, dst: str) -> None:
        if Path(src).resolve().is_relative_to(bronze):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=copy)


def bronze_size(root: Path) -> tuple[int, int]:
    files = [path for path in (root / BRONZE_PREFIX).rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def batch_lines(options: BenchmarkOptions, *, cards: int, history_end: dt.datetime, daily_rate: float) -> list[str]:
    """The new batch's bronze lines: events of the history's cards (the same world: same seed and cards),
    (1 - late share) of them the newest events before `history_end`, the rest late (2 h to
    --stream-late-hours before it); fresh event ids, so nothing collides with the history."""
    import numpy as np

    from devtools.generator import GeneratorConfig, generate_lake

    late_days = max(1, int(np.ceil(options.stream_late_hours / 24)))
    events = max(options.stream_batch * 2, int(daily_rate * late_days))
    start = (history_end - dt.timedelta(days=late_days)).date()
    root = options.work_dir / "lakes" / f"batch-{lake_tag(events, cards, late_days, options.seed)}-{start.isoformat()}"
    config = GeneratorConfig(
        events=events,
        cards=cards,
        days=late_days,
        start=start,
        seed=options.seed,
        lake_root=root,
        bad_rate=0.0,
        dup_rate=0.0,
        conflict_rate=0.0,
        late_rate=0.0,
        overwrite=True,
    )
    generate_lake(config)
    records = []
    for path in sorted((root / BRONZE_PREFIX).rglob("*")):
        if path.is_file() and not path.name.startswith((".", "_")):
            for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
                if line.strip():
                    ts = Decimal(json.loads(line, parse_float=Decimal)["ts"])
                    records.append((ts, line))
    records.sort(key=lambda item: item[0])
    end_s = Decimal(int(history_end.timestamp()))
    late_count = round(options.stream_batch * options.stream_late_share)
    on_time = records[-(options.stream_batch - late_count) :]
    late_low, late_high = end_s - Decimal(options.stream_late_hours * 3600), end_s - 2 * 3600
    rng = np.random.default_rng([options.seed, 1000])
    late_pool = [item for item in records[: -len(on_time)] if late_low <= item[0] <= late_high]
    late = [late_pool[index] for index in sorted(rng.choice(len(late_pool), size=late_count, replace=False))]
    chosen = late + on_time
    ids = rng.bytes(16 * len(chosen))
    lines = []
    for index, (_, line) in enumerate(chosen):
        new_id = ids[16 * index : 16 * (index + 1)].hex()
        lines.append(re.sub(r'"event_id": "[0-9a-f]{32}"', f'"event_id": "{new_id}"', line, count=1))
    shutil.rmtree(root)
    return lines


def shift_ts(line: str, seconds: int) -> str:
    """The line with its `ts` moved by whole seconds, written with the same decimal places."""
    match = re.search(r'"ts": ([0-9.]+)', line)
    shifted = Decimal(match.group(1)) + seconds
    return line[: match.start(1)] + str(shifted) + line[match.end(1) :]


def write_batch(run_root: Path, lines: list[str], arrival: dt.datetime) -> list[Path]:
    """The batch as two gzipped Firehose-like files in the arrival hour's folder."""
    folder = run_root / BRONZE_PREFIX / arrival.strftime("ingest_dt=%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    half = (len(lines) + 1) // 2
    written = []
    for index, part in enumerate((lines[:half], lines[half:])):
        moment = arrival + dt.timedelta(minutes=5 * index)
        name = f"card-authorization-stream-1-{moment.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}.gz"
        path = folder / name
        path.write_bytes(gzip.compress(("\n".join(part) + "\n").encode("utf-8"), mtime=0))
        written.append(path)
    return written
