"""Run a generated DAG end to end on an embedded Airflow and read back what went through XCom.

Airflow runs in child processes (see :mod:`.airflow`) with its own ``AIRFLOW_HOME`` and a
SQLite metadata database there, so nothing needs setting up by hand and this process never
imports Airflow. ``airflow db migrate`` sets the database up; a second child
(:mod:`.run_child`) loads the DAG from a DagBag, runs it once with ``dag.test()`` and reads
the run back through Airflow's own models (its tables change between releases: XComs left
the ``xcom`` table in 3.4; where the models live on each version is :mod:`.airflow_api`'s
business), writing what it found as JSON to a file, away from Airflow's logging on stdout.

Retries are off for a local run: a failing task fails at once instead of waiting out its
``retry_delay`` (minutes, with nothing to show), and the deployment keeps the config's retries.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagfactory.tools.airflow import airflow_env, python_with_airflow

# The child half: runs the DAG and reads the run back in a process with Airflow.
CHILD = "dagfactory.tools.run_child"


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
class TaskFailure:
    """A task instance that failed, with the exception Airflow handed its listeners (if any)."""

    task_id: str
    map_index: int
    state: str
    try_number: int
    exception: str | None  # its type; None when Airflow passed on only a message
    message: str | None  # None when Airflow passed on nothing: the log is all there is

    @property
    def text(self) -> str:
        """``fetch failed on try 1: AirflowException: Bash command failed...`` (one task, one line)."""
        task = self.task_id
        if self.map_index >= 0:
            task += f" (map index {self.map_index})"
        if self.message is None:
            error = "no exception recorded (see the log)"
        elif self.exception is None:
            error = self.message
        else:
            error = f"{self.exception}: {self.message}"
        # A message's further lines go under its first, indented.
        error = error.replace("\n", "\n  ")
        return f"{task} {self.state} on try {self.try_number}: {error}"


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str | None
    state: str | None
    xcoms: list[XComEntry]
    failures: list[TaskFailure]
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

    def log_tail(self, limit: int = 5000) -> str:
        """The end of the log, at most ``limit`` characters, from the start of a line."""
        if len(self.log) <= limit:
            return self.log
        tail = self.log[-limit:]
        return tail[tail.find("\n") + 1 :]


def run_dag(dag_id: str, dags_folder: Path, home: Path) -> RunResult:
    """Migrate the metadata DB under ``home``, run ``dag_id`` once (retries off), collect the XComs."""
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, dags_folder)
    migrate = python_with_airflow(["-m", "airflow", "db", "migrate"], env)
    if migrate.returncode != 0:
        return RunResult(dag_id, None, None, [], [], migrate.log)
    with tempfile.TemporaryDirectory(prefix="dagfactory-run-") as scratch:
        result_file = Path(scratch, "run.json")
        child = python_with_airflow(
            ["-m", CHILD, dag_id, str(dags_folder.resolve()), str(result_file)], env
        )
        log = child.log
        if not result_file.exists():
            return RunResult(dag_id, None, None, [], [], log)
        document = json.loads(result_file.read_text("utf-8"))
    xcoms = [
        XComEntry(logical_date=document["logical_date"], **entry)
        for entry in document["xcoms"]
    ]
    failures = [TaskFailure(**failure) for failure in document["failures"]]
    return RunResult(
        dag_id, document["run_id"], document["state"], xcoms, failures, log
    )
