"""The baseline model on the generated lake's datasets: the feature model must clearly beat amount alone;
metrics.json, pr_curve.png and model.zip are written and reproducible; the saved model loads against the
registry and scores as in training; card precision@k follows the Handbook."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from devtools import baseline
from devtools.generator.config import SCENARIOS
from feature_store import model_artifact
from scripts import train_baseline
from spark_jobs import exit_codes
from spark_jobs.feature_registry import V1_FEATURE_NAMES
from spark_jobs.storage import open_lake
from tests.test_datasets_job import AS_OF, datasets_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return datasets_lake(tmp_path_factory)


def test_feature_model_clearly_beats_amount_alone(lake, capsys):
    assert train_baseline.main(["--as-of", AS_OF.isoformat(), "--lake-root", str(lake)]) == 0
    printed = capsys.readouterr().out
    folder = lake / f"gold/training/as_of={AS_OF}"
    metrics = json.loads((folder / "metrics.json").read_text())
    features = metrics["models"][baseline.MODEL_FEATURES]
    amount = metrics["models"][baseline.MODEL_AMOUNT]
    print(json.dumps({"features": features, "amount_only": amount}, indent=1))
    assert features["roc_auc"] >= 0.85 and amount["roc_auc"] <= 0.7
    assert features["roc_auc"] - amount["roc_auc"] >= 0.2
    assert features["average_precision"] >= 4 * amount["average_precision"]
    assert features["card_precision_at_100"] > amount["card_precision_at_100"]
    assert metrics["dataset_content_hash"] == json.loads((folder / "manifest.json").read_text())["content_hash"]
    assert (folder / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ROC AUC" in printed and baseline.MODEL_AMOUNT in printed and "model.zip" in printed

    # v1 against v2: the same learner and parameters on V1_FEATURE_NAMES; per scenario from the generator's truth.
    v1 = metrics["models"][baseline.MODEL_FEATURES_V1]
    assert v1["inputs"] == [*V1_FEATURE_NAMES, "amount_usd"] and v1["params"] == features["params"]
    assert features["inputs"] == [*json.loads((folder / "manifest.json").read_text())["features"], "amount_usd"]
    assert set(features["scenarios"]) == set(SCENARIOS) and features["scenarios"]["compromised_card"]["frauds"] > 0
    assert features["scenarios"]["compromised_card"]["roc_auc"] >= 0.85
    assert metrics["v2_against_v1"]["overall_average_precision"] == pytest.approx(
        features["average_precision"] - v1["average_precision"], abs=1e-6
    )
    assert "per fraud scenario" in printed and baseline.MODEL_FEATURES_V1 in printed

    # The saved features model loads against the running registry and scores validation rows as trained.
    model = model_artifact.load(folder / model_artifact.MODEL_FILE_NAME)
    assert model.input_names == (*metrics["models"][baseline.MODEL_FEATURES]["inputs"],)
    assert model.training["validation"]["roc_auc"] == features["roc_auc"]
    manifest = json.loads((folder / "manifest.json").read_text())
    validation = baseline.read_split(open_lake(str(lake)), manifest["splits"]["validation"]["path"])
    rows = validation.slice(0, 50).to_pylist()
    matrix = baseline.as_matrix(validation.slice(0, 50), list(model.input_names))
    expected = model.estimator.predict_proba(matrix)[:, 1]
    assert [model.score(row) for row in rows] == pytest.approx(expected.tolist(), abs=1e-12)

    # Same data, same random_state: the same numbers (metrics.json holds no run-specific values).
    assert train_baseline.main(["--as-of", AS_OF.isoformat(), "--lake-root", str(lake)]) == 0
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert model_artifact.load(folder / model_artifact.MODEL_FILE_NAME).training == model.training


def test_missing_datasets_are_a_clear_error(tmp_path, capsys):
    assert (
        train_baseline.main(["--as-of", "2026-03-01", "--lake-root", str(tmp_path)]) == exit_codes.PRECONDITION_FAILED
    )
    assert "build_datasets.py --as-of 2026-03-01" in capsys.readouterr().err


def test_scenario_metrics_take_one_scenario_against_the_legitimate_events():
    """Positives: the scenario's frauds by the truth (reported or not: labels are ignored); negatives: events
    that are no fraud; the other scenarios' frauds are left out; a scenario without frauds gets null metrics."""
    validation = pa.table(
        {
            "event_id": ["l1", "l2", "l3", "c1", "b1", "b2"],
            "card_id": ["a", "b", "c", "d", "e", "f"],
            "ts_us": [0, 1, 2, 3, 4, 5],
            "label": [0, 0, 0, 1, 0, 1],
        }
    )
    truth = {"c1": "compromised_card", "b1": "merchant_breach", "b2": "merchant_breach"}
    # The breach frauds score between the legitimate events; the card fraud scores above everything.
    scores = np.array([0.1, 0.5, 0.2, 0.9, 0.4, 0.6])
    results = baseline.evaluate_scenarios(validation, scores, truth, k=2)
    assert results["compromised_card"]["frauds"] == 1 and results["compromised_card"]["roc_auc"] == 1.0
    # b1 (0.4) beats l1 and l3, loses to l2; b2 (0.6) beats all three: 5 of 6 pairs
    assert results["merchant_breach"]["frauds"] == 2
    assert results["merchant_breach"]["roc_auc"] == pytest.approx(5 / 6)
    assert results["merchant_breach"]["card_precision_at_2"] == pytest.approx(1 / 2)  # one day: f, b in the top 2
    assert results["compromised_merchant"] == {
        "frauds": 0,
        "roc_auc": None,
        "average_precision": None,
        "card_precision_at_2": None,
    }


def test_card_precision_at_k_follows_the_handbook():
    """Day 1: cards a (fraud, score .9), b (legit, .8), c (fraud, .1): top 2 = a, b → 1/2.
    Day 2: a is already detected and left out; c (fraud, .7), b (legit, .6) → 1/2. k divides, always."""
    days = np.array(["d1", "d1", "d1", "d1", "d2", "d2", "d2"])
    cards = np.array(["a", "a", "b", "c", "a", "c", "b"], dtype=object)
    labels = np.array([0, 1, 0, 1, 1, 1, 0])
    scores = np.array([0.2, 0.9, 0.8, 0.1, 0.99, 0.7, 0.6])
    mean, per_day, compromised = baseline.card_precision_at_k(days, cards, labels, scores, 2)
    assert per_day == {"d1": 0.5, "d2": 0.5} and mean == 0.5
    assert compromised == {"d1": 2, "d2": 1}
    _, per_day_k3, _ = baseline.card_precision_at_k(days, cards, labels, scores, 3)
    assert per_day_k3 == {"d1": 2 / 3, "d2": 0.0}  # a and c found on d1: only b is left on d2


def test_learner_may_not_lower_risk_with_a_merchant_feature():
    """docs/evaluation.md, Plan 2: +1 on each merchant-entity input, 0 elsewhere; v1 and amount-only unconstrained;
    the fitted model's score never falls when a merchant feature grows, even where the training data says so."""
    from spark_jobs.feature_registry import FEATURE_NAMES, MERCHANT_FEATURE_NAMES

    inputs = [*FEATURE_NAMES, baseline.AMOUNT]
    constraints = baseline.monotone_constraints(inputs)
    assert [name for name, sign in zip(inputs, constraints, strict=True) if sign] == list(MERCHANT_FEATURE_NAMES)
    assert set(constraints) == {0, 1}
    assert baseline.monotone_constraints([*V1_FEATURE_NAMES, baseline.AMOUNT]) is None
    assert baseline.monotone_constraints([baseline.AMOUNT]) is None

    # Training data where fraud sits at low-volume merchants (the card scenarios' bursts): unconstrained, a busy
    # merchant would lower the score; constrained it may not.
    rng = np.random.default_rng(0)
    rows = 4000
    count = rng.integers(1, 400, rows).astype(float)
    amount = rng.lognormal(3, 1, rows)
    label = (rng.random(rows) < np.where(count < 50, 0.3, 0.01)).astype(np.int64)
    names = ["merchant_txn_count_7d", baseline.AMOUNT]
    train = pa.table({"merchant_txn_count_7d": count, baseline.AMOUNT: amount, "label": label})
    grid = np.linspace(1, 400, 50)
    probe = pa.table({"merchant_txn_count_7d": grid, baseline.AMOUNT: np.full(50, 20.0), "label": np.zeros(50, int)})
    _, scores = baseline.fit_and_score(train, probe, names, random_state=0)
    assert np.all(np.diff(scores) >= 0)
