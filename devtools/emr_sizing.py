"""EMR Serverless sizing for a daily event volume, computed from the benchmark's measurements
(docs/benchmarks/results.json) and rendered into docs/scaling.md by devtools/doc_numbers.py (so the doc's
numbers change with the next `make bench`, never by hand).

Every figure comes from a measured one through the arithmetic below, under the assumptions docs/scaling.md
states: core time per event is the headline full build's (it scales linearly with cores), the stream run's
remaining time is a fixed per-run cost (its 2H/H ratio shows it does not grow with history), memory per core is
the full build's peak RSS over the machine's cores. The EMR Serverless limits (worker sizes, overhead, default
disk) are from the EMR Serverless User Guide, "Understanding application behavior" (checked 2026-12).
"""

from __future__ import annotations

import math

DAILY_VOLUMES = (10_000_000, 100_000_000, 1_000_000_000)
STREAM_INTERVAL_SECONDS = 600  # the pipeline's schedule: one stream run every 10 minutes
STREAM_DEADLINE_SHARE = 0.5  # a run must finish within half its interval, so one slow run does not queue the next
FULL_BUILD_DEADLINE_SECONDS = 3600  # a full rebuild (a new feature, a backfill) of the retained history in an hour
HISTORY_DAYS = 30  # the longest feature window: a full build covers this many days
EXECUTOR_VCPU = 4  # executor worker size chosen below; the memory follows from the measured memory per core
MEMORY_OVERHEAD = 0.10  # spark.*.memoryOverhead default: 10 % of the container memory (min 384 MB)
DEFAULT_DISK_GB = 20  # EMR Serverless default ephemeral storage per worker (20-200 GB)
# EMR Serverless worker sizes: vCPU -> (min GB, max GB, step GB)
WORKER_MEMORY_LIMITS = {1: (2, 8, 1), 2: (4, 16, 1), 4: (8, 30, 1), 8: (16, 60, 4), 16: (32, 120, 8)}


def _gb(value_bytes: float) -> float:
    return value_bytes / 1e9


def worker_memory_gb(vcpu: int, needed_gb: float) -> int:
    """The smallest memory EMR Serverless allows for a `vcpu` worker that holds `needed_gb`."""
    low, high, step = WORKER_MEMORY_LIMITS[vcpu]
    memory = max(low, math.ceil(needed_gb / step) * step)
    if memory > high:
        raise ValueError(f"{needed_gb:.1f} GB does not fit a {vcpu}-vCPU worker (at most {high} GB)")
    return memory


def measurements(results: dict) -> dict:
    """The measured inputs: the headline full build and the stream increment on H."""
    cores = results["machine"]["logical_cores"]
    events = results["settings"]["events"]
    full = next(size for size in results["full_build"]["sizes"] if size["events"] == events)
    spark = full["spark"]["median"]
    accepted = full["verification"]["spark_counts"]["accepted"]
    stream = results["stream_increment"]
    return {
        "cores": cores,
        "full_events": accepted,
        "full_wall_seconds": spark["wall_seconds"],
        "full_peak_rss_bytes": spark["peak_rss_bytes"],
        "full_steps": full["spark"]["runs"][-1]["steps"],
        "bronze_bytes_per_event": full["lake"]["bronze_bytes"] / full["events"],
        "stream_batch_events": stream["batch"]["events"],
        "stream_history_events": stream["H"]["events"],
        "stream_wall_seconds": stream["H"]["median"]["wall_seconds"],
        "stream_startup_seconds": stream["H"]["median"]["startup_seconds"],
        "stream_ratio_2h_over_h": stream["ratio_2h_over_h"],
    }


def derived(results: dict) -> dict:
    """Per-core throughput, the stream's fixed cost, memory per core and the worker sizes they give."""
    m = measurements(results)
    per_core = m["full_events"] / (m["full_wall_seconds"] * m["cores"])  # events per core-second
    stream_variable = m["stream_batch_events"] / (per_core * m["cores"])
    stream_fixed = m["stream_wall_seconds"] - stream_variable
    memory_per_core = _gb(m["full_peak_rss_bytes"]) / m["cores"]
    executor_memory = worker_memory_gb(EXECUTOR_VCPU, memory_per_core * (1 + MEMORY_OVERHEAD) * EXECUTOR_VCPU)
    return {
        **m,
        "events_per_core_second": per_core,
        "stream_variable_seconds": stream_variable,
        "stream_fixed_seconds": stream_fixed,
        "memory_per_core_gb": memory_per_core,
        "executor_memory_gb": executor_memory,
    }


def plan(results: dict, events_per_day: int) -> dict:
    """Stream and full-build capacity for `events_per_day`."""
    d = derived(results)
    per_core = d["events_per_core_second"]
    runs_per_day = 86_400 // STREAM_INTERVAL_SECONDS
    batch = events_per_day / runs_per_day
    budget = STREAM_INTERVAL_SECONDS * STREAM_DEADLINE_SHARE - d["stream_fixed_seconds"]
    stream_cores = max(1, math.ceil(batch / (per_core * budget)))
    stream_workers = math.ceil(stream_cores / EXECUTOR_VCPU)
    history = events_per_day * HISTORY_DAYS
    full_cores = max(1, math.ceil(history / (per_core * FULL_BUILD_DEADLINE_SECONDS)))
    full_workers = math.ceil(full_cores / EXECUTOR_VCPU)
    stream_seconds = d["stream_fixed_seconds"] + batch / (per_core * stream_workers * EXECUTOR_VCPU)
    full_seconds = history / (per_core * full_workers * EXECUTOR_VCPU)
    return {
        "events_per_day": events_per_day,
        "batch_events": batch,
        "stream_cores": stream_cores,
        "stream_workers": stream_workers,
        "stream_seconds": stream_seconds,
        "history_events": history,
        "history_bronze_gb": _gb(history * d["bronze_bytes_per_event"]),
        "full_cores": full_cores,
        "full_workers": full_workers,
        "full_seconds": full_seconds,
    }


def _capacity(workers: int, memory_gb: int) -> str:
    """maximumCapacity for a driver (DRIVER_VCPU, DRIVER_MEMORY) and `workers` executors."""
    return (
        f"{DRIVER_VCPU + workers * EXECUTOR_VCPU:,} vCPU, {DRIVER_MEMORY_GB + workers * memory_gb:,} GB, "
        f"{(1 + workers) * DEFAULT_DISK_GB:,} GB disk"
    )


DRIVER_VCPU = 1
DRIVER_HEAP_GB = 4  # spark.driver.memory of spark_jobs/conf/spark-defaults.conf.template, the setting measured
DRIVER_MEMORY_GB = worker_memory_gb(DRIVER_VCPU, DRIVER_HEAP_GB * (1 + MEMORY_OVERHEAD))


def sizing_inputs(results: dict) -> str:
    """docs/scaling.md: the measured inputs and the derived per-core figures, with their arithmetic."""
    d = derived(results)
    cores = d["cores"]
    lines = [
        f"Measured (`docs/benchmarks/results.json`, commit `{results['git_commit']}`, {results['generated_at'][:10]}, "
        f"`--master {results['settings']['spark_master']}` on {cores} logical cores):",
        "",
        f"- Full build: {d['full_events']:,} accepted events in {d['full_wall_seconds']:.1f} s without start-up, "
        f"peak RSS {_gb(d['full_peak_rss_bytes']):.2f} GB.",
        f"  **Throughput per core** = {d['full_events']:,} / ({d['full_wall_seconds']:.1f} s × {cores}) = "
        f"**{d['events_per_core_second']:,.0f} events per core-second**.",
        f"  **Memory per core** = {_gb(d['full_peak_rss_bytes']):.2f} GB / {cores} = **{d['memory_per_core_gb']:.2f} "
        "GB** (the driver's heap included: an upper bound for an executor).",
        f"- Stream increment: a {d['stream_batch_events']:,}-event batch on a {d['stream_history_events']:,}-event "
        f"history in {d['stream_wall_seconds']:.1f} s without start-up (median; {d['stream_startup_seconds']:.1f} s "
        f"JVM start-up before it); on twice the history {d['stream_ratio_2h_over_h']}× that.",
        f"  Its per-event part at the full build's rate = {d['stream_batch_events']:,} / "
        f"({d['events_per_core_second']:,.0f} × {cores}) = {d['stream_variable_seconds']:.2f} s; **fixed cost per "
        f"run** = {d['stream_wall_seconds']:.1f} − {d['stream_variable_seconds']:.2f} = "
        f"**{d['stream_fixed_seconds']:.1f} s**.",
        f"- Bronze: {d['bronze_bytes_per_event']:.0f} bytes per event (gzipped JSON lines of the generated lake).",
        "",
        "Core-seconds per million accepted events, step by step (the full build's run report; the steps that "
        "grow with the data):",
        "",
        "| step | s in the full build | core-s per 1M events |",
        "|---|---|---|",
    ]
    for name, seconds in sorted(d["full_steps"].items(), key=lambda item: -item[1]):
        lines.append(f"| `{name}` | {seconds:.1f} | {seconds * cores / d['full_events'] * 1e6:.1f} |")
    lines += [
        "",
        f"Executor workers: {EXECUTOR_VCPU} vCPU × {d['memory_per_core_gb']:.2f} GB per core × "
        f"{1 + MEMORY_OVERHEAD:.2f} (memory overhead) = "
        f"{d['memory_per_core_gb'] * (1 + MEMORY_OVERHEAD) * EXECUTOR_VCPU:.1f} GB → **{EXECUTOR_VCPU} vCPU, "
        f"{d['executor_memory_gb']} GB** (the smallest allowed size above it). Driver: spark.driver.memory "
        f"{DRIVER_HEAP_GB} GB × {1 + MEMORY_OVERHEAD:.2f} → **{DRIVER_VCPU} vCPU, {DRIVER_MEMORY_GB} GB**. "
        f"Disk: the {DEFAULT_DISK_GB} GB default per worker.",
    ]
    return "\n".join(lines)


def sizing_table(results: dict) -> str:
    """docs/scaling.md: the stream application and the full-build application, one row per daily volume."""
    d = derived(results)
    per_core, fixed, memory = d["events_per_core_second"], d["stream_fixed_seconds"], d["executor_memory_gb"]
    budget = STREAM_INTERVAL_SECONDS * STREAM_DEADLINE_SHARE - fixed
    lines = [
        f"Stream runs (every {STREAM_INTERVAL_SECONDS // 60} minutes; a run must end within "
        f"{STREAM_INTERVAL_SECONDS * STREAM_DEADLINE_SHARE:.0f} s, of which {fixed:.1f} s are the fixed cost, "
        f"leaving {budget:.0f} s for the batch):",
        "",
        "| events a day | batch = day / 144 | cores = batch / (rate × budget) | executors | pre-initialized "
        "(initialCapacity) | maximumCapacity | ≈ s a run |",
        "|---|---|---|---|---|---|---|",
    ]
    for volume in DAILY_VOLUMES:
        p = plan(results, volume)
        lines.append(
            f"| {volume:,} | {p['batch_events']:,.0f} | {p['batch_events']:,.0f} / ({per_core:,.0f} × {budget:.0f}) "
            f"= {p['batch_events'] / (per_core * budget):.2f} → {p['stream_cores']} | {p['stream_workers']} × "
            f"{EXECUTOR_VCPU} vCPU / {memory} GB | DRIVER 1 × {DRIVER_VCPU} vCPU / {DRIVER_MEMORY_GB} GB, EXECUTOR "
            f"{p['stream_workers']} × {EXECUTOR_VCPU} vCPU / {memory} GB | {_capacity(p['stream_workers'], memory)} | "
            f"{p['stream_seconds']:.0f} |"
        )
    lines += [
        "",
        f"Full builds (the {HISTORY_DAYS} days of history rebuilt within {FULL_BUILD_DEADLINE_SECONDS // 60} minutes):",
        "",
        f"| events a day | events in {HISTORY_DAYS} days (bronze) | cores = events / (rate × "
        f"{FULL_BUILD_DEADLINE_SECONDS} s) | executors | pre-initialized | maximumCapacity | ≈ min |",
        "|---|---|---|---|---|---|---|",
    ]
    for volume in DAILY_VOLUMES:
        p = plan(results, volume)
        lines.append(
            f"| {volume:,} | {p['history_events']:,} ({p['history_bronze_gb']:,.0f} GB) | {p['history_events']:,} / "
            f"({per_core:,.0f} × {FULL_BUILD_DEADLINE_SECONDS}) = "
            f"{p['history_events'] / (per_core * FULL_BUILD_DEADLINE_SECONDS):,.1f} → {p['full_cores']:,} | "
            f"{p['full_workers']} × {EXECUTOR_VCPU} vCPU / {memory} GB | none | "
            f"{_capacity(p['full_workers'], memory)} | {p['full_seconds'] / 60:.0f} |"
        )
    return "\n".join(lines)
