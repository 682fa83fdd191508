"""The typed spec of one pipeline: every default applied, every type final, every decision made.

Built by :func:`build_spec` only from a document that :mod:`.validate` accepted, and
the single input of :mod:`.render`: the template lays out what is decided here (which
helper each task runs and with which arguments, which imports the file needs) and
decides nothing itself. Reads no file: what a config brought in from outside (a
``doc_md_file``) is already on its document.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from dagfactory.compile.text import UserText
from dagfactory.compile.vocabulary import (
    CALLBACK_KEYS,
    DEFAULTS,
    DURATION_KEYS,
    OPERATOR_SETTINGS,
    PARAM_KEYWORDS,
    WINNER_FIELDS,
    as_text,
    has_command,
    is_duration_text,
    min_success_count,
    parse_date,
    parse_duration,
    publish_gated,
    trainer_models,
)

if TYPE_CHECKING:
    from dagfactory.compile.load import Document

# Names a generated file defines or imports, which no task variable may take.
_TAKEN_NAMES = frozenset(
    {
        "importlib",
        "math",
        "timedelta",
        "partial",
        "pendulum",
        "BashOperator",
        "BranchPythonOperator",
        "PythonOperator",
        "DAG",
        "Asset",
        "Param",
        "TaskGroup",
        "AirflowFailException",
        "trainers",
        *dir(builtins),
    }
)
_PYTHON_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Binding:
    """The variable a task is bound to in the generated file.

    It is the task id, as reviewers and ruff's AIR001 expect, when the task id is a
    plain Python name that is free; otherwise the task's role (``download``,
    ``chooser``...), and the line says why it differs. Only such a checked name is
    ever printed into code outside a literal.
    """

    name: str
    is_task_id: bool

    @property
    def comment(self) -> str:
        """What follows the opening line: nothing, or why ruff's AIR001 may not apply."""
        return (
            ""
            if self.is_task_id
            else "  # noqa: AIR001 (the task id is not a free Python name)"
        )


@dataclass(frozen=True)
class Step:
    """A task running a bash command, or a generated helper (``runner``) that calls user code.

    ``runner_kwargs`` are the helper's keyword arguments: the ``module:function`` to
    call, its own keyword arguments and whatever else that helper needs.
    """

    task_id: str
    bash_command: str | None = None
    python_callable: str | None = None
    op_kwargs: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    runner: str = "_call"
    runner_kwargs: dict[str, Any] = field(default_factory=dict)
    binding: Binding | None = None  # None inside the trainers group or a list
    inputs: dict[str, str] = field(default_factory=dict)  # NAME -> download task_id
    env_templates: dict[str, str] = field(
        default_factory=dict
    )  # bash: pulled at run time

    @property
    def binding_comment(self) -> str:
        return self.binding.comment if self.binding is not None else ""

    @property
    def doc_md(self) -> str | None:
        """What the task's page in Airflow's UI says it runs (its operator runs a helper)."""
        if self.python_callable is None:
            return None
        return UserText(f"Calls `{self.python_callable}`.")

    @property
    def bash_env(self) -> dict[str, str]:
        """A bash step's keyword arguments, as environment variables (text)."""
        env = {key: UserText(as_text(value)) for key, value in self.op_kwargs.items()}
        return {**env, **self.env_templates}


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
    pull_task_ids: str | list[str]
    map_count: int | None = None  # how many map indexes, when trainers are mapped
    metric: str | None = None
    threshold: float | None = None
    branch_task_id: str = DEFAULTS["chooser", "branch_task_id"]
    on_pass: Step | None = None
    on_fail: Step | None = None
    binding: Binding = Binding("chooser", False)
    branch_binding: Binding = Binding("check_threshold", False)
    params: tuple[dict[str, Any], ...] = ()  # each trainer's op_kwargs, for the winner
    min_success: int | None = None  # set: rank those that succeeded, if this many did
    gated_publish: str | None = None  # publish's task id when it follows on_pass

    @property
    def op_kwargs(self) -> dict[str, Any]:
        """The arguments of ``_choose`` (``map_count`` only for mapped trainers, ``metric``
        only when trainers return mappings)."""
        metric = {} if self.metric is None else {"metric": self.metric}
        mapped = {} if self.map_count is None else {"map_count": self.map_count}
        return {
            "task_ids": self.pull_task_ids,
            **mapped,
            "xcom_key": self.xcom_key,
            **metric,
            "mode": self.mode,
            "push_key": self.push_key,
            "params": list(self.params),
            **({} if self.min_success is None else {"min_success": self.min_success}),
        }

    @property
    def branch_kwargs(self) -> dict[str, Any]:
        """The arguments of ``_branch``, which follows on_pass or on_fail."""
        return {
            "chooser_task_id": self.task_id,
            "push_key": self.push_key,
            "mode": self.mode,
            "threshold": self.threshold,
            "on_pass": [step.task_id for step in (self.on_pass,) if step is not None]
            + ([self.gated_publish] if self.gated_publish else []),
            "on_fail": [self.on_fail.task_id] if self.on_fail else [],
        }


@dataclass(frozen=True)
class DagSettings:
    dag_id: str
    description: str | None
    schedule: str | timedelta | None
    start_date: datetime
    catchup: bool
    tags: tuple[str, ...]
    default_args: dict[str, Any]
    assets: tuple[str, ...] = ()  # the schedule, when the DAG runs on asset updates
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
    publish_gated: bool = False  # publish hangs off the threshold branch

    @property
    def calls_steps(self) -> bool:
        """Whether a python step calls its function with its op_kwargs alone (``_call``)."""
        return any(s.python_callable and s.runner == "_call" for s in self.steps)

    @property
    def receives_winner(self) -> bool:
        """Whether publish or on_pass calls a function (``_call_with_winner``)."""
        return any(s.runner == "_call_with_winner" for s in self.steps)

    @property
    def trainer_inputs(self) -> bool:
        """Whether a python trainer takes a download's return value (``_train`` pulls it)."""
        return any(m.inputs and m.python_callable for m in self.trainers.models)

    @property
    def download_name(self) -> str:
        """The variable of the download task, or of the list of them."""
        if len(self.downloads) == 1:
            return self.downloads[0].binding.name
        return "download"

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
    def code_modules(self) -> tuple[str, ...]:
        """The top-level modules of the user code the DAG imports when its tasks run, sorted."""
        refs = [
            step.python_callable
            for step in [*self.steps, *self.trainers.models]
            if step.python_callable
        ]
        refs += self.dag.callbacks.values()
        return tuple(sorted({ref.partition(":")[0].split(".")[0] for ref in refs}))

    @property
    def loads_callables(self) -> bool:
        """Whether the file imports user code when a task runs (and so needs ``_load``)."""
        return bool(self.python_trainers or self.python_steps or self.dag.callbacks)

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


def build_spec(doc: Document, source: str | None = None) -> Pipeline:
    """Normalise a validated config into a :class:`Pipeline`.

    ``source`` is how the generated file names its config (default: the document's name).
    """
    data = doc.data
    dag, trainers, chooser = data["dag"], data["trainers"], data["chooser"]
    downloads = (
        data["download"] if isinstance(data["download"], list) else [data["download"]]
    )
    xcom_key = trainers.get("xcom_key", DEFAULTS["trainers", "xcom_key"])
    zone = dag.get("timezone")
    bindings = _bindings(data)
    group_defaults = {
        "python_callable": trainers.get("python_callable"),
        "bash_command": trainers.get("bash_command"),
        "op_kwargs": trainers.get("op_kwargs", {}),
        "inputs": trainers.get("inputs", {}),
        **{key: trainers[key] for key in OPERATOR_SETTINGS if key in trainers},
    }
    models = tuple(
        _trainer(_with_group_defaults(model, group_defaults), xcom_key)
        for model in trainer_models(trainers)
    )
    group = Trainers(
        group_id=trainers["group_id"],
        xcom_key=xcom_key,
        models=models,
        mapped_task_id=(
            trainers.get("mapped_task_id", DEFAULTS["trainers", "mapped_task_id"])
            if trainers.get("mapped")
            else None
        ),
    )
    choose = Chooser(
        task_id=chooser["task_id"],
        xcom_key=chooser.get("xcom_key", xcom_key),
        mode=chooser.get("mode", DEFAULTS["chooser", "mode"]),
        push_key=chooser.get("push_key", DEFAULTS["chooser", "push_key"]),
        pull_task_ids=group.pull_task_ids,
        map_count=len(models) if group.mapped_task_id else None,
        metric=chooser.get("metric"),
        threshold=chooser.get("threshold"),
        branch_task_id=chooser.get(
            "branch_task_id", DEFAULTS["chooser", "branch_task_id"]
        ),
        on_pass=(
            _with_winner(
                _step(chooser["on_pass"], binding=bindings["on_pass"]),
                chooser["task_id"],
                chooser.get("push_key", DEFAULTS["chooser", "push_key"]),
            )
            if "on_pass" in chooser
            else None
        ),
        on_fail=(
            _step(chooser["on_fail"], binding=bindings["on_fail"])
            if "on_fail" in chooser
            else None
        ),
        binding=bindings["chooser"],
        branch_binding=bindings.get(
            "check_threshold", Binding("check_threshold", False)
        ),
        params=tuple(model.op_kwargs for model in models),
        min_success=(
            min_success_count(chooser["min_success"], len(models))
            if "min_success" in chooser
            else None
        ),
        gated_publish=data["publish"]["task_id"] if publish_gated(data) else None,
    )
    schedule = dag.get("schedule")
    return Pipeline(
        source=UserText(source or doc.name),
        dag=DagSettings(
            dag_id=dag["dag_id"],
            description=dag.get("description"),
            schedule=None if isinstance(schedule, list) else _schedule(schedule),
            assets=tuple(schedule) if isinstance(schedule, list) else (),
            start_date=parse_date(dag["start_date"], zone),
            end_date=parse_date(dag["end_date"], zone) if "end_date" in dag else None,
            catchup=dag.get("catchup", DEFAULTS["dag", "catchup"]),
            tags=tuple(dag.get("tags", ())),
            default_args=_with_durations(dag.get("default_args", {})),
            max_active_runs=dag.get("max_active_runs"),
            max_active_tasks=dag.get("max_active_tasks"),
            dagrun_timeout=_optional_duration(dag.get("dagrun_timeout")),
            params={
                name: _param(value) for name, value in dag.get("params", {}).items()
            },
            doc_md=_doc_md(doc),
            owner_links=dag.get("owner_links", {}),
            callbacks={key: dag[key] for key in CALLBACK_KEYS if key in dag},
        ),
        downloads=tuple(
            _step(step, binding=bindings.get("download")) for step in downloads
        ),
        trainers=group,
        chooser=choose,
        publish=(
            _with_winner(
                _step(data["publish"], binding=bindings["publish"]),
                choose.task_id,
                choose.push_key,
            )
            if "publish" in data
            else None
        ),
        publish_gated=publish_gated(data),
    )


def _bindings(data: dict[str, Any]) -> dict[str, Binding]:
    """The variable of each task the file binds to one, by role.

    A task id that is a free Python name is its variable; the others take their role's
    name, after every task id had its chance (so no role name takes a task id's).
    """
    chooser = data["chooser"]
    roles = {"chooser": chooser["task_id"]}
    if not isinstance(data["download"], list):
        roles["download"] = data["download"]["task_id"]
    if "threshold" in chooser:
        roles["check_threshold"] = chooser.get(
            "branch_task_id", DEFAULTS["chooser", "branch_task_id"]
        )
    for branch in ("on_pass", "on_fail"):
        if branch in chooser:
            roles[branch] = chooser[branch]["task_id"]
    if "publish" in data:
        roles["publish"] = data["publish"]["task_id"]
    taken = set(_TAKEN_NAMES)
    if isinstance(data["download"], list):
        taken.add("download")
    bindings = {}
    for role, task_id in roles.items():
        if (
            _PYTHON_NAME.fullmatch(task_id)
            and not keyword.iskeyword(task_id)
            and task_id not in taken
        ):
            bindings[role] = Binding(str(task_id), True)
            taken.add(task_id)
    for role in [role for role in roles if role not in bindings]:
        name = role
        while name in taken:
            name += "_"
        bindings[role] = Binding(name, False)
        taken.add(name)
    return bindings


def _doc_md(doc: Document) -> str | None:
    """The DAG's documentation: the text of ``doc_md_file`` (read by the loader) or ``doc_md``."""
    if doc.inputs.doc_md is not None:
        return UserText(doc.inputs.doc_md)
    return doc.data["dag"].get("doc_md")


def _with_group_defaults(
    model: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    merged = {key: value for key, value in defaults.items() if value is not None}
    if has_command(model):
        merged.pop("python_callable", None)
        merged.pop("bash_command", None)
    merged.update(model)
    merged["op_kwargs"] = {**defaults["op_kwargs"], **model.get("op_kwargs", {})}
    merged["inputs"] = {**defaults["inputs"], **model.get("inputs", {})}
    return merged


def _step(
    data: dict[str, Any],
    runner: str = "_call",
    binding: Binding | None = None,
    **extra: Any,
) -> Step:
    """A step; ``runner`` is the helper a Python step runs, ``extra`` what it needs besides."""
    ref, kwargs = data.get("python_callable"), data.get("op_kwargs", {})
    return Step(
        task_id=data["task_id"],
        bash_command=data.get("bash_command"),
        python_callable=ref,
        op_kwargs=kwargs,
        settings=_with_durations(
            {key: data[key] for key in OPERATOR_SETTINGS if key in data}
        ),
        runner=runner,
        runner_kwargs={"ref": ref, "kwargs": kwargs, **extra},
        binding=binding,
    )


def _with_durations(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: parse_duration(value) if key in DURATION_KEYS else value
        for key, value in values.items()
    }


def _optional_duration(value: int | str | None) -> timedelta | None:
    return None if value is None else parse_duration(value)


def _schedule(value: Any) -> str | timedelta | None:
    return parse_duration(value) if is_duration_text(value) else value


def _param(value: Any) -> dict[str, Any]:
    """``Param`` keywords: a mapping as written, or a plain value as its default."""
    if not isinstance(value, dict):
        return {"default": value}
    return {key: value[key] for key in PARAM_KEYWORDS if key in value}


def _pull_template(task_id: str, key: str | None = None, field: str = "") -> str:
    """A Jinja expression Airflow renders in a bash task's env: what ``task_id`` pushed."""
    key_text = f", key='{key}'" if key else ""
    return f"ti.xcom_pull(task_ids='{task_id}'{key_text}){field}"


def _env_text(expression: str) -> UserText:
    """Text as it is, anything else as JSON, nothing as empty: the contract's env rule."""
    return UserText(
        f"{{% set pulled = {expression} %}}"
        "{{ '' if pulled is none else pulled if pulled is string else pulled | tojson }}"
    )


def _trainer(data: dict[str, Any], xcom_key: str) -> Step:
    """A trainer; its ``inputs`` (download results) become keyword arguments pulled by
    ``_train`` (python) or environment variables Airflow renders (bash)."""
    trainer = _step(data, "_train", xcom_key=xcom_key)
    inputs = data.get("inputs", {})
    if not inputs:
        return trainer
    if trainer.bash_command is not None:
        env = {name: _env_text(_pull_template(task)) for name, task in inputs.items()}
        return replace(trainer, inputs=inputs, env_templates=env)
    kwargs = {**trainer.runner_kwargs, "inputs": inputs}
    return replace(trainer, inputs=inputs, runner_kwargs=kwargs)


def _with_winner(step: Step, chooser_task_id: str, push_key: str) -> Step:
    """A publish or on_pass step that receives the winner: the fields its callable
    accepts (python, via ``_call_with_winner``) or WINNER_* variables (bash)."""
    if step.bash_command is not None:
        winner = _pull_template(chooser_task_id, push_key)
        env = {
            f"WINNER_{name.upper()}": _env_text(f"{winner}.get('{name}')")
            for name in WINNER_FIELDS
        }
        return replace(step, env_templates=env)
    kwargs = {
        **step.runner_kwargs,
        "chooser_task_id": chooser_task_id,
        "push_key": push_key,
    }
    return replace(step, runner="_call_with_winner", runner_kwargs=kwargs)
