"""The one place that builds a SparkSession.

Local runs (spark-submit --master 'local[*]', pytest) and EMR Serverless differ only here:
- JVM-start settings (jars, driver memory, -Duser.timezone=UTC) live in the project's
  spark-defaults.conf, rendered by `make setup` into .spark/conf and found through SPARK_CONF_DIR.
- Locally the Python workers need the repository on their path and the venv's interpreter; on EMR
  the code arrives through --py-files and the image's PYSPARK_PYTHON.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_CONF_DIR = REPO_ROOT / ".spark" / "conf"

# Session settings that are safe to set at runtime; sized for one small machine locally.
RUNTIME_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.databricks.delta.merge.repartitionBeforeWrite.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}
LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.executorEnv.TZ": "UTC",
    # Delta rebuilds table state with this many tasks (default 50): far too many for a small machine.
    "spark.databricks.delta.snapshotPartitions": "2",
    # Files of tens of KB read with binaryFile (the chargeback feed; silver reads its planned bronze files itself,
    # one task per core: silver_ingest.planned_files_frame): pack them into a few read tasks. At the default
    # 4 MB open cost binaryFile put ~32 files in a task, and each Python (mapInArrow) task cost ~0.2-0.4 s of
    # overhead: 2,000 files, 63 tasks, parse_bronze 55.7 s; with 64 KB, 4 tasks and 19.3 s (200k-event lake).
    "spark.sql.files.openCostInBytes": "65536",
    # List binaryFile paths in the driver: past 32 paths Spark starts a listing job with one task per
    # path (2,000 tasks, 8-11 s for one batch here; 1.3 s in the driver). Not applied on EMR (S3 listing).
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
}


class SparkSetupError(RuntimeError):
    """The local Spark installation is not ready (run `make setup`)."""


def ensure_local_spark_conf() -> None:
    """Point SPARK_CONF_DIR at the project's rendered spark-defaults.conf before any JVM starts."""
    if os.environ.get("SPARK_CONF_DIR"):
        return
    if not (PROJECT_CONF_DIR / "spark-defaults.conf").exists():
        raise SparkSetupError(
            f"{PROJECT_CONF_DIR / 'spark-defaults.conf'} is missing: run `make setup` to fetch the jars "
            "and render the Spark configuration"
        )
    os.environ["SPARK_CONF_DIR"] = str(PROJECT_CONF_DIR)


def running_on_emr() -> bool:
    """EMR Serverless sets these in every driver container."""
    return any(name in os.environ for name in ("EMR_SERVERLESS_APPLICATION_ID", "SPARK_EMR_SERVERLESS"))


def s3a_settings(endpoint_url: str | None) -> dict[str, str]:
    """Route s3:// through S3A outside EMR (EMR has its own s3:// filesystem).

    Delta's S3DynamoDBLogStore keys its entries on the full path including the scheme, so every writer
    must use s3:// paths; here s3:// is simply served by S3A. A custom endpoint (moto in tests) needs
    path-style access and static credentials from the environment.
    """
    settings = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider,"
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider,"
            "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"
        ),
    }
    if endpoint_url:
        settings.update(
            {
                "spark.hadoop.fs.s3a.endpoint": endpoint_url,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint_url.startswith("https")).lower(),
                "spark.hadoop.fs.s3a.change.detection.mode": "none",
            }
        )
        for variable, key in (
            ("AWS_ACCESS_KEY_ID", "spark.hadoop.fs.s3a.access.key"),
            ("AWS_SECRET_ACCESS_KEY", "spark.hadoop.fs.s3a.secret.key"),
        ):
            if os.environ.get(variable):
                settings[key] = os.environ[variable]
    return settings


def build_spark_session(
    app_name: str,
    *,
    master: str | None = None,
    s3_endpoint_url: str | None = None,
    extra_conf: dict[str, str] | None = None,
):
    """Return the SparkSession for a job or a test.

    `master` is only for in-process callers (tests); spark-submit and EMR decide the master themselves.
    """
    from pyspark.sql import SparkSession

    on_emr = running_on_emr()
    if not on_emr:
        ensure_local_spark_conf()

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    settings = dict(RUNTIME_DEFAULTS)
    if not on_emr:
        settings.update(LOCAL_DEFAULTS)
        settings.update(s3a_settings(s3_endpoint_url))
        # Python workers import this repository's packages and must run the venv's interpreter.
        worker_path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        settings["spark.executorEnv.PYTHONPATH"] = worker_path
        # PySpark reads the worker interpreter from the environment of the driver process.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.update(extra_conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    _require_delta(spark, on_emr=on_emr)
    return spark


def _require_delta(spark, *, on_emr: bool) -> None:
    """Fail with the fix, not a py4j 'JavaPackage is not callable', when the Delta jars are missing."""
    from py4j.java_gateway import JavaClass

    # py4j resolves a name it cannot load as a JavaPackage (the classloader Spark gave the added jars is
    # the one py4j uses), which later fails as "'JavaPackage' object is not callable".
    if not isinstance(spark.sparkContext._jvm.io.delta.tables.DeltaTable, JavaClass):
        hint = (
            "add /usr/share/aws/delta/lib/delta-spark.jar and delta-storage.jar to spark.jars in the job's "
            "sparkSubmitParameters"
            if on_emr
            else "spark-submit did not load the project's spark-defaults.conf: run `source .venv/bin/activate` "
            f"(it sets SPARK_CONF_DIR={PROJECT_CONF_DIR}) or export SPARK_CONF_DIR, after `make setup`"
        )
        raise SparkSetupError(f"Delta Lake classes are not on Spark's classpath: {hint}")
