"""The child halves of ``check`` and ``run`` import Airflow and the standard library only.

They run in a process with Airflow, where loading the compiler (YAML, Jinja, JSON
Schema) would be paid for nothing: the parent compiled the configs and hands over
plain data. ``python -X importtime`` names every module a process imports, so the
child entry is run exactly as the parent runs it (``python -m``), here against a stub
``airflow`` whose DagBag imports the folder's files (none here): the child's own
imports are what is audited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, stub_airflow

NEVER_IN_A_CHILD = ("dagfactory.compile", "yaml", "jinja2", "jsonschema")


def imported(stderr: str) -> set[str]:
    """The modules ``-X importtime`` reports (one line each: ``import time: ... | name``)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    } - {"imported package"}


def child_env(*paths: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, [*paths, ROOT])))


def forbidden(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if any(name == top or name.startswith(f"{top}.") for top in NEVER_IN_A_CHILD)
    )


def test_the_check_child_runs_without_the_compiler(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    result, calls, findings, progress = (
        tmp_path / n for n in ("dagbag.json", "calls", "found", "progress")
    )
    calls.write_text(
        json.dumps(
            [{"target": "json:dumps", "keywords": [], "positional": 1, "passes": ""}]
        )
    )
    findings.touch()
    child = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dagfactory.tools.check_child"]
        + [str(dags), str(result), str(calls), str(findings), str(progress), "30"],
        env=child_env(stub_airflow(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(result.read_text()) == {"files": [], "dags": {}, "errors": {}}
    assert findings.read_text().splitlines() == ["null"]
    modules = imported(child.stderr)
    assert {"airflow.models.dagbag", "dagfactory.tools.airflow_api"} <= modules
    assert forbidden(modules) == []


def test_the_run_child_imports_without_the_compiler():
    child = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import dagfactory.tools.run_child"],
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    modules = imported(child.stderr)
    assert "dagfactory.tools.airflow_api" in modules
    assert forbidden(modules) == []
