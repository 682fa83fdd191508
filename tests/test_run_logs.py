"""`dagfactory run`'s task logs without Airflow: the capture of a task's output into its
file, how the logs are printed, and what a failed run's outcome holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from conftest import ROOT
from dagfactory.commands.run import _run_outcome
from dagfactory.problems import EXIT_PROBLEMS
from dagfactory.report import task_log_sections
from dagfactory.tools.run import RunResult, TaskFailure, TaskLog, XComEntry

# A child as run_child is: sys.stdout on descriptor 1 (pytest's capture would replace it).
CHILD = """
import os, sys
from pathlib import Path
from types import SimpleNamespace
from dagfactory.tools.task_logs import TaskLogs

def instance(task_id, map_index=-1):
    return SimpleNamespace(dag_id="demo", run_id="manual__1", task_id=task_id,
                           map_index=map_index, try_number=1)

logs = TaskLogs(Path(sys.argv[1]))
print("before")
logs.start(instance("train", 2))
print("from python")
sys.stdout.flush()
os.system("echo from a subprocess; echo to stderr >&2")
logs.start(instance("wait"))  # a new start ends the task before
print("deferred")
logs.stop()
print("between")
logs.start(instance("wait"))  # resumed after its deferral: same file
print("resumed", file=sys.stderr)
logs.stop()
print("after")
print(logs.written, file=sys.stderr)
"""


def test_each_tasks_output_goes_to_its_file_then_on_to_the_console(tmp_path):
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    run = tmp_path / "dag_id=demo" / "run_id=manual__1"
    train = run / "task_id=train" / "map_index=2" / "attempt=1.log"
    wait = run / "task_id=wait" / "attempt=1.log"
    assert train.read_text().splitlines() == [
        "from python",
        "from a subprocess",
        "to stderr",
    ]
    assert wait.read_text() == "deferred\nresumed\n"
    assert child.stdout.splitlines() == [
        "before",
        "from python",
        "from a subprocess",
        "to stderr",
        "deferred",
        "between",
        "resumed",
        "after",
    ]
    assert child.stderr.splitlines() == [
        str(
            [
                {
                    "task_id": "train",
                    "map_index": 2,
                    "try_number": 1,
                    "path": str(train),
                },
                {
                    "task_id": "wait",
                    "map_index": -1,
                    "try_number": 1,
                    "path": str(wait),
                },
            ]
        )
    ]


def log(tmp_path: Path, task_id: str, text: str, map_index: int = -1) -> TaskLog:
    path = tmp_path / f"{task_id}.{map_index}.log"
    path.write_text(text)
    return TaskLog(task_id, map_index, 1, path)


def test_logs_are_grouped_by_task_in_the_order_tasks_first_ran(tmp_path):
    logs = [
        log(tmp_path, "fetch", "fetched\n"),
        log(tmp_path, "seeds.train", "seed 1\n", 1),
        log(tmp_path, "quiet", ""),
        log(tmp_path, "seeds.train", "seed 0\n", 0),
    ]
    assert task_log_sections(logs) == [
        "==> fetch <==",
        "fetched",
        "",
        "==> seeds.train (map index 0) <==",
        "seed 0",
        "",
        "==> seeds.train (map index 1) <==",
        "seed 1",
        "",
        "==> quiet <==",
        "(no output)",
        "",
    ]


def failed_run(tmp_path: Path, logs: list[TaskLog]) -> RunResult:
    pushed = XComEntry("score", 0.5, "train.a", "demo", -1, None, "2024-01-01T00:00:01")
    failure = TaskFailure("train.b", -1, "failed", 1, "ValueError", "oops")
    return RunResult(
        "demo",
        "manual__1",
        "failed",
        [pushed],
        [failure],
        "airflow said things\n",
        logs,
        tmp_path,
    )


def test_a_failed_run_shows_its_xcoms_then_the_failed_tasks_log_end(tmp_path):
    pipeline = SimpleNamespace(dag=SimpleNamespace(dag_id="demo"))
    logs = [log(tmp_path, "train.a", "fine\n"), log(tmp_path, "train.b", "boom\n")]
    outcome = _run_outcome(pipeline, failed_run(tmp_path, logs), show_logs=False)
    assert outcome.exit_code == EXIT_PROBLEMS
    said = "".join(outcome.output).splitlines()
    assert said[:2] == ["DAG run manual__1: failed", ""]
    assert said[2].split()[:2] == ["Key", "Value"]
    assert any(line.split()[:3] == ["score", "0.5", "train.a"] for line in said)
    assert said[-1] == f"task logs: {tmp_path}"
    (problem,) = outcome.problems
    assert problem.detail.splitlines() == [
        "train.b failed on try 1: ValueError: oops",
        "",
        f"end of the log of train.b ({tmp_path / 'train.b.-1.log'}):",
        "boom",
    ]
    assert outcome.notes == ["train.b failed on try 1: ValueError: oops"]


def test_a_failed_task_without_a_log_falls_back_on_airflows_log(tmp_path):
    pipeline = SimpleNamespace(dag=SimpleNamespace(dag_id="demo"))
    outcome = _run_outcome(pipeline, failed_run(tmp_path, []), show_logs=True)
    (problem,) = outcome.problems
    assert problem.detail.splitlines()[1:] == [
        "",
        "end of Airflow's log:",
        "airflow said things",
    ]
