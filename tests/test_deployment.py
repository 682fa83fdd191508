"""The rendered DAGs, unchanged, on a distributed Airflow 3: PostgreSQL, CeleryExecutor, Redis.

The metadata database is a fresh PostgreSQL database made for this session (dropped at
the end); the Celery broker is a Redis database whose keys all carry a prefix of this
session (deleted at the end), so that other users of the same servers are not disturbed.
Scheduler, dag-processor, triggerer, api-server and two Celery workers (queue `default`
and queue `training`) run as separate processes, each in its own process group. Both
workers run on this one machine, so each names itself through Airflow's
``[core] hostname_callable``, which is what a task instance's ``hostname`` records.

PostgreSQL and Redis are expected on 127.0.0.1 (ports 5432 and 6379). Without them the
tests are skipped, saying what is missing; under CI (``CI=true``) that is a failure.

Every example DAG is triggered over the REST API with and without a logical date, and
its task instances and XComs are read back over REST. Then the deployment is hurt while
trainers run: the training worker is SIGKILLed, the scheduler is SIGKILLed and restarted,
and the metadata database refuses connections for a few seconds. The times Airflow took
to recover are printed at the end of the module.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from airflow_processes import (
    Airflow,
    Components,
    free_loopback_port,
    migrate,
    running,
    server_env,
    wait_for,
)
from conftest import ROOT

pytestmark = pytest.mark.airflow

POSTGRES = "postgres@127.0.0.1:5432"
REDIS = "127.0.0.1:6379"
REDIS_DB = 11
TRAINERS = [f"processing_tasks.training_model_{name}" for name in "abc"]
WORKERS = {"default": "worker-default", "training": "worker-training"}
COMPONENTS = [
    "scheduler",
    "dag-processor",
    "triggerer",
    "api-server",
    *WORKERS.values(),
]
LOAD_RUNS = 20
STARTUP_LIMIT = 180  # seconds until every DAG is parsed and served
RUN_LIMIT = 180  # seconds for one triggered run to finish
LOAD_LIMIT = 600  # seconds for all the load runs to finish
EXAMPLES_LIMIT = 420  # seconds for every example's runs to finish
FAULT_LIMIT = 300  # seconds for a run hurt by a fault to finish
LOGICAL_DATE = "2025-01-06T06:00:00+00:00"
# How fast a task whose worker died is failed (and retried): Airflow's defaults are 300 s
# and 10 s. The tasks' supervisors heartbeat every 5 s ([workers] min_heartbeat_interval).
HEARTBEAT_TIMEOUT = 30
HEARTBEAT_TIMEOUT_DETECTION_INTERVAL = 5
TRAINING_SECONDS = 10  # how long each trainer of the fault DAGs trains
OUTAGE_SECONDS = 8  # how long the metadata database refuses connections
IDENTITY_MODULE = '''\
"""Each worker's name, as its own host would give it."""

import os


def hostname() -> str:
    return os.environ["DEPLOYMENT_TEST_WORKER"]
'''


SLOW_TRAINERS_MODULE = '''\
"""A trainer slow enough to be interrupted: it trains for a while, then reports."""

import time


def train(accuracy: float, seconds: float) -> float:
    """Take ``seconds`` to train, then report ``accuracy``."""
    time.sleep(seconds)
    return accuracy
'''
RELEASE_MODULE = '''\
"""Trainers that save a model, the step that publishes the approved one, and the step
of another DAG that receives it."""


def train(accuracy: float) -> dict:
    return {"accuracy": accuracy, "artifact": f"/models/model_{accuracy}.pkl"}


def publish(task_id: str, artifact: str) -> dict:
    print(f"publishing {artifact}, the model of {task_id}")
    return {"published": artifact}


def receive(winner: dict | None) -> dict | None:
    return winner
'''
CHAMPION = "model://deployment/champion"
RESPONSE_TIMEOUT = 20  # seconds a person has to answer the gated DAG's approval task
# The gated DAG: its winner waits for a person between the threshold and publish, which
# announces it as an event of CHAMPION; the other DAG runs on that Asset.
RELEASE_CONFIGS = {
    "approval_gate": {
        "target_airflow": "3.1",
        "dag": {
            "dag_id": "approval_gate",
            "schedule": None,
            "start_date": "2024-01-01",
        },
        "download": {"task_id": "prepare", "bash_command": "echo ready"},
        "trainers": {
            "group_id": "candidates",
            "python_callable": "release_code:train",
            "models": [
                {"task_id": name, "op_kwargs": {"accuracy": value}}
                for name, value in (("a", 0.71), ("b", 0.93), ("c", 0.82))
            ],
        },
        "chooser": {"task_id": "pick", "metric": "accuracy", "threshold": 0.5},
        "approval": {
            "task_id": "approve",
            "subject": "Publish {{ winner.task_id }} ({{ winner.value }})?",
            "response_timeout": f"{RESPONSE_TIMEOUT}s",
            "on_timeout": "Reject",
        },
        "publish": {
            "task_id": "publish",
            "python_callable": "release_code:publish",
            "asset": CHAMPION,
        },
    },
    "champion_check": {
        "dag": {
            "dag_id": "champion_check",
            "schedule": [CHAMPION],
            "start_date": "2024-01-01",
        },
        "download": {
            "task_id": "receive",
            "python_callable": "release_code:receive",
            "winner_from": CHAMPION,
        },
        "trainers": {
            "group_id": "challengers",
            "python_callable": "release_code:train",
            "models": [{"task_id": "d", "op_kwargs": {"accuracy": 0.9}}],
        },
        "chooser": {"task_id": "pick"},
    },
}
# One DAG per fault, each with its own winner: b, c and a.
FAULT_DAGS = {
    "faults_worker_killed": {"a": 0.61, "b": 0.92, "c": 0.73},
    "faults_scheduler_killed": {"a": 0.62, "b": 0.74, "c": 0.93},
    "faults_database_refused": {"a": 0.94, "b": 0.65, "c": 0.76},
}


def unavailable(what: str) -> None:
    """No such service here: skip, except under CI, which must run this test."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; CI must run the deployment tests", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def database() -> str:
    """A fresh PostgreSQL database of this session: its name."""
    try:
        import psycopg2
    except ImportError:
        unavailable(
            "psycopg2 is not installed: pip install -c constraints.txt '.[postgres]'"
        )
    name = f"dagfactory_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = psycopg2.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres"
        )
    except psycopg2.OperationalError as error:
        unavailable(f"no PostgreSQL server at {POSTGRES}: {error}")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield name
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture(scope="module")
def broker() -> str:
    """The prefix of this session's keys in the Redis database of these tests."""
    try:
        import redis
    except ImportError:
        unavailable(
            "redis is not installed: pip install -c constraints.txt '.[celery]'"
        )
    host, port = REDIS.split(":")
    client = redis.Redis(host=host, port=int(port), db=REDIS_DB)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"no Redis server at {REDIS}: {error}")
    prefix = f"dagfactory_test_{os.getpid()}_{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def variant(name: str, dag_id: str, folder: Path, **settings: dict) -> None:
    """Write configs/xcom_dag.yaml as ``name`` with another dag_id and merged settings."""
    config = yaml.safe_load((ROOT / "configs" / "xcom_dag.yaml").read_text())
    config["dag"]["dag_id"] = dag_id
    for section, values in settings.items():
        config[section].update(values)
    (folder / name).write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def dags_folder(tmp_path_factory) -> Path:
    """configs/ and variants of xcom_dag, rendered by this dagfactory, with their code."""
    project = tmp_path_factory.mktemp("deployment-project")
    configs = project / "configs"
    shutil.copytree(ROOT / "configs", configs)
    variant(
        "xcom_dag_training.yaml",
        "xcom_dag_training",
        configs,
        trainers={"queue": "training"},
    )
    variant(
        "xcom_dag_load.yaml",
        "xcom_dag_load",
        configs,
        dag={"max_active_runs": LOAD_RUNS},
    )
    for dag_id, accuracies in FAULT_DAGS.items():
        variant(
            f"{dag_id}.yaml",
            dag_id,
            configs,
            download={"bash_command": "echo ready"},
            trainers={
                "python_callable": "slow_trainers:train",
                "queue": "training",
                "retries": 2,
                "retry_delay": "1s",
                "models": [
                    {
                        "task_id": f"training_model_{name}",
                        "op_kwargs": {"accuracy": value, "seconds": TRAINING_SECONDS},
                    }
                    for name, value in accuracies.items()
                ],
            },
        )
    for dag_id, config in RELEASE_CONFIGS.items():
        (configs / f"{dag_id}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    dags = project / "dags"
    shutil.copytree(ROOT / "generated_dags" / "ml_demo", dags / "ml_demo")
    (dags / "slow_trainers.py").write_text(SLOW_TRAINERS_MODULE)
    (dags / "release_code.py").write_text(RELEASE_MODULE)
    render = subprocess.run(
        [sys.executable, "-m", "dagfactory", "render", "--out", str(dags)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert render.returncode == 0, render.stdout + render.stderr
    return dags


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, database, broker, dags_folder):
    """The running deployment: a REST client and its components, to hurt and restart."""
    home = tmp_path_factory.mktemp("deployment-airflow-home").resolve()
    port = free_loopback_port()
    identity = home / "identity"
    identity.mkdir()
    (identity / "deployment_worker_identity.py").write_text(IDENTITY_MODULE)
    env = server_env(home, dags_folder, port)
    env.update(
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://{POSTGRES}/{database}",
        AIRFLOW__CELERY__BROKER_URL=f"redis://{REDIS}/{REDIS_DB}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql://{POSTGRES}/{database}",
        AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=broker,
        # The triggerer serves its logs too; another session may hold the default port.
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_loopback_port()),
        # A task whose worker died is failed, and so retried, this soon after its last
        # heartbeat.
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT),
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL=str(
            HEARTBEAT_TIMEOUT_DETECTION_INTERVAL
        ),
    )
    migrate(env)
    airflow = [sys.executable, "-m", "airflow"]
    commands = {
        name: ([*airflow, name], env)
        for name in ("scheduler", "dag-processor", "triggerer", "api-server")
    }
    for queue, name in WORKERS.items():
        worker_env = {
            **env,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(identity), env.get("PYTHONPATH")])
            ),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "deployment_worker_identity.hostname",
            "DEPLOYMENT_TEST_WORKER": name,
        }
        commands[name] = (
            [
                *airflow,
                "celery",
                "worker",
                "--queues",
                queue,
                "--celery-hostname",
                f"{name}@%h",
                # Two workers on one host would both serve their logs on port 8793.
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ],
            worker_env,
        )
    with running(home, commands) as components:
        client = Airflow(home, port, COMPONENTS)
        expected = dag_files(dags_folder)
        wait_for(
            "Airflow to parse every DAG",
            lambda: expected <= dag_ids(client),
            STARTUP_LIMIT,
            client,
        )
        yield client, components


@pytest.fixture(scope="module")
def airflow(deployment) -> Airflow:
    return deployment[0]


@pytest.fixture(scope="module")
def measurements(request):
    """Lines the module prints when it ends: how long Airflow took, to quote."""
    lines: list[str] = []
    yield lines
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    if reporter is None or not lines:
        return
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        reporter.write_sep("-", "deployment measurements")
        for line in lines:
            reporter.write_line(line)


def dag_files(folder: Path) -> set[str]:
    """The DAG files' names: every Python file there that .airflowignore does not list."""
    ignored = set((folder / ".airflowignore").read_text().split())
    return {path.stem for path in folder.glob("*.py") if path.name not in ignored}


def dag_ids(airflow: Airflow) -> set[str]:
    status, body = airflow.request("GET", "/api/v2/dags?limit=100")
    return {dag["dag_id"] for dag in body.get("dags", [])} if status == 200 else set()


def quoted(run_id: str) -> str:
    return urllib.request.quote(run_id, safe="")


def trigger(
    airflow: Airflow,
    dag_id: str,
    run_id: str | None = None,
    logical_date: str | None = None,
) -> str:
    """Unpause ``dag_id`` and trigger a run, by default with no logical date as the UI
    does; its id."""
    status, body = airflow.request(
        "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}
    )
    assert status == 200 and body["is_paused"] is False, body
    request = {"logical_date": logical_date} | (
        {"dag_run_id": run_id} if run_id else {}
    )
    status, run = airflow.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", request)
    assert status == 200, run
    if logical_date is None:
        assert run["logical_date"] is None
    else:
        assert datetime.fromisoformat(run["logical_date"]) == datetime.fromisoformat(
            logical_date
        ), run
    return run["dag_run_id"]


def finished_runs(airflow: Airflow, dag_id: str, run_ids: set[str]) -> dict | None:
    """Every run's final state once all of ``run_ids`` have one, else None."""
    status, body = airflow.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")
    if status != 200:
        return None
    states = {run["dag_run_id"]: run["state"] for run in body["dag_runs"]}
    if any(states.get(run_id) not in ("success", "failed") for run_id in run_ids):
        return None
    return states


def wait_for_success(airflow: Airflow, dag_id: str, run_id: str) -> None:
    states = wait_for(
        f"run {run_id} of {dag_id} to finish",
        lambda: finished_runs(airflow, dag_id, {run_id}),
        RUN_LIMIT,
        airflow,
    )
    assert states[run_id] == "success", airflow.logs()


def xcom(
    airflow: Airflow,
    dag_id: str,
    run_id: str,
    task_id: str,
    key: str,
    map_index: int = -1,
):
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances/{task_id}/xcomEntries/{key}?map_index={map_index}"
    status, body = airflow.request("GET", path)
    assert status == 200, body
    value = body["value"]
    return json.loads(value) if isinstance(value, str) else value


def xcom_counts(airflow: Airflow, dag_id: str, run_id: str, key: str) -> Counter:
    """How many XComs under ``key`` each task instance of the run holds."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances/~/xcomEntries?xcom_key={key}&limit=100"
    status, body = airflow.request("GET", path)
    assert status == 200, body
    return Counter(
        label(entry["task_id"], entry["map_index"]) for entry in body["xcom_entries"]
    )


def label(task_id: str, map_index: int) -> str:
    """How the chooser names a trainer: a mapped one by its index."""
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def task_instances(airflow: Airflow, dag_id: str, run_id: str) -> list[dict]:
    instances = task_instances_now(airflow, dag_id, run_id)
    assert instances is not None, f"no task instances of {dag_id} {run_id}"
    return instances


def task_instances_now(airflow: Airflow, dag_id: str, run_id: str) -> list[dict] | None:
    """The run's task instances, or None while the API cannot answer."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances?limit=100"
    status, body = airflow.request("GET", path)
    return body["task_instances"] if status == 200 else None


def assert_winner_is_the_best(airflow: Airflow, dag_id: str, run_id: str) -> None:
    accuracies = {
        task_id: xcom(airflow, dag_id, run_id, task_id, "model_accuracy")
        for task_id in TRAINERS
    }
    assert all(isinstance(value, float) for value in accuracies.values()), accuracies
    best = max(accuracies, key=accuracies.__getitem__)
    assert xcom(airflow, dag_id, run_id, "task_4", "best_model") == {
        "task_id": best,
        "value": accuracies[best],
        "metrics": {"model_accuracy": accuracies[best]},
        "params": {},
    }, (run_id, accuracies)


def test_every_dag_is_parsed_without_import_errors(airflow, dags_folder):
    status, body = airflow.request("GET", "/api/v2/importErrors")
    assert status == 200, body
    assert body["import_errors"] == [], body
    assert dag_files(dags_folder) <= dag_ids(airflow)


def test_xcom_dag_runs_on_celery_and_the_chooser_picks_the_best(airflow):
    run_id = trigger(airflow, "xcom_dag")
    wait_for_success(airflow, "xcom_dag", run_id)
    assert_winner_is_the_best(airflow, "xcom_dag", run_id)


@pytest.fixture(scope="module")
def training_run(airflow) -> str:
    """A successful run of the variant whose trainers have ``queue: training``: its id."""
    run_id = trigger(airflow, "xcom_dag_training")
    wait_for_success(airflow, "xcom_dag_training", run_id)
    return run_id


def test_training_variant_runs_and_the_chooser_picks_the_best(airflow, training_run):
    assert_winner_is_the_best(airflow, "xcom_dag_training", training_run)


def test_trainers_run_on_the_training_worker_and_the_rest_on_default(
    airflow, training_run
):
    placement = {
        ti["task_id"]: (ti["queue"], ti["hostname"])
        for ti in task_instances(airflow, "xcom_dag_training", training_run)
    }
    expected = {
        task_id: ("training", WORKERS["training"])
        if task_id in TRAINERS
        else ("default", WORKERS["default"])
        for task_id in placement
    }
    assert set(TRAINERS) < set(placement)
    assert placement == expected


def test_many_concurrent_runs_each_choose_their_own_best(airflow, measurements):
    dag_id = "xcom_dag_load"
    started = time.monotonic()
    run_ids = [
        trigger(airflow, dag_id, f"load_{index:02}") for index in range(LOAD_RUNS)
    ]
    states = wait_for(
        f"{LOAD_RUNS} runs of {dag_id} to finish",
        lambda: finished_runs(airflow, dag_id, set(run_ids)),
        LOAD_LIMIT,
        airflow,
    )
    elapsed = time.monotonic() - started
    measurements.append(
        f"{LOAD_RUNS} concurrent runs of {dag_id} in {elapsed:.0f} s: "
        f"{LOAD_RUNS / elapsed * 60:.1f} runs/minute"
    )
    assert states == dict.fromkeys(run_ids, "success"), states
    for run_id in run_ids:
        instances = task_instances(airflow, dag_id, run_id)
        task_ids = [ti["task_id"] for ti in instances]
        assert len(task_ids) == len(set(task_ids)), (run_id, task_ids)
        assert all(
            ti["state"] == "success" and ti["try_number"] == 1 for ti in instances
        ), (run_id, instances)
        assert_winner_is_the_best(airflow, dag_id, run_id)


@dataclass(frozen=True)
class Example:
    """What every run of an example DAG must show, from its config: the trainers (task
    id, map index) and the XCom key they push, the chooser, and, where the config fixes
    the outcome, the winner and the state of each task that a branch decides."""

    trainers: tuple[tuple[str, int], ...]
    xcom_key: str
    chooser: str
    mode: str = "max"
    metric: str | None = None
    winner: tuple[str, float] | None = None
    branch: dict[str, str] = field(default_factory=dict)


def unmapped(*task_ids: str) -> tuple[tuple[str, int], ...]:
    return tuple((task_id, -1) for task_id in task_ids)


EXAMPLES = {
    "xcom_dag": Example(unmapped(*TRAINERS), "model_accuracy", "task_4"),
    "min_loss_dag": Example(
        unmapped(*(f"candidates.train_depth_{depth}" for depth in (2, 4, 8))),
        "val_loss",
        "pick_lowest_loss",
        mode="min",
        winner=("candidates.train_depth_4", 0.17),
    ),
    "bash_trainers": Example(
        unmapped(*(f"shell_models.{name}" for name in ("shallow", "deep", "medium"))),
        "return_value",
        "pick_depth",
        winner=("shell_models.deep", 0.63),  # its command prints 0.$((9 * 7))
    ),
    "mapped_seeds": Example(
        tuple(("seeds.train_seed", index) for index in range(8)),
        "return_value",
        "pick_seed",
        winner=("seeds.train_seed[7]", 0.96),  # seed 8 scores 8 * 37 % 100 / 100
        branch={"promote": "skipped", "too_weak": "success"},  # 0.96 < 0.99
    ),
    "hyperparameter_sweep": Example(
        unmapped(
            *(
                f"grid.learning_rate_{rate}_depth_{depth}"
                for rate in ("0.01", "0.05")
                for depth in (4, 8)
            )
        ),
        "metrics",
        "pick_best",
        metric="accuracy",
        winner=("grid.learning_rate_0.05_depth_8", 0.7),  # 0.5 + 8/40 - 0
        branch={"deploy": "success", "alert": "skipped"},  # 0.7 >= 0.6
    ),
    "random_restarts": Example(
        unmapped(*(f"restarts.restart_{index}" for index in range(1, 6))),
        "model_accuracy",
        "keep_best",
    ),
    "digits_classifiers": Example(
        unmapped(
            *(
                f"classifiers.{name}"
                for name in ("logistic_regression", "random_forest", "svc", "knn")
            )
        ),
        "scores",
        "pick_best",
        metric="accuracy",
        winner=("classifiers.svc", 447 / 450),  # 3 of the 450 test digits missed
        branch={"alert": "skipped"},  # 0.993 >= 0.9: save_best_model publishes it
    ),
}


def score(value, metric: str | None) -> float:
    """The number a trainer's XCom ranks by (bash trainers push their output as text)."""
    value = value[metric] if metric else value
    return float(value)


@pytest.fixture(scope="module")
def example_runs(airflow) -> dict[str, dict[str, str]]:
    """Every example DAG triggered without and with a logical date, all at once: each
    DAG's run ids and their final states."""
    run_ids = {
        dag_id: [
            trigger(airflow, dag_id, f"{dag_id}_undated"),
            trigger(airflow, dag_id, f"{dag_id}_dated", logical_date=LOGICAL_DATE),
        ]
        for dag_id in EXAMPLES
    }
    started = time.monotonic()
    finished = {
        dag_id: wait_for(
            f"the runs of {dag_id} to finish",
            lambda dag_id=dag_id, ids=ids: finished_runs(airflow, dag_id, set(ids)),
            max(1, EXAMPLES_LIMIT - (time.monotonic() - started)),
            airflow,
        )
        for dag_id, ids in run_ids.items()
    }
    return {
        dag_id: {run_id: finished[dag_id][run_id] for run_id in ids}
        for dag_id, ids in run_ids.items()
    }


def test_every_example_dag_is_covered():
    assert set(EXAMPLES) == {
        path.stem for path in (ROOT / "generated_dags").glob("*.py")
    }


@pytest.mark.parametrize("dag_id", sorted(EXAMPLES))
def test_example_runs_on_celery_and_chooses_its_best(airflow, example_runs, dag_id):
    example = EXAMPLES[dag_id]
    assert set(example_runs[dag_id].values()) == {"success"}, example_runs[dag_id]
    for run_id in example_runs[dag_id]:
        instances = task_instances(airflow, dag_id, run_id)
        states = {
            label(ti["task_id"], ti["map_index"]): ti["state"] for ti in instances
        }
        assert states == {
            name: example.branch.get(name, "success") for name in states
        }, (run_id, states)
        assert set(example.branch) <= set(states)
        placement = {
            label(ti["task_id"], ti["map_index"]): (ti["queue"], ti["hostname"])
            for ti in instances
            if ti["state"] == "success"
        }
        assert set(placement.values()) == {("default", WORKERS["default"])}, placement

        trainers = [label(*trainer) for trainer in example.trainers]
        counts = xcom_counts(airflow, dag_id, run_id, example.xcom_key)
        assert {name: counts[name] for name in trainers} == dict.fromkeys(trainers, 1)
        scores = {
            label(task_id, map_index): score(
                xcom(airflow, dag_id, run_id, task_id, example.xcom_key, map_index),
                example.metric,
            )
            for task_id, map_index in example.trainers
        }
        pick = max if example.mode == "max" else min
        best = pick(scores, key=scores.__getitem__)
        winner = xcom(airflow, dag_id, run_id, example.chooser, "best_model")
        assert (winner["task_id"], winner["value"]) == (best, scores[best]), scores
        if example.winner:
            assert (winner["task_id"], winner["value"]) == example.winner


def trainers_underway(airflow: Airflow, dag_id: str, run_id: str) -> set[str] | None:
    """The trainers running now, once every trainer has started and one still runs."""
    instances = task_instances_now(airflow, dag_id, run_id)
    if instances is None:
        return None
    states = {ti["task_id"]: ti["state"] for ti in instances}
    if any(states.get(task_id) not in ("running", "success") for task_id in TRAINERS):
        return None
    return {task_id for task_id in TRAINERS if states[task_id] == "running"} or None


def start_training(airflow: Airflow, dag_id: str) -> tuple[str, set[str]]:
    """Trigger a run and wait until its trainers are training: its id and those running."""
    run_id = trigger(airflow, dag_id)
    running_trainers = wait_for(
        f"the trainers of {run_id} of {dag_id} to run",
        lambda: trainers_underway(airflow, dag_id, run_id),
        RUN_LIMIT,
        airflow,
    )
    return run_id, running_trainers


@dataclass
class Watch:
    """What was seen while a hurt run went on: when each task was first seen in each
    (state, try), in seconds since the fault, and which components exited and were
    started again."""

    fault: float
    seen: dict[tuple[str, str, int], float] = field(default_factory=dict)
    restarted: list[str] = field(default_factory=list)

    def retry_began(self) -> float:
        """When a trainer was first seen failed for a retry (or already retrying)."""
        return min(
            when
            for (_, state, try_number), when in self.seen.items()
            if state == "up_for_retry" or try_number > 1
        )


def watch_until_finished(
    airflow: Airflow, components: Components, dag_id: str, run_id: str, watch: Watch
) -> str:
    """Wait until the run ends, as a service manager would: a component that exits is
    started again. The run's final state."""

    def finished() -> str | None:
        for name in components.exited():
            watch.restarted.append(name)
            components.start(name)
        now = time.monotonic() - watch.fault
        for ti in task_instances_now(airflow, dag_id, run_id) or []:
            watch.seen.setdefault((ti["task_id"], ti["state"], ti["try_number"]), now)
        states = finished_runs(airflow, dag_id, {run_id})
        return states[run_id] if states else None

    return wait_for(
        f"run {run_id} of {dag_id} to finish", finished, FAULT_LIMIT, airflow
    )


def assert_each_metric_counted_once(airflow: Airflow, dag_id: str, run_id: str) -> None:
    """One XCom per trainer, the ones its config gives, and the winner chosen from them."""
    accuracies = {
        f"processing_tasks.training_model_{name}": value
        for name, value in FAULT_DAGS[dag_id].items()
    }
    assert xcom_counts(airflow, dag_id, run_id, "model_accuracy") == dict.fromkeys(
        TRAINERS, 1
    )
    pushed = {
        task_id: xcom(airflow, dag_id, run_id, task_id, "model_accuracy")
        for task_id in TRAINERS
    }
    assert pushed == accuracies
    best = max(accuracies, key=accuracies.__getitem__)
    winner = xcom(airflow, dag_id, run_id, "task_4", "best_model")
    assert (winner["task_id"], winner["value"]) == (best, accuracies[best])


def tries(airflow: Airflow, dag_id: str, run_id: str) -> dict[str, int]:
    return {
        ti["task_id"]: ti["try_number"]
        for ti in task_instances(airflow, dag_id, run_id)
    }


def test_a_killed_training_worker_s_trainers_are_retried_on_its_successor(
    deployment, measurements
):
    """SIGKILL the training worker with its tasks mid-training and start a new one: the
    scheduler fails the silent trainers after the heartbeat timeout, they are retried on
    the new worker and the run succeeds with the right winner."""
    airflow, components = deployment
    dag_id = "faults_worker_killed"
    run_id, running_trainers = start_training(airflow, dag_id)
    components.kill(WORKERS["training"])
    watch = Watch(time.monotonic())
    components.start(WORKERS["training"])
    state = watch_until_finished(airflow, components, dag_id, run_id, watch)
    recovered = time.monotonic() - watch.fault
    assert state == "success", airflow.logs()
    assert_each_metric_counted_once(airflow, dag_id, run_id)
    attempts = tries(airflow, dag_id, run_id)
    retried = {task_id for task_id, number in attempts.items() if number > 1}
    assert retried and retried <= running_trainers, (attempts, running_trainers)
    assert all(attempts[task_id] == 2 for task_id in retried), attempts
    hosts = {
        ti["task_id"]: ti["hostname"] for ti in task_instances(airflow, dag_id, run_id)
    }
    assert {hosts[task_id] for task_id in TRAINERS} == {WORKERS["training"]}
    failed_after = watch.retry_began()
    measurements.append(
        f"training worker SIGKILLed with {len(running_trainers)} trainers running "
        f"(task_instance_heartbeat_timeout={HEARTBEAT_TIMEOUT} s, detection every "
        f"{HEARTBEAT_TIMEOUT_DETECTION_INTERVAL} s): {len(retried)} lost trainers "
        f"failed and up for retry {failed_after:.0f} s after the kill, "
        f"run succeeded {recovered:.0f} s after it; "
        f"restarted besides the worker: {watch.restarted or 'none'}"
    )


def test_a_scheduler_killed_and_restarted_mid_run_completes_it(
    deployment, measurements
):
    airflow, components = deployment
    dag_id = "faults_scheduler_killed"
    run_id, _ = start_training(airflow, dag_id)
    components.kill("scheduler")
    watch = Watch(time.monotonic())
    components.start("scheduler")
    state = watch_until_finished(airflow, components, dag_id, run_id, watch)
    recovered = time.monotonic() - watch.fault
    assert state == "success", airflow.logs()
    assert_each_metric_counted_once(airflow, dag_id, run_id)
    assert set(tries(airflow, dag_id, run_id).values()) == {1}
    measurements.append(
        f"scheduler SIGKILLed while trainers ran, restarted at once: run succeeded "
        f"{recovered:.0f} s after the kill, every task on its first try"
    )


@contextmanager
def connections_refused(database: str):
    """The metadata database refuses connections: new ones are turned away and every
    open one is ended, without stopping the server other databases live on."""
    import psycopg2

    admin = psycopg2.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres"
    )
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        yield
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        admin.close()


def test_a_database_refusing_connections_never_yields_a_wrong_winner(
    deployment, database, measurements
):
    """While trainers run, the metadata database refuses every connection for a few
    seconds. The run succeeds with the right winner or fails loudly; no metric is
    counted twice."""
    import psycopg2

    airflow, components = deployment
    dag_id = "faults_database_refused"
    run_id, _ = start_training(airflow, dag_id)
    with connections_refused(database):
        watch = Watch(time.monotonic())
        with pytest.raises(psycopg2.OperationalError, match="not currently accepting"):
            psycopg2.connect(
                host="127.0.0.1", port=5432, user="postgres", dbname=database
            )
        time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for Airflow
    state = watch_until_finished(airflow, components, dag_id, run_id, watch)
    recovered = time.monotonic() - watch.fault
    instances = task_instances(airflow, dag_id, run_id)
    attempts = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in instances}
    if state == "success":
        assert_each_metric_counted_once(airflow, dag_id, run_id)
    else:
        assert state == "failed"
        assert any(ti["state"] == "failed" for ti in instances), attempts
        counts = xcom_counts(airflow, dag_id, run_id, "model_accuracy")
        assert all(count == 1 for count in counts.values()), counts
        winners = xcom_counts(airflow, dag_id, run_id, "best_model")
        if winners:
            assert_each_metric_counted_once(airflow, dag_id, run_id)
    retried = sorted(task_id for task_id, (_, number) in attempts.items() if number > 1)
    measurements.append(
        f"metadata database refused connections for {OUTAGE_SECONDS} s while trainers "
        f"ran: run {state} {recovered:.0f} s after the outage began; retried: "
        f"{retried or 'none'}; components that exited and were restarted: "
        f"{watch.restarted or 'none'}; task states: {attempts}"
    )


# -- after the choice: a person's approval, and the Asset event carrying the winner ------


def approval_waiting(airflow: Airflow, run_id: str) -> bool:
    """Whether the gated run's approval task waits for a person (3.3's own state)."""
    instances = task_instances_now(airflow, "approval_gate", run_id) or []
    return any(
        ti["task_id"] == "approve" and ti["state"] == "awaiting_input"
        for ti in instances
    )


def hitl_path(run_id: str) -> str:
    return (
        f"/api/v2/dags/approval_gate/dagRuns/{quoted(run_id)}"
        "/taskInstances/approve/-1/hitlDetails"
    )


def scheduling_asset_runs(airflow: Airflow, components: Components) -> None:
    """Every DAG paused but the two of these runs, and the scheduler restarted with its
    job schedule on: it creates the runs an Asset event asks for (the module's
    scheduler leaves schedules off, so that no example runs unasked)."""
    status, body = airflow.request(
        "PATCH", "/api/v2/dags?dag_id_pattern=~&limit=100", {"is_paused": True}
    )
    assert status == 200, body
    status, body = airflow.request(
        "PATCH", "/api/v2/dags/champion_check", {"is_paused": False}
    )
    assert status == 200 and body["is_paused"] is False, body
    argv, env = components.commands["scheduler"]
    components.commands["scheduler"] = (
        argv,
        {
            **env,
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            # How often timed-out approvals are resolved (default 15 s).
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
        },
    )
    components.kill("scheduler")
    components.start("scheduler")


@pytest.fixture(scope="module")
def release_runs(deployment, measurements) -> dict[str, str]:
    """Three runs of the gated DAG at once: one approved and one rejected over REST as
    soon as each waits, one left to time out. Each run's id by what became of it; the
    REST calls and replies are kept for the report."""
    airflow, components = deployment
    started = time.monotonic()
    scheduling_asset_runs(airflow, components)
    run_ids = {
        outcome: trigger(airflow, "approval_gate", f"release_{outcome}")
        for outcome in ("approved", "rejected", "timed_out")
    }
    for outcome, answer in (("approved", "Approve"), ("rejected", "Reject")):
        run_id = run_ids[outcome]
        wait_for(
            f"{run_id} to wait for approval",
            lambda run_id=run_id: approval_waiting(airflow, run_id),
            RUN_LIMIT,
            airflow,
        )
        body = {"chosen_options": [answer], "params_input": {}}
        status, reply = airflow.request("PATCH", hitl_path(run_id), body)
        measurements.append(
            f"PATCH {hitl_path(run_id)} {json.dumps(body)} -> {status} {json.dumps(reply)}"
        )
        assert status == 200, reply
    finished = wait_for(
        "the gated runs to finish",
        lambda: finished_runs(airflow, "approval_gate", set(run_ids.values())),
        RUN_LIMIT + RESPONSE_TIMEOUT,
        airflow,
    )
    assert {finished[run_id] for run_id in run_ids.values()} == {"success"}, finished
    measurements.append(
        f"approve, reject and time out three gated runs at once: all finished "
        f"{time.monotonic() - started:.0f} s after the scheduler restart began"
    )
    return run_ids


def states_of(airflow: Airflow, dag_id: str, run_id: str) -> dict[str, str]:
    return {
        ti["task_id"]: ti["state"] for ti in task_instances(airflow, dag_id, run_id)
    }


def champion_events(airflow: Airflow) -> list[dict]:
    """The events of CHAMPION that the gated DAG's runs recorded."""
    status, body = airflow.request(
        "GET", "/api/v2/assets/events?source_dag_id=approval_gate&limit=100"
    )
    assert status == 200, body
    return [event for event in body["asset_events"] if event["uri"] == CHAMPION]


def test_an_approved_winner_is_published_and_reaches_the_dag_scheduled_on_its_asset(
    airflow, release_runs, measurements
):
    run_id = release_runs["approved"]
    states = states_of(airflow, "approval_gate", run_id)
    assert {
        name: states[name] for name in ("pick", "approve", "publish")
    } == dict.fromkeys(("pick", "approve", "publish"), "success"), states
    winner = xcom(airflow, "approval_gate", run_id, "pick", "best_model")
    assert (winner["task_id"], winner["value"]) == ("candidates.b", 0.93)
    assert xcom(airflow, "approval_gate", run_id, "publish", "return_value") == {
        "published": "/models/model_0.93.pkl"
    }
    status, detail = airflow.request("GET", hitl_path(run_id))
    assert status == 200, detail
    assert detail["subject"] == "Publish candidates.b (0.93)?"
    assert detail["chosen_options"] == ["Approve"]
    assert detail["responded_by_user"] is not None

    (event,) = champion_events(airflow)
    extra = {"dag_id": "approval_gate", "run_id": run_id, **winner}
    assert event["source_run_id"] == run_id and event["extra"] == extra, event
    runs = wait_for(
        "the run of champion_check that the event triggered to finish",
        lambda: finished_runs_of(airflow, "champion_check"),
        RUN_LIMIT,
        airflow,
    )
    (consumer_run,) = runs
    assert runs[consumer_run] == ("success", "asset_triggered"), runs
    received = xcom(airflow, "champion_check", consumer_run, "receive", "return_value")
    assert received == extra
    measurements.append(
        f"approved run {run_id}: {states}; asset event extra {json.dumps(event['extra'])}; "
        f"champion_check run {consumer_run} ({runs[consumer_run]}) received "
        f"winner={json.dumps(received)}"
    )


def finished_runs_of(
    airflow: Airflow, dag_id: str
) -> dict[str, tuple[str, str]] | None:
    """Every run of ``dag_id`` with its state and type, once there is one and all ended."""
    status, body = airflow.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")
    if status != 200 or not body["dag_runs"]:
        return None
    runs = {
        run["dag_run_id"]: (run["state"], run["run_type"]) for run in body["dag_runs"]
    }
    if any(state not in ("success", "failed") for state, _ in runs.values()):
        return None
    return runs


def test_a_rejected_winner_is_not_published(airflow, release_runs, measurements):
    run_id = release_runs["rejected"]
    states = states_of(airflow, "approval_gate", run_id)
    assert (states["approve"], states["publish"]) == ("success", "skipped"), states
    status, detail = airflow.request("GET", hitl_path(run_id))
    assert status == 200 and detail["chosen_options"] == ["Reject"], detail
    assert run_id not in {event["source_run_id"] for event in champion_events(airflow)}
    measurements.append(f"rejected run {run_id}: {states}")


def test_an_unanswered_approval_takes_its_on_timeout_answer(
    airflow, release_runs, measurements
):
    """``on_timeout: Reject``: when no one answers in time, Airflow answers Reject for
    no one, and publish is skipped."""
    run_id = release_runs["timed_out"]
    states = states_of(airflow, "approval_gate", run_id)
    assert (states["approve"], states["publish"]) == ("success", "skipped"), states
    status, detail = airflow.request("GET", hitl_path(run_id))
    assert status == 200, detail
    assert detail["chosen_options"] == ["Reject"] and detail["defaults"] == ["Reject"]
    assert detail["responded_by_user"] is None, detail
    waited = datetime.fromisoformat(detail["responded_at"]) - datetime.fromisoformat(
        detail["created_at"]
    )
    assert waited.total_seconds() >= RESPONSE_TIMEOUT, detail
    assert run_id not in {event["source_run_id"] for event in champion_events(airflow)}
    measurements.append(
        f"timed-out run {run_id}: {states}; answered {detail['chosen_options']} by "
        f"{detail['responded_by_user']} {waited.total_seconds():.0f} s after it asked"
    )
