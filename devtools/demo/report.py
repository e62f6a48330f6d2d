"""The demo's summary on stdout and its HTML report (rows per layer, quarantine, feature store writes, model
metrics, executions, time per step, plots) in <lake-root>/_runs/report.html."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLOTTED_FEATURES = ("txn_count_1h", "secs_since_prev_txn", "merchant_count_24h", "amount_to_avg_7d")


@dataclass
class Timings:
    steps: list[tuple[str, float]] = field(default_factory=list)

    def record(self, name: str, seconds: float) -> None:
        self.steps.append((name, round(seconds, 1)))


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


@dataclass
class _Figures:
    """What the summary and the report show."""

    layers: list[tuple[str, int]]
    by_reason: list[tuple[str, int]]
    store_writes: dict[str, int]
    ingestion_runs: int
    metrics: dict | None


def summarize(lake: Path, staging: Path, manifest: dict, results: list, timings: Timings, extras: dict) -> None:
    """Print the summary and write <lake>/_runs/report.html."""
    from devtools.generator import load_truth

    quarantine = read_delta(lake / "silver/quarantine", ["reason"])
    gold = read_delta(lake / "gold/card_features")
    figures = _figures(lake, manifest, results, extras, quarantine, gold)
    _print_summary(figures, results, timings)
    fraud_ids = {row["event_id"] for row in load_truth(staging, "fraud_events")}
    images = plots(read_delta(lake / "silver/card_transactions", ["ts_us"]), quarantine, gold, fraud_ids)
    if extras.get("pr_curve_png"):
        images["pr_curve"] = base64.b64encode(extras["pr_curve_png"]).decode("ascii")
    report = lake / "_runs" / "report.html"
    write_report(report, _report_sections(figures, results, timings, extras), images)
    print(f"  report: {report}")
    print("=" * 78)


def _figures(lake: Path, manifest: dict, results: list, extras: dict, quarantine, gold) -> _Figures:
    silver = read_delta(lake / "silver/card_transactions", ["event_id", "ts_us"])
    duplicates = read_delta(lake / "silver/duplicates", ["event_id"])
    ingests = [r for r in run_reports(lake, results) if r.get("job") == "ingest_features"]
    store_writes = {
        key: sum(int(r.get("counts", {}).get(key, 0)) for r in ingests)
        for key in ("records", "online_records", "offline_only_records", "dead_letters")
    }
    datasets = extras.get("datasets_manifest") or {}
    layers = [
        ("bronze: files delivered", extras["bronze_files"]),
        ("bronze: records (non-blank lines)", manifest["counts"]["records"]),
        ("silver: accepted events", len(silver)),
        ("silver: duplicates", len(duplicates)),
        ("silver: quarantined", len(quarantine)),
        ("gold: card feature rows", len(gold)),
    ]
    for name, split in datasets.get("splits", {}).items():
        layers.append((f"datasets as_of={datasets['as_of']}: {name}", split["rows"]))
    by_reason = sorted(quarantine["reason"].value_counts().items(), key=lambda item: -item[1])
    return _Figures(layers, by_reason, store_writes, len(ingests), extras.get("metrics"))


def _print_summary(figures: _Figures, results: list, timings: Timings) -> None:
    print("\n" + "=" * 78)
    print("DEMO SUMMARY")
    print("-" * 78)
    for name, value in figures.layers:
        print(f"  {name:<48} {value:>12,}")
    print("  quarantine by reason:")
    for reason, count in figures.by_reason:
        print(f"    {reason:<46} {count:>12,}")
    writes = figures.store_writes
    print(
        f"  feature store writes ({figures.ingestion_runs} ingestion runs): {writes['records']:,} records, "
        f"{writes['online_records']:,} online, {writes['offline_only_records']:,} offline only, "
        f"{writes['dead_letters']:,} dead letters"
    )
    if figures.metrics:
        print("  model metrics (validation):")
        for model, values in figures.metrics["models"].items():
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
    print(f"    {'total':<46} {sum(seconds for _, seconds in timings.steps):>10.1f}s")


def _report_sections(figures: _Figures, results: list, timings: Timings, extras: dict) -> list[tuple[str, str]]:
    sections = [
        ("Rows per layer", table_html(figures.layers, ("layer", "rows"))),
        ("Quarantine by reason", table_html(figures.by_reason, ("reason", "records"))),
        ("Feature store writes", table_html(list(figures.store_writes.items()), ("count", "value"))),
    ]
    metrics = figures.metrics
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
    total = sum(seconds for _, seconds in timings.steps)
    sections.append(("Time per step", table_html([*timings.steps, ("total", round(total, 1))], ("step", "seconds"))))
    if extras.get("skipped"):
        sections.append(
            ("Skipped", "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in extras["skipped"]) + "</ul>")
        )
    return sections
