"""What a schema cannot say: the rules across keys, each a named check run in order.

Each check is ``(doc) -> Iterator[Problem]`` and skips values the schema already
rejected (:mod:`.validate` runs the schema first, then every one of :data:`CHECKS`).
They read nothing but the document: what a config brought in from outside is on it.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagfactory.compile.checks_docker import DOCKER_CHECKS
from dagfactory.compile.checks_kubernetes import KUBERNETES_CHECKS
from dagfactory.compile.checks_ml import ML_CHECKS
from dagfactory.compile.checks_registry import REGISTRY_CHECKS
from dagfactory.compile.checks_release import RELEASE_CHECKS
from dagfactory.compile.checks_runtime import RUNTIME_CHECKS
from dagfactory.compile.cron import cron_problem
from dagfactory.compile.document import Document, as_mapping, walk
from dagfactory.compile.schema import python_regex, spec_schema
from dagfactory.compile.target import (
    RUN_AFTER,
    run_after_expression,
    target_errors,
    target_of,
)
from dagfactory.compile.text import quoted
from dagfactory.compile.vocabulary import (
    CALLABLE_KEYS,
    DEFAULT_APPROVAL_TASK_ID,
    DEFAULT_BRANCH_TASK_ID,
    DEFAULT_MAPPED_TASK_ID,
    DEFAULT_REGISTRY_TASK_ID,
    DEFAULT_XCOM_KEY,
    LOGICAL_DATE_TEMPLATES,
    MAX_TRAINERS,
    OPERATOR_SETTINGS,
    PARAM_KEYWORDS,
    docker_of,
    has_command,
    is_duration_text,
    matrix_size,
    parse_date,
    runs_bash,
)
from dagfactory.problems import Problem, SpecPath, format_spec_path


def _section(doc: Document, key: str) -> dict[str, Any]:
    """A top-level section, or an empty one when it is missing or not a mapping."""
    return as_mapping(doc.data.get(key))


def real_dates(doc: Document) -> Iterator[Problem]:
    """A time zone Python knows, dates that exist in it, an end after the start."""
    dag = _section(doc, "dag")
    zone = dag.get("timezone")
    if isinstance(zone, str):
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            yield doc.error(
                ("dag", "timezone"),
                f"unknown time zone {quoted(zone)}; use an IANA name such as Europe/Amsterdam or UTC",
            )
            zone = None
    dates = {}
    for key in ("start_date", "end_date"):
        value = dag.get(key)
        if isinstance(value, str):
            try:
                dates[key] = parse_date(value, zone if isinstance(zone, str) else None)
            except (ValueError, ZoneInfoNotFoundError) as exc:
                yield doc.error(
                    ("dag", key), f"{quoted(value)} is not a real date ({exc})"
                )
    if len(dates) == 2 and dates["end_date"] <= dates["start_date"]:
        yield doc.error(("dag", "end_date"), "must be after dag.start_date")


def allowed_env(doc: Document) -> Iterator[Problem]:
    """``!env`` may read only the variables ``allow_env`` lists: what it reads is copied
    into the DAG file, so no secret of the machine that renders gets there by accident."""
    allowed = doc.data.get("allow_env")
    allowed = set(allowed) if isinstance(allowed, list) else set()
    for name, path in doc.inputs.env_uses.items():
        if name not in allowed:
            yield doc.error(
                path,
                f"!env reads {name}, which allow_env does not list; its value would be "
                f"copied into the DAG file: add allow_env: [{name}] to this config or "
                "a defaults.yaml above it if that is safe, or read secrets when the task "
                "runs (an Airflow connection or variable)",
            )


def cron_schedule(doc: Document) -> Iterator[Problem]:
    """A cron schedule with fields Airflow accepts (the schema checks only its shape)."""
    schedule = _section(doc, "dag").get("schedule")
    cron_shape = python_regex(spec_schema()["$defs"]["cron_or_preset"]["pattern"])
    if (
        isinstance(schedule, str)
        and not is_duration_text(schedule)
        and cron_shape.search(schedule)  # else the schema says what a schedule is
        and (problem := cron_problem(schedule)) is not None
    ):
        yield doc.error(("dag", "schedule"), problem)


def continuous_schedule(doc: Document) -> Iterator[Problem]:
    """Airflow refuses to load a continuous DAG that may run more than once at a time."""
    dag = _section(doc, "dag")
    if dag.get("schedule") != "@continuous":
        return
    runs = dag.get("max_active_runs")
    if runs is None:
        yield doc.error(
            ("dag", "schedule"),
            "'@continuous' needs max_active_runs: 1 (Airflow loads a continuous DAG only"
            " if it runs one run at a time, and allows 16 by default); add"
            " max_active_runs: 1 under dag",
        )
    elif isinstance(runs, int) and not isinstance(runs, bool) and runs > 1:
        yield doc.error(
            ("dag", "max_active_runs"),
            f"must be 1 with the '@continuous' schedule ({doc.where(('dag', 'schedule'))}),"
            f" got {runs}: Airflow loads a continuous DAG only if it runs one run at a time",
        )


def metric_of_bash_trainers(doc: Document) -> Iterator[Problem]:
    """A bash trainer pushes text, which has no metric to pick."""
    metric = _section(doc, "chooser").get("metric")
    trainers = _section(doc, "trainers")
    if isinstance(metric, str) and _uses_bash(trainers, doc.trainer_models):
        yield doc.error(
            ("chooser", "metric"),
            f"bash trainers push their last line of output as text, which has no {metric!r}; "
            "remove metric, or give every trainer a python_callable that returns a mapping",
        )


def same_xcom_key(doc: Document) -> Iterator[Problem]:
    """The chooser pulls under the key the trainers push under."""
    pushed = _section(doc, "trainers").get("xcom_key", DEFAULT_XCOM_KEY)
    pulled = _section(doc, "chooser").get("xcom_key", pushed)
    if isinstance(pulled, str) and isinstance(pushed, str) and pulled != pushed:
        yield doc.error(
            ("chooser", "xcom_key"),
            f"must equal trainers.xcom_key ({pushed!r}), the key the trainers push their metric under",
        )


def doc_md_file(doc: Document) -> Iterator[Problem]:
    """``doc_md_file`` names a file in the config's folder or below it, which is there."""
    doc_file = doc.doc_md_location
    if doc_file is not None and not doc_file[1]:
        yield doc.error(
            ("dag", "doc_md_file"),
            "must be a file in the config's folder or below it (no absolute path, no '..' out of it)",
        )
    elif doc_file is not None and doc.inputs.doc_md is None:
        path = doc_file[0].as_posix()  # quoted when it holds a line break or the like
        yield doc.error(
            ("dag", "doc_md_file"),
            f"no such file: {path if path.isprintable() else repr(path)} (paths are"
            " relative to the config's folder)",
        )


def param_defaults(doc: Document) -> Iterator[Problem]:
    """A param's default fits the rules (``minimum``, ``enum``...) the param sets."""
    for name, param in as_mapping(_section(doc, "dag").get("params")).items():
        if isinstance(param, dict) and "default" in param:
            rules = {
                key: param[key]
                for key in PARAM_KEYWORDS
                if key in param and key not in {"default", "description"}
            }
            if not rules:
                continue  # a default alone fits
            import jsonschema  # here: most configs have no rules to check

            try:
                jsonschema.Draft202012Validator.check_schema(rules)
            except jsonschema.SchemaError:
                continue  # a rule of the wrong type: the spec's schema reports it
            problem = jsonschema.Draft202012Validator(rules).iter_errors(
                param["default"]
            )
            for failure in problem:
                yield doc.error(
                    ("dag", "params", name, "default"),
                    f"the default does not fit its own rules: {failure.message}",
                )


def every_value(doc: Document) -> Iterator[Problem]:
    """The rules on single values anywhere in the config, in one walk over it."""
    run_after = run_after_expression(target_of(doc.data))
    for path, value in walk(doc.data):
        if path[-1:] and path[-1] in CALLABLE_KEYS and isinstance(value, str):
            yield from _keyword_names(doc, path, value)
        if isinstance(value, float) and not math.isfinite(value):
            yield doc.error(
                path, f"{value!r} cannot be passed to a task; use a finite number"
            )
        if isinstance(value, str) and "{" in value:
            yield from _logical_date_warnings(doc, path, value, run_after)


def _keyword_names(doc: Document, path: SpecPath, reference: str) -> Iterator[Problem]:
    """A ``module:function`` whose parts are Python keywords cannot be imported."""
    for name in reference.replace(":", ".").split("."):
        if keyword.iskeyword(name):
            yield doc.error(
                path,
                f"{name!r} is a Python keyword, not a module or function name",
            )


_TEMPLATE = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
# A variable, not an attribute (`dag_run.logical_date`) nor a filter (`| ds`).
_LOGICAL_DATE_NAME = re.compile(
    r"(\|\s*)?(?<![\w.])("
    + "|".join(sorted(LOGICAL_DATE_TEMPLATES, key=len, reverse=True))
    + r")\b"
)


def _logical_date_warnings(
    doc: Document, path: SpecPath, text: str, run_after: str
) -> Iterator[Problem]:
    """Airflow templates that fail in a run without a logical date, and their replacement
    (``run_after``: how the targeted Airflow versions spell when the run was due)."""
    for match in _TEMPLATE.finditer(text):
        expression = match.group(1) or match.group(2) or ""
        names = (
            name for pipe, name in _LOGICAL_DATE_NAME.findall(expression) if not pipe
        )
        for name in dict.fromkeys(names):
            yield doc.warning(
                path,
                f"{{{{ {name} }}}} is undefined in a run without a logical date (a "
                "manual run from the UI or the REST API), which then fails; write "
                f"{{{{ {LOGICAL_DATE_TEMPLATES[name].replace(RUN_AFTER, run_after)} }}}} "
                "instead",
            )


def trainer_commands(doc: Document) -> Iterator[Problem]:
    """Every trainer needs a command; bash and mapped trainers have extra rules."""
    trainers, models = _section(doc, "trainers"), doc.trainer_models
    uses_bash = _uses_bash(trainers, models)
    matrix = trainers.get("matrix")
    if isinstance(matrix, dict) and all(isinstance(v, list) for v in matrix.values()):
        size = matrix_size(matrix)
        if size > MAX_TRAINERS:
            yield doc.error(
                ("trainers", "matrix"),
                f"makes {size:,} trainers; at most {MAX_TRAINERS:,} are supported",
            )
            return
    group_command = has_command(trainers)
    for index, model in enumerate(models):
        if not isinstance(model, dict):
            continue
        if (
            not group_command
            and not has_command(model)
            and docker_of(model, trainers) is None
        ):
            where = (
                ("trainers", "models", index) if "models" in trainers else ("trainers",)
            )
            yield doc.error(
                where,
                "no command: set python_callable (or bash_command) here, or on trainers for every model",
            )
    xcom_key = trainers.get("xcom_key", DEFAULT_XCOM_KEY)
    if uses_bash and xcom_key != DEFAULT_XCOM_KEY:
        yield doc.error(
            ("trainers", "xcom_key"),
            f"bash trainers push their last line of output as {DEFAULT_XCOM_KEY!r}; remove xcom_key or use python_callable",
        )
    if trainers.get("mapped") is True:
        if uses_bash:
            yield doc.error(
                ("trainers", "mapped"),
                "mapped trainers run python_callable only; remove bash_command",
            )
        for index, model in enumerate(trainers.get("models") or []):
            settings = (
                sorted(
                    set(model) & set(OPERATOR_SETTINGS)
                    | ({"python_callable"} & set(model))
                )
                if isinstance(model, dict)
                else []
            )
            if settings:
                yield doc.error(
                    ("trainers", "models", index, settings[0]),
                    f"mapped trainers share one task: set {settings[0]} on trainers, not per model",
                    key=True,
                )


def _uses_bash(trainers: dict[str, Any], models: list[Any]) -> bool:
    """Whether any trainer runs a bash command (and so pushes text, not a number)."""
    return any(
        runs_bash(model, trainers) for model in models if isinstance(model, dict)
    )


def _id_claims(doc: Document, models: list[Any]) -> Iterator[tuple[SpecPath, Any]]:
    """Every id that names a task (or the group) in the DAG, with where it is set."""
    data = doc.data
    download = data.get("download")
    if isinstance(download, list):
        for index, step in enumerate(download):
            yield ("download", index, "task_id"), as_mapping(step).get("task_id")
    else:
        yield ("download", "task_id"), as_mapping(download).get("task_id")
    trainers = as_mapping(data.get("trainers"))
    group_id = trainers.get("group_id")
    yield ("trainers", "group_id"), group_id
    if trainers.get("mapped") is True:
        yield (
            ("trainers", "mapped"),
            f"{group_id}.{trainers.get('mapped_task_id', DEFAULT_MAPPED_TASK_ID)}",
        )
    else:
        for index, model in enumerate(models):
            if isinstance(model, dict) and isinstance(model.get("task_id"), str):
                where = (
                    ("trainers", "models", index, "task_id")
                    if "models" in trainers
                    else ("trainers",)
                )
                yield where, f"{group_id}.{model['task_id']}"
    chooser = as_mapping(data.get("chooser"))
    yield ("chooser", "task_id"), chooser.get("task_id")
    if "threshold" in chooser:
        yield (
            ("chooser", "branch_task_id"),
            chooser.get("branch_task_id", DEFAULT_BRANCH_TASK_ID),
        )
    for branch in ("on_pass", "on_fail"):
        yield (
            ("chooser", branch, "task_id"),
            as_mapping(chooser.get(branch)).get("task_id"),
        )
    yield ("publish", "task_id"), as_mapping(data.get("publish")).get("task_id")
    if "registry" in data:
        registry = as_mapping(data.get("registry"))
        yield (
            ("registry", "task_id"),
            registry.get("task_id", DEFAULT_REGISTRY_TASK_ID),
        )
    if "approval" in data:
        yield (
            ("approval", "task_id"),
            as_mapping(data["approval"]).get("task_id", DEFAULT_APPROVAL_TASK_ID),
        )


def unique_ids(doc: Document) -> Iterator[Problem]:
    """Task ids (and the group id) share one namespace in a DAG."""
    owners: dict[str, SpecPath] = {}
    for path, task_id in _id_claims(doc, doc.trainer_models):
        if not isinstance(task_id, str):
            continue
        if task_id in owners:
            first = owners[task_id]
            yield doc.error(
                path,
                f"the id {quoted(task_id)} is already used by {format_spec_path(first)} ({doc.where(first)}); ids must be unique",
            )
        else:
            owners[task_id] = path
        if len(task_id) > 250:
            yield doc.error(
                path,
                f"the full task id {quoted(task_id)} is longer than Airflow's 250 characters",
            )


# In the order they always ran: problems at one place keep their order. allowed_env
# is not one of them: validate runs it after dropping the problems of refused values.
CHECKS = (
    real_dates,
    target_errors,
    cron_schedule,
    continuous_schedule,
    unique_ids,
    trainer_commands,
    metric_of_bash_trainers,
    same_xcom_key,
    doc_md_file,
    param_defaults,
    every_value,
    *ML_CHECKS,
    *RUNTIME_CHECKS,
    *KUBERNETES_CHECKS,
    *REGISTRY_CHECKS,
    *DOCKER_CHECKS,
    *RELEASE_CHECKS,
)
