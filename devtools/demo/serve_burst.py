"""The demo's serving step: a card-testing burst for one card through the HTTP service.

Starts `feature_store/serve_features.py http` (uvicorn on 127.0.0.1, a free port) over the demo lake's
online state, with the baseline model when it was trained, POSTs 20 authorizations of one card 9 seconds
apart right after the card's last event (3 minutes of event time), prints what each got back
(txn_count_1h climbing with every authorization) and stops the service.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devtools.repo import REPO_ROOT

BURST_SIZE = 20
BURST_SPACING_S = 9  # 20 x 9 s = 3 minutes
STARTUP_TIMEOUT_S = 180  # Python and uvicorn start slowly on a loaded 2-core machine


def serve_burst(lake: Path, card_id: str, *, model: Path | None, log_path: Path) -> list[dict]:
    """The burst's responses (empty when the card has no event in the state); prints one line per request."""
    from feature_store.online_state import local_state_path

    if not local_state_path(lake).exists():
        print(f"    SKIPPED: no online state at {local_state_path(lake)} (the pipeline's sync writes it)", flush=True)
        return []
    last_ts_us = last_event_ts_us(lake, card_id)
    if last_ts_us is None:
        print(f"    no event of {card_id} in the online state: nothing to serve", flush=True)
        return []
    port = free_port()
    command = [sys.executable, str(REPO_ROOT / "feature_store/serve_features.py"), "http", "--lake-root", str(lake)]
    command += ["--port", str(port), "--allow-development-token-key", *(["--model", str(model)] if model else [])]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        service = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_healthy(base, service)
            endpoint = "/v1/score" if model else "/v1/features"
            print(f"    uvicorn on {base} (log {log_path}); POST {endpoint} x {BURST_SIZE} for {card_id}", flush=True)
            return [post_one(base + endpoint, card_id, last_ts_us, number) for number in range(1, BURST_SIZE + 1)]
        finally:
            service.terminate()
            service.wait(timeout=30)


def post_one(url: str, card_id: str, last_ts_us: int, number: int) -> dict:
    ts_us = last_ts_us + number * BURST_SPACING_S * 1_000_000
    event_id, merchant = f"demo-burst-{number:02d}", f"m-burst-{number % 7}"
    # numbers written with their exact digits (the contract refuses exponents; no float repr in between)
    body = (
        f'{{"event_id": "{event_id}", "card_id": {json.dumps(card_id)}, '
        f'"ts": {ts_us // 1_000_000}.{ts_us % 1_000_000:06d}, "merchant_id": "{merchant}", "amount": 1.00, '
        '"currency": "USD", "country": "US", "pos_mode": "ecommerce"}'  # card testing: small amounts
    )
    request = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        answer = json.load(error)
    features = answer.get("features", {})
    score = f"  score {answer['score']:.4f}" if "score" in answer else ""
    print(
        f"    {number:2d} {answer.get('event_time', '?')}  txn_count_1h {features.get('txn_count_1h')}  "
        f"txn_amount_1h {features.get('txn_amount_1h')}  merchant_count_24h {features.get('merchant_count_24h')}"
        f"{score}{'  error ' + answer['error'] if 'error' in answer else ''}",
        flush=True,
    )
    return answer


def last_event_ts_us(lake: Path, card_id: str) -> int | None:
    from feature_store.online_state import SqliteOnlineState, local_state_path

    with SqliteOnlineState(local_state_path(lake)) as state:
        events = state.window(card_id, 0, 10**19)
    return events[-1].ts_us if events else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(base: str, service: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            if service.poll() is not None:
                raise RuntimeError(f"the HTTP service exited with {service.returncode} before answering") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP service did not answer within {STARTUP_TIMEOUT_S}s") from None
            time.sleep(0.25)
