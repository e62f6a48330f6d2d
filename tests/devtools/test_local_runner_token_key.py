"""The local runner asks for the public development key only for a local lake without a card-token secret."""

from __future__ import annotations

import pytest

from devtools.local_runner.services import _uses_development_token_key


@pytest.mark.parametrize(
    ("lake_root", "secret", "flag"),
    [
        ("/tmp/lake", "", True),  # make demo, the local pipeline: the flag, explicitly
        ("/tmp/lake", "card-features/key", False),  # a secret given: its key
        ("s3://bucket/lake", "", False),  # never for S3: the job stops, naming --card-token-secret-id
        ("s3a://bucket/lake", "", False),
    ],
)
def test_the_development_key_flag_only_for_a_local_lake_without_a_secret(lake_root, secret, flag):
    assert _uses_development_token_key({"lake_root": lake_root, "card_token_secret_id": secret}) is flag
