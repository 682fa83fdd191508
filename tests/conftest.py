"""Shared fixtures. Airflow, when a test imports it, gets a private home (set before import)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="dagfactory-tests-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

ROOT = Path(__file__).resolve().parent.parent

VALID = """\
dag:
  dag_id: demo
  start_date: 2024-01-01
download:
  task_id: fetch
  bash_command: echo hello
trainers:
  group_id: train
  xcom_key: score
  python_callable: pkg.models:train
  models:
    - task_id: a
    - task_id: b
      op_kwargs: {depth: 3}
chooser:
  task_id: choose
"""


def dagfactory(
    *args: str, cwd: Path = ROOT, **options: object
) -> subprocess.CompletedProcess[str]:
    """Run the command as a user does: a subprocess with text output and its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "dagfactory", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        **options,
    )


@pytest.fixture
def write_config(tmp_path: Path):
    """Write YAML text (dedented) to a file in a fresh folder and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / "configs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
