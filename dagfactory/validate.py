"""Check a loaded config: its shape against the JSON Schema, then what a schema cannot say.

Every problem becomes a :class:`SpecError` at the line and column of the offending
value, with the spec path and what was expected; all problems of a file are returned
together.
"""

from __future__ import annotations

import difflib
import json
import keyword
import math
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from dagfactory.errors import SpecError, SpecPath, format_spec_path

if TYPE_CHECKING:
    import jsonschema

    from dagfactory.loader import Document

DEFAULT_XCOM_KEY = "return_value"


@cache
def spec_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) shipped with the package: the source of truth for shape."""
    text = (
        resources.files("dagfactory")
        .joinpath("schema/spec.schema.json")
        .read_text("utf-8")
    )
    return json.loads(text)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    """One validator for the process, over the schema with its references inlined."""
    import jsonschema  # here, so that importing the model does not cost its import time

    return jsonschema.Draft202012Validator(_inline_refs(spec_schema(), spec_schema()))


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
            target = _inline_refs(schema["$defs"][name], schema, (*seen, name))
            return target | _inline_refs(siblings, schema, seen)
    return {key: _inline_refs(value, schema, seen) for key, value in node.items()}


def validate(doc: Document) -> list[SpecError]:
    """Every problem in ``doc``, in file order; an empty list means it can be rendered."""
    disagreements = dict(_yaml_disagreements(doc))
    errors = []
    for error in _validator().iter_errors(doc.data):
        errors.extend(_schema_errors(doc, error, disagreements))
    errors += [doc.error(path, message) for path, message in disagreements.items()]
    errors += _semantic_errors(doc)
    return sorted(set(errors), key=SpecError.sort_key)


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
    if "description" in schema:
        return schema["description"]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    return " or ".join(_TYPE_NAMES[t] for t in types) or "a valid value"


def _schema_errors(
    doc: Document, error: jsonschema.ValidationError, disagreements: dict[SpecPath, str]
) -> Iterator[SpecError]:
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
    if kind == "oneOf" and all(set(branch) == {"required"} for branch in value):
        names = [branch["required"][0] for branch in value]
        given = [name for name in names if name in instance]
        choices = " or ".join(map(repr, names))
        if given:
            yield doc.error(
                (*path, given[-1]), f"give only one of {choices}, not both", key=True
            )
        else:
            yield doc.error(path, f"missing a command: give one of {choices}")
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


# -- what the schema cannot say -------------------------------------------------------


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _semantic_errors(doc: Document) -> Iterator[SpecError]:
    """Checks across keys; each one skips values the schema already rejected."""
    data = doc.data
    dag, download = _mapping(data.get("dag")), _mapping(data.get("download"))
    trainers, chooser = _mapping(data.get("trainers")), _mapping(data.get("chooser"))
    models = trainers.get("models") if isinstance(trainers.get("models"), list) else []

    start_date = dag.get("start_date")
    if isinstance(start_date, str):
        try:
            datetime.fromisoformat(start_date)
        except ValueError as exc:
            yield doc.error(
                ("dag", "start_date"), f"{start_date!r} is not a real date ({exc})"
            )

    yield from _duplicate_ids(doc, download, trainers, models, chooser)

    group_callable = trainers.get("python_callable")
    for index, model in enumerate(models):
        if (
            isinstance(model, dict)
            and "python_callable" not in model
            and group_callable is None
        ):
            yield doc.error(
                ("trainers", "models", index),
                "no python_callable: set one here, or trainers.python_callable for every model",
            )

    pushed = trainers.get("xcom_key", DEFAULT_XCOM_KEY)
    pulled = chooser.get("xcom_key", pushed)
    if isinstance(pulled, str) and isinstance(pushed, str) and pulled != pushed:
        yield doc.error(
            ("chooser", "xcom_key"),
            f"must equal trainers.xcom_key ({pushed!r}), the key the trainers push their metric under",
        )

    for path, value in _walk(data, ()):
        if path[-1:] == ("python_callable",) and isinstance(value, str):
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


def _duplicate_ids(
    doc: Document,
    download: dict[str, Any],
    trainers: dict[str, Any],
    models: list[Any],
    chooser: dict[str, Any],
) -> Iterator[SpecError]:
    """Task ids (and the group id) share one namespace in a DAG."""
    group_id = trainers.get("group_id")
    claims: list[tuple[SpecPath, Any]] = [
        (("download", "task_id"), download.get("task_id")),
        (("trainers", "group_id"), group_id),
    ]
    claims += [
        (("trainers", "models", index, "task_id"), f"{group_id}.{model.get('task_id')}")
        for index, model in enumerate(models)
        if isinstance(model, dict) and isinstance(model.get("task_id"), str)
    ]
    claims.append((("chooser", "task_id"), chooser.get("task_id")))
    owners: dict[str, SpecPath] = {}
    for path, task_id in claims:
        if not isinstance(task_id, str):
            continue
        if task_id in owners:
            first = owners[task_id]
            line = doc.locate(first).line
            yield doc.error(
                path,
                f"the id {task_id!r} is already used by {format_spec_path(first)} (line {line}); ids must be unique",
            )
        else:
            owners[task_id] = path
        if len(task_id) > 250:
            yield doc.error(
                path,
                f"the full task id {task_id!r} is longer than Airflow's 250 characters",
            )


def _walk(value: Any, path: SpecPath) -> Iterator[tuple[SpecPath, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, (*path, index))
