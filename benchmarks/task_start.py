"""Load one task's DAG file the way an Airflow 3 worker does when it starts a task.

Run in a fresh process: ``python task_start.py BUNDLE REL_PATH DAG_ID TASK_ID``.
Airflow's task runner (``airflow.sdk.execution_time.task_runner.parse``) builds a
``BundleDagBag`` over the task's file alone, with ``safe_mode=False`` and
``load_op_links=False``, inside the parsing context of the task (so that a file of many
DAGs may build only the one asked for), then looks the DAG and the task up; this does
the same and prints how long that took (the import of Airflow before it is timed by the
caller, as part of the whole process).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

MARKER = "task-start:"


def main(bundle: str, rel_path: str, dag_id: str, task_id: str) -> None:
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.sdk.definitions._internal.dag_parsing_context import (
        _airflow_parsing_context_manager,  # what the task runner parses in
    )

    started = time.perf_counter()
    with _airflow_parsing_context_manager(dag_id=dag_id, task_id=task_id):
        bag = BundleDagBag(
            dag_folder=str(Path(bundle, rel_path)),
            safe_mode=False,
            load_op_links=False,
            bundle_path=Path(bundle),
            bundle_name="dags-folder",
        )
    task = bag.dags[dag_id].task_dict[task_id]
    seconds = time.perf_counter() - started
    print(
        MARKER
        + json.dumps({"seconds": seconds, "task": task.task_id, "dags": len(bag.dags)}),
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
