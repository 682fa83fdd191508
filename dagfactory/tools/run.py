"""Run a generated DAG end to end on an embedded Airflow and read back what went through XCom.

Airflow runs in child processes (see :mod:`.airflow`) with its own ``AIRFLOW_HOME`` and a
SQLite metadata database there, so nothing needs setting up by hand and this process never
imports Airflow. ``airflow db migrate`` sets the database up; a second child
(:mod:`.run_child`) loads the DAG from a DagBag, runs it once with ``dag.test()`` and reads
the run back through Airflow's own models (its tables change between releases: XComs left
the ``xcom`` table in 3.4; where the models live on each version is :mod:`.airflow_api`'s
business), writing what it found as JSON to a file, away from Airflow's logging on stdout.
Each task's output goes to a log file of its own in Airflow's layout (:mod:`.task_logs`),
under a folder the caller chooses: the run's home's ``logs/``, or one kept after a
temporary home is gone.

Retries are off for a local run: a failing task fails at once instead of waiting out its
``retry_delay`` (minutes, with nothing to show), and the deployment keeps the config's retries.

A run whose approval task waits for a person is given its answer (``Approve`` or
``Reject``) by the child, through Airflow's REST API route served in that process: the
embedded Airflow makes everyone an admin of its simple auth manager, which the call
goes through as a person's would.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagfactory.tools.airflow import airflow_env, python_with_airflow

# The child half: runs the DAG and reads the run back in a process with Airflow.
CHILD = "dagfactory.tools.run_child"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


def task_label(task_id: str, map_index: int) -> str:
    """A task instance as a person names it: its id, and its map index if it has one."""
    return task_id if map_index < 0 else f"{task_id} (map index {map_index})"


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
    def label(self) -> str:
        """``fetch``, or ``seeds.train_seed (map index 3)`` for a mapped task's instance."""
        return task_label(self.task_id, self.map_index)

    @property
    def text(self) -> str:
        """``fetch failed on try 1: AirflowException: Bash command failed...`` (one task, one line)."""
        task = self.label
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
class TaskLog:
    """One task instance's captured output: what it printed and what Airflow logged for it."""

    task_id: str
    map_index: int
    try_number: int
    path: Path

    def read(self) -> str:
        return self.path.read_text("utf-8", errors="replace")


@dataclass(frozen=True)
class Answer:
    """The REST call that answered an approval task, and Airflow's reply."""

    request: str
    status: int
    response: str


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str | None
    state: str | None
    xcoms: list[XComEntry]
    failures: list[TaskFailure]
    log: str
    task_logs: list[TaskLog] = field(default_factory=list)  # in the order tasks ran
    logs_folder: Path | None = None  # this run's task logs; None when it never ran
    answers: list[Answer] = field(default_factory=list)  # to its approval task

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
        """The end of Airflow's log, at most ``limit`` characters, from the start of a line."""
        return tail(self.log, limit)

    def logs_of(self, failure: TaskFailure) -> list[TaskLog]:
        """The captured logs of a failed task instance (none if it failed before it ran)."""
        return [
            log
            for log in self.task_logs
            if (log.task_id, log.map_index) == (failure.task_id, failure.map_index)
        ]


def tail(text: str, limit: int = 5000) -> str:
    """The end of ``text``, at most ``limit`` characters, from the start of a line."""
    if len(text) <= limit:
        return text
    end = text[-limit:]
    return end[end.find("\n") + 1 :]


def run_dag(
    dag_id: str,
    dags_folder: Path,
    home: Path,
    logs_folder: Path | None = None,
    answer: str | None = None,
) -> RunResult:
    """Migrate the metadata DB under ``home``, run ``dag_id`` once (retries off), collect
    the XComs, and keep each task's log under ``logs_folder`` (default: ``home/logs``,
    where Airflow keeps them). ``answer`` (``Approve`` or ``Reject``) is given to an
    approval task that waits for a person."""
    home.mkdir(parents=True, exist_ok=True)
    logs_folder = (logs_folder or home / "logs").absolute()
    env = airflow_env(home, dags_folder)
    if answer is not None:
        env.update(
            AIRFLOW__CORE__AUTH_MANAGER=SIMPLE_AUTH_MANAGER,
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        )
    migrate = python_with_airflow(["-m", "airflow", "db", "migrate"], env)
    if migrate.returncode != 0:
        return RunResult(dag_id, None, None, [], [], migrate.log)
    with tempfile.TemporaryDirectory(prefix="dagfactory-run-") as scratch:
        result_file = Path(scratch, "run.json")
        child = python_with_airflow(
            [
                "-m",
                CHILD,
                dag_id,
                str(dags_folder.resolve()),
                str(result_file),
                str(logs_folder),
                *([] if answer is None else [answer]),
            ],
            env,
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
    task_logs = [
        TaskLog(**{**entry, "path": Path(entry["path"])})
        for entry in document["task_logs"]
    ]
    return RunResult(
        dag_id,
        document["run_id"],
        document["state"],
        xcoms,
        failures,
        log,
        task_logs,
        Path(document["logs_folder"]),
        [Answer(**answer) for answer in document["answers"]],
    )
