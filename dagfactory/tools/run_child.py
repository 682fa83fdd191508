"""The child half of ``dagfactory run``: runs in a process that has Airflow, never in the CLI's.

``python -m dagfactory.tools.run_child DAG_ID DAGS_FOLDER RESULT_FILE LOGS_FOLDER``
loads the DAG from a DagBag, runs it once with ``dag.test()`` (retries off), each task's
output captured into its own file under LOGS_FOLDER (:mod:`.task_logs`), and reads the
run back through Airflow's own models, writing what it found to RESULT_FILE as JSON,
away from Airflow's logging on stdout. :mod:`.run` starts it and reads the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dagfactory.tools.airflow_api import add_listener, fill_dagbag, stored_xcoms
from dagfactory.tools.task_logs import TaskLogs, listener, run_log_folder


def run_and_record(
    dag_id: str, folder: str, result_file: str, logs_folder: str
) -> None:
    """Run ``dag_id`` once, retries off, each task's output in its own log; dump the run as JSON."""
    from airflow.listeners import hookimpl
    from airflow.utils.session import create_session

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
    logs = TaskLogs(Path(logs_folder))
    add_listener(listener(logs))
    try:
        run = dag.test()  # a failed run is returned, not raised
    finally:
        logs.stop()  # a task that ended with no hook called (skipped, on Airflow 2)
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
        "task_logs": logs.written,
        "logs_folder": str(Path(logs_folder, run_log_folder(dag_id, run.run_id))),
    }
    Path(result_file).write_text(json.dumps(document), "utf-8")


def _error(error: BaseException | str | None) -> dict[str, str | None]:
    """Airflow passes listeners the exception, or only its text, or nothing."""
    if isinstance(error, BaseException):
        return {"exception": type(error).__name__, "message": str(error)}
    return {"exception": None, "message": error}


def main(argv: list[str]) -> None:
    """``DAG_ID DAGS_FOLDER RESULT_FILE LOGS_FOLDER``: plain arguments, so no code is
    built from strings."""
    dag_id, folder, result_file, logs_folder = argv
    run_and_record(dag_id, folder, result_file, logs_folder)


if __name__ == "__main__":
    main(sys.argv[1:])
