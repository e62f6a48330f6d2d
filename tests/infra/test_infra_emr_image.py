"""Static checks of the EMR image: the Dockerfile and requirements-emr.txt (the image is built only in deploy.yml)."""

from __future__ import annotations

import re

from tests.infra import infra_model as tf

DOCKERFILE = tf.REPO_ROOT / "infra" / "docker" / "emr" / "Dockerfile"
REQUIREMENTS_EMR = tf.REPO_ROOT / "requirements-emr.txt"
REQUIREMENTS = tf.REPO_ROOT / "requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)")


def pins(path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_requirements_emr_leaves_spark_and_delta_to_the_base_image():
    emr = pins(REQUIREMENTS_EMR)
    assert "pyspark" not in emr and "delta-spark" not in emr


def test_requirements_emr_has_a_boto3_with_batch_write_record():
    emr = pins(REQUIREMENTS_EMR)
    assert version(emr["boto3"]) >= (1, 43, 37) and version(emr["botocore"]) >= (1, 43, 37)


def test_requirements_emr_matches_the_project_pins():
    emr, project = pins(REQUIREMENTS_EMR), pins(REQUIREMENTS)
    shared = set(emr) & set(project)
    assert {"boto3", "botocore", "pyarrow", "pandas", "numpy"} <= shared
    assert {name: emr[name] for name in shared} == {name: project[name] for name in shared}


def test_requirements_emr_is_fully_hash_pinned():
    text = REQUIREMENTS_EMR.read_text(encoding="utf-8")
    requirements = re.split(
        r"\n(?=[A-Za-z])", "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    )
    for requirement in filter(str.strip, requirements):
        assert PIN.match(requirement.strip()), requirement
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", requirement), f"no hash: {requirement.splitlines()[0]}"


def test_dockerfile_builds_on_the_emr_release_of_the_project():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG EMR_BASE_IMAGE=public.ecr.aws/emr-serverless/spark/emr-7.12.0:" in text
    assert "FROM ${EMR_BASE_IMAGE}" in text
    assert not re.search(r"pip[^\n]*install[^\n]*(pyspark|delta-spark)", text)


def test_dockerfile_installs_the_requirements_with_hashes_for_python_311():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG PYTHON=/usr/bin/python3.11" in text
    assert "--require-hashes" in text and "requirements-emr.txt" in text


def test_dockerfile_sets_pyspark_python_for_driver_and_executors():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"ENV PYSPARK_PYTHON=\$\{PYTHON\}", text)
    assert "PYSPARK_DRIVER_PYTHON=${PYTHON}" in text


def test_dockerfile_adds_the_verified_s3_dynamodb_log_store_jar():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "ARG DELTA_VERSION=3.3.2" in text
    assert "io/delta/delta-storage-s3-dynamodb/${DELTA_VERSION}" in text
    assert "sha1sum -c" in text and "sha256sum -c" in text
    assert "/usr/share/aws/delta/lib/delta-storage-s3-dynamodb.jar" in text
    # The application's spark.jars names the same path.
    emr_main = (tf.MODULES_ROOT / "emr_serverless" / "main.tf").read_text(encoding="utf-8")
    assert '"delta-storage-s3-dynamodb"' in emr_main and '"/usr/share/aws/delta/lib"' in emr_main


def test_dockerfile_ends_as_the_hadoop_user():
    instructions = [
        line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
    ]
    assert instructions[-1] == "USER hadoop:hadoop"


def _sdk_v1_check() -> tuple[str, list[str]]:
    """The Dockerfile's AWS SDK v1 check (its python -c program) and the jar patterns the build passes it."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", "")  # continuation lines, as Docker joins them
    [program] = re.findall(r"RUN \"\$\{PYTHON\}\" -c '(import glob.*?)'\s+\$\{AWS_SDK_V1_JARS\}", text)
    [patterns] = re.findall(r'^ARG AWS_SDK_V1_JARS="([^"]+)"', text, re.MULTILINE)
    return program, patterns.split()


def _jar(path, *classes: str):
    import zipfile

    with zipfile.ZipFile(path, "w") as jar:
        for name in classes:
            jar.writestr(name, b"\xca\xfe\xba\xbe")
    return path


def test_the_image_build_fails_when_the_log_store_jars_aws_sdk_v1_is_missing(tmp_path):
    """S3DynamoDBLogStore is built on AWS SDK v1 and not shaded: without the SDK on the classpath the first S3
    commit fails on EMR, so the build checks it (a RUN step that exits non-zero, naming the missing classes)."""
    import subprocess
    import sys

    program, patterns = _sdk_v1_check()
    assert patterns == ["/usr/share/aws/aws-java-sdk/*.jar", "/usr/lib/spark/jars/*.jar"]
    client = "com/amazonaws/services/dynamodbv2/AmazonDynamoDBClient.class"
    credentials = "com/amazonaws/auth/AWSCredentialsProvider.class"
    sdk, spark = tmp_path / "aws-java-sdk", tmp_path / "spark-jars"
    sdk.mkdir(), spark.mkdir()
    _jar(spark / "spark-core.jar", "org/apache/spark/SparkContext.class")

    def check(*jars: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", program, *jars], capture_output=True, text=True, check=False)

    globs = [f"{sdk}/*.jar", f"{spark}/*.jar"]
    missing = check(*globs)
    assert missing.returncode != 0
    assert "needs AWS SDK v1" in missing.stderr and client in missing.stderr and credentials in missing.stderr
    _jar(sdk / "aws-java-sdk-dynamodb.jar", client)
    only_client = check(*globs)
    assert only_client.returncode != 0 and credentials in only_client.stderr and client not in only_client.stderr
    _jar(sdk / "aws-java-sdk-core.jar", credentials)
    assert check(*globs).returncode == 0
