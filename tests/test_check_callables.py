"""`dagfactory check` proves the configs' callables on a real Airflow, before anything runs.

Each test breaks a copy of the project as users do (a misspelled function, a missing
module, an op_kwargs key the function does not take, a callback or a publish function
that cannot take what it is given), renders it (render does not import user code, so
it passes), and expects check to name each mistake at the line and column where it
is: an op_kwargs key the function does not take at the key (with the parameter it
most likely meant), anything else at the callable.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import PROJECT_FILES, ROOT, dagfactory

pytestmark = pytest.mark.airflow

# (file, old text, new text): one mistake each, on lines the expectations name.
MISTAKES = [
    ("configs/xcom_dag.yaml", "models:train_model\n", "models:train_modle\n"),
    ("configs/min_loss_dag.yaml", "ml_demo.data:fetch", "ml_demo.dta:fetch"),
    ("configs/min_loss_dag.yaml", "{value: 0.17}", "{value: 0.17, scale: 2}"),
    ("configs/sweeps/mapped_seeds.yaml", "    seed: [", "    sede: ["),
    ("configs/sweeps/hyperparameter_sweep.yaml", "{rows: 1000}", "{row: 1000}"),
    ("configs/sweeps/hyperparameter_sweep.yaml", '{source: "s3:', '{path: "s3:'),
    (
        "configs/sweeps/hyperparameter_sweep.yaml",
        "on_failure_callback: ml_demo.reports:notify",
        "on_failure_callback: ml_demo.models:train_model",
    ),
    (
        "configs/sweeps/hyperparameter_sweep.yaml",
        "ml_demo.reports:publish",
        "ml_demo.reports:announce",
    ),
    (
        "configs/sweeps/random_restarts.yaml",
        "ml_demo.models:train_model",
        "ml_demo.settings:train",
    ),
]
ANNOUNCE = '''

def announce(channel: str, model_uri: str) -> None:
    """Asks for a model_uri, which neither its op_kwargs nor the winner's fields give."""
'''
SETTINGS = 'KEYS = {}\nTOKEN = KEYS["token"]\n'

EXPECTED = [
    "configs/min_loss_dag.yaml:16:20: error: download.python_callable: cannot import "
    "ml_demo.dta: No module named 'ml_demo.dta' (looked for in the dags folder "
    "generated_dags, which Airflow puts on sys.path, and in the installed packages); "
    "did you mean 'ml_demo.data'?",
    "configs/min_loss_dag.yaml:26:32: error: trainers.models[1].op_kwargs.scale: "
    "report_metric() got an unexpected keyword argument 'scale'; it accepts: value "
    "(task candidates.train_depth_4 passes value, scale)",
    "configs/sweeps/hyperparameter_sweep.yaml:21:24: error: dag.on_failure_callback: "
    "train_model() too many positional arguments; it takes no arguments "
    "(Airflow calls a DAG callback with one argument, the context)",
    "configs/sweeps/hyperparameter_sweep.yaml:26:17: error: download[0].op_kwargs.row: "
    "fetch() got an unexpected keyword argument 'row' (did you mean 'rows'?); "
    "it accepts: rows (task fetch_features passes row)",
    # a required parameter no key was meant for stays at the callable
    "configs/sweeps/hyperparameter_sweep.yaml:28:22: error: "
    "download[1].python_callable: fetch_labels() missing a required argument: "
    "'source'; it accepts: source (task fetch_labels passes path)",
    "configs/sweeps/hyperparameter_sweep.yaml:29:17: error: download[1].op_kwargs.path: "
    "fetch_labels() got an unexpected keyword argument 'path'; it accepts: source "
    "(task fetch_labels passes path)",
    "configs/sweeps/hyperparameter_sweep.yaml:56:20: error: publish.python_callable: "
    "announce() missing a required argument: 'model_uri'; it accepts: channel, "
    "model_uri (task announce passes channel; it also gets those of the winner's "
    "task_id, value, metrics, artifact, params that it accepts)",
    "configs/sweeps/mapped_seeds.yaml:17:5: error: trainers.matrix.sede: "
    "seeded_score() got an unexpected keyword argument 'sede' (did you mean 'seed'?); "
    "it accepts: seed "
    "(tasks seeds.train_seed[0], seeds.train_seed[1], seeds.train_seed[2] and 5 more "
    "pass sede)",
    "configs/sweeps/random_restarts.yaml:13:20: error: trainers.python_callable: "
    "importing ml_demo.settings failed: KeyError: 'token'",
    "configs/xcom_dag.yaml:16:20: error: trainers.python_callable: ml_demo.models has "
    "no function 'train_modle'; did you mean 'train_model'?",
    "generated_dags/bash_trainers.py: warning: stale: generated from "
    "configs/sweeps/bash_trainers.yaml, which is not there; its callables are not "
    "checked (`dagfactory render --prune` removes it)",
]


def copy_project(folder: Path) -> Path:
    for name in PROJECT_FILES:
        shutil.copytree(ROOT / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The project with every mistake made and rendered, checked once in each format."""
    project = copy_project(tmp_path_factory.mktemp("broken"))
    for name, old, new in MISTAKES:
        path = project / name
        text = path.read_text()
        assert text.count(old) == 1, (name, old)
        path.write_text(text.replace(old, new))
    with (project / "generated_dags/ml_demo/reports.py").open("a") as reports:
        reports.write(ANNOUNCE)
    (project / "generated_dags/ml_demo/settings.py").write_text(SETTINGS)
    (project / "configs/sweeps/bash_trainers.yaml").unlink()
    rendered = dagfactory("render", cwd=project)
    assert rendered.returncode == 0, rendered.stderr  # nothing imports user code there
    return {
        output_format: dagfactory("check", "--format", output_format, cwd=project)
        for output_format in ("text", "json", "github")
    }


def test_text_lists_the_files_then_each_callable_problem_at_its_line(broken):
    result = broken["text"]
    assert result.returncode == 1
    listing = result.stdout.splitlines()
    assert listing and all(line.startswith("ok     ") for line in listing), listing
    lines = result.stderr.splitlines()
    problems = [
        line for line in lines if re.match(r"\S+(:\d+:\d+)?: (error|warning)", line)
    ]
    assert problems == EXPECTED
    # the import that failed shows where, in the user's code, before its problem
    detail = lines[lines.index(EXPECTED[7]) + 1 : lines.index(EXPECTED[8])]
    assert detail[0] == "Traceback (most recent call last):"
    assert re.fullmatch(
        r'  File ".*/generated_dags/ml_demo/settings\.py", line 2, in <module>',
        detail[1],
    )
    assert detail[-1] == "KeyError: 'token'"
    assert lines[-2:] == [
        "checked 7 files: 7 DAGs loaded, 0 import errors, 0 cycles, 0 duplicate dag ids",
        "10 errors in 5 configs",
    ]


def test_every_format_gives_the_same_located_problems(broken):
    found = json.loads(broken["json"].stdout)
    assert broken["json"].returncode == 1
    assert [
        f"{p['file']}:{p['line']}:{p['column']}: {p['severity']}: {p['spec_path']}: {p['message']}"
        for p in found
        if p["line"] is not None
    ] == [line for line in EXPECTED if not line.startswith("generated_dags/")]
    assert "ok     generated_dags/xcom_dag.py" in broken["json"].stderr
    annotations = [
        line for line in broken["github"].stdout.splitlines() if line.startswith("::")
    ]
    assert len(annotations) == len(EXPECTED)
    assert (
        "::error file=configs/xcom_dag.yaml,line=16,col=20,"
        "title=dagfactory trainers.python_callable::trainers.python_callable: "
        "ml_demo.models has no function 'train_modle'; did you mean 'train_model'?"
    ) in annotations


def test_the_committed_project_names_callables_and_they_all_hold():
    from dagfactory.compile import compile_config
    from dagfactory.configs import discover

    named = [
        reference
        for config in discover([Path("configs")])
        for reference in compile_config(
            config.path, config.name, config.defaults
        ).compiled.references
    ]
    assert len(named) == 18  # every kind: steps, trainers, a callback, publish
    result = dagfactory("check", "--format", "json")
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


def test_a_callable_whose_import_kills_python_is_still_a_located_problem():
    Path("generated_dags/ml_demo/native.py").write_text(
        "import ctypes\n\nctypes.string_at(0)\n"  # reads address 0: SIGSEGV
    )
    config = Path("configs/xcom_dag.yaml")
    config.write_text(
        config.read_text().replace("ml_demo.models:train_model", "ml_demo.native:train")
    )
    # The timeout only guards: under the SIGSEGV handler a DagBag leaves, it faults forever.
    result = dagfactory("check", timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "configs/xcom_dag.yaml:16:20: error: trainers.python_callable: checking "
        "ml_demo.native:train ended the check: its Python process was killed by "
        "signal 11 (Segmentation fault)"
    ) in result.stderr.splitlines()
    assert result.stdout.startswith("ok     generated_dags/")  # the listing still holds
