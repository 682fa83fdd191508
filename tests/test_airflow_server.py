"""generated_dags/ served by a real Airflow 3 (api-server, scheduler, dag-processor), driven over REST.

Everything runs on loopback with a SQLite metadata database in a temporary Airflow home;
every Airflow process is started in its own process group and killed with it, pass or
fail, and the test checks that none is left.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from conftest import ROOT
from dagfactory.tools.airflow import airflow_env

pytestmark = pytest.mark.airflow

DAG_ID = "xcom_dag"
TRAINERS = [f"processing_tasks.training_model_{name}" for name in "abc"]
COMPONENTS = ("api-server", "scheduler", "dag-processor")
STARTUP_LIMIT = 150  # seconds until the DAG is parsed and served
RUN_LIMIT = 150  # seconds for the triggered run to finish


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_of(home: Path) -> list[int]:
    """Every live process whose environment points at this Airflow home (as ps would list them)."""
    marker = f"AIRFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environment:
            found.append(int(entry.name))
    return found


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is still there after a grace period."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return


class Airflow:
    """A running Airflow and a tiny REST client for its /api/v2 (all-admins simple auth)."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.base = f"http://127.0.0.1:{port}"

    def request(
        self, method: str, path: str, body: dict | None = None
    ) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {"detail": error.read().decode(errors="replace")}
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            return 0, {"detail": str(error)}

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.home / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in COMPONENTS
        )


@pytest.fixture
def airflow(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-server-home").resolve()
    port = free_loopback_port()
    env = airflow_env(home, ROOT / "generated_dags")
    env.update(
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        # One secret for every component, so the tasks' tokens are accepted by the API server.
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        # Only the run this test triggers: no scheduled runs of the @daily DAG alongside.
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    processes: list[subprocess.Popen] = []
    with ExitStack() as cleanup:
        for name in COMPONENTS:
            log = cleanup.enter_context((home / f"{name}.log").open("wb"))
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow", name],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group, killed as one
                )
            )
        try:
            yield Airflow(home, port)
        finally:
            for process in processes:
                stop_group(process)
            for pid in processes_of(home):  # anything that left its group
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while processes_of(home) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert processes_of(home) == [], "Airflow processes were left behind"


def wait_for(what: str, check, limit: float, airflow: Airflow):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out after {limit:.0f} s waiting for {what}\n{airflow.logs()}")


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
    }


@pytest.mark.parametrize("dag_id", ["random_restarts", "hyperparameter_sweep"])
def test_examples_with_date_templates_run_without_a_logical_date(airflow, dag_id):
    """Their templates use `dag_run.run_after`, which every run has."""
    run_over_rest(airflow, dag_id)
