"""A real train-and-choose: classifiers of scikit-learn's bundled digits (configs/digits_dag.yaml).

Plain functions, as a user writes them: no Airflow import, files in and paths out. The
pipeline passes files, not arrays, between its tasks because each task may run in
another process (or on another machine with a shared disk): ``prepare`` writes the
split once, each ``train`` reads it and writes its model beside it, and the winner's
model is the one ``publish`` copies. XCom carries only the paths and the accuracies.

Everything lives under one base folder, ``$DAGFACTORY_DEMO_DATA`` (default
``<temp dir>/dagfactory-digits``): ``<run>/digits.npz`` and the models of each run in a
folder of its own, and ``published/`` with the model that won last. The data set ships
with scikit-learn (``load_digits`` reads no network), and every seed is fixed, so a run
gives the same accuracies on every machine with the same scikit-learn.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

# The classifiers a trainer can name, and whether each takes a random_state to fix.
ESTIMATORS: dict[str, tuple[type, bool]] = {
    "logistic_regression": (LogisticRegression, True),
    "random_forest": (RandomForestClassifier, True),
    "svc": (SVC, True),
    "knn": (KNeighborsClassifier, False),
}
# Those fitted on standardized pixels. On the raw values (0 to 16) lbfgs stops after
# about 170 iterations at a point that depends on the CPU's floating-point kernels, and
# one test digit in 450 came out differently on two machines; standardized, it converges
# in about 30, to the same model.
STANDARDIZED = {"logistic_regression"}
RANDOM_STATE = 0
DATA_FILE = "digits.npz"


def base_folder() -> Path:
    """Where runs and the published model live: $DAGFACTORY_DEMO_DATA, else the temp dir."""
    configured = os.environ.get("DAGFACTORY_DEMO_DATA")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "dagfactory-digits"


def _safe_name(text: str) -> str:
    """``text`` as one file name: Airflow's run ids hold colons and plus signs."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("._") or "run"


def prepare(
    test_size: float = 0.25, seed: int = RANDOM_STATE, run_id: str | None = None
) -> str:
    """Split the digits into train and test sets once, save them, return the file's path.

    ``run_id`` (the config passes Airflow's ``{{ run_id }}``) names the run's folder, so
    that runs never read each other's data; without it a fresh folder is made. The split
    is stratified and seeded: the same on every call.
    """
    base = base_folder()
    base.mkdir(parents=True, exist_ok=True)
    if run_id is None:
        folder = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    else:
        folder = base / _safe_name(run_id)
        folder.mkdir(exist_ok=True)
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data,
        digits.target,
        test_size=test_size,
        random_state=seed,
        stratify=digits.target,
    )
    path = folder / DATA_FILE
    np.savez(path, x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test)
    print(f"saved {len(y_train)} training and {len(y_test)} test digits to {path}")
    return str(path)


def load_split(data_path: str) -> tuple[np.ndarray, ...]:
    """The arrays ``prepare`` saved: x_train, x_test, y_train, y_test."""
    with np.load(data_path) as split:
        return tuple(split[name] for name in ("x_train", "x_test", "y_train", "y_test"))


def build(estimator: str, **hyperparameters: Any) -> Any:
    """An unfitted classifier by name, seeded when it takes a seed (the caller's wins),
    behind a scaler when it is fitted on standardized pixels."""
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}"
        )
    cls, seeded = ESTIMATORS[estimator]
    if seeded:
        hyperparameters.setdefault("random_state", RANDOM_STATE)
    model = cls(**hyperparameters)
    return (
        make_pipeline(StandardScaler(), model) if estimator in STANDARDIZED else model
    )


def score(model: Any, data_path: str) -> Any:
    """The accuracy of a fitted ``model`` on the test split, as scikit-learn returns it."""
    _, x_test, _, y_test = load_split(data_path)
    return accuracy_score(y_test, model.predict(x_test))


def train(data_path: str, estimator: str, **hyperparameters: Any) -> dict[str, Any]:
    """Fit one classifier on the training split, score it on the test split, pickle it.

    Returns ``{"accuracy": ..., "artifact": <model path>}``: the accuracy as scikit-learn
    gives it (a NumPy scalar on some versions: the pipeline makes it a JSON number), and
    the model's pickle beside the data, named after the estimator and its hyperparameters
    so that several trainers of one estimator do not overwrite each other.
    """
    x_train, _, y_train, _ = load_split(data_path)
    model = build(estimator, **hyperparameters).fit(x_train, y_train)
    accuracy = score(model, data_path)
    name = "_".join(
        [estimator, *(f"{k}={v}" for k, v in sorted(hyperparameters.items()))]
    )
    artifact = Path(data_path).parent / f"{_safe_name(name)}.pkl"
    with artifact.open("wb") as file:
        pickle.dump(model, file)
    print(f"{estimator} {hyperparameters}: accuracy {accuracy}, saved to {artifact}")
    return {"accuracy": accuracy, "artifact": str(artifact)}


def load_model(path: str) -> Any:
    """A model ``train`` or ``publish`` wrote (a pickle: load only files you trust)."""
    with open(path, "rb") as file:
        return pickle.load(file)


def publish(
    artifact: str,
    value: float,
    task_id: str,
    params: dict[str, Any] | None = None,
    destination: str | None = None,
) -> str:
    """Copy the winning model to ``destination`` with a JSON of how it won; return its path.

    The pipeline passes the winner's ``artifact``, ``value``, ``task_id`` and ``params``
    by name. ``destination`` defaults to ``published/model.pkl`` under the base folder;
    ``model.json`` beside it names the trainer, its accuracy and its hyperparameters.
    Both files are replaced whole, so a reader never sees half a model.
    """
    target = (
        Path(destination) if destination else base_folder() / "published" / "model.pkl"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Staged under names of this process's own, so that two runs publishing at once
    # each replace the files whole instead of renaming each other's half.
    unique = f"{os.getpid()}-{uuid.uuid4().hex}"
    staged = target.with_name(f".{target.name}.{unique}.tmp")
    shutil.copyfile(artifact, staged)
    os.replace(staged, target)
    card = {"task_id": task_id, "accuracy": value, "params": params or {}}
    staged_card = target.with_name(f".{target.stem}.json.{unique}.tmp")
    staged_card.write_text(json.dumps(card, indent=2) + "\n", "utf-8")
    os.replace(staged_card, target.with_suffix(".json"))
    print(f"published {task_id} (accuracy {value}) to {target}")
    return str(target)


def alert(message: str) -> str:
    """Say that no classifier was good enough (a real pipeline would page someone)."""
    print(message)
    return message
