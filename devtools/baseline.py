"""The baseline fraud model on a day's datasets: gradient boosting on feature set v2, on v1, and on the amount.

Reads <lake-root>/gold/training/as_of=YYYY-MM-DD/{train,validation} (written by
spark_jobs/build_datasets.py; each split's rows are checked against the manifest's sha256 first), fits
scikit-learn's HistGradientBoostingClassifier on the training set three times with the same parameters and
random state (risk non-decreasing in each merchant feature, `monotone_constraints`): on the datasets'
features (feature set v2, all FEATURE_NAMES) plus the transaction amount, on
the v1 features (V1_FEATURE_NAMES) plus the amount, and on the amount alone (the bar to beat); scores the
validation set and reports ROC AUC, average precision and card precision@100 (per day, the share of
compromised cards among the 100 cards with the highest score that day, a card's score being its highest
transaction score; cards already detected are left out of later days; averaged over days, as in the Fraud
Detection Handbook). Overall against the datasets' labels (chargebacks), and, on a generated lake, per fraud
scenario against the generator's truth (`_generator/fraud_events.jsonl.gz`): each scenario's frauds against
all legitimate events (docs/evaluation.md).

Writes metrics.json, pr_curve.png and model.zip (the features model with its feature set version and
ordered input names, `feature_store/model_artifact.py`, which the serving endpoints score with) beside
the datasets. Same data and random_state give the same numbers. The command line is
scripts/train_baseline.py.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

AMOUNT = "amount_usd"
MODEL_FEATURES = "gradient_boosting_features"  # the datasets' features (v2): the model written as model.zip
MODEL_FEATURES_V1 = "gradient_boosting_features_v1"  # feature set v1's features, same learner: the comparison
MODEL_AMOUNT = "gradient_boosting_amount_only"
US_PER_DAY = 86_400_000_000


class BaselineError(RuntimeError):
    """The datasets cannot be used (missing, changed since the manifest, or a class absent)."""


# --- Reading and checking the datasets ----------------------------------------------------------------


def read_split(storage, relative_path: str) -> pa.Table:
    """Every Parquet file of one split (through the storage layer, so s3:// lakes work), sorted in
    content-hash order (ts_us, event_id)."""
    from spark_jobs.bronze_ledger import is_ignored_name

    prefix = storage.uri(relative_path)
    tables = [
        pq.read_table(pa.BufferReader(storage.read_bytes(stored.uri)))
        for stored in storage.list_files(prefix)
        if stored.uri.endswith(".parquet") and not is_ignored_name(stored.uri, prefix)
    ]
    if not tables:
        raise BaselineError(f"no Parquet files under {prefix}")
    table = pa.concat_tables(tables)
    return table.sort_by([("ts_us", "ascending"), ("event_id", "ascending")])


def split_sha256(table: pa.Table) -> str:
    """The split's sha256 under the manifest's content-hash rule."""
    import hashlib

    from spark_jobs.datasets import content_hash_line

    digest = hashlib.sha256()
    for batch in table.to_batches(max_chunksize=50_000):
        for row in batch.to_pylist():
            digest.update((content_hash_line(row) + "\n").encode("utf-8"))
    return digest.hexdigest()


def as_matrix(table: pa.Table, columns: list[str]) -> np.ndarray:
    """Columns as float64 (decimals converted, nulls as NaN: the model handles missing values)."""
    return np.column_stack(
        [table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False) for name in columns]
    ).astype(np.float64)


# --- Metrics -------------------------------------------------------------------------------------------------


def card_precision_at_k(days: np.ndarray, cards: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int):
    """Card precision@k as in the Fraud Detection Handbook (section 4.2): for each day in order, a card's
    score is its highest transaction score and its label its highest label; the k highest-scored cards
    (ties: by card id) are checked and the compromised ones among them are left out of later days;
    precision = compromised cards found / k. Returns (mean over days, {day: precision}, {day: compromised
    cards that day})."""
    import pandas as pd

    frame = pd.DataFrame({"day": days, "card_id": cards, "label": labels, "score": scores})
    detected: set[str] = set()
    per_day: dict[str, float] = {}
    compromised: dict[str, int] = {}
    for day in sorted(frame["day"].unique()):
        today = frame[(frame["day"] == day) & ~frame["card_id"].isin(detected)]
        by_card = today.groupby("card_id", sort=True).agg(score=("score", "max"), label=("label", "max"))
        by_card = by_card.reset_index().sort_values(["score", "card_id"], ascending=[False, True], kind="mergesort")
        top = by_card.head(k)
        found = top.loc[top["label"] == 1, "card_id"].tolist()
        per_day[str(day)] = len(found) / k
        compromised[str(day)] = int((by_card["label"] == 1).sum())
        detected.update(found)
    mean = float(np.mean(list(per_day.values()))) if per_day else float("nan")
    return mean, per_day, compromised


def evaluate(validation: pa.Table, scores: np.ndarray, k: int) -> dict:
    labels = validation.column("label").to_numpy()
    days = (validation.column("ts_us").to_numpy() // US_PER_DAY).astype("datetime64[D]").astype(str)
    cards = np.asarray(validation.column("card_id").to_pylist(), dtype=object)
    return _metrics(days, cards, labels, scores, k, per_day=True)


def _metrics(days, cards, labels: np.ndarray, scores: np.ndarray, k: int, *, per_day: bool) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    mean, by_day, _ = card_precision_at_k(days, cards, labels, scores, k)
    metrics = {
        "roc_auc": round(float(roc_auc_score(labels, scores)), 6),
        "average_precision": round(float(average_precision_score(labels, scores)), 6),
        f"card_precision_at_{k}": round(mean, 6),
    }
    if per_day:
        metrics[f"card_precision_at_{k}_per_day"] = {day: round(value, 6) for day, value in by_day.items()}
    return metrics


# --- Per fraud scenario (a generated lake's ground truth) ------------------------------------------------------


def scenario_truth(storage) -> dict[str, str] | None:
    """event_id -> fraud scenario from a generated lake's `_generator/fraud_events.jsonl.gz`; None when the lake
    has no generator manifest (a real lake: no per-scenario metrics)."""
    import gzip
    import json

    from devtools.generator.config import GENERATOR_DIR, MANIFEST_NAME

    manifest = storage.read_json(storage.uri(GENERATOR_DIR, MANIFEST_NAME))
    if manifest is None:
        return None
    text = gzip.decompress(storage.read_bytes(storage.uri(manifest["ground_truth"]["fraud_events"]))).decode("utf-8")
    return {row["event_id"]: row["scenario"] for row in map(json.loads, text.splitlines())}


def evaluate_scenarios(validation: pa.Table, scores: np.ndarray, truth: dict[str, str], k: int) -> dict:
    """For each scenario: its validation frauds (by the truth, reported or not) against every validation event
    that is no fraud at all; the other scenarios' frauds are left out. Metrics are null without such frauds."""
    from devtools.generator.config import SCENARIOS

    scenario = np.asarray([truth.get(event_id, "") for event_id in validation.column("event_id").to_pylist()])
    days = (validation.column("ts_us").to_numpy() // US_PER_DAY).astype("datetime64[D]").astype(str)
    cards = np.asarray(validation.column("card_id").to_pylist(), dtype=object)
    legitimate = scenario == ""
    results = {}
    for name in SCENARIOS:
        rows = legitimate | (scenario == name)
        frauds = int((scenario == name).sum())
        if frauds == 0 or not legitimate.any():
            results[name] = {
                "frauds": frauds,
                "roc_auc": None,
                "average_precision": None,
                f"card_precision_at_{k}": None,
            }
            continue
        labels = (scenario[rows] == name).astype(np.int64)
        results[name] = {"frauds": frauds, **_metrics(days[rows], cards[rows], labels, scores[rows], k, per_day=False)}
    return results


def v2_against_v1(models: dict) -> dict:
    """v2 minus v1: ROC AUC per scenario, and the overall ROC AUC and average precision."""
    v2, v1 = models[MODEL_FEATURES], models[MODEL_FEATURES_V1]

    def delta(new, old):
        return None if new is None or old is None else round(new - old, 6)

    return {
        "overall_roc_auc": delta(v2["roc_auc"], v1["roc_auc"]),
        "overall_average_precision": delta(v2["average_precision"], v1["average_precision"]),
        "scenario_roc_auc": {
            name: delta(result["roc_auc"], v1["scenarios"][name]["roc_auc"])
            for name, result in v2.get("scenarios", {}).items()
        },
    }


def model_params(random_state: int) -> dict:
    # No early stopping: it would hold out a random slice of train; everything else is scikit-learn's default.
    return {"max_iter": 200, "learning_rate": 0.1, "early_stopping": False, "random_state": random_state}


def monotone_constraints(inputs: list[str]) -> list[int] | None:
    """The learner's one constraint (docs/evaluation.md, Plan 2): a transaction's risk may not decrease with a
    merchant feature (+1 for each input of the merchant entity, 0 elsewhere). Why: the card scenarios' bursts
    land at low-volume merchants, so an unconstrained learner scores a busy merchant's events as legitimate,
    breached merchants included. None (no constraint) when no input is a merchant feature: v1, amount only."""
    from spark_jobs.feature_registry import MERCHANT_FEATURE_NAMES

    constraints = [1 if name in MERCHANT_FEATURE_NAMES else 0 for name in inputs]
    return constraints if any(constraints) else None


def fit_and_score(train: pa.Table, validation: pa.Table, inputs: list[str], random_state: int):
    """The fitted model and its validation scores."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(**model_params(random_state), monotonic_cst=monotone_constraints(inputs))
    model.fit(as_matrix(train, inputs), train.column("label").to_numpy())
    return model, model.predict_proba(as_matrix(validation, inputs))[:, 1]


def model_artifact_bytes(model, manifest: dict, inputs: list[str], metrics: dict, name: str) -> bytes:
    """The features model as the serving endpoints load it: with the datasets' feature set version and
    feature names (the ones it was trained on) and what it scored on validation."""
    from feature_store import model_artifact

    trained = metrics["models"][name]
    training = {
        "as_of": metrics["as_of"],
        "dataset_content_hash": metrics["dataset_content_hash"],
        "model": name,
        "params": trained["params"],
        "monotonic_cst": trained["monotonic_cst"],
        "validation": {
            key: value
            for key, value in trained.items()
            if key not in ("params", "inputs", "estimator", "monotonic_cst")
        },
    }
    return model_artifact.dumps(
        model,
        input_names=inputs,
        feature_set_version=manifest["feature_set_version"],
        feature_names=manifest["features"],
        training=training,
    )


def pr_curve_png(labels: np.ndarray, curves: dict[str, tuple[np.ndarray, dict]], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    figure, axes = plt.subplots(figsize=(7, 5), dpi=100)
    for name, (scores, metrics) in curves.items():
        precision, recall, _ = precision_recall_curve(labels, scores)
        axes.step(recall, precision, where="post", label=f"{name} (AP {metrics['average_precision']:.3f})")
    axes.axhline(labels.mean(), color="grey", linestyle=":", label=f"fraud rate {labels.mean():.3f}")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    axes.legend(loc="upper right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


# --- The run ---------------------------------------------------------------------------------------------------


def run_baseline(storage, as_of, *, top_k: int = 100, random_state: int = 0, threads: int = 1) -> dict:
    """Train, score and write metrics.json and pr_curve.png; returns the metrics document."""
    import importlib

    from threadpoolctl import threadpool_limits

    importlib.import_module("sklearn.ensemble")  # load its OpenMP runtime first, so that the limit applies to it

    with threadpool_limits(limits=threads):
        return _run_baseline(storage, as_of, top_k=top_k, random_state=random_state)


def _run_baseline(storage, as_of, *, top_k: int, random_state: int) -> dict:
    import sklearn

    from feature_store.model_artifact import MODEL_FILE_NAME
    from spark_jobs.datasets import TRAIN, VALIDATION
    from spark_jobs.feature_registry import V1_FEATURE_NAMES
    from spark_jobs.lake import DATASET_MANIFEST, training_file_uri

    manifest_uri = training_file_uri(storage, as_of, DATASET_MANIFEST)
    manifest = storage.read_json(manifest_uri)
    if manifest is None:
        raise BaselineError(
            f"no datasets for {as_of}: {manifest_uri} is missing "
            f"(run spark_jobs/build_datasets.py --as-of {as_of} first)"
        )
    tables = {}
    for split in (TRAIN, VALIDATION):
        entry = manifest["splits"][split]
        tables[split] = read_split(storage, entry["path"])
        if split_sha256(tables[split]) != entry["sha256"]:
            raise BaselineError(f"{entry['path']} differs from its manifest (sha256): rebuild the datasets")
        labels = tables[split].column("label").to_numpy()
        if len(labels) == 0 or labels.min() == labels.max():
            raise BaselineError(
                f"the {split} set needs both classes to train and score; it has {len(labels)} rows and "
                f"{int(labels.sum())} frauds (check the windows and the chargeback feed)"
            )
    train, validation = tables[TRAIN], tables[VALIDATION]
    inputs = {
        MODEL_FEATURES: [*manifest["features"], AMOUNT],
        MODEL_FEATURES_V1: [*V1_FEATURE_NAMES, AMOUNT],
        MODEL_AMOUNT: [AMOUNT],
    }
    fitted = {name: fit_and_score(train, validation, columns, random_state) for name, columns in inputs.items()}
    scores = {name: model_scores for name, (_, model_scores) in fitted.items()}
    results = {name: evaluate(validation, scores[name], top_k) for name in inputs}
    truth = scenario_truth(storage)
    if truth is not None:
        for name in inputs:
            results[name]["scenarios"] = evaluate_scenarios(validation, scores[name], truth, top_k)

    labels = validation.column("label").to_numpy()
    days = (validation.column("ts_us").to_numpy() // US_PER_DAY).astype("datetime64[D]").astype(str)
    cards = np.asarray(validation.column("card_id").to_pylist(), dtype=object)
    perfect, _, compromised = card_precision_at_k(days, cards, labels, labels.astype(float), top_k)
    metrics = {
        "as_of": as_of.isoformat(),
        "dataset_content_hash": manifest["content_hash"],
        "feature_set_version": manifest["feature_set_version"],
        "dataset": {
            split: {"rows": manifest["splits"][split]["rows"], "frauds": manifest["splits"][split]["frauds"]}
            for split in (TRAIN, VALIDATION)
        },
        "top_k": top_k,
        "model_artifact": {"file": MODEL_FILE_NAME, "model": MODEL_FEATURES},
        "models": {
            name: {
                "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
                "params": model_params(random_state),
                "inputs": inputs[name],
                "monotonic_cst": monotone_constraints(inputs[name]),
                **results[name],
            }
            for name in inputs
        },
        "v2_against_v1": v2_against_v1(results),
        "reference": {
            "validation_fraud_rate": round(float(labels.mean()), 6),
            f"card_precision_at_{top_k}_perfect_model": round(perfect, 6),
            "compromised_cards_per_day": compromised,
        },
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pyarrow": pa.__version__},
    }
    storage.write_json(training_file_uri(storage, as_of, "metrics.json"), metrics)
    title = f"Validation precision-recall, as of {as_of} ({len(labels)} events, {int(labels.sum())} frauds)"
    curves = {"features (v2) + amount": (scores[MODEL_FEATURES], results[MODEL_FEATURES])}
    curves["features v1 + amount"] = (scores[MODEL_FEATURES_V1], results[MODEL_FEATURES_V1])
    curves["amount only"] = (scores[MODEL_AMOUNT], results[MODEL_AMOUNT])
    storage.write_bytes(training_file_uri(storage, as_of, "pr_curve.png"), pr_curve_png(labels, curves, title))
    artifact = model_artifact_bytes(
        fitted[MODEL_FEATURES][0], manifest, inputs[MODEL_FEATURES], metrics, MODEL_FEATURES
    )
    storage.write_bytes(training_file_uri(storage, as_of, MODEL_FILE_NAME), artifact)
    return metrics


def format_table(metrics: dict) -> str:
    k = metrics["top_k"]
    train, validation = metrics["dataset"]["train"], metrics["dataset"]["validation"]
    header = f"{'model':<34} {'ROC AUC':>8} {'avg precision':>14} {f'card precision@{k}':>20}"
    lines = [
        f"baseline as_of={metrics['as_of']}: train {train['rows']} rows ({train['frauds']} frauds), "
        f"validation {validation['rows']} rows ({validation['frauds']} frauds)",
        header,
        "-" * len(header),
    ]
    for name, model in metrics["models"].items():
        lines.append(
            f"{name:<34} {model['roc_auc']:>8.4f} {model['average_precision']:>14.4f} "
            f"{model[f'card_precision_at_{k}']:>20.4f}"
        )
    reference = metrics["reference"]
    lines.append(
        f"{'(reference: random / perfect)':<34} {0.5:>8.4f} {reference['validation_fraud_rate']:>14.4f} "
        f"{reference[f'card_precision_at_{k}_perfect_model']:>20.4f}"
    )
    return "\n".join(lines + _scenario_lines(metrics))


def _scenario_lines(metrics: dict) -> list[str]:
    """The per-scenario comparison of v2 and v1 (nothing when the metrics have none: a real lake, or older)."""
    models = metrics["models"]
    if MODEL_FEATURES_V1 not in models or "scenarios" not in models[MODEL_FEATURES]:
        return []
    k = metrics["top_k"]
    v2, v1 = models[MODEL_FEATURES]["scenarios"], models[MODEL_FEATURES_V1]["scenarios"]

    def number(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    def signed(new, old) -> str:
        return "-" if new is None or old is None else f"{new - old:+.4f}"

    header = (
        f"{'scenario (truth; v1 -> v2)':<28} {'frauds':>6} {'ROC AUC v1':>10} {'v2':>7} {'change':>8} "
        f"{'avg prec v1':>11} {'v2':>7} {f'card prec@{k} v1':>16} {'v2':>7}"
    )
    lines = ["", "per fraud scenario: its frauds against all legitimate validation events", header, "-" * len(header)]
    for name, new in v2.items():
        old = v1[name]
        lines.append(
            f"{name:<28} {new['frauds']:>6} {number(old['roc_auc']):>10} {number(new['roc_auc']):>7} "
            f"{signed(new['roc_auc'], old['roc_auc']):>8} {number(old['average_precision']):>11} "
            f"{number(new['average_precision']):>7} {number(old[f'card_precision_at_{k}']):>16} "
            f"{number(new[f'card_precision_at_{k}']):>7}"
        )
    overall_v2, overall_v1 = models[MODEL_FEATURES], models[MODEL_FEATURES_V1]
    lines.append(
        f"{'overall (labels)':<28} {metrics['dataset']['validation']['frauds']:>6} "
        f"{overall_v1['roc_auc']:>10.4f} {overall_v2['roc_auc']:>7.4f} "
        f"{overall_v2['roc_auc'] - overall_v1['roc_auc']:>+8.4f} {overall_v1['average_precision']:>11.4f} "
        f"{overall_v2['average_precision']:>7.4f} {overall_v1[f'card_precision_at_{k}']:>16.4f} "
        f"{overall_v2[f'card_precision_at_{k}']:>7.4f}"
    )
    return lines
