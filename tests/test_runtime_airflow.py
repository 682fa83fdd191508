"""Trainers in their own Python environment, run end to end on a real Airflow.

The interpreter of ``runtime: {python: ...}`` is a second virtualenv holding
scikit-learn (built once per session, pinned by constraints.txt); the virtualenv of
``runtime: {requirements: [...]}`` is built by Airflow itself, into a cache folder.
Each trainer returns where it ran (``sys.prefix``) as its artifact, which proves it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, compiled
from dagfactory.tools.run import run_dag

pytestmark = pytest.mark.airflow

TRAIN = '''\
import sys

import numpy


def iris_tree(depth):
    """Training accuracy of a decision tree on iris, as a numpy number."""
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    features, labels = load_iris(return_X_y=True)
    tree = DecisionTreeClassifier(max_depth=depth, random_state=0)
    accuracy = numpy.float64(tree.fit(features, labels).score(features, labels))
    return {"accuracy": accuracy, "artifact": sys.prefix}


def numpy_mean():
    return {"mean": numpy.mean(numpy.array([1, 2, 4])), "artifact": sys.prefix}
'''

CONFIG = """\
dag:
  dag_id: {dag_id}
  start_date: 2024-01-01
download:
  task_id: fetch
  bash_command: echo ready
trainers:
  group_id: train
  python_callable: {function}
  runtime: {runtime}
  models:
{models}
chooser:
  task_id: choose
  metric: {metric}
"""


def constraint(name: str) -> str:
    """The pin constraints.txt gives ``name``, such as ``numpy==2.4.6``."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    raise AssertionError(f"{name} is not pinned in constraints.txt")


@pytest.fixture(scope="session")
def sklearn_python(tmp_path_factory) -> Path:
    """A second virtualenv with scikit-learn: the interpreter a runtime names."""
    venv = tmp_path_factory.mktemp("sklearn-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q"]
        + ["-c", str(ROOT / "constraints.txt"), "scikit-learn", "numpy"],
        check=True,
    )
    return python


def dags_folder(tmp_path: Path, dag_id: str, **fields: str) -> Path:
    dags = tmp_path / "dags"
    (dags / "runtime_demo").mkdir(parents=True)
    (dags / "runtime_demo" / "__init__.py").write_text("")
    (dags / "runtime_demo" / "train.py").write_text(TRAIN)
    config = CONFIG.format(dag_id=dag_id, **fields)
    (dags / f"{dag_id}.py").write_text(compiled(config).content)
    return dags


def xcom_values(result, key):
    return {x.task_id: x.value for x in result.xcoms if x.key == key}


def test_trainers_in_an_external_python_push_their_metrics_and_one_wins(
    tmp_path, sklearn_python
):
    models = "\n".join(
        f"    - task_id: depth_{depth}\n      op_kwargs: {{depth: {depth}}}"
        for depth in (1, 3)
    )
    dags = dags_folder(
        tmp_path,
        "runtime_external",
        function="runtime_demo.train:iris_tree",
        runtime=f"{{python: {sklearn_python}}}",
        models=models,
        metric="accuracy",
    )
    result = run_dag("runtime_external", dags, tmp_path / "home")
    assert result.succeeded, result.log[-3000:]
    pushed = xcom_values(result, "return_value")
    prefix = str(sklearn_python.parent.parent)
    assert pushed["train.depth_1"] == {
        "accuracy": pytest.approx(2 / 3),
        "artifact": prefix,
    }
    assert pushed["train.depth_3"]["artifact"] == prefix
    assert type(pushed["train.depth_3"]["accuracy"]) is float
    assert pushed["train.depth_3"]["accuracy"] > pushed["train.depth_1"]["accuracy"]
    winner = xcom_values(result, "best_model")["choose"]
    assert winner["task_id"] == "train.depth_3"
    assert winner["artifact"] == prefix
    assert winner["params"] == {"depth": 3}


def test_a_trainer_in_a_virtualenv_built_from_requirements(tmp_path):
    runtime = (
        f"{{requirements: [{constraint('numpy')}],"
        f" venv_cache_path: {tmp_path / 'venvs'}, system_site_packages: false}}"
    )
    dags = dags_folder(
        tmp_path,
        "runtime_virtualenv",
        function="runtime_demo.train:numpy_mean",
        runtime=runtime,
        models="    - task_id: mean",
        metric="mean",
    )
    result = run_dag("runtime_virtualenv", dags, tmp_path / "home")
    assert result.succeeded, result.log[-3000:]
    pushed = xcom_values(result, "return_value")["train.mean"]
    assert pushed["mean"] == pytest.approx(7 / 3)
    assert pushed["artifact"].startswith(str(tmp_path / "venvs"))
    assert xcom_values(result, "best_model")["choose"]["task_id"] == "train.mean"
