"""SageMaker Feature Store for the card features: group definitions, record serialisation, the batch writer,
the local (SQLite + Delta) backend, ingestion from gold, group registration and online reads.

See docs/feature_store.md for the request sequences and the local backend's semantics.
"""
