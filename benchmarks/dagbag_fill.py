"""Fill Airflow DagBags from a folder, one fill per line read from stdin, as JSON lines.

Run in a fresh process per variant (``python dagbag_fill.py FOLDER``), with AIRFLOW_HOME
set to a scratch folder. The benchmark keeps one such process per variant and asks
them for a fill in turn, so that a slower moment of the machine falls on every variant
alike. Importing Airflow is not timed: only the fills, each of which parses every file
of the folder again and builds its DAGs, as the DAG processor does on every parse. The
first fill also pays for importing the modules the files import (the operators); the
later ones are the steady cost of a parse. At the end of stdin, the process prints what
the last fill found and exits.
"""

from __future__ import annotations

import json
import sys
import time

MARKER = "dagbag-fill:"  # Airflow logs to stdout too: results are the marked lines


def main(folder: str) -> None:
    from airflow.dag_processing.dagbag import DagBag  # here: bench.py reads MARKER

    sys.path.insert(0, folder)  # as Airflow's DAG processor does for its dags folder
    bag = None
    for _ in sys.stdin:
        started, cpu_started = time.perf_counter(), time.process_time()
        bag = DagBag(dag_folder=folder)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        report({"seconds": seconds, "cpu_seconds": cpu_seconds})
    if bag is None:
        return
    tasks = [task for dag in bag.dags.values() for task in dag.tasks]
    report(
        {
            "dags": len(bag.dags),
            "tasks": len(tasks),
            "edges": sum(len(task.downstream_task_ids) for task in tasks),
            "errors": {path: text[-400:] for path, text in bag.import_errors.items()},
            # the benchmark's trainer modules are all named *_trainers
            "trainer_modules_imported": sorted(
                name for name in sys.modules if name.endswith("_trainers")
            ),
        }
    )


def report(figures: dict) -> None:
    print(MARKER + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
