"""target_airflow: what the oldest targeted Airflow lacks is an error at validate time."""

from __future__ import annotations

import pytest

from conftest import VALID, dagfactory
from dagfactory.compile import compile_text
from dagfactory.compile.load import load_text
from dagfactory.compile.schema import spec_schema
from dagfactory.compile.target import SUPPORTED_AIRFLOW, version
from dagfactory.compile.validate import validate

RUN_AFTER_DS = '"echo {{ dag_run.run_after | ds }}"'
PORTABLE_DS = '"echo {{ dag_run.run_after | default(dag_run.logical_date) | ds }}"'


def problems(text: str) -> list[str]:
    return [str(problem) for problem in validate(load_text(text, "c.yaml").document)]


def config(target: str | None, command: str = "echo hello", rule: str = "") -> str:
    text = VALID.replace("echo hello", command)
    if rule:
        text = text.replace(
            "  xcom_key: score\n", f"  xcom_key: score\n  trigger_rule: {rule}\n"
        )
    return text if target is None else f'target_airflow: "{target}"\n' + text


def test_the_schema_lists_the_supported_versions_oldest_first():
    assert spec_schema()["properties"]["target_airflow"]["enum"] == list(
        SUPPORTED_AIRFLOW
    )
    assert [version(v) for v in SUPPORTED_AIRFLOW] == sorted(
        version(v) for v in SUPPORTED_AIRFLOW
    )


def test_run_after_on_airflow_2_is_an_error_at_its_value_with_the_fix():
    assert problems(config("2.10", RUN_AFTER_DS)) == [
        "c.yaml:7:17: error: download.bash_command: dag_run.run_after is undefined on"
        ' Airflow 2 (it came in 3.0), and target_airflow is "2.10" (line 1): the task'
        " would fail there; write {{ dag_run.run_after | default(dag_run.logical_date) }}"
        ' (the logical date on Airflow 2), or raise target_airflow to "3.0" if no'
        " Airflow 2 runs it"
    ]


@pytest.mark.parametrize("target", [None, "3.0", "3.4"])
def test_run_after_is_fine_when_airflow_3_is_the_oldest_target(target):
    assert problems(config(target, RUN_AFTER_DS)) == []


@pytest.mark.parametrize("target", SUPPORTED_AIRFLOW)
def test_the_portable_form_is_fine_on_every_target(target):
    assert problems(config(target, PORTABLE_DS)) == []


def test_the_logical_date_warning_suggests_what_the_target_can_run():
    needs_a_date = '"echo {{ ds }}"'
    for target, fix in [
        ("2.11", "{{ dag_run.run_after | default(dag_run.logical_date) | ds }}"),
        ("3.1", "{{ dag_run.run_after | ds }}"),
    ]:
        result = compile_text(config(target, needs_a_date), "c.yaml")
        assert result.compiled is not None, result
        [warning] = result.problems
        assert str(warning).endswith(f"which then fails; write {fix} instead")


def test_a_trigger_rule_newer_than_the_target_is_an_error():
    text = config("3.0", rule="all_done_min_one_success")
    assert problems(text) == [
        "c.yaml:11:17: error: trainers.trigger_rule: trigger rule"
        " 'all_done_min_one_success' came in Airflow 3.1, and target_airflow is"
        ' "3.0" (line 1): an older Airflow cannot load the DAG; use another rule, or'
        ' raise target_airflow to "3.1" if no older Airflow runs it'
    ]
    assert problems(config("3.1", rule="all_done_min_one_success")) == []
    assert problems(config("2.10", rule="all_done")) == []


def test_without_a_target_the_default_is_named():
    [problem] = problems(config(None, rule="all_done_min_one_success"))
    assert 'target_airflow is "3.0" by default' in problem


def test_an_unquoted_version_is_an_error_naming_the_versions_and_the_fix():
    [problem] = problems("target_airflow: 2.10\n" + VALID)
    assert problem == (
        "c.yaml:1:17: error: target_airflow: expected one of '2.10', '2.11', '3.0',"
        " '3.1', '3.2', '3.3', '3.4', got the number 2.1 (the unquoted 2.10);"
        " quote it: '2.10'"
    )


def test_an_unquoted_value_outside_the_choices_gets_no_quoting_hint():
    [problem] = problems("target_airflow: 1.9\n" + VALID)
    assert problem.endswith("got the number 1.9")


def test_a_project_sets_the_target_once_in_defaults_yaml(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "defaults.yaml").write_text('target_airflow: "2.10"\n')
    (configs / "c.yaml").write_text(config(None, RUN_AFTER_DS))
    result = dagfactory("validate", "configs", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "configs/c.yaml:6:17: error: download.bash_command: dag_run.run_after is"
        ' undefined on Airflow 2 (it came in 3.0), and target_airflow is "2.10"'
        " (configs/defaults.yaml line 1)"
    ) in result.stderr
    (configs / "c.yaml").write_text(config(None, PORTABLE_DS))
    assert dagfactory("validate", "configs", cwd=tmp_path).returncode == 0
