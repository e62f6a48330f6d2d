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
