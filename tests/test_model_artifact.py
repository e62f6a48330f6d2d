"""The model artifact: a saved model loads back and scores the same; a model of another feature set
version or other feature names is refused, naming both; damage and foreign files are clear errors."""

from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from feature_store import model_artifact
from feature_store.model_artifact import AMOUNT_INPUT, ModelArtifactError
from spark_jobs.feature_registry import FEATURE_NAMES, FEATURE_SET_VERSION

INPUTS = (*FEATURE_NAMES, AMOUNT_INPUT)


@pytest.fixture(scope="module")
def estimator():
    """A small logistic model on the registry's inputs: fraud when the hour's count is high."""
    rng = np.random.default_rng(7)
    rows = rng.uniform(0, 10, size=(200, len(INPUTS)))
    labels = (rows[:, 0] > 6).astype(int)
    return LogisticRegression().fit(rows, labels)


def inputs(**overrides):
    values = {name: 1 for name in INPUTS}
    values.update(txn_amount_1h=Decimal("12.3400000000"), secs_since_prev_txn=None, amount_usd=Decimal("5.5"))
    values.update(overrides)
    return values


def test_saved_model_loads_back_and_scores_the_same(tmp_path, estimator):
    path = model_artifact.save(
        tmp_path / "model.zip", estimator, input_names=INPUTS, training={"as_of": "2026-01-22", "roc_auc": 0.9}
    )
    loaded = model_artifact.load(path)
    assert loaded.feature_set_version == FEATURE_SET_VERSION
    assert loaded.feature_names == FEATURE_NAMES and loaded.input_names == INPUTS
    assert loaded.training == {"as_of": "2026-01-22", "roc_auc": 0.9}
    # None becomes NaN; LogisticRegression cannot take NaN, so score a row without nulls.
    row = inputs(secs_since_prev_txn=3.0, txn_count_1h=9)
    expected = estimator.predict_proba(np.asarray([loaded.input_row(row)]))[0, 1]
    assert loaded.score(row) == pytest.approx(expected) and loaded.score(row) > 0.5
    assert loaded.score(inputs(secs_since_prev_txn=3.0, txn_count_1h=0)) < 0.5
    assert np.isnan(loaded.input_row(inputs())[FEATURE_NAMES.index("secs_since_prev_txn")])
    assert loaded.input_row(inputs())[-1] == 5.5  # the model's own order: amount last
    # The same model gives the same bytes (fixed ZIP times, sorted metadata).
    assert model_artifact.dumps(estimator, input_names=INPUTS) == model_artifact.dumps(estimator, input_names=INPUTS)


def test_a_missing_input_is_named(estimator):
    loaded = model_artifact.loads(model_artifact.dumps(estimator, input_names=INPUTS))
    row = inputs()
    del row["amount_usd"]
    with pytest.raises(KeyError, match="amount_usd"):
        loaded.score(row)


def test_another_feature_set_version_is_refused_naming_both(estimator):
    data = model_artifact.dumps(estimator, input_names=INPUTS, feature_set_version=FEATURE_SET_VERSION + 1)
    with pytest.raises(ModelArtifactError) as error:
        model_artifact.loads(data, source="s3://models/model.zip")
    message = str(error.value)
    assert f"version {FEATURE_SET_VERSION + 1}" in message and f"registry is version {FEATURE_SET_VERSION}" in message
    assert "s3://models/model.zip" in message and "train_baseline.py" in message


def test_other_feature_names_are_refused_naming_both(estimator):
    renamed = ("txn_count_60m", *FEATURE_NAMES[1:])
    data = model_artifact.dumps(estimator, input_names=(*renamed, AMOUNT_INPUT), feature_names=renamed)
    with pytest.raises(ModelArtifactError, match=r"txn_count_60m.*registry is version .*'txn_count_1h'"):
        model_artifact.loads(data)
    # The same names in another order are another feature set too.
    reordered = (*FEATURE_NAMES[1:], FEATURE_NAMES[0])
    data = model_artifact.dumps(estimator, input_names=INPUTS, feature_names=reordered)
    with pytest.raises(ModelArtifactError, match="trained on feature set version"):
        model_artifact.loads(data)


def test_inputs_must_be_features_or_request_fields(estimator):
    with pytest.raises(ModelArtifactError, match=r"unknown: \['merchant_risk'\]"):
        model_artifact.dumps(estimator, input_names=(*FEATURE_NAMES, "merchant_risk"))
    with pytest.raises(ModelArtifactError, match="distinct"):
        model_artifact.dumps(estimator, input_names=(*FEATURE_NAMES, "amount_usd", "amount_usd"))


def rewrite(data: bytes, edit) -> bytes:
    """The artifact with its metadata edited by `edit(metadata)` (and the pickle kept)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    metadata = json.loads(source.read(model_artifact.METADATA_ENTRY))
    edit(metadata)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        target.writestr(model_artifact.METADATA_ENTRY, json.dumps(metadata))
        target.writestr(model_artifact.ESTIMATOR_ENTRY, source.read(model_artifact.ESTIMATOR_ENTRY))
    return buffer.getvalue()


def test_damaged_foreign_and_other_library_versions_are_clear_errors(tmp_path, estimator):
    data = model_artifact.dumps(estimator, input_names=INPUTS)
    with pytest.raises(ModelArtifactError, match="not a model artifact"):
        model_artifact.loads(b"not a zip", source="model.pkl")
    with pytest.raises(ModelArtifactError, match=r"no model file at .*nothing.zip"):
        model_artifact.load(tmp_path / "nothing.zip")
    with pytest.raises(ModelArtifactError, match="damaged"):
        model_artifact.loads(rewrite(data, lambda metadata: metadata.update(estimator_sha256="0" * 64)))
    with pytest.raises(ModelArtifactError, match="format 99"):
        model_artifact.loads(rewrite(data, lambda metadata: metadata.update(format=99)))
    old = rewrite(data, lambda metadata: metadata["versions"].update({"scikit-learn": "0.24.2"}))
    with pytest.raises(ModelArtifactError, match=r"0.24.2.*this process runs"):
        model_artifact.loads(old)


def test_the_v2_artifact_records_version_2_and_the_22_names_and_a_v1_model_is_refused(estimator):
    from spark_jobs.feature_registry import V1_FEATURE_NAMES

    data = model_artifact.dumps(estimator, input_names=INPUTS)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        metadata = json.loads(archive.read(model_artifact.METADATA_ENTRY))
    assert metadata["feature_set_version"] == FEATURE_SET_VERSION == 2
    assert metadata["feature_names"] == list(FEATURE_NAMES) and len(FEATURE_NAMES) == 22
    assert FEATURE_NAMES[-6:] == (
        "merchant_txn_count_1d",
        "merchant_txn_count_7d",
        "merchant_txn_count_30d",
        "merchant_cb_rate_1d",
        "merchant_cb_rate_7d",
        "merchant_cb_rate_30d",
    )
    # the baseline v1 model (9 features, version 1): refused by v2 serving, naming both versions
    v1_inputs = (*V1_FEATURE_NAMES, AMOUNT_INPUT)
    v1_estimator = LogisticRegression().fit(np.eye(len(v1_inputs))[:2], [0, 1])
    v1 = model_artifact.dumps(
        v1_estimator, input_names=v1_inputs, feature_set_version=1, feature_names=V1_FEATURE_NAMES
    )
    with pytest.raises(ModelArtifactError) as refused:
        model_artifact.loads(v1, source="model-v1.zip")
    message = str(refused.value)
    assert "model-v1.zip was trained on feature set version 1" in message
    assert "the running registry is version 2" in message and "merchant_cb_rate_30d" in message
    assert "scripts/train_baseline.py" in message
