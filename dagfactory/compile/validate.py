"""Check a loaded config: its shape against the JSON Schema, then what a schema cannot say.

The second stage of compiling, between :mod:`.load` and :mod:`.spec`. Every problem
becomes a :class:`~dagfactory.problems.Problem` at the line and column of the offending
value, with the spec path and what was expected; all problems of a file are returned
together. Reads nothing: what a config brought in from outside is on its document.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagfactory.compile.cron import cron_problem
from dagfactory.compile.load import Document, doc_md_location, walk
from dagfactory.compile.schema import fits, json_identity, python_regex, spec_schema
from dagfactory.compile.target import (
    RUN_AFTER,
    run_after_expression,
    target_errors,
    target_of,
)
from dagfactory.compile.vocabulary import (
    CALLABLE_KEYS,
    DEFAULT_BRANCH_TASK_ID,
    DEFAULT_MAPPED_TASK_ID,
    DEFAULT_XCOM_KEY,
    LOGICAL_DATE_TEMPLATES,
    MAX_TRAINERS,
    OPERATOR_SETTINGS,
    PARAM_KEYWORDS,
    has_command,
    is_duration_text,
    matrix_size,
    parse_date,
    runs_bash,
    trainer_models,
)
from dagfactory.problems import Problem, SpecPath, format_spec_path

if TYPE_CHECKING:
    import jsonschema


def _pattern(
    validator: jsonschema.protocols.Validator,
    pattern: str,
    instance: Any,
    schema: dict[str, Any],
) -> Iterator[jsonschema.ValidationError]:
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not python_regex(pattern).search(
        instance
    ):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _unique_items(
    validator: jsonschema.protocols.Validator,
    unique: bool,
    instance: Any,
    schema: dict[str, Any],
) -> Iterator[jsonschema.ValidationError]:
    """``uniqueItems`` in linear time: jsonschema's own check is quadratic on mixed types."""
    from jsonschema import ValidationError

    if unique and validator.is_type(instance, "array"):
        if len(set(map(json_identity, instance))) != len(instance):
            yield ValidationError(f"{instance!r} has non-unique elements")


@cache
def _validator() -> jsonschema.protocols.Validator:
    """One validator for the process, over the schema with its references inlined.

    Imported and built only for a document that does not fit (:func:`.schema.fits`):
    jsonschema is what says where and why.
    """
    import jsonschema

    strict = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        {"pattern": _pattern, "uniqueItems": _unique_items},
    )
    return strict(_inline_refs(spec_schema(), spec_schema()))


def _inline_refs(node: Any, schema: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with each local ``{"$ref": "#/$defs/NAME", ...}`` replaced by that definition.

    Following a reference is the costliest step of validating a small document, and the
    spec's references are plain aliases (their only siblings are annotations such as
    ``default``), so the inlined schema accepts and rejects exactly the same documents,
    with the same subschema (and so the same description) on every error. A reference
    back into a definition being inlined is left as it is.
    """
    if isinstance(node, list):
        return [_inline_refs(item, schema, seen) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        name = reference.removeprefix("#/$defs/")
        if name not in seen:
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            definition = schema["$defs"]
            for part in name.split("/"):  # e.g. operator_settings/properties/queue
                definition = definition[part]
            target = _inline_refs(definition, schema, (*seen, name))
            return target | _inline_refs(siblings, schema, seen)
    return {key: _inline_refs(value, schema, seen) for key, value in node.items()}


def validate(doc: Document) -> list[Problem]:
    """Every problem in ``doc``, in file order; an empty list means it can be rendered."""
    disagreements = dict(_yaml_disagreements(doc))
    errors = []
    if not fits(doc.data):
        for error in _validator().iter_errors(doc.data):
            errors.extend(_schema_errors(doc, error, disagreements))
    errors += [doc.error(path, message) for path, message in disagreements.items()]
    errors += _semantic_errors(doc)
    return sorted(set(errors), key=Problem.sort_key)


# -- YAML 1.1 surprises ---------------------------------------------------------------


def _yaml12_value(text: str) -> Any:
    """What a YAML 1.2 (core schema) reader makes of an unquoted scalar."""
    if text in {"", "~", "null", "Null", "NULL"}:
        return None
    if text in {"true", "True", "TRUE", "false", "False", "FALSE"}:
        return text.lower() == "true"
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if body.isdigit() and body.isascii():
        return sign * int(body)
    if text.startswith(("0o", "0x")) and len(text) > 2:
        try:
            return int(text[2:], 8 if text[1] == "o" else 16)
        except ValueError:
            return text
    if body in {".inf", ".Inf", ".INF"}:
        return sign * math.inf
    if text in {".nan", ".NaN", ".NAN"}:
        return math.nan
    if body[:1] in set("0123456789.") and "_" not in body and body.isascii():
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _yaml_disagreements(doc: Document) -> Iterator[tuple[SpecPath, str]]:
    """Unquoted values that YAML 1.1 (PyYAML) and YAML 1.2 read differently."""
    for path, text in doc.plain_text.items():
        here = _lookup(doc.data, path)
        there = _yaml12_value(text)
        if not _same(here, there):
            yield (
                path,
                (
                    f"YAML readers disagree on the unquoted value {text}: {_describe(here)} here (YAML 1.1),"
                    f" {_describe(there)} in YAML 1.2; quote it ('{text}') if you mean text,"
                    " or write it so that both agree"
                ),
            )


def _lookup(data: Any, path: SpecPath) -> Any:
    for part in path:
        data = data[part]
    return data


# -- schema errors --------------------------------------------------------------------


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _expected(schema: dict[str, Any]) -> str:
    # A mapping's description is a sentence about its section, not a name for a value.
    if "description" in schema and schema.get("type") != "object":
        return schema["description"]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    return " or ".join(_TYPE_NAMES[t] for t in types) or "a valid value"


def _schema_errors(
    doc: Document, error: jsonschema.ValidationError, disagreements: dict[SpecPath, str]
) -> Iterator[Problem]:
    path: SpecPath = tuple(error.absolute_path)
    kind, value, instance, schema = (
        error.validator,
        error.validator_value,
        error.instance,
        error.schema,
    )
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for key in sorted(set(instance) - set(allowed)):
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f"did you mean {hint[0]!r}? " if hint else ""
            yield doc.error(
                (*path, key),
                f"unknown key {key!r}; {suggestion}allowed: {', '.join(allowed)}",
                key=True,
            )
        return
    if "propertyNames" in error.schema_path:
        yield doc.error(
            (*path, instance),
            f"the key {instance!r} is not {_expected(schema)}",
            key=True,
        )
        return
    if kind == "required":
        missing = [key for key in value if key not in instance]
        yield doc.error(path, f"missing required key {', '.join(map(repr, missing))}")
        return
    if kind in {"oneOf", "not"} and _only_required(value):
        if not isinstance(instance, dict):
            return  # its "type" error already says a mapping is expected
        branches = value if kind == "oneOf" else [value]
        names = [name for branch in branches for name in branch["required"]]
        given = [name for name in names if name in instance]
        choices = " or ".join(map(repr, names))
        if len(given) > 1:
            yield doc.error(
                (*path, given[-1]), f"give only one of {choices}, not both", key=True
            )
        else:
            yield doc.error(path, f"needs one of {choices}")
        return
    viable = _viable_branch(error) if kind in {"anyOf", "oneOf"} else None
    if viable is not None:
        for sub_error in viable:
            yield from _schema_errors(doc, sub_error, disagreements)
        return
    if kind == "dependentRequired":
        for key, needs in value.items():
            if key in instance and any(need not in instance for need in needs):
                yield doc.error(
                    (*path, key),
                    f"{key!r} is only allowed together with {', '.join(map(repr, needs))}",
                    key=True,
                )
        return
    if kind == "enum":
        message = (
            f"expected one of {', '.join(map(repr, value))}, got {_describe(instance)}"
        )
        written = doc.plain_text.get(path)
        if written in value:  # e.g. target_airflow: 2.10, which YAML reads as 2.1
            message += f" (the unquoted {written}); quote it: '{written}'"
    elif kind == "minItems":
        message = f"needs at least {value} item{'s' if value != 1 else ''}"
    elif kind == "uniqueItems":
        message = "items must be unique"
    elif kind == "minLength" and value == 1:
        message = "must not be empty"
    elif kind in {"minLength", "maxLength"}:
        message = f"expected {_expected(schema)}, got {len(instance)} characters"
    elif kind == "minimum":
        message = f"expected a number of at least {value}, got {_describe(instance)}"
    elif kind in {"type", "pattern", "anyOf"}:
        message = f"expected {_expected(schema)}, got {_describe(instance)}"
    else:
        message = error.message
    if path in disagreements:
        message += f" ({disagreements.pop(path)})"
    yield doc.error(path, message)


def _only_required(value: Any) -> bool:
    branches = value if isinstance(value, list) else [value]
    return all(isinstance(b, dict) and set(b) == {"required"} for b in branches)


def _viable_branch(
    error: jsonschema.ValidationError,
) -> list[jsonschema.ValidationError] | None:
    """The errors of the one alternative whose type fits, if exactly one does.

    ``download`` may be a step or a list of steps: for a mapping, the errors inside
    the step are what the user needs, not "expected a step or a list".
    """
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub_error in error.context or []:
        branches.setdefault(sub_error.relative_schema_path[0], []).append(sub_error)
    depth = len(error.absolute_path)
    viable = [
        errors
        for errors in branches.values()
        if not any(
            e.validator == "type" and len(e.absolute_path) == depth for e in errors
        )
    ]
    return viable[0] if len(viable) == 1 else None


# -- what the schema cannot say -------------------------------------------------------


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _continuous_errors(doc: Document, dag: dict[str, Any]) -> Iterator[Problem]:
    """Airflow refuses to load a continuous DAG that may run more than once at a time."""
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


def _semantic_errors(doc: Document) -> Iterator[Problem]:
    """Checks across keys; each one skips values the schema already rejected."""
    data = doc.data
    dag, trainers, chooser = (
        _mapping(data.get(key)) for key in ("dag", "trainers", "chooser")
    )
    yield from _date_errors(doc, dag)
    yield from _env_errors(doc)
    yield from target_errors(doc)
    schedule = dag.get("schedule")
    cron_shape = python_regex(spec_schema()["$defs"]["cron_or_preset"]["pattern"])
    if (
        isinstance(schedule, str)
        and not is_duration_text(schedule)
        and cron_shape.search(schedule)  # else the schema says what a schedule is
        and (problem := cron_problem(schedule)) is not None
    ):
        yield doc.error(("dag", "schedule"), problem)
    yield from _continuous_errors(doc, dag)
    models = _trainer_models(trainers)
    yield from _duplicate_ids(doc, models)
    uses_bash = _uses_bash(trainers, models)
    yield from _trainer_errors(doc, trainers, models, uses_bash)
    yield from _ml_contract_errors(doc, models)

    metric = chooser.get("metric")
    if isinstance(metric, str) and uses_bash:
        yield doc.error(
            ("chooser", "metric"),
            f"bash trainers push their last line of output as text, which has no {metric!r}; "
            "remove metric, or give every trainer a python_callable that returns a mapping",
        )

    pushed = trainers.get("xcom_key", DEFAULT_XCOM_KEY)
    pulled = chooser.get("xcom_key", pushed)
    if isinstance(pulled, str) and isinstance(pushed, str) and pulled != pushed:
        yield doc.error(
            ("chooser", "xcom_key"),
            f"must equal trainers.xcom_key ({pushed!r}), the key the trainers push their metric under",
        )

    doc_file = doc_md_location(doc)
    if doc_file is not None and not doc_file[1]:
        yield doc.error(
            ("dag", "doc_md_file"),
            "must be a file in the config's folder or below it (no absolute path, no '..' out of it)",
        )
    elif doc_file is not None and doc.inputs.doc_md is None:
        yield doc.error(
            ("dag", "doc_md_file"),
            f"no such file: {doc_file[0].as_posix()} (paths are relative to the config's folder)",
        )

    for name, param in _mapping(dag.get("params")).items():
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

    run_after = run_after_expression(target_of(data))
    for path, value in walk(data):
        if path[-1:] and path[-1] in CALLABLE_KEYS and isinstance(value, str):
            for name in value.replace(":", ".").split("."):
                if keyword.iskeyword(name):
                    yield doc.error(
                        path,
                        f"{name!r} is a Python keyword, not a module or function name",
                    )
        if isinstance(value, float) and not math.isfinite(value):
            yield doc.error(
                path, f"{value!r} cannot be passed to a task; use a finite number"
            )
        if isinstance(value, str) and "{" in value:
            yield from _logical_date_warnings(doc, path, value, run_after)


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


def _env_errors(doc: Document) -> Iterator[Problem]:
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


def _date_errors(doc: Document, dag: dict[str, Any]) -> Iterator[Problem]:
    zone = dag.get("timezone")
    if isinstance(zone, str):
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            yield doc.error(
                ("dag", "timezone"),
                f"unknown time zone {zone!r}; use an IANA name such as Europe/Amsterdam or UTC",
            )
            zone = None
    dates = {}
    for key in ("start_date", "end_date"):
        value = dag.get(key)
        if isinstance(value, str):
            try:
                dates[key] = parse_date(value, zone if isinstance(zone, str) else None)
            except (ValueError, ZoneInfoNotFoundError) as exc:
                yield doc.error(("dag", key), f"{value!r} is not a real date ({exc})")
    if len(dates) == 2 and dates["end_date"] <= dates["start_date"]:
        yield doc.error(("dag", "end_date"), "must be after dag.start_date")


def _trainer_errors(
    doc: Document, trainers: dict[str, Any], models: list[Any], uses_bash: bool
) -> Iterator[Problem]:
    """Every trainer needs a command; bash and mapped trainers have extra rules."""
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
        if not group_command and not has_command(model):
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


def _trainer_models(trainers: dict[str, Any]) -> list[Any]:
    """The trainers to check: none when the section is malformed, or would generate more
    than MAX_TRAINERS (a count or matrix far too large must not exhaust the machine)."""
    count, matrix = trainers.get("count"), trainers.get("matrix")
    if isinstance(count, int) and count > MAX_TRAINERS:
        return []
    if isinstance(matrix, dict) and matrix_size(matrix) > MAX_TRAINERS:
        return []
    try:
        models = trainer_models(trainers)
    except (KeyError, TypeError, AttributeError, ValueError):
        return []
    return models if isinstance(models, list) else []


def _id_claims(doc: Document, models: list[Any]) -> Iterator[tuple[SpecPath, Any]]:
    """Every id that names a task (or the group) in the DAG, with where it is set."""
    data = doc.data
    download = data.get("download")
    if isinstance(download, list):
        for index, step in enumerate(download):
            yield ("download", index, "task_id"), _mapping(step).get("task_id")
    else:
        yield ("download", "task_id"), _mapping(download).get("task_id")
    trainers = _mapping(data.get("trainers"))
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
    chooser = _mapping(data.get("chooser"))
    yield ("chooser", "task_id"), chooser.get("task_id")
    if "threshold" in chooser:
        yield (
            ("chooser", "branch_task_id"),
            chooser.get("branch_task_id", DEFAULT_BRANCH_TASK_ID),
        )
    for branch in ("on_pass", "on_fail"):
        yield (
            ("chooser", branch, "task_id"),
            _mapping(chooser.get(branch)).get("task_id"),
        )
    yield ("publish", "task_id"), _mapping(data.get("publish")).get("task_id")


def _duplicate_ids(doc: Document, models: list[Any]) -> Iterator[Problem]:
    """Task ids (and the group id) share one namespace in a DAG."""
    owners: dict[str, SpecPath] = {}
    for path, task_id in _id_claims(doc, models):
        if not isinstance(task_id, str):
            continue
        if task_id in owners:
            first = owners[task_id]
            yield doc.error(
                path,
                f"the id {task_id!r} is already used by {format_spec_path(first)} ({doc.where(first)}); ids must be unique",
            )
        else:
            owners[task_id] = path
        if len(task_id) > 250:
            yield doc.error(
                path,
                f"the full task id {task_id!r} is longer than Airflow's 250 characters",
            )


# -- issue 22: data in, min_success, publish.when -------------------------------------


def _ml_contract_errors(doc: Document, models: list[Any]) -> Iterator[Problem]:
    """What the schema cannot check of ``inputs``, ``chooser.min_success`` and ``publish.when``."""
    data = doc.data
    chooser, publish = _mapping(data.get("chooser")), _mapping(data.get("publish"))
    if publish.get("when") == "passed" and "threshold" not in chooser:
        yield doc.error(
            ("publish", "when"),
            "'passed' waits for the winner to reach chooser.threshold, which is not set;"
            " set a threshold, or remove when (publish then follows the chooser)",
        )
    count = chooser.get("min_success")
    if isinstance(count, int) and not isinstance(count, bool) and models:
        if count > len(models):
            yield doc.error(
                ("chooser", "min_success"),
                f"is {count}, but there are {len(models)} trainers; use at most"
                f" {len(models)}, or a share such as '75%'",
            )
    yield from _input_errors(doc, _mapping(data.get("trainers")))


def _download_ids(data: dict[str, Any]) -> list[str]:
    download = data.get("download")
    steps = download if isinstance(download, list) else [download]
    return [
        step["task_id"]
        for step in steps
        if isinstance(_mapping(step).get("task_id"), str)
    ]


def _input_errors(doc: Document, trainers: dict[str, Any]) -> Iterator[Problem]:
    """Each input names a download step, by a name the trainer can take it as: a
    Python identifier that is not one of its op_kwargs (which would be passed twice)."""
    known = _download_ids(doc.data)
    group_kwargs = {
        **_mapping(trainers.get("op_kwargs")),
        **_mapping(trainers.get("matrix")),
    }
    written = [(("trainers", "inputs"), _mapping(trainers.get("inputs")), group_kwargs)]
    listed = trainers.get("models")
    for index, model in enumerate(listed if isinstance(listed, list) else []):
        if isinstance(model, dict):
            kwargs = {**group_kwargs, **_mapping(model.get("op_kwargs"))}
            own = _mapping(model.get("inputs"))
            written.append((("trainers", "models", index, "inputs"), own, kwargs))
            # the group's inputs reach this model too, unless it names them itself
            for name in set(written[0][1]) - set(own) - set(group_kwargs):
                if name in kwargs:
                    yield doc.error(
                        (*written[0][0], name),
                        f"{name!r} is also an op_kwargs key of trainer"
                        f" {model.get('task_id')!r}; an input needs a name of its own",
                        key=True,
                    )
    for path, inputs, kwargs in written:
        for name, task_id in inputs.items():
            if isinstance(task_id, str) and task_id not in known:
                yield doc.error(
                    (*path, name),
                    f"{task_id!r} is not a download step; an input names the task_id"
                    f" of one: {', '.join(map(repr, known)) or 'none is set'}",
                )
            if not str(name).isidentifier() or keyword.iskeyword(str(name)):
                yield doc.error(
                    (*path, name),
                    f"{name!r} is not a Python identifier: a python trainer takes an"
                    " input as a keyword argument of that name",
                    key=True,
                )
            elif path != written[0][0] and name in kwargs:
                yield doc.error(
                    (*path, name),
                    f"{name!r} is also an op_kwargs key of this trainer; an input"
                    " needs a name of its own",
                    key=True,
                )
            elif path == written[0][0] and name in group_kwargs:
                yield doc.error(
                    (*path, name),
                    f"{name!r} is also an op_kwargs key of the trainers; an input"
                    " needs a name of its own",
                    key=True,
                )
