"""Check a loaded config: its shape against the JSON Schema, then what a schema cannot say.

The second stage of compiling, between :mod:`.load` and :mod:`.spec`. Every problem
becomes a :class:`~dagfactory.problems.Problem` at the line and column of the offending
value, with the spec path and what was expected; all problems of a file are returned
together. Reads nothing: what a config brought in from outside is on its document.

Here: the entry point and what turns a JSON-Schema error into words a person can act
on. The values YAML readers disagree on are in :mod:`.yaml12`; the rules across keys,
one named check each, in :mod:`.checks`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from dagfactory.compile.checks import CHECKS, allowed_env
from dagfactory.compile.document import Document
from dagfactory.compile.environment import refused_paths
from dagfactory.compile.schema import fits, json_identity, python_regex, spec_schema
from dagfactory.compile.text import quoted
from dagfactory.compile.yaml12 import describe, yaml_disagreements
from dagfactory.problems import Problem, SpecPath

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
    disagreements = dict(yaml_disagreements(doc))
    errors = []
    if not fits(doc.data):
        for error in _validator().iter_errors(doc.data):
            errors.extend(_schema_errors(doc, error, disagreements))
    errors += [doc.error(path, message) for path, message in disagreements.items()]
    for check in CHECKS:
        errors += check(doc)
    # A value withheld for reading a refused variable is not judged: its one problem
    # is that it reads that variable.
    withheld = refused_paths(doc)
    errors = [error for error in errors if error.spec_path not in withheld]
    errors += allowed_env(doc)
    return sorted(set(errors), key=Problem.sort_key)


# -- schema errors --------------------------------------------------------------------


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
                f"unknown key {quoted(key)}; {suggestion}allowed: {', '.join(allowed)}",
                key=True,
            )
        return
    if "propertyNames" in error.schema_path:
        yield doc.error(
            (*path, instance),
            f"the key {quoted(instance)} is not {_expected(schema)}",
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
            f"expected one of {', '.join(map(repr, value))}, got {describe(instance)}"
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
        message = f"expected a number of at least {value}, got {describe(instance)}"
    elif kind in {"type", "pattern", "anyOf"}:
        message = f"expected {_expected(schema)}, got {describe(instance)}"
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
