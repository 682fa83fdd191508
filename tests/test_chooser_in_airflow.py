"""The chooser's failure in real Airflow: final, so Airflow spends no retry on it."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import IMPORT_DAGBAG, ROOT, compiled
from dagfactory.tools.airflow import airflow_env, python_with_airflow

pytestmark = pytest.mark.airflow

# Runs the DAG with Airflow's own dag.test() and prints each task's state and tries; the
# dags folder on sys.path as Airflow's workers have it (3.0's dag.test() does not add it).
RUN = (
    "import json, sys\n"
    + IMPORT_DAGBAG
    + """
sys.path.insert(0, sys.argv[1])
dag = DagBag(dag_folder=sys.argv[1]).dags[sys.argv[2]]
run = dag.test()
print(json.dumps({
    "state": str(run.state),
    "tasks": {ti.task_id: [str(ti.state), ti.try_number] for ti in run.get_task_instances()},
}))
"""
)


def test_a_chooser_without_numbers_fails_once_although_retries_are_set(tmp_path):
    config = (ROOT / "configs" / "min_loss_dag.yaml").read_text()
    edits = [
        ("dag_id: min_loss_dag", "dag_id: no_numbers"),
        ("retry_delay: 30s", "retry_delay: 0s"),
        ("{value: 0.42}", "{value: not a number}"),
    ]
    for old, new in edits:
        assert old in config
        config = config.replace(old, new)
    assert "retries: 1" in config  # every task may retry once
    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "generated_dags" / "ml_demo", dags / "ml_demo")
    (dags / "no_numbers.py").write_text(compiled(config, "no_numbers.yaml").content)
    env = airflow_env(tmp_path / "home", dags)
    migrate = python_with_airflow(["-m", "airflow", "db", "migrate"], env)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    child = python_with_airflow(["-c", RUN, str(dags), "no_numbers"], env)
    assert child.returncode == 0, child.stderr[-3000:]
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    assert outcome["state"] == "failed"
    assert outcome["tasks"]["pick_lowest_loss"] == ["failed", 1]  # no second try
    assert outcome["tasks"]["candidates.train_depth_4"][0] == "success"
