"""The targets and the report: results.json's targets list, the tables of docs/benchmarks/README.md, the
scaling plot and the printed summary."""

from __future__ import annotations

import json
from pathlib import Path

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
TARGETS = (
    # name, limit, unit, comparison
    ("full_build_5m_vs_duckdb", 3.0, "x DuckDB", "<="),
    ("full_build_5m_peak_rss_gb", 6.0, "GB", "<="),
    ("stream_increment_2h_over_h", 1.3, "x", "<="),
    ("stream_increment_10k_s", 12.0, "s", "<="),  # the batch on H, median, without start-up
    ("records_per_batch_write", 24.0, "records/call", ">="),
    ("online_lookup_p99_ms", 5.0, "ms", "<="),
    ("serving_compute_p99_ms", 2.0, "ms", "<="),  # 100-event card: state read + computation
    ("serving_http_p99_ms", 10.0, "ms", "<="),
)
HEADLINE_EVENTS = 5_000_000


def targets(results: dict) -> tuple[list[dict], dict]:
    full = results.get("full_build") or {}
    headline = next((size for size in full.get("sizes", []) if size["events"] == results["settings"]["events"]), None)
    stream = results.get("stream_increment") or {}
    ingest = results.get("feature_store_ingest") or {}
    lookup = results.get("online_lookup") or {}
    values = {
        "full_build_5m_vs_duckdb": headline["ratio_spark_to_duckdb"] if headline else None,
        "full_build_5m_peak_rss_gb": (
            round(headline["spark"]["median"]["peak_rss_bytes"] / 1e9, 2) if headline else None
        ),
        "stream_increment_2h_over_h": stream.get("ratio_2h_over_h"),
        "stream_increment_10k_s": ((stream.get("H") or {}).get("median") or {}).get("wall_seconds"),
        "records_per_batch_write": ingest.get("records_per_batch_write"),
        "online_lookup_p99_ms": (lookup.get("median") or {}).get("p99_ms"),
        "serving_compute_p99_ms": (results.get("serving_latency") or {}).get("compute_p99_ms"),
        "serving_http_p99_ms": (results.get("serving_latency") or {}).get("http_p99_ms"),
    }
    listed, notes = [], {}
    for name, limit, unit, comparison in TARGETS:
        value = values[name]
        met = value is not None and (value <= limit if comparison == "<=" else value >= limit)
        listed.append({"name": name, "value": value, "limit": limit, "unit": unit, "met": bool(met)})
        if value is None:
            notes[name] = "not measured in this run (stage skipped)"
    if headline:
        where = "" if headline["events"] == HEADLINE_EVENTS else f"measured at {headline['events']:,} events; "
        notes["full_build_5m_vs_duckdb"] = (
            f"{where}Spark without start-up / DuckDB, same run; with start-up "
            f"{headline['ratio_spark_with_startup_to_duckdb']}x"
        )
        if where:
            notes["full_build_5m_peak_rss_gb"] = where.rstrip("; ")
        if not headline["verification"]["equal"]:
            notes["full_build_5m_vs_duckdb"] += "; WARNING: Spark's tables differ from the reference"
    return listed, notes


def gb(value: float | None) -> str:
    return "–" if value is None else f"{value / 1e9:.2f}"


def seconds_text(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def results_markdown(results: dict) -> str:
    """The tables between the results markers of docs/benchmarks/README.md: the run, the targets, then a section
    per stage that ran."""
    lines = _run_and_targets(results)
    sections = (
        ("full_build", _full_build_section),
        ("stream_increment", _stream_section),
        ("feature_store_ingest", _ingest_section),
        ("online_lookup", _lookup_section),
    )
    for key, section in sections:
        if results.get(key):
            lines += section(results[key])
    return "\n".join(lines) + "\n"


def _run_and_targets(results: dict) -> list[str]:
    machine, settings = results["machine"], results["settings"]
    lines = [
        f"Run of {results['generated_at']} (commit `{results.get('git_commit')}`), "
        f"`{results['command']}`; machine: {machine['logical_cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine.get('cpu', '')}; load average before {results['load_average']['before']}, after "
        f"{results['load_average']['after']}. Spark {results['versions'].get('pyspark')} / Delta "
        f"{results['versions'].get('delta-spark')} (`--master {settings['spark_master']}`), DuckDB "
        f"{results['versions'].get('duckdb')}. Full builds: medians of {settings['repeat']} run(s). Raw numbers: "
        "[results.json](results.json).",
        "",
        "### Targets",
        "",
        "| target | value | limit | met |",
        "|---|---|---|---|",
    ]
    notes = results.get("target_notes", {})
    for target in results["targets"]:
        comparison = next(item[3] for item in TARGETS if item[0] == target["name"])
        value = "–" if target["value"] is None else f"{target['value']:g}"
        note = f" ({notes[target['name']]})" if target["name"] in notes else ""
        lines.append(
            f"| `{target['name']}` | {value} {target['unit']}{note} | {comparison} {target['limit']:g} | "
            f"{'yes' if target['met'] else '**no**'} |"
        )
    return lines


def _full_build_section(full: dict) -> list[str]:
    lines = [
        "",
        "### Full build: bronze → silver → gold (`--mode full`) vs the DuckDB reference",
        "",
        "| events | cards | bronze | Spark s (no start-up) | Spark s (with) | start-up s | Spark events/s | "
        "Spark peak RSS (PSS) GB | Spark CPU s | DuckDB s | DuckDB events/s | DuckDB peak RSS GB | ratio | "
        "gold == reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in full["sizes"]:
        spark, duck = size["spark"]["median"], size["duckdb"]["median"]
        verification = size["verification"]
        equal = "yes" if verification["equal"] else "**no**"
        lines.append(
            f"| {size['events']:,} | {size['cards']:,} | {size['lake']['bronze_files']:,} files, "
            f"{size['lake']['bronze_bytes'] / 1e6:.0f} MB | {seconds_text(spark['wall_seconds'])} | "
            f"{seconds_text(spark['wall_seconds_with_startup'])} | {seconds_text(spark['startup_seconds'])} | "
            f"{spark['events_per_second'] or 0:,} | {gb(spark['peak_rss_bytes'])} "
            f"({gb(spark['peak_pss_bytes'])}) | "
            f"{seconds_text(spark['cpu_seconds'])} | {seconds_text(duck['wall_seconds'])} | "
            f"{duck['events_per_second'] or 0:,} | {gb(duck['peak_rss_bytes'])} | "
            f"{size['ratio_spark_to_duckdb']}x | {equal} ({verification['spark_gold_rows']:,} rows) |"
        )
    headline = full["sizes"][-1]
    steps = headline["spark"]["runs"][-1]["steps"]
    phases = headline["duckdb"]["runs"][-1]["phases"]
    lines += [
        "",
        f"Where the time goes at {headline['events']:,} events (last run; seconds):",
        "",
        "| Spark step | s |",
        "|---|---|",
        *[f"| {name} | {value:,.1f} |" for name, value in sorted(steps.items(), key=lambda item: -item[1])],
        "",
        "| DuckDB phase | s |",
        "|---|---|",
        *[f"| {name} | {value:,.1f} |" for name, value in sorted(phases.items(), key=lambda item: -item[1])],
        "",
        f"Reference lines judged by the contract's Python (corners SQL does not express): "
        f"{headline['duckdb']['runs'][-1]['counts']['judged_by_contract']:,} of "
        f"{headline['duckdb']['runs'][-1]['counts']['lines']:,}.",
        "",
        "![scaling](scaling.png)",
    ]
    return lines


def _stream_section(stream: dict) -> list[str]:
    batch = stream["batch"]
    lines = [
        "",
        f"### Stream increment: one batch of {batch['events']:,} events ({batch['late_share']:.0%} late by up to "
        f"{batch['late_max_hours']:g} h)",
        "",
        f"Medians of {stream['repeat']} run(s) on each history, H and 2H alternating.",
        "",
        "| history | events | days | batch s (no start-up) | with start-up | CPU s | peak RSS GB | "
        "silver files / bytes read | gold files / bytes scanned | gold rows recomputed | cards affected | "
        "dedupe: silver files / bytes read | event-id index lookups / hits |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label in ("H", "2H"):
        item = stream[label]
        med = item["median"]
        last = item["runs"][-1]
        lines.append(
            f"| {label} | {item['events']:,} | {item['days']} | {seconds_text(med['wall_seconds'])} | "
            f"{seconds_text(med['wall_seconds_with_startup'])} | {seconds_text(med['cpu_seconds'])} | "
            f"{gb(med['peak_rss_bytes'])} | {med['files']} / {med['bytes_scanned']:,} | "
            f"{med['gold_files_scanned']} / {med['gold_bytes_scanned']:,} | {last['gold_rows_recomputed']:,} | "
            f"{last['affected_cards']:,} | {_dedupe_read(med, last)} |"
        )
    verification = stream.get("verification_after_increment") or {}
    lines += [
        "",
        f"Ratio 2H / H: **{stream['ratio_2h_over_h']}** (with start-up {stream['ratio_2h_over_h_with_startup']}, "
        f"CPU time {stream['ratio_2h_over_h_cpu']}). Gold of H after the increment equals the reference built "
        f"from all its bronze: {'yes' if verification.get('equal') else '**no**'}.",
    ]
    return lines


def _dedupe_read(median: dict, last: dict) -> str:
    """The dedupe's silver read (median) and the last run's event-id index lookups; n/a for older results."""
    if median.get("dedupe_silver_bytes_read") is None:
        return "n/a | n/a"
    return (
        f"{int(median['dedupe_silver_files_read'])} / {int(median['dedupe_silver_bytes_read']):,} | "
        f"{last.get('event_id_index_lookups') or 0:,} / {last.get('event_id_index_hits') or 0:,}"
    )


def _ingest_section(ingest: dict) -> list[str]:
    lines = [
        "",
        "### Feature store ingest (local backend, full ingest of the H lake)",
        "",
        f"{ingest['records']:,} records ({ingest['online_records']:,} online) in {ingest['batch_write_calls']:,} "
        f"BatchWriteRecord calls: **{ingest['records_per_batch_write']} records a call** (histogram "
        f"`{json.dumps(ingest['entries_per_call_histogram'])}`); the write step (Spark read, writer, SQLite, "
        f"offline Delta append) took {seconds_text(ingest['write_step_seconds'])} s: "
        f"{ingest['rows_per_second'] or 0:,} rows/s; the job {seconds_text(ingest['wall_seconds_with_startup'])} "
        f"s with start-up, peak RSS {gb(ingest['peak_rss_bytes'])} GB.",
    ]
    return lines


def _lookup_section(lookup: dict) -> list[str]:
    med = lookup["median"]
    lines = [
        "",
        f"### Online lookup ({lookup['lookups']:,} GetRecord calls on the local online store, "
        f"{lookup['cards_online']:,} cards)",
        "",
        "| p50 ms | p90 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|---|",
        f"| {med['p50_ms']} | {med['p90_ms']} | {med['p99_ms']} | {med['max_ms']} | {med['mean_ms']} |",
    ]
    return lines


README_TEMPLATE = f"""# Benchmarks

`make bench` (`scripts/benchmark.py`) measures the pipeline against a DuckDB reference
(`scripts/benchmark_reference.py`) on the same generated lakes and checks the targets of issue 11.

{README_START}
{README_END}
"""


def write_docs(results: dict, output_dir: Path) -> None:
    readme = output_dir / "README.md"
    text = readme.read_text() if readme.exists() else README_TEMPLATE
    if README_START not in text or README_END not in text:
        text = text.rstrip("\n") + f"\n\n{README_START}\n{README_END}\n"
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{results_markdown(results)}{README_END}{tail}")
    if results.get("serving_latency"):
        from devtools import serving_bench

        serving_bench.write_markdown(results["serving_latency"], readme)
    full = results.get("full_build")
    if full:
        plot_scaling(full["sizes"], output_dir / "scaling.png", results)


def plot_scaling(sizes: list[dict], path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [size["events"] / 1e6 for size in sizes]
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = (
        ("Spark, with start-up", [size["spark"]["median"]["wall_seconds_with_startup"] for size in sizes], "C0", "--"),
        ("Spark, without start-up", [size["spark"]["median"]["wall_seconds"] for size in sizes], "C0", "-"),
        ("DuckDB reference", [size["duckdb"]["median"]["wall_seconds"] for size in sizes], "C1", "-"),
    )
    for label, values, color, style in series:
        time_axis.plot(events, values, marker="o", color=color, linestyle=style, label=label)
    time_axis.set_xlabel("events (millions)")
    time_axis.set_ylabel("wall time (s)")
    time_axis.set_title("Full build: bronze → silver → gold")
    time_axis.grid(alpha=0.3)
    time_axis.legend()
    memory_axis.plot(
        events, [size["spark"]["median"]["peak_rss_bytes"] / 1e9 for size in sizes], marker="o", label="Spark"
    )
    memory_axis.plot(
        events, [size["duckdb"]["median"]["peak_rss_bytes"] / 1e9 for size in sizes], marker="o", label="DuckDB"
    )
    memory_axis.axhline(6.0, color="grey", linestyle=":", label="target (Spark at 5M)")
    memory_axis.set_xlabel("events (millions)")
    memory_axis.set_ylabel("peak RSS of the process tree (GB)")
    memory_axis.set_title("Memory")
    memory_axis.grid(alpha=0.3)
    memory_axis.legend()
    machine = results["machine"]
    figure.suptitle(
        f"{machine['logical_cores']} cores, {machine['memory_gib']} GiB; medians of {results['settings']['repeat']} "
        f"run(s); {results['generated_at'][:10]}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_summary(results: dict) -> None:
    print("\n=== benchmark summary ===")
    for size in (results.get("full_build") or {}).get("sizes", []):
        spark, duck = size["spark"]["median"], size["duckdb"]["median"]
        print(
            f"full build {size['events']:>10,} events: Spark {spark['wall_seconds']} s "
            f"({spark['wall_seconds_with_startup']} s with start-up), peak {gb(spark['peak_rss_bytes'])} GB; "
            f"DuckDB {duck['wall_seconds']} s, peak {gb(duck['peak_rss_bytes'])} GB; "
            f"ratio {size['ratio_spark_to_duckdb']}x; gold == reference: {size['verification']['equal']}"
        )
    stream = results.get("stream_increment")
    if stream:
        print(
            f"stream increment: H {stream['H']['median']['wall_seconds']} s, "
            f"2H {stream['2H']['median']['wall_seconds']} s, ratio {stream['ratio_2h_over_h']}"
        )
    cluster = results.get("standalone_cluster")
    if cluster:
        print(
            f"standalone cluster ({cluster['cluster']['workers']} workers): full build {cluster['events']:,} events "
            f"{cluster['spark']['wall_seconds']} s; tables == reference: {cluster['verification']['equal']}"
        )
    for target in results["targets"]:
        print(
            f"target {target['name']}: {target['value']} {target['unit']} (limit {target['limit']}) "
            f"{'met' if target['met'] else 'NOT met'}"
        )
