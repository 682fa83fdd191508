"""The spec's JSON Schema, and a quick yes or no to whether a document fits it.

Nearly every config a user saves is valid, and for a valid config the only question is
whether it fits: jsonschema answers it too, but importing it costs a ``validate`` more
than the rest of its work, and walking its validator is the largest part of compiling a
config. :func:`fits` answers it with the schema compiled once into plain Python checks,
keyword for keyword with Draft 2020-12's meaning; :mod:`.validate` asks jsonschema only
for a document that does not fit, to say at length why. A keyword this module does not
know makes the schema fail to compile here, never a check that passes by default.
"""

from __future__ import annotations

import functools
import json
import numbers
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

Check = Callable[[Any], bool]

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "spec.schema.json"

# Keywords that describe or hold, and never reject.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default"}
)


@functools.cache
def spec_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) shipped with the package: the source of truth for shape."""
    # A path, not importlib.resources: the package is always installed as files (its
    # Jinja loader needs them too), and resources' imports cost a keystroke 2 ms.
    return json.loads(SCHEMA_FILE.read_bytes())


@functools.cache
def python_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema (ECMA-262) pattern as a Python regex with the same meaning.

    ECMA's ``$`` matches only at the very end of the text; Python's also matches before
    a final newline, which would let ``"demo\\n"`` pass as a DAG id. So ``$`` becomes ``\\Z``.
    """
    translated, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        translated.append(char)
    return re.compile("".join(translated))


def json_identity(value: Any) -> Any:
    """A hashable key that is equal for JSON-equal values (``1`` and ``1.0``, not ``true``)."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, list):
        return ("array", tuple(map(json_identity, value)))
    if isinstance(value, dict):
        return ("object", frozenset((k, json_identity(v)) for k, v in value.items()))
    return ("value", value)


def fits(data: Any) -> bool:
    """Whether ``data`` is valid under the spec's schema (what jsonschema would say)."""
    return _spec_check()(data)


@functools.cache
def _spec_check() -> Check:
    return SchemaCompiler(spec_schema()).compile(spec_schema())


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "null": lambda value: value is None,
    "number": _is_number,
    "object": lambda value: isinstance(value, dict),
    "string": lambda value: isinstance(value, str),
}


class SchemaCompiler:
    """Turns (sub)schemas of one root schema into checks; local ``$ref`` s are followed
    lazily, so a recursive schema compiles."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.references: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        checks = []
        for keyword, argument in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            applies_to, check = self._keyword(keyword, argument, schema)
            if applies_to is not None:
                # Like most keywords, it says nothing of a value of another type.
                check = _only_for(_TYPES[applies_to], check)
            checks.append(check)
        if len(checks) == 1:
            return checks[0]
        return functools.partial(_passes_all, checks)

    def _reference(self, reference: str) -> Check:
        if not reference.startswith("#/$defs/"):
            raise ValueError(f"$ref {reference!r}: only local #/$defs/ references")
        if reference not in self.references:
            target = self.root["$defs"]
            for part in reference.removeprefix("#/$defs/").split("/"):
                target = target[part]
            compiled: list[Check] = []
            self.references[reference] = lambda value: compiled[0](value)
            compiled.append(self.compile(target))
        return self.references[reference]

    def _keyword(
        self, keyword: str, argument: Any, schema: dict
    ) -> tuple[str | None, Check]:
        """The check of one keyword, and the type it applies to (None: every value)."""
        match keyword:
            case "$ref":
                return None, self._reference(argument)
            case "type":
                names = [argument] if isinstance(argument, str) else argument
                kinds = [_TYPES[name] for name in names]
                return None, lambda value: any(kind(value) for kind in kinds)
            case "enum":
                allowed = [json_identity(choice) for choice in argument]
                return None, lambda value: json_identity(value) in allowed
            case "anyOf":
                options = [self.compile(sub) for sub in argument]
                return None, lambda value: any(option(value) for option in options)
            case "oneOf":
                options = [self.compile(sub) for sub in argument]
                return None, lambda value: sum(option(value) for option in options) == 1
            case "not":
                negated = self.compile(argument)
                return None, lambda value: not negated(value)
            case "pattern":
                search = python_regex(argument).search
                return "string", lambda value: bool(search(value))
            case "minLength":
                return "string", lambda value: len(value) >= argument
            case "maxLength":
                return "string", lambda value: len(value) <= argument
            case "minimum":
                return "number", lambda value: value >= argument
            case "maximum":
                return "number", lambda value: value <= argument
            case "minItems":
                return "array", lambda value: len(value) >= argument
            case "uniqueItems":
                return (
                    "array",
                    lambda value: (
                        not argument
                        or len(set(map(json_identity, value))) == len(value)
                    ),
                )
            case "items":
                return "array", functools.partial(_all_of, self.compile(argument))
            case "required":
                return "object", lambda value: all(name in value for name in argument)
            case "minProperties":
                return "object", lambda value: len(value) >= argument
            case "properties":
                members = {name: self.compile(sub) for name, sub in argument.items()}
                # By the value's members: a config writes a few of the many properties.
                return "object", lambda value: all(
                    members[name](member)
                    for name, member in value.items()
                    if name in members
                )
            case "additionalProperties":
                if "patternProperties" in schema:
                    raise ValueError("patternProperties has no fast check")
                known = set(schema.get("properties", ()))
                other = self.compile(argument)
                return "object", lambda value: all(
                    other(member) for name, member in value.items() if name not in known
                )
            case "propertyNames":
                return "object", functools.partial(_all_of, self.compile(argument))
            case "dependentRequired":
                return "object", lambda value: all(
                    needed in value
                    for name, needs in argument.items()
                    if name in value
                    for needed in needs
                )
        raise ValueError(f"the schema keyword {keyword!r} has no fast check")


def _only_for(kind: Check, check: Check) -> Check:
    return lambda value: not kind(value) or check(value)


def _passes_all(checks: list[Check], value: Any) -> bool:
    """Every check of one schema, stopping at the first that fails (a loop is faster
    than ``all`` over a generator, and each schema of the spec is checked often)."""
    for check in checks:
        if not check(value):
            return False
    return True


def _all_of(check: Check, values: Any) -> bool:
    """``check`` of every item of a list, or of every name of a mapping."""
    return all(map(check, values))
