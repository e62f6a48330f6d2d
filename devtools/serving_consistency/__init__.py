"""Online/offline consistency of request-time features, measured on a generated lake (issue 16).

1. Generate a lake; build its first days (`history_days`) with the batch pipeline: a stream run of silver and
   gold, then the feature-store ingestion, which syncs the online state from silver.
2. Serve the following days' authorizations through `FeatureServer.serve` in event-time order, as a live
   scoring service sees them, except a seeded held-out share that reaches the platform only through bronze
   (late deliveries of earlier days also arrive only that way). Every request's outcome, features and the
   state window its computation saw go to a replay log (`<work-dir>/replay_log.jsonl.gz`).
3. Deliver every later arrival hour to bronze and run the stream pipeline: gold is now the offline truth.
4. Compare, per served event: (a) served == an independent DuckDB reference over exactly the logged state
   (must hold for all); (b) served == gold, required for every *unaffected* event — affected when some
   event gold counts in one of its windows was served after it or never served (decided from the log);
   and what the last batch's online features (the feature store's `get_features`) would have served.

    run_consistency(ConsistencyOptions(...), SparkSubmitPipeline(...)) -> results dict

    plan       which bronze lines are history, served (in what order) or held out; delivery
    replay     the serving loop and the replay log
    reference  the DuckDB reference, gold, and the affected events
    compare    match rates per feature
    summary    the console summary and the docs' Markdown table
    pipeline   the batch jobs, as spark-submit subprocesses or in this process
    run        the steps above, end to end
"""

from devtools.serving_consistency.pipeline import InProcessPipeline, SparkSubmitPipeline
from devtools.serving_consistency.run import ConsistencyOptions, analyze_existing, run_consistency

__all__ = ["ConsistencyOptions", "InProcessPipeline", "SparkSubmitPipeline", "analyze_existing", "run_consistency"]
