"""run_demo(): generate, deliver in arrivals with a stream run after each, the daily run, online features, the
baseline, the summary and the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from devtools.demo.arrivals import deliver, plan_arrivals
from devtools.demo.report import Timings, read_delta, summarize
from devtools.repo import REPO_ROOT


@dataclass(frozen=True)
class DemoOptions:
    """What `make demo` runs: the generated lake's size, its window and the number of arrivals."""

    lake_root: Path = Path("lake/demo")
    events: int = 200_000
    cards: int = 4_000
    days: int = 45
    start: date = date(2026, 1, 1)
    seed: int = 7
    arrivals: int = 6
    spark_master: str = "local[*]"

    def __post_init__(self) -> None:
        if self.arrivals < 1 or self.days < 1:
            raise ValueError(f"arrivals and days must be >= 1 (got {self.arrivals} and {self.days})")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run_demo(options: DemoOptions) -> int:
    """The whole demo; the lake root and <lake-root>_staging are the demo's own and are emptied first."""
    lake = options.lake_root.resolve()
    staging = lake.with_name(lake.name + "_staging")
    last_day = options.start + timedelta(days=options.days - 1)
    as_of = last_day + timedelta(days=1)
    timings, extras, results = Timings(), {"skipped": []}, []
    began = time.monotonic()
    for folder in (lake, staging):
        if folder.exists():
            say(f"emptying {folder} (the demo's own)")
            shutil.rmtree(folder)

    say(f"1/5 generating {options.events:,} events over {options.days} days from {options.start} into {staging}")
    step = time.monotonic()
    manifest = generate(staging, options)
    timings.record("generate", time.monotonic() - step)

    results += stream_arrivals(options, staging, lake, timings, extras)

    say(f'3/5 daily state machine for {last_day} (input {{"date": "{last_day}"}})')
    step = time.monotonic()
    results.append(run_state_machine("daily", lake, options, {"date": last_day.isoformat()}))
    timings.record("daily run", time.monotonic() - step)
    datasets_manifest = lake / f"gold/training/as_of={as_of}/manifest.json"
    if datasets_manifest.exists():
        extras["datasets_manifest"] = json.loads(datasets_manifest.read_text())

    say("4/5 online features of a few cards; baseline model")
    online_features(lake, staging, timings, extras)
    baseline(lake, as_of, timings, extras)
    serving_burst(lake, as_of, timings, extras)

    say("5/5 summary and report")
    step = time.monotonic()
    summarize(lake, staging, manifest, results, timings, extras)
    say(f"done in {time.monotonic() - began:.0f}s (report and summary {time.monotonic() - step:.0f}s)")
    return 0


def generate(staging: Path, options: DemoOptions) -> dict:
    """Step 1: the lake, generated into the staging folder; returns its manifest."""
    from devtools.generator import GeneratorConfig, generate_lake, load_manifest

    summary = generate_lake(
        GeneratorConfig(
            events=options.events,
            cards=options.cards,
            days=options.days,
            start=options.start,
            seed=options.seed,
            lake_root=staging,
            progress=True,
        )
    )
    say(summary.one_line())
    return load_manifest(staging)


def stream_arrivals(options: DemoOptions, staging: Path, lake: Path, timings: Timings, extras: dict) -> list:
    """Step 2: each arrival delivered into bronze, then a stream execution; returns the executions."""
    plan = plan_arrivals(staging, options.start, options.days, options.arrivals)
    extras["bronze_files"] = sum(len(arrival["files"]) for arrival in plan)
    results = []
    for arrival in plan:
        step = time.monotonic()
        size = deliver(arrival, staging, lake)
        say(
            f"2/5 arrival {arrival['number']}/{len(plan)}: {len(arrival['files'])} bronze files and "
            f"{len(arrival['labels'])} chargeback files ({size / 1e6:.1f} MB), arrivals up to "
            f"{arrival['cutoff']:%Y-%m-%d %H:%M}; "
            "stream state machine"
        )
        results.append(run_state_machine("stream", lake, options))
        timings.record(f"arrival {arrival['number']} + stream run", time.monotonic() - step)
    return results


def run_state_machine(mode: str, lake: Path, options: DemoOptions, execution_input: dict | None = None):
    """One execution through the local runner; the demo stops if it does not succeed."""
    from devtools.local_runner import run_pipeline, summary_lines

    first = not (lake / "feature_store" / "online.db").exists()
    result = run_pipeline(
        mode=mode,
        lake_root=str(lake),
        execution_input=execution_input,
        spark_master=options.spark_master,
        log=lambda line: print(f"    {line}", flush=True),
        register_feature_group=first,  # the local feature group: once, as a deployment would
    )
    for line in summary_lines(result)[:-1]:
        print(f"    {line}", flush=True)
    if result.status != "SUCCEEDED":
        raise SystemExit(f"[demo] the {mode} execution {result.name} ended {result.status}: {result.error}")
    return result


def online_features(lake: Path, staging: Path, timings: Timings, extras: dict) -> None:
    """Step 4a: two fraud cards and a clean one read back through feature_store/get_features.py."""
    from devtools.generator import load_truth

    step = time.monotonic()
    gold_cards = read_delta(lake / "gold/card_features", ["card_id"])
    cards = demo_cards(load_truth(staging, "fraud_events"), gold_cards)
    extras["demo_cards"] = cards
    arguments = [argument for card in cards for argument in ("--card-id", card)] + ["--lake-root", str(lake)]
    looked_up = run_program("feature_store/get_features.py", arguments, what="reading online features")
    if looked_up is None:
        extras["skipped"].append("online features: feature_store/get_features.py missing")
    else:
        extras["online_features"] = looked_up.stdout.strip()
    timings.record("online features", time.monotonic() - step)


def baseline(lake: Path, as_of: date, timings: Timings, extras: dict) -> None:
    """Step 4b: scripts/train_baseline.py on the daily run's datasets; its metrics and PR curve."""
    step = time.monotonic()
    trained = run_program(
        "scripts/train_baseline.py", ["--as-of", as_of.isoformat(), "--lake-root", str(lake)], what="the baseline"
    )
    folder = lake / f"gold/training/as_of={as_of}"
    if trained is None:
        extras["skipped"].append("baseline model: scripts/train_baseline.py missing")
    elif (folder / "metrics.json").exists():
        extras["metrics"] = json.loads((folder / "metrics.json").read_text())
        if (folder / "pr_curve.png").exists():
            extras["pr_curve_png"] = (folder / "pr_curve.png").read_bytes()
    timings.record("baseline model", time.monotonic() - step)


def serving_burst(lake: Path, as_of: date, timings: Timings, extras: dict) -> None:
    """Step 4c: 20 authorizations of one card in 3 minutes through the HTTP service, scored by the baseline."""
    from devtools.demo.serve_burst import serve_burst

    step = time.monotonic()
    card = (extras.get("demo_cards") or [None])[0]
    model = lake / f"gold/training/as_of={as_of}/model.zip"
    say(f"4/5 request-time features: a burst for {card} through the HTTP service")
    if card is not None:
        log_path = lake / "_runs" / "serving_http.log"
        extras["serving_burst"] = serve_burst(lake, card, model=model if model.exists() else None, log_path=log_path)
    timings.record("serving burst", time.monotonic() - step)


def run_program(relative: str, arguments: list[str], *, what: str) -> subprocess.CompletedProcess | None:
    program = REPO_ROOT / relative
    if not program.exists():
        say(f"SKIPPED {what}: {relative} is not in this checkout yet")
        return None
    completed = subprocess.run(
        [sys.executable, str(program), *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    for line in (completed.stdout + completed.stderr).strip().splitlines():
        print(f"    | {line}", flush=True)
    if completed.returncode not in (0,):
        say(f"{relative} exited with {completed.returncode}")
    return completed


def demo_cards(truth_fraud: list[dict], gold) -> list[str]:
    """Two cards with fraud and one without, among those in gold."""
    fraud_cards = []
    for row in truth_fraud:
        if row["card_id"] not in fraud_cards:
            fraud_cards.append(row["card_id"])
    counts = gold["card_id"].value_counts()
    clean = [card for card in counts.index if card not in set(fraud_cards)]
    return fraud_cards[:2] + clean[:1]
