"""The benchmark's options: what to measure, how often and where, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devtools.repo import REPO_ROOT

STAGES = ("full", "stream", "ingest", "lookup", "serving")


@dataclass(frozen=True)
class SparkRunSettings:
    """How a Spark job is run: the master, extra --conf pairs, a folder for per-run event logs (None: no event
    log) and the RSS sampling interval."""

    master: str = "local[*]"
    conf: tuple[str, ...] = ()
    event_logs: Path | None = None
    sample_seconds: float = 0.1


@dataclass(frozen=True)
class BenchmarkOptions:
    """Every setting of a benchmark run (scripts/benchmark.py --help describes each). `sizes` always ends up
    holding `events`; an empty `sizes` means min(250k, events) and events."""

    events: int = 1_000_000
    sizes: tuple[int, ...] = ()
    repeat: int = 1
    output_dir: Path = REPO_ROOT / "docs" / "benchmarks"
    work_dir: Path = Path("/tmp/card-fraud-benchmark")
    skip: frozenset[str] = frozenset()
    events_per_card: int = 50
    days: int = 30
    seed: int = 7
    stream_history: int = 1_000_000
    stream_batch: int = 10_000
    stream_late_share: float = 0.1
    stream_late_hours: float = 72.0
    stream_repeat: int | None = None
    lookups: int = 10_000
    spark_master: str = "local[*]"
    spark_conf: tuple[str, ...] = ()
    event_log: bool = False
    standalone_cluster: bool = False  # cluster_stage.py: one more full build on a loopback standalone cluster
    sample_seconds: float = 0.1
    quiet_load: float | None = None  # wait before each timed run until the 1-minute load average is at most this
    quiet_wait: float = 600.0
    serving_requests: int = 2000
    serving_only: bool = False
    no_docs: bool = False
    baseline_tree: Path | None = None  # compare.py: the other checkout whose full build this one is timed against
    baseline_label: str = "v1"
    label: str = "v2"
    baseline_limit: float = 1.3
    command: str = "scripts/benchmark.py"  # recorded in results.json

    def __post_init__(self) -> None:
        unknown = set(self.skip) - set(STAGES)
        if unknown:
            raise ValueError(f"--skip: unknown stage(s) {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
        if self.repeat < 1:
            raise ValueError("--repeat must be >= 1")
        if self.stream_batch < 10:
            raise ValueError("--stream-batch must be >= 10")
        if not 0 <= self.stream_late_share <= 1:
            raise ValueError("--stream-late-share must be within [0, 1]")
        if self.stream_late_hours < 2:
            raise ValueError("--stream-late-hours must be >= 2 (late events arrive at least 2 h after their ts)")
        if self.baseline_label == self.label:
            raise ValueError("--baseline-label and --label must differ")
        if any(size < 1 for size in self.sizes):
            raise ValueError("sizes must be positive")
        # frozen: the derived values are set once, here
        object.__setattr__(
            self, "sizes", tuple(sorted(set((self.sizes or (min(250_000, self.events),)) + (self.events,))))
        )
        object.__setattr__(self, "skip", frozenset(self.skip))
        object.__setattr__(self, "work_dir", Path(self.work_dir).resolve())
        object.__setattr__(self, "output_dir", Path(self.output_dir).resolve())

    @property
    def spark_run(self) -> SparkRunSettings:
        return SparkRunSettings(
            master=self.spark_master,
            conf=self.spark_conf,
            event_logs=self.work_dir / "event-logs" if self.event_log else None,
            sample_seconds=self.sample_seconds,
        )
