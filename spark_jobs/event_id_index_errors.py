"""The event-id index's one error, shared by its SQLite (`event_id_index`) and DynamoDB backends.

A module of its own so the DynamoDB backend does not import `event_id_index`, which opens it (no cycle).
"""

from __future__ import annotations


class EventIdIndexError(RuntimeError):
    """The index cannot be opened or keeps refusing a read or write; the message names the store."""
