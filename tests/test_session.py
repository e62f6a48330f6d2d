from decimal import Decimal


def test_session_is_utc_with_delta(spark, tmp_path):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    jvm_zone = spark.sparkContext._jvm.java.lang.System.getProperty("user.timezone")
    assert jvm_zone == "UTC"
    path = str(tmp_path / "t")
    spark.createDataFrame([(1, Decimal("1.2500"))], "id long, amount decimal(18,4)").write.format("delta").save(path)
    assert spark.read.format("delta").load(path).collect()[0].amount == Decimal("1.2500")


def test_python_workers_import_project_modules(spark):
    def tag(batches):
        import spark_jobs  # noqa: F401  (fails when the workers lack the repository on their path)

        yield from batches

    assert spark.range(3).mapInArrow(tag, "id long").count() == 3


def test_missing_delta_jars_give_the_fix_not_a_py4j_error():
    import re
    from types import SimpleNamespace

    import pytest

    from spark_jobs.session import SparkSetupError, _require_delta

    # What py4j hands back for a class it cannot load: a package object, not a JavaClass.
    missing = SimpleNamespace(io=SimpleNamespace(delta=SimpleNamespace(tables=SimpleNamespace(DeltaTable=object()))))
    no_delta = SimpleNamespace(sparkContext=SimpleNamespace(_jvm=missing))
    with pytest.raises(SparkSetupError, match=re.escape("source .venv/bin/activate")):
        _require_delta(no_delta, on_emr=False)
    with pytest.raises(SparkSetupError, match=re.escape("delta-spark.jar")):
        _require_delta(no_delta, on_emr=True)
