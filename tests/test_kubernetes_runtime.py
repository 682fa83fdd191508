"""Trainers in Kubernetes pods: what ``runtime: {kubernetes: ...}`` renders, and the
configs validate refuses with the line to fix.

No Kubernetes API server runs here, so the pods are never started: the Airflow tests
load the generated DAG in a real DagBag and build each pod with the operator's own
``build_pod_request_obj()``, as it would send it, checked through the kubernetes
client's models.
"""

from __future__ import annotations

import os

import pytest
from test_render import assert_ruff_clean
from test_runtime import operator_calls

from conftest import airflow_dagbag, compile_yaml, compiled, run_outside

IMAGE = "registry.example.com/ml/train:1.4"
DIGEST = "registry.example.com/ml/train@sha256:" + "0123456789abcdef" * 4

PODS = f"""\
dag:
  dag_id: gpu_pods
  start_date: 2024-01-01
download:
  task_id: fetch
  python_callable: pkg.data:fetch
trainers:
  group_id: train
  xcom_key: scores
  inputs: {{data_path: fetch}}
  runtime:
    kubernetes:
      image: {IMAGE}
      namespace: ml
      cmds: [python, -m, train]
      arguments: ["--run", "{{{{ run_id }}}}"]
      environment: {{MLFLOW_TRACKING_URI: "http://mlflow.ml:5000"}}
      resources:
        requests: {{cpu: "2", memory: 8Gi}}
        limits: {{memory: 16Gi}}
      gpus: 1
      node_selector: {{accelerator: nvidia-l4}}
      tolerations:
        - {{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}
      service_account: trainer
      image_pull_secrets: [registry-credentials]
  models:
    - task_id: resnet
      op_kwargs: {{arch: resnet50, lr: 0.01}}
    - task_id: small
      op_kwargs: {{arch: mobilenet}}
      runtime:
        kubernetes: {{image: "{DIGEST}"}}
    - task_id: local
      python_callable: pkg.models:train
chooser:
  task_id: choose
  metric: accuracy
"""
PULLED = (
    "{% set pulled = ti.xcom_pull(task_ids='fetch') %}"
    "{{ '' if pulled is none else pulled if pulled is string else pulled | tojson }}"
)


def kubernetes_models():
    """The kubernetes client's models, when the kubernetes extra is installed; CI has it."""
    try:
        import airflow.providers.cncf.kubernetes  # noqa: F401
        from kubernetes.client import models
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("the kubernetes extra (cncf.kubernetes provider) is not installed")
    return models


def test_a_kubernetes_runtime_renders_a_pod_operator(tmp_path):
    source = compiled(PODS).content
    calls = operator_calls(source)
    resnet, small = calls["resnet"], calls["small"]
    assert resnet["operator"] == small["operator"] == "KubernetesPodOperator"
    assert resnet["image"] == repr(IMAGE)
    assert resnet["service_account_name"] == "'trainer'"
    assert resnet["container_resources"] == (
        "k8s.V1ResourceRequirements(requests={'cpu': '2', 'memory': '8Gi'},"
        " limits={'memory': '16Gi', 'nvidia.com/gpu': 1})"
    )
    assert resnet["image_pull_secrets"] == (
        "[k8s.V1LocalObjectReference(name='registry-credentials')]"
    )
    for pod in (resnet, small):  # the contract: the sidecar's JSON, under scores too
        assert pod["do_xcom_push"] == "True"
        assert pod["on_finish_action"] == "'delete_pod'"
        assert pod["post_execute"] == "_push_metric"
    # the model's own runtime wins whole: only its image, its op_kwargs and inputs
    assert small["image"] == repr(DIGEST)
    assert "container_resources" not in small and "namespace" not in small
    assert small["env_vars"] == (f"{{'arch': 'mobilenet', 'data_path': {PULLED!r}}}")
    # a model's own python_callable wins over the group's pod: it runs in the worker
    assert calls["local"]["operator"] == "PythonOperator"
    assert 'key="scores"' in source.split("def _push_metric", 1)[1]
    (tmp_path / "gpu_pods.py").write_text(source)
    assert_ruff_clean(tmp_path)


def test_with_the_default_xcom_key_the_operator_s_own_push_is_the_metric():
    source = compiled(
        PODS.replace("  xcom_key: scores\n", "").replace(
            "    - task_id: local\n      python_callable: pkg.models:train\n", ""
        )
    ).content
    assert "_push_metric" not in source
    assert "def _train(" not in source  # no trainer runs in the worker
    assert operator_calls(source)["resnet"]["do_xcom_push"] == "True"


@pytest.mark.parametrize(
    ("replacement", "problem"),
    [
        (
            (f"image: {IMAGE}", "image: registry.example.com/ML/Train:1.4"),
            "c.yaml:13:14: error: trainers.runtime.kubernetes.image:"
            " 'registry.example.com/ML/Train:1.4' is not an image reference"
            " (repository names are lower case)",
        ),
        (
            (f"image: {IMAGE}", "image: 'train:'"),
            "error: trainers.runtime.kubernetes.image: 'train:' is not an image reference",
        ),
        (
            ("gpus: 1", "gpus: 1.5"),
            "c.yaml:21:13: error: trainers.runtime.kubernetes.gpus: 1.5 GPUs:"
            " Kubernetes schedules whole GPUs only",
        ),
        (
            ("gpus: 1", "gpus: 0"),
            "error: trainers.runtime.kubernetes.gpus: expected a number of at least 1",
        ),
        (
            ("limits: {memory: 16Gi}", "limits: {nvidia.com/gpu: 2}"),
            "error: trainers.runtime.kubernetes.resources.limits.nvidia.com/gpu: GPUs are"
            " asked for twice",
        ),
        (
            (
                "limits: {memory: 16Gi}\n      gpus: 1\n",
                "limits: {nvidia.com/gpu: '0.5'}\n",
            ),
            "0.5' GPUs: Kubernetes schedules whole GPUs only",
        ),
        (
            (
                "      python_callable: pkg.models:train\n",
                "      python_callable: pkg.models:train\n"
                "      runtime: {python: /opt/py/bin/python, gpus: 1}\n",
            ),
            "error: trainers.models[2].runtime.gpus: a python runtime runs on the"
            " Airflow worker's own machine and cannot ask for GPUs",
        ),
        (
            ("  inputs: {data_path: fetch}\n", "  bash_command: echo 1\n"),
            "c.yaml:10:3: error: trainers.bash_command: a kubernetes runtime runs its"
            " image's command, not bash_command",
        ),
        (
            ("  group_id: train\n", "  group_id: train\n  mapped: true\n"),
            "error: trainers.mapped: mapped trainers are one python task",
        ),
        (
            ("      resources:\n", "      namespace: ML_team\n      resources:\n"),
            "trainers.runtime.kubernetes.namespace",
        ),
        (
            ('requests: {cpu: "2"', "requests: {cpu: two"),
            "trainers.runtime.kubernetes.resources.requests.cpu",
        ),
    ],
)
def test_validate_refuses_a_pod_it_cannot_honour(replacement, problem):
    old, new = replacement
    assert old in PODS
    problems = compile_yaml(PODS.replace(old, new))
    assert isinstance(problems, list)
    assert any(problem in line for line in problems), problems


@pytest.mark.airflow
def test_the_gpu_trainer_s_pod_is_built_by_the_operator_itself(tmp_path):
    """The DAG loads in a real DagBag; KubernetesPodOperator.build_pod_request_obj()
    of the real task builds the pod it would create (dry_run: nothing asks a cluster)."""
    k8s = kubernetes_models()

    (tmp_path / "gpu_pods.py").write_text(compiled(PODS).content)
    dagbag = airflow_dagbag(tmp_path)
    assert dagbag.import_errors == {}
    task = dagbag.dags["gpu_pods"].get_task("train.resnet")
    pod = task.build_pod_request_obj(dry_run=True)
    assert isinstance(pod, k8s.V1Pod)
    assert pod.metadata.namespace == "ml"
    trainer, sidecar = pod.spec.containers
    assert trainer.image == IMAGE
    assert trainer.command == ["python", "-m", "train"]
    assert trainer.args == ["--run", "{{ run_id }}"]  # Airflow renders it at run time
    assert trainer.resources == k8s.V1ResourceRequirements(
        requests={"cpu": "2", "memory": "8Gi"},
        limits={"memory": "16Gi", "nvidia.com/gpu": 1},
    )
    assert trainer.env == [
        k8s.V1EnvVar(name="MLFLOW_TRACKING_URI", value="http://mlflow.ml:5000"),
        k8s.V1EnvVar(name="arch", value="resnet50"),
        k8s.V1EnvVar(name="lr", value="0.01"),
        k8s.V1EnvVar(name="data_path", value=PULLED),
    ]
    assert pod.spec.node_selector == {"accelerator": "nvidia-l4"}
    assert pod.spec.tolerations == [
        k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    ]
    assert pod.spec.service_account_name == "trainer"
    assert pod.spec.image_pull_secrets == [
        k8s.V1LocalObjectReference(name="registry-credentials")
    ]
    assert pod.spec.restart_policy == "Never"
    # the XCom sidecar: it shares /airflow/xcom with the trainer and reads return.json
    assert sidecar.name == "airflow-xcom-sidecar"
    assert [m.mount_path for m in trainer.volume_mounts] == ["/airflow/xcom"]
    assert [m.mount_path for m in sidecar.volume_mounts] == ["/airflow/xcom"]
    assert task.do_xcom_push is True and task.on_finish_action.value == "delete_pod"
    # the digest-pinned model: its own image, no GPU, the same sidecar
    small = dagbag.dags["gpu_pods"].get_task("train.small")
    built = small.build_pod_request_obj(dry_run=True)
    assert built.spec.containers[0].image == DIGEST
    assert built.spec.containers[0].resources is None
    assert built.spec.containers[1].name == "airflow-xcom-sidecar"


@pytest.mark.airflow
def test_check_names_the_missing_provider_at_the_runtime_s_line(wheel_venv, tmp_path):
    """The wheel installed with [airflow] only, as a user without the kubernetes extra."""
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "gpu_pods.yaml").write_text(PODS)
    package = project / "generated_dags" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data.py").write_text("def fetch():\n    return '/data'\n")
    (package / "models.py").write_text("def train(data_path):\n    return 1.0\n")
    dagfactory = str(wheel_venv / "bin" / "dagfactory")
    rendered = run_outside([dagfactory, "render"], project)
    assert rendered.returncode == 0, rendered.stderr
    checked = run_outside([dagfactory, "check"], project)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    errors = [line for line in checked.stderr.splitlines() if ": error: " in line]
    missing = (
        ": cannot import airflow.providers.cncf.kubernetes.operators.pod: the provider"
        " apache-airflow-providers-cncf-kubernetes is not installed in this Airflow;"
        " install it where the DAG runs (pip install"
        " apache-airflow-providers-cncf-kubernetes, or 'dagfactory[kubernetes]',"
        " which pins it)"
    )
    assert [line.split(missing)[0] for line in errors if missing in line] == [
        "configs/gpu_pods.yaml:13:7: error: trainers.runtime.kubernetes",
        "configs/gpu_pods.yaml:33:21: error: trainers.models[1].runtime.kubernetes",
    ], checked.stderr
    assert "0 DAGs loaded, 1 import error" in checked.stderr  # the DagBag's own word
