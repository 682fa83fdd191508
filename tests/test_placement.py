"""Where tasks run: queue, pool, pool_slots and executor, validated, rendered and loaded."""

from __future__ import annotations

import shutil

import pytest

from conftest import VALID, airflow_dagbag, compile_yaml, compiled, dagfactory

PLACED = VALID.replace(
    "  python_callable: pkg.models:train\n",
    "  python_callable: pkg.models:train\n"
    "  queue: training\n"
    "  pool: gpus\n"
    "  pool_slots: 2\n"
    "  executor: LocalExecutor\n",
)


def test_placement_settings_reach_every_trainer():
    source = compiled(PLACED).content
    settings = (
        '            queue="training",\n'
        '            pool="gpus",\n'
        "            pool_slots=2,\n"
        '            executor="LocalExecutor",\n'
    )
    assert source.count(settings) == 2


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            "pool_slots: 0",
            "c.yaml:11:15: error: trainers.pool_slots: expected a number of at least 1, got the number 0",
        ),
        (
            "pool_slots: two",
            "c.yaml:11:15: error: trainers.pool_slots: expected a whole number of pool slots"
            " for the task, at least 1, got the text 'two'",
        ),
        ("executor: ''", "c.yaml:11:13: error: trainers.executor: must not be empty"),
    ],
)
def test_placement_settings_are_validated(setting, expected):
    config = VALID.replace(
        "  python_callable: pkg.models:train\n",
        f"  python_callable: pkg.models:train\n  {setting}\n",
    )
    assert compile_yaml(config) == [expected]


@pytest.mark.airflow
def test_airflow_places_the_tasks_and_check_names_an_executor_it_does_not_have(
    tmp_path,
):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "demo.py").write_text(compiled(PLACED).content)
    bag = airflow_dagbag(dags)
    assert bag.import_errors == {}
    task = bag.dags["demo"].get_task("train.a")
    assert (task.queue, task.pool, task.pool_slots, task.executor) == (
        "training",
        "gpus",
        2,
        "LocalExecutor",
    )
    shutil.rmtree(dags)
    dags.mkdir()
    elsewhere = PLACED.replace("executor: LocalExecutor", "executor: CeleryExecutor")
    (dags / "demo.py").write_text(compiled(elsewhere).content)
    result = dagfactory("check", str(dags))
    assert result.returncode == 1
    assert (
        "specifies executor 'CeleryExecutor', which is not available" in result.stdout
    )
