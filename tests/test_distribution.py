"""What a user gets: the sdist and the wheel, installed outside this repository, from
``init`` in an empty folder to a DAG run on a real Airflow.

The wheel is built from the sdist (as ``python -m build`` does), from a copy of the
source, so the checkout is never written to (the ``dist`` fixture, in conftest.py, which
the documentation's transcripts share); it is installed without ``-e`` into a
fresh virtualenv, pinned by constraints.txt, and every command runs from an empty
folder outside the repository with that virtualenv's ``dagfactory``.
"""

from __future__ import annotations

import subprocess
import tarfile
import zipfile

import pytest

from conftest import ROOT, run_outside

pytestmark = pytest.mark.airflow

# What the package reads at run time, beside its modules.
PACKAGE_DATA = [
    "dagfactory/templates/dag.py.j2",
    "dagfactory/templates/starter.yaml",
    "dagfactory/templates/starter_models.py.txt",
    "dagfactory/schema/spec.schema.json",
]


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


def test_a_new_user_goes_from_an_empty_folder_to_a_dag_run(wheel_venv, tmp_path):
    venv = wheel_venv  # the wheel[airflow] installed, pinned, into a fresh venv
    project = tmp_path / "project"
    project.mkdir()
    dagfactory = str(venv / "bin" / "dagfactory")
    where = run_outside(
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
        result = run_outside([dagfactory, *args], project)
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
