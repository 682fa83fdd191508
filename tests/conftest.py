"""Shared fixtures. Airflow, when a test imports it, gets a private home (set before import).

Every test runs in a fresh copy of the project's own files (configs/, generated_dags/):
the suite never writes into the checkout, not even dagfactory's render cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from dagfactory.compile import Compiled, compile_text

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="dagfactory-tests-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# The user's own cache folder, for what a test keeps between runs on purpose (the
# MLflow test's virtualenvs): render keeps compiled templates in the user's cache
# folder, so the suite gets a private one.
USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="dagfactory-tests-cache-")
# Hypothesis keeps its examples under the directory pytest started in: not the checkout.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="dagfactory-tests-hypothesis-"))

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("configs", "generated_dags")

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


def interruptible() -> None:
    """A child's Ctrl-C as a terminal delivers it (``preexec_fn``): SIGINT back to its
    default, for a suite started in the background, where the shell ignores SIGINT
    and every process it starts inherits that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def project(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """A fresh copy of the project's files, and the working directory of the test."""
    folder = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        shutil.copytree(ROOT / name, folder / name)
    monkeypatch.chdir(folder)
    return folder


def dagfactory(
    *args: str, cwd: Path | None = None, **options: object
) -> subprocess.CompletedProcess[str]:
    """Run the command as a user does: a subprocess with text output and its exit code.

    It runs in ``cwd``, by default the test's working directory (its project copy).
    """
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


def compile_yaml(
    text: str, name: str = "c.yaml", templates: Path | None = None
) -> Compiled | list[str]:
    """A config text through the one compile path: the result, or every problem as printed."""
    result = compile_text(textwrap.dedent(text), name, templates)
    if result.compiled is None:
        return [str(problem) for problem in result.problems]
    return result.compiled


def compiled(
    text: str, name: str = "c.yaml", templates: Path | None = None
) -> Compiled:
    """A config text that must compile: what it compiles to."""
    result = compile_yaml(text, name, templates)
    assert not isinstance(result, list), result
    return result


# Where DagBag and DAG live depends on the Airflow version (the tests run on each one the
# compatibility run covers): DagBag left airflow.models.dagbag in 3.2, airflow.sdk came in
# 3.0. As text for the DAG files and child scripts that tests write.
IMPORT_DAGBAG = """\
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2 to 3.1
    from airflow.models.dagbag import DagBag
"""
IMPORT_DAG = """\
try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
"""


def airflow_dagbag(folder: Path) -> Any:
    """A real DagBag of ``folder``, on whichever supported Airflow is installed."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2 to 3.1
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=str(folder))


def cut_to(found: list[str], expected: list[str]) -> list[str]:
    """``found`` with each message cut to the length of the one ``expected`` at its
    place, the rest whole: equal to ``expected`` when the problems are exactly those,
    each written out as far as the test spells it."""
    return [
        message[: len(prefix)] for message, prefix in zip(found, expected, strict=False)
    ] + found[len(expected) :]


STUB_DAGBAG = '''\
import os
import runpy


class DagBag:
    """Airflow 2 to 3.1's DagBag: imports each file of the folder, in name order,
    one ``process_file`` each, as Airflow does; with no import timeout of its own."""

    def __init__(self, dag_folder, include_examples):
        self.dags = {}
        self.file_last_changed = {}
        self.import_errors = {}
        for name in sorted(os.listdir(dag_folder)):
            if name.endswith(".py"):
                self.process_file(os.path.join(dag_folder, name))

    def process_file(self, filepath):
        runpy.run_path(filepath)
        self.file_last_changed[filepath] = os.path.getmtime(filepath)
'''


def stub_airflow(folder: Path) -> Path:
    """A package ``airflow`` with only ``airflow.models.dagbag.DagBag`` (the stub
    above), under ``folder``; the directory to put first on a child's ``PYTHONPATH``."""
    package = folder / "stub" / "airflow"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models" / "__init__.py").write_text("")
    (package / "models" / "dagbag.py").write_text(STUB_DAGBAG)
    return package.parent


# -- the built distribution, shared by the tests that use what a user installs -----------

DIST_SOURCE = ("dagfactory", "pyproject.toml", "README.md")


def run_outside(
    command: list[str], cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """``command`` as a user's shell runs it: without the checkout on PYTHONPATH."""
    environment = {
        key: value for key, value in os.environ.items() if key != "PYTHONPATH"
    }
    environment.update(env)
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from a copy of the source (built once a session)."""
    scratch = tmp_path_factory.mktemp("build")
    source = scratch / "source"
    for name in DIST_SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)
    shutil.rmtree(source / "dagfactory" / "__pycache__", ignore_errors=True)
    built = run_outside(
        [sys.executable, "-m", "build", "--outdir", str(scratch / "dist"), str(source)],
        scratch,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return scratch / "dist"


@pytest.fixture(scope="session")
def wheel_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed as a user installs it: ``[airflow]``
    (and ``[sklearn]``, which the tutorial's example needs), pinned by
    constraints.txt, not editable."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    made = run_outside([sys.executable, "-m", "venv", str(venv)], venv.parent)
    assert made.returncode == 0, made.stderr
    (wheel,) = dist.glob("dagfactory-*.whl")
    install = run_outside(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            f"{wheel}[airflow,sklearn]",
        ],
        venv.parent,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return venv
