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
from pathlib import Path

import pytest
import yaml

from airflow_processes import Airflow, free_loopback_port, running
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
IDENTITY_MODULE = '''\
"""Each worker's name, as its own host would give it."""

import os


def hostname() -> str:
    return os.environ["DEPLOYMENT_TEST_WORKER"]
'''


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
    """configs/ and two variants of xcom_dag, rendered by this dagfactory, with ml_demo/."""
    project = tmp_path_factory.mktemp("deployment-project")
    shutil.copytree(ROOT / "configs", project / "configs")
    variant(
        "xcom_dag_training.yaml",
        "xcom_dag_training",
        project / "configs",
        trainers={"queue": "training"},
    )
    variant(
        "xcom_dag_load.yaml",
        "xcom_dag_load",
        project / "configs",
        dag={"max_active_runs": LOAD_RUNS},
    )
    dags = project / "dags"
    shutil.copytree(ROOT / "generated_dags" / "ml_demo", dags / "ml_demo")
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
def airflow(tmp_path_factory, database, broker, dags_folder):
    home = tmp_path_factory.mktemp("deployment-airflow-home").resolve()
    port = free_loopback_port()
    identity = home / "identity"
    identity.mkdir()
    (identity / "deployment_worker_identity.py").write_text(IDENTITY_MODULE)
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://{POSTGRES}/{database}",
        AIRFLOW__CELERY__BROKER_URL=f"redis://{REDIS}/{REDIS_DB}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql://{POSTGRES}/{database}",
        AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=broker,
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        # The triggerer serves its logs too; another session may hold the default port.
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_loopback_port()),
        # One secret for every component, so the tasks' tokens are accepted by the API server.
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        # Only the runs these tests trigger: no scheduled runs of the @daily DAGs alongside.
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
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
    with running(home, commands):
        client = Airflow(home, port, COMPONENTS)
        expected = {path.stem for path in dags_folder.glob("*.py")}
        wait_for(
            "Airflow to parse every DAG",
            lambda: expected <= dag_ids(client),
            STARTUP_LIMIT,
            client,
        )
        yield client


def dag_ids(airflow: Airflow) -> set[str]:
    status, body = airflow.request("GET", "/api/v2/dags?limit=100")
    return {dag["dag_id"] for dag in body.get("dags", [])} if status == 200 else set()


def wait_for(what: str, check, limit: float, airflow: Airflow):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out after {limit:.0f} s waiting for {what}\n{airflow.logs()}")


def quoted(run_id: str) -> str:
    return urllib.request.quote(run_id, safe="")


def trigger(airflow: Airflow, dag_id: str, run_id: str | None = None) -> str:
    """Unpause ``dag_id`` and trigger a run with no logical date, as the UI does; its id."""
    status, body = airflow.request(
        "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}
    )
    assert status == 200 and body["is_paused"] is False, body
    request = {"logical_date": None} | ({"dag_run_id": run_id} if run_id else {})
    status, run = airflow.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", request)
    assert status == 200, run
    assert run["logical_date"] is None
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


def xcom(airflow: Airflow, dag_id: str, run_id: str, task_id: str, key: str):
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances/{task_id}/xcomEntries/{key}"
    status, body = airflow.request("GET", path)
    assert status == 200, body
    value = body["value"]
    return json.loads(value) if isinstance(value, str) else value


def task_instances(airflow: Airflow, dag_id: str, run_id: str) -> list[dict]:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances?limit=100"
    status, body = airflow.request("GET", path)
    assert status == 200, body
    return body["task_instances"]


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
    }, (run_id, accuracies)


def test_every_dag_is_parsed_without_import_errors(airflow, dags_folder):
    status, body = airflow.request("GET", "/api/v2/importErrors")
    assert status == 200, body
    assert body["import_errors"] == [], body
    assert {path.stem for path in dags_folder.glob("*.py")} <= dag_ids(airflow)


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


def test_many_concurrent_runs_each_choose_their_own_best(airflow):
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
    print(
        f"\n{LOAD_RUNS} concurrent runs of {dag_id} in {elapsed:.0f} s: "
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
