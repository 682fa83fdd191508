"""Generated DAGs in real Airflow: parsed by a DagBag and run end to end on SQLite."""

from __future__ import annotations

import math
import shutil

import pytest

from conftest import ROOT, VALID, airflow_dagbag, compiled
from dagfactory.tools.run import TaskFailure, run_dag

pytestmark = pytest.mark.airflow

GENERATED = ROOT / "generated_dags"


@pytest.fixture(scope="module")
def dagbag():
    return airflow_dagbag(GENERATED)


def test_every_generated_file_loads_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    generated = {path.stem for path in GENERATED.glob("*.py")}
    assert set(dagbag.dag_ids) == generated
    assert {"xcom_dag", "min_loss_dag", "hyperparameter_sweep"} <= generated


def test_xcom_dag_has_the_classic_shape(dagbag):
    dag = dagbag.dags["xcom_dag"]
    trainers = [f"processing_tasks.training_model_{name}" for name in "abc"]
    assert set(dag.task_ids) == {"downloading_data", *trainers, "task_4"}
    assert "processing_tasks" in dag.task_group.children
    assert dag.get_task("downloading_data").downstream_task_ids == set(trainers)
    for task_id in trainers:
        assert dag.get_task(task_id).downstream_task_ids == {"task_4"}
    assert dag.get_task("downloading_data").bash_command == "sleep 3"
    # Airflow 2 keeps the schedule argument as schedule_interval
    schedule = dag.schedule if hasattr(dag, "schedule") else dag.schedule_interval
    assert schedule == "@daily"
    assert dag.catchup is False


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    return tmp_path_factory.mktemp("airflow-home")


def xcom_values(result, key):
    return {x.task_id: x.value for x in result.xcoms if x.key == key}


def logged(text, log):
    """Whether ``text`` is in ``log``, wherever its lines break: Airflow 3.0 wraps a
    task's exception at its console's width."""
    return " ".join(text.split()) in " ".join(log.split())


@pytest.fixture(scope="module")
def xcom_run(airflow_home):
    return run_dag("xcom_dag", GENERATED, airflow_home)


def test_xcom_dag_runs_and_the_chooser_keeps_the_most_accurate(xcom_run):
    result = xcom_run
    assert result.succeeded, result.log[-3000:]
    accuracies = xcom_values(result, "model_accuracy")
    assert set(accuracies) == {
        f"processing_tasks.training_model_{name}" for name in "abc"
    }
    assert all(
        isinstance(value, float) and 0.1 <= value <= 10.0
        for value in accuracies.values()
    )
    best = max(accuracies, key=accuracies.__getitem__)
    assert xcom_values(result, "best_model") == {
        "task_4": {
            "task_id": best,
            "value": accuracies[best],
            "metrics": {"model_accuracy": accuracies[best]},
            "params": {},
        }
    }


def test_task_logs_name_each_trainers_call_and_the_choosers_candidates(xcom_run):
    """What Airflow's log view shows: each trainer's function, arguments and pushed
    metric (also its returned value), the chooser's table of candidates and winner."""
    assert xcom_run.succeeded, xcom_run.log[-3000:]
    accuracies = xcom_values(xcom_run, "model_accuracy")
    logs = {log.task_id: log.read() for log in xcom_run.task_logs}
    for task_id, accuracy in accuracies.items():
        call = f"ml_demo.models:train_model() -> model_accuracy = {accuracy!r}"
        assert call in logs[task_id], logs[task_id]
        assert f"Returned value was: {accuracy!r}" in logs[task_id], logs[task_id]
    chooser = logs["task_4"]
    width = max(len(task_id) for task_id in accuracies)
    assert f"{'candidate':<{width}}  model_accuracy\n" in chooser, chooser
    for task_id, accuracy in accuracies.items():
        assert f"{task_id:<{width}}  {accuracy!r}\n" in chooser, chooser
    best = max(accuracies, key=accuracies.__getitem__)
    winner = f"winner: {best} (max model_accuracy = {accuracies[best]!r})"
    assert winner in chooser, chooser


def test_min_mode_keeps_the_lowest_metric(airflow_home):
    result = run_dag("min_loss_dag", GENERATED, airflow_home)
    assert result.succeeded, result.log[-3000:]
    assert xcom_values(result, "val_loss") == {
        "candidates.train_depth_2": 0.42,
        "candidates.train_depth_4": 0.17,
        "candidates.train_depth_8": 0.3,
    }
    winner = {
        "task_id": "candidates.train_depth_4",
        "value": 0.17,
        "metrics": {"val_loss": 0.17},
        "params": {"value": 0.17},
    }
    assert xcom_values(result, "best_model") == {"pick_lowest_loss": winner}
    assert xcom_values(result, "return_value")["fetch_dataset"] == 1000


def min_loss_variant(tmp_path, dag_id: str, *replacements: tuple[str, str]):
    """configs/min_loss_dag.yaml as DAG ``dag_id`` (no retries), edited and rendered
    into its own dags folder beside the demo callables; returns that folder."""
    config = (ROOT / "configs" / "min_loss_dag.yaml").read_text()
    for old, new in [
        ("dag_id: min_loss_dag", f"dag_id: {dag_id}"),
        ("retries: 1", "retries: 0"),
        *replacements,
    ]:
        assert old in config
        config = config.replace(old, new)
    config_path = tmp_path / f"{dag_id}.yaml"
    config_path.write_text(config)
    dags = tmp_path / "dags"
    shutil.copytree(GENERATED / "ml_demo", dags / "ml_demo")
    (dags / f"{dag_id}.py").write_text(compiled(config, str(config_path)).content)
    return dags


def test_chooser_fails_naming_every_trainer_without_a_number(tmp_path, airflow_home):
    dags = min_loss_variant(
        tmp_path,
        "broken_metrics",
        ("{value: 0.42}", "{value: not a number}"),
        ("{value: 0.3}", "{value: null}"),
    )
    result = run_dag("broken_metrics", dags, airflow_home)
    assert result.state == "failed"
    assert xcom_values(result, "best_model") == {}
    assert logged(
        "no finite number under the XCom key 'val_loss': candidates.train_depth_2 pushed 'not a number';"
        " candidates.train_depth_8 pushed nothing",
        result.log,
    ), result.log[-3000:]
    assert math.isclose(
        xcom_values(result, "val_loss")["candidates.train_depth_4"], 0.17
    )


def test_sweep_shape_in_airflow(dagbag):
    dag = dagbag.dags["hyperparameter_sweep"]
    trainers = {
        f"grid.learning_rate_{lr}_depth_{d}" for lr in ("0.01", "0.05") for d in (4, 8)
    }
    assert set(dag.task_ids) == {
        "fetch_features",
        "fetch_labels",
        *trainers,
        "pick_best",
        "accurate_enough",
        "deploy",
        "alert",
        "announce",
    }
    for download in ("fetch_features", "fetch_labels"):
        assert dag.get_task(download).downstream_task_ids == trainers
    trainer = dag.get_task("grid.learning_rate_0.01_depth_4")
    assert (trainer.pool, trainer.retries, trainer.priority_weight) == (
        "default_pool",
        1,
        2,
    )
    assert trainer.retry_delay.total_seconds() == 30
    assert trainer.execution_timeout.total_seconds() == 3600
    assert trainer.owner == "ml-platform"  # from configs/sweeps/defaults.yaml
    # publish (announce) waits for the threshold: publish.when defaults to passed
    assert dag.get_task("accurate_enough").downstream_task_ids == {
        "deploy",
        "alert",
        "announce",
    }
    assert dag.get_task("pick_best").downstream_task_ids == {"accurate_enough"}
    assert str(dag.timezone.name) == "Europe/Amsterdam"
    assert (dag.max_active_runs, dag.max_active_tasks) == (1, 8)
    assert dag.params["sample_rows"] == 1000
    assert dag.doc_md.startswith("# Hyperparameter sweep")
    assert sorted(dag.tags) == ["ml", "sweep"]  # a set on Airflow 3, a list on 2


def test_sweep_runs_branches_and_publishes(airflow_home):
    result = run_dag("hyperparameter_sweep", GENERATED, airflow_home)
    assert result.succeeded, result.log[-3000:]
    metrics = xcom_values(result, "metrics")
    assert len(metrics) == 4 and all(
        set(m) == {"accuracy", "loss"} for m in metrics.values()
    )
    best = max(metrics, key=lambda task_id: metrics[task_id]["accuracy"])
    winner = {
        "task_id": best,
        "value": metrics[best]["accuracy"],
        "metrics": metrics[best],
        "params": {
            "learning_rate": float(best.split("_")[2]),
            "depth": int(best.split("_")[-1]),
        },
    }
    assert xcom_values(result, "best_model") == {"pick_best": winner}
    returned = xcom_values(result, "return_value")
    assert (
        returned["announce"]
        == f"[#ml-results] best model {best} scored {metrics[best]['accuracy']}"
    )
    assert (
        returned["deploy"] == "deploying the best model"
    )  # 0.7 reaches the 0.6 threshold
    assert "alert" not in returned
    assert returned["fetch_labels"].startswith(
        "s3://ml-data/labels/"
    )  # {{ ds }} rendered by Airflow


def test_mapped_trainers_and_the_failing_branch(airflow_home):
    result = run_dag("mapped_seeds", GENERATED, airflow_home)
    assert result.succeeded, result.log[-3000:]
    scores = {
        x.map_index: x.value for x in result.xcoms if x.task_id == "seeds.train_seed"
    }
    assert scores == {
        index: round((seed * 37 % 100) / 100, 2)
        for index, seed in enumerate(range(1, 9))
    }
    assert xcom_values(result, "best_model") == {
        "pick_seed": {
            "task_id": "seeds.train_seed[7]",
            "value": 0.96,
            "metrics": {"return_value": 0.96},
            "params": {"seed": 8},
        }
    }
    returned = xcom_values(result, "return_value")
    assert (
        returned["too_weak"] == "no seed reached 0.99"
    )  # 0.96 misses the 0.99 threshold
    assert "promote" not in returned


def test_bash_trainers_report_their_last_line(airflow_home):
    result = run_dag("bash_trainers", GENERATED, airflow_home)
    assert result.succeeded, result.log[-3000:]
    returned = xcom_values(result, "return_value")
    assert {
        task: returned[f"shell_models.{task}"] for task in ("shallow", "medium", "deep")
    } == {
        "shallow": "0.14",
        "medium": "0.35",
        "deep": "0.63",
    }
    assert xcom_values(result, "best_model") == {
        "pick_depth": {
            "task_id": "shell_models.deep",
            "value": 0.63,
            "metrics": {"return_value": 0.63},
            "params": {"depth": 9},
        }
    }


def test_chooser_names_every_trainer_with_a_nan_or_infinite_metric(
    tmp_path, airflow_home
):
    """XCom's JSON has no NaN or infinity (Airflow's API client refuses them), so a trainer
    pushes them as text, and the chooser names them instead of failing somewhere obscure."""
    parsed = "python_callable: ml_demo.models:parse_metric\n      op_kwargs: {text: "
    dags = min_loss_variant(
        tmp_path,
        "nonfinite_metrics",
        ("op_kwargs: {value: 0.42}", parsed + "nan}"),
        ("op_kwargs: {value: 0.3}", parsed + "inf}"),
    )
    result = run_dag("nonfinite_metrics", dags, airflow_home)
    assert result.state == "failed"
    assert xcom_values(result, "best_model") == {}
    assert xcom_values(result, "val_loss") == {
        "candidates.train_depth_2": "nan",
        "candidates.train_depth_4": 0.17,
        "candidates.train_depth_8": "inf",
    }
    assert logged(
        "no finite number under the XCom key 'val_loss': candidates.train_depth_2 pushed 'nan';"
        " candidates.train_depth_8 pushed 'inf'",
        result.log,
    ), result.log[-3000:]


def test_a_local_run_tries_each_task_once_whatever_its_retries(tmp_path, airflow_home):
    """retries: 1 with a five-minute retry_delay would keep a local run waiting in silence:
    the task fails on its first try, and its exception is recorded from Airflow itself."""
    parsed = "python_callable: ml_demo.models:parse_metric\n      op_kwargs: {text: "
    dags = min_loss_variant(
        tmp_path,
        "retried_metrics",
        ("retries: 0", "retries: 1"),
        ("retry_delay: 30s", "retry_delay: 5m"),
        ("op_kwargs: {value: 0.42}", parsed + "oops}"),
    )
    assert '"retries": 1,' in (dags / "retried_metrics.py").read_text()
    result = run_dag("retried_metrics", dags, airflow_home)
    assert result.state == "failed"
    assert result.failures == [
        TaskFailure(
            "candidates.train_depth_2",
            -1,
            "failed",
            1,
            "ValueError",
            "could not convert string to float: 'oops'",
        )
    ]
    tail = result.log_tail()
    assert result.log.endswith(tail) and result.log[-len(tail) - 1] == "\n"


def test_a_failure_names_its_map_index_and_keeps_a_long_message_under_it():
    failure = TaskFailure("seeds.train_seed", 3, "failed", 1, "KeyError", "a\nb")
    assert failure.text == (
        "seeds.train_seed (map index 3) failed on try 1: KeyError: a\n  b"
    )
    silent = TaskFailure("fetch", -1, "failed", 1, None, None)
    assert silent.text == "fetch failed on try 1: no exception recorded (see the log)"


def test_airflow_loads_a_continuous_dag_only_with_one_active_run(tmp_path):
    """What validate asks of '@continuous' is what Airflow asks: one run at a time."""
    source = compiled(
        VALID.replace(
            "  start_date: 2024-01-01\n",
            "  start_date: 2024-01-01\n  schedule: '@continuous'\n  max_active_runs: 1\n",
        )
    ).content
    assert "max_active_runs=1," in source
    (tmp_path / "one.py").write_text(source, encoding="utf-8")
    (tmp_path / "two.py").write_text(
        source.replace('dag_id="demo"', 'dag_id="demo_two"').replace(
            "max_active_runs=1,", "max_active_runs=2,"
        ),
        encoding="utf-8",
    )
    dagbag = airflow_dagbag(tmp_path)
    assert set(dagbag.dag_ids) == {"demo"}
    [(path, error)] = dagbag.import_errors.items()
    assert path.endswith("two.py")
    assert "ContinuousTimetable requires max_active_runs <= 1" in error
