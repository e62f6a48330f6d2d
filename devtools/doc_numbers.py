"""Measured numbers in the docs, rendered from the committed results files so that none can drift.

A number the docs quote from a run (benchmark times and ratios, the stream-equivalence run, the baseline model's
metrics) stands between markers in README.md or docs/**/*.md:

    <!-- generated:NAME:start -->…<!-- generated:NAME:end -->

and the text between them is what BLOCKS[NAME] renders from its results file under docs/benchmarks/. The
benchmark's own tables (`<!-- results:… -->`, `<!-- serving:… -->` in docs/benchmarks/README.md, written by
`make bench`) are checked the same way. `make docs-numbers` rewrites every block; tests/test_doc_numbers.py
fails while any block differs from what its file renders.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.repo import REPO_ROOT

RESULTS = "docs/benchmarks/results.json"
STREAM_EQUIVALENCE = "docs/benchmarks/stream_equivalence.json"
BASELINE_METRICS = "docs/benchmarks/baseline_metrics.json"  # metrics.json of `cardfeat train-baseline`
BASELINE_COST = "docs/benchmarks/full_build_vs_baseline.json"  # scripts/benchmark.py --baseline-tree
GENERATED = re.compile(
    r"<!-- generated:(?P<name>[a-z0-9-]+):start -->(?P<body>.*?)<!-- generated:(?P=name):end -->", re.DOTALL
)


class DocNumbersError(ValueError):
    """A marker names no block, or a results file is missing."""


@dataclass(frozen=True)
class Block:
    source: str  # the results file, relative to the repository
    render: Callable[[dict], str]
    inline: bool = False  # inside a sentence: no line breaks around the text


# --- docs/benchmarks/results.json (make bench) -----------------------------------------------------------


def _headline(results: dict) -> dict:
    events = results["settings"]["events"]
    return next(size for size in results["full_build"]["sizes"] if size["events"] == events)


def _target(results: dict, name: str) -> dict:
    from devtools.benchmark.report import TARGETS

    target = next(item for item in results["targets"] if item["name"] == name)
    comparison = next(item[3] for item in TARGETS if item[0] == name)
    return {**target, "sign": "≤" if comparison == "<=" else "≥"}


def _limit_text(results: dict, name: str, unit: str = "") -> str:
    target = _target(results, name)
    return f"target {target['sign']} {target['limit']:g}{unit}{'' if target['met'] else ': missed'}"


def bench_headline(results: dict) -> str:
    """README's one-paragraph summary of the headline run."""
    size = _headline(results)
    spark, duck = size["spark"]["median"], size["duckdb"]["median"]
    stream, ingest = results["stream_increment"], results["feature_store_ingest"]
    return (
        f"{size['events']:,} events on {results['machine']['logical_cores']} cores "
        f"({results['generated_at'][:10]}, commit `{results['git_commit']}`): Spark full build "
        f"{spark['wall_seconds']:.1f} s against DuckDB {duck['wall_seconds']:.1f} s "
        f"({size['ratio_spark_to_duckdb']}×, {_limit_text(results, 'full_build_5m_vs_duckdb', '×')}), peak RSS "
        f"{spark['peak_rss_bytes'] / 1e9:.2f} GB ({_limit_text(results, 'full_build_5m_peak_rss_gb')}), a "
        f"{stream['batch']['events']:,}-event stream increment on 2H against H {stream['ratio_2h_over_h']}× "
        f"({_limit_text(results, 'stream_increment_2h_over_h', '×')}), {ingest['records_per_batch_write']} records "
        f"per BatchWriteRecord call ({_limit_text(results, 'records_per_batch_write')}), online lookup p99 "
        f"{results['online_lookup']['median']['p99_ms']} ms ({_limit_text(results, 'online_lookup_p99_ms')})."
    )


def bench_headline_run(results: dict) -> str:
    """How the headline run was made: sizes, repeats, load, commit."""
    settings, load = results["settings"], results["load_average"]
    repeat = settings["repeat"]
    stream_repeat = results["stream_increment"]["repeat"]
    sizes = " / ".join(f"{size:,}" for size in settings["sizes"])
    single = " (one run per size: the full-build figures are single runs, not medians)" if repeat == 1 else ""
    return (
        f"{settings['events']:,} events, sizes {sizes}, `--repeat {repeat}` for the full builds{single}, "
        f"`--stream-repeat {stream_repeat}` for the stream increment (H and 2H alternating, medians of "
        f"{stream_repeat}), load average {load['before'][0]} at the start and {load['after'][0]} at the end (the "
        f"benchmark itself), on {results['generated_at'][:10]}. The Spark job code is that of commit "
        f"`{results['git_commit']}`."
    )


def _target_phrases(results: dict) -> dict[str, str]:
    size = _headline(results)
    spark, duck = size["spark"]["median"], size["duckdb"]["median"]
    stream = results["stream_increment"]
    at = f"{size['events'] / 1e6:g}M"
    h_run = stream["H"]["median"]
    return {
        "full_build_5m_vs_duckdb": (
            f"the full build is {size['ratio_spark_to_duckdb']}× DuckDB at {at} ({spark['wall_seconds']:.1f} s "
            f"against {duck['wall_seconds']:.1f} s)"
        ),
        "full_build_5m_peak_rss_gb": (
            f"peak RSS {spark['peak_rss_bytes'] / 1e9:.2f} GB at {at} (PSS {spark['peak_pss_bytes'] / 1e9:.2f} GB)"
        ),
        "stream_increment_2h_over_h": (
            f"stream increment 2H / H {stream['ratio_2h_over_h']} (per run: {h_run['files']} bronze files, "
            f"{h_run['bytes_scanned'] / 1e6:.1f} MB; gold's update {h_run['gold_files_scanned']} silver files, "
            f"{h_run['gold_bytes_scanned'] / 1e6:.0f} MB)"
        ),
        "stream_increment_10k_s": (
            f"a {stream['batch']['events']:,}-event stream increment on H {h_run['wall_seconds']:.1f} s without "
            f"start-up ({h_run['wall_seconds_with_startup']:.1f} s with)"
        ),
        "records_per_batch_write": (
            f"{results['feature_store_ingest']['records_per_batch_write']} records per BatchWriteRecord call"
        ),
        "online_lookup_p99_ms": f"online lookup p99 {results['online_lookup']['median']['p99_ms']} ms",
        "serving_compute_p99_ms": "serving state read + computation p99 (100-event card) {value} ms",
        "serving_http_p99_ms": "serving HTTP p99 {value} ms",
    }


def bench_headline_targets(results: dict) -> str:
    """docs/benchmarks/README.md: which targets the headline run met and missed, with the figures."""
    phrases = _target_phrases(results)
    met, missed = [], []
    for target in results["targets"]:
        limit = _target(results, target["name"])
        value = "not measured" if target["value"] is None else f"{target['value']:g}"
        text = phrases[target["name"]].format(value=value)
        (met if target["met"] else missed).append(f"{text}, target {limit['sign']} {target['limit']:g}")
    listed = "; ".join(met)
    text = f"**Targets: {len(met)} of {len(met) + len(missed)} met.** {listed[:1].upper()}{listed[1:]}."
    if missed:
        text += f" **Missed: {'; '.join(missed)}.**"
    return text


# --- docs/benchmarks/stream_equivalence.json (cardfeat stream-equivalence) ----------------------------------


def _changed_rows(run: dict) -> int:
    full = run["full_run"]
    return full["gold_rows_inserted"] + full["gold_rows_updated"]


def stream_equivalence_summary(run: dict) -> str:
    """README: what the full recompute changed after the stream runs, and the largest gold-update scan."""
    arguments, full = run["arguments"], run["full_run"]
    largest_scan = max(batch["gold_bytes_scanned"] for batch in run["stream_runs"])
    return (
        f"At {int(arguments['events']):,} events in {arguments['batches']} batches it changed "
        f"{_changed_rows(run):,} of {full['gold_rows_recomputed']:,} rows, and each stream run's gold update "
        f"scanned at most {largest_scan / 1e6:.1f} MB of silver however deep the lake"
    )


def stream_equivalence_run(run: dict) -> str:
    arguments = run["arguments"]
    days, batches = int(arguments["days"]), int(arguments["batches"])
    return (
        f"{int(arguments['events']):,} events, {int(arguments['cards']):,} cards, {days} days, seed "
        f"{arguments['seed']}; {run['bronze_files']:,} bronze files in {batches} batches of ~{days / batches:.0f} days"
    )


def stream_equivalence_batches(run: dict) -> str:
    lines = [
        "| batch | bronze files / bytes read | accepted | gold mode | cards affected | gold rows recomputed | "
        "inserted / updated | silver files / bytes the gold update scanned | s (with start-up) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for batch in run["stream_runs"]:
        affected = "—" if batch["gold_mode"] == "initial" else f"{batch['affected_cards']:,}"
        lines.append(
            f"| {batch['batch']} | {batch['bronze_files_read']:,} / {batch['bronze_bytes_read']:,} | "
            f"{batch['accepted']:,} | {batch['gold_mode']} | {affected} | {batch['gold_rows_recomputed']:,} | "
            f"{batch['gold_rows_inserted']:,} / {batch['gold_rows_updated']:,} | {batch['gold_files_scanned']} / "
            f"{batch['gold_bytes_scanned']:,} | {batch['seconds']:.1f} ({batch['seconds_with_startup']:.1f}) |"
        )
    return "\n".join(lines)


def stream_equivalence_full(run: dict) -> str:
    full, runs = run["full_run"], run["stream_runs"]
    files_read = sum(batch["bronze_files_read"] for batch in runs)
    equal = run["equal"] and _changed_rows(run) == 0 and full["gold_rows"] == full["gold_distinct_keys"]
    verdict = (
        f"gold after the {len(runs)} stream runs equals the full recompute"
        if equal
        else f"**gold after the {len(runs)} stream runs differs from the full recompute**"
    )
    return (
        f"Then `--mode full`: {full['gold_rows_recomputed']:,} rows recomputed, **{full['gold_rows_inserted']:,} "
        f"inserted, {full['gold_rows_updated']:,} updated**, and gold holds {full['gold_rows']:,} rows with "
        f"{full['gold_distinct_keys']:,} distinct (dt, event_id) keys: {verdict} ({files_read:,} of the "
        f"{run['bronze_files']:,} files were read; {len(run['ignored_files'])} ignored by design, the generator's "
        "`.tmp-` files)."
    )


# --- docs/benchmarks/baseline_metrics.json (metrics.json of cardfeat train-baseline) ---------------------


def _models(metrics: dict) -> tuple[dict, dict]:
    from devtools.baseline import MODEL_AMOUNT, MODEL_FEATURES

    return metrics["models"][MODEL_FEATURES], metrics["models"][MODEL_AMOUNT]


def baseline_summary(metrics: dict) -> str:
    features, amount = _models(metrics)
    return (
        f"ROC AUC {features['roc_auc']:.3f} and average precision {features['average_precision']:.3f} on "
        f"validation, against {amount['roc_auc']:.3f} and {amount['average_precision']:.3f}"
    )


def baseline_comparison(metrics: dict) -> str:
    features, amount = _models(metrics)
    k = metrics["top_k"]
    ours, perfect = features[f"card_precision_at_{k}"], metrics["reference"][f"card_precision_at_{k}_perfect_model"]
    precision = (
        f"the feature model also reaches the perfect card precision@{k} there, {ours:.3f}"
        if round(ours, 4) == round(perfect, 4)
        else f"card precision@{k} {ours:.3f} against a perfect model's {perfect:.3f}"
    )
    return (
        f"ROC AUC {features['roc_auc']:.3f} against {amount['roc_auc']:.3f}, average precision "
        f"{features['average_precision']:.3f} against {amount['average_precision']:.4f} on the 45-day lake above "
        f"({precision})"
    )


def baseline_fraud_rates(metrics: dict) -> str:
    def rate(split: dict) -> str:
        return f"{split['frauds'] / split['rows']:.2%}".replace("%", " %")

    dataset = metrics["dataset"]
    return f"{rate(dataset['validation'])} against {rate(dataset['train'])}"


def baseline_table(metrics: dict) -> str:
    """The table train-baseline prints; metrics.json's keys are sorted, so the models are put back in its order."""
    from devtools.baseline import MODEL_AMOUNT, MODEL_FEATURES, MODEL_FEATURES_V1, format_table

    order = [name for name in (MODEL_FEATURES, MODEL_FEATURES_V1, MODEL_AMOUNT) if name in metrics["models"]]
    printed = {**metrics, "models": {name: metrics["models"][name] for name in order}}
    return f"```\n{format_table(printed)}\n```"


# --- docs/benchmarks/evaluation_metrics.json (metrics.json of the evaluation lake, docs/evaluation.md) -----------

EVALUATION_METRICS = "docs/benchmarks/evaluation_metrics.json"
EVALUATION_BREACH_GAIN = 0.15  # docs/evaluation.md, target 1: v2's ROC AUC on merchant_breach >= v1's + this
EVALUATION_MAX_DROP = 0.01  # target 2: no scenario's ROC AUC falls by more than this


def _evaluation_models(metrics: dict) -> tuple[dict, dict]:
    from devtools.baseline import MODEL_FEATURES, MODEL_FEATURES_V1

    return metrics["models"][MODEL_FEATURES], metrics["models"][MODEL_FEATURES_V1]


def evaluation_summary(metrics: dict) -> str:
    """README: v1 -> v2 ROC AUC per scenario and the overall average precision, on the evaluation lake."""
    v2, v1 = _evaluation_models(metrics)
    scenarios = ", ".join(
        f"`{name}` {v1['scenarios'][name]['roc_auc']:.3f} → {result['roc_auc']:.3f}"
        for name, result in v2["scenarios"].items()
    )
    return (
        f"ROC AUC v1 → v2 per scenario: {scenarios}; overall average precision "
        f"{v1['average_precision']:.3f} → {v2['average_precision']:.3f}"
    )


def evaluation_targets(metrics: dict) -> str:
    """docs/evaluation.md: the three targets with what was measured and whether each is met."""
    v2, v1 = _evaluation_models(metrics)
    gain = v2["scenarios"]["merchant_breach"]["roc_auc"] - v1["scenarios"]["merchant_breach"]["roc_auc"]
    changes = {name: v2["scenarios"][name]["roc_auc"] - v1["scenarios"][name]["roc_auc"] for name in v2["scenarios"]}
    worst = min(changes, key=lambda name: changes[name])
    ap_change = v2["average_precision"] - v1["average_precision"]

    def verdict(met: bool) -> str:
        return "**met**" if met else "**missed**"

    rows = [
        (
            f"`merchant_breach` ROC AUC: v2 ≥ v1 + {EVALUATION_BREACH_GAIN}",
            f"{v1['scenarios']['merchant_breach']['roc_auc']:.4f} → {v2['scenarios']['merchant_breach']['roc_auc']:.4f}"
            f" ({gain:+.4f})",
            verdict(gain >= EVALUATION_BREACH_GAIN),
        ),
        (
            f"no scenario's ROC AUC drops by more than {EVALUATION_MAX_DROP}",
            f"smallest change: `{worst}` {changes[worst]:+.4f}",
            verdict(changes[worst] >= -EVALUATION_MAX_DROP),
        ),
        (
            "overall average precision: v2 ≥ v1",
            f"{v1['average_precision']:.4f} → {v2['average_precision']:.4f} ({ap_change:+.4f})",
            verdict(ap_change >= 0),
        ),
    ]
    lines = ["| target | measured (v1 → v2) | |", "|---|---|---|"]
    lines += [f"| {target} | {measured} | {result} |" for target, measured, result in rows]
    return "\n".join(lines)


# --- docs/benchmarks/serving_consistency.json (cardfeat serving-consistency) and results.json's serving run ----

SERVING_CONSISTENCY = "docs/benchmarks/serving_consistency.json"


def _percent(rate: float) -> str:
    return f"{rate:.1%}".replace("%", " %")


def serving_consistency_summary(run: dict) -> str:
    """README: the consistency run's two verdicts and what the last batch's features would have matched."""
    arguments, plan = run["arguments"], run["plan"]
    served, unaffected = run["a_served_equals_reference"], run["b_served_equals_gold"]["unaffected"]
    last_batch = run["last_batch_online_vs_gold"]["unaffected"]["features"]
    rates = [feature["rate"] for feature in last_batch.values()]
    later_days = int(arguments["days"]) - int(arguments["history_days"])
    return (
        f"Measured at {int(arguments['events']):,} generated events ({arguments['history_days']} days built by the "
        f"batch; the next {later_days} days' {plan['requests']:,} authorizations served in event-time order with a "
        f"{float(arguments['holdout_share']) * 100:.0f} % hold-out; then everything delivered and streamed; "
        "`scripts/serving_consistency.py`): **served = an independent DuckDB reference over the state each request "
        f"saw for {served['events_all_features_match']:,} of {served['events']:,} served events, and served = gold "
        f"for {unaffected['events_all_features_match']:,} of {unaffected['events']:,} events no held-out or late "
        f"event could affect**, where the last batch's online features would have matched gold for "
        f"{min(rates) * 100:.0f}–{max(rates) * 100:.0f} % of events depending on the feature (`txn_count_24h`: "
        f"{_percent(last_batch['txn_count_24h']['rate'])})."
    )


def serving_latency_summary(results: dict) -> str:
    """README: the serving latency targets of the last serving run."""
    serving = results["serving_latency"]
    card, http = serving["compute_with_state_read"]["100"], serving["http"]
    return (
        f"Latency on the local SQLite state: state read + computation for a 100-event card p50 {card['p50_ms']} ms, "
        f"p99 {card['p99_ms']} ms ({_limit_text(results, 'serving_compute_p99_ms')}); the HTTP service p50 "
        f"{http['p50_ms']} ms, p99 {http['p99_ms']} ms ({_limit_text(results, 'serving_http_p99_ms')}), "
        f"{http['requests_per_second']:,} requests/s from one client."
    )


def serving_consistency_run(run: dict) -> str:
    """docs/serving.md: how the consistency run was made."""
    arguments, plan, window = run["arguments"], run["plan"], run["state_window_events"]
    later_days = int(arguments["days"]) - int(arguments["history_days"])
    return (
        "`scripts/serving_consistency.py` (library: `devtools/serving_consistency/`) on a generated lake of "
        f"{int(arguments['events']):,} events (`--cards {arguments['cards']} --days {arguments['days']} --seed "
        f"{arguments['seed']}`): the first {arguments['history_days']} days are built by the batch pipeline (a stream "
        "run, then the ingestion, which syncs the online state from silver); the following "
        f"{later_days} days' authorizations are served through `FeatureServer.serve` in event-time order, one at a "
        f"time with write-back, as a live scoring service sees them: {plan['requests']:,} requests, each bronze "
        f"line's raw bytes, re-deliveries and bad lines included. A seeded "
        f"{float(arguments['holdout_share']) * 100:.0f} % of those days' events ({plan['held_out_events']:,}) are "
        "held out and reach the platform only through "
        f"bronze, as do {plan['late_history_lines']:,} late deliveries of earlier days. Then every arrival hour is "
        "delivered to bronze and a stream run builds gold. The replay log records each request's outcome and the "
        f"state window its computation saw (mean {window['mean']} events, max {window['max']})."
    )


def serving_consistency_outcomes(run: dict) -> str:
    """docs/serving.md: the outcomes and the two verdicts (a) and (b)."""
    requests, served = run["requests"], run["a_served_equals_reference"]
    b = run["b_served_equals_gold"]
    unaffected, affected, because = b["unaffected"], b["affected"], run["affected_because"]
    refused = sum(requests["rejected_by_reason"].values())
    gold = (
        "no refused event is in gold and every served one is"
        if requests["rejected_but_in_gold"] == 0
        else f"**{requests['rejected_but_in_gold']:,} refused events are in gold**"
    )
    why = (
        "every one because a held-out or late event sits in its 7-day window"
        if because["only_members_served_later"] == 0
        else f"{because['a_window_member_never_served']:,} because a held-out or late event sits in its 7-day window, "
        f"{because['only_members_served_later']:,} because an event of its window was served after it"
    )
    return (
        f"Outcomes: {requests['served']:,} served, {requests['replayed']:,} repeats of a known event_id with the same "
        f"payload (each answered with the first answer's features), {refused:,} refused with the contract's reason "
        f"({requests['rejected_by_reason'].get('conflicting_duplicate', 0):,} of them `conflicting_duplicate`); "
        f"{gold}.\n\n"
        "- **(a) served = an independent DuckDB reference over exactly the state each request saw: "
        f"{served['events_all_features_match']:,} of {served['events']:,} events, every feature** (doubles bit for "
        "bit).\n"
        f"- **(b) served = gold on every unaffected event: {unaffected['events_all_features_match']:,} of "
        f"{unaffected['events']:,}.** An event is *affected* when gold counts, in one of its windows, an event "
        f"that was served after it or never served, decided from the replay log alone: {affected['events']:,} "
        f"events, {why} (about {run['state_window_events']['mean']:.0f} events each, so a "
        f"{float(run['arguments']['holdout_share']) * 100:.0f} % hold-out touches "
        f"{_percent(affected['events'] / (affected['events'] + unaffected['events']))} of them).\n"
        "- **The last batch's online features** (the card's Feature Store record as the previous batch left it, "
        "`get_features`), which request-time serving replaces, would have matched gold far less often: the "
        "right-hand columns."
    )


def serving_consistency_table(run: dict) -> str:
    from devtools.serving_consistency.summary import markdown_table

    return markdown_table(run).rstrip("\n")


def serving_affected_one_hour(run: dict) -> str:
    affected = run["b_served_equals_gold"]["affected"]["features"]
    return _percent(min(affected["txn_count_1h"]["rate"], affected["txn_amount_1h"]["rate"]))


def serving_latency_table(results: dict) -> str:
    """docs/serving.md: the latency table and the HTTP service's line, with the targets."""
    serving = results["serving_latency"]
    lines = [
        "| card's events in the window | computation p50 / p99 | state read + computation p50 / p99 | full request "
        "(judge, read, compute, write back) p50 / p99 |",
        "|---|---|---|---|",
    ]
    for size in serving["window_sizes"]:
        key = str(size)
        compute, read, full = (serving[part][key] for part in ("compute", "compute_with_state_read", "full_request"))
        read_text = f"{read['p50_ms']} / {read['p99_ms']} ms"
        if size == 100:  # the serving_compute_p99_ms target is measured on a 100-event card
            read_text = f"{read['p50_ms']} / **{read['p99_ms']} ms** ({_limit_text(results, 'serving_compute_p99_ms')})"
        lines.append(
            f"| {size:,} | {compute['p50_ms']} / {compute['p99_ms']} ms | {read_text} | {full['p50_ms']} / "
            f"{full['p99_ms']} ms |"
        )
    http = serving["http"]
    lines += [
        "",
        "The HTTP service (`serve_features.py http`, uvicorn on 127.0.0.1, 100-event cards, one keep-alive client "
        f"sending sequential requests): p50 {http['p50_ms']} ms, **p99 {http['p99_ms']} ms** "
        f"({_limit_text(results, 'serving_http_p99_ms')}), {http['requests_per_second']:,} requests/s.",
    ]
    return "\n".join(lines)


def serving_latency_run(results: dict) -> str:
    """docs/benchmarks/README.md: when the serving run was, and its targets."""
    serving = results["serving_latency"]
    met = [target["met"] for target in results["targets"] if target["name"].startswith("serving_")]
    verdict = "both targets met" if all(met) else "**a target missed**"
    http = serving["http"]
    return (
        f"Run of {serving['measured_at'][:10]} {serving['measured_at'][11:16]} UTC (commit `{serving['git_commit']}`, "
        f"`measured_at` in results.json): {verdict} (state read + compute p99 "
        f"{serving['compute_with_state_read']['100']['p99_ms']} ms, HTTP p99 {http['p99_ms']} ms, "
        f"{http['requests_per_second']:,} requests/s)"
    )


def serving_thousand_event_card(results: dict) -> str:
    serving = results["serving_latency"]
    return (
        f"a 1,000-event card reads and computes in {serving['compute_with_state_read']['1000']['p50_ms']} ms (p50) "
        f"while its computation alone takes {serving['compute']['1000']['p50_ms']} ms"
    )


# --- docs/benchmarks/full_build_vs_baseline.json (scripts/benchmark.py --baseline-tree) --------------------


def _sides(run: dict) -> tuple[str, str]:
    """(this checkout's label, the baseline's label)."""
    this = next(label for label, side in run["sides"].items() if side["tree"] == "this checkout")
    return this, next(label for label in run["sides"] if label != this)


def baseline_cost_run(run: dict) -> str:
    this, base = _sides(run)
    lake, load = run["lake"], run["load_average"]["before"]
    return (
        f"`{run['command']}` on {run['generated_at'][:16].replace('T', ' ')} UTC: {lake['events']:,} events, "
        f"{lake['cards']:,} cards, {lake['days']} days, seed {lake['seed']}; {this} = commit "
        f"`{run['sides'][this]['git_commit']}`, {base} = commit `{run['sides'][base]['git_commit']}` (git "
        f"worktrees); runs per side: {run['repeat']}, alternating; load average before the first run "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (`{run['uptime_before']}`)"
    )


def baseline_cost_table(run: dict) -> str:
    this, base = _sides(run)
    medians, ratio, steps = run["median"], run["ratio"], run["step_seconds_median"]
    lines = [
        f"| median of {run['repeat']} | s without start-up | s with start-up | CPU s | peak RSS GB |",
        "|---|---|---|---|---|",
    ]
    for label in (base, this):
        item = medians[label]
        lines.append(
            f"| {label} | {item['wall_seconds']:.1f} | {item['wall_seconds_with_startup']:.1f} | "
            f"{item['cpu_seconds']:.1f} | {item['peak_rss_bytes'] / 1e9:.2f} |"
        )
    lines.append(
        f"| {this} / {base} | {ratio['wall_seconds']}× | {ratio['wall_seconds_with_startup']}× | "
        f"{ratio['cpu_seconds']}× | {ratio['peak_rss_bytes']}× |"
    )
    calibration = run["load_calibration"]
    verified = "equal" if run["verification"]["equal"] else "**different**"
    lines += [
        "",
        f"Load calibration (the bronze → silver steps both sides share): {calibration['seconds'][base]:.1f} s in "
        f"{base}'s runs, {calibration['seconds'][this]:.1f} s in {this}'s, factor {calibration['baseline_over_this']}; "
        f"**{this} / {base} load-normalized: {ratio['wall_seconds_load_normalized']}×** (CPU time "
        f"{ratio['cpu_seconds']}×). Target ≤ {run['limit']}× (on the normalized ratio): "
        f"{'met' if run['met'] else '**missed**'}. The {this} build against the DuckDB reference: {verified}.",
        "",
        f"| step (run report, median s) | {base} | {this} |",
        "|---|---|---|",
    ]
    names = sorted(set(steps[base]) | set(steps[this]), key=lambda name: -(steps[this].get(name) or 0))
    lines += [f"| `{name}` | {_seconds(steps[base].get(name))} | {_seconds(steps[this].get(name))} |" for name in names]
    return "\n".join(lines)


def _emr_sizing():
    """docs/scaling.md's arithmetic lives in devtools/emr_sizing.py."""
    from devtools import emr_sizing

    return emr_sizing


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


BLOCKS: dict[str, Block] = {
    "bench-headline": Block(RESULTS, bench_headline),
    "bench-headline-run": Block(RESULTS, bench_headline_run),
    "bench-headline-targets": Block(RESULTS, bench_headline_targets),
    "stream-equivalence-summary": Block(STREAM_EQUIVALENCE, stream_equivalence_summary, inline=True),
    "stream-equivalence-run": Block(STREAM_EQUIVALENCE, stream_equivalence_run, inline=True),
    "stream-equivalence-batches": Block(STREAM_EQUIVALENCE, stream_equivalence_batches),
    "stream-equivalence-full": Block(STREAM_EQUIVALENCE, stream_equivalence_full),
    "baseline-summary": Block(BASELINE_METRICS, baseline_summary, inline=True),
    "baseline-comparison": Block(BASELINE_METRICS, baseline_comparison, inline=True),
    "baseline-fraud-rates": Block(BASELINE_METRICS, baseline_fraud_rates, inline=True),
    "baseline-table": Block(BASELINE_METRICS, baseline_table),
    "evaluation-summary": Block(EVALUATION_METRICS, evaluation_summary, inline=True),
    "evaluation-targets": Block(EVALUATION_METRICS, evaluation_targets),
    "evaluation-table": Block(EVALUATION_METRICS, baseline_table),
    "serving-consistency-summary": Block(SERVING_CONSISTENCY, serving_consistency_summary),
    "serving-consistency-run": Block(SERVING_CONSISTENCY, serving_consistency_run),
    "serving-consistency-outcomes": Block(SERVING_CONSISTENCY, serving_consistency_outcomes),
    "serving-consistency-table": Block(SERVING_CONSISTENCY, serving_consistency_table),
    "serving-affected-one-hour": Block(SERVING_CONSISTENCY, serving_affected_one_hour, inline=True),
    "serving-latency-summary": Block(RESULTS, serving_latency_summary),
    "serving-latency-table": Block(RESULTS, serving_latency_table),
    "serving-latency-run": Block(RESULTS, serving_latency_run, inline=True),
    "serving-thousand-event-card": Block(RESULTS, serving_thousand_event_card, inline=True),
    "baseline-cost-run": Block(BASELINE_COST, baseline_cost_run, inline=True),
    "baseline-cost-table": Block(BASELINE_COST, baseline_cost_table),
    "emr-sizing-inputs": Block(RESULTS, lambda results: _emr_sizing().sizing_inputs(results)),
    "emr-sizing-table": Block(RESULTS, lambda results: _emr_sizing().sizing_table(results)),
}


START = re.compile(r"<!-- generated:(?P<name>[^ ]+):start -->")


def documents(root: Path = REPO_ROOT) -> list[Path]:
    return sorted(path for path in {root / "README.md", *root.glob("docs/**/*.md")} if path.exists())


def _load(root: Path, source: str, cache: dict[str, dict]) -> dict:
    if source not in cache:
        path = root / source
        if not path.exists():
            raise DocNumbersError(f"{source}: the results file a generated block renders from is missing")
        cache[source] = json.loads(path.read_text())
    return cache[source]


def render(name: str, root: Path = REPO_ROOT, cache: dict[str, dict] | None = None) -> str:
    """The text between NAME's markers, as its results file renders it."""
    if name not in BLOCKS:
        raise DocNumbersError(f"generated block {name!r}: no such block (known: {', '.join(sorted(BLOCKS))})")
    block = BLOCKS[name]
    text = block.render(_load(root, block.source, {} if cache is None else cache))
    return text if block.inline else f"\n{text}\n"


def _benchmark_tables(text: str, root: Path, cache: dict[str, dict]) -> str:
    """The tables `make bench` writes into docs/benchmarks/README.md, with their own markers."""
    from devtools import serving_bench
    from devtools.benchmark import report

    results = _load(root, RESULTS, cache)
    tables = [(report.README_START, report.README_END, report.results_markdown(results))]
    if results.get("serving_latency"):
        tables.append(
            (serving_bench.README_START, serving_bench.README_END, serving_bench.markdown(results["serving_latency"]))
        )
    for start, end, body in tables:
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{start}\n{body}{end}{tail}"
    return text


def rendered_document(path: Path, root: Path = REPO_ROOT, cache: dict[str, dict] | None = None) -> str:
    """PATH's text with every generated block as its results file renders it."""
    cache = {} if cache is None else cache
    text = path.read_text()
    opened = [match["name"] for match in START.finditer(text)]
    closed = [match["name"] for match in GENERATED.finditer(text)]
    if opened != closed:
        unclosed = sorted(set(opened) - set(closed)) or opened
        raise DocNumbersError(f"{path}: generated block(s) {', '.join(unclosed)} without a matching end marker")
    text = GENERATED.sub(
        lambda match: (
            f"<!-- generated:{match['name']}:start -->{render(match['name'], root, cache)}"
            f"<!-- generated:{match['name']}:end -->"
        ),
        text,
    )
    if path == root / "docs" / "benchmarks" / "README.md":
        text = _benchmark_tables(text, root, cache)
    return text


def stale_documents(root: Path = REPO_ROOT) -> list[Path]:
    """The documents whose generated numbers differ from what the results files render."""
    cache: dict[str, dict] = {}
    return [path for path in documents(root) if rendered_document(path, root, cache) != path.read_text()]


def write_documents(root: Path = REPO_ROOT) -> list[Path]:
    """Rewrite every stale document; returns them."""
    cache: dict[str, dict] = {}
    written = []
    for path in documents(root):
        text = rendered_document(path, root, cache)
        if text != path.read_text():
            path.write_text(text)
            written.append(path)
    return written


def main(argv: list[str] | None = None, root: Path = REPO_ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="doc_numbers", description="Render the docs' measured numbers from docs/benchmarks/*.json."
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a document is stale")
    args = parser.parse_args(argv)
    try:
        stale = stale_documents(root) if args.check else write_documents(root)
    except DocNumbersError as error:
        print(f"doc_numbers: {error}", file=sys.stderr)
        return 1
    for path in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {path.relative_to(root)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
