"""A Spark standalone cluster on loopback (a master and N workers from the venv's pyspark, `spark-class`), for
proving that the jobs do not depend on local mode: executors in JVMs of their own, Python workers started by
them, the job's code shipped to them the way EMR Serverless ships it (--py-files lakehouse.zip).

    with standalone_cluster(work_dir, workers=2) as cluster:
        spark-submit --master cluster.master_url, with every --conf of cluster.submit_conf()

Used by tests/test_standalone_cluster.py and the benchmark's --standalone-cluster. Every daemon runs in a
process group of its own (start_new_session), so stop() kills a worker together with the executors and Python
workers it started; stop() runs on every exit of the context manager.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# The daemons' own heap (master and worker bookkeeping only); executors get --worker-memory.
DAEMON_MEMORY = "512m"
# Python environment variables the daemons must not pass on to executors: the executors' Python workers get
# the job's code from --py-files (spark.submit.pyFiles) and the interpreter from the driver, as on EMR.
DRIVER_ONLY_VARIABLES = ("PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR")


class ClusterStartError(RuntimeError):
    """The cluster did not come up in time; the message holds the tail of every daemon's log."""


def spark_class_executable() -> Path:
    executable = Path(sys.executable).parent / "spark-class"
    if not executable.exists():
        raise FileNotFoundError(f"{executable} is missing: run `make setup` (pyspark installs spark-class)")
    return executable


def project_jars() -> list[str]:
    """spark.jars of the project's rendered spark-defaults.conf (the Delta and S3A jars `make setup` fetched)."""
    from devtools.repo import SPARK_CONF_DIR

    defaults = SPARK_CONF_DIR / "spark-defaults.conf"
    if not defaults.exists():
        return []
    for line in defaults.read_text().splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "spark.jars":
            return [jar.strip() for jar in value.strip().split(",") if jar.strip()]
    return []


def free_port() -> int:
    """A TCP port free on loopback right now (the daemon binds it a moment later; a clash fails the start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"--- {path}: missing"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path} (last {len(text)} lines)\n" + "\n".join(text)


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen
    log: Path


@dataclass
class StandaloneCluster:
    """A running loopback cluster: its master URL, the daemons (each its own process group) and the folders."""

    master_url: str
    web_ui_url: str
    work_dir: Path
    worker_memory: str
    cores_per_worker: int
    daemons: list[Daemon] = field(default_factory=list)
    _descendants: set = field(default_factory=set, repr=False)

    def submit_conf(self, py_files: Path | None = None) -> list[str]:
        """--conf pairs a spark-submit on this cluster needs: the driver reachable on loopback, executors that fit
        the workers, and the job's packages shipped to the executors (`py_files`: a lakehouse.zip)."""
        conf = [
            f"spark.driver.host={LOOPBACK}",
            f"spark.driver.bindAddress={LOOPBACK}",
            f"spark.executor.memory={self.worker_memory}",
            f"spark.executor.cores={self.cores_per_worker}",
        ]
        jars = project_jars()
        if jars:  # `local:`: on every node already, as on EMR's image; not copied to each executor (280 MB)
            conf.append("spark.jars=" + ",".join(f"local:{jar}" for jar in jars))
        if py_files is not None:
            conf.append(f"spark.submit.pyFiles={py_files}")
        return conf

    def status(self) -> dict:
        """The master's JSON status page (workers, their state, running applications)."""
        with urllib.request.urlopen(self.web_ui_url + "/json/", timeout=5) as response:
            return json.load(response)

    def log_tails(self) -> str:
        return "\n".join(log_tail(daemon.log) for daemon in self.daemons)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM to every daemon's process group (a worker's executors are in it), then SIGKILL to what is left
        after `grace_seconds`, including descendants that left the group: PySpark's Python worker daemon makes a
        process group of its own."""
        for daemon in reversed(self.daemons):
            self._descendants.update(_descendants(daemon.process.pid))
            _signal_group(daemon.process, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for daemon in reversed(self.daemons):
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(daemon.process, signal.SIGKILL)  # stragglers of the group (executors), if any
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.process.wait(timeout=5)
        for process in self._descendants:
            with contextlib.suppress(Exception):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(Exception):
                process.kill()

    def leftover_processes(self) -> list[str]:
        """Daemons and processes they started that are still alive (empty after a clean stop())."""
        import psutil

        watched = {psutil.Process(daemon.process.pid) for daemon in self.daemons if daemon.process.poll() is None}
        leftovers = []
        for process in watched | self._descendants:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    leftovers.append(f"{process.pid}: {' '.join(process.cmdline())[:160]}")
            except psutil.Error:
                continue
        return leftovers


def _descendants(pid: int) -> set:
    """Every live descendant of a process (psutil.Process objects: they refuse to act on a reused pid)."""
    import psutil

    try:
        return set(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return set()


def _signal_group(process: subprocess.Popen, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal_number)  # start_new_session: the group id is the daemon's pid


def _daemon_environment(work_dir: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in DRIVER_ONLY_VARIABLES}
    conf_dir = work_dir / "conf"  # empty: the daemons do not read the project's driver settings
    conf_dir.mkdir(parents=True, exist_ok=True)
    local_dir = work_dir / "local"
    local_dir.mkdir(parents=True, exist_ok=True)
    environment.update(
        # spark-class finds its home with whatever `python3` is first on PATH when SPARK_HOME is unset: on a
        # fresh machine (venv not activated) that one has no pyspark. The venv's pyspark package is the home.
        SPARK_HOME=str(Path(importlib.util.find_spec("pyspark").origin).parent),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_LOCAL_DIRS=str(local_dir),
        SPARK_DAEMON_MEMORY=DAEMON_MEMORY,
        SPARK_LOG_DIR=str(work_dir / "logs"),
        # A port taken between free_port() and the daemon's bind fails the daemon (start_cluster retries with
        # new ports) instead of Spark silently binding port + 1, which the URLs computed here would not name.
        SPARK_DAEMON_JAVA_OPTS="-Dspark.port.maxRetries=0",
    )
    return environment


def _start_daemon(name: str, arguments: list[str], environment: dict[str, str], log_dir: Path) -> Daemon:
    log = log_dir / f"{name}.log"
    with log.open("w") as output:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [str(spark_class_executable()), *arguments],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Daemon(name=name, process=process, log=log)


START_ATTEMPTS = 3  # a port clash (another process bound a chosen port first) is retried with new ports


def start_cluster(
    work_dir: Path,
    *,
    workers: int = 2,
    cores_per_worker: int = 1,
    worker_memory: str = "1g",
    timeout_seconds: float = 120.0,
) -> StandaloneCluster:
    """Start a master and `workers` workers on loopback and wait until all workers are registered and alive.
    Raises ClusterStartError (with the daemons' log tails) after `timeout_seconds`, having stopped them; a daemon
    that could not bind its port is retried with new ports, START_ATTEMPTS times in all."""
    for _ in range(START_ATTEMPTS - 1):
        try:
            return _start_cluster_once(work_dir, workers, cores_per_worker, worker_memory, timeout_seconds)
        except ClusterStartError as error:
            if not _port_clash(str(error)):
                raise
    return _start_cluster_once(work_dir, workers, cores_per_worker, worker_memory, timeout_seconds)


def _port_clash(message: str) -> bool:
    return "BindException" in message or "Address already in use" in message


def _start_cluster_once(
    work_dir: Path, workers: int, cores_per_worker: int, worker_memory: str, timeout_seconds: float
) -> StandaloneCluster:
    work_dir = Path(work_dir).resolve()
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    environment = _daemon_environment(work_dir)
    master_port, ui_port = free_port(), free_port()
    cluster = StandaloneCluster(
        master_url=f"spark://{LOOPBACK}:{master_port}",
        web_ui_url=f"http://{LOOPBACK}:{ui_port}",
        work_dir=work_dir,
        worker_memory=worker_memory,
        cores_per_worker=cores_per_worker,
    )
    try:
        master_arguments = [MASTER_CLASS, "--host", LOOPBACK, "--port", str(master_port), "--webui-port", str(ui_port)]
        cluster.daemons.append(_start_daemon("master", master_arguments, environment, log_dir))
        for number in range(1, workers + 1):
            worker_dir = work_dir / f"worker-{number}"
            worker_dir.mkdir(parents=True, exist_ok=True)
            arguments = [
                WORKER_CLASS,
                "--host",
                LOOPBACK,
                "--port",
                str(free_port()),
                "--webui-port",
                str(free_port()),
                "--cores",
                str(cores_per_worker),
                "--memory",
                worker_memory,
                "--work-dir",
                str(worker_dir),
                cluster.master_url,
            ]
            cluster.daemons.append(_start_daemon(f"worker-{number}", arguments, environment, log_dir))
        _wait_for_workers(cluster, workers, timeout_seconds)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_workers(cluster: StandaloneCluster, workers: int, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    last_state = "the master's status page did not answer"
    while time.monotonic() < deadline:
        exited = [daemon for daemon in cluster.daemons if daemon.process.poll() is not None]
        if exited:
            names = ", ".join(f"{daemon.name} (exit code {daemon.process.returncode})" for daemon in exited)
            raise ClusterStartError(f"standalone cluster: {names} exited during start-up\n{cluster.log_tails()}")
        try:
            status = cluster.status()
        except OSError:
            status = None
        if status is not None:
            alive = [worker for worker in status.get("workers", []) if worker.get("state") == "ALIVE"]
            last_state = f"master {status.get('status')}, {len(alive)} of {workers} workers alive"
            if status.get("status") == "ALIVE" and len(alive) >= workers:
                return
        time.sleep(0.5)
    raise ClusterStartError(
        f"standalone cluster at {cluster.master_url} not up within {timeout_seconds:.0f} s ({last_state})\n"
        f"{cluster.log_tails()}"
    )


@contextlib.contextmanager
def standalone_cluster(work_dir: Path, **settings) -> Iterator[StandaloneCluster]:
    """start_cluster(), stopped on every exit: an exception, Ctrl-C, and SIGTERM too (a CI timeout or `timeout`
    sends it; Python's default action would end the process without running `finally`, leaving the JVMs)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        cluster = start_cluster(work_dir, **settings)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signal_number, frame):
    raise KeyboardInterrupt(f"signal {signal_number}: stopping the standalone cluster")


def executor_package(target_dir: Path) -> Path:
    """lakehouse.zip of the shipped packages (devtools/packaging.py, as `make package` builds it for EMR) in
    `target_dir`: what spark.submit.pyFiles hands to the executors."""
    from devtools.packaging import PACKAGES, REPO_ROOT, build_zip, git_commit

    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "lakehouse.zip"
    packages = [package for package in PACKAGES if (REPO_ROOT / package / "__init__.py").exists()]
    build_zip(target, packages, {"git_commit": git_commit()})
    return target
