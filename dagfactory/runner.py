"""Run a generated DAG end to end on an embedded Airflow and read back what went through XCom.

Airflow runs in child processes (``python -m airflow``) with its own ``AIRFLOW_HOME``
and a SQLite metadata database there, so nothing needs setting up by hand and this
process never imports Airflow. XComs are read from the metadata database afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagfactory.errors import SetupError

INSTALL_HINT = "Airflow is not installed here: pip install 'dagfactory[airflow]'"


class AirflowUnavailable(SetupError):
    """Raised when a command needs Airflow and it is not installed."""


@dataclass(frozen=True)
class XComEntry:
    """One row of Airflow's XCom list (Admin > XComs)."""

    key: str
    value: Any
    task_id: str
    dag_id: str
    map_index: int
    logical_date: str | None
    timestamp: str


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str | None
    state: str | None
    xcoms: list[XComEntry]
    log: str

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """The environment for an embedded Airflow: own home, SQLite database, no examples."""
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home.absolute()),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder.absolute()),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{(home / 'airflow.db').absolute()}",
    )
    return env


def python_with_airflow(
    args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in a child process that may import Airflow (if it is installed)."""
    if importlib.util.find_spec("airflow") is None:
        raise AirflowUnavailable(INSTALL_HINT)
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _airflow(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return python_with_airflow(["-m", "airflow", *args], env)


def run_dag(dag_id: str, dags_folder: Path, home: Path) -> RunResult:
    """Migrate the metadata DB under ``home``, run ``airflow dags test`` and collect the XComs."""
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, dags_folder)
    migrate = _airflow(["db", "migrate"], env)
    if migrate.returncode != 0:
        return RunResult(dag_id, None, None, [], migrate.stdout + migrate.stderr)
    test = _airflow(["dags", "test", dag_id], env)
    log = test.stdout + test.stderr
    with sqlite3.connect(home / "airflow.db") as db:
        run = db.execute(
            "SELECT run_id, state, logical_date FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if run is None:
            return RunResult(dag_id, None, None, [], log)
        run_id, state, logical_date = run
        rows = db.execute(
            "SELECT key, value, task_id, dag_id, map_index, timestamp FROM xcom"
            " WHERE dag_id = ? AND run_id = ? ORDER BY timestamp",
            (dag_id, run_id),
        ).fetchall()
    xcoms = [
        XComEntry(key, _decode(value), task_id, dag, map_index, logical_date, timestamp)
        for key, value, task_id, dag, map_index, timestamp in rows
    ]
    return RunResult(dag_id, run_id, state, xcoms, log)


def _decode(value: Any) -> Any:
    """XCom values are stored as JSON; SQLite hands numbers back already decoded."""
    if isinstance(value, bytes):
        value = value.decode()
    return json.loads(value) if isinstance(value, str) else value
