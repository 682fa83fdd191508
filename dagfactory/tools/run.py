"""Run a generated DAG end to end on an embedded Airflow and read back what went through XCom.

Airflow runs in child processes (see :mod:`.airflow`) with its own ``AIRFLOW_HOME`` and a
SQLite metadata database there, so nothing needs setting up by hand and this process never
imports Airflow. ``airflow db migrate`` sets the database up; a second child loads the DAG
from a DagBag, runs it once with ``dag.test()`` and reads the run back through Airflow's own
models (its tables change between releases: XComs left the ``xcom`` table in 3.4; where the
models live on each version is :mod:`.airflow_api`'s business), writing
what it found as JSON to a file, away from Airflow's logging on stdout.

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


def run_and_record(dag_id: str, folder: str, result_file: str) -> None:
    """Runs in the child: run ``dag_id`` once, retries off, and dump the run as JSON."""
    from airflow.listeners import hookimpl
    from airflow.utils.session import create_session

    from dagfactory.tools.airflow_api import add_listener, fill_dagbag, stored_xcoms

    errors: dict[tuple[str, int], BaseException | str | None] = {}

    class FailureRecorder:
        """Airflow's listener hook sees each failing task's exception (in this process)."""

        @hookimpl
        def on_task_instance_failed(self, task_instance: Any, error: Any) -> None:
            errors[task_instance.task_id, task_instance.map_index] = error

    bag = fill_dagbag(folder)
    if dag_id not in bag.dags:
        raise SystemExit(
            f"no DAG {dag_id!r} in {folder}\n" + "\n".join(bag.import_errors.values())
        )
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    add_listener(FailureRecorder())
    run = dag.test()  # a failed run is returned, not raised
    with create_session() as session:
        instances = run.get_task_instances(session=session)
        stored = stored_xcoms(session, run.run_id, dag_id)
        xcoms = [
            {
                "key": x.key,
                "value": x.value,  # the stored JSON, decoded once, as the XCom list shows it
                "task_id": x.task_id,
                "dag_id": x.dag_id,
                "map_index": x.map_index,
                "timestamp": x.timestamp.isoformat(),
            }
            for x in sorted(stored, key=lambda x: x.timestamp)
        ]
        order = {key: n for n, key in enumerate(errors)}  # the order they failed in
        failed = sorted(
            (ti for ti in instances if ti.state == "failed"),
            key=lambda ti: order.get((ti.task_id, ti.map_index), len(order)),
        )
        failures = [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(ti.state),
                "try_number": ti.try_number,
                **_error(errors.get((ti.task_id, ti.map_index))),
            }
            for ti in failed
        ]
    document = {
        "run_id": run.run_id,
        "state": str(run.state),
        "logical_date": run.logical_date and run.logical_date.isoformat(),
        "xcoms": xcoms,
        "failures": failures,
    }
    Path(result_file).write_text(json.dumps(document), "utf-8")


def _error(error: BaseException | str | None) -> dict[str, str | None]:
    """Airflow passes listeners the exception, or only its text, or nothing."""
    if isinstance(error, BaseException):
        return {"exception": type(error).__name__, "message": str(error)}
    return {"exception": None, "message": error}


def run_dag(dag_id: str, dags_folder: Path, home: Path) -> RunResult:
    """Migrate the metadata DB under ``home``, run ``dag_id`` once (retries off), collect the XComs."""
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, dags_folder)
    migrate = python_with_airflow(["-m", "airflow", "db", "migrate"], env)
    if migrate.returncode != 0:
        return RunResult(dag_id, None, None, [], [], migrate.stdout + migrate.stderr)
    with tempfile.TemporaryDirectory(prefix="dagfactory-run-") as scratch:
        result_file = Path(scratch, "run.json")
        arguments = ", ".join(
            map(repr, [dag_id, str(dags_folder.resolve()), str(result_file)])
        )
        probe = f"from dagfactory.tools.run import run_and_record; run_and_record({arguments})"
        child = python_with_airflow(["-c", probe], env)
        log = child.stdout + child.stderr
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
