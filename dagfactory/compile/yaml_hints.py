"""What a YAML syntax error most likely is, in words, and where the mistake is.

PyYAML says what its parser met (``expected <block end>, but found '?'``), often a line
after the mistake: a key that lines up with a list item's ``-``, or one indented under
a value already given, is found only where the parser gives up. Loading (:mod:`.load`)
reports the hint found here at the culprit's line and column, and keeps the parser's
own words and position after it. Each rule reads the error and the text around it;
a text no rule explains gets no hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from yaml import MarkedYAMLError

# A key at the start of a line (after its indentation and any list dashes) with no space
# between its colon and what follows: ``dag_id:x``. A colon before ``/`` (``s3://``) or
# another colon is part of plain text.
KEY_WITHOUT_SPACE = re.compile(r"^(\s*(?:-\s+)*)([A-Za-z_][\w.-]*):(?=[^\s/:])(.*)$")
OPENERS = {"[": ("]", "list"), "{": ("}", "mapping")}


@dataclass(frozen=True)
class Hint:
    """The likely mistake: its 1-based line and column, and what to do, in words."""

    line: int
    column: int
    text: str


def syntax_hint(text: str, error: MarkedYAMLError) -> Hint | None:
    """The hint of the first rule that explains ``error`` in ``text``, or None."""
    if error.problem_mark is None:
        return None
    lines = text.splitlines()
    for rule in RULES:
        hint = rule(lines, error)
        if hint is not None:
            return hint
    return None


def _tab(lines: list[str], error: MarkedYAMLError) -> Hint | None:
    if "'\\t'" not in str(error.problem):
        return None
    index = error.problem_mark.line
    line = _line(lines, index)
    indentation = line[: len(line) - len(line.lstrip(" \t"))]
    if "\t" in indentation:
        column = indentation.index("\t") + 1
        what = f"line {index + 1} is indented with a tab; indent with spaces"
        return Hint(index + 1, column, f"{what} (YAML does not allow tabs there)")
    column = error.problem_mark.column + 1
    what = f"a tab on line {index + 1} where YAML allows only spaces"
    return Hint(index + 1, column, f"{what}; indent with spaces")


def _missing_space(lines: list[str], error: MarkedYAMLError) -> Hint | None:
    """``key:value``: without a space YAML reads one text, and fails a line or two later."""
    problem = str(error.problem)
    if not (
        problem == "mapping values are not allowed here"
        or problem.startswith(("could not find expected ':'", "expected <block end>"))
    ):
        return None
    last = error.problem_mark.line
    first = _content_above(lines, last)
    if error.context_mark is not None:
        first = min(first, error.context_mark.line)
    for index in range(max(first, 0), last + 1):
        match = KEY_WITHOUT_SPACE.match(_line(lines, index))
        if match:
            indent, key, rest = match.groups()
            rest = rest.split(" #")[0].strip()
            shown = rest if len(rest) <= 20 else rest[:20] + "..."
            return Hint(
                index + 1,
                len(indent) + len(key) + 1,
                f"put a space after the colon of '{key}' on line {index + 1} "
                f"('{key}: {shown}'): without one, '{key}:{shown}' is plain text, "
                "not a key and its value",
            )
    return None


def _unclosed_quote(lines: list[str], error: MarkedYAMLError) -> Hint | None:
    if error.context != "while scanning a quoted scalar" or not error.context_mark:
        return None
    index, column = error.context_mark.line, error.context_mark.column
    quote = _line(lines, index)[column : column + 1] or "'"
    opening = f"the quote ({quote}) that opens the value on line {index + 1}"
    return _at(index, column, f"{opening} is never closed; end the value with {quote}")


def _unclosed_bracket(lines: list[str], error: MarkedYAMLError) -> Hint | None:
    """A ``[`` or ``{`` still open where the parser gave up: the innermost one."""
    if not str(error.context).startswith("while parsing a flow"):
        return None
    opened: list[tuple[int, int, str]] = []
    end = error.problem_mark.line
    for index in range(min(end + 1, len(lines))):
        line = lines[index]
        stop = error.problem_mark.column if index == end else len(line)
        quote = ""
        for column, char in enumerate(line[:stop]):
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "#" and (column == 0 or line[column - 1] in " \t"):
                break
            elif char in OPENERS:
                opened.append((index, column, char))
            elif opened and char == OPENERS[opened[-1][2]][0]:
                opened.pop()
    if not opened:
        return None
    index, column, char = opened[-1]
    closer, kind = OPENERS[char]
    unclosed = f"the '{char}' on line {index + 1} is never closed"
    return _at(index, column, f"{unclosed}; end the {kind} with '{closer}'")


def _key_at_the_dash(lines: list[str], error: MarkedYAMLError) -> Hint | None:
    """A list item's next key lined up with its ``-``: YAML reads the list as ended."""
    if error.context != "while parsing a block collection" or "'?'" not in str(
        error.problem
    ):
        return None
    index, column = error.problem_mark.line, error.problem_mark.column
    for above in range(index - 1, -1, -1):
        line = _line(lines, above)
        if _indent(line) == column and line[column:].startswith("-"):
            item_column = _key_column(line)
            first_key = _key_name(line, item_column)
            key = _key_name(_line(lines, index), column)
            return Hint(
                index + 1,
                column + 1,
                f"the key '{key}' on line {index + 1} lines up with the '-' of the list "
                f"item on line {above + 1}; indent it to column {item_column + 1}, "
                f"under '{first_key}', to put it in that item",
            )
    return None


def _key_under_a_value(lines: list[str], error: MarkedYAMLError) -> Hint | None:
    """A key indented under one whose value is on its line: YAML reads it as that value."""
    if error.problem != "mapping values are not allowed here":
        return None
    index = error.problem_mark.line
    above = _content_above(lines, index)
    if above < 0:
        return None
    line, previous = _line(lines, index), _line(lines, above)
    key_column, column = _key_column(previous), _key_column(line)
    value = previous[key_column:].partition(":")[2].strip()
    if column <= key_column or not value:
        return None
    key, previous_key = _key_name(line, column), _key_name(previous, key_column)
    return _at(
        index,
        column,
        f"the key '{key}' on line {index + 1} is indented more than '{previous_key}' "
        f"above it, whose value is already given, so YAML reads it as part of that "
        f"value; indent it to column {key_column + 1}, as '{previous_key}'",
    )


def _key_out_of_line(lines: list[str], error: MarkedYAMLError) -> Hint | None:
    """A key at a column where no block above it has its keys."""
    if (
        error.context != "while parsing a block mapping"
        or "<block mapping start>" not in str(error.problem)
    ):
        return None
    index = error.problem_mark.line
    column = _key_column(_line(lines, index))
    columns: list[int] = []
    for above in range(index - 1, -1, -1):
        line = _line(lines, above)
        if _is_content(line) and (not columns or _key_column(line) < columns[-1]):
            columns.append(_key_column(line))
    if not columns:
        return None
    places = " or ".join(f"column {place + 1}" for place in columns)
    key = _key_name(_line(lines, index), column)
    return _at(
        index,
        column,
        f"the key '{key}' on line {index + 1} is at column {column + 1}, where no block "
        f"above it has its keys; indent it to {places}, as the keys of the block it "
        "belongs to",
    )


def _at(index: int, column: int, text: str) -> Hint:
    """A hint at the 0-based ``index`` and ``column`` the parser's marks use."""
    return Hint(index + 1, column + 1, text)


def _line(lines: list[str], index: int) -> str:
    return lines[index] if 0 <= index < len(lines) else ""


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _content_above(lines: list[str], index: int) -> int:
    """The index of the nearest line above ``index`` with content (-1: none)."""
    above = index - 1
    while above >= 0 and not _is_content(lines[above]):
        above -= 1
    return above


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key_column(line: str) -> int:
    """The 0-based column where the line's key starts, after any list dashes."""
    column = _indent(line)
    while line[column : column + 1] == "-" and line[column + 1 : column + 2] in (
        " ",
        "",
    ):
        column += 1
        column += len(line[column:]) - len(line[column:].lstrip(" "))
    return column


def _key_name(line: str, column: int) -> str:
    return line[column:].partition(":")[0].strip()


# In order: a cause that explains an error better comes before one that also fits it.
RULES: tuple[Callable[[list[str], MarkedYAMLError], Hint | None], ...] = (
    _tab,
    _unclosed_quote,
    _missing_space,
    _unclosed_bracket,
    _key_at_the_dash,
    _key_under_a_value,
    _key_out_of_line,
)
