"""Config values as Python source: the only way a value from a config reaches a DAG file.

:func:`python_literal` emits a Python literal or fails, so user text is never pasted
into code; the output is laid out as ``ruff format`` leaves it. Used by :mod:`.render`
as the templates' ``py`` filter.

A literal spread over several lines does not need to know the column it starts at:
:func:`continued` marks each line after its first, and :func:`indent_continued` (run
on the rendered file) indents each marked line by the indentation of the line the
value started on. So templates never pass indentation by hand.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# Starts a line that continues a value begun on an earlier line. A literal never holds
# it (strings escape every unprintable character), nor does a template.
CONTINUED = "\x00"


def python_literal(value: Any, indent: int = 0) -> str:
    """``value`` as Python source; non-empty containers are exploded one item per line.

    ``indent`` is the indentation (in spaces) of the line the literal starts on.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, str):
        return _string_literal(value)
    if isinstance(value, datetime):
        return _datetime_source(value)
    if isinstance(value, timedelta):
        return _timedelta_source(value)
    if isinstance(value, list | tuple):
        items = [python_literal(item, indent + 4) for item in value]
        return _exploded("[", items, "]", indent)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("only text keys can be rendered")
        items = [
            f"{_string_literal(key)}: {python_literal(item, indent + 4)}"
            for key, item in value.items()
        ]
        return _exploded("{", items, "}", indent)
    raise TypeError(f"cannot render a {type(value).__name__} as a Python literal")


def _exploded(opening: str, items: list[str], closing: str, indent: int) -> str:
    if not items:
        return opening + closing
    inner = " " * (indent + 4)
    lines = "".join(f"{inner}{item},\n" for item in items)
    return f"{opening}\n{lines}{' ' * indent}{closing}"


def _string_literal(text: str) -> str:
    """A string literal with the quotes ruff prefers (double, unless that needs more escapes)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    if text.isprintable() and "\\" not in text and quote not in text:
        return quote + text + quote  # nothing to escape, as for most ids and keys
    body = []
    for char in text:
        if char == "\\":
            body.append("\\\\")
        elif char == quote:
            body.append("\\" + quote)
        elif char == "\n":
            body.append("\\n")
        elif char == "\r":
            body.append("\\r")
        elif char == "\t":
            body.append("\\t")
        elif char.isprintable():
            body.append(char)
        elif ord(char) < 0x100:
            body.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            body.append(f"\\u{ord(char):04x}")
        else:
            body.append(f"\\U{ord(char):08x}")
    return quote + "".join(body) + quote


def _datetime_source(moment: datetime) -> str:
    """An aware datetime as ``pendulum.datetime(...)`` in its zone (UTC or IANA)."""
    if moment.tzinfo is UTC:
        zone = "UTC"
    elif isinstance(moment.tzinfo, ZoneInfo):
        zone = moment.tzinfo.key
    else:
        raise ValueError("only datetimes in UTC or an IANA time zone are rendered")
    parts = [moment.year, moment.month, moment.day, moment.hour, moment.minute]
    parts += [moment.second, moment.microsecond]
    while len(parts) > 3 and parts[-1] == 0:
        parts.pop()
    numbers = ", ".join(map(str, parts))
    return f"pendulum.datetime({numbers}, tz={_string_literal(zone)})"


def _timedelta_source(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds != delta.total_seconds():
        raise ValueError("only whole seconds are rendered")
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds and seconds % size == 0:
            return f"timedelta({unit}={seconds // size})"
    return f"timedelta(seconds={seconds})"


def continued(text: str) -> str:
    """``text`` with its own continued lines indented, and each line after the first marked.

    Applied to everything that spreads over lines in a template (a literal, a macro's
    output), so nested values are indented from the line they start on, at every depth.
    """
    return indent_continued(text).replace("\n", "\n" + CONTINUED)


def indent_continued(text: str) -> str:
    """Replace each line mark with the indentation of the nearest unmarked line above it.

    Only marked lines are visited (a file has a few among many): the text is split at
    them, and each piece's last line is the nearest unmarked line above the next mark.
    """
    if CONTINUED not in text:
        return text
    # A newline in front makes a mark on the first line a split like any other, with
    # nothing above it (the empty first piece).
    pieces = ("\n" + text).split("\n" + CONTINUED)
    base = ""
    for number, piece in enumerate(pieces):
        if number:
            pieces[number] = base + piece
        if "\n" in piece:  # else the piece is one marked line: the base stays
            base = _indentation(piece)
    return "\n".join(pieces)[1:]


def _indentation(text: str) -> str:
    """The spaces that start the last line of ``text``."""
    last = text[text.rfind("\n") + 1 :]
    return last[: len(last) - len(last.lstrip(" "))]


def literal_filter(value: Any, indent: int | None = None) -> str:
    """The ``py`` filter: a literal indented from its line, or from ``indent`` when given.

    ``indent`` (spaces) is for a team's templates written before literals knew their line.
    """
    if indent is not None:
        return python_literal(value, indent)
    return continued(python_literal(value))
