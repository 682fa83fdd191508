"""Rendering: literals, layout, determinism, and the rules generated code must keep."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ROOT, VALID, compiled
from dagfactory.compile import compile_text
from dagfactory.compile.header import GENERATED_MARKER
from dagfactory.compile.literals import (
    CONTINUED,
    continued,
    indent_continued,
    python_literal,
)
from dagfactory.compile.vocabulary import parse_duration


def render(text: str, name: str = "configs/demo.yaml") -> str:
    return compiled(text, name).content


NASTY_TEXT = [
    "",
    "plain",
    "it's",
    'say "hi"',
    "both ' and \"",
    '"""',
    "'''",
    "back\\slash\\",
    "new\nline",
    "\r\n\t",
    "nul\x00byte",
    "\x1b[31mred",
    "line\u2028separator\u2029",
    "{{ ds }} {% if x %}{# c #}",
    "import os; os.system('x')",
    '"); import os; ("',
    "émoji 🎉 and 中文",
    "\udcff lone surrogate-escaped",
]


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_string_literal_round_trips(text):
    assert ast.literal_eval(python_literal(text)) == text


def test_literals_of_every_kind():
    value = {"a": [1, -2.5, True, None, "x"], "b": {}, "c": [], "d": {"e": 10**30}}
    assert ast.literal_eval(python_literal(value, 8)) == value
    assert (
        python_literal(datetime(2020, 1, 2, 3, 4, tzinfo=UTC))
        == 'pendulum.datetime(2020, 1, 2, 3, 4, tz="UTC")'
    )
    amsterdam = datetime(2024, 3, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert (
        python_literal(amsterdam)
        == 'pendulum.datetime(2024, 3, 1, tz="Europe/Amsterdam")'
    )
    assert python_literal(timedelta(minutes=90)) == "timedelta(minutes=90)"
    assert python_literal(timedelta(seconds=61)) == "timedelta(seconds=61)"


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), object(), {1: "x"}, b"bytes"]
)
def test_values_without_a_literal_are_refused(value):
    with pytest.raises((TypeError, ValueError)):
        python_literal(value)


def indent_line_by_line(text: str) -> str:
    """indent_continued's definition, one line at a time: what the fast one must equal."""
    lines, base = [], ""
    for line in text.split("\n"):
        if line.startswith(CONTINUED):
            line = base + line[len(CONTINUED) :]
        else:
            base = line[: len(line) - len(line.lstrip(" "))]
        lines.append(line)
    return "\n".join(lines)


# Texts made of the characters that matter: marks, newlines, spaces and anything else.
MARKED_TEXT = st.text(alphabet=[CONTINUED, "\n", " ", "x"], max_size=40)


@given(MARKED_TEXT)
def test_indent_continued_follows_its_line_by_line_definition(text):
    assert indent_continued(text) == indent_line_by_line(text)


@given(MARKED_TEXT)
def test_continued_marks_every_line_after_the_first(text):
    first, *rest = indent_line_by_line(text).split("\n")
    assert continued(text) == "\n".join([first, *(CONTINUED + line for line in rest)])


def test_nested_literals_are_indented_from_the_line_they_start_on():
    text = f"x = [\n{CONTINUED}    1,\n{CONTINUED}]\n    y = {{\n{CONTINUED}}}"
    assert indent_continued(text) == "x = [\n    1,\n]\n    y = {\n    }"


def test_durations():
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration(45) == timedelta(seconds=45)


def test_output_is_deterministic_and_marked():
    first, second = render(VALID), render(VALID)
    assert first == second
    assert first.startswith(
        f'{GENERATED_MARKER} from "configs/demo.yaml". Do not edit:\n'
    )
    compile(first, "demo.py", "exec")


def test_generated_code_imports_only_airflow_and_the_standard_library():
    tree = ast.parse(render(VALID))
    modules = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert modules == {
        "importlib",
        "math",
        "numbers",
        "os",
        "sys",
        "decimal",
        "pendulum",
        "airflow.sdk",
        "airflow.sdk.exceptions",
        "airflow.providers.standard.operators.bash",
        "airflow.providers.standard.operators.python",
        # Airflow 2's homes of the same names, imported only where airflow.sdk is missing
        "airflow",
        "airflow.utils.task_group",
        "airflow.exceptions",
    }
    assert "pkg.models" not in {
        getattr(node, "module", None) for node in ast.walk(tree)
    }


def _module_level_imports(source: str) -> set[str]:
    """The names a file binds by its top-level imports (its try/except blocks too)."""
    statements, names = list(ast.parse(source).body), set()
    while statements:
        node = statements.pop()
        if isinstance(node, ast.Try):
            statements += node.body + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_no_task_variable_takes_a_name_the_file_imports():
    """A chooser bound to ``os`` would rebind the module ``_load`` uses when a task runs:
    every name the committed DAG files import keeps the task its role's name."""
    imported = set().union(
        *(
            _module_level_imports(path.read_text())
            for path in (ROOT / "generated_dags").glob("*.py")
        )
    )
    assert {"os", "sys", "inspect", "numbers", "Decimal", "pendulum"} <= imported
    for name in sorted(imported):
        source = render(VALID.replace("task_id: choose", f"task_id: {name}"))
        assert f"\n    {name} = " not in source, name
        assert "\n    chooser = PythonOperator(  # noqa: AIR001" in source, name


def test_airflow_templates_in_values_reach_the_dag_verbatim():
    text = VALID.replace(
        "bash_command: echo hello", "bash_command: 'echo {{ ds }} ${HOME} $((1+1))'"
    )
    assert 'bash_command="echo {{ ds }} ${HOME} $((1+1))",' in render(text)


def test_hostile_text_stays_data():
    text = VALID.replace(
        "bash_command: echo hello",
        'bash_command: "\\"\\"\\")\\nimport os\\nos.system(\\"x\\")#"',
    )
    source = render(text)
    tree = ast.parse(source)
    top_level = [type(node).__name__ for node in tree.body]
    benign = [type(node).__name__ for node in ast.parse(render(VALID)).body]
    # the airflow.sdk imports with their Airflow 2 fallback (two try blocks), then
    # _load, _train, _json_number, _score, _metrics, _print_candidates, _pull, _choose:
    # the helpers this config needs
    expected = (
        ["Import"] * 5
        + ["ImportFrom", "Import"]  # from decimal, then pendulum
        + ["ImportFrom"] * 2
        + ["Try"] * 2
        + ["FunctionDef"] * 8
        + ["With"]
    )
    assert top_level == benign == expected


def test_generated_code_is_ruff_clean(tmp_path):
    config = VALID.replace(
        "  start_date: 2024-01-01\n",
        (
            "  start_date: 2024-01-01T06:30:00+02:00\n"
            '  description: "a very long description that goes well beyond the eighty-eight column limit of ruff"\n'
            "  schedule: '0 6 * * 1-5'\n"
            "  tags: [a, b]\n"
            "  default_args: {owner: ml, retries: 2, retry_delay: 5m, execution_timeout: 1h30m}\n"
        ),
    ).replace(
        "op_kwargs: {depth: 3}",
        'op_kwargs: {depth: 3, name: "it\'s \\"quoted\\"", nested: {x: [1, 2.5, null]}}',
    )
    (tmp_path / "a.py").write_text(render(config))
    (tmp_path / "b.py").write_text(
        render(
            VALID.replace(
                "  bash_command: echo hello\n",
                "  python_callable: pkg.io:fetch\n  op_kwargs: {url: 'https://example.org/data.csv'}\n",
            )
        )
    )
    assert_ruff_clean(tmp_path)


def test_tasks_are_bound_to_variables_named_after_them_when_they_can_be(tmp_path):
    """ruff's AIR001: a task's variable is its task id, unless that is no free Python name."""
    named = render(VALID)
    assert "\n    fetch = BashOperator(\n" in named
    assert "\n    choose = PythonOperator(\n" in named
    assert "\n    fetch >> trainers >> choose\n" in named
    clashing = render(
        VALID.replace("task_id: fetch", "task_id: fetch-data").replace(
            "task_id: choose", "task_id: math"
        )
    )
    assert (
        "\n    download = BashOperator(  # noqa: AIR001 (the task id is not" in clashing
    )
    assert (
        "\n    chooser = PythonOperator(  # noqa: AIR001 (the task id is not"
        in clashing
    )
    assert "\n    download >> trainers >> chooser\n" in clashing
    (tmp_path / "named.py").write_text(named)
    (tmp_path / "clashing.py").write_text(clashing)
    assert_ruff_clean(tmp_path)


def test_each_python_task_says_in_the_ui_which_function_it_calls():
    source = render(VALID)
    assert source.count('doc_md="Calls `pkg.models:train`.",') == 2


def test_every_combination_of_helpers_is_ruff_clean(tmp_path):
    """The helpers are emitted only as far as a DAG needs them: every mix of trainer
    kinds, downloads, metrics in a mapping, branches and publish, and callbacks still
    renders a file with no unused import and no undefined name."""
    trainers = {
        "python": "  python_callable: pkg.models:train\n  models: [{task_id: a}, {task_id: b}]\n",
        "bash": "  models: [{task_id: a, bash_command: echo 1}, {task_id: b, bash_command: echo 2}]\n",
        "mixed": "  python_callable: pkg.models:train\n  models: [{task_id: a}, {task_id: b, bash_command: echo 2}]\n",
        "mapped": "  python_callable: pkg.models:train\n  mapped: true\n  models: [{task_id: a}, {task_id: b}]\n",
    }
    downloads = {
        "bash": "download:\n  task_id: fetch\n  bash_command: echo hello\n",
        "python": "download:\n  task_id: fetch\n  python_callable: pkg.io:fetch\n",
        "both": "download:\n  - {task_id: fetch_a, bash_command: echo a}\n"
        "  - {task_id: fetch_b, python_callable: pkg.io:fetch}\n",
    }
    afters = {
        "none": "",
        "branches": "  threshold: 0.5\n"
        "  on_pass: {task_id: deploy, python_callable: pkg.ops:deploy}\n"
        "  on_fail: {task_id: alert, bash_command: echo no}\n"
        "publish:\n  task_id: announce\n  python_callable: pkg.reports:publish\n",
    }
    metrics = {"": "", "metric": "  metric: accuracy\n"}
    callbacks = {"": "", "callback": "  on_failure_callback: pkg.alerts:notify\n"}
    rendered = 0
    for kind, download, after, metric, callback in itertools.product(
        trainers, downloads, afters, metrics, callbacks
    ):
        config = (
            f"dag:\n  dag_id: demo\n  start_date: 2024-01-01\n{callbacks[callback]}"
            f"{downloads[download]}"
            f"trainers:\n  group_id: train\n{trainers[kind]}"
            f"chooser:\n  task_id: choose\n{metrics[metric]}{afters[after]}"
        )
        result = compile_text(config, "c.yaml")
        if kind in ("bash", "mixed") and metric:
            # bash trainers push text: no metric in it, ever
            assert [e.spec_path for e in result.problems] == [("chooser", "metric")]
            continue
        assert result.compiled is not None, result
        name = "_".join((kind, download, after, metric, callback))
        (tmp_path / f"{name}.py").write_text(result.compiled.content)
        rendered += 1
    assert rendered == 72  # 96 less the 24 with bash or mixed trainers and a metric
    assert_ruff_clean(tmp_path)


def test_committed_generated_dags_are_ruff_clean():
    """Every example output, one per feature, keeps ruff's format and Airflow 3 rules."""
    assert_ruff_clean(ROOT / "generated_dags")


def assert_ruff_clean(folder: Path) -> None:
    """ruff's format and its Airflow 3 and pyflakes rules find nothing in ``folder``."""
    for args in (
        ["format", "--check", "--diff"],
        ["check", "--select", "AIR,F"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--no-cache", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
