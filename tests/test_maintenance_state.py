"""The maintenance state's create-only commit names the run (no Spark: no tables to maintain)."""

from __future__ import annotations

import pytest

from spark_jobs.maintenance import maintain_tables
from spark_jobs.storage import CommitConflictError, CreateOnlyLog, open_lake


def test_a_maintenance_state_conflict_names_both_runs(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    storage = open_lake(str(tmp_path))
    monkeypatch.setattr(CreateOnlyLog, "latest", lambda self: None)  # both runs read the state before either commit
    maintain_tables(None, storage, {}, retention_hours=168, vacuum_full=False, run_id="run-first")
    with pytest.raises(CommitConflictError) as conflict:
        maintain_tables(None, storage, {}, retention_hours=168, vacuum_full=False, run_id="run-second")
    assert "made by run run-first" in str(conflict.value)
    assert "not by this run run-second" in str(conflict.value)
