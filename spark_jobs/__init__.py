"""PySpark jobs and the library they share (session, storage, bronze contract, silver, gold)."""
