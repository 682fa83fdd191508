"""``[tool.dagfactory] target_airflow``: the project-wide default every config's own
(or its defaults.yaml's) overrides, judged and reported at its line in pyproject.toml,
and an input of every config's render-cache key."""

from __future__ import annotations

from pathlib import Path

from conftest import dagfactory

PYPROJECT = """\
[project]
name = "pipelines"

[tool.dagfactory]
configs = "configs"
target_airflow = {value}  # the oldest Airflow we run
"""
CONFIG = """\
dag:
  dag_id: a
  start_date: 2024-01-01
download:
  task_id: fetch
  bash_command: echo {{ dag_run.run_after }}
trainers:
  group_id: train
  python_callable: pkg.models:train
  models:
    - task_id: a
chooser:
  task_id: choose
"""
RUN_AFTER = "configs/a.yaml:6:17: error: download.bash_command: dag_run.run_after"


def project(tmp_path: Path, value: str, config: str = CONFIG) -> Path:
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "configs" / "a.yaml").write_text(config)
    set_target(tmp_path, value)
    return tmp_path


def set_target(root: Path, value: str) -> None:
    (root / "pyproject.toml").write_text(PYPROJECT.format(value=value))


def test_the_projects_target_is_every_configs_default_and_named_in_errors(tmp_path):
    result = dagfactory("validate", "configs", cwd=project(tmp_path, '"2.10"'))
    assert result.returncode == 1
    assert result.stderr.startswith(RUN_AFTER), result.stderr
    assert 'target_airflow is "2.10" (pyproject.toml line 6)' in result.stderr


def test_a_configs_own_target_wins_over_the_projects(tmp_path):
    root = project(tmp_path, '"2.10"', 'target_airflow: "3.0"\n' + CONFIG)
    result = dagfactory("validate", "configs", cwd=root)
    assert (result.returncode, result.stdout) == (0, "1 config valid\n"), result.stderr
    (root / "configs" / "defaults.yaml").write_text('target_airflow: "3.0"\n')
    (root / "configs" / "a.yaml").write_text(CONFIG)
    result = dagfactory("validate", "configs", cwd=root)
    assert (result.returncode, result.stdout) == (0, "1 config valid\n"), result.stderr


def test_a_bad_project_target_is_reported_at_its_line_in_pyproject(tmp_path):
    result = dagfactory("validate", "configs", cwd=project(tmp_path, "2.10"))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "pyproject.toml:6:18: error: target_airflow: expected one of '2.10', "
    ), result.stderr
    assert "(the unquoted 2.10); quote it" in result.stderr


def test_the_projects_target_is_in_the_render_cache_key(tmp_path):
    root = project(tmp_path, '"3.0"')
    assert dagfactory("render", "configs", cwd=root).returncode == 0
    check = dagfactory("render", "--check", "configs", cwd=root)
    assert (check.returncode, check.stdout) == (0, "1 DAG file up to date\n")
    set_target(root, '"2.10"')  # the DAG file is the same: only the key tells
    stale = dagfactory("render", "--check", "configs", cwd=root)
    assert stale.returncode == 1
    assert stale.stderr.startswith(RUN_AFTER), stale.stderr
