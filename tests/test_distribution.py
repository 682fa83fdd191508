"""What a user gets: the sdist and the wheel, installed outside this repository, from
``init`` in an empty folder to a DAG run on a real Airflow.

The wheel is built from the sdist (as ``python -m build`` does), from a copy of the
source, so the checkout is never written to; it is installed without ``-e`` into a
fresh virtualenv, pinned by constraints.txt, and every command runs from an empty
folder outside the repository with that virtualenv's ``dagfactory``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.airflow

SOURCE = ["dagfactory", "pyproject.toml", "README.md"]
# What the package reads at run time, beside its modules.
PACKAGE_DATA = [
    "dagfactory/templates/dag.py.j2",
    "dagfactory/templates/starter.yaml",
    "dagfactory/templates/starter_models.py.txt",
    "dagfactory/schema/spec.schema.json",
]


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if key != "PYTHONPATH"
    }
    environment.update(env)
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from a copy of the source."""
    scratch = tmp_path_factory.mktemp("build")
    source = scratch / "source"
    for name in SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)
    shutil.rmtree(source / "dagfactory" / "__pycache__", ignore_errors=True)
    built = _run(
        [sys.executable, "-m", "build", "--outdir", str(scratch / "dist"), str(source)],
        scratch,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return scratch / "dist"


def test_the_sdist_and_the_wheel_carry_every_file_the_package_reads(dist):
    (wheel,) = dist.glob("dagfactory-*.whl")
    (sdist,) = dist.glob("dagfactory-*.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= in_wheel
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert set(PACKAGE_DATA) <= in_sdist
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "dagfactory").rglob("*.py")
    }
    assert modules <= in_wheel


def test_a_new_user_goes_from_an_empty_folder_to_a_dag_run(dist, tmp_path):
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    (wheel,) = dist.glob("dagfactory-*.whl")
    install = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            f"{wheel}[airflow]",
        ],
        tmp_path,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    project = tmp_path / "project"
    project.mkdir()
    dagfactory = str(venv / "bin" / "dagfactory")
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import dagfactory; print(dagfactory.__file__)",
        ],
        project,
    )
    assert where.stdout.startswith(str(venv)), (
        where.stdout
    )  # the wheel, not the checkout

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        result = _run([dagfactory, *args], project)
        assert result.returncode == 0, (
            args,
            result.stdout[-3000:],
            result.stderr[-3000:],
        )
        return result

    step("init")
    assert step("validate").stdout == "1 config valid\n"
    assert "rendered 1 DAG: 1 written" in step("render").stdout
    checked = step("check")
    assert "ok     generated_dags/my_pipeline.py  my_pipeline" in checked.stdout
    assert "my_pipeline_tasks" not in checked.stdout  # ignored: not a DAG file
    run = step("run", "my_pipeline")
    assert "model_accuracy  0.84  " in run.stdout
    *_, winner, logs = run.stdout.splitlines()
    assert winner == (
        'winner (max model_accuracy): {"task_id": "training.train_large", '
        '"value": 0.84, "metrics": {"model_accuracy": 0.84}, '
        '"params": {"size": "large"}}'
    )
    assert logs.startswith("task logs: .dagfactory/runs/dag_id=my_pipeline/run_id=")
    assert step("render", "--check").stdout == "1 DAG file up to date\n"
