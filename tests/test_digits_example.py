"""The scikit-learn example: its user code in process (fast), its DAG in real Airflow.

``generated_dags/ml_demo/digits.py`` is plain user code, so most of it is tested by
calling it. Each accuracy is recomputed here from scikit-learn alone (the same split and
seeds, not the example's own helpers), so a test would catch the example scoring the
wrong split or the wrong model.

scikit-learn comes with the ``sklearn`` extra, which ``./dev`` installs; without it
these tests are skipped, except under CI, which must run them.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from conftest import ROOT, compiled
from dagfactory.tools.run import RunResult, run_dag

try:
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
except ImportError:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(
        "scikit-learn is not installed: pip install -e '.[sklearn]'",
        allow_module_level=True,
    )

GENERATED = ROOT / "generated_dags"
CONFIG = ROOT / "configs" / "digits_classifiers.yaml"
# The classifiers the example names, as this test builds them itself.
CLASSIFIERS: dict[str, tuple[type, dict[str, Any]]] = {
    "logistic_regression": (LogisticRegression, {"random_state": 0}),
    "random_forest": (RandomForestClassifier, {"random_state": 0}),
    "svc": (SVC, {"random_state": 0}),
    "knn": (KNeighborsClassifier, {}),
}


@pytest.fixture(scope="module")
def digits() -> ModuleType:
    """The example's module, imported from the dags folder as Airflow's workers do."""
    sys.path.insert(0, str(GENERATED))
    try:
        return importlib.import_module("ml_demo.digits")
    finally:
        sys.path.remove(str(GENERATED))


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example's base folder, private to the test."""
    monkeypatch.setenv("DAGFACTORY_DEMO_DATA", str(tmp_path / "digits-data"))
    return tmp_path / "digits-data"


def expected_split(test_size: float = 0.25, seed: int = 0) -> tuple[Any, ...]:
    """x_train, x_test, y_train, y_test as the example promises to split them."""
    data = load_digits()
    return train_test_split(
        data.data,
        data.target,
        test_size=test_size,
        random_state=seed,
        stratify=data.target,
    )


def expected_accuracy(estimator: str, **hyperparameters: Any) -> float:
    """The test accuracy of ``estimator`` fitted here, with the example's seed."""
    x_train, x_test, y_train, y_test = expected_split()
    cls, seeds = CLASSIFIERS[estimator]
    model = cls(**{**seeds, **hyperparameters})
    if estimator == "logistic_regression":  # the example standardizes its pixels
        model = make_pipeline(StandardScaler(), model)
    model.fit(x_train, y_train)
    return float(accuracy_score(y_test, model.predict(x_test)))


def rescored(model_path: Path) -> float:
    """The accuracy of a pickled model on the expected test split."""
    _, x_test, _, y_test = expected_split()
    with model_path.open("rb") as file:
        model = pickle.load(file)
    return float(accuracy_score(y_test, model.predict(x_test)))


def test_prepare_saves_the_seeded_split_in_the_run_s_folder(digits, base):
    path = Path(digits.prepare(run_id="manual__2024-01-01T00:00:00+00:00"))
    assert path == base / "manual__2024-01-01T00_00_00_00_00" / "digits.npz"
    with np.load(path) as saved:
        for name, array in zip(
            ("x_train", "x_test", "y_train", "y_test"), expected_split(), strict=True
        ):
            np.testing.assert_array_equal(saved[name], array)
    again = Path(digits.prepare())  # no run id: a fresh folder of its own
    assert again.parent.parent == base and again.parent != path.parent


def test_train_scores_the_test_split_and_pickles_the_model_beside_the_data(
    digits, base
):
    data_path = digits.prepare(run_id="run")
    result = digits.train(data_path, "knn", n_neighbors=3)
    assert set(result) == {"accuracy", "artifact"}
    assert float(result["accuracy"]) == expected_accuracy("knn", n_neighbors=3)
    artifact = Path(result["artifact"])
    assert artifact.parent == Path(data_path).parent
    assert artifact.name == "knn_n_neighbors=3.pkl"
    assert rescored(artifact) == float(result["accuracy"])


def test_train_fixes_the_seed_of_seeded_estimators(digits, base):
    data_path = digits.prepare(run_id="run")
    first = digits.train(data_path, "random_forest", n_estimators=10)
    second = digits.train(data_path, "random_forest", n_estimators=10)
    assert first["accuracy"] == second["accuracy"]
    assert float(first["accuracy"]) == expected_accuracy(
        "random_forest", n_estimators=10
    )


def test_an_unknown_estimator_names_the_known_ones(digits, base):
    with pytest.raises(ValueError, match="unknown estimator 'tree'; known: "):
        digits.train(digits.prepare(), "tree")


def test_publish_copies_the_winner_and_describes_it(digits, base):
    result = digits.train(digits.prepare(run_id="run"), "knn", n_neighbors=1)
    published = digits.publish(
        artifact=result["artifact"],
        value=float(result["accuracy"]),
        task_id="classifiers.knn",
        params={"estimator": "knn", "n_neighbors": 1},
    )
    assert Path(published) == base / "published" / "model.pkl"
    assert rescored(Path(published)) == float(result["accuracy"])
    assert json.loads((base / "published" / "model.json").read_text()) == {
        "task_id": "classifiers.knn",
        "accuracy": float(result["accuracy"]),
        "params": {"estimator": "knn", "n_neighbors": 1},
    }
    assert sorted(p.name for p in (base / "published").iterdir()) == [
        "model.json",
        "model.pkl",
    ]


def test_publish_writes_where_it_is_told(digits, base, tmp_path):
    result = digits.train(digits.prepare(), "knn")
    target = tmp_path / "registry" / "digits.pkl"
    assert digits.publish(
        result["artifact"], 0.5, "classifiers.knn", destination=str(target)
    ) == str(target)
    assert json.loads(target.with_suffix(".json").read_text())["params"] == {}
    assert not (base / "published").exists()


def test_alert_prints_its_message(digits, capsys):
    assert digits.alert("nothing good enough") == "nothing good enough"
    assert capsys.readouterr().out == "nothing good enough\n"


def scores(result: RunResult) -> dict[str, Any]:
    """What each trainer pushed under the config's xcom_key, by task id."""
    return {x.task_id: x.value for x in result.xcoms if x.key == "scores"}


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Airflow home (and metadata database) for both runs of the example."""
    return tmp_path_factory.mktemp("airflow-home")


@pytest.mark.airflow
def test_the_example_publishes_the_most_accurate_classifier(airflow_home, base):
    config = yaml.safe_load(CONFIG.read_text("utf-8"))
    result = run_dag("digits_classifiers", GENERATED, airflow_home)
    assert result.succeeded, result.log_tail()

    expected = {
        f"classifiers.{model['task_id']}": expected_accuracy(**model["op_kwargs"])
        for model in config["trainers"]["models"]
    }
    pushed = scores(result)
    assert {task: value["accuracy"] for task, value in pushed.items()} == expected
    data_path = Path(result.pushed("prepare_data", "return_value"))
    assert data_path.parent.parent == base
    for value in pushed.values():
        assert Path(value["artifact"]).parent == data_path.parent

    best = max(expected, key=expected.__getitem__)
    assert expected[best] >= config["chooser"]["threshold"]
    winner = result.pushed("pick_best", "best_model")
    assert winner["task_id"] == best
    assert winner["value"] == expected[best]
    assert winner["artifact"] == pushed[best]["artifact"]

    published = base / "published" / "model.pkl"
    assert result.pushed("save_best_model", "return_value") == str(published)
    assert rescored(published) == expected[best]
    card = json.loads(published.with_suffix(".json").read_text("utf-8"))
    assert (card["task_id"], card["accuracy"]) == (best, expected[best])
    assert card["params"] == winner["params"]
    assert result.pushed("alert", "return_value") is None


@pytest.mark.airflow
def test_no_classifier_reaching_the_threshold_publishes_nothing(
    airflow_home, base, tmp_path
):
    config = CONFIG.read_text("utf-8")
    for old, new in [
        ("dag_id: digits_classifiers", "dag_id: digits_too_strict"),
        ("threshold: 0.9", "threshold: 0.999"),  # above every accuracy
    ]:
        assert old in config
        config = config.replace(old, new)
    dags = tmp_path / "dags"
    shutil.copytree(GENERATED / "ml_demo", dags / "ml_demo")
    source = compiled(config, str(tmp_path / "digits_too_strict.yaml")).content
    (dags / "digits_too_strict.py").write_text(source, "utf-8")

    result = run_dag("digits_too_strict", dags, airflow_home)
    assert result.succeeded, result.log_tail()
    accuracies = [value["accuracy"] for value in scores(result).values()]
    assert len(accuracies) == 4 and max(accuracies) < 0.999
    assert result.pushed("pick_best", "best_model")["value"] == max(accuracies)
    assert result.pushed("alert", "return_value") == (
        "no classifier reached the accuracy threshold: nothing published"
    )
    # Skipped: a publish that ran would have returned its path, one that failed would
    # have failed the run.
    assert result.pushed("save_best_model", "return_value") is None
    assert not (base / "published").exists()


VIRTUALENV_VARIANT = ROOT / "examples" / "digits_classifiers_virtualenv.yaml"


@pytest.mark.airflow
def test_the_virtualenv_variant_trains_in_a_cached_virtualenv(
    airflow_home, base, tmp_path, tmp_path_factory, monkeypatch
):
    """examples/'s variant, rendered as a user renders it, run once: Airflow builds the
    virtualenv of its pinned scikit-learn for the first trainer, the others reuse it."""
    cache = tmp_path_factory.mktemp("venv-cache")
    monkeypatch.setenv("DAGFACTORY_VENV_CACHE", str(cache))
    dags = tmp_path / "dags"
    shutil.copytree(GENERATED / "ml_demo", dags / "ml_demo")
    source = compiled(VIRTUALENV_VARIANT.read_text("utf-8"), str(VIRTUALENV_VARIANT))
    assert f'venv_cache_path="{cache}"' in source.content
    (dags / "digits_classifiers_virtualenv.py").write_text(source.content, "utf-8")

    result = run_dag("digits_classifiers_virtualenv", dags, airflow_home)
    assert result.succeeded, result.log_tail()
    text = VIRTUALENV_VARIANT.read_text("utf-8")
    config = yaml.safe_load(text.replace("!env ", ""))  # only the models are read
    expected = {
        f"classifiers.{model['task_id']}": expected_accuracy(**model["op_kwargs"])
        for model in config["trainers"]["models"]
    }
    pushed = {
        x.task_id: x.value
        for x in result.xcoms
        if x.key == "return_value" and x.task_id in expected
    }
    assert {task: value["accuracy"] for task, value in pushed.items()} == expected
    best = max(expected, key=expected.__getitem__)
    assert result.pushed("pick_best", "best_model")["task_id"] == best
    assert rescored(base / "published" / "model.pkl") == expected[best]

    (venv,) = [path for path in cache.glob("venv-*") if path.is_dir()]  # and its lock
    assert list(venv.glob("lib/python*/site-packages/scikit_learn-1.9.1.dist-info"))
    logs = {log.task_id: log.read() for log in result.task_logs}
    assert all(f"will be cached in {venv}" in logs[task] for task in expected)
    reused = [task for task in expected if "Reusing cached Python" in logs[task]]
    assert len(reused) == len(expected) - 1, logs  # built once, by the first
