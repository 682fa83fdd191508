"""The normalised pipeline: what the templates render, every default applied, every type final.

Built only from a config that :func:`dagfactory.validate.validate` accepted.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from dagfactory.text import UserText

if TYPE_CHECKING:
    from dagfactory.loader import Document

DEFAULT_XCOM_KEY = "return_value"
DEFAULT_TASK_ID_PATTERN = "model_{index}"
DEFAULT_MAPPED_TASK_ID = "train"
DEFAULT_BRANCH_TASK_ID = "check_threshold"
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
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Step:
    """A task running a bash command or a ``module:function`` with keyword arguments."""

    task_id: str
    bash_command: str | None = None
    python_callable: str | None = None
    op_kwargs: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def bash_env(self) -> dict[str, str]:
        """A bash step's keyword arguments, as environment variables (text)."""
        return {
            key: UserText(_env_text(value)) for key, value in self.op_kwargs.items()
        }


@dataclass(frozen=True)
class Trainers:
    """The TaskGroup of trainers, all pushing their metric under ``xcom_key``."""

    group_id: str
    xcom_key: str
    models: tuple[Step, ...]
    mapped_task_id: str | None = None  # set when rendered with dynamic task mapping

    @property
    def task_ids(self) -> list[str]:
        """Full task ids, as Airflow names tasks inside a group."""
        return [UserText(f"{self.group_id}.{model.task_id}") for model in self.models]

    @property
    def pull_task_ids(self) -> str | list[str]:
        """What the chooser pulls from: the one mapped task, or every trainer."""
        if self.mapped_task_id:
            return UserText(f"{self.group_id}.{self.mapped_task_id}")
        return self.task_ids


@dataclass(frozen=True)
class Chooser:
    """Pulls every trainer's metric, keeps the best by ``mode`` and pushes it under ``push_key``."""

    task_id: str
    xcom_key: str
    mode: Literal["max", "min"]
    push_key: str
    metric: str | None = None
    threshold: float | None = None
    branch_task_id: str = DEFAULT_BRANCH_TASK_ID
    on_pass: Step | None = None
    on_fail: Step | None = None


@dataclass(frozen=True)
class DagSettings:
    dag_id: str
    description: str | None
    schedule: str | timedelta | list[str] | None
    start_date: datetime
    catchup: bool
    tags: tuple[str, ...]
    default_args: dict[str, Any]
    end_date: datetime | None = None
    max_active_runs: int | None = None
    max_active_tasks: int | None = None
    dagrun_timeout: timedelta | None = None
    params: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # name -> Param keywords
    doc_md: str | None = None
    owner_links: dict[str, str] = field(default_factory=dict)
    callbacks: dict[str, str] = field(
        default_factory=dict
    )  # argument name -> module:function


@dataclass(frozen=True)
class Pipeline:
    """One config, normalised: the single input of the renderer."""

    source: str
    dag: DagSettings
    downloads: tuple[Step, ...]
    trainers: Trainers
    chooser: Chooser
    publish: Step | None = None

    @property
    def steps(self) -> list[Step]:
        """Every step outside the trainers group."""
        extra = [self.chooser.on_pass, self.chooser.on_fail, self.publish]
        return [*self.downloads, *(step for step in extra if step is not None)]

    @property
    def operators(self) -> set[str]:
        """The operator classes the DAG file needs to import."""
        steps = [*self.steps, *self.trainers.models]
        used = {"PythonOperator"}
        if any(step.bash_command is not None for step in steps):
            used.add("BashOperator")
        if self.chooser.threshold is not None:
            used.add("BranchPythonOperator")
        return used

    @property
    def python_trainers(self) -> bool:
        """Whether any trainer calls a ``module:function`` (and so needs ``_train``)."""
        return any(model.python_callable for model in self.trainers.models)

    @property
    def python_steps(self) -> bool:
        """Whether a step outside the trainers group calls a ``module:function``."""
        return any(step.python_callable for step in self.steps)

    @property
    def uses_timedelta(self) -> bool:
        values = [
            self.dag.schedule,
            self.dag.dagrun_timeout,
            *self.dag.default_args.values(),
            *(
                value
                for step in [*self.steps, *self.trainers.models]
                for value in step.settings.values()
            ),
        ]
        return any(isinstance(value, timedelta) for value in values)


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
    for combination in combinations:
        text = "_".join(
            f"{key}_{_env_text(value)}" for key, value in combination.items()
        )
        base = _UNSAFE_ID_CHARS.sub("_", text)[:180]
        task_id, suffix = base, 2
        while task_id in ids:
            task_id, suffix = f"{base}_{suffix}", suffix + 1
        ids.append(UserText(task_id))
    return ids


def trainer_specs(trainers: dict[str, Any]) -> list[dict[str, Any]]:
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


def build_pipeline(doc: Document) -> Pipeline:
    """Normalise a validated config into a :class:`Pipeline`."""
    data = doc.data
    dag, trainers, chooser = data["dag"], data["trainers"], data["chooser"]
    downloads = (
        data["download"] if isinstance(data["download"], list) else [data["download"]]
    )
    xcom_key = trainers.get("xcom_key", DEFAULT_XCOM_KEY)
    zone = dag.get("timezone")
    group_defaults = {
        "python_callable": trainers.get("python_callable"),
        "bash_command": trainers.get("bash_command"),
        "op_kwargs": trainers.get("op_kwargs", {}),
        **{key: trainers[key] for key in OPERATOR_SETTINGS if key in trainers},
    }
    models = tuple(
        _step(_with_group_defaults(model, group_defaults))
        for model in trainer_specs(trainers)
    )
    return Pipeline(
        source=UserText(doc.name),
        dag=DagSettings(
            dag_id=dag["dag_id"],
            description=dag.get("description"),
            schedule=_schedule(dag.get("schedule")),
            start_date=parse_date(dag["start_date"], zone),
            end_date=parse_date(dag["end_date"], zone) if "end_date" in dag else None,
            catchup=dag.get("catchup", False),
            tags=tuple(dag.get("tags", ())),
            default_args=_with_durations(dag.get("default_args", {})),
            max_active_runs=dag.get("max_active_runs"),
            max_active_tasks=dag.get("max_active_tasks"),
            dagrun_timeout=_optional_duration(dag.get("dagrun_timeout")),
            params={
                name: _param(value) for name, value in dag.get("params", {}).items()
            },
            doc_md=_doc_md(dag, doc),
            owner_links=dag.get("owner_links", {}),
            callbacks={
                key: dag[key]
                for key in ("on_success_callback", "on_failure_callback")
                if key in dag
            },
        ),
        downloads=tuple(_step(step) for step in downloads),
        trainers=Trainers(
            group_id=trainers["group_id"],
            xcom_key=xcom_key,
            models=models,
            mapped_task_id=(
                trainers.get("mapped_task_id", DEFAULT_MAPPED_TASK_ID)
                if trainers.get("mapped")
                else None
            ),
        ),
        chooser=Chooser(
            task_id=chooser["task_id"],
            xcom_key=chooser.get("xcom_key", xcom_key),
            mode=chooser.get("mode", "max"),
            push_key=chooser.get("push_key", "best_model"),
            metric=chooser.get("metric"),
            threshold=chooser.get("threshold"),
            branch_task_id=chooser.get("branch_task_id", DEFAULT_BRANCH_TASK_ID),
            on_pass=_step(chooser["on_pass"]) if "on_pass" in chooser else None,
            on_fail=_step(chooser["on_fail"]) if "on_fail" in chooser else None,
        ),
        publish=_step(data["publish"]) if "publish" in data else None,
    )


def doc_md_path(doc: Document) -> Path | None:
    """Where ``dag.doc_md_file`` points, relative to the config's folder."""
    dag = doc.data.get("dag")
    name = dag.get("doc_md_file") if isinstance(dag, dict) else None
    return Path(doc.name).parent / name if isinstance(name, str) else None


def _doc_md(dag: dict[str, Any], doc: Document) -> str | None:
    path = doc_md_path(doc)
    return UserText(path.read_text("utf-8")) if path else dag.get("doc_md")


def runs_bash(model: dict[str, Any], trainers: dict[str, Any]) -> bool:
    """Whether a trainer runs a bash command: a model's own command wins over the group's."""
    return "bash_command" in (model if has_command(model) else trainers)


def has_command(step: dict[str, Any]) -> bool:
    """Whether a step (or the trainers group) names its own command."""
    return "python_callable" in step or "bash_command" in step


def _with_group_defaults(
    model: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    merged = {key: value for key, value in defaults.items() if value is not None}
    if has_command(model):
        merged.pop("python_callable", None)
        merged.pop("bash_command", None)
    merged.update(model)
    merged["op_kwargs"] = {**defaults["op_kwargs"], **model.get("op_kwargs", {})}
    return merged


def _step(data: dict[str, Any]) -> Step:
    return Step(
        task_id=data["task_id"],
        bash_command=data.get("bash_command"),
        python_callable=data.get("python_callable"),
        op_kwargs=data.get("op_kwargs", {}),
        settings=_with_durations(
            {key: data[key] for key in OPERATOR_SETTINGS if key in data}
        ),
    )


def _with_durations(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: parse_duration(value) if key in DURATION_KEYS else value
        for key, value in values.items()
    }


def _optional_duration(value: int | str | None) -> timedelta | None:
    return None if value is None else parse_duration(value)


def _schedule(value: Any) -> str | timedelta | list[str] | None:
    if isinstance(value, str) and value[:1].isdigit() and _DURATION.fullmatch(value):
        return parse_duration(value)
    return value


def _param(value: Any) -> dict[str, Any]:
    """``Param`` keywords: a mapping as written, or a plain value as its default."""
    if not isinstance(value, dict):
        return {"default": value}
    return {key: value[key] for key in PARAM_KEYWORDS if key in value}


def _env_text(value: Any) -> str:
    """A keyword argument as text: for bash trainers' environment and matrix task ids."""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else repr(value)
