"""No value read from the environment is ever printed, whatever the config does with it.

A refused variable's value never enters the document (only the allow-list error is
reported); an allowed one may reach the DAG file, but a problem names it ``the value
of $NAME``. Each field is given an ``!env`` value that it rejects, through every
command that compiles and every report format, as the real command runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import compile_yaml, dagfactory

SECRET = "wJalrXUtnFEMI K7MDENG/bPxRfiCYzzSECRETzz"  # rejected by every field below
VARIABLE = "DF_TEST_SECRET_KEY"
READ = f'!env "${{{VARIABLE}}}"'

BASE = {
    "dag_id": "demo",
    "download_task_id": "fetch",
    "trainer_task_id": "a",
    "chooser_task_id": "choose",
    "group_id": "train",
    "xcom_key": "score",
    "python_callable": "pkg.models:train",
    "schedule": "'@daily'",
    "start_date": "2024-01-01",
    "timezone": "UTC",
    "mode": "max",
    "threshold": "0.5",
    "retries": "1",
    "owner_links": "mailto:team@example.com",
    "second_task_id": "b",
}
CONFIG = """\
dag:
  dag_id: {dag_id}
  schedule: {schedule}
  start_date: {start_date}
  timezone: {timezone}
  owner_links: {{team: {owner_links}}}
download:
  task_id: {download_task_id}
  bash_command: echo hello
trainers:
  group_id: {group_id}
  xcom_key: {xcom_key}
  python_callable: {python_callable}
  retries: {retries}
  models:
    - task_id: {trainer_task_id}
    - task_id: {second_task_id}
chooser:
  task_id: {chooser_task_id}
  xcom_key: {xcom_key}
  mode: {mode}
  threshold: {threshold}
"""
# each field read from the variable; the last two read it twice (duplicate task ids)
FIELDS = {
    **{field: {field: READ} for field in BASE if field != "second_task_id"},
    "duplicate task ids": {"trainer_task_id": READ, "second_task_id": READ},
}
FORMATS = ("text", "json", "github")


def config_text(fields: dict[str, str], allowed: bool) -> str:
    text = CONFIG.format(**(BASE | fields))
    return f"allow_env: [{VARIABLE}]\n{text}" if allowed else text


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """One folder of configs per case: variables refused, then allowed."""
    root = tmp_path_factory.mktemp("secrets")
    found = {}
    for allowed in (False, True):
        folder = root / ("allowed" if allowed else "refused") / "configs"
        folder.mkdir(parents=True)
        for index, fields in enumerate(FIELDS.values()):
            (folder / f"field_{index}.yaml").write_text(config_text(fields, allowed))
        found[allowed] = folder
    return found


def run(folder: Path, *args: str) -> str:
    environment = os.environ | {VARIABLE: SECRET}
    result = dagfactory(*args, cwd=folder.parent, env=environment)
    assert result.returncode == 1, result.stderr
    return result.stdout + result.stderr


def assert_hidden(output: str) -> None:
    for piece in [SECRET, *SECRET.split()]:
        assert piece not in output, output


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize(
    "command", [("validate",), ("render",), ("render", "--check")], ids=" ".join
)
def test_no_command_prints_a_value_read_from_the_environment(
    folders, command, output_format, allowed
):
    output = run(folders[allowed], *command, "--format", output_format, "configs")
    assert_hidden(output)
    assert output.count(VARIABLE) >= len(FIELDS)  # every config has its problem


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
@pytest.mark.parametrize("field", list(FIELDS)[::4])  # a process each: a few fields
def test_graph_prints_no_value_read_from_the_environment(folders, field, allowed):
    index = list(FIELDS).index(field)
    formats = FORMATS if index == 0 else ("text",)  # every format, for one
    for output_format in formats:
        config = f"configs/field_{index}.yaml"
        assert_hidden(run(folders[allowed], "graph", "--format", output_format, config))


def test_a_refused_value_gets_only_the_allow_list_error(monkeypatch):
    monkeypatch.setenv(VARIABLE, SECRET)
    problems = compile_yaml(config_text(FIELDS["mode"], allowed=False))
    assert len(problems) == 1 and "which allow_env does not list" in problems[0]


def test_an_allowed_value_is_named_by_its_variable(monkeypatch):
    monkeypatch.setenv(VARIABLE, SECRET)
    problems = compile_yaml(config_text(FIELDS["mode"], allowed=True))
    assert problems == [
        f"c.yaml:22:9: error: chooser.mode: expected one of 'max', 'min',"
        f" got the value of ${VARIABLE}"
    ]


# A DAG id and a callable that are valid, and as secret as any other value read so.
SECRET_ID = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
SECRET_CALLABLE = "vault_4eC39HqLyjWD.models:train_Zdp7dc"


def test_two_configs_sharing_a_dag_id_read_from_the_environment_do_not_show_it(
    tmp_path,
):
    """The cross-config rule (unique DAG ids) names the value too: for a config just
    compiled and for one the render cache answers (whose values are read again)."""
    configs = tmp_path / "configs"
    configs.mkdir()
    text = config_text({"dag_id": READ}, allowed=True)
    (configs / "a.yaml").write_text(text)
    environment = os.environ | {VARIABLE: SECRET_ID}
    first = dagfactory("render", "configs/a.yaml", cwd=tmp_path, env=environment)
    assert first.returncode == 0, first.stderr
    (configs / "b.yaml").write_text(text)
    for _ in ("a.yaml from the cache", "both compiled"):
        result = dagfactory("render", "configs", cwd=tmp_path, env=environment)
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert "is already used by configs/a.yaml" in output
        assert SECRET_ID not in output and f"the value of ${VARIABLE}" in output
        shutil.rmtree(tmp_path / ".dagfactory")


def test_checks_problems_with_a_callable_do_not_show_a_value_read_from_the_environment(
    monkeypatch,
):
    monkeypatch.setenv(VARIABLE, SECRET_CALLABLE)
    compiled = compile_yaml(
        config_text({"python_callable": READ}, allowed=True).replace(
            "  models:\n", f"  op_kwargs: {{path: {READ}}}\n  models:\n"
        )
    )
    (reference,) = compiled.references
    assert reference.target == SECRET_CALLABLE
    said = f"cannot import {SECRET_CALLABLE!r}: no module {SECRET_CALLABLE}"
    problems = [
        reference.problem(said, detail=said),
        *reference.keyword_problems("path", said, detail=said),
    ]
    for problem in problems:
        shown = f"{problem} {problem.detail}"
        assert SECRET_CALLABLE not in shown and f"the value of ${VARIABLE}" in shown
