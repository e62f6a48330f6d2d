"""The replay job reads its reference data like silver_and_gold.py: the key secret and the FX file in --region."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from spark_jobs import card_numbers, session, storage
from spark_jobs.quarantine_replay import QuarantineReplayOptions, run_quarantine_replay


class _SparkNotNeeded(Exception):
    """Raised where the job would start Spark: the reference data is loaded by then."""


def test_replay_reads_the_key_secret_and_the_fx_file_in_the_runs_region(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    regions: dict[str, str | None] = {}
    real_open_file_bytes = storage.open_file_bytes
    real_resolve_token_keys = card_numbers.resolve_token_keys

    def keys_spy(secret_id, **kwargs):
        regions["token keys"] = kwargs.get("region")
        return real_resolve_token_keys(secret_id, **{**kwargs, "region": None})

    def open_spy(source, *, endpoint_url=None, region=None):
        regions["fx rates"] = region
        return real_open_file_bytes(source, endpoint_url=endpoint_url)

    def no_spark(*args, **kwargs):
        raise _SparkNotNeeded

    monkeypatch.setattr(card_numbers, "resolve_token_keys", keys_spy)
    monkeypatch.setattr(storage, "open_file_bytes", open_spy)
    monkeypatch.setattr(session, "build_spark_session", no_spark)
    options = QuarantineReplayOptions(allow_development_token_key=True, region="eu-west-1")
    lake = SimpleNamespace(root=str(tmp_path))
    report = SimpleNamespace(run_id="run-1", started_at=None, counts={})
    with pytest.raises(_SparkNotNeeded):
        run_quarantine_replay(lake, report, options)
    assert regions == {"token keys": "eu-west-1", "fx rates": "eu-west-1"}
