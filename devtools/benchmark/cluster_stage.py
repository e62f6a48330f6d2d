"""--standalone-cluster: the full build at --events on a Spark standalone cluster on loopback
(devtools/standalone_cluster.py: a master and two one-core workers, executors in JVMs of their own, the job's
packages shipped as lakehouse.zip), verified against the DuckDB reference; recorded in results.json under
`standalone_cluster`. It proves the run does not depend on local mode; its time is not comparable with local[*]
(the executors' JVMs and the driver share the same cores)."""

from __future__ import annotations

import dataclasses

from devtools.benchmark.lakes import generated_lake, lake_tag
from devtools.benchmark.options import BenchmarkOptions
from devtools.benchmark.stages import _spark_full_build, verify_lake
from devtools.benchmark.stats import log
from devtools.standalone_cluster import executor_package, standalone_cluster

WORKERS = 2
CORES_PER_WORKER = 1
WORKER_MEMORY = "3g"  # an executor's heap; the local full build's peak RSS at 5M events was 2.8 GB per core


def standalone_cluster_stage(options: BenchmarkOptions) -> dict:
    events = options.events
    cards = max(1, events // options.events_per_card)
    pristine, _ = generated_lake(options, events=events, cards=cards, days=options.days)
    tag = lake_tag(events, cards, options.days, options.seed)
    run_root = options.work_dir / "runs" / f"standalone-{tag}"
    cluster_dir = options.work_dir / "standalone-cluster"
    log(f"standalone cluster: {WORKERS} workers × {CORES_PER_WORKER} core, {WORKER_MEMORY} each")
    with standalone_cluster(
        cluster_dir, workers=WORKERS, cores_per_worker=CORES_PER_WORKER, worker_memory=WORKER_MEMORY
    ) as cluster:
        package = executor_package(cluster_dir / "code")
        on_cluster = dataclasses.replace(
            options,
            spark_master=cluster.master_url,
            spark_conf=options.spark_conf + tuple(cluster.submit_conf(package)),
        )
        log(f"full build {events:,} events on {cluster.master_url}")
        timing, report = _spark_full_build(on_cluster, pristine, run_root)
        applications = cluster.status()["completedapps"]
    log(f"full build {events:,} events on the standalone cluster: verifying against the reference")
    verification = verify_lake(options, run_root, f"standalone-{tag}")
    return {
        "events": events,
        "cards": cards,
        "days": options.days,
        "cluster": {
            "master": cluster.master_url,
            "workers": WORKERS,
            "cores_per_worker": CORES_PER_WORKER,
            "worker_memory": WORKER_MEMORY,
            "applications": [{"name": app["name"], "state": app["state"]} for app in applications],
        },
        "run_root": str(run_root),
        # peak RSS and CPU time are the driver's process tree only: the executors are the workers' children
        "spark": timing,
        "accepted": report["counts"]["accepted"],
        "verification": verification,
    }
