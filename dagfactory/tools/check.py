"""Load a dags folder in a real Airflow DagBag and say, per file, what Airflow would say.

The DagBag is filled in a child process with its own ``AIRFLOW_HOME`` (see
:mod:`.airflow`), so the command line never imports Airflow; the child
writes what it found as JSON to a file, away from Airflow's logging on stdout.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dagfactory.configs import display_name
from dagfactory.tools.airflow import airflow_env, python_with_airflow

# Airflow records cycles and duplicate DAG ids as import errors named after the exception.
KINDS = {
    "AirflowDagCycleException": "cycle",
    "AirflowDagDuplicatedIdException": "duplicate dag id",
}


@dataclass
class FileReport:
    """One Python file of the folder: the DAGs it defines, or what went wrong."""

    path: str
    dag_ids: list[str] = field(default_factory=list)
    kind: str | None = None  # "import error", "cycle" or "duplicate dag id"
    detail: str = ""


@dataclass
class CheckResult:
    files: list[FileReport]
    log: str = ""

    @property
    def problems(self) -> list[FileReport]:
        return [report for report in self.files if report.kind]


def fill_dagbag(folder: str, result_file: str) -> None:
    """Runs in the child: fill a DagBag from ``folder`` and dump what it holds as JSON."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=folder)
    dags: dict[str, list[str]] = {}
    for dag_id, dag in bag.dags.items():
        dags.setdefault(str(Path(dag.fileloc).resolve()), []).append(dag_id)
    document = {
        "files": sorted(str(Path(path).resolve()) for path in bag.file_last_changed),
        "dags": dags,
        "errors": {
            str(Path(folder, path).resolve()): text
            for path, text in bag.import_errors.items()
        },
    }
    Path(result_file).write_text(json.dumps(document), "utf-8")


def check_folder(folder: Path) -> CheckResult:
    """What a real Airflow DagBag makes of every file in ``folder``."""
    with tempfile.TemporaryDirectory(prefix="dagfactory-check-") as home:
        result_file = Path(home, "dagbag.json")
        probe = f"from dagfactory.tools.check import fill_dagbag; fill_dagbag({str(folder.resolve())!r}, {str(result_file)!r})"
        child = python_with_airflow(["-c", probe], airflow_env(Path(home), folder))
        log = child.stdout + child.stderr
        if child.returncode != 0 or not result_file.exists():
            return CheckResult([], log)
        document = json.loads(result_file.read_text("utf-8"))
    paths = sorted(set(document["files"]) | set(document["errors"]))
    reports = []
    for path in paths:
        report = FileReport(
            display_name(Path(path)), sorted(document["dags"].get(path, []))
        )
        error = document["errors"].get(path)
        if error is not None:
            exception = error.split(":", 1)[0]
            report.kind = KINDS.get(exception, "import error")
            report.detail = error.strip()
        reports.append(report)
    return CheckResult(reports, log)
