"""Run a generated DAG end to end on an embedded Airflow and read back what went through XCom.

Airflow runs in child processes (``python -m airflow``, see :mod:`.airflow`) with its
own ``AIRFLOW_HOME`` and a SQLite metadata database there, so nothing needs setting up
by hand and this process never imports Airflow. XComs are read from the metadata database afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagfactory.tools.airflow import airflow_env, python_with_airflow


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

    def pushed(self, task_id: str, key: str) -> Any:
        """The value ``task_id`` pushed under ``key`` (None if it pushed none)."""
        return next(
            (x.value for x in self.xcoms if x.task_id == task_id and x.key == key),
            None,
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
