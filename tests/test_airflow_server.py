"""generated_dags/ served by a real Airflow 3 (api-server, scheduler, dag-processor), driven over REST.

Everything runs on loopback with a SQLite metadata database in a temporary Airflow home;
every Airflow process is started in its own process group and killed with it, pass or
fail, and the test checks that none is left.
"""

from __future__ import annotations

import json
import sys
import urllib.request

import pytest

from airflow_processes import (
    Airflow,
    free_loopback_port,
    migrate,
    running,
    server_env,
    wait_for,
)
from conftest import ROOT

pytestmark = pytest.mark.airflow

DAG_ID = "xcom_dag"
TRAINERS = [f"processing_tasks.training_model_{name}" for name in "abc"]
COMPONENTS = ("api-server", "scheduler", "dag-processor")
STARTUP_LIMIT = 150  # seconds until the DAG is parsed and served
RUN_LIMIT = 150  # seconds for the triggered run to finish


@pytest.fixture
def airflow(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-server-home").resolve()
    port = free_loopback_port()
    env = server_env(home, ROOT / "generated_dags", port)
    env.update(
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
    )
    migrate(env, timeout=180)
    command = [sys.executable, "-m", "airflow"]
    with running(home, {name: ([*command, name], env) for name in COMPONENTS}):
        yield Airflow(home, port, list(COMPONENTS))


def xcom(airflow: Airflow, run_id: str, task_id: str, key: str):
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/{key}"
    status, body = airflow.request("GET", path)
    assert status == 200, body
    value = body["value"]
    return json.loads(value) if isinstance(value, str) else value


def run_over_rest(airflow: Airflow, dag_id: str) -> str:
    """Wait until ``dag_id`` is parsed, unpause it, trigger a run with no logical date
    (as the UI's trigger button does) and wait until it succeeds; its run id."""
    wait_for(
        f"Airflow to parse {dag_id}",
        lambda: airflow.request("GET", f"/api/v2/dags/{dag_id}")[0] == 200,
        STARTUP_LIMIT,
        airflow,
    )
    status, body = airflow.request(
        "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}
    )
    assert status == 200 and body["is_paused"] is False, body
    status, run = airflow.request(
        "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None}
    )
    assert status == 200, run
    assert run["logical_date"] is None
    run_id = run["dag_run_id"]

    def finished():
        state = airflow.request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}",
        )[1].get("state")
        return state if state in ("success", "failed") else None

    state = wait_for(f"run {run_id} to finish", finished, RUN_LIMIT, airflow)
    assert state == "success", airflow.logs()
    return run_id


def test_airflow_serves_parses_and_runs_xcom_dag_over_rest(airflow):
    run_id = run_over_rest(airflow, DAG_ID)
    accuracies = {
        task_id: xcom(airflow, run_id, task_id, "model_accuracy")
        for task_id in TRAINERS
    }
    assert all(
        isinstance(value, float) and 0.1 <= value <= 10.0
        for value in accuracies.values()
    ), accuracies
    best = max(accuracies, key=accuracies.__getitem__)
    assert xcom(airflow, run_id, "task_4", "best_model") == {
        "task_id": best,
        "value": accuracies[best],
        "metrics": {"model_accuracy": accuracies[best]},
        "params": {},
    }


@pytest.mark.parametrize("dag_id", ["random_restarts", "hyperparameter_sweep"])
def test_examples_with_date_templates_run_without_a_logical_date(airflow, dag_id):
    """Their templates use `dag_run.run_after`, which every run has."""
    run_over_rest(airflow, dag_id)
