"""serve_features.py: replay serves NDJSON lines in order with write-back (one output line per non-blank
input line, errors by line number), from a file or stdin; a missing lake or state is a clear error; the
http mode runs the service on uvicorn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from feature_store import serve_features
from spark_jobs import exit_codes
from tests.serving_fixtures import CARD_NUMBER, T0_S, authorization, state_lake

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "feature_store" / "serve_features.py"
DEV_KEY = "--allow-development-token-key"  # test lakes are tokenized with the public development key


def replay_input(path: Path) -> Path:
    lines = [
        authorization("a-1", T0_S + 10),
        "",
        authorization("a-2", T0_S + 20, amount="-1"),
        "   ",
        authorization("a-3", T0_S + 30),
        authorization("a-1", T0_S + 10),  # the same event again: the same features, nothing written
        authorization("a-1", T0_S + 10, amount="7"),  # the same event_id, another payload
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_serves_each_line_in_order_with_write_back(tmp_path, capsys):
    lake = state_lake(tmp_path / "lake")
    assert (
        serve_features.main(
            ["replay", DEV_KEY, "--lake-root", str(lake), "--input", str(replay_input(tmp_path / "in"))]
        )
        == 0
    )
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 5
    assert out[0]["event_id"] == "a-1" and out[0]["features"]["txn_count_1h"] == 4
    assert out[1]["line"] == 3 and out[1]["error"] == "non_positive_amount"
    assert out[2]["event_id"] == "a-3" and out[2]["features"]["txn_count_1h"] == 5  # a-1 was written back
    assert out[3] == out[0]
    assert out[4]["line"] == 7 and out[4]["error"] == "conflicting_duplicate"
    assert all(CARD_NUMBER not in json.dumps(line) for line in out)


def test_replay_reads_stdin_when_run_as_a_script(tmp_path):
    lake = state_lake(tmp_path / "lake")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "replay", DEV_KEY, "--lake-root", str(lake)],
        input=authorization("stdin-1", T0_S + 5) + "\n" + authorization("stdin-2", T0_S + 6),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    counts = [json.loads(line)["features"]["txn_count_1h"] for line in done.stdout.splitlines()]
    assert counts == [4, 5]


def test_a_missing_lake_or_state_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_CARD_TOKEN_KEY", raising=False)
    assert serve_features.main(["replay", "--lake-root", str(tmp_path / "nowhere")]) == exit_codes.PRECONDITION_FAILED
    assert "no lake at" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert serve_features.main(["http", "--lake-root", str(tmp_path / "empty")]) == exit_codes.PRECONDITION_FAILED
    err = capsys.readouterr().err
    assert "no online state at" in err and "online_state.db" in err and "Traceback" not in err
    lake = state_lake(tmp_path / "lake")
    model = str(tmp_path / "none.zip")
    assert (
        serve_features.main(["http", DEV_KEY, "--lake-root", str(lake), "--model", model]) == exit_codes.INVALID_INPUT
    )
    assert "no model file at" in capsys.readouterr().err
    # Without a key and without the flag: refused, naming what to pass (no silent public key).
    assert serve_features.main(["replay", "--lake-root", str(lake)]) == exit_codes.PRECONDITION_FAILED
    assert "--allow-development-token-key" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_http_mode_runs_the_service_on_uvicorn(tmp_path):
    lake = state_lake(tmp_path / "lake")
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, str(SCRIPT), "http", DEV_KEY, "--lake-root", str(lake), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180  # a loaded machine starts Python slowly
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    assert json.load(response)["status"] == "ok"
                break
            except (urllib.error.URLError, ConnectionError):
                assert service.poll() is None and time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        request = urllib.request.Request(f"{base}/v1/features", data=authorization("h-1", T0_S + 1).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["features"]["txn_count_1h"] == 4
        bad = urllib.request.Request(f"{base}/v1/features", data=b'{"event_id": 1}')
        try:
            urllib.request.urlopen(bad, timeout=10)
            raise AssertionError("a bad body was served")
        except urllib.error.HTTPError as error:
            assert error.code == 422 and json.load(error)["error"] in ("missing_field", "bad_type")
    finally:
        service.terminate()
        _, err = service.communicate(timeout=30)
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in logged if line.get("endpoint") == "/v1/features"]
    assert [line["status"] for line in requests] == [200, 422] and requests[0]["event_id"] == "h-1"
