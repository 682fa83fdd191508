"""Trainers in a Docker container: what ``runtime: {docker: ...}`` renders, the configs
validate refuses with the line to fix, and one DAG run for real (a Docker daemon, an
image built here, Airflow) where the container's metric reaches the chooser and wins."""

from __future__ import annotations

import ast
import json
import subprocess

import pytest
from test_render import assert_ruff_clean
from test_runtime import assert_refused, operator_calls

from conftest import ROOT, VALID, compiled, dagfactory
from dagfactory.tools import check_child
from dagfactory.tools.graph import layout
from dagfactory.tools.run import run_dag
from docker_host import daemon, trainer_image

IMAGE = "registry.example.com/team/trainer:1.4"
DOCKER = VALID.replace(
    "      op_kwargs: {depth: 3}\n",
    "      op_kwargs: {depth: 3}\n"
    "      inputs: {rows: fetch}\n"
    "      runtime:\n"
    "        docker:\n"
    f"          image: {IMAGE}\n"
    "          command: [python3, /app/train.py]\n"
    "          environment: {SEED: 7, PYTHONUNBUFFERED: 0}\n"
    "          mounts: [{source: /data, target: /data, read_only: true}]\n"
    "          gpus: 2\n"
    "          network_mode: none\n",
)

# The contract's example entrypoint, which docs/how-to/docker-trainers.md shows.
ENTRYPOINT = ROOT / "examples" / "docker" / "entrypoint.py"

TRAIN = """\
def in_worker(depth):
    return {"accuracy": 0.5, "artifact": "worker"}
"""

CONFIG = """\
dag:
  dag_id: docker_trainers
  start_date: 2024-01-01
download:
  task_id: fetch
  bash_command: echo '[1, 2, 3]'
trainers:
  group_id: train
  python_callable: docker_demo.train:in_worker
  models:
    - task_id: worker
      op_kwargs: {{depth: 1}}
    - task_id: container
      op_kwargs: {{depth: 4}}
      inputs: {{rows: fetch}}
      runtime:
        docker:
          image: {image}
          command: [python3, /app/train.py]
          mounts: [{{source: {models}, target: /models}}]
          network_mode: none
chooser:
  task_id: choose
  metric: accuracy
"""


def test_a_docker_runtime_renders_a_docker_trainer(tmp_path):
    source = compiled(DOCKER).content
    calls = operator_calls(source)
    assert calls["a"]["operator"] == "PythonOperator"  # the group's python trainer
    b = calls["b"]
    assert b["operator"] == "_DockerTrainer"
    assert b["image"] == repr(IMAGE)
    assert b["command"] == "['python3', '/app/train.py']"
    assert b["network_mode"] == "'none'"
    assert b["auto_remove"] == "'success'"
    assert b["mount_tmp_dir"] == "False"
    assert b["metric_key"] == "'score'"
    assert "python_callable" not in b  # it runs the image's command
    environment = ast.literal_eval(b["environment"])
    assert environment["PYTHONUNBUFFERED"] == "0"  # the runtime's wins
    assert environment["SEED"] == "7"
    assert environment["depth"] == "3"
    assert "ti.xcom_pull(task_ids='fetch')" in environment["rows"]
    assert b["mounts"] == (
        "[Mount(target='/data', source='/data', type='bind', read_only=True)]"
    )
    assert b["device_requests"] == "[DeviceRequest(count=2, capabilities=[['gpu']])]"
    assert "from docker.types import (\n    DeviceRequest,\n    Mount,\n)" in source
    assert (
        "from airflow.providers.docker.operators.docker import DockerOperator" in source
    )
    (tmp_path / "docker_dag.py").write_text(source)
    assert_ruff_clean(tmp_path)


@pytest.mark.parametrize(
    ("replacement", "problem"),
    [
        (
            (IMAGE, "Team/Trainer:1.4"),
            "c.yaml:18:18: error: trainers.models[1].runtime.docker.image:"
            " 'Team/Trainer:1.4' is not an image reference Docker accepts;"
            " repository names are lowercase: 'team/trainer:1.4'?",
        ),
        (
            (IMAGE, "trainer:1.4 --rm"),
            "trainers.models[1].runtime.docker.image: 'trainer:1.4 --rm' is not an"
            " image reference",
        ),
        (
            ("  group_id: train\n", "  group_id: train\n  mapped: true\n"),
            "error: trainers.mapped: mapped trainers all run in the worker's"
            " interpreter, not in Docker",
        ),
        (
            ("      op_kwargs: {depth: 3}\n", "      bash_command: echo 1\n"),
            "c.yaml:14:7: error: trainers.models[1].bash_command: this trainer runs in"
            " Docker, where its image's command prints the metric: remove"
            " bash_command, or the docker runtime",
        ),
        (
            ("        docker:\n", "        venv_cache_path: /v\n        docker:\n"),
            "trainers.models[1].runtime",
        ),
        (("          gpus: 2\n", "          gpus: 0\n"), "runtime.docker.gpus"),
    ],
)
def test_validate_refuses_a_docker_runtime_it_cannot_honour(replacement, problem):
    assert_refused(DOCKER, replacement, problem)


def test_a_groups_docker_runtime_needs_no_python_callable(tmp_path):
    config = VALID.replace(
        "  python_callable: pkg.models:train\n",
        f"  runtime: {{docker: {{image: {IMAGE}}}}}\n",
    ).replace("  task_id: choose\n", "  task_id: choose\n  min_success: 1\n")
    result = compiled(config)
    calls = operator_calls(result.content)
    assert {calls[t]["operator"] for t in "ab"} == {"_DockerTrainer"}
    assert "def _train(" not in result.content
    # a failed container leaves its error for the chooser, as a python trainer does
    assert 'context["ti"].xcom_push(key="dagfactory_error"' in result.content
    (tmp_path / "group_docker.py").write_text(result.content)
    assert_ruff_clean(tmp_path)
    details = {node.title: node.detail for node in layout(result.pipeline).columns[1]}
    assert details == {"a": f"docker: {IMAGE}", "b": f"docker: {IMAGE}"}


@pytest.fixture(scope="module")
def docker_image(tmp_path_factory) -> str:
    """A Docker daemon (started here when none answers) and the trainer image."""
    with daemon(tmp_path_factory.mktemp("dockerd") / "dockerd.log"):
        yield trainer_image(ENTRYPOINT.read_text())


@pytest.mark.airflow
def test_a_trainer_in_docker_reports_its_metric_to_the_chooser(tmp_path, docker_image):
    models = tmp_path / "models"
    models.mkdir()
    dags = tmp_path / "dags"
    (dags / "docker_demo").mkdir(parents=True)
    (dags / "docker_demo" / "__init__.py").write_text("")
    (dags / "docker_demo" / "train.py").write_text(TRAIN)
    config = CONFIG.format(image=docker_image, models=models)
    (dags / "docker_trainers.py").write_text(compiled(config).content)
    result = run_dag("docker_trainers", dags, tmp_path / "home")
    assert result.succeeded, result.log[-3000:]
    pushed = {x.task_id: x.value for x in result.xcoms if x.key == "return_value"}
    # 1 - 1 / (depth 4 * sum [1, 2, 3]), parsed from the container's JSON
    assert pushed["train.container"] == {
        "accuracy": pytest.approx(1 - 1 / 24),
        "artifact": "/models/depth_4.json",
    }
    # written in the container, on the mount
    assert json.loads((models / "depth_4.json").read_text()) == {"depth": 4}
    assert pushed["train.worker"] == {"accuracy": 0.5, "artifact": "worker"}
    winner = {x.task_id: x.value for x in result.xcoms if x.key == "best_model"}
    assert winner["choose"]["task_id"] == "train.container"
    assert winner["choose"]["params"] == {"depth": 4}
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"ancestor={docker_image}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout == ""  # auto_remove="success" removed the container


GPU_CONFIG = """\
dag:
  dag_id: on_gpus
  start_date: 2024-01-01
download:
  task_id: fetch
  bash_command: echo ready
trainers:
  group_id: train
  runtime:
    docker:
      image: {image}
      command: [python3, /app/train.py]
      gpus: 1
  models:
    - task_id: a
chooser:
  task_id: choose
"""


@pytest.mark.airflow
def test_check_names_the_provider_a_runtime_needs_when_it_is_missing(tmp_path):
    """A real import of a provider not installed here, in the installed Airflow."""
    missing = "airflow.providers.singularity.operators.singularity"
    message, _ = check_child._import(missing, str(tmp_path), 120.0)
    assert message == (
        f"cannot import {missing}: the provider apache-airflow-providers-singularity"
        " is not installed in this Airflow; install it where the DAG runs (pip install"
        " apache-airflow-providers-singularity)"
    )
    docker = "airflow.providers.docker.operators.nothing_here"
    assert check_child._missing_provider(docker).endswith(
        "(pip install apache-airflow-providers-docker, or 'dagfactory[docker]',"
        " which pins it)"
    )


@pytest.mark.airflow
def test_check_reports_gpus_the_docker_daemon_cannot_give(tmp_path, docker_image):
    """This daemon has no nvidia runtime: check says so at the gpus line, where the
    DockerOperator of the installed provider took every other argument."""
    (tmp_path / "configs").mkdir()
    config = GPU_CONFIG.format(image=docker_image)
    (tmp_path / "configs" / "on_gpus.yaml").write_text(config)
    assert dagfactory("render", cwd=tmp_path).returncode == 0
    checked = dagfactory("check", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stdout.split() == ["ok", "generated_dags/on_gpus.py", "on_gpus"]
    problems = [line for line in checked.stderr.splitlines() if ": error: " in line]
    assert problems == [
        "configs/on_gpus.yaml:13:13: error: trainers.runtime.docker.gpus: the Docker"
        " daemon at unix://var/run/docker.sock cannot give a container GPUs: its"
        " runtimes are io.containerd.runc.v2, io.containerd.runtime.v1.linux, runc,"
        " not nvidia; install the NVIDIA Container Toolkit on that host (nvidia-ctk"
        " runtime configure --runtime=docker), or remove gpus"
    ]


def test_the_digits_example_in_docker_runs_its_four_trainers_in_docker():
    """examples/docker (outside configs/, which the compatibility run renders on
    Airflows without the docker provider): the same pipeline, trainers in Docker."""
    variant = ROOT / "examples" / "docker" / "digits_classifiers_docker.yaml"
    calls = operator_calls(compiled(variant.read_text()).content)
    trainers = {task: call for task, call in calls.items() if "image" in call}
    assert sorted(trainers) == ["knn", "logistic_regression", "random_forest", "svc"]
    for call in trainers.values():
        assert call["operator"] == "_DockerTrainer"
        assert call["metric_key"] == "'scores'"
        assert call["network_mode"] == "'none'"
    assert calls["prepare_data"]["operator"] == "PythonOperator"
