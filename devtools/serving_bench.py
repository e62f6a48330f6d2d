"""Serving latency (issue 16): request-time computation, the full request, and the local HTTP service.

On a scratch lake's local SQLite state, for cards with 1, 100 and 1,000 events in the window:

- `compute`: `compute_features(history, current)` alone (the history already in memory);
- `compute_with_state_read`: the card's window read from the SQLite state, then the computation — the
  figure of the `serving_compute_p99_ms` target (100-event card, ≤ 2 ms);
- `full_request`: `FeatureServer.serve(raw body)`: judge the body by the bronze contract, read the window,
  compute, write the authorization back, and read the merchant's snapshot record from the local online store's
  merchant group (one found record: `register_merchant_group`) (each request a new event; cards are rotated so
  a window grows by at most requests / cards events);
- `http`: `feature_store/serve_features.py http` (uvicorn on 127.0.0.1, its own process) answering a bounded
  number of sequential `POST /v1/features` from one keep-alive client; p50/p99 as the client sees them and
  requests/s; the service is stopped afterwards — the `serving_http_p99_ms` target (≤ 10 ms, 100-event cards).

    measure_serving(work_dir) -> dict        (results.json's `serving_latency`)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from devtools.repo import REPO_ROOT

WINDOW_SIZES = (1, 100, 1000)
TARGET_WINDOW_SIZE = 100
T0_US = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000
SPREAD_US = int(timedelta(days=6).total_seconds()) * 1_000_000  # stored events spread over 6 of the 7 days
README_START = "<!-- serving:start -->"
README_END = "<!-- serving:end -->"


def percentiles(samples_ns: list[int]) -> dict:
    ordered = sorted(samples_ns)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1e6, 4)

    return {
        "samples": len(ordered),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] / 1e6, 4),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 4),
    }


def body(event_id: str, card_id: str, ts_us: int, amount: str = "42.50") -> str:
    """One bronze-contract authorization (ts and amount as JSON numbers, as producers send them)."""
    ts = f"{ts_us // 1_000_000}.{ts_us % 1_000_000:06d}"
    return (
        f'{{"event_id": {json.dumps(event_id)}, "card_id": {json.dumps(card_id)}, "ts": {ts}, '
        f'"merchant_id": "mer_bench_1", "amount": {amount}, "currency": "USD", "country": "US", "pos_mode": "chip"}}'
    )


def register_merchant_group(lake: Path) -> None:
    """The scratch lake's local online store (`feature_store/online.db`) with the feature groups, one merchant
    snapshot record of the authorizations' merchant (T0's day) and T0's day published, so that every full request
    includes the merchant lookup a served authorization makes."""
    from feature_store.backends.local import LocalFeatureStoreRuntime, LocalStore
    from feature_store.definitions import group_specs
    from feature_store.merchant_lookup import day_start_us, published_marker_record, utc_day
    from feature_store.records import to_record
    from spark_jobs.feature_registry import MERCHANT, MERCHANT_FEATURE_NAMES

    store = LocalStore(lake / "feature_store" / "online.db")
    try:
        for spec in group_specs():
            store.create_group(spec)
        row = {"merchant_id": "mer_bench_1", "snapshot_start_us": day_start_us(utc_day(T0_US))}
        row.update(dict(zip(MERCHANT_FEATURE_NAMES, (120, 800, 3300, 0.01, 0.012, 0.011), strict=True)))
        entry = {"FeatureGroupName": group_specs()[1].name, "Record": to_record(row, MERCHANT)}
        # and the published-day marker of that day, as ingestion writes it: the lookup is an exact one
        marker = {"FeatureGroupName": group_specs()[1].name, "Record": published_marker_record(utc_day(T0_US))}
        LocalFeatureStoreRuntime(store).batch_write_record(
            Entries=[{**item, "TargetStores": ["OnlineStore"]} for item in (entry, marker)]
        )
    finally:
        store.close()


def stored_events(card_id: str, count: int) -> list:
    """`count` silver events of a card spread over the 6 days before T0 (all inside the 7-day window)."""
    from feature_store.online_state import SILVER, StateEvent

    step = SPREAD_US // max(count, 1)
    return [
        StateEvent(
            card_id=card_id,
            event_id=f"{card_id}-stored-{index}",
            ts_us=T0_US - (index + 1) * step,
            amount_usd=Decimal(f"{10 + index % 97}.{index % 10000:04d}000000"),
            merchant_id=f"mer_{index % 13}",
            country=("US", "GB", "FR")[index % 3],
            origin=SILVER,
            payload_fingerprint=f"bench-{index}",
        )
        for index in range(count)
    ]


def current_event(card_id: str, ts_us: int):
    from feature_store.online_state import SERVED, StateEvent

    return StateEvent(card_id, f"{card_id}-now", ts_us, Decimal("42.5000000000"), "mer_bench_1", "US", SERVED, "x")


def measure_compute(state, card_id: str, size: int, iterations: int) -> tuple[dict, dict]:
    """(compute alone, state read + compute) for a card whose window holds `size` events with the current."""
    from feature_store.request_features import compute_features, history_bounds

    current = current_event(card_id, T0_US)
    history = [*state.window(card_id, *history_bounds(T0_US)), current]
    assert len(history) == size, (len(history), size)
    alone, with_read = [], []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        compute_features(history, current)
        alone.append(time.perf_counter_ns() - started)
    for _ in range(iterations):
        started = time.perf_counter_ns()
        compute_features(state.window(card_id, *history_bounds(T0_US)), current)
        with_read.append(time.perf_counter_ns() - started)
    return percentiles(alone), percentiles(with_read)


def populate(state, size: int, cards: int) -> list[str]:
    card_ids = [f"card_bench_{size}_{index:04d}" for index in range(cards)]
    if size > 1:
        for card_id in card_ids:
            state.upsert_silver(stored_events(card_id, size - 1))
    return card_ids


def measure_full_requests(server, card_ids: list[str], requests: int, label: str) -> dict:
    """`serve` of `requests` new authorizations, rotating over the cards (a new card each for 1-event cards)."""
    samples = []
    for index in range(requests):
        card_id = card_ids[index % len(card_ids)]
        raw = body(f"bench-{label}-{index}", card_id, T0_US + 1000 * (index + 1))
        started = time.perf_counter_ns()
        served = server.serve(raw)
        samples.append(time.perf_counter_ns() - started)
        if served.replayed:
            raise RuntimeError(f"request {index} was replayed: the benchmark's event ids must be new")
    return percentiles(samples)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_http(lake: Path, card_ids: list[str], requests: int, warmup: int = 50) -> dict:
    """The HTTP service in its own process: sequential requests from one keep-alive client, then stopped."""
    import httpx2 as httpx  # the lock pins httpx2 (starlette 1.x), the same client API

    port = free_port()
    command = [sys.executable, str(REPO_ROOT / "feature_store/serve_features.py"), "http"]
    command += ["--lake-root", str(lake), "--port", str(port), "--allow-development-token-key"]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    log_path = lake / "http_service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10.0) as client:
            wait_until_healthy(client, process, log_path)
            samples = []
            for index in range(warmup + requests):
                card_id = card_ids[index % len(card_ids)]
                raw = body(f"bench-http-{index}", card_id, T0_US + 10_000_000 + 1000 * index)
                started = time.perf_counter_ns()
                response = client.post("/v1/features", content=raw, headers={"content-type": "application/json"})
                elapsed = time.perf_counter_ns() - started
                if response.status_code != 200:
                    raise RuntimeError(f"POST /v1/features answered {response.status_code}: {response.text[:300]}")
                if index >= warmup:
                    samples.append(elapsed)
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful stop
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    result = percentiles(samples)
    result["requests_per_second"] = round(len(samples) / (sum(samples) / 1e9), 1)
    result["client"] = "one keep-alive httpx client, sequential requests, after a warm-up of 50"
    return result


def wait_until_healthy(client, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    import httpx2 as httpx  # the lock pins httpx2 (starlette 1.x), the same client API

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the HTTP service exited with {process.returncode}; see {log_path}")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the HTTP service did not answer /health within {timeout:.0f} s; see {log_path}")


def measure_serving(work_dir: Path, *, requests: int = 2000, http_requests: int = 2000) -> dict:
    """Every serving latency figure on a fresh scratch lake under work_dir."""
    from feature_store.online_state import SqliteOnlineState, local_state_path
    from feature_store.serving import FeatureServer

    lake = work_dir / "serving_lake"
    if lake.exists():
        shutil.rmtree(lake)
    (lake / "feature_store").mkdir(parents=True)
    register_merchant_group(lake)
    state = SqliteOnlineState(local_state_path(lake))
    server = FeatureServer.local(str(lake), allow_dev_key=True)  # a scratch lake: the public key
    results: dict = {"window_sizes": list(WINDOW_SIZES), "compute": {}, "compute_with_state_read": {}}
    results["full_request"] = {}
    try:
        for size in WINDOW_SIZES:
            iterations = requests if size < 1000 else max(1, requests // 4)
            cards = populate(state, size, cards={1: iterations, 100: 100, 1000: 50}[size])
            alone, with_read = measure_compute(state, cards[0], size, iterations)
            results["compute"][str(size)], results["compute_with_state_read"][str(size)] = alone, with_read
            results["full_request"][str(size)] = measure_full_requests(server, cards, iterations, str(size))
    finally:
        state.close()
        close = getattr(server, "close", None)
        if close is not None:
            close()
    if http_requests:
        http_cards = [f"card_bench_{TARGET_WINDOW_SIZE}_{index:04d}" for index in range(100)]
        results["http"] = measure_http(lake, http_cards, http_requests)
    results["compute_p99_ms"] = results["compute_with_state_read"][str(TARGET_WINDOW_SIZE)]["p99_ms"]
    results["http_p99_ms"] = results.get("http", {}).get("p99_ms")
    return results


def markdown(serving: dict) -> str:
    """The serving section of docs/benchmarks/README.md."""
    lines = [
        "| card's events in the window | compute p50 / p99 (ms) | state read + compute p50 / p99 (ms) | "
        "full request p50 / p99 (ms) |",
        "|---|---|---|---|",
    ]
    for size in serving["window_sizes"]:
        key = str(size)
        cells = [serving[part][key] for part in ("compute", "compute_with_state_read", "full_request")]
        lines.append(f"| {size:,} | " + " | ".join(f"{cell['p50_ms']} / {cell['p99_ms']}" for cell in cells) + " |")
    http = serving.get("http")
    if http:
        lines += [
            "",
            f"HTTP service (uvicorn on 127.0.0.1, 100-event cards, {http['samples']:,} requests, {http['client']}): "
            f"p50 {http['p50_ms']} ms, p99 {http['p99_ms']} ms, {http['requests_per_second']:,} requests/s.",
        ]
    return "\n".join(lines) + "\n"


def write_markdown(serving: dict, readme: Path) -> None:
    """Put the serving tables between the serving markers of the benchmarks README (appended if absent)."""
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    if README_START not in text or README_END not in text:
        text = text.rstrip("\n") + f"\n\n## Serving latency (issue 16)\n\n{README_START}\n{README_END}\n"
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{markdown(serving)}{README_END}{tail}")
