"""The inputs the benchmarks measure: variations of configs/xcom_dag.yaml, and the same DAGs
written by hand and as astronomer dag-factory YAML, so every variant describes one DAG.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "configs" / "xcom_dag.yaml"
TRAINERS_MODULE = "ml_demo.models"


def variation(index: int, trainers: int = 3, module: str = TRAINERS_MODULE) -> dict:
    """Config number ``index``: xcom_dag with its own id, description, command and trainers."""
    spec = yaml.safe_load(TEMPLATE.read_text("utf-8"))
    dag_id = f"xcom_dag_{index:05d}"
    spec["dag"]["dag_id"] = dag_id
    spec["dag"]["description"] = f"Variation {index} of the classic XCom example"
    spec["download"]["bash_command"] = f"sleep {index % 5}"
    spec["trainers"]["python_callable"] = f"{module}:train_model"
    spec["trainers"]["models"] = [
        {"task_id": f"training_model_{n}", "op_kwargs": {"seed": index + n}}
        for n in range(trainers)
    ]
    return spec


def write_configs(
    folder: Path, count: int, trainers: int = 3, module: str = TRAINERS_MODULE
) -> Path:
    """``count`` configs in ``folder``, as a person would write them (block YAML)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        spec = variation(index, trainers, module)
        text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)
        (folder / f"{spec['dag']['dag_id']}.yaml").write_text(text, "utf-8")
    return folder


HANDWRITTEN = """\
from datetime import datetime, timezone

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TaskGroup


def train(seed, ti):
    from {module} import train_model

    ti.xcom_push(key="model_accuracy", value=train_model(seed=seed))


def choose(task_ids, ti):
    metrics = ti.xcom_pull(task_ids=task_ids, key="model_accuracy")
    task_id, value = max(zip(task_ids, metrics), key=lambda pair: pair[1])
    winner = {{"task_id": task_id, "value": value}}
    ti.xcom_push(key="best_model", value=winner)
    return winner


with DAG(
    dag_id="{dag_id}",
    description="{description}",
    schedule="@daily",
    start_date=datetime(2020, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["ml", "xcom"],
):
    download = BashOperator(task_id="downloading_data", bash_command="{bash_command}")
    with TaskGroup(group_id="processing_tasks") as trainers:
{trainers}
    chooser = PythonOperator(
        task_id="task_4",
        python_callable=choose,
        op_kwargs={{"task_ids": {task_ids}}},
    )

    download >> trainers >> chooser
"""

HANDWRITTEN_TRAINER = """\
        PythonOperator(
            task_id="{task_id}",
            python_callable=train,
            op_kwargs={{"seed": {seed}}},
        )"""


def write_handwritten(
    folder: Path, count: int, trainers: int = 3, module: str = TRAINERS_MODULE
) -> Path:
    """The same DAGs as :func:`write_configs`, written directly in Python."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        spec = variation(index, trainers, module)
        models = spec["trainers"]["models"]
        source = HANDWRITTEN.format(
            module=module,
            dag_id=spec["dag"]["dag_id"],
            description=spec["dag"]["description"],
            bash_command=spec["download"]["bash_command"],
            trainers="\n".join(
                HANDWRITTEN_TRAINER.format(
                    task_id=m["task_id"], seed=m["op_kwargs"]["seed"]
                )
                for m in models
            ),
            task_ids=[f"processing_tasks.{m['task_id']}" for m in models],
        )
        (folder / f"{spec['dag']['dag_id']}.py").write_text(source, "utf-8")
    return folder


ASTRO_CALLABLES = '''\
"""Task callables for the astronomer dag-factory variant (imported when its YAML loads)."""


def train(seed, ti):
    from {module} import train_model

    ti.xcom_push(key="model_accuracy", value=train_model(seed=seed))


def choose(task_ids, ti):
    metrics = ti.xcom_pull(task_ids=task_ids, key="model_accuracy")
    task_id, value = max(zip(task_ids, metrics), key=lambda pair: pair[1])
    winner = {{"task_id": task_id, "value": value}}
    ti.xcom_push(key="best_model", value=winner)
    return winner
'''

ASTRO_LOADER = """\
# The loader file astronomer dag-factory documents: it builds every DAG of the YAML files.
# The following line is here so that Airflow's safe mode parses this file:
# from airflow import DAG
from pathlib import Path

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), dags_folder=str(Path(__file__).parent / "yaml"))
"""


def write_astro(
    folder: Path, count: int, trainers: int = 3, module: str = TRAINERS_MODULE
) -> Path:
    """The same DAGs as astronomer dag-factory YAML, plus its loader file.

    The YAML lives in ``yaml/`` next to the loader; Airflow's DagBag only parses ``.py``.
    """
    (folder / "yaml").mkdir(parents=True, exist_ok=True)
    (folder / "astro_callables.py").write_text(
        ASTRO_CALLABLES.format(module=module), "utf-8"
    )
    (folder / "load_dags.py").write_text(ASTRO_LOADER, "utf-8")
    for index in range(count):
        spec = variation(index, trainers, module)
        models = spec["trainers"]["models"]
        tasks = {
            "downloading_data": {
                "operator": "airflow.providers.standard.operators.bash.BashOperator",
                "bash_command": spec["download"]["bash_command"],
            }
        }
        for model in models:
            tasks[model["task_id"]] = {
                "operator": "airflow.providers.standard.operators.python.PythonOperator",
                "python_callable": "astro_callables.train",
                "op_kwargs": {"seed": model["op_kwargs"]["seed"]},
                "task_group_name": "processing_tasks",
                "dependencies": ["downloading_data"],
            }
        tasks["task_4"] = {
            "operator": "airflow.providers.standard.operators.python.PythonOperator",
            "python_callable": "astro_callables.choose",
            "op_kwargs": {
                "task_ids": [f"processing_tasks.{m['task_id']}" for m in models]
            },
            "dependencies": ["processing_tasks"],
        }
        document = {
            spec["dag"]["dag_id"]: {
                "description": spec["dag"]["description"],
                "schedule": "@daily",
                "start_date": "2020-01-01",
                "catchup": False,
                "tags": ["ml", "xcom"],
                "task_groups": {"processing_tasks": {"tooltip": "trainers"}},
                "tasks": tasks,
            }
        }
        text = yaml.safe_dump(document, sort_keys=False)
        (folder / "yaml" / f"{spec['dag']['dag_id']}.yml").write_text(text, "utf-8")
    return folder


HEAVY_MODULE = '''\
"""A trainer module whose import costs one second, like a heavy ML framework."""

import time

time.sleep(1)


def train_model(**kwargs):
    return 1.0
'''


def write_heavy_module(folder: Path, name: str) -> None:
    """A module ``name`` in ``folder`` that sleeps one second when imported."""
    (folder / f"{name}.py").write_text(textwrap.dedent(HEAVY_MODULE), "utf-8")
