"""The benchmark's DuckDB reference judges corner lines with the contract: it stores what Spark stores."""

from __future__ import annotations

from devtools.benchmark.reference import judge_lines
from devtools.repo import REPO_ROOT
from spark_jobs.card_numbers import CardTokenKeys, card_token, versioned_token
from spark_jobs.job_options import REPO_ROOT_FX_RATES
from tests.test_bronze_contract import VISA, line


def test_an_accepted_corner_line_keeps_only_the_current_versions_token() -> None:
    # Two held key versions: the parser's card_token holds both candidates; silver stores the current one only.
    keys = CardTokenKeys(current=2, keys=((1, b"old key, 16 bytes+"), (2, b"new key, 16 bytes+")))
    [(file_id, line_number, reason, row)] = judge_lines([(7, 1, line())], REPO_ROOT / REPO_ROOT_FX_RATES, keys)
    assert (file_id, line_number, reason) == (7, 1, None)
    assert row["card_token"] == versioned_token(2, card_token(VISA, b"new key, 16 bytes+"))
