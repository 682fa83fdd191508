"""The typed spec of one pipeline: the single input of :mod:`.render`, built by :mod:`.spec`.

Frozen dataclasses with every default applied, every type final, every decision made
(which helper each task runs and with which arguments, which variable it is bound to,
which imports the file needs): the template lays them out and decides nothing. Also
what ``graph`` draws and ``check`` reads the callables from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from dagfactory.compile.text import UserText
from dagfactory.compile.vocabulary import DEFAULTS, as_text


def operator_of(runtime: dict[str, Any]) -> str:
    """The operator class that runs a helper in the interpreter ``runtime`` names: an
    existing one, a virtualenv Airflow builds, or (no runtime) the worker's own."""
    if "python" in runtime:
        return "ExternalPythonOperator"
    if "requirements" in runtime:
        return "PythonVirtualenvOperator"
    return "PythonOperator"


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
class KubernetesPod:
    """A step run as a container in a Kubernetes pod (KubernetesPodOperator).

    ``arguments`` are the operator's plain keyword arguments, in KUBERNETES_ARGUMENTS'
    order, with ``env_vars`` last (text, some of it templates Airflow renders);
    ``requests`` and ``limits`` its container's resources, GPUs among the limits.
    """

    arguments: dict[str, Any]
    requests: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()

    @property
    def uses_models(self) -> bool:
        """Whether its arguments need the kubernetes client's models (``k8s.V1...``)."""
        return bool(self.requests or self.limits or self.image_pull_secrets)


@dataclass(frozen=True)
class DockerRun:
    """A trainer run in a Docker container by the generated ``_DockerTrainer``.

    ``arguments`` are DockerOperator's own (image, command, network_mode, docker_url,
    user, mem_limit, auto_remove...), rendered as written; ``environment`` the
    container's variables (the runtime's, then the trainer's op_kwargs as text and its
    inputs as templates Airflow renders); ``mounts`` docker.types.Mount keywords;
    ``gpus`` a DeviceRequest's count (-1: every GPU) or None.
    """

    arguments: dict[str, Any]
    environment: dict[str, str]
    metric_key: str
    mounts: tuple[dict[str, Any], ...] = ()
    gpus: int | None = None

    @property
    def types(self) -> list[str]:
        """The classes of docker.types the operator's arguments use, sorted."""
        used = ["DeviceRequest"] if self.gpus is not None else []
        return used + (["Mount"] if self.mounts else [])


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
    # A trainer run in another interpreter: its operator's arguments (RUNTIME_ARGUMENTS)
    runtime: dict[str, Any] = field(default_factory=dict)
    # A trainer run in a Kubernetes pod: its container replaces the command
    pod: KubernetesPod | None = None
    docker: DockerRun | None = None  # a trainer run in a Docker container
    # The Asset URI whose event this step's success records, the winner as its extra
    asset: str | None = None
    # A download step's: the Asset URI whose triggering event's winner it gets
    winner_from: str | None = None

    @property
    def operator(self) -> str:
        """The operator class of a python step: the worker's, or another interpreter's;
        a trainer in Docker's is the generated file's own."""
        if self.pod is not None:
            return "KubernetesPodOperator"
        if self.docker is not None:
            return "_DockerTrainer"
        return operator_of(self.runtime)

    @property
    def binding_comment(self) -> str:
        return self.binding.comment if self.binding is not None else ""

    @property
    def doc_md(self) -> str | None:
        """What the task's page in Airflow's UI says it runs (its operator runs a helper)."""
        if self.pod is not None:
            return UserText(
                f"Runs `{self.pod.arguments['image']}` in a Kubernetes pod."
            )
        if self.docker is not None:
            return UserText(
                f"Runs the image `{self.docker.arguments['image']}` in Docker."
            )
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
    gated_registry: str | None = None  # the registry task's id when it follows on_pass
    approval_task_id: str | None = None  # followed instead of publish, when set
    asset: str | None = None  # announced by the chooser when there is no publish

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
            **({} if self.asset is None else {"asset": self.asset}),
        }

    @property
    def doc_md(self) -> str:
        """What the chooser's page in Airflow's UI says it compares and keeps."""
        compared = f"`{self.xcom_key}`"
        if self.metric is not None:
            compared = f"`{self.metric}` of {compared}"
        best = "highest" if self.mode == "max" else "lowest"
        return UserText(
            f"Keeps the trainer with the {best} {compared}, under `{self.push_key}`."
        )

    @property
    def branch_kwargs(self) -> dict[str, Any]:
        """The arguments of ``_branch``, which follows on_pass or on_fail."""
        return {
            "chooser_task_id": self.task_id,
            "push_key": self.push_key,
            "mode": self.mode,
            "threshold": self.threshold,
            "on_pass": [step.task_id for step in (self.on_pass,) if step is not None]
            + (
                [self.approval_task_id or self.gated_publish]
                if self.gated_publish
                else []
            )
            + ([self.gated_registry] if self.gated_registry else []),
            "on_fail": [self.on_fail.task_id] if self.on_fail else [],
        }


@dataclass(frozen=True)
class Registry:
    """The task that logs every trainer to MLflow and registers the winner (``_register``).

    ``_register`` takes plain values only (what the tasks pushed arrives through
    templates Airflow renders as JSON), so that it runs as well in another interpreter
    (``runtime``) as in the worker's: the MLflow client need not share Airflow's.
    """

    task_id: str
    op_kwargs: dict[str, Any]
    binding: Binding
    runtime: dict[str, Any] = field(default_factory=dict)  # RUNTIME_ARGUMENTS
    settings: dict[str, Any] = field(default_factory=dict)  # OPERATOR_SETTINGS
    gated: bool = False  # hangs off the threshold branch (vocabulary.registry_gated)

    @property
    def operator(self) -> str:
        return operator_of(self.runtime)

    @property
    def doc_md(self) -> str:
        """What the task's page in Airflow's UI says it does."""
        return UserText(
            f"Logs every trainer to MLflow experiment `{self.op_kwargs['experiment']}`"
            f" and registers the winner as `{self.op_kwargs['model_name']}`"
            f" (alias `{self.op_kwargs['alias']}`)."
        )


@dataclass(frozen=True)
class Approval:
    """A person's Approve or Reject between the choice and publish (Airflow's
    ApprovalOperator, 3.1 and later): Reject skips publish.

    ``subject`` and ``body`` are Jinja templates that Airflow renders when the task
    runs, each starting by setting ``winner`` to what the chooser pushed.
    ``notifiers`` are ``module:function`` references the file calls when it is parsed
    (``_load``), each returning a notifier the operator calls when it starts waiting.
    """

    task_id: str
    subject: str
    body: str
    binding: Binding
    response_timeout: timedelta | None = None
    on_timeout: str | None = None  # the answer taken when response_timeout passes
    assigned_users: tuple[dict[str, str], ...] = ()
    notifiers: tuple[str, ...] = ()

    @property
    def arguments(self) -> dict[str, Any]:
        """The operator's keyword arguments after task_id, in the order they are rendered."""
        optional = {
            "response_timeout": self.response_timeout,
            "defaults": self.on_timeout,
            "assigned_users": list(self.assigned_users) or None,
        }
        return {
            "subject": self.subject,
            "body": self.body,
            **{name: value for name, value in optional.items() if value is not None},
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
    registry: Registry | None = None
    approval: Approval | None = None  # between the choice and publish

    @property
    def uses_assets(self) -> bool:
        """Whether the file names an Asset: its schedule, an outlet or a winner's source."""
        return bool(
            self.dag.assets
            or self.chooser.asset
            or any(step.asset or step.winner_from for step in self.steps)
        )

    @property
    def announces_winner(self) -> bool:
        """Whether a task makes the winner an Asset event's extra (``_announce``)."""
        return bool(self.chooser.asset or (self.publish and self.publish.asset))

    @property
    def receives_asset_winner(self) -> bool:
        """Whether a download step gets the winner an Asset event carried."""
        return any(step.winner_from for step in self.downloads)

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
        return any(
            m.inputs and m.python_callable and m.runner == "_train"
            for m in self.trainers.models
        )

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
        used.update(
            step.operator
            for step in steps
            if step.bash_command is None and step.docker is None
        )
        if any(step.bash_command is not None for step in steps):
            used.add("BashOperator")
        if self.chooser.threshold is not None:
            used.add("BranchPythonOperator")
        if self.registry is not None:
            used.add(self.registry.operator)
        return used

    @property
    def python_operators(self) -> list[str]:
        """The operator classes imported from Airflow's python module, sorted."""
        return sorted(self.operators - {"BashOperator", "KubernetesPodOperator"})

    @property
    def pods(self) -> list[KubernetesPod]:
        """The pods of the trainers run in Kubernetes."""
        return [model.pod for model in self.trainers.models if model.pod is not None]

    @property
    def pods_push_metric(self) -> bool:
        """Whether pods' results are pushed again under the trainers' own XCom key
        (``_push_metric``): their operator pushes them under return_value."""
        return (
            bool(self.pods)
            and self.trainers.xcom_key != DEFAULTS["trainers", "xcom_key"]
        )

    @property
    def python_trainers(self) -> bool:
        """Whether any trainer calls a ``module:function`` (and so needs ``_train``)."""
        return any(model.python_callable for model in self.trainers.models)

    @property
    def worker_trainers(self) -> bool:
        """Whether a python trainer runs in the worker's interpreter (``_train``)."""
        return any(
            model.python_callable and model.runner == "_train"
            for model in self.trainers.models
        )

    @property
    def trainers_elsewhere(self) -> bool:
        """Whether a trainer runs in another interpreter (``_train_elsewhere``)."""
        return any(model.runtime for model in self.trainers.models)

    @property
    def docker_trainers(self) -> list[DockerRun]:
        """The docker runs of the trainers in Docker (``_DockerTrainer``)."""
        return [m.docker for m in self.trainers.models if m.docker is not None]

    @property
    def docker_types(self) -> list[str]:
        """The classes of docker.types the trainers in Docker use, sorted."""
        return sorted({name for run in self.docker_trainers for name in run.types})

    @property
    def python_steps(self) -> bool:
        """Whether a step outside the trainers group calls a ``module:function``."""
        return any(step.python_callable for step in self.steps)

    @property
    def code_modules(self) -> tuple[str, ...]:
        """The top-level modules of the user code the DAG imports, sorted: when its tasks
        run, and an approval's notifiers when the file is parsed."""
        refs = [
            step.python_callable
            for step in [*self.steps, *self.trainers.models]
            if step.python_callable
        ]
        refs += self.dag.callbacks.values()
        refs += self.approval.notifiers if self.approval else ()
        return tuple(sorted({ref.partition(":")[0].split(".")[0] for ref in refs}))

    @property
    def loads_callables(self) -> bool:
        """Whether the file imports user code (and so needs ``_load``): when a task runs,
        or an approval's notifiers when it is parsed."""
        return bool(
            self.python_trainers
            or self.python_steps
            or self.dag.callbacks
            or (self.approval and self.approval.notifiers)
        )

    @property
    def uses_timedelta(self) -> bool:
        values = [
            self.dag.schedule,
            self.dag.dagrun_timeout,
            self.approval and self.approval.response_timeout,
            *self.dag.default_args.values(),
            *(
                value
                for step in [*self.steps, *self.trainers.models]
                for value in step.settings.values()
            ),
        ]
        return any(isinstance(value, timedelta) for value in values)
