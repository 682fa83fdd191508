"""Trainers in their own Python environment: what ``runtime`` renders, and
the configs validate refuses with the line to fix."""

from __future__ import annotations

import ast

import pytest
from test_render import assert_ruff_clean

from conftest import VALID, compile_yaml, compiled

PYTHON = "/opt/envs/sklearn/bin/python"

ELSEWHERE = VALID.replace("  xcom_key: score\n", "").replace(
    "  python_callable: pkg.models:train\n",
    f"  python_callable: pkg.models:train\n  runtime: {{python: {PYTHON}}}\n",
)
VIRTUALENV = ELSEWHERE.replace(
    "    - task_id: b\n",
    "    - task_id: b\n"
    "      runtime:\n"
    "        requirements: [numpy==2.4.6]\n"
    "        venv_cache_path: /tmp/venvs\n"
    "        system_site_packages: false\n",
)


def render(text: str) -> str:
    return compiled(text).content


def operator_calls(source: str) -> dict[str, dict[str, str]]:
    """Each task's operator name and its keyword arguments, as source, by task_id."""
    calls = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if "task_id" in keywords:
                calls[ast.literal_eval(keywords["task_id"])] = {
                    "operator": node.func.id,
                    **keywords,
                }
    return calls


def test_a_python_runtime_runs_the_trainer_in_an_external_python(tmp_path):
    source = render(ELSEWHERE)
    calls = operator_calls(source)
    for task_id in "ab":
        assert calls[task_id]["operator"] == "ExternalPythonOperator"
        assert calls[task_id]["python"] == repr(PYTHON)
        assert calls[task_id]["python_callable"] == "_train_elsewhere"
        assert (
            calls[task_id]["op_args"] == "[os.path.dirname(os.path.abspath(__file__))]"
        )
        assert calls[task_id]["expect_airflow"] == "False"
        assert "do_xcom_push" not in calls[task_id]  # it pushes its return value
    assert (
        calls["b"]["op_kwargs"]
        == "{'function': 'pkg.models:train', 'arguments': {'depth': 3}}"
    )
    # the worker's _train is left out when no trainer runs there
    assert "def _train(" not in source
    assert "def _train_elsewhere(folder, function, arguments):" in source
    (tmp_path / "elsewhere.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_a_models_runtime_wins_whole_over_the_groups(tmp_path):
    source = render(VIRTUALENV)
    calls = operator_calls(source)
    assert calls["a"]["operator"] == "ExternalPythonOperator"
    assert calls["b"]["operator"] == "PythonVirtualenvOperator"
    assert calls["b"]["requirements"] == "['numpy==2.4.6']"
    assert calls["b"]["venv_cache_path"] == "'/tmp/venvs'"
    assert calls["b"]["system_site_packages"] == "False"
    assert "python" not in calls["b"]
    (tmp_path / "virtualenv.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_a_groups_runtime_leaves_bash_trainers_in_the_worker(tmp_path):
    source = render(
        ELSEWHERE.replace(
            "    - task_id: a\n",
            "    - task_id: a\n    - task_id: c\n      bash_command: echo 1\n",
        )
    )
    calls = operator_calls(source)
    assert calls["a"]["operator"] == "ExternalPythonOperator"
    assert calls["c"]["operator"] == "BashOperator"  # the group's runtime is not its
    (tmp_path / "mixed.py").write_text(source)
    assert_ruff_clean(tmp_path)


@pytest.mark.parametrize(
    ("replacement", "problem"),
    [
        (
            (
                "    - task_id: a\n",
                "    - task_id: a\n      bash_command: echo 1\n      runtime: {python: /x/python}\n",
            ),
            "c.yaml:14:7: error: trainers.models[0].runtime: runs a python trainer in another interpreter",
        ),
        (
            (f"runtime: {{python: {PYTHON}}}", "runtime: {python: venv/bin/python}"),
            "c.yaml:10:21: error: trainers.runtime.python: 'venv/bin/python' is not an absolute path",
        ),
        (
            (
                f"runtime: {{python: {PYTHON}}}",
                f"runtime: {{python: {PYTHON}, venv_cache_path: /v}}",
            ),
            "error: trainers.runtime.venv_cache_path: venv_cache_path is for a virtualenv",
        ),
        (
            ("  group_id: train\n", "  group_id: train\n  xcom_key: score\n"),
            "error: trainers.runtime: a trainer in another interpreter returns its metric, pushed under 'return_value'",
        ),
        (
            ("  group_id: train\n", "  group_id: train\n  mapped: true\n"),
            "error: trainers.runtime: mapped trainers all run in the worker's interpreter",
        ),
        (
            ("  group_id: train\n", "  group_id: train\n  inputs: {rows: fetch}\n"),
            "error: trainers.runtime: a trainer in another interpreter cannot pull a download's result",
        ),
        (
            (f"runtime: {{python: {PYTHON}}}", "runtime: {requirements: []}"),
            "trainers.runtime",
        ),
        (
            (
                f"runtime: {{python: {PYTHON}}}",
                f"runtime: {{python: {PYTHON}, requirements: [x]}}",
            ),
            "trainers.runtime",
        ),
    ],
)
def test_validate_refuses_a_runtime_it_cannot_honour(replacement, problem):
    assert_refused(ELSEWHERE, replacement, problem)


def assert_refused(config: str, replacement: tuple[str, str], problem: str) -> None:
    """``config`` with one replacement made is refused, with ``problem`` in a line."""
    old, new = replacement
    assert old in config
    problems = compile_yaml(config.replace(old, new))
    assert isinstance(problems, list)
    assert any(problem in line for line in problems), problems
