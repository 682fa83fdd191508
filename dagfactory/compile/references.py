"""Every ``module:function`` a config names, where it is written, and how the DAG file calls it.

A config's callables are imported only when a task runs, so a misspelled name, a
missing module or an ``op_kwargs`` key the function does not take would first fail on
a worker. ``dagfactory check`` imports each reference listed here and binds what the
generated code passes to its signature, and reports what does not fit at the line and
column where the reference is written; an ``op_kwargs`` key the function does not take,
at the key itself (each reference keeps where each keyword it passes is written).

The arguments are read from the spec (:mod:`.pipeline`), which has already applied the
trainers' group defaults and expanded ``count`` and ``matrix``: they are exactly what
the template renders. What each generated helper adds (``templates/dag.py.j2``): a step
(``_call``) and a trainer (``_train``) pass their ``op_kwargs`` as keyword arguments,
a trainer its ``inputs`` too; ``_call_with_winner`` (publish, on_pass) adds the winner's
fields that the function accepts; ``_callback`` passes the context, as one positional
argument; an approval's notifier factory is called with none, when the file is parsed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from dagfactory.compile.environment import redact
from dagfactory.compile.vocabulary import (
    CALLBACK_KEYS,
    WINNER_FIELDS,
    runs_kubernetes,
)
from dagfactory.problems import Problem, SpecPath

if TYPE_CHECKING:
    from dagfactory.compile.document import Document
    from dagfactory.compile.pipeline import DockerRun, Pipeline, Step, Trainers

# What ``_call_with_winner`` adds to a publish or on_pass step's own op_kwargs: the
# winner's fields its function accepts by name (so these never make a call fail).
WINNER_NOTE = (
    "it also gets those of the winner's task_id, value, metrics, artifact, params"
    " that it accepts"
)
CALLBACK_NOTE = "Airflow calls a DAG callback with one argument, the context"
NOTIFIER_NOTE = (
    "the DAG file calls it when Airflow parses it, and gives the notifier it returns"
    " to the approval task"
)
# What a trainer in a Kubernetes pod imports, and where it comes from.
KUBERNETES_OPERATOR = (
    "airflow.providers.cncf.kubernetes.operators.pod:KubernetesPodOperator"
)


# What a trainer in Docker runs: the docker provider's operator, which the generated
# _DockerTrainer extends.
DOCKER_OPERATOR = "airflow.providers.docker.operators.docker:DockerOperator"
# Tasks named in a message before the rest are counted.
NAMED_TASKS = 3


class Place(NamedTuple):
    """Where a keyword is written: its key's spec path, file, line and column."""

    spec_path: SpecPath
    file: str
    line: int
    column: int


@dataclass(frozen=True)
class Reference:
    """One ``module:function`` and one way the DAG file calls it.

    ``keywords`` are the keyword arguments the generated code passes, ``positional``
    how many positional ones (a callback's context); ``tasks`` are the Airflow task ids
    that call it so (none for a DAG callback). ``file``, ``line`` and ``column`` say
    where the reference is written, which is in a defaults file when it came from one.
    ``keyword_places`` pairs each keyword the config writes with every place its key
    is written (a keyword a helper adds, such as publish's ``value``, has none).
    ``env`` is what the config's ``!env`` variables hold: a problem names them, as
    :meth:`.Document.error` does, and never shows them (a ``python_callable`` or an
    ``op_kwargs`` value may be read from one).
    """

    target: str
    spec_path: SpecPath
    file: str
    line: int
    column: int
    keywords: tuple[str, ...] = ()
    positional: int = 0
    tasks: tuple[str, ...] = ()
    note: str = ""
    optional: tuple[str, ...] = ()  # passed only when the function accepts them
    keyword_places: tuple[tuple[str, tuple[Place, ...]], ...] = ()
    gpu_daemon: str | None = None  # a docker_url ("": the default) asked for GPUs
    env: Mapping[str, str | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def passes(self) -> str:
        """Who calls it with what, for a message: ``task grid.a passes depth, seed``."""
        if not self.tasks:
            return self.note
        named = ", ".join(self.tasks[:NAMED_TASKS])
        rest = len(self.tasks) - NAMED_TASKS
        who = (
            f"task {named} passes"
            if len(self.tasks) == 1
            else f"tasks {named}{f' and {rest:,} more' if rest > 0 else ''} pass"
        )
        what = ", ".join(self.keywords) or "no arguments"
        return f"{who} {what}" + (f"; {self.note}" if self.note else "")

    @property
    def written(self) -> tuple[str, ...]:
        """The keywords whose keys the config writes (not those a helper adds)."""
        return tuple(keyword for keyword, _ in self.keyword_places)

    def problem(self, message: str, detail: str = "") -> Problem:
        """A problem with this reference, at the place it is written."""
        return self._problem(
            Place(self.spec_path, self.file, self.line, self.column), message, detail
        )

    def keyword_problems(
        self, keyword: str, message: str, detail: str = ""
    ) -> list[Problem]:
        """A problem with ``keyword`` at each place its key is written, else at the reference."""
        places = dict(self.keyword_places).get(keyword, ())
        if not places:
            return [self.problem(message, detail)]
        return [self._problem(place, message, detail) for place in places]

    def _problem(self, place: Place, message: str, detail: str) -> Problem:
        """A problem at ``place``, with every value read from the environment named."""
        return Problem(
            place.file,
            place.line,
            place.column,
            place.spec_path,
            redact(message, self.env),
            detail=redact(detail, self.env),
        )


def callable_references(doc: Document, pipeline: Pipeline) -> tuple[Reference, ...]:
    """Every reference the config ``doc`` (compiled to ``pipeline``) makes: callbacks, then tasks.

    Tasks that call the same reference, written in the same place, with the same
    keywords are one reference naming them all (a matrix of 10,000 trainers is one).
    """
    tasks: dict[_Call, list[str]] = {}
    places: dict[_Call, dict[str, dict[Place, None]]] = {}
    for call, task, written in _calls(doc.data, pipeline):
        tasks.setdefault(call, []).extend([task] if task is not None else [])
        keywords = places.setdefault(call, {})
        for keyword, path in written.items():
            mark = doc.locate(path, key=True)
            place = Place(path, mark.file or doc.name, mark.line, mark.column)
            keywords.setdefault(keyword, {})[place] = None
    references = []
    for call, callers in tasks.items():
        mark = doc.locate(call.path)
        references.append(
            Reference(
                target=str(call.target),
                spec_path=call.path,
                file=mark.file or doc.name,
                line=mark.line,
                column=mark.column,
                keywords=call.keywords,
                positional=call.positional,
                tasks=tuple(callers),
                note=call.note,
                optional=call.optional,
                keyword_places=tuple(
                    (keyword, tuple(written))
                    for keyword, written in places[call].items()
                ),
                env=doc.inputs.env,
                gpu_daemon=call.gpu_daemon,
            )
        )
    return tuple(references)


class _Call(NamedTuple):
    """A reference and how it is called, before the tasks that call it so are gathered."""

    path: SpecPath
    target: str
    keywords: tuple[str, ...] = ()
    positional: int = 0
    note: str = ""
    optional: tuple[str, ...] = ()
    gpu_daemon: str | None = None


# A call, the task that makes it (none for a DAG callback), and where each keyword
# it passes is written in the config: the spec path of its key.
CallSite = tuple[_Call, str | None, dict[str, SpecPath]]


def _calls(data: dict[str, Any], pipeline: Pipeline) -> Iterator[CallSite]:
    """Each call the DAG file makes of user code, with the task that makes it."""
    for key in CALLBACK_KEYS:
        if key in pipeline.dag.callbacks:
            target = pipeline.dag.callbacks[key]
            callback = _Call(("dag", key), target, positional=1, note=CALLBACK_NOTE)
            yield callback, None, {}
    listed = isinstance(data["download"], list)
    for index, step in enumerate(pipeline.downloads):
        yield from _step_call(("download", index) if listed else ("download",), step)
    yield from _trainer_calls(data["trainers"], pipeline.trainers)
    yield from _kubernetes_calls(data["trainers"], pipeline.trainers)
    for name in ("on_pass", "on_fail"):
        step = getattr(pipeline.chooser, name)
        if step is not None:
            yield from _step_call(("chooser", name), step)
    if pipeline.publish is not None:
        yield from _step_call(("publish",), pipeline.publish)
    if pipeline.approval is not None:
        for index, target in enumerate(pipeline.approval.notifiers):
            path = ("approval", "notifiers", index)
            yield _Call(path, target, note=NOTIFIER_NOTE), pipeline.approval.task_id, {}


def _trainer_calls(written: dict[str, Any], trainers: Trainers) -> Iterator[CallSite]:
    """Python trainers: at the model's own python_callable, else at the group's.

    A model that names a command of its own has its own python_callable or none (the
    spec's precedence); generated trainers (``count``, ``matrix``) have only the group's.
    A keyword is written in the model's op_kwargs, else in the matrix, else in the
    group's op_kwargs: the order in which the spec lets one win over the next.
    """
    models = written.get("models")
    for index, model in enumerate(trainers.models):
        task = (
            f"{trainers.group_id}.{trainers.mapped_task_id}[{index}]"
            if trainers.mapped_task_id
            else f"{trainers.group_id}.{model.task_id}"
        )
        if model.docker is not None:
            own = models is not None and "runtime" in models[index]
            path = ("trainers", "models", index) if own else ("trainers",)
            yield _docker_call((*path, "runtime", "docker"), model.docker), task, {}
            continue
        if model.python_callable is None:
            continue
        own = models is not None and "python_callable" in models[index]
        path = ("trainers", "models", index) if own else ("trainers",)
        keywords = tuple(dict.fromkeys([*model.op_kwargs, *model.inputs]))
        call = _Call((*path, "python_callable"), model.python_callable, keywords)
        own_model = models[index] if models is not None else {}
        keys = {
            keyword: ("trainers", "models", index, "op_kwargs", keyword)
            if keyword in own_model.get("op_kwargs", {})
            else ("trainers", "matrix", keyword)
            if keyword in written.get("matrix", {})
            else ("trainers", "op_kwargs", keyword)
            for keyword in model.op_kwargs
        }
        for name in model.inputs:
            keys.setdefault(
                name,
                ("trainers", "models", index, "inputs", name)
                if name in own_model.get("inputs", {})
                else ("trainers", "inputs", name),
            )
        yield call, task, keys


def _kubernetes_calls(
    written: dict[str, Any], trainers: Trainers
) -> Iterator[CallSite]:
    """Trainers in pods import the provider's KubernetesPodOperator: at the model's own
    kubernetes runtime, else at the group's."""
    models = written.get("models")
    for index, model in enumerate(trainers.models):
        if model.pod is None:
            continue
        own = models is not None and runs_kubernetes(models[index])
        path = ("trainers", "models", index) if own else ("trainers",)
        call = _Call(
            (*path, "runtime", "kubernetes"),
            KUBERNETES_OPERATOR,
            note="a trainer in a pod runs in the provider's KubernetesPodOperator",
        )
        yield call, f"{trainers.group_id}.{model.task_id}", {}


def _docker_call(path: SpecPath, run: DockerRun) -> _Call:
    """A trainer in Docker: the provider's DockerOperator, with the arguments the DAG
    file passes it (the check imports it: a missing provider is found there). With
    ``gpus``, written at the gpus key, and the daemon asked whether it can give GPUs."""
    mounts = ["mounts"] if run.mounts else []
    keywords = ["task_id", *run.arguments, "environment", *mounts, "mount_tmp_dir"]
    if run.gpus is None:
        return _Call(path, DOCKER_OPERATOR, tuple(keywords))
    return _Call(
        (*path, "gpus"),
        DOCKER_OPERATOR,
        (*keywords, "device_requests"),
        gpu_daemon=run.arguments.get("docker_url", ""),
    )


def _step_call(path: SpecPath, step: Step) -> Iterator[CallSite]:
    """A python step outside the trainers: its op_kwargs, and what its helper adds."""
    if step.python_callable is not None:
        winner = step.runner == "_call_with_winner"
        # winner_from passes the triggering event's winner as the keyword ``winner``
        received = ("winner",) if step.winner_from else ()
        call = _Call(
            (*path, "python_callable"),
            step.python_callable,
            (*step.op_kwargs, *received),
            note=WINNER_NOTE if winner else "",
            optional=WINNER_FIELDS if winner else (),
        )
        keys = {keyword: (*path, "op_kwargs", keyword) for keyword in step.op_kwargs}
        keys.update({keyword: (*path, "winner_from") for keyword in received})
        yield call, step.task_id, keys
