"""make demo's serving step: the burst for one card goes through the HTTP service (uvicorn) and each
authorization sees the ones before it."""

from __future__ import annotations

from devtools.demo.serve_burst import BURST_SIZE, serve_burst
from tests.serving_fixtures import CARD, state_lake


def test_the_burst_climbs_through_the_http_service(tmp_path, capsys):
    lake = state_lake(tmp_path / "lake")
    answers = serve_burst(lake, CARD, model=None, log_path=lake / "_runs" / "serving_http.log")
    counts = [answer["features"]["txn_count_1h"] for answer in answers]
    # the card's last event is T0 (with two more in the hour before); the burst starts 9 s later
    assert counts == list(range(4, 4 + BURST_SIZE))
    assert answers[-1]["event_time"].startswith("2026-01-01T00:03:00")
    printed = capsys.readouterr().out
    assert "txn_count_1h 23" in printed and (lake / "_runs" / "serving_http.log").read_text()


def test_no_state_no_burst(tmp_path, capsys):
    assert serve_burst(tmp_path, CARD, model=None, log_path=tmp_path / "log") == []
    assert "SKIPPED: no online state" in capsys.readouterr().out
    assert not (tmp_path / "feature_store").exists()
