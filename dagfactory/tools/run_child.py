"""The child half of ``dagfactory run``: runs in a process that has Airflow, never in the CLI's.

``python -m dagfactory.tools.run_child DAG_ID DAGS_FOLDER RESULT_FILE LOGS_FOLDER [ANSWER]``
loads the DAG from a DagBag, runs it once with ``dag.test()`` (retries off), each task's
output captured into its own file under LOGS_FOLDER (:mod:`.task_logs`), and reads the
run back through Airflow's own models, writing what it found to RESULT_FILE as JSON,
away from Airflow's logging on stdout. :mod:`.run` starts it and reads the file.

``dag.test()`` waits for a person's answer to an approval task as long as it takes;
with ANSWER (``Approve`` or ``Reject``) a thread gives it, as a person does on a
deployment: through the REST API's PATCH of the task's ``hitlDetails``, here served in
this process by Airflow's own API app (the same route, its checks and its resume).
"""

from __future__ import annotations

import _thread
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dagfactory.tools.airflow_api import (
    activate_assets,
    add_listener,
    fill_dagbag,
    keep_one_execution_api,
    stored_xcoms,
)
from dagfactory.tools.task_logs import TaskLogs, listener, run_log_folder

# How often the answering thread looks for a task waiting for a person.
ANSWER_POLL_SECONDS = 0.5
# The states of a task waiting for a person: 3.3's own, or deferred to a trigger before.
WAITING_STATES = ("awaiting_input", "deferred")


def run_and_record(
    dag_id: str,
    folder: str,
    result_file: str,
    logs_folder: str,
    answer: str | None = None,
) -> None:
    """Run ``dag_id`` once, retries off, each task's output in its own log, ``answer``
    given to its approval task; dump the run as JSON."""
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
    answers: list[dict[str, Any]] = []
    if answer is not None:
        threading.Thread(
            target=answer_approval, args=(dag_id, answer, answers), daemon=True
        ).start()
    activate_assets(dag)
    keep_one_execution_api()
    try:
        run = dag.test()  # a failed run is returned, not raised
    except KeyboardInterrupt:  # from answer_approval: the run would wait for ever
        if not answers:
            raise
        raise SystemExit(
            f"could not answer {answer}: {json.dumps(answers[-1])}"
        ) from None
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
        "answers": answers,
        "logs_folder": str(Path(logs_folder, run_log_folder(dag_id, run.run_id))),
    }
    Path(result_file).write_text(json.dumps(document), "utf-8")


def answer_approval(dag_id: str, answer: str, answers: list[dict[str, Any]]) -> None:
    """Wait for a task of ``dag_id`` to wait for a person, then give ``answer`` as a
    person does: Airflow's REST API call, served in this process. The call made, and
    what Airflow answered, is appended to ``answers``; if it failed, or no call could
    be made, the main thread is interrupted (``dag.test()`` would wait for ever)."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    try:
        client = TestClient(create_app(apps="core"))
        _answer_when_asked(client, dag_id, answer, answers)
    except Exception as error:
        answers.append({"request": "", "status": 0, "response": repr(error)})
    if answers[-1]["status"] != 200:
        _thread.interrupt_main()


def _answer_when_asked(
    client: Any, dag_id: str, answer: str, answers: list[dict[str, Any]]
) -> None:
    """Poll until a task of ``dag_id`` waits for a person; PATCH its ``hitlDetails``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    while True:
        with create_session() as session:
            waiting = session.scalars(
                select(TaskInstance)
                .where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.state.in_(WAITING_STATES),
                )
                .options(joinedload(TaskInstance.hitl_detail))
            ).all()
            found = [
                (ti.run_id, ti.task_id, ti.map_index)
                for ti in waiting
                if ti.hitl_detail is not None and ti.hitl_detail.responded_at is None
            ]
        for run_id, task_id, map_index in found:
            path = (
                f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
                f"/taskInstances/{task_id}/{map_index}/hitlDetails"
            )
            body = {"chosen_options": [answer], "params_input": {}}
            response = client.patch(path, json=body)
            answers.append(
                {
                    "request": f"PATCH {path} {json.dumps(body)}",
                    "status": response.status_code,
                    "response": response.text,
                }
            )
            return
        time.sleep(ANSWER_POLL_SECONDS)


def _error(error: BaseException | str | None) -> dict[str, str | None]:
    """Airflow passes listeners the exception, or only its text, or nothing."""
    if isinstance(error, BaseException):
        return {"exception": type(error).__name__, "message": str(error)}
    return {"exception": None, "message": error}


def main(argv: list[str]) -> None:
    """``DAG_ID DAGS_FOLDER RESULT_FILE LOGS_FOLDER [ANSWER]``: plain arguments, so no
    code is built from strings."""
    run_and_record(*argv)


if __name__ == "__main__":
    main(sys.argv[1:])
