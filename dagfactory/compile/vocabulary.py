"""The spec's vocabulary: its defaults, limits, key lists and the rules that read them.

One home, imported by :mod:`.validate` (which checks a config against these rules) and
by :mod:`.spec` (which applies them), so the two can never disagree. The JSON Schema
states the same defaults and limits for editors; a test proves it says what this says.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dagfactory.compile.text import UserText

# What a key means when a config leaves it out, by spec path.
DEFAULTS: dict[tuple[str, str], Any] = {
    ("dag", "catchup"): False,
    ("trainers", "xcom_key"): "return_value",
    ("trainers", "mapped"): False,
    ("trainers", "task_id_pattern"): "model_{index}",
    ("trainers", "mapped_task_id"): "train",
    ("chooser", "mode"): "max",
    ("chooser", "push_key"): "best_model",
    ("chooser", "branch_task_id"): "check_threshold",
    ("registry", "task_id"): "register_model",
    ("approval", "task_id"): "approve",
    ("approval", "subject"): "Publish {{ winner.task_id }} ({{ winner.value }})?",
}
DEFAULT_XCOM_KEY = DEFAULTS["trainers", "xcom_key"]
DEFAULT_TASK_ID_PATTERN = DEFAULTS["trainers", "task_id_pattern"]
DEFAULT_MAPPED_TASK_ID = DEFAULTS["trainers", "mapped_task_id"]
DEFAULT_BRANCH_TASK_ID = DEFAULTS["chooser", "branch_task_id"]
DEFAULT_REGISTRY_TASK_ID = DEFAULTS["registry", "task_id"]
# The alias registry.mlflow moves to each version it registers.
DEFAULT_ALIAS = "champion"
DEFAULT_APPROVAL_TASK_ID = DEFAULTS["approval", "task_id"]

# A count or matrix far larger would make a file no scheduler can load.
MAX_TRAINERS = 10_000

DURATION_KEYS = (
    "retry_delay",
    "max_retry_delay",
    "execution_timeout",
    "dagrun_timeout",
)
# Operator arguments a step may set, in the order they are rendered.
OPERATOR_SETTINGS = (
    "queue",
    "pool",
    "pool_slots",
    "executor",
    "retries",
    "retry_delay",
    "execution_timeout",
    "priority_weight",
    "trigger_rule",
)
# Param keywords a run parameter may set (the schema allows no others).
PARAM_KEYWORDS = (
    "default",
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
)
# A trainer's ``runtime`` keys, in the order they are rendered as its operator's arguments.
RUNTIME_ARGUMENTS = (
    "python",
    "requirements",
    "venv_cache_path",
    "system_site_packages",
)
# A kubernetes runtime's keys that are KubernetesPodOperator arguments as they are
# written, with the argument's name, in the order they are rendered (resources, gpus,
# environment and image_pull_secrets are built by the spec).
KUBERNETES_ARGUMENTS = {
    "image": "image",
    "namespace": "namespace",
    "cmds": "cmds",
    "arguments": "arguments",
    "node_selector": "node_selector",
    "tolerations": "tolerations",
    "service_account": "service_account_name",
    "image_pull_policy": "image_pull_policy",
    "labels": "labels",
    "annotations": "annotations",
    "kubernetes_conn_id": "kubernetes_conn_id",
    "in_cluster": "in_cluster",
    "startup_timeout_seconds": "startup_timeout_seconds",
}
# The extended resource a GPU is requested as (NVIDIA's device plugin).
GPU_RESOURCE = "nvidia.com/gpu"
# A docker runtime's keys rendered as DockerOperator arguments of the same name, in
# that order (image, environment, mounts and gpus are rendered apart).
DOCKER_ARGUMENTS = ("command", "network_mode", "docker_url", "user", "mem_limit")
# When a trainer's container is removed unless its runtime says: after it succeeded, so
# that exited containers do not pile up on the Docker host and a failed one stays.
DOCKER_AUTO_REMOVE = "success"
# What a container in Docker gets first: Python's output unbuffered, so that what it
# prints to stdout and stderr reaches Docker in the order it was printed, and the
# metric it prints last is the last line (its runtime's environment may override it).
DOCKER_ENVIRONMENT = {"PYTHONUNBUFFERED": "1"}
CALLBACK_KEYS = ("on_success_callback", "on_failure_callback")
# Keys whose value is a ``module:function`` a task or Airflow imports.
CALLABLE_KEYS = ("python_callable", *CALLBACK_KEYS)

# Airflow 3 template variables that a run without a logical date (a manual run from
# the UI or the REST API) does not define, and what to write instead. `run_after`
# (when the run was due) is set on every run.
LOGICAL_DATE_TEMPLATES = {
    "ds": "dag_run.run_after | ds",
    "ds_nodash": "dag_run.run_after | ds_nodash",
    "ts": "dag_run.run_after | ts",
    "ts_nodash": "dag_run.run_after | ts_nodash",
    "ts_nodash_with_tz": "dag_run.run_after | ts_nodash_with_tz",
    "logical_date": "dag_run.run_after",
    "data_interval_start": "dag_run.run_after",
    "data_interval_end": "dag_run.run_after",
    "prev_data_interval_start_success": "prev_start_date_success",
    "prev_data_interval_end_success": "prev_end_date_success",
}

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def is_duration_text(value: Any) -> bool:
    """Whether ``value`` is a duration such as ``5m`` (a schedule may be one)."""
    return (
        isinstance(value, str)
        and value[:1].isdigit()
        and bool(_DURATION.fullmatch(value))
    )


def parse_duration(value: int | str) -> timedelta:
    """``300``, ``"30s"``, ``"5m"``, ``"1h30m"`` or ``"2d"`` as a timedelta."""
    if isinstance(value, int):
        return timedelta(seconds=value)
    days, hours, minutes, seconds = (
        int(part or 0) for part in _DURATION.fullmatch(value).groups()
    )
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_date(value: str, zone: str | None = None) -> datetime:
    """An ISO date or date-time as an aware datetime.

    A value with an offset becomes UTC; one without is read in ``zone`` (default UTC).
    """
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    return moment.replace(tzinfo=ZoneInfo(zone) if zone else UTC)


def as_text(value: Any) -> str:
    """A keyword argument as text: for bash trainers' environment and matrix task ids."""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else repr(value)


def matrix_size(matrix: dict[str, Any]) -> int:
    """How many trainers a matrix makes (lists only: other values are schema errors)."""
    return math.prod(
        len(values) for values in matrix.values() if isinstance(values, list)
    )


def matrix_combinations(matrix: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the matrix lists, in the order they are written."""
    keys = list(matrix)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*matrix.values())
    ]


def matrix_task_ids(combinations: list[dict[str, Any]]) -> list[str]:
    """Readable, unique task ids such as ``lr_0.1_depth_3`` for matrix trainers."""
    ids: list[str] = []
    taken: set[str] = set()  # ids as a set too: a large matrix stays linear
    for combination in combinations:
        text = "_".join(f"{key}_{as_text(value)}" for key, value in combination.items())
        base = _UNSAFE_ID_CHARS.sub("_", text)[:180]
        task_id, suffix = base, 2
        while task_id in taken:
            task_id, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(task_id)
        ids.append(UserText(task_id))
    return ids


def trainer_models(trainers: dict[str, Any]) -> list[dict[str, Any]]:
    """The trainers a ``trainers`` section describes, as model mappings (listed or generated)."""
    if "count" in trainers:
        pattern = trainers.get("task_id_pattern", DEFAULT_TASK_ID_PATTERN)
        return [
            {"task_id": UserText(pattern.replace("{index}", str(index)))}
            for index in range(1, trainers["count"] + 1)
        ]
    if "matrix" in trainers:
        combinations = matrix_combinations(trainers["matrix"])
        return [
            {"task_id": task_id, "op_kwargs": combination}
            for task_id, combination in zip(
                matrix_task_ids(combinations), combinations, strict=True
            )
        ]
    return trainers["models"]


def runs_kubernetes(step: dict[str, Any]) -> bool:
    """Whether a step's runtime is a Kubernetes pod, whose image holds its command."""
    runtime = step.get("runtime")
    return isinstance(runtime, dict) and "kubernetes" in runtime


def has_command(step: dict[str, Any]) -> bool:
    """Whether a step (or the trainers group) names its own command: a kubernetes
    runtime is one (its container's)."""
    return "python_callable" in step or "bash_command" in step or runs_kubernetes(step)


def runs_bash(model: dict[str, Any], trainers: dict[str, Any]) -> bool:
    """Whether a trainer runs a bash command: a model's own command wins over the group's,
    and a trainer in Docker runs its image's."""
    if docker_of(model, trainers) is not None:
        return False
    return "bash_command" in (model if has_command(model) else trainers)


def docker_of(model: dict[str, Any], trainers: dict[str, Any]) -> dict[str, Any] | None:
    """The docker runtime a trainer runs in, or None: its own runtime wins whole; the
    group's is for the trainers that run no bash command of their own."""
    if "runtime" in model:
        runtime = model["runtime"]
    elif "bash_command" in model:
        return None
    else:
        runtime = trainers.get("runtime")
    docker = runtime.get("docker") if isinstance(runtime, dict) else None
    return docker if isinstance(docker, dict) else None


# -- what flows between trainers, the chooser and publish -------------------------------

# The winner's fields a publish or on_pass step may take (python: those its signature
# accepts by name; bash: as WINNER_<FIELD> environment variables).
WINNER_FIELDS = ("task_id", "value", "metrics", "artifact", "params")
# The XCom key under which a failing python trainer leaves its error for the chooser.
ERROR_XCOM_KEY = "dagfactory_error"


def min_success_count(value: int | str, trainers: int) -> int:
    """``chooser.min_success`` as a count: ``3`` as it is, ``"75%"`` of ``trainers`` rounded up."""
    if isinstance(value, str):
        return max(1, math.ceil(int(value.rstrip("%")) * trainers / 100))
    return value


def publish_gated(data: dict[str, Any]) -> bool:
    """Whether publish waits for the winner to pass the threshold (``when: passed``).

    The default with a threshold: publishing a model that failed the gate is the bug
    this key fixes. Without a threshold there is no gate (validate refuses ``passed``).
    """
    chooser, publish = data.get("chooser") or {}, data.get("publish")
    return (
        publish is not None
        and "threshold" in chooser
        and publish.get("when", "passed") == "passed"
    )


def registry_gated(data: dict[str, Any]) -> bool:
    """Whether the registry task hangs off the threshold branch itself.

    With a threshold it registers only a winner that passes; an approval that follows
    the branch (publish waits for the threshold) stands between them instead, and the
    registry task then follows the approval alone.
    """
    chooser = data.get("chooser") or {}
    return (
        "registry" in data
        and "threshold" in chooser
        and not ("approval" in data and publish_gated(data))
    )
