"""Bundled output on a real Airflow: the shards load in a DagBag, a DAG that fails to
build is its shard's import error while its neighbours load, a task's parsing context
builds its DAG alone, and `dagfactory check` and `dagfactory run` work on the bundle.

One module-scoped project serves every test: its Airflow processes are the slow part.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_bundle import BUNDLED

from conftest import ROOT, dagfactory
from dagfactory.tools.airflow import airflow_env

pytestmark = pytest.mark.airflow

# The example DAGs with shard_size 4 make four shards; shard 0 holds these four.
SHARD = "dagfactory_shard_000.py"
BROKEN = "min_loss_dag"
NEIGHBOURS = ["bash_trainers", "hyperparameter_sweep", "mapped_seeds"]
FILL = """\
import json, sys
from dagfactory.tools.airflow_api import fill_dagbag

bag = fill_dagbag(sys.argv[1])
print("BAG:" + json.dumps({"dags": sorted(bag.dags), "errors": bag.import_errors}))
"""


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The example project rendered as a bundle, one DAG's file made to raise while
    its DAG is built; then `check`, `run xcom_dag` and a DagBag filled in the parsing
    context of a task of xcom_dag, as Airflow's task runner fills it."""
    project = tmp_path_factory.mktemp("bundled")
    for name in ("configs", "generated_dags"):
        subprocess.run(["cp", "-r", str(ROOT / name), str(project)], check=True)
    (project / "pyproject.toml").write_text(BUNDLED)
    rendered = dagfactory("render", "--prune", cwd=project)
    assert rendered.returncode == 0, rendered.stderr
    out = project / "generated_dags"
    assert f'    "{BROKEN}": ' in (out / SHARD).read_text()
    module = out / "_dagfactory_bundle" / f"{BROKEN}.py"
    text = module.read_text()
    at = text.index("    with TaskGroup(")  # inside `with DAG(...)`: half built
    module.write_text(
        text[:at] + '    raise ValueError("broken on purpose")\n' + text[at:]
    )
    env = airflow_env(project / "home", out)
    env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = "xcom_dag"
    env["_AIRFLOW_PARSING_CONTEXT_TASK_ID"] = "task_4"
    filled = subprocess.run(
        [sys.executable, "-c", FILL, str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    bag = next(
        json.loads(line.removeprefix("BAG:"))
        for line in filled.stdout.splitlines()
        if line.startswith("BAG:")
    )
    return {
        "check": dagfactory("check", cwd=project),
        "run": dagfactory("run", "xcom_dag", cwd=project),
        "in_context": bag,
    }


def test_a_dag_that_fails_to_build_is_its_shards_import_error_alone(bundled):
    check = bundled["check"]
    assert check.returncode == 1
    lines = check.stdout.splitlines()
    shard = next(line for line in lines if SHARD in line)
    assert shard.split()[0] == "error", lines
    assert "1 of the DAGs of this file failed to build" in check.stdout
    assert f"{BROKEN} (configs/{BROKEN}.yaml): Traceback" in check.stdout
    assert "ValueError: broken on purpose" in check.stdout
    summary = check.stdout + check.stderr
    assert "6 DAGs loaded, 1 import error," in summary  # every other DAG
    for line in lines:
        if "dagfactory_shard_00" in line and SHARD not in line:
            assert line.split()[0] == "ok", line


def test_the_neighbours_of_a_broken_dag_load(bundled):
    listing = bundled["check"].stdout.splitlines()
    shard = next(line for line in listing if SHARD in line)
    assert shard.endswith(f": import error (loaded: {', '.join(NEIGHBOURS)})")


def test_a_tasks_parsing_context_builds_its_dag_alone(bundled):
    assert bundled["in_context"] == {"dags": ["xcom_dag"], "errors": {}}


def test_a_bundled_dag_runs_end_to_end(bundled):
    run = bundled["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    winner = json.loads(
        run.stdout.split("winner (max model_accuracy): ")[1].split("\n")[0]
    )
    assert winner["task_id"].startswith("processing_tasks.training_model_")
    assert isinstance(winner["value"], float)
