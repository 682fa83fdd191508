"""Build the typed spec of one pipeline (:mod:`.pipeline`): every default applied, every decision made.

:func:`build_spec` takes only a document that :mod:`.validate` accepted, and makes the
single input of :mod:`.render`: the template lays out what is decided here (which
helper each task runs and with which arguments, which variable each task is bound to,
which imports the file needs) and decides nothing itself. Reads no file: what a config
brought in from outside (a ``doc_md_file``) is already on its document.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dagfactory.compile.pipeline import (
    Approval,
    Binding,
    Chooser,
    DagSettings,
    DockerRun,
    KubernetesPod,
    Pipeline,
    Registry,
    Step,
    Trainers,
)
from dagfactory.compile.text import UserText
from dagfactory.compile.vocabulary import (
    CALLBACK_KEYS,
    DEFAULT_ALIAS,
    DEFAULT_APPROVAL_TASK_ID,
    DEFAULT_REGISTRY_TASK_ID,
    DEFAULTS,
    DOCKER_ARGUMENTS,
    DOCKER_AUTO_REMOVE,
    DOCKER_ENVIRONMENT,
    DURATION_KEYS,
    GPU_RESOURCE,
    KUBERNETES_ARGUMENTS,
    OPERATOR_SETTINGS,
    PARAM_KEYWORDS,
    RUNTIME_ARGUMENTS,
    WINNER_FIELDS,
    as_text,
    docker_of,
    has_command,
    is_duration_text,
    min_success_count,
    parse_date,
    parse_duration,
    publish_gated,
    registry_gated,
    runs_kubernetes,
)

if TYPE_CHECKING:
    from dagfactory.compile.document import Document

# Names a generated file defines or imports, which no task variable may take.
_TAKEN_NAMES = frozenset(
    {
        "importlib",
        "inspect",
        "math",
        "numbers",
        "os",
        "sys",
        "Decimal",
        "timedelta",
        "partial",
        "pendulum",
        "BashOperator",
        "BranchPythonOperator",
        "ApprovalOperator",
        "ExternalPythonOperator",
        "KubernetesPodOperator",
        "k8s",
        "PythonOperator",
        "PythonVirtualenvOperator",
        "DAG",
        "Asset",
        "Param",
        "TaskGroup",
        "AirflowFailException",
        "DockerOperator",
        "DeviceRequest",
        "Mount",
        "json",
        "trainers",
        *dir(builtins),
    }
)
_PYTHON_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


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
        "runtime": trainers.get("runtime"),
        **{key: trainers[key] for key in OPERATOR_SETTINGS if key in trainers},
    }
    models = tuple(
        _trainer(_with_group_defaults(model, group_defaults), xcom_key)
        for model in doc.trainer_models
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
        gated_registry=(
            data["registry"].get("task_id", DEFAULT_REGISTRY_TASK_ID)
            if registry_gated(data)
            else None
        ),
        approval_task_id=_approval_task_id(data),
        asset=chooser.get("asset"),
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
            _download(step, bindings.get("download")) for step in downloads
        ),
        trainers=group,
        chooser=choose,
        publish=(
            _with_winner(
                _step(data["publish"], binding=bindings["publish"]),
                choose.task_id,
                choose.push_key,
                asset=data["publish"].get("asset"),
            )
            if "publish" in data
            else None
        ),
        publish_gated=publish_gated(data),
        registry=(
            _registry(data, group, choose, bindings["registry"])
            if "registry" in data
            else None
        ),
        approval=(
            _approval(data["approval"], choose, bindings["approval"])
            if "approval" in data
            else None
        ),
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
    if "registry" in data:
        roles["registry"] = data["registry"].get("task_id", DEFAULT_REGISTRY_TASK_ID)
    if "approval" in data:
        roles["approval"] = _approval_task_id(data)
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
    # The group's runtime is for its python trainers; a model's own command wins over
    # the group's pod as it wins over the group's command.
    if "bash_command" in model or (has_command(model) and runs_kubernetes(defaults)):
        merged.pop("runtime", None)
    merged.update(model)
    if docker_of(model, defaults) is not None:  # runs its image's command
        for key in ("python_callable", "bash_command"):
            if key not in model:
                merged.pop(key, None)
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
        runner_kwargs={"function": ref, "arguments": kwargs, **extra},
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
    if runs_kubernetes(data):
        return _kubernetes_trainer(data)
    docker = docker_of(data, {})
    if docker is not None:
        return _docker_trainer(data, docker, xcom_key)
    if "runtime" in data and "python_callable" in data:
        return _trainer_elsewhere(data)
    trainer = _step(data, "_train", metric_key=xcom_key)
    inputs = data.get("inputs", {})
    if not inputs:
        return trainer
    if trainer.bash_command is not None:
        env = {name: _env_text(_pull_template(task)) for name, task in inputs.items()}
        return replace(trainer, inputs=inputs, env_templates=env)
    kwargs = {**trainer.runner_kwargs, "inputs": inputs}
    return replace(trainer, inputs=inputs, runner_kwargs=kwargs)


def _trainer_elsewhere(data: dict[str, Any]) -> Step:
    """A python trainer run in another interpreter by ``_train_elsewhere``, which returns
    its metric: its operator pushes it under ``return_value`` (validate holds xcom_key
    to that)."""
    step = _step(data, "_train_elsewhere")
    runtime = data["runtime"]
    arguments = {key: runtime[key] for key in RUNTIME_ARGUMENTS if key in runtime}
    return replace(step, runtime=arguments)


def _kubernetes_trainer(data: dict[str, Any]) -> Step:
    """A trainer run as a container in a Kubernetes pod: its environment holds the
    runtime's variables, then its op_kwargs and its inputs (text, as a bash trainer's);
    what the container writes to /airflow/xcom/return.json is its metric."""
    inputs = data.get("inputs", {})
    pulled = {name: _env_text(_pull_template(task)) for name, task in inputs.items()}
    step = replace(_step(data), inputs=inputs, env_templates=pulled)
    spec = data["runtime"]["kubernetes"]
    arguments = {
        name: spec[key] for key, name in KUBERNETES_ARGUMENTS.items() if key in spec
    }
    env = {**spec.get("environment", {}), **step.bash_env}
    if env:
        arguments["env_vars"] = env
    resources = spec.get("resources", {})
    limits = dict(resources.get("limits", {}))
    if "gpus" in spec:
        limits[GPU_RESOURCE] = int(spec["gpus"])  # validate holds it whole
    pod = KubernetesPod(
        arguments=arguments,
        requests=dict(resources.get("requests", {})),
        limits=limits,
        image_pull_secrets=tuple(spec.get("image_pull_secrets", ())),
    )
    return replace(step, pod=pod)


def _docker_trainer(
    data: dict[str, Any], docker: dict[str, Any], xcom_key: str
) -> Step:
    """A trainer run in a Docker container by ``_DockerTrainer``, which pushes the JSON
    of its last line of output under ``xcom_key``. Its op_kwargs (as text) and inputs
    (pulled when it runs, as bash trainers take them) are environment variables."""
    step = _step(data)
    inputs = data.get("inputs", {})
    environment = {
        **DOCKER_ENVIRONMENT,
        **{
            name: UserText(as_text(value))
            for name, value in docker.get("environment", {}).items()
        },
        **step.bash_env,
        **{name: _env_text(_pull_template(task)) for name, task in inputs.items()},
    }
    arguments = {
        "image": docker["image"],
        **{key: docker[key] for key in DOCKER_ARGUMENTS if key in docker},
        "auto_remove": docker.get("auto_remove", DOCKER_AUTO_REMOVE),
    }
    mounts = tuple(
        {
            "target": mount["target"],
            "source": mount["source"],
            "type": mount.get("type", "bind"),
            "read_only": mount.get("read_only", False),
        }
        for mount in docker.get("mounts", ())
    )
    gpus = docker.get("gpus")
    run = DockerRun(
        arguments=arguments,
        environment=environment,
        metric_key=xcom_key,
        mounts=mounts,
        gpus=-1 if gpus == "all" else gpus,
    )
    return replace(step, runner="", runner_kwargs={}, inputs=inputs, docker=run)


def _with_winner(
    step: Step, chooser_task_id: str, push_key: str, asset: str | None = None
) -> Step:
    """A publish or on_pass step that receives the winner: the fields its callable
    accepts (python, via ``_call_with_winner``) or WINNER_* variables (bash). With
    ``asset`` (publish's), its success records an event of that Asset carrying the winner."""
    if asset is not None:
        step = replace(step, asset=asset)
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
        **({} if asset is None else {"asset": asset}),
    }
    return replace(step, runner="_call_with_winner", runner_kwargs=kwargs)


def _registry(
    data: dict[str, Any], trainers: Trainers, chooser: Chooser, binding: Binding
) -> Registry:
    """The registry task: ``_register``'s arguments, what the tasks pushed among them as
    templates Airflow renders to JSON (the winner, and each trainer's value in the
    chooser's order, one pull each: Airflow 2 leaves out what a list pull misses)."""
    registry, mlflow = data["registry"], data["registry"]["mlflow"]
    if trainers.mapped_task_id:
        task_ids = [
            f"{trainers.pull_task_ids}[{i}]" for i in range(len(trainers.models))
        ]
        pulls = [
            f"ti.xcom_pull(task_ids='{trainers.pull_task_ids}',"
            f" key='{trainers.xcom_key}', map_indexes={index})"
            for index in range(len(trainers.models))
        ]
    else:
        task_ids = trainers.task_ids
        pulls = [_pull_template(task_id, trainers.xcom_key) for task_id in task_ids]
    winner = _pull_template(chooser.task_id, chooser.push_key)
    return Registry(
        task_id=registry.get("task_id", DEFAULT_REGISTRY_TASK_ID),
        op_kwargs={
            "tracking_uri": mlflow.get("tracking_uri"),
            "experiment": mlflow.get("experiment", data["dag"]["dag_id"]),
            "model_name": mlflow["model_name"],
            "alias": mlflow.get("alias", DEFAULT_ALIAS),
            "only_if_better": mlflow.get("only_if_better", False),
            "metric": chooser.metric,
            "mode": chooser.mode,
            "xcom_key": trainers.xcom_key,
            "dag_id": data["dag"]["dag_id"],
            "run_id": "{{ run_id }}",
            "task_ids": [UserText(task_id) for task_id in task_ids],
            "params": list(chooser.params),
            "results": UserText(f"{{{{ [{', '.join(pulls)}] | tojson }}}}"),
            "winner": UserText(f"{{{{ {winner} | tojson }}}}"),
        },
        binding=binding,
        runtime={
            key: registry["runtime"][key]
            for key in RUNTIME_ARGUMENTS
            if key in registry.get("runtime", {})
        },
        settings=_with_durations(
            {key: registry[key] for key in OPERATOR_SETTINGS if key in registry}
        ),
        gated=registry_gated(data),
    )


def _download(data: dict[str, Any], binding: Binding | None) -> Step:
    """A download step; with ``winner_from``, its callable also gets ``winner``: what
    the event of that Asset which triggered the run carried (``_call_with_asset_winner``)."""
    step = _step(data, binding=binding)
    uri = data.get("winner_from")
    if uri is None:
        return step
    kwargs = {**step.runner_kwargs, "asset": uri}
    return replace(
        step, winner_from=uri, runner="_call_with_asset_winner", runner_kwargs=kwargs
    )


def _approval_task_id(data: dict[str, Any]) -> str | None:
    if "approval" not in data:
        return None
    return data["approval"].get("task_id", DEFAULT_APPROVAL_TASK_ID)


def _approval(data: dict[str, Any], chooser: Chooser, binding: Binding) -> Approval:
    """The approval task: its subject and body set ``winner`` (what the chooser pushed)
    before the config's text, so that a person sees the winner they are asked about."""
    winner = f"{{% set winner = {_pull_template(chooser.task_id, chooser.push_key)} %}}"
    on_timeout = data.get("on_timeout")
    body = data.get("body") or _approval_body(chooser, on_timeout)
    return Approval(
        task_id=_approval_task_id({"approval": data}),
        subject=UserText(winner + data.get("subject", DEFAULTS["approval", "subject"])),
        body=UserText(winner + body),
        binding=binding,
        response_timeout=_optional_duration(data.get("response_timeout")),
        on_timeout=on_timeout,
        assigned_users=tuple(
            {"id": user["id"], "name": user["name"]}
            for user in data.get("assigned_users", ())
        ),
        notifiers=tuple(data.get("notifiers", ())),
    )


def _approval_body(chooser: Chooser, on_timeout: str | None) -> str:
    """The default body: the winner in a table, and what each answer (or none) does."""
    ranked = chooser.metric or chooser.xcom_key
    rows = [
        ("trainer", "{{ winner.task_id }}"),
        (f"{chooser.mode} {ranked}", "{{ winner.value }}"),
        ("metrics", "{{ winner.metrics | tojson }}"),
        ("artifact", "{{ winner.artifact | default('none') }}"),
        ("params", "{{ winner.params | tojson }}"),
        ("run", "{{ run_id }}"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    timeout = (
        f" Without an answer in time: {on_timeout}." if on_timeout is not None else ""
    )
    return (
        f"| | |\n|---|---|\n{table}\n\n"
        f"Approve publishes it; Reject skips publishing.{timeout}"
    )
