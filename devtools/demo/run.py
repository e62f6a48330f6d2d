"""The whole platform on this machine, no AWS account: `make demo`.

1. Generate a 45-day lake (200,000 events, fraud scenarios, bad records, re-deliveries, late events,
   chargebacks) into a staging area beside the lake.
2. Deliver it to the lake's bronze in a fixed number of arrivals (6), as Firehose would over time, and after
   each run the stream state machine (state_machines/stream.asl.json) through the local runner
   (scripts/run_pipeline.py): silver and gold, then the changed card features into the local Feature Store.
3. Run the daily state machine for the last day (dates come from the generated window, never the clock):
   daily recompute and maintenance, the training/validation/inference datasets, the feature store.
4. Read a few cards' online features (feature_store/get_features.py), train the baseline model
   (scripts/train_baseline.py).
5. Print a summary (rows per layer, quarantine by reason, feature store writes, model metrics, time per
   step) and write <lake-root>/_runs/report.html with the figures and plots.

    .venv/bin/python scripts/demo.py --lake-root lake/demo        (what `make demo` runs)

The lake root and the staging folder (<lake-root>_staging) are the demo's own: they are emptied first. A
step whose program is not in this checkout yet is skipped with a message saying so.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.repo import REPO_ROOT

BRONZE = Path("bronze/streaming/card_authorization")
LABELS = Path("bronze/labels/chargebacks")
PLOTTED_FEATURES = ("txn_count_1h", "secs_since_prev_txn", "merchant_count_24h", "amount_to_avg_7d")


@dataclass
class Timings:
    steps: list[tuple[str, float]] = field(default_factory=list)

    def record(self, name: str, seconds: float) -> None:
        self.steps.append((name, round(seconds, 1)))


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


# 1. Generate -------------------------------------------------------------------------------------------


def generate(staging: Path, args: argparse.Namespace) -> dict:
    from devtools.generator import GeneratorConfig, generate_lake, load_manifest

    summary = generate_lake(
        GeneratorConfig(
            events=args.events,
            cards=args.cards,
            days=args.days,
            start=args.start,
            seed=args.seed,
            lake_root=staging,
            progress=True,
        )
    )
    say(summary.one_line())
    return load_manifest(staging)


# 2. Arrivals ---------------------------------------------------------------------------------------------


def arrival_hour(path: Path, root: Path) -> datetime:
    """The arrival hour of a bronze file: its ingest_dt=YYYY/MM/DD/HH folder."""
    parts = path.relative_to(root).parts
    year, month, day, hour = parts[0].removeprefix("ingest_dt="), parts[1], parts[2], parts[3]
    return datetime(int(year), int(month), int(day), int(hour), tzinfo=UTC)


def reported_day(path: Path, root: Path) -> date:
    parts = path.relative_to(root).parts
    return date(int(parts[0].removeprefix("reported_dt=")), int(parts[1]), int(parts[2]))


def plan_arrivals(staging: Path, start: date, days: int, arrivals: int) -> list[dict]:
    """Split the staged bronze by arrival hour into `arrivals` consecutive deliveries (the last one takes
    everything left, late events included), with the chargeback files reported by each cutoff."""
    bronze_root, labels_root = staging / BRONZE, staging / LABELS
    files = sorted(p for p in bronze_root.rglob("*") if p.is_file())
    labels = sorted(p for p in labels_root.rglob("*") if p.is_file()) if labels_root.exists() else []
    origin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    plan = []
    for index in range(arrivals):
        cutoff = origin + timedelta(days=days * (index + 1) / arrivals)
        low = origin + timedelta(days=days * index / arrivals) if index else None
        last = index == arrivals - 1
        plan.append(
            {
                "number": index + 1,
                "cutoff": cutoff,
                "files": [
                    p
                    for p in files
                    if (low is None or arrival_hour(p, bronze_root) >= low)
                    and (last or arrival_hour(p, bronze_root) < cutoff)
                ],
                "labels": [
                    p
                    for p in labels
                    if (low is None or reported_day(p, labels_root) >= low.date())
                    and reported_day(p, labels_root) < cutoff.date()
                ],
            }
        )
    return plan


def deliver(arrival: dict, staging: Path, lake: Path) -> int:
    size = 0
    for path in arrival["files"] + arrival["labels"]:
        target = lake / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        size += path.stat().st_size
    return size


def run_state_machine(mode: str, lake: Path, args: argparse.Namespace, execution_input: dict | None = None):
    from devtools.local_runner import run_pipeline, summary_lines

    first = not (lake / "feature_store" / "online.db").exists()
    result = run_pipeline(
        mode=mode,
        lake_root=str(lake),
        execution_input=execution_input,
        spark_master=args.spark_master,
        log=lambda line: print(f"    {line}", flush=True),
        register_feature_group=first,  # the local feature group: once, as a deployment would
    )
    for line in summary_lines(result)[:-1]:
        print(f"    {line}", flush=True)
    if result.status != "SUCCEEDED":
        raise SystemExit(f"[demo] the {mode} execution {result.name} ended {result.status}: {result.error}")
    return result


# 4. Online features and the baseline -------------------------------------------------------------------


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


# 5. Summary and report ---------------------------------------------------------------------------------


def read_delta(path: Path, columns: list[str] | None = None):
    from deltalake import DeltaTable

    if not (path / "_delta_log").exists():
        return None
    return DeltaTable(str(path)).to_pandas(columns=columns)


def png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(silver, quarantine, gold, fraud_ids: set[str]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    images = {}
    hours = pd.to_datetime(silver["ts_us"], unit="us", utc=True).dt.floor("h").value_counts().sort_index()
    figure, axis = plt.subplots(figsize=(10, 3))
    axis.plot(hours.index, hours.values, linewidth=0.5, alpha=0.6, label="per hour")
    axis.plot(hours.index, hours.rolling(24, min_periods=1).mean().values, linewidth=1.5, label="24-hour mean")
    axis.set_title("Accepted events per hour (silver, by event time)")
    axis.set_ylabel("events")
    axis.legend(loc="upper right")
    images["events_per_hour"] = png(figure)

    reasons = quarantine["reason"].value_counts().sort_values()
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.barh(reasons.index, reasons.values, color="#c0504d")
    axis.set_title("Quarantined records by reason")
    axis.set_xlabel("records")
    images["quarantine_reasons"] = png(figure)

    is_fraud = gold["event_id"].isin(fraud_ids)
    figure, axes = plt.subplots(1, len(PLOTTED_FEATURES), figsize=(4 * len(PLOTTED_FEATURES), 3.2))
    for axis, feature in zip(axes, PLOTTED_FEATURES, strict=True):
        values = pd.to_numeric(gold[feature], errors="coerce").astype(float)
        if feature == "secs_since_prev_txn":
            values = np.log10(values.clip(lower=1))
            label = "log10 seconds since previous"
        elif feature == "amount_to_avg_7d":
            values = values.clip(upper=5)
            label = "amount / 7-day mean (clipped at 5)"
        else:
            values = values.clip(upper=values.quantile(0.999))
            label = feature
        if feature.startswith(("txn_count", "merchant_count", "country_count")):
            bins = np.arange(values.min(), values.max() + 2) - 0.5  # one bar per count
        else:
            bins = np.histogram_bin_edges(values.dropna(), bins=30)
        axis.hist(values[~is_fraud].dropna(), bins=bins, density=True, alpha=0.55, label="normal")
        axis.hist(values[is_fraud].dropna(), bins=bins, density=True, alpha=0.55, label="fraud", color="#c0504d")
        axis.set_title(feature, fontsize=10)
        axis.set_xlabel(label, fontsize=8)
    axes[0].legend()
    figure.suptitle("Gold features, fraud vs normal (density; fraud from the generator's ground truth)", y=1.04)
    images["feature_distributions"] = png(figure)
    return images


def table_html(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(f'{cell:,}' if isinstance(cell, int) else str(cell))}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: Path, sections: list[tuple[str, str]], images: dict[str, str]) -> None:
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{data}" alt="{name}"><figcaption>{name}</figcaption></figure>'
        for name, data in images.items()
    )
    content = "".join(f"<h2>{html.escape(title)}</h2>{body}" for title, body in sections)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Card-fraud feature platform: demo report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 9px;text-align:right}"
        "th{background:#f0f0f0}td:first-child{text-align:left}img{max-width:100%}figure{margin:1em 0}"
        "pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}</style></head><body>"
        f"<h1>Card-fraud feature platform: demo report</h1>{content}<h2>Plots</h2>{figures}</body></html>",
        encoding="utf-8",
    )


def run_reports(lake: Path, results: list) -> list[dict]:
    reports = []
    for result in results:
        for job in result.jobs:
            uri = job.get("runreport")
            if uri and uri.startswith("file://") and Path(uri[len("file://") :]).exists():
                reports.append(json.loads(Path(uri[len("file://") :]).read_text()))
    return reports


def summarize(lake: Path, staging: Path, manifest: dict, results: list, timings: Timings, extras: dict) -> None:
    from devtools.generator import load_truth

    counts = manifest["counts"]
    silver = read_delta(lake / "silver/card_transactions", ["event_id", "ts_us"])
    quarantine = read_delta(lake / "silver/quarantine", ["reason"])
    duplicates = read_delta(lake / "silver/duplicates", ["event_id"])
    gold = read_delta(lake / "gold/card_features")
    reports = run_reports(lake, results)
    ingests = [r for r in reports if r.get("job") == "ingest_features"]
    store_writes = {
        key: sum(int(r.get("counts", {}).get(key, 0)) for r in ingests)
        for key in ("records", "online_records", "offline_only_records", "dead_letters")
    }
    datasets = extras.get("datasets_manifest") or {}
    layers = [
        ("bronze: files delivered", extras["bronze_files"]),
        ("bronze: records (non-blank lines)", counts["records"]),
        ("silver: accepted events", len(silver)),
        ("silver: duplicates", len(duplicates)),
        ("silver: quarantined", len(quarantine)),
        ("gold: card feature rows", len(gold)),
    ]
    for name, split in datasets.get("splits", {}).items():
        layers.append((f"datasets as_of={datasets['as_of']}: {name}", split["rows"]))
    by_reason = sorted(quarantine["reason"].value_counts().items(), key=lambda item: -item[1])
    metrics = extras.get("metrics")

    print("\n" + "=" * 78)
    print("DEMO SUMMARY")
    print("-" * 78)
    for name, value in layers:
        print(f"  {name:<48} {value:>12,}")
    print("  quarantine by reason:")
    for reason, count in by_reason:
        print(f"    {reason:<46} {count:>12,}")
    print(
        f"  feature store writes ({len(ingests)} ingestion runs): {store_writes['records']:,} records, "
        f"{store_writes['online_records']:,} online, {store_writes['offline_only_records']:,} offline only, "
        f"{store_writes['dead_letters']:,} dead letters"
    )
    if metrics:
        print("  model metrics (validation):")
        for model, values in metrics["models"].items():
            shown = ", ".join(f"{k}={v:.4f}" for k, v in values.items() if isinstance(v, float))
            print(f"    {model}: {shown}")
    else:
        print("  model metrics: none (the baseline step did not run)")
    print("  state machine executions:")
    for result in results:
        output = result.output or {}
        print(f"    {result.name:<46} {result.status} ({output.get('status', '-')}) in {result.seconds:.0f}s")
    print("  time per step:")
    for name, seconds in timings.steps:
        print(f"    {name:<46} {seconds:>10.1f}s")
    total = sum(seconds for _, seconds in timings.steps)
    print(f"    {'total':<46} {total:>10.1f}s")

    fraud_ids = {row["event_id"] for row in load_truth(staging, "fraud_events")}
    images = plots(read_delta(lake / "silver/card_transactions", ["ts_us"]), quarantine, gold, fraud_ids)
    if extras.get("pr_curve_png"):
        images["pr_curve"] = base64.b64encode(extras["pr_curve_png"]).decode("ascii")
    sections = [
        ("Rows per layer", table_html(layers, ("layer", "rows"))),
        ("Quarantine by reason", table_html(by_reason, ("reason", "records"))),
        ("Feature store writes", table_html(list(store_writes.items()), ("count", "value"))),
    ]
    if metrics:
        rows = [
            (model, *(f"{values[k]:.4f}" for k in values if isinstance(values[k], float))) for model, values in
            metrics["models"].items()
        ]  # fmt: skip
        header = ("model", *(k for k, v in next(iter(metrics["models"].values())).items() if isinstance(v, float)))
        sections.append(("Baseline model (validation)", table_html(rows, header)))
    if extras.get("online_features"):
        sections.append(("Online features of a few cards", f"<pre>{html.escape(extras['online_features'])}</pre>"))
    executions = [
        (
            r.name,
            r.status,
            (r.output or {}).get("status", "-"),
            round(r.seconds, 1),
            " → ".join(j["state"] for j in r.jobs),
        )
        for r in results
    ]
    sections.append(
        ("State machine executions", table_html(executions, ("execution", "status", "output", "s", "jobs")))
    )
    sections.append(("Time per step", table_html([*timings.steps, ("total", round(total, 1))], ("step", "seconds"))))
    if extras.get("skipped"):
        sections.append(
            ("Skipped", "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in extras["skipped"]) + "</ul>")
        )
    report = lake / "_runs" / "report.html"
    write_report(report, sections, images)
    print(f"  report: {report}")
    print("=" * 78)


# Main --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lake-root", type=Path, default=Path("lake/demo"), help="the demo's lake (emptied first)")
    parser.add_argument("--events", type=int, default=200_000, help="distinct valid events (default: 200000)")
    parser.add_argument("--cards", type=int, default=4_000, help="cards (default: 4000)")
    parser.add_argument("--days", type=int, default=45, help="days of event time (default: 45)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first day (2026-01-01)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    parser.add_argument("--arrivals", type=int, default=6, help="deliveries, each followed by a stream run (6)")
    parser.add_argument("--spark-master", default="local[*]", help="spark-submit --master (default: local[*])")
    args = parser.parse_args(argv)
    if args.arrivals < 1 or args.days < 1:
        parser.error("--arrivals and --days must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lake = args.lake_root.resolve()
    staging = lake.with_name(lake.name + "_staging")
    last_day = args.start + timedelta(days=args.days - 1)
    as_of = last_day + timedelta(days=1)
    timings, extras, results = Timings(), {"skipped": []}, []
    began = time.monotonic()
    for folder in (lake, staging):
        if folder.exists():
            say(f"emptying {folder} (the demo's own)")
            shutil.rmtree(folder)

    say(f"1/5 generating {args.events:,} events over {args.days} days from {args.start} into {staging}")
    step = time.monotonic()
    manifest = generate(staging, args)
    timings.record("generate", time.monotonic() - step)

    plan = plan_arrivals(staging, args.start, args.days, args.arrivals)
    extras["bronze_files"] = sum(len(arrival["files"]) for arrival in plan)
    for arrival in plan:
        step = time.monotonic()
        size = deliver(arrival, staging, lake)
        say(
            f"2/5 arrival {arrival['number']}/{len(plan)}: {len(arrival['files'])} bronze files and "
            f"{len(arrival['labels'])} chargeback files ({size / 1e6:.1f} MB), arrivals up to "
            f"{arrival['cutoff']:%Y-%m-%d %H:%M}; "
            "stream state machine"
        )
        results.append(run_state_machine("stream", lake, args))
        timings.record(f"arrival {arrival['number']} + stream run", time.monotonic() - step)

    say(f'3/5 daily state machine for {last_day} (input {{"date": "{last_day}"}})')
    step = time.monotonic()
    results.append(run_state_machine("daily", lake, args, {"date": last_day.isoformat()}))
    timings.record("daily run", time.monotonic() - step)
    datasets_manifest = lake / f"gold/training/as_of={as_of}/manifest.json"
    if datasets_manifest.exists():
        extras["datasets_manifest"] = json.loads(datasets_manifest.read_text())

    say("4/5 online features of a few cards; baseline model")
    step = time.monotonic()
    from devtools.generator import load_truth

    gold_cards = read_delta(lake / "gold/card_features", ["card_id"])
    cards = demo_cards(load_truth(staging, "fraud_events"), gold_cards)
    arguments = [argument for card in cards for argument in ("--card-id", card)] + ["--lake-root", str(lake)]
    looked_up = run_program("feature_store/get_features.py", arguments, what="reading online features")
    if looked_up is None:
        extras["skipped"].append("online features: feature_store/get_features.py missing")
    else:
        extras["online_features"] = looked_up.stdout.strip()
    timings.record("online features", time.monotonic() - step)
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

    say("5/5 summary and report")
    step = time.monotonic()
    summarize(lake, staging, manifest, results, timings, extras)
    say(f"done in {time.monotonic() - began:.0f}s (report and summary {time.monotonic() - step:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
