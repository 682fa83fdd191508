"""Each task's output in a log file of its own, for ``dagfactory run`` (child side).

``dag.test()`` runs every task inside the child's own process and logs to its console,
on every supported Airflow: 2.x through a stream handler on stdout that it adds to each
task's logger, 3.x through the Task SDK's in-process supervisor, whose task logger
prints. Neither writes the task log files a worker would, so a run's ``logs/`` stayed
empty and what a trainer printed was lost in one mixed console log.

So :mod:`.run_child` captures them itself. From a task's start to its end (Airflow's
listener hooks, the same on every version) the process's stdout and stderr, as file
descriptors 1 and 2, go to the task's file: a subprocess's output (a bash command) and
a handler that kept the old stream object are caught too, which swapping ``sys.stdout``
would miss. The files are laid out as Airflow's default ``log_filename_template`` lays
them out, so that an Airflow pointed at the same home finds them. When a task ends, its
file is copied on to the console, so that the child's whole log still reads in order.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STDOUT, STDERR = 1, 2


def run_log_folder(dag_id: str, run_id: str) -> Path:
    """The folder of one run's task logs in Airflow's default layout (relative)."""
    return Path(f"dag_id={dag_id}", f"run_id={run_id}")


def airflow_log_path(
    dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> Path:
    """Where Airflow's default ``log_filename_template`` puts a task instance's log."""
    path = run_log_folder(dag_id, run_id) / f"task_id={task_id}"
    if map_index >= 0:
        path /= f"map_index={map_index}"
    return path / f"attempt={try_number}.log"


@dataclass
class Capture:
    """The task being captured: the console's saved descriptors and where its log goes."""

    saved_stdout: int
    saved_stderr: int
    path: Path
    start: int  # the file's size when this capture began (a resumed task appends)


@dataclass
class TaskLogs:
    """Sends each task's output to its own file under ``folder``, in the order tasks ran.

    ``written`` lists each task instance once, as JSON-ready dicts, in the order they
    started: the order ``dag.test()`` ran them in, which follows the dependencies.
    """

    folder: Path
    written: list[dict[str, Any]] = field(default_factory=list)
    current: Capture | None = None

    def start(self, task_instance: Any) -> None:
        """Capture from now on into ``task_instance``'s file (ending any capture before)."""
        self.stop()
        ti = task_instance
        relative = airflow_log_path(
            ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number
        )
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "try_number": ti.try_number,
            "path": str(path),
        }
        if entry not in self.written:  # a deferred task resumes into the same file
            self.written.append(entry)
        _flush()
        saved = Capture(os.dup(STDOUT), os.dup(STDERR), path, _size(path))
        with path.open("ab") as log:
            os.dup2(log.fileno(), STDOUT)
            os.dup2(log.fileno(), STDERR)
        self.current = saved

    def stop(self) -> None:
        """Give the console back its descriptors and copy the task's output on to it."""
        capture, self.current = self.current, None
        if capture is None:
            return
        _flush()
        os.dup2(capture.saved_stdout, STDOUT)
        os.dup2(capture.saved_stderr, STDERR)
        os.close(capture.saved_stdout)
        os.close(capture.saved_stderr)
        with capture.path.open("rb") as log:
            log.seek(capture.start)
            for chunk in iter(lambda: log.read(65536), b""):
                _write_all(STDOUT, chunk)


def listener(logs: TaskLogs) -> object:
    """An Airflow listener that starts and stops ``logs``' capture around each task.

    Its hooks take only the arguments every version passes (Airflow 2 adds a session).
    """
    from airflow.listeners import hookimpl

    class TaskLogListener:
        @hookimpl
        def on_task_instance_running(
            self, previous_state: Any, task_instance: Any
        ) -> None:
            logs.start(task_instance)

        @hookimpl
        def on_task_instance_success(
            self, previous_state: Any, task_instance: Any
        ) -> None:
            logs.stop()

        @hookimpl
        def on_task_instance_failed(
            self, previous_state: Any, task_instance: Any
        ) -> None:
            logs.stop()

        @hookimpl
        def on_task_instance_skipped(  # Airflow 3 only: before, the next start ends it
            self, previous_state: Any, task_instance: Any
        ) -> None:
            logs.stop()

    return TaskLogListener()


def _flush() -> None:
    """What Python buffered for the console goes where the descriptors point now."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or detached by something in a task
            pass


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]
