"""Airflow's own DAG processor over a dags folder, the way a deployment parses it.

``airflow dag-processor --num-runs 1`` runs with its own AIRFLOW_HOME (SQLite,
examples off, Airflow's defaults otherwise: each file parsed in a process of its own,
``parsing_processes`` of them at a time) until it has parsed every file once, then
exits. The figures come from Airflow's records, not from timing the files ourselves:
the metadata database's ``serialized_dag`` rows (how many DAGs were serialized), its
``dag_code`` rows (the DAG source it stores, the file's once per DAG), its
``dag.last_parse_duration`` and ``dag.last_parsed_time`` (the processor's own
duration for the file of each DAG, and when its parse ended), and the processor's log.

The processor records ``last_parsed_time`` before it writes a file's DAGs, which for a
large file takes many seconds more; so the end of the work is the log's ``Exiting dag
parsing loop`` line, which the processor writes once every result is in the database.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple


class ProcessorRun(NamedTuple):
    wall: float  # the processor's whole process, from start to exit
    cpu: float  # user + system seconds of the processor and all its children
    done_after: float  # from its start until every DAG was stored (its log says so)
    parsing: float  # from its listing of the files until every DAG was stored
    dags: int  # rows in serialized_dag
    stored_code: int  # bytes of DAG source in dag_code
    files: int  # distinct DAG files that produced a DAG
    parse_median: float  # median of the processor's per-file parse durations
    parse_total: float  # their sum
    parse_max: float


def migrated_database(python: Path, work: Path) -> Path:
    """An empty, migrated SQLite metadata database to copy into each run's home."""
    home = Path(tempfile.mkdtemp(dir=work, prefix="airflow-db-"))
    subprocess.run(
        [str(python.parent / "airflow"), "db", "migrate"],
        env=airflow_env(home, home),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return home / "airflow.db"


def airflow_env(
    home: Path, dags: Path, pythonpath: Path | None = None, parsing: int | None = None
) -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        # dag-factory's loader builds every DAG in one file: let it finish, and report
        # how long it took, rather than stop at the default 30 s
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "660",
    }
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    if parsing is not None:
        env["AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES"] = str(parsing)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Airflow's default: bytecode is written
    return env


def run_processor(
    python: Path,
    folder: Path,
    pythonpath: Path,
    database: Path,
    work: Path,
    parsing: int | None = None,
) -> ProcessorRun:
    """Parse ``folder`` once with ``airflow dag-processor`` and read what it recorded."""
    for cache in folder.rglob("__pycache__"):  # every run parses from source alike
        shutil.rmtree(cache)
    home = Path(tempfile.mkdtemp(dir=work, prefix="airflow-processor-"))
    shutil.copy(database, home / "airflow.db")
    log = home / "dag-processor.log"
    started_at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    started = datetime.datetime.now().timestamp()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(python.parent / "airflow"), "dag-processor", "--num-runs", "1"],
            env=airflow_env(home, folder, pythonpath, parsing),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        _, waited, usage = os.wait4(process.pid, 0)
        status = os.waitstatus_to_exitcode(waited)
    wall = datetime.datetime.now().timestamp() - started
    # The processor waits for each file's process: their CPU is counted in its own.
    cpu = usage.ru_utime + usage.ru_stime
    if status != 0:
        raise RuntimeError(
            f"airflow dag-processor on {folder} exited {status}:\n"
            + log.read_text()[-3000:]
        )
    with sqlite3.connect(home / "airflow.db") as db:
        (dags,) = db.execute("SELECT count(*) FROM serialized_dag").fetchone()
        (code,) = db.execute("SELECT sum(length(source_code)) FROM dag_code").fetchone()
        parsed = db.execute(
            "SELECT max(last_parsed_time), max(last_parse_duration) FROM dag"
            " GROUP BY fileloc"
        ).fetchall()
        errors = db.execute("SELECT filename, stacktrace FROM import_error").fetchall()
    if errors or not parsed:
        raise RuntimeError(f"airflow dag-processor on {folder}: {errors[:3]}")
    text = log.read_text()
    listed, done = (_logged(text, line, started_at) for line in (FOUND_LINE, EXIT_LINE))
    shutil.rmtree(home)
    durations = [duration for _, duration in parsed]
    return ProcessorRun(
        wall,
        cpu,
        done,
        done - listed,
        dags,
        code or 0,
        len(durations),
        statistics.median(durations),
        sum(durations),
        max(durations),
    )


# The processor's log lines that open and close its work: it has listed the dags
# folder's files (and starts parsing them), and every result is in the database.
FOUND_LINE = "files for bundle dags-folder"
EXIT_LINE = "Exiting dag parsing loop"


def _logged(log: str, text: str, started_at: datetime.datetime) -> float:
    """Seconds from ``started_at`` (naive UTC) to the first log line holding ``text``."""
    for line in log.splitlines():
        if text in line:
            stamp = line.split()[0].strip("[]").replace("Z", "+00:00")
            at = datetime.datetime.fromisoformat(stamp).astimezone(datetime.UTC)
            return (at.replace(tzinfo=None) - started_at).total_seconds()
    raise RuntimeError(f"no {text!r} line in the processor's log")
