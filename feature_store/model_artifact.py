"""The baseline model as one file: the fitted estimator plus what it was trained on.

A model is only as good as the agreement between the features it was trained on and the features it is
served. The artifact therefore carries the feature set version and the ordered names of the model's
inputs, and `loads` refuses a model whose version or feature names differ from the running registry
(`spark_jobs/feature_registry.py`), naming both; scoring then builds the input row in the model's own order.

Format: a ZIP file (inspect it with `unzip -l`) holding `metadata.json` (format, feature set version,
feature names, input names, training metadata, the estimator pickle's sha256) and `estimator.pkl`. The
metadata is read and checked before anything is unpickled. Unpickling runs code: load only models you
trained (the lake's own `gold/training/` folder, or the deployment's bucket).

No Spark import: the serving Lambda loads it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from spark_jobs.feature_registry import FEATURE_NAMES, FEATURE_SET_VERSION

ARTIFACT_FORMAT = 1
METADATA_ENTRY = "metadata.json"
ESTIMATOR_ENTRY = "estimator.pkl"
MODEL_FILE_NAME = "model.zip"  # beside the datasets: gold/training/as_of=YYYY-MM-DD/model.zip

AMOUNT_INPUT = "amount_usd"  # the authorization's own USD amount, an input besides the registry features
REQUEST_INPUTS = (AMOUNT_INPUT,)

_FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)  # so that the same model gives the same bytes


class ModelArtifactError(ValueError):
    """The file is not a model artifact, is damaged, or does not match the running feature registry."""


@dataclass(frozen=True)
class ModelArtifact:
    """A fitted binary classifier (scikit-learn API: predict_proba) and the inputs it expects, in order."""

    estimator: Any
    feature_set_version: int
    feature_names: tuple[str, ...]  # the registry's features the model was trained with, registry order
    input_names: tuple[str, ...]  # the model's input columns in order: features and REQUEST_INPUTS
    training: Mapping[str, Any] = field(default_factory=dict)  # as_of, dataset hash, params, metrics

    def input_row(self, inputs: Mapping[str, int | Decimal | float | None]) -> list[float]:
        """The model's input row: each input as float in `input_names` order, null as NaN (the model
        handles missing values, as in training)."""
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise KeyError(f"model inputs missing: {', '.join(missing)} (the model expects {list(self.input_names)})")
        return [math.nan if inputs[name] is None else float(inputs[name]) for name in self.input_names]

    def score(self, inputs: Mapping[str, int | Decimal | float | None]) -> float:
        """The fraud probability (class 1) for one row of inputs."""
        import numpy as np

        row = np.asarray([self.input_row(inputs)], dtype=np.float64)
        return float(self.estimator.predict_proba(row)[0, 1])


def dumps(
    estimator: Any,
    *,
    input_names: Sequence[str],
    feature_set_version: int = FEATURE_SET_VERSION,
    feature_names: Sequence[str] = FEATURE_NAMES,
    training: Mapping[str, Any] | None = None,
) -> bytes:
    """The artifact's bytes. `input_names` is the estimator's column order; each must be one of
    `feature_names` or REQUEST_INPUTS."""
    _check_inputs(input_names, feature_names, "the model to save")
    pickled = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    metadata = {
        "format": ARTIFACT_FORMAT,
        "feature_set_version": feature_set_version,
        "feature_names": list(feature_names),
        "input_names": list(input_names),
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "estimator_sha256": hashlib.sha256(pickled).hexdigest(),
        "versions": _library_versions(),
        "training": dict(training or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in (
            (METADATA_ENTRY, json.dumps(metadata, indent=1, sort_keys=True, default=str).encode("utf-8")),
            (ESTIMATOR_ENTRY, pickled),
        ):
            archive.writestr(zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME), content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def read_metadata(data: bytes, *, source: str = "<model bytes>") -> dict:
    """The artifact's metadata.json, without unpickling anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            metadata = json.loads(archive.read(METADATA_ENTRY))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ModelArtifactError(
            f"{source} is not a model artifact ({error}); save models with feature_store.model_artifact"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != ARTIFACT_FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ModelArtifactError(f"{source}: artifact format {found!r}, this code reads format {ARTIFACT_FORMAT}")
    return metadata


def loads(
    data: bytes,
    *,
    source: str = "<model bytes>",
    feature_set_version: int = FEATURE_SET_VERSION,
    feature_names: Sequence[str] = FEATURE_NAMES,
) -> ModelArtifact:
    """Load an artifact, refusing one trained on another feature set version or other feature names than
    the running registry (`feature_set_version`, `feature_names`), or one whose library versions differ."""
    metadata = read_metadata(data, source=source)
    trained_version = metadata.get("feature_set_version")
    trained_names = list(metadata.get("feature_names") or [])
    if trained_version != feature_set_version or trained_names != list(feature_names):
        raise ModelArtifactError(
            f"{source} was trained on feature set version {trained_version} with features {trained_names}; "
            f"the running registry is version {feature_set_version} with features {list(feature_names)}: "
            "retrain it on datasets of this feature set (scripts/train_baseline.py)"
        )
    input_names = tuple(metadata.get("input_names") or ())
    _check_inputs(input_names, feature_names, source)
    running = _library_versions()
    if metadata.get("versions") != running:
        # A pickle from another scikit-learn can load and still predict differently: refuse, name both.
        raise ModelArtifactError(
            f"{source} was saved with {metadata.get('versions')}; this process runs {running}: retrain it "
            "with the pinned requirements (requirements-lock.txt)"
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickled = archive.read(ESTIMATOR_ENTRY)
    if hashlib.sha256(pickled).hexdigest() != metadata.get("estimator_sha256"):
        raise ModelArtifactError(f"{source}: {ESTIMATOR_ENTRY} differs from the sha256 in {METADATA_ENTRY} (damaged)")
    return ModelArtifact(
        estimator=pickle.loads(pickled),  # our own artifact, sha256-checked (see the module doc)
        feature_set_version=trained_version,
        feature_names=tuple(trained_names),
        input_names=input_names,
        training=metadata.get("training") or {},
    )


def save(path: str | Path, estimator: Any, **kwargs: Any) -> Path:
    """Write the artifact to a local file (atomically: a reader never sees half a model)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(dumps(estimator, **kwargs))
    partial.replace(target)
    return target


def load(path: str | Path, **kwargs: Any) -> ModelArtifact:
    """Load a local artifact file (see `loads`)."""
    target = Path(path)
    if not target.is_file():
        raise ModelArtifactError(f"no model file at {target} (train one: scripts/train_baseline.py)")
    return loads(target.read_bytes(), source=str(target), **kwargs)


def _check_inputs(input_names: Sequence[str], feature_names: Sequence[str], source: str) -> None:
    known = set(feature_names) | set(REQUEST_INPUTS)
    unknown = [name for name in input_names if name not in known]
    if not input_names or unknown or len(set(input_names)) != len(input_names):
        raise ModelArtifactError(
            f"{source}: model inputs {list(input_names)} must be distinct names among the features "
            f"{list(feature_names)} and the request inputs {list(REQUEST_INPUTS)} (unknown: {unknown})"
        )


def _library_versions() -> dict[str, str]:
    import numpy
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__}
