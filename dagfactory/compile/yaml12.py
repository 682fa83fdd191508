"""Unquoted values that YAML 1.1 and YAML 1.2 readers load differently, as problems.

PyYAML (the loader) reads YAML 1.1: ``on`` is true, ``0777`` is octal and ``2.10`` is
the number 2.1; an editor, a linter or another tool that reads YAML 1.2 disagrees. A
config means one thing to every reader, so such a value is an error that says how to
write it. :func:`describe` names a loaded value the same way in every problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dagfactory.compile.text import quoted
from dagfactory.problems import SpecPath

if TYPE_CHECKING:
    from dagfactory.compile.document import Document


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


def yaml_disagreements(doc: Document) -> Iterator[tuple[SpecPath, str]]:
    """Unquoted values that YAML 1.1 (PyYAML) and YAML 1.2 read differently."""
    for path, text in doc.plain_text.items():
        here = _lookup(doc.data, path)
        there = _yaml12_value(text)
        if not _same(here, there):
            yield (
                path,
                (
                    f"YAML readers disagree on the unquoted value {text}: {describe(here)} here (YAML 1.1),"
                    f" {describe(there)} in YAML 1.2; quote it ('{text}') if you mean text,"
                    " or write it so that both agree"
                ),
            )


def _lookup(data: Any, path: SpecPath) -> Any:
    for part in path:
        data = data[part]
    return data


def describe(value: Any) -> str:
    """A loaded value as a problem names it: ``the number 1.5``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {quoted(value)}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"
