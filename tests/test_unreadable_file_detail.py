"""An unreadable file's detail holds storage error text (which may name a producer-chosen object key): masked."""

from __future__ import annotations

from spark_jobs.silver import _unreadable_file

VISA = "4111111111111111"


def test_unreadable_file_detail_masks_a_card_number_in_the_error_text() -> None:
    error = FileNotFoundError(f"object bronze/ingest_dt=2026-01-01/card-{VISA}.gz not found")  # no errno: str()
    detail = _unreadable_file(error).unreadable_reason
    assert VISA not in detail
    assert "************1111" in detail


def test_unreadable_file_detail_masks_a_card_number_in_strerror() -> None:
    error = OSError(5, f"I/O error reading {VISA}")
    detail = _unreadable_file(error).unreadable_reason
    assert VISA not in detail and detail.endswith("************1111")
