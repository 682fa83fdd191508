"""Fill one Airflow DagBag from a folder and print how long that took, as JSON.

Run in a fresh process per measurement (``python dagbag_fill.py FOLDER``), with
AIRFLOW_HOME set to a scratch folder. Importing Airflow is not timed: only the fill,
which parses every file of the folder and builds its DAGs.
"""

from __future__ import annotations

import json
import sys
import time

from airflow.dag_processing.dagbag import DagBag


def main(folder: str) -> None:
    sys.path.insert(0, folder)  # as Airflow's DAG processor does for its dags folder
    started, cpu_started = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=folder)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    errors = {path: message[-400:] for path, message in bag.import_errors.items()}
    tasks = [task for dag in bag.dags.values() for task in dag.tasks]
    edges = sum(len(task.downstream_task_ids) for task in tasks)
    shape = {"dags": len(bag.dags), "tasks": len(tasks), "edges": edges}
    figures = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        **shape,
        "errors": errors,
        # the benchmark's trainer modules are all named *_trainers
        "trainer_modules_imported": sorted(
            name for name in sys.modules if name.endswith("_trainers")
        ),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1])
